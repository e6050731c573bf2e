"""The read calls of `scenarios.py reads` and how they are measured: an open loop at a fixed rate,
then a closed loop as fast as the scheduler answers.

Why both: 50 clients that each wait for their answer (closed loop) see latency = 50 / throughput
(Little's law), so "p99 < 50 ms with 50 clients" needs a server doing > 1,000 calls a second and
says nothing about 500. "p99 < 50 ms at >= 500 RPS" is an open loop: the 50 clients send 500 calls
a second between them at fixed times, whatever the answers; latency counts from each call's due
time. The closed loop gives the most the scheduler answers (its maximum RPS).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from fixtures import cpu_s, service_pid, uptime
from ghz import allowed_nice, ghz_binary, ghz_load
from harness import DEADLINE_S, Call, LoadResult, closed_loop, open_loop, percentile
from probes import PySpy, describe, metrics_url, run_delay_s, scrape
from stack_launcher import RunningStack

from datapool.v1 import scheduler_pb2, scheduler_pb2_grpc

Md = tuple[tuple[str, str], ...]


@dataclass
class ReadCalls:
    python: dict[str, Call]  # for the Python harness
    ghz: dict[str, dict[str, str]]  # the same requests as JSON fields, for ghz


def read_calls(run_id: str, dataset_id: str) -> ReadCalls:
    async def get_run(stub: scheduler_pb2_grpc.SchedulerAsyncStub, md: Md) -> object:
        return await stub.GetRun(scheduler_pb2.GetRunRequest(run_id=run_id), metadata=md, timeout=DEADLINE_S)

    async def list_tags(stub: scheduler_pb2_grpc.SchedulerAsyncStub, md: Md) -> object:
        req = scheduler_pb2.ListTagsRequest(dataset_id=dataset_id)
        return await stub.ListTags(req, metadata=md, timeout=DEADLINE_S)

    async def list_datasets(stub: scheduler_pb2_grpc.SchedulerAsyncStub, md: Md) -> object:
        req = scheduler_pb2.ListDatasetsRequest()
        return await stub.ListDatasets(req, metadata=md, timeout=DEADLINE_S)

    return ReadCalls(
        python={"GetRun": get_run, "ListTags": list_tags, "ListDatasets": list_datasets},
        ghz={"GetRun": {"run_id": run_id}, "ListTags": {"dataset_id": dataset_id}, "ListDatasets": {}},
    )


def add_read_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=20.0, help="each of the four measurements")
    parser.add_argument("--rate", type=float, default=500.0, help="calls a second of the open loop")
    parser.add_argument(
        "--harness",
        choices=["ghz", "python"],
        default="ghz",
        help="load generator: ghz (built with go install on first use; the Python harness without Go)",
    )
    parser.add_argument(
        "--generator-nice",
        type=int,
        default=-10,
        help="ghz's CPU priority (below 0: root or CAP_SYS_NICE; 0 where not allowed), standing in "
        "for clients on machines of their own; it still uses the same cores",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        help="folder for a py-spy profile of the scheduler during each measurement (raw collapsed stacks)",
    )


async def _load(
    running: RunningStack, calls: ReadCalls, args: argparse.Namespace, rate: float | None
) -> tuple[LoadResult, float]:
    """One measurement; returns it and the load generator's CPU seconds."""
    binary = ghz_binary() if args.harness == "ghz" else None
    if args.harness == "ghz" and binary is None:
        print("no ghz and no Go to build it: the Python harness drives the load instead")
    if binary is not None:
        nice = allowed_nice(args.generator_nice)
        print(f"  ghz at nice {nice} (asked {args.generator_nice})")
        return await ghz_load(
            binary, running.address, running.token, calls.ghz, args.clients, args.seconds, rate, nice
        )
    own = time.process_time()
    if rate is None:
        result = await closed_loop(
            running.address, running.token, calls.python, args.clients, args.seconds, 10**7
        )
    else:
        result = await open_loop(
            running.address, running.token, calls.python, args.clients, rate, args.seconds
        )
    return result, time.process_time() - own


def verdict(result: LoadResult, rate: float) -> str:
    """Issue 14's read target against one open-loop result: p99 < 50 ms, >= 500 calls answered a
    second, no error but deliberate refusals (RESOURCE_EXHAUSTED, counted apart). Answered a second
    is `rate` times the share of the calls sent that were answered: the wall time also holds ghz's
    start and the last calls' answers, which at 500 sent a second would read as 496-499."""
    answered = sorted(x for m in result.methods.values() for x in m.latencies_s)
    refused = sum(m.refused for m in result.methods.values())
    errors = sum(sum(m.errors.values()) for m in result.methods.values())
    p99_ms = percentile(answered, 0.99) * 1000
    rps = rate * len(answered) / max(1, len(answered) + refused + errors)
    met = p99_ms < 50 and rps >= 500 and errors == 0
    return (
        f"read target (p99 < 50 ms, >= 500 answered a second, no error but refusals) at {rate:g} sent "
        f"a second: p99 {p99_ms:.1f} ms, {rps:.0f} answered a second, {refused} refused, {errors} errors: "
        f"{'MET' if met else 'NOT MET'}"
    )


async def measured_reads(
    running: RunningStack, calls: ReadCalls, args: argparse.Namespace, what: str
) -> LoadResult:
    """The open loop at `--rate`, then the closed loop, each with the CPU each process spent per
    call: a figure that the machine's other load changes little, and that bounds the RPS on
    dedicated cores. Returns the open loop's result."""
    open_result: LoadResult | None = None
    pids = {name: service_pid(running, f"services.{name}") for name in ("scheduler", "selector")}
    # Who takes the cores while the calls run: each service's CPU a second (the embedder's too).
    users = {**pids, "embedder": service_pid(running, "services.embedder")}
    url = metrics_url(running.state_dir, "scheduler")
    for loop, rate in ((f"open loop at {args.rate:g} calls/s", args.rate), ("closed loop", None)):
        print(
            f"reads, {what}, {loop} ({args.clients} clients, {args.seconds:g} s, {args.harness}; {uptime()})"
        )
        before = {name: cpu_s(pid) for name, pid in users.items()}
        # The scheduler's event loop thread; the selector's threads (a threaded server) together.
        waited = {name: run_delay_s(pid, name != "scheduler") for name, pid in pids.items()}
        probes = scrape(url)
        began = time.monotonic()
        profile: contextlib.AbstractAsyncContextManager[object] = contextlib.nullcontext()
        if args.profile is not None:
            name = f"{what}-{'open' if rate else 'closed'}".replace(" ", "-")
            profile = PySpy(pids["scheduler"], args.seconds, args.profile / f"{name}.txt")
        async with profile:
            result, generator_s = await _load(running, calls, args, rate)
        n = sum(len(m.latencies_s) for m in result.methods.values()) or 1
        spent = {name: (cpu_s(pid) - before[name]) * 1000 / n for name, pid in pids.items()}
        spent["load generator"] = generator_s * 1000 / n
        print(result.table())
        print("CPU ms per call: " + ", ".join(f"{k} {v:.2f}" for k, v in spent.items()) + f"; {uptime()}")
        print(describe(probes, scrape(url)))
        took = time.monotonic() - began
        print(
            "CPU ms a second: "
            + ", ".join(f"{k} {(cpu_s(p) - before[k]) * 1000 / took:.0f}" for k, p in users.items())
            + f", load generator {generator_s * 1000 / took:.0f} (of {1000 * (os.cpu_count() or 1)})"
        )
        print(
            "waiting for a CPU (run queue), ms a second: "
            + ", ".join(
                f"{k} {(run_delay_s(p, k != 'scheduler') - waited[k]) * 1000 / took:.0f}"
                for k, p in pids.items()
            )
            + " (the scheduler's event loop thread; the selector's threads together)"
        )
        if rate is not None:
            open_result = result
            print(verdict(result, rate))
    assert open_result is not None
    return open_result
