"""ScheduleRun's per-token rate limit: a burst, then RESOURCE_EXHAUSTED naming the limit and the
wait, refilled with time, separate per token; zero turns it off."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest

from datapool.errors import NotFound, ResourceExhausted
from datapool.v1 import scheduler_pb2
from services.scheduler.db import MetadataDB
from services.scheduler.rate_limit import RateLimiter, caller_key
from services.scheduler.servicer import SchedulerServicer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_next_call_is_refused_until_the_bucket_refills() -> None:
    clock = Clock()
    limit = RateLimiter(per_minute=30, burst=3, clock=clock)
    for _ in range(3):
        limit.take("a")
    with pytest.raises(ResourceExhausted, match=r"30 run\(s\) a minute per token .* retry in 2\.0 s"):
        limit.take("a")
    limit.take("b")  # another token has its own bucket
    clock.now += 2.0
    limit.take("a")
    with pytest.raises(ResourceExhausted):
        limit.take("a")
    assert ResourceExhausted("x").code == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_zero_per_minute_turns_the_limit_off() -> None:
    limit = RateLimiter(per_minute=0, burst=1)
    for _ in range(100):
        limit.take("a")


class Context:
    def __init__(self, token: str) -> None:
        self.token = token

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


def test_schedule_run_is_refused_before_it_touches_the_store(make_db: Callable[[], MetadataDB]) -> None:
    db = make_db()
    runs: Any = None  # never reached
    servicer = SchedulerServicer(db, runs, None, None, schedule_limit=RateLimiter(60, 2))  # type: ignore[arg-type]
    request = scheduler_pb2.ScheduleRunRequest(dataset_id="missing")
    for _ in range(2):
        with pytest.raises(NotFound):
            servicer.ScheduleRun(request, Context("t1"))  # type: ignore[arg-type]
    with pytest.raises(ResourceExhausted):
        servicer.ScheduleRun(request, Context("t1"))  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        servicer.ScheduleRun(request, Context("t2"))  # type: ignore[arg-type]
    assert caller_key(Context("t1").invocation_metadata()) != caller_key(Context("t2").invocation_metadata())
    assert "t1" not in caller_key(Context("t1").invocation_metadata())
