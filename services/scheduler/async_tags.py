"""ListTags on the event loop: the pool's summary from the selector over a `grpc.aio` channel.

ListTags is one of the read calls clients make most (bench/load); through the blocking pool each
one cost two thread handoffs under the GIL and lost the loop's turn to the store reads (in a
closed loop with 4 runs it got 40 calls a second to GetRun's 240). The channel is opened on the
first call, on the loop that serves it, with the settings of `SelectorClient`'s (retries of
UNAVAILABLE, TLS, the internal token on every call).

Calls for one pool share the selector's answers, one GetPool in flight per pool at a time: the
calls that arrive while one is in flight wait for the next, sent as soon as it returns, and all
share it. So every call still gets an answer the selector read after the call arrived (a tag
committed before is never missed), and under load the selector answers one GetPool per batch
instead of one per call: in a closed loop ListTags, two turns on the event loop plus the
selector's round trip, got a third of GetRun's calls a second (bench/load/scenarios.py reads).

Most calls need no GetPool at all. Every run that commits records the version it made in the
store (`MetadataDB.record_pool_version`) before it shows COMPLETED; ListTags reads that version
(one indexed row) and answers from the last summary the selector gave for the pool while that
summary is at least as new and at most `CACHE_S` old. So a tag whose run any replica saw commit
is never missed, and a change the store never heard of (a scheduler that died between the commit
and the record, until its takeover records it) shows within `CACHE_S`.
"""

from __future__ import annotations

import asyncio
import contextlib

import grpc

from datapool.channels import _RESOLVER_SCHEMES, COMMON_OPTIONS, ChannelTLS, retry_service_config
from datapool.v1 import common_pb2, scheduler_pb2, selector_pb2, selector_pb2_grpc
from services.scheduler.remotes import _SELECTOR_IDEMPOTENT, GET_POOL_DEADLINE_S
from services.scheduler.run.interfaces import SelectorError
from services.scheduler.tags import tags_from_summary

# How long a pool's summary answers ListTags while the store records no newer commit.
CACHE_S = 2.0


class AsyncPoolTags:
    def __init__(
        self, address: str, token: str | None = None, tls: ChannelTLS | None = None, cache_s: float = CACHE_S
    ) -> None:
        self.address = address
        self.cache_s = cache_s
        # Per pool: the tags of the selector's last summary, its version, and when it was asked for.
        self._cached: dict[bytes, tuple[list[scheduler_pb2.TagInfo], int, float]] = {}
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        self._tls = tls
        self._stub: selector_pb2_grpc.SelectorAsyncStub | None = None
        self._channel: grpc.aio.Channel | None = None
        # Per pool (its location's bytes): the answer the calls waiting for the next GetPool share,
        # and the pools with a GetPool in flight (their task sends the next one when it returns).
        self._next: dict[bytes, asyncio.Future[tuple[list[scheduler_pb2.TagInfo], int, float]]] = {}
        self._flying: dict[bytes, asyncio.Task[None]] = {}

    def _selector(self) -> selector_pb2_grpc.SelectorAsyncStub:
        if self._stub is None:
            options = [
                *COMMON_OPTIONS,
                *(self._tls.options if self._tls else ()),
                ("grpc.service_config", retry_service_config("datapool.v1.Selector", _SELECTOR_IDEMPOTENT)),
                ("grpc.enable_retries", 1),
            ]
            if self.address.startswith(_RESOLVER_SCHEMES):
                options.append(("grpc.lb_policy_name", "round_robin"))
            if self._tls is not None:
                self._channel = grpc.aio.secure_channel(self.address, self._tls.credentials, options=options)
            else:
                self._channel = grpc.aio.insecure_channel(self.address, options=options)
            self._stub = selector_pb2_grpc.SelectorStub(self._channel)
        assert self._stub is not None
        return self._stub

    async def all(
        self, pool: common_pb2.StoreLocation, recorded: int | None = None
    ) -> list[scheduler_pb2.TagInfo]:
        """`TagCatalog.all`, awaited: SelectorError with the selector's code when it refuses.
        `recorded`: the pool version the store holds now; the cached answer serves while it is at
        least that new and fresh. None: always an answer the selector read after this call."""
        key = pool.SerializeToString(deterministic=True)
        cached = self._cached.get(key)
        if (
            recorded is not None
            and cached is not None
            and cached[1] >= recorded
            and asyncio.get_running_loop().time() - cached[2] < self.cache_s
        ):
            return list(cached[0])
        answer = self._next.get(key)
        if answer is None:
            answer = self._next[key] = asyncio.get_running_loop().create_future()
            # Retrieved here, so an answer whose callers all went away logs nothing.
            answer.add_done_callback(lambda f: f.cancelled() or f.exception())
        if key not in self._flying:
            self._flying[key] = asyncio.ensure_future(self._fly(key, pool))
        # Shielded: a caller that goes away (deadline, cancel) leaves the shared answer to the others.
        return list((await asyncio.shield(answer))[0])

    async def _fly(self, key: bytes, pool: common_pb2.StoreLocation) -> None:
        """Sends GetPool for `pool` while calls wait for its next answer."""
        try:
            while (answer := self._next.pop(key, None)) is not None:
                asked = asyncio.get_running_loop().time()
                try:
                    summary = await self._selector().GetPool(
                        selector_pb2.GetPoolRequest(pool=pool),
                        timeout=GET_POOL_DEADLINE_S,
                        metadata=self._metadata,
                    )
                except grpc.aio.AioRpcError as e:
                    answer.set_exception(SelectorError(e.code().name, e.details() or ""))
                except asyncio.CancelledError:  # closing: the waiting calls fail too
                    answer.set_exception(SelectorError("CANCELLED", "the scheduler is stopping"))
                    raise
                except Exception as e:  # whatever it is, the waiting calls get it
                    answer.set_exception(e)
                else:
                    self._cached[key] = (tags_from_summary(summary), summary.version, asked)
                    answer.set_result(self._cached[key])
        finally:
            del self._flying[key]

    async def close(self) -> None:
        for flight in list(self._flying.values()):
            flight.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await flight
        if self._channel is not None:
            await self._channel.close()
