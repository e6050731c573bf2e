"""Measuring one selection call: wall time, extra memory, other processes' load, the machine.

Extra memory: the peak RSS during the call minus the RSS just before it (the high-water mark
is reset through /proc/self/clear_refs; where that is not permitted, a thread samples VmRSS
every 5 ms). Load: the cores other processes kept busy during the call (from /proc/stat),
since this machine may be shared.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import os
import platform
import re
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

I64 = npt.NDArray[np.int64]
MiB = 1 << 20


# --- memory ---------------------------------------------------------------------------


def status_kib(field_name: str) -> int:
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
        self._before = status_kib("VmRSS")
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
            self._peak = max(self._peak, status_kib("VmRSS"))

    def __exit__(self, *exc: object) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            peak = max(self._peak, status_kib("VmRSS"))
        else:
            peak = status_kib("VmHWM")
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


# --- machine --------------------------------------------------------------------------


def machine() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        m = re.search(r"^Model name:\s*(.+)$", out, re.MULTILINE)
        model = m.group(1).strip() if m else platform.processor()
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor() or "unknown CPU"
    return f"{model}, {os.cpu_count()} cores"


BLAS_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_report() -> str:
    """The BLAS NumPy runs, as threadpoolctl sees it loaded: library, kernel, threads.

    OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE force a kernel or a cache size that may not fit the
    CPU (and slow the NumPy baseline); they are reported, and benchmark runs unset them.
    """
    from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

    libs = [
        f"{i.get('prefix')}: {i.get('internal_api')} {i.get('version')} kernel {i.get('architecture')}, "
        f"{i.get('num_threads')} threads"
        for i in threadpool_info()
        if i.get("user_api") == "blas"
    ]
    forced = [f"{k}={os.environ[k]}" for k in BLAS_ENV if k in os.environ]
    return "; ".join(libs or ["no BLAS found"]) + (f" (FORCED by {', '.join(forced)})" if forced else "")


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
        _sample(result, fn, r, repeat, 1)
    return result


def _sample(
    result: Result,
    fn: Callable[[dict[str, float]], tuple[I64, npt.NDArray[np.float64] | None]],
    r: int,
    repeat: int,
    loops: int,
) -> None:
    """One timed sample: `loops` calls back to back, their mean time."""
    phases: dict[str, float] = {}
    with OtherLoad() as load, PeakRss() as mem:
        t0 = time.perf_counter()
        for _ in range(loops):
            picks, dists = fn(phases)
        seconds = (time.perf_counter() - t0) / loops
    result.seconds.append(seconds)
    result.extra_bytes = max(result.extra_bytes, mem.extra)
    result.other_load = max(result.other_load, load.cores)
    result.picks, result.distances = picks, dists
    split = ", ".join(f"{k} {v:.2f} s" for k, v in phases.items())
    each = f" (mean of {loops} back to back)" if loops > 1 else ""
    print(
        f"  {result.name:6s} run {r + 1}/{repeat}: {seconds:8.4f} s{each}{f' ({split})' if split else ''}, "
        f"{len(picks)} picks, extra memory {mem.extra / MiB:.1f} MiB ({mem.method}), "
        f"other processes busy {load.cores:.2f} cores",
        flush=True,
    )


def run_interleaved(
    fns: dict[str, Callable[[dict[str, float]], tuple[I64, npt.NDArray[np.float64] | None]]],
    repeat: int,
    sample_s: float,
) -> dict[str, Result]:
    """Every method in turn, sample by sample, for inputs that take milliseconds.

    A run of one method after the other puts each method in a different stretch of a shared
    machine's load; turn by turn, every method meets the same stretches. Each sample is the
    mean of as many calls back to back as fill `sample_s` (one untimed call first to find
    how many), as `timeit` does, so that a sample is long enough to time: calls of a few
    milliseconds, each after its threads went to sleep, time mostly their waking.
    """
    results = {name: Result(name) for name in fns}
    loops = {}
    for name, fn in fns.items():
        time.sleep(0.3)
        t0 = time.perf_counter()
        fn({})
        loops[name] = max(1, round(sample_s / max(time.perf_counter() - t0, 1e-6)))
    for r in range(repeat):
        for name, fn in fns.items():
            time.sleep(0.3)  # let the previous library's idle threads go to sleep
            _sample(results[name], fn, r, repeat, loops[name])
    return results
