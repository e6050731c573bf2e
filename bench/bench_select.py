"""Benchmark of `selector_rs.select_diverse` against NumPy/BLAS, faiss and lightly-mundig (issue 11).

Cases (d = 1280, float32, min_distance 0): ``n1k`` N = 1,000 candidates, P = 100 pool rows,
100 picks; ``n2k`` 2,000 / 200 / 100; ``n5k`` 5,000 / 500 / 200; ``n10k`` 10,000 / 1,000 / 200;
``small`` 20,000 / 1,000 / 200; ``target1`` 100,000 /
5,000 / 500; ``target2`` 1,000,000 / 100,000 / 1,000 (ours only unless ``--with-big numpy`` etc.:
a baseline's pool pass alone is 2.6e14 flops there, an hour or more on 2 cores, so it runs on the
first ``--big-rows`` candidates (default 20,000) against the whole pool, and its time is scaled by
N / big-rows, which holds because both its pool pass and its per-pick updates are linear in N; such
cells read "~T (est.)" and their picks are not compared with ours). ``--subset lightly=20000`` does
the same for one baseline at any size (lightly-mundig takes ~800 s a shape at target1).

Shapes (``--data``, several at once, or ``all``), from `tests/synthetic_embeddings.py`:
``video`` (smooth: slow near-duplicate frames), ``rough`` (calibrated to real EfficientNet-Lite0
features, bench/real_features.py), ``hard`` (rough frames in short scenes that overlap their
neighbours), ``uniform`` (the unit sphere). Inputs are cached as .npy in ``--cache-dir``
(default /tmp/datapool-bench) and loaded fully into RAM before anything is timed.

Seeds: figures to report come from a seed never used in development. Without ``--seed`` a
fresh one is drawn and printed; pass it again to reproduce the run (and reuse its cached
inputs). Development used ``--seed 0`` (DEV_SEED); the tests use their own small seeds.

For each method: the median wall time over ``--repeat`` runs, its extra memory (bench_measure),
the cores other processes kept busy meanwhile and the 1-minute load average before and after it
(the machine may be shared; ratios are only taken within one run of this script). Every pick
of ours is checked in float64 (at target2 against a random ``--check-sample`` of candidates
plus the picks: a full float64 pass there would be the baselines' hour again), and so is the
stopping rule (from 100,000 candidates on against that sample): ours runs again with a
min_distance between the distances of two picks near the middle and must stop exactly there.
Each baseline's picks are compared with ours, and checked in float64 where they differ. The
last lines are Markdown table rows for the README.

    .venv/bin/pip install -e '.[bench]'         # faiss-cpu, lightly-mundig, threadpoolctl
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_select.py --case target1 \\
        --data all
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE .venv/bin/python bench/bench_select.py --case target2 \\
        --data video rough --seed S        # generates ~5.6 GB per shape once, cached in /tmp
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import os
import platform
import secrets
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
# The float64 reference of the greedy rule lives with the tests, which judge selections with it.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench_measure import MiB, Result, blas_report, machine, run_interleaved, run_method, status_kib
from greedy_reference import float64_reference_check, pick_distances64
from select_baselines import agreement, faiss_select, lightly_select, numpy_select
from synthetic_embeddings import ROUGH, pool_and_candidates, uniform_sphere

import selector_rs

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]
DIM = 1280
DEV_SEED = 0
# Bump when synthetic_embeddings (tests/) changes its output, to invalidate cached inputs
# (the rough and hard shapes also key their cache on their fitted parameters).
GENERATOR_VERSION = 1
SHAPES = ("video", "rough", "hard", "uniform")
BASELINES = ("numpy", "faiss", "lightly")
# From this many candidates on, the stopping-rule check and the checks of a baseline's picks
# compare a sample of candidates plus the picks (ours are always checked against all below 1M).
SAMPLE_CHECKS_FROM = 100_000


@dataclass(frozen=True)
class Case:
    n: int
    p: int
    picks: int
    min_distance: float = 0.0

    @property
    def big(self) -> bool:
        return self.n >= 1_000_000


CASES = {
    "n1k": Case(n=1_000, p=100, picks=100),
    "n2k": Case(n=2_000, p=200, picks=100),
    "n5k": Case(n=5_000, p=500, picks=200),
    "n10k": Case(n=10_000, p=1_000, picks=200),
    "small": Case(n=20_000, p=1_000, picks=200),
    "target1": Case(n=100_000, p=5_000, picks=500),
    "target2": Case(n=1_000_000, p=100_000, picks=1_000),
}


def _generate(data: str, case: Case, seed: int) -> tuple[F32, F32]:
    if data != "uniform":
        return pool_and_candidates(case.p, case.n, DIM, seed, shape=data)
    return uniform_sphere(case.p, DIM, 2 * seed), uniform_sphere(case.n, DIM, 2 * seed + 1)


def load_inputs(data: str, case: Case, seed: int, cache: Path) -> tuple[F32, F32, float | None]:
    """(pool, candidates, generation seconds or None when read from the cache)."""
    version = f"v{GENERATOR_VERSION}"
    if data in ("rough", "hard"):
        version += "-" + hashlib.sha256(repr(ROUGH).encode()).hexdigest()[:8]
    stem = f"{data}-n{case.n}-p{case.p}-d{DIM}-seed{seed}-{version}"
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


def sampled(case: Case, seed: int, sample: int) -> I64:
    """The candidates a sampled float64 check compares (besides the picks)."""
    rng = np.random.default_rng(seed)
    out: I64 = np.sort(rng.choice(case.n, size=min(sample, case.n), replace=False))
    return out


def check_ours(
    cands: F32, pool: F32, case: Case, seed: int, sample: int, ours: Result, stop_check: bool = True
) -> tuple[str, npt.NDArray[np.float64]]:
    """The float64 check of every pick, then of the stopping rule; (summary, our pick distances)."""
    assert ours.picks is not None
    subset = sampled(case, seed, sample) if case.big else None
    ref = float64_reference_check(
        cands, pool, ours.picks, case.min_distance, budget=case.picks, subset=subset
    )
    scope = "all candidates" if subset is None else f"{ref.rows_checked:,} sampled candidates and picks"
    picks_ok = f"{'PASS' if ref.ok else 'FAIL'} (worst {ref.worst:.1e})"
    print(f"float64 check of our {len(ours.picks)} picks against {scope}: {picks_ok}, {ref.seconds:.1f} s")
    pd = ref.pick_distances
    if len(pd):
        print(f"  our pick distances: first {pd[0]:.4f}, median {np.median(pd):.4f}, last {pd[-1]:.4f}")
    if len(pd) < 4 or not stop_check:
        return picks_ok, pd
    # The stopping rule: a min_distance between two picks' D near the middle, away from both
    # (no tie within float32 error), must stop the selection exactly there.
    gaps = np.nonzero(pd[:-1] - pd[1:] > 1e-4)[0] + 1  # steps whose pick is clearly below the last
    if not len(gaps):
        return picks_ok, pd
    expect = int(gaps[np.argmin(np.abs(gaps - len(pd) // 2))])
    md = float(pd[expect - 1] + pd[expect]) / 2
    t0 = time.perf_counter()
    stopped = selector_rs.select_diverse(cands, pool, case.picks, md)
    seconds = time.perf_counter() - t0
    # The second full pass costs as much as the first: from 100,000 rows on, a sample will do.
    stop_subset = sampled(case, seed, sample) if case.n >= SAMPLE_CHECKS_FROM else None
    stop = float64_reference_check(cands, pool, stopped, md, budget=case.picks, subset=stop_subset)
    stop_ok = stop.ok and len(stopped) == expect
    print(
        f"stopping rule: min_distance {md:.4f} -> {len(stopped)} picks in {seconds:.2f} s "
        f"(expected {expect}); float64: {'PASS' if stop_ok else 'FAIL'} (worst {stop.worst:.1e})"
    )
    return f"{picks_ok}; stop {'PASS' if stop_ok else 'FAIL'}", pd


def _loadavg() -> float:
    return os.getloadavg()[0]


def run_shape(data: str, case: Case, args: argparse.Namespace) -> list[str]:
    """Runs every method on one shape; returns its Markdown table row."""
    t0 = time.perf_counter()
    pool, cands, gen_seconds = load_inputs(data, case, args.seed, args.cache_dir)
    how = f"generated in {gen_seconds:.1f} s" if gen_seconds is not None else "loaded from cache"
    print(
        f"\n=== {args.case}, {data}: inputs {how} ({time.perf_counter() - t0:.1f} s in all): candidates "
        f"{cands.nbytes / MiB:,.0f} MiB, pool {pool.nbytes / MiB:,.0f} MiB; "
        f"RSS {status_kib('VmRSS') / 1024:,.0f} MiB"
    )
    if args.generate_only:
        return []
    n, md = case.picks, case.min_distance
    # A baseline may see the first rows only (see the docstring); its time is scaled up.
    subset = dict(item.split("=") for item in args.subset)
    rows = {b: int(subset.get(b, args.big_rows if case.big else case.n)) for b in BASELINES}
    scales = {"ours": 1.0} | {b: case.n / min(case.n, r) for b, r in rows.items()}
    fns = {
        "ours": lambda _: (selector_rs.select_diverse(cands, pool, n, md), None),
        "numpy": lambda ph: numpy_select(cands[: rows["numpy"]], pool, n, md, phases=ph),
        "faiss": lambda ph: faiss_select(cands[: rows["faiss"]], pool, n, md, phases=ph),
        "lightly": lambda ph: lightly_select(cands[: rows["lightly"]], pool, n, md, phases=ph),
    }
    wanted = ["ours"] + [b for b in BASELINES if b in args.baselines and (not case.big or b in args.with_big)]
    before, results, load = _loadavg(), {}, {}
    if args.interleave:
        results = run_interleaved({name: fns[name] for name in wanted}, args.repeat, args.interleave)
        load = dict.fromkeys(wanted, (before, _loadavg()))
    for name in wanted if not args.interleave else []:
        before = _loadavg()
        results[name] = run_method(name, fns[name], args.repeat)
        load[name] = (before, _loadavg())
    for name in wanted:
        if scales[name] != 1:
            results[name].seconds = [t * scales[name] for t in results[name].seconds]
            print(f"  {name}: on {rows[name]:,} candidates; time scaled by {scales[name]:g} (estimate)")
    ours = results["ours"]
    assert ours.picks is not None
    check, ours_d = (
        ("not checked", np.empty(0))
        if args.no_check
        else check_ours(cands, pool, case, args.seed, args.check_sample, ours, not args.no_stop_check)
    )
    for other in results.values():
        if other.name == "ours" or args.no_check or other.picks is None or scales[other.name] != 1:
            continue
        if other.distances is None:
            other.distances = pick_distances64(cands, pool, other.picks)
        print("  " + agreement(ours.picks, ours_d, other))
        if not np.array_equal(ours.picks, other.picks) and not case.big:
            # Picks that part at a near-tie are fine if the other sequence obeys the rule too.
            sub = sampled(case, args.seed, args.check_sample) if case.n >= SAMPLE_CHECKS_FROM else None
            theirs = float64_reference_check(cands, pool, other.picks, md, budget=n, subset=sub)
            print(f"    its picks in float64: {'PASS' if theirs.ok else 'FAIL'} (worst {theirs.worst:.1e})")

    cand_mib = cands.nbytes / MiB
    print(
        "method   median s    best s   baseline/ours   extra memory          other processes busy   load avg"
    )
    for r in results.values():
        est = " (est.)" if scales[r.name] != 1 else ""
        print(
            f"{r.name:7s} {r.median:9.3f} {min(r.seconds):9.3f} {r.median / ours.median:12.1f}x   "
            f"{r.extra_bytes / MiB:8.1f} MiB ({100 * r.extra_bytes / MiB / cand_mib:5.1f}%)   "
            f"up to {r.other_load:.1f} of {os.cpu_count()} cores   "
            f"{load[r.name][0]:.1f} -> {load[r.name][1]:.1f}{est}"
        )

    def cell(name: str) -> str:
        if name not in results:
            return "—"
        t = results[name].median
        return f"{t:.2f}" if scales[name] == 1 else f"~{t:,.0f} (est.)" if t >= 100 else f"~{t:.3g} (est.)"

    def ratio(name: str) -> str:
        if name not in results:
            return "—"
        return f"{'~' if scales[name] != 1 else ''}{results[name].median / ours.median:.1f}x"

    busy = max(r.other_load for r in results.values())
    loads = [v for pair in load.values() for v in pair]
    return [
        f"| {args.case} | {data} | {case.n:,} x {DIM} | {case.p:,} | {n} | {cell('numpy')} | {cell('faiss')} "
        f"| {cell('lightly')} | {cell('ours')} | {ratio('numpy')} | {ratio('faiss')} | {ratio('lightly')} "
        f"| {ours.extra_bytes / MiB:.0f} MiB ({100 * ours.extra_bytes / MiB / cand_mib:.1f}%) | {check} "
        f"| {busy:.1f} | {min(loads):.1f}-{max(loads):.1f} |"
    ]


def _installed_at(path: str | None) -> str:
    """When the extension was installed: the selector is rebuilt often, say which build ran."""
    if not path:
        return "unknown"
    stamp = time.gmtime(Path(path).stat().st_mtime)
    return time.strftime("%Y-%m-%d %H:%M UTC", stamp)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--case", choices=list(CASES), default="small")
    parser.add_argument("--data", nargs="+", choices=[*SHAPES, "all"], default=["video"])
    parser.add_argument("--repeat", type=int, default=1, help="runs per method; the median is reported")
    parser.add_argument(
        "--baselines", nargs="*", choices=BASELINES, default=list(BASELINES), help="baselines to run"
    )
    parser.add_argument(
        "--with-big", nargs="*", choices=BASELINES, default=[], help="baselines to run at target2 too"
    )
    parser.add_argument("--no-check", action="store_true", help="skip the float64 checks")
    parser.add_argument(
        "--no-stop-check", action="store_true", help="skip the stopping-rule run (a second selection)"
    )
    parser.add_argument(
        "--big-rows",
        type=int,
        default=20_000,
        help="at target2, candidates a --with-big baseline runs on (its time is scaled up)",
    )
    parser.add_argument(
        "--subset",
        action="append",
        default=[],
        metavar="BASELINE=ROWS",
        help="run a baseline on the first ROWS candidates and scale its time (an estimate)",
    )
    parser.add_argument(
        "--check-sample", type=int, default=5_000, help="at target2, candidates (besides the picks) checked"
    )
    # Methods in turn, each sample the mean of calls back to back filling SECONDS (small cases).
    parser.add_argument("--interleave", type=float, metavar="SECONDS", help="see run_interleaved")
    parser.add_argument("--seed", type=int, help="input seed (default: a fresh one, printed)")
    parser.add_argument("--cache-dir", type=Path, default=Path("/tmp/datapool-bench"))
    parser.add_argument("--generate-only", action="store_true", help="make (or load) the inputs and stop")
    args = parser.parse_args()
    if args.seed is None:
        args.seed = DEV_SEED + 1 + secrets.randbelow(2**31 - 2)
        print(f"seed {args.seed} (fresh; rerun with --seed {args.seed} to reproduce)")
    elif args.seed == DEV_SEED:
        print(f"seed {DEV_SEED}: the development seed; do not report these figures")
    case = CASES[args.case]
    shapes = list(SHAPES) if "all" in args.data else args.data
    print(f"machine: {machine()}; os.cpu_count() = {os.cpu_count()} threads")
    print(
        f"selector_rs {selector_rs.__version__} (kernel {getattr(selector_rs, 'kernel', 'unknown')}, "
        f"installed {_installed_at(selector_rs.__file__)}, from {Path(selector_rs.__file__ or '?').parent}); "
        f"numpy {np.__version__} (BLAS: {blas_report()}); faiss {faiss.__version__}; "
        f"lightly-mundig {importlib.metadata.version('lightly-mundig')}; "
        f"python {platform.python_version()}"
    )
    print(
        f"case {args.case}: N = {case.n:,} x d = {DIM}, P = {case.p:,}, {case.picks} picks, "
        f"min_distance {case.min_distance}, shapes {', '.join(shapes)}, seed {args.seed}"
    )
    rows = [row for data in shapes for row in run_shape(data, case, args)]
    if rows:
        print(f"\nmachine: {machine()}; seed {args.seed}")
        print(
            "| case | shape | N x d | P | picks | NumPy/BLAS s | faiss s | lightly-mundig s | ours s "
            "| NumPy/ours | faiss/ours | lightly/ours | ours extra memory | float64 check "
            "| other load (cores) | load avg (1 min) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(rows))


if __name__ == "__main__":
    main()
