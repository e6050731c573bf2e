"""Do short run leases hold on a loaded machine? The heartbeat's renewals timed under CPU load.

Two scheduler replicas' run managers (services.scheduler.runs.RunManager, the real lease keeper
and store) share one real Postgres (tests/postgres_server.py) in this process. Replica A is
given --runs runs (4 execute at once, the rest wait QUEUED); each execution lasts --run-s
seconds and writes its progress every 0.1 s, as a run's stages do. Replica B only takes over
runs whose lease expired. Meanwhile:

- `--busy-procs N` processes spin on a core each (`python -c "while True: pass"`), so the load
  average climbs by about N;
- `--busy-threads N` threads of this process run pure Python, so the heartbeat thread competes
  for the GIL as it does in a scheduler busy answering calls.

Printed: per renewal, the time since the previous renewal's lease was written (it must stay
below the lease, or the lease lapses), its maximum and 99th percentile, how long the beat
waited for the run manager's list of runs, how long the store's UPDATE took; runs that
replica B took over from the live replica A (each one ran twice); and the load average.

    .venv/bin/python bench/bench_lease_load.py --lease-s 2 --busy-procs 9 --busy-threads 4
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from postgres_server import PostgresServer

from datapool.config import parse_run_config
from datapool.run_report import PoolPoint, RunReport
from datapool.storage.locations import local_location
from datapool.v1 import scheduler_pb2
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import MetadataDB
from services.scheduler.runs import RunManager

SELECTION = {
    "n_samples": 1,
    "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
}


class BusyRuns:
    def __init__(self, run_s: float) -> None:
        self.run_s = run_s
        self.executed: Counter[str] = Counter()
        self._lock = threading.Lock()

    def execute(self, spec: Any, observer: Any) -> RunReport:
        with self._lock:
            self.executed[spec.run_id] += 1
        observer.set_state(scheduler_pb2.EMBEDDING, "embedding")
        end = time.monotonic() + self.run_s
        frames = 0
        while time.monotonic() < end:
            frames += 8
            observer.set_progress(frames_embedded=frames)
            time.sleep(0.1)
        return RunReport(spec.run_id, pool_after=PoolPoint(version=1, frames=1))


class Timed:
    """Wraps the keeper's calls: when each renewal started and ended, how long `active` took."""

    def __init__(self, manager: RunManager) -> None:
        keeper = manager._keeper
        self.renewals: list[tuple[float, float]] = []
        self.active_s: list[float] = []
        renew, active = keeper.leases.renew, keeper._active

        def timed_renew(run_ids: Any) -> set[str]:
            t = time.monotonic()
            lost = renew(run_ids)
            if run_ids:
                self.renewals.append((t, time.monotonic()))
            return lost

        def timed_active() -> set[str]:
            t = time.monotonic()
            out = active()
            self.active_s.append(time.monotonic() - t)
            return out

        keeper.leases.renew = timed_renew  # type: ignore[method-assign]
        keeper._active = timed_active


def spin(stop: threading.Event) -> None:
    n = 0
    while not stop.is_set():
        n = (n * 31 + 7) % 1_000_003


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lease-s", type=float, default=2.0)
    parser.add_argument("--runs", type=int, default=12)
    parser.add_argument("--run-s", type=float, default=8.0)
    parser.add_argument("--busy-procs", type=int, default=0)
    parser.add_argument("--busy-threads", type=int, default=0)
    args = parser.parse_args()

    server = PostgresServer.start()
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy_procs)]
    stop = threading.Event()
    spinners = [threading.Thread(target=spin, args=(stop,), daemon=True) for _ in range(args.busy_threads)]
    managers: list[RunManager] = []
    try:
        url = server.new_database()
        db_a, db_b = MetadataDB(url), MetadataDB(url, migrate_schema=False)
        ds = db_a.create_dataset("d", scheduler_pb2.VIDEOS)
        catalog = DatasourceCatalog(db_a, None)
        for purpose, folder in ((scheduler_pb2.INPUT, "in"), (scheduler_pb2.LIGHTLY, "pool")):
            catalog.set(ds.id, purpose, local_location(f"{server.root}/{folder}"), verify=False)
        pipeline = BusyRuns(args.run_s)
        a = RunManager(db_a, pipeline, datasources=catalog, lease_s=args.lease_s)  # type: ignore[arg-type]
        b = RunManager(
            db_b,
            pipeline,  # type: ignore[arg-type]
            datasources=DatasourceCatalog(db_b, None),
            lease_s=args.lease_s,
        )
        managers += [a, b]
        timed = Timed(a)
        time.sleep(2)  # let the busy processes raise the load average a little
        for t in spinners:
            t.start()
        load0 = Path("/proc/loadavg").read_text().split()[0]
        config = parse_run_config({}, SELECTION)
        run_ids = [a.schedule(ds.id, scheduler_pb2.VIDEOS, config).id for _ in range(args.runs)]
        # Runs taken over again and again may never end: the figures are taken at the deadline.
        deadline = time.monotonic() + args.run_s * (args.runs / 4 + 2)
        ended = (scheduler_pb2.COMPLETED, scheduler_pb2.FAILED)
        while not all(db_a.get_run(r).state in ended for r in run_ids) and time.monotonic() < deadline:
            time.sleep(0.2)
        load1 = Path("/proc/loadavg").read_text().split()[0]
        rows = [db_a.get_run(r) for r in run_ids]
    finally:
        stop.set()
        for m in managers:
            m.shutdown()
        for p in procs:
            p.kill()
            p.wait()
        server.close()

    # A renewal writes "expires = its start + lease"; the next must end before that.
    pairs = zip(timed.renewals, timed.renewals[1:], strict=False)
    gaps = [b_end - a_start for (a_start, _), (_, b_end) in pairs]
    updates = [end - start for start, end in timed.renewals]
    gaps.sort()
    p99 = gaps[int(0.99 * (len(gaps) - 1))] if gaps else 0.0
    twice = [r.id for r in rows if r.attempt > 1]
    print(
        f"lease {args.lease_s:.1f} s, {args.busy_procs} busy processes, {args.busy_threads} busy threads, "
        f"load {load0} -> {load1}: {len(timed.renewals)} renewals; time from one renewal's write to the "
        f"next renewal's end: median {statistics.median(gaps):.3f} s, p99 {p99:.3f} s, max {gaps[-1]:.3f} s "
        f"({sum(g > args.lease_s for g in gaps)} past the lease); waiting for the run list: max "
        f"{max(timed.active_s):.3f} s; UPDATE: median {statistics.median(updates):.3f} s, max "
        f"{max(updates):.3f} s; runs taken over from the live replica: {len(twice)} of {len(rows)} "
        f"({sum(r.state == scheduler_pb2.COMPLETED for r in rows)} completed); "
        f"executions {sum(pipeline.executed.values())}"
    )


if __name__ == "__main__":
    main()
