"""Benchmark of `selector_rs.select_diverse` against NumPy and faiss baselines (issue 4).

Cases (d = 1280, float32, min_distance 0):

- ``small``: N = 20,000 candidates, P = 1,000 pool rows, 200 picks (a quick smoke run);
- ``target1``: N = 100,000, P = 5,000, 500 picks;
- ``target2``: N = 1,000,000, P = 100,000, 1,000 picks (ours only unless
  ``--with-numpy`` / ``--with-faiss``: a baseline takes tens of minutes there).

Inputs come from `datapool.synthetic_embeddings` (``--data video``: scenes of
near-duplicate frames, pool and candidates sharing some scenes; ``--data uniform``: the
unit sphere) and are cached as .npy in ``--cache-dir`` (default /tmp/datapool-bench), so
only the first run of a case generates them; they are loaded fully into RAM (not
mmapped) before anything is timed.

For each method: the median wall time over ``--repeat`` runs, and its extra memory: the
peak RSS during the call minus the RSS just before it (the high-water mark is reset
through /proc/self/clear_refs; where that is not permitted, a thread samples VmRSS every
5 ms). Our picks are checked with `float64_reference_check` (at target2 against a
random ``--check-sample`` of candidates plus the picks), and the baselines' pick
distances are compared with ours. The last lines are Markdown table rows for the README.

    .venv/bin/pip install -e '.[bench]'         # faiss-cpu
    .venv/bin/python bench/bench_select.py --case small --data video
    .venv/bin/python bench/bench_select.py --case small --data uniform
    .venv/bin/python bench/bench_select.py --case target1 --data video --repeat 3
    .venv/bin/python bench/bench_select.py --case target1 --data uniform --repeat 3
    .venv/bin/python bench/bench_select.py --case target2 --data video
    .venv/bin/python bench/bench_select.py --case target2 --data video --generate-only
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import gc
import os
import platform
import re
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from select_baselines import faiss_select, float64_reference_check, numpy_select

import selector_rs
from datapool.synthetic_embeddings import pool_and_candidates, uniform_sphere

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
MiB = 1 << 20
DIM = 1280
# Bump when datapool.synthetic_embeddings changes its output, to invalidate cached inputs.
GENERATOR_VERSION = 1


@dataclass(frozen=True)
class Case:
    n: int
    p: int
    picks: int
    min_distance: float = 0.0


CASES = {
    "small": Case(n=20_000, p=1_000, picks=200),
    "target1": Case(n=100_000, p=5_000, picks=500),
    "target2": Case(n=1_000_000, p=100_000, picks=1_000),
}


# --- memory ---------------------------------------------------------------------------


def _status_kib(field_name: str) -> int:
    with open("/proc/self/status") as f:
        m = re.search(rf"^{field_name}:\s+(\d+) kB", f.read(), re.MULTILINE)
    assert m, field_name
    return int(m.group(1))


def _trim_heap() -> None:
    """Hands memory freed by earlier runs back to the kernel (glibc), so that a later
    run's allocations show up in RSS instead of reusing pages already counted."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _reset_hwm() -> bool:
    """Resets VmHWM to the current RSS; False where the kernel does not let us."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


class PeakRss:
    """Extra memory of a block: peak RSS during it minus RSS at its start (bytes)."""

    def __init__(self) -> None:
        self.extra = 0
        self.method = ""
        self._stop = threading.Event()
        self._peak = 0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakRss:
        gc.collect()
        _trim_heap()
        self._before = _status_kib("VmRSS")
        if _reset_hwm():
            self.method = "VmHWM after clear_refs"
        else:
            self.method = "VmRSS sampled every 5 ms"
            self._peak = self._before
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self._peak = max(self._peak, _status_kib("VmRSS"))

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, _status_kib("VmRSS"))
        else:
            peak = _status_kib("VmHWM")
        self.extra = max(0, peak - self._before) * 1024


def _busy_seconds() -> float:
    """CPU seconds all processes on the machine have spent busy since boot."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class OtherLoad:
    """Average number of cores that other processes kept busy during a block."""

    def __enter__(self) -> OtherLoad:
        self._t, self._busy, self._own = time.perf_counter(), _busy_seconds(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t
        other = (_busy_seconds() - self._busy) - (time.process_time() - self._own)
        self.cores = max(0.0, other / wall) if wall > 0 else 0.0


# --- inputs ---------------------------------------------------------------------------


def _generate(data: str, case: Case, seed: int) -> tuple[F32, F32]:
    if data != "uniform":
        return pool_and_candidates(case.p, case.n, DIM, seed, shape=data)
    return uniform_sphere(case.p, DIM, 2 * seed), uniform_sphere(case.n, DIM, 2 * seed + 1)


def load_inputs(data: str, case: Case, seed: int, cache: Path) -> tuple[F32, F32, float | None]:
    """(pool, candidates, generation seconds or None when read from the cache)."""
    stem = f"{data}-n{case.n}-p{case.p}-d{DIM}-seed{seed}-v{GENERATOR_VERSION}"
    paths = cache / f"{stem}-pool.npy", cache / f"{stem}-cands.npy"
    if all(p.exists() for p in paths):
        pool, cands = (np.load(p) for p in paths)  # read into RAM, not mmapped
        return np.ascontiguousarray(pool), np.ascontiguousarray(cands), None
    t0 = time.perf_counter()
    pool, cands = _generate(data, case, seed)
    seconds = time.perf_counter() - t0
    cache.mkdir(parents=True, exist_ok=True)
    for path, arr in zip(paths, (pool, cands), strict=True):
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, arr)
        tmp.replace(path)
    return pool, cands, seconds


# --- machine --------------------------------------------------------------------------


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE)
        model = m.group(1).strip() if m else platform.processor()
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores"


def blas_name() -> str:
    cfg = np.show_config(mode="dicts")
    try:
        blas = cfg["Build Dependencies"]["blas"]
        return f"{blas['name']} {blas['version']}"
    except (KeyError, TypeError):
        return "unknown"


# --- running --------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    seconds: list[float] = field(default_factory=list)
    extra_bytes: int = 0
    other_load: float = 0.0  # the most cores other processes kept busy during a run
    picks: I64 | None = None
    distances: npt.NDArray[np.float64] | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def run_method(
    name: str,
    fn: Callable[[dict[str, float]], tuple[I64, npt.NDArray[np.float64] | None]],
    repeat: int,
) -> Result:
    result = Result(name)
    for r in range(repeat):
        time.sleep(0.3)  # let the previous library's idle threads go to sleep
        phases: dict[str, float] = {}
        with OtherLoad() as load, PeakRss() as mem:
            t0 = time.perf_counter()
            picks, dists = fn(phases)
            seconds = time.perf_counter() - t0
        result.seconds.append(seconds)
        result.extra_bytes = max(result.extra_bytes, mem.extra)
        result.other_load = max(result.other_load, load.cores)
        result.picks, result.distances = picks, dists
        split = ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
        print(
            f"  {name:6s} run {r + 1}/{repeat}: {seconds:8.3f} s{f' ({split})' if split else ''}, "
            f"{len(picks)} picks, extra memory {mem.extra / MiB:.1f} MiB ({mem.method}), "
            f"other processes busy {load.cores:.2f} cores",
            flush=True,
        )
    return result


def agreement(ours: npt.NDArray[np.float64], other: Result) -> str:
    assert other.distances is not None and other.picks is not None
    if other.distances.shape != ours.shape:
        return f"{other.name}: {len(other.distances)} picks vs our {len(ours)}"
    finite = np.isfinite(ours) & np.isfinite(other.distances)
    diff = float(np.abs(ours[finite] - other.distances[finite]).max()) if finite.any() else 0.0
    return f"{other.name}: max |pick distance - ours| = {diff:.2e}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", choices=sorted(CASES), default="small")
    parser.add_argument("--data", choices=["video", "rough", "hard", "uniform"], default="video")
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the median is reported")
    parser.add_argument("--no-faiss", action="store_true", help="skip the faiss baseline")
    parser.add_argument("--no-numpy", action="store_true", help="skip the NumPy baseline")
    parser.add_argument("--with-numpy", action="store_true", help="run the NumPy baseline at target2 too")
    parser.add_argument("--with-faiss", action="store_true", help="run the faiss baseline at target2 too")
    parser.add_argument("--no-check", action="store_true", help="skip the float64 check of our picks")
    parser.add_argument(
        "--check-sample",
        type=int,
        default=5_000,
        help="at target2, candidates (besides the picks) the float64 check compares; 0 skips it",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/datapool-bench"))
    parser.add_argument("--generate-only", action="store_true", help="make (or load) the inputs and stop")
    args = parser.parse_args()

    case = CASES[args.case]
    big = args.case == "target2"
    print(f"machine: {machine()}; os.cpu_count() = {os.cpu_count()} threads")
    print(
        f"selector_rs {selector_rs.__version__} (kernel {getattr(selector_rs, 'kernel', 'unknown')}); "
        f"numpy {np.__version__} ({blas_name()}); "
        f"faiss {faiss.__version__}; python {platform.python_version()}"
    )
    print(
        f"case {args.case}: N = {case.n:,} x d = {DIM}, P = {case.p:,}, {case.picks} picks, "
        f"min_distance {case.min_distance}, data {args.data}, seed {args.seed}"
    )

    t0 = time.perf_counter()
    pool, cands, gen_seconds = load_inputs(args.data, case, args.seed, args.cache_dir)
    how = f"generated in {gen_seconds:.1f} s" if gen_seconds is not None else "loaded from cache"
    print(
        f"inputs {how} ({time.perf_counter() - t0:.1f} s in all): candidates {cands.nbytes / MiB:,.0f} MiB, "
        f"pool {pool.nbytes / MiB:,.0f} MiB; RSS now {_status_kib('VmRSS') / 1024:,.0f} MiB"
    )
    if args.generate_only:
        return

    n, md = case.picks, case.min_distance
    results: dict[str, Result] = {}
    results["ours"] = run_method(
        "ours", lambda _: (selector_rs.select_diverse(cands, pool, n, md), None), args.repeat
    )
    if not args.no_numpy and (not big or args.with_numpy):
        results["numpy"] = run_method(
            "numpy", lambda ph: numpy_select(cands, pool, n, md, phases=ph), args.repeat
        )
    if not args.no_faiss and (not big or args.with_faiss):
        results["faiss"] = run_method(
            "faiss", lambda ph: faiss_select(cands, pool, n, md, phases=ph), args.repeat
        )

    ours = results["ours"]
    assert ours.picks is not None
    check = "not checked"
    if not args.no_check and not (big and args.check_sample <= 0):
        subset = None
        if big:
            rng = np.random.default_rng(args.seed)
            subset = np.sort(rng.choice(case.n, size=min(args.check_sample, case.n), replace=False))
        ref = float64_reference_check(cands, pool, ours.picks, md, budget=n, subset=subset)
        scope = "all candidates" if subset is None else f"{ref.rows_checked:,} sampled candidates and picks"
        check = f"{'PASS' if ref.ok else 'FAIL'} (worst {ref.worst:.1e})"
        print(
            f"float64 check of our picks against {scope}: {check}, worst violation {ref.worst:.2e} "
            f"at step {ref.worst_step}, {ref.seconds:.1f} s"
        )
        if len(ref.pick_distances):
            pd = ref.pick_distances
            print(f"  our pick distances: first {pd[0]:.4f}, median {np.median(pd):.4f}, last {pd[-1]:.4f}")
        for other in results.values():
            if other.name != "ours":
                print("  " + agreement(ref.pick_distances, other))
        if not ref.ok:
            print("WARNING: our picks violate the greedy rule beyond the tolerance", file=sys.stderr)

    cand_mib = cands.nbytes / MiB
    print()
    print("method  median s    best s   baseline/ours   extra memory")
    for r in results.values():
        print(
            f"{r.name:6s} {r.median:9.3f} {min(r.seconds):9.3f} {r.median / ours.median:12.1f}x   "
            f"{r.extra_bytes / MiB:8.1f} MiB ({100 * r.extra_bytes / MiB / cand_mib:.1f}% of candidates)"
        )
    busiest = max(r.other_load for r in results.values())
    if busiest > 0.2:
        print(
            f"WARNING: other processes kept up to {busiest:.1f} of {os.cpu_count()} cores busy "
            "during the runs; the times are not clean",
            file=sys.stderr,
        )

    def cell(name: str) -> str:
        return f"{results[name].median:.2f}" if name in results else "-"

    def ratio(name: str) -> str:
        return f"{results[name].median / ours.median:.1f}x" if name in results else "-"

    print()
    print(
        "| machine | case | data | N x d | P | picks | numpy s | faiss s | ours s | numpy/ours | faiss/ours "
        "| ours extra memory | check |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print(
        f"| {machine()} | {args.case} | {args.data} | {case.n:,} x {DIM} | {case.p:,} | {n} "
        f"| {cell('numpy')} | {cell('faiss')} | {cell('ours')} | {ratio('numpy')} | {ratio('faiss')} "
        f"| {ours.extra_bytes / MiB:.0f} MiB ({100 * ours.extra_bytes / MiB / cand_mib:.1f}%) | {check} |"
    )


if __name__ == "__main__":
    main()
