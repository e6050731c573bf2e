"""What a read measurement says about the scheduler's insides: its event loop's lag and its garbage
collector's pauses (from its Prometheus metrics, services/common/loop_lag.py), and optionally a
py-spy profile of it while the load runs.

Why: on a shared 2-core machine the latencies move with everyone else's load, while the loop's lag
and the collector's pauses name the mechanism (a loop that stalls, a collector that stops it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import subprocess
import sys
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def metrics_url(state_dir: Path, service: str) -> str | None:
    """The service's /metrics URL as `datapool up` recorded it (None when it has none)."""
    path = state_dir / "metrics.json"
    if not path.exists():
        return None
    url = json.loads(path.read_text()).get(service)
    return str(url) if url else None


def scrape(url: str | None) -> Scrape:
    if url is None:
        return {}
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out: Scrape = {}
    for family in text_string_to_metric_families(text):
        if not family.name.startswith(("datapool_event_loop_lag", "datapool_gc_pause")):
            continue
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _buckets(delta: Scrape, name: str, match: dict[str, str]) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of histogram `name` whose labels include `match`."""
    rows = []
    for (metric, labels), value in delta.items():
        d = dict(labels)
        if metric == f"{name}_bucket" and all(d.get(k) == v for k, v in match.items()):
            rows.append((float(d["le"]), value))
    return sorted(rows)


def _summary(delta: Scrape, name: str, match: dict[str, str], unit: str) -> str:
    rows = _buckets(delta, name, match)
    if not rows or rows[-1][1] == 0:
        return "none"
    total = rows[-1][1]
    # The smallest bucket bound that 99% / all of the observations were below.
    p99 = next(le for le, n in rows if n >= 0.99 * total)
    worst = next(le for le, n in rows if n >= total)
    over_50 = total - next(n for le, n in rows if le >= 0.05)
    total_s = sum(v for (m, lab), v in delta.items() if m == f"{name}_sum" and set(match.items()) <= set(lab))
    return (
        f"{total:.0f} {unit}, {total_s * 1000:.0f} ms in all, p99 <= {_ms(p99)} ms, "
        f"max <= {_ms(worst)} ms, {over_50:.0f} over 50 ms"
    )


def _ms(bound_s: float) -> str:
    return "inf" if bound_s == float("inf") else f"{bound_s * 1000:g}"


def describe(before: Scrape, after: Scrape) -> str:
    """The loop's lag and the collector's pauses between two scrapes, in one line each."""
    if not after:
        return "event loop lag: no metrics (a scheduler without the loop-lag probe?)"
    delta = {k: v - before.get(k, 0.0) for k, v in after.items()}
    lag = _summary(delta, "datapool_event_loop_lag_seconds", {}, "timers")
    gens = sorted({dict(lab).get("generation", "") for (_m, lab) in delta if dict(lab).get("generation")})
    gc_parts = [
        f"gen{g}: " + _summary(delta, "datapool_gc_pause_seconds", {"generation": g}, "pauses") for g in gens
    ]
    return f"event loop lag (50 ms timer): {lag}\ngc pauses: " + ("; ".join(gc_parts) or "none")


def run_delay_s(pid: int, every_thread: bool = False) -> float:
    """Seconds the process's main thread (the scheduler's event loop), or all its threads together,
    have waited on a CPU run queue, runnable but not running (Linux schedstat): what the machine's
    other processes cost it."""
    paths = (
        Path(f"/proc/{pid}/task").glob("*/schedstat") if every_thread else [Path(f"/proc/{pid}/schedstat")]
    )
    total = 0.0
    for path in paths:
        try:
            total += int(path.read_text().split()[1]) / 1e9
        except (OSError, IndexError, ValueError):
            continue  # a thread that ended meanwhile
    return total


class PySpy(contextlib.AbstractAsyncContextManager["PySpy"]):
    """`py-spy record` on `pid` for `seconds` into `out` (raw collapsed stacks, --gil: only the
    thread that holds the GIL), when py-spy is installed next to this Python or on PATH."""

    def __init__(self, pid: int, seconds: float, out: Path) -> None:
        self.out = out
        local = Path(sys.executable).parent / "py-spy"
        binary = str(local) if local.exists() else shutil.which("py-spy")
        if binary is None:
            raise RuntimeError("--profile needs py-spy: .venv/bin/python -m pip install 'py-spy==0.4.3'")
        self.argv = [
            binary,
            "record",
            *("--pid", str(pid), "--duration", str(int(seconds)), "--rate", "200"),
            *("--format", "raw", "--output", str(out), "--gil", "--threads", "--nonblocking"),
        ]
        self._proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> PySpy:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        self._proc = await asyncio.create_subprocess_exec(
            *self.argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._proc is not None
        await self._proc.wait()
        print(f"py-spy profile of the scheduler: {self.out}")
