"""GetPool and ListProcessedFiles latency while a long selection fills the cores, by the selector's
`--selection-nice` (0: the selection at the read calls' priority; 10: a raised nice value; idle:
SCHED_IDLE, the default).

A real selector process is sent 200,000 uniform rows (nothing to prune) and asked for 100,000
picks, minutes of work on every core; once the greedy loop runs, GetPool is called every 20 ms
and ListProcessedFiles every 100 ms for `--seconds`, then the Select is cancelled. Settings
alternate in one process, `--rounds` times, so the machine's other load falls on both alike.

    .venv/bin/python bench/bench_select_priority.py [--nice 0 10 idle] [--rounds 2] [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "selector"))
from long_selection import local_location, long_select_requests
from selector_helpers import selector_process

from datapool.v1 import selector_pb2, selector_pb2_grpc
from services.common.auth import with_token


def _probe(call: Callable[[], object], every_s: float, seconds: float) -> list[float]:
    latencies = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        started = time.monotonic()
        call()
        latencies.append(time.monotonic() - started)
        time.sleep(max(0.0, every_s - (time.monotonic() - started)))
    return latencies


def _stats(latencies: list[float]) -> str:
    ms = np.array(latencies) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return f"{len(ms)} calls, p50 {p50:.1f} ms, p90 {p90:.1f}, p99 {p99:.1f}, max {ms.max():.1f}"


def one(nice: str, seconds: float) -> None:
    with tempfile.TemporaryDirectory(prefix="datapool-prio-") as tmp:
        base = Path(tmp)
        pool = base / "pool"
        pool.mkdir()
        with (
            selector_process(base, extra_args=["--selection-nice", nice]) as selector,
            grpc.insecure_channel(selector.address) as channel,
        ):
            stub = selector_pb2_grpc.SelectorStub(with_token(channel, selector.token))
            sent = threading.Event()
            select = stub.Select.future(long_select_requests(pool, sent), timeout=900)
            if not sent.wait(timeout=300):
                raise RuntimeError("the candidates were not sent within 300 s")
            time.sleep(1.0)  # the last file measured: the greedy loop runs on every core
            request = selector_pb2.GetPoolRequest(pool=local_location(pool))
            lists: list[float] = []
            lister = threading.Thread(
                target=lambda: lists.extend(
                    _probe(lambda: list(stub.ListProcessedFiles(request, timeout=30)), 0.1, seconds)
                )
            )
            lister.start()
            gets = _probe(lambda: stub.GetPool(request, timeout=30), 0.02, seconds)
            lister.join()
            running = not select.done()
            select.cancel()
            load = os.getloadavg()
            print(
                f"--selection-nice {nice:>4}: GetPool {_stats(gets)}; ListProcessedFiles {_stats(lists)}; "
                f"selection still running at the end: {running}; "
                f"load average {load[0]:.2f} on {os.cpu_count()} cores",
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--nice", nargs="+", default=["0", "10", "idle"])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    for _ in range(args.rounds):
        for nice in args.nice:
            one(nice, args.seconds)


if __name__ == "__main__":
    main()
