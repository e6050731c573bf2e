"""The three load scenarios of issue 14 against a real `datapool up` on loopback (README, "Load").

    .venv/bin/python bench/load/scenarios.py reads    [--clients 50] [--seconds 20] [--rate 500]
    .venv/bin/python bench/load/scenarios.py schedule [--runs 200] [--minutes 10]
    .venv/bin/python bench/load/scenarios.py watch    [--runs 100]

reads: `clients` clients on GetRun, ListTags and ListDatasets, first with an idle scheduler, then
while 4 runs execute (a new run is scheduled as soon as one of the 4 ends); each time an open loop
at `rate` calls a second, then a closed loop (why both: read_load.py), driven by ghz (ghz.py).
schedule: `runs` runs spread evenly over `minutes` across 20 datasets that share 5 pools; then
every input file must have been processed by exactly one run, and each pool must hold every frame
its runs selected exactly once (read back through the client); scheduler RSS at start and end.
watch: one client watches `runs` runs at once through WatchRun; reports how late each end state
arrived and GetRun's latency meanwhile.
Every figure is printed with the load average (the machine may be shared).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import tempfile
import time
from collections import Counter
from pathlib import Path

import grpc
from fixtures import Dataset, make_datasets, rss_mib, scheduler_pid, stack, uptime
from harness import DEADLINE_S, closed_loop, percentile
from read_load import add_read_args, measured_reads, read_calls, verdict
from stack_launcher import RunningStack

from datapool import ApiWorkflowClient
from datapool.v1 import scheduler_pb2, scheduler_pb2_grpc

END = (scheduler_pb2.COMPLETED, scheduler_pb2.FAILED)
ACTIVE = (scheduler_pb2.OPEN, scheduler_pb2.EMBEDDING, scheduler_pb2.SELECTING, scheduler_pb2.COMMITTING)
# ScheduleRun's deliberate refusals (the per-token rate limit), by message; waited out and retried.
REFUSED: Counter[str] = Counter()
WORKER = json.dumps({"enable_training": False})
# Every new frame is picked (no distance floor), so a pool must end with all of its runs' frames.
SELECTION = json.dumps(
    {
        "n_samples": 1000,
        "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
    }
)


def _metadata(running: RunningStack) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {running.token}"),)


async def _schedule(
    stub: scheduler_pb2_grpc.SchedulerAsyncStub, md: tuple[tuple[str, str], ...], ds: Dataset
) -> str:
    """Schedules a run on `ds` after adding its next file; waits out a rate-limit refusal."""
    ds.add_next_file()
    while True:
        try:
            req = scheduler_pb2.ScheduleRunRequest(
                dataset_id=ds.id, worker_config_json=WORKER, selection_config_json=SELECTION
            )
            run = await stub.ScheduleRun(req, metadata=md, timeout=DEADLINE_S)
            return str(run.id)
        except grpc.aio.AioRpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            REFUSED[e.details() or ""] += 1
            await asyncio.sleep(1.0)


async def _wait_end(
    stub: scheduler_pb2_grpc.SchedulerAsyncStub, md: tuple[tuple[str, str], ...], run_id: str
) -> int:
    while True:
        try:
            run = await stub.GetRun(
                scheduler_pb2.GetRunRequest(run_id=run_id), metadata=md, timeout=DEADLINE_S
            )
        except grpc.aio.AioRpcError as e:
            # The cap on calls in flight refuses deliberately while an open loop overloads the scheduler.
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
        else:
            if run.state in END:
                return int(run.state)
        await asyncio.sleep(0.3)


async def reads(running: RunningStack, base: Path, args: argparse.Namespace) -> str:
    datasets = make_datasets(running, base, 4, 4, staged=args.staged, videos=True, frames=args.frames)
    md = _metadata(running)
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        first = await _schedule_no_new_file(stub, md, datasets[0])
        assert await _wait_end(stub, md, first) == scheduler_pb2.COMPLETED
        calls = read_calls(first, datasets[0].id)
        # Warm-up, not measured: channels connected, the services' first-call imports done.
        await closed_loop(running.address, running.token, calls.python, args.clients, 3.0, 10**7)
        await measured_reads(running, calls, args, "idle scheduler")

        stop = asyncio.Event()
        in_progress: list[int] = []

        async def keep_four_running() -> None:
            async def one(ds: Dataset) -> None:
                while not stop.is_set() and ds.staged:
                    state = await _wait_end(stub, md, await _schedule(stub, md, ds))
                    assert state == scheduler_pb2.COMPLETED, state

            await asyncio.gather(*(one(ds) for ds in datasets))

        async def sample() -> None:
            while not stop.is_set():
                with contextlib.suppress(grpc.aio.AioRpcError):  # a deliberate refusal under overload
                    runs = await stub.ListRuns(
                        scheduler_pb2.ListRunsRequest(), metadata=md, timeout=DEADLINE_S
                    )
                    in_progress.append(sum(r.state in ACTIVE for r in runs.runs))
                await asyncio.sleep(0.5)

        keeper = asyncio.ensure_future(keep_four_running())
        await asyncio.sleep(3.0)  # let the 4 runs start embedding
        sampler = asyncio.ensure_future(sample())
        busy = await measured_reads(running, calls, args, "4 runs in progress")
        stop.set()
        print(
            "runs in progress while measured (sampled every 0.5 s): "
            f"{dict(sorted(Counter(in_progress).items()))}"
        )
        # What decides issue 14's target: the open loop while 4 runs execute.
        decides = f"{verdict(busy, args.rate)}; {uptime()}"
        print(f"DECIDES: {decides}")
        await sampler
        await keeper
    return decides


async def _schedule_no_new_file(
    stub: scheduler_pb2_grpc.SchedulerAsyncStub, md: tuple[tuple[str, str], ...], ds: Dataset
) -> str:
    req = scheduler_pb2.ScheduleRunRequest(
        dataset_id=ds.id, worker_config_json=WORKER, selection_config_json=SELECTION
    )
    return str((await stub.ScheduleRun(req, metadata=md, timeout=DEADLINE_S)).id)


async def schedule(running: RunningStack, base: Path, args: argparse.Namespace) -> None:
    per_dataset = -(-args.runs // 20)
    datasets = make_datasets(running, base, 20, 5, staged=per_dataset, videos=False)
    md = _metadata(running)
    pid = scheduler_pid(running)
    rss_start = rss_mib(pid)
    print(
        f"schedule: {args.runs} runs over {args.minutes:g} min, 20 datasets, 5 pools; "
        f"RSS {rss_start:.0f} MiB (with its report process); {uptime()}"
    )
    run_ids: dict[str, Dataset] = {}
    rss = [f"{rss_start:.0f}"]  # at the start and after each fifth of the runs was scheduled
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        # The first run of each dataset takes the file it was made with; later runs one new file each.
        t0 = time.monotonic()
        gap = args.minutes * 60 / args.runs
        for k in range(args.runs):
            await asyncio.sleep(max(0.0, t0 + k * gap - time.monotonic()))
            ds = datasets[k % 20]
            run_ids[await (_schedule_no_new_file(stub, md, ds) if k < 20 else _schedule(stub, md, ds))] = ds
            if (k + 1) % max(1, args.runs // 5) == 0:
                rss.append(f"{rss_mib(pid):.0f}")
        ends = [await _wait_end(stub, md, r) for r in run_ids]
        states = Counter(scheduler_pb2.RunState.Name(e) for e in ends)  # type: ignore[arg-type]
    took = time.monotonic() - t0
    rss_end = rss_mib(pid)
    print(f"  all {len(run_ids)} runs ended {took:.0f} s after the first was scheduled: {dict(states)}")
    print(
        f"  scheduler RSS MiB (with its report process): {' -> '.join(rss)} -> {rss_end:.0f} at the end; "
        f"{uptime()}"
    )
    print("  " + "\n  ".join(_check_pools(running, run_ids)))


def _check_pools(running: RunningStack, run_ids: dict[str, Dataset]) -> list[str]:
    """Every input file processed by exactly one run; each pool holds its runs' picks exactly once."""
    processed: Counter[tuple[str, str]] = Counter()
    picks: dict[Path, Counter[str]] = {}
    with ApiWorkflowClient(token=running.token, address=running.address, timeout=60) as client:
        for run_id, ds in run_ids.items():
            client.dataset_id = ds.id
            report = client.download_compute_worker_run_report_json(
                client.get_compute_worker_run_from_scheduled_run(run_id)
            )
            processed.update((ds.name, f["path"]) for f in report["files"]["processed"])
            for tag in client.get_compute_worker_run_tags(run_id):
                names = [n for n in client.export_filenames_by_tag_name(tag.name).split("\n") if n]
                picks.setdefault(ds.pool_dir, Counter()).update(names)
        inputs = {(ds.name, p.name) for ds in run_ids.values() for p in ds.input_dir.iterdir()}
        lost_files = inputs - set(processed)
        twice = [k for k, n in processed.items() if n > 1]
        problems = [
            f"{len(inputs)} input files: {len(lost_files)} processed by no run, {len(twice)} by two runs"
        ]
        seen_pools = {ds.pool_dir: ds for ds in run_ids.values()}
        for pool_dir, ds in sorted(seen_pools.items()):
            client.dataset_id = ds.id
            csv_path = pool_dir.parent / f"{pool_dir.name}.csv"
            client.download_embeddings_csv(str(csv_path))
            rows = [line.split(",", 1)[0] for line in csv_path.read_text().splitlines()[1:]]
            dup = sum(n - 1 for n in Counter(rows).values() if n > 1)
            missing = set(picks.get(pool_dir, Counter())) - set(rows)
            extra = set(rows) - set(picks.get(pool_dir, Counter()))
            picked_twice = sum(n - 1 for n in picks.get(pool_dir, Counter()).values() if n > 1)
            problems.append(
                f"{pool_dir.name}: {len(rows)} frames, {dup} duplicated, {len(missing)} picks missing, "
                f"{len(extra)} not picked by any run, {picked_twice} picked twice"
            )
    return problems


async def watch(running: RunningStack, base: Path, args: argparse.Namespace) -> None:
    datasets = make_datasets(running, base, 20, 5, staged=-(-args.runs // 20), videos=False)
    md = _metadata(running)
    async with grpc.aio.insecure_channel(running.address) as channel:
        stub = scheduler_pb2_grpc.SchedulerStub(channel)
        run_ids = [
            await (
                _schedule_no_new_file(stub, md, datasets[k % 20])
                if k < 20
                else _schedule(stub, md, datasets[k % 20])
            )
            for k in range(args.runs)
        ]
        print(f"watch: {len(run_ids)} runs scheduled, watching all at once; {uptime()}")
        late_ms: list[float] = []
        streams_ok = Counter[str]()

        async def watch_one(run_id: str) -> None:
            last = None
            try:
                async for run in stub.WatchRun(
                    scheduler_pb2.GetRunRequest(run_id=run_id), metadata=md, timeout=900
                ):
                    last = run
            except grpc.aio.AioRpcError as e:
                streams_ok[e.code().name] += 1
                return
            assert last is not None and last.state in END
            # Runs that ended before the watch began (scheduling 100 waits out the rate limit)
            # are not late; count them apart.
            if last.updated_unix_ms >= began_ms:
                late_ms.append(time.time() * 1000 - last.updated_unix_ms)
            streams_ok["OK, ended " + scheduler_pb2.RunState.Name(last.state)] += 1

        probe_ms: list[float] = []
        began_ms = time.time() * 1000
        watching = asyncio.ensure_future(asyncio.gather(*(watch_one(r) for r in run_ids)))
        probe_errors: Counter[str] = Counter()
        while not watching.done():
            t = time.perf_counter()
            try:
                await stub.GetRun(scheduler_pb2.GetRunRequest(run_id=run_ids[0]), metadata=md, timeout=10)
                probe_ms.append((time.perf_counter() - t) * 1000)
            except grpc.aio.AioRpcError as e:
                probe_errors[e.code().name] += 1
            await asyncio.sleep(0.2)
        await watching
    late_ms.sort()
    probe_ms.sort()
    print(f"  streams: {dict(streams_ok)}")
    print(
        f"  end state seen after the run ended ({len(late_ms)} runs that ended while watched): "
        + ", ".join(f"p{int(q * 100)} {percentile(late_ms, q):.0f} ms" for q in (0.5, 0.9, 0.99))
    )
    print(
        f"  GetRun meanwhile ({len(probe_ms)} probes): "
        + ", ".join(f"p{int(q * 100)} {percentile(probe_ms, q):.1f} ms" for q in (0.5, 0.9, 0.99))
        + f", errors {dict(probe_errors) or 0}; {uptime()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="scenario", required=True)
    r = sub.add_parser("reads")
    add_read_args(r)
    r.add_argument("--frames", type=int, default=48, help="frames per video of the 4 busy runs")
    r.add_argument("--staged", type=int, default=12, help="runs per busy dataset at most")
    r.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="the whole scenario this many times, each on a fresh stack; the verdicts are listed at the end",
    )
    r.add_argument(
        "--embedder-nice",
        help="passed to datapool up (the embedders' lower CPU priority, idle or 0..19; default: its own)",
    )
    r.add_argument(
        "--selection-nice",
        help="passed to datapool up (the selector's lower CPU priority for Select, idle or 0..19; "
        "default: its own)",
    )
    s = sub.add_parser("schedule")
    s.add_argument("--runs", type=int, default=200)
    s.add_argument("--minutes", type=float, default=10.0)
    w = sub.add_parser("watch")
    w.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    scenario = {"reads": reads, "schedule": schedule, "watch": watch}[args.scenario]
    up_args: tuple[str, ...] = ()
    for flag in ("embedder_nice", "selection_nice"):
        if (nice := getattr(args, flag, None)) is not None:
            up_args += ("--" + flag.replace("_", "-"), str(nice))
    verdicts: list[str] = []
    for _ in range(getattr(args, "repeat", 1)):
        with (
            tempfile.TemporaryDirectory(prefix="datapool-load-") as tmp,
            stack(Path(tmp), up_args) as running,
        ):
            if (decided := asyncio.run(scenario(running, Path(tmp), args))) is not None:
                verdicts.append(decided)
    if len(verdicts) > 1:
        met = sum(v.split(";")[0].endswith(": MET") for v in verdicts)  # not "NOT MET"
        print(f"DECIDES in {met} of {len(verdicts)} runs:" + "".join(f"\n  {v}" for v in verdicts))
    if REFUSED:
        print(f"ScheduleRun refused {sum(REFUSED.values())} times (deliberate), e.g. {next(iter(REFUSED))}")


if __name__ == "__main__":
    main()
