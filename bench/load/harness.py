"""A closed-loop gRPC load generator on grpc.aio: RPS, p50/p90/p99 latency and errors per method.

Why a Python asyncio harness rather than `ghz`: the scenarios need more than one unary call in a
loop — they create datasets, schedule runs, watch server streams and read the pools back to check
them — and this way every scenario uses the project's own generated stubs, token metadata and
channel options, with no Go toolchain or proto descriptor set to keep in step with protos/.
The price is client CPU: on a 2-core machine the harness competes with the services for the same
cores, so the figures are a floor, not a ceiling (ghz would take somewhat less of the CPU).

Each of `clients` workers owns one channel (one HTTP/2 connection, as 50 separate clients would)
and calls the methods round-robin, each call awaited before the next (closed loop), until
`duration_s` passes or `max_calls` calls were made in all. RESOURCE_EXHAUSTED is a deliberate
refusal (the scheduler's per-token rate limit) and is counted apart from errors.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

import grpc

from datapool.v1 import scheduler_pb2_grpc

if TYPE_CHECKING:
    # Only the .pyi knows the asyncio stub's type; at run time it is SchedulerStub on an aio channel.
    from datapool.v1.scheduler_pb2_grpc import SchedulerAsyncStub

# One call: given a stub and the call metadata, make one RPC (await its answer).
Call: TypeAlias = "Callable[[SchedulerAsyncStub, tuple[tuple[str, str], ...]], Awaitable[object]]"
DEADLINE_S = 10.0
REFUSALS = frozenset({grpc.StatusCode.RESOURCE_EXHAUSTED})


@dataclass
class MethodStats:
    latencies_s: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    refused: int = 0


@dataclass
class LoadResult:
    seconds: float
    methods: dict[str, MethodStats]
    cut_at_end: int = 0  # calls in flight when the load generator stopped (not answered, not errors)

    def table(self) -> str:
        lines = [
            f"{'method':<14}{'calls':>8}{'RPS':>9}{'p50 ms':>9}{'p90 ms':>9}{'p99 ms':>9}  refused errors"
        ]
        for name, s in sorted(self.methods.items()):
            lat = sorted(s.latencies_s)
            p = [percentile(lat, q) * 1000 for q in (0.5, 0.9, 0.99)]
            lines.append(
                f"{name:<14}{len(lat):>8}{len(lat) / self.seconds:>9.0f}{p[0]:>9.1f}{p[1]:>9.1f}{p[2]:>9.1f}"
                f"  {s.refused:>7} {dict(s.errors) or 0}"
            )
        total = sorted(x for s in self.methods.values() for x in s.latencies_s)
        lines.append(
            f"{'all':<14}{len(total):>8}{len(total) / self.seconds:>9.0f}"
            + "".join(f"{percentile(total, q) * 1000:>9.1f}" for q in (0.5, 0.9, 0.99))
        )
        if self.cut_at_end:
            lines.append(f"({self.cut_at_end} calls in flight when the load generator stopped, not counted)")
        return "\n".join(lines)


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile (0 for no values)."""
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, max(0, round(q * len(sorted_values)) - 1))]


async def closed_loop(
    address: str,
    token: str,
    calls: dict[str, Call],
    clients: int,
    duration_s: float,
    max_calls: int,
) -> LoadResult:
    """`clients` workers calling `calls` round-robin until `duration_s` or `max_calls` in all."""
    metadata = (("authorization", f"Bearer {token}"),)
    stats = {name: MethodStats() for name in calls}
    names = list(calls)
    made = 0
    start = time.monotonic()
    end = start + duration_s

    async def worker(index: int) -> None:
        nonlocal made
        async with grpc.aio.insecure_channel(address) as channel:
            stub = scheduler_pb2_grpc.SchedulerStub(channel)
            i = index
            while time.monotonic() < end and made < max_calls:
                made += 1
                name = names[i % len(names)]
                i += 1
                t = time.perf_counter()
                try:
                    await calls[name](stub, metadata)
                except grpc.aio.AioRpcError as e:
                    if e.code() in REFUSALS:
                        stats[name].refused += 1
                    else:
                        stats[name].errors[e.code().name] += 1
                    continue
                stats[name].latencies_s.append(time.perf_counter() - t)

    await asyncio.gather(*(worker(i) for i in range(clients)))
    return LoadResult(time.monotonic() - start, stats)


async def open_loop(
    address: str, token: str, calls: dict[str, Call], clients: int, rate: float, duration_s: float
) -> LoadResult:
    """`rate` calls a second in all for `duration_s`, spread over `clients` channels, each call sent
    at its due time whether or not earlier ones were answered (open loop). A call's latency counts
    from its due time, so a server that falls behind shows it (no coordinated omission)."""
    metadata = (("authorization", f"Bearer {token}"),)
    stats = {name: MethodStats() for name in calls}
    names = list(calls)
    channels = [grpc.aio.insecure_channel(address) for _ in range(clients)]
    stubs = [scheduler_pb2_grpc.SchedulerStub(c) for c in channels]
    await asyncio.gather(*(c.channel_ready() for c in channels))

    async def one(i: int, due: float) -> None:
        name = names[i % len(names)]
        try:
            await calls[name](stubs[i % clients], metadata)
        except grpc.aio.AioRpcError as e:
            if e.code() in REFUSALS:
                stats[name].refused += 1
            else:
                stats[name].errors[e.code().name] += 1
            return
        stats[name].latencies_s.append(time.perf_counter() - due)

    start = time.perf_counter()
    pending = []
    for i in range(int(rate * duration_s)):
        due = start + i / rate
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        pending.append(asyncio.ensure_future(one(i, due)))
    await asyncio.gather(*pending)
    seconds = time.perf_counter() - start
    await asyncio.gather(*(c.close() for c in channels))
    return LoadResult(seconds, stats)
