"""Following one run to its end over WatchRun streams that may end, time out or reconnect.

Each stream has a deadline; when it passes, or the scheduler restarts, the watch
resubscribes, so a run of any length is followed to its end. The scheduler sends the
run's state at least every 10 s; after `idle_timeout_s` seconds without a word from it,
reconnects included, the watch raises ApiError (DEADLINE_EXCEEDED).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import grpc

from datapool.client_models import ApiError, ComputeWorkerRunInfo, api_error, run_info
from datapool.idle_watchdog import IdleWatchdog
from datapool.v1 import scheduler_pb2, scheduler_pb2_grpc

# The deadline of one WatchRun stream; the watch then resubscribes.
WATCH_RUN_DEADLINE_S = 600.0
WATCH_RECONNECTS = 8
# A watch raises ApiError after this long without a word from the scheduler, which sends
# the run's state at least every 10 s while it runs (services/scheduler/servicer.py).
WATCH_IDLE_TIMEOUT_S = 60.0


def watch_run(
    stub: scheduler_pb2_grpc.SchedulerStub,
    metadata: tuple[tuple[str, str], ...],
    address: str,
    run_id: str,
    idle_timeout_s: float = WATCH_IDLE_TIMEOUT_S,
) -> Iterator[ComputeWorkerRunInfo]:
    """The run's info on every change (state, message or progress) until it ends."""
    request = scheduler_pb2.GetRunRequest(run_id=run_id)
    reconnects = 0
    last_heard = time.monotonic()
    last: ComputeWorkerRunInfo | None = None
    while True:
        call = stub.WatchRun(request, timeout=WATCH_RUN_DEADLINE_S, metadata=metadata)
        watchdog = IdleWatchdog(call, idle_timeout_s, last_heard)
        try:
            for run in call:
                watchdog.heard()
                reconnects = 0
                info = run_info(run)
                if info != last:  # the scheduler's keep-alive repeats an unchanged run
                    last = info
                    yield info
                if info.in_end_state():
                    return
            return
        except grpc.RpcError as e:
            if watchdog.fired:
                raise ApiError(
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                    f"no word from the scheduler at {address} for {idle_timeout_s:g}s "
                    f"(idle_timeout_s) while watching run {run_id}: it is frozen, overloaded "
                    "or unreachable. The run may still be going on; watch it again later",
                ) from None
            code = e.code() if isinstance(e, grpc.Call) else None
            if code == grpc.StatusCode.DEADLINE_EXCEEDED:
                continue
            if code == grpc.StatusCode.UNAVAILABLE and reconnects < WATCH_RECONNECTS:
                reconnects += 1
                # Never past the idle limit: the next stream's watchdog then fires at once.
                left = watchdog.last_heard + idle_timeout_s - time.monotonic()
                time.sleep(max(0.0, min(5.0, 0.2 * 2**reconnects, left)))
                continue
            raise api_error(e) from None
        finally:
            watchdog.stop()
            last_heard = watchdog.last_heard
