"""Read load from `ghz` (a Go gRPC load generator), for the figures of `scenarios.py reads`.

Why ghz for the read figures: "p99 < 50 ms at 500 RPS" is measured with an open loop, calls sent
at fixed times whatever the answers, and ghz does that (`--rps` with `--async`) from its own
process with Go's threads. The Python harness (harness.py) can do it too, but its timers and its
latency clock run on one Python event loop that shares the 2 cores and a GIL with its own gRPC
work: on a loaded machine it sends late and measures its own lag as the server's. Per call the
two cost about the same CPU (0.4-0.7 ms for ghz, 0.4-0.8 for the harness, on this machine; each
run prints it), so neither starves the scheduler more than the other.

Each method gets its own ghz process with its share of the clients (one connection each, as
separate clients would have) and of the rate, all at once; their per-call records are merged
into one `LoadResult`. ghz is built from the Go module proxy into `.tools/bin` on first use.

ghz runs at a raised CPU priority where allowed (`scenarios.py reads --generator-nice`, default
-10): users' clients run on machines of their own, and on the 2 shared cores ghz's own wait for a
core to send a call or read its answer would count as the server's latency. It still takes its
CPU from the same 2 cores (printed as `load generator`).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import subprocess
import sys
from pathlib import Path

from harness import REFUSALS, LoadResult, MethodStats

ROOT = Path(__file__).resolve().parents[2]
GHZ_MODULE = "github.com/bojand/ghz/cmd/ghz@v0.93.0"
PROTO = "datapool/v1/scheduler.proto"
SERVICE = "datapool.v1.Scheduler"
# ghz names status codes in CamelCase ("ResourceExhausted"); the harness's refusals, so named.
_CUT_AT_END = "transport is closing"
_REFUSED = {"".join(w.capitalize() for w in c.name.split("_")) for c in REFUSALS}


def ghz_binary() -> str | None:
    """`.tools/bin/ghz`, else ghz on PATH, else built there with `go install` (None: no Go)."""
    local = ROOT / ".tools" / "bin" / "ghz"
    if local.exists():
        return str(local)
    found = shutil.which("ghz")
    if found:
        return found
    go = shutil.which("go")
    if go is None:
        return None
    print(f"building ghz into {local.parent} (go install {GHZ_MODULE}; once, about a minute)")
    env = {**os.environ, "GOBIN": str(local.parent)}
    subprocess.run([go, "install", GHZ_MODULE], check=True, env=env)
    return str(local)


def allowed_nice(requested: int) -> int:
    """`requested` if this user may run a process at that priority, else 0: below 0 needs root or
    CAP_SYS_NICE. Tried in a child, since a process cannot raise its own priority back."""
    if requested == 0:
        return 0
    probe = f"import os; os.setpriority(os.PRIO_PROCESS, 0, {requested})"
    return (
        requested if subprocess.run([sys.executable, "-c", probe], capture_output=True).returncode == 0 else 0
    )


def _share(total: float, parts: int, index: int) -> float:
    """Part `index` of `total` split over `parts` as evenly as whole numbers allow."""
    return total // parts + (1 if index < total % parts else 0)


async def ghz_load(
    binary: str,
    address: str,
    token: str,
    calls: dict[str, dict[str, str]],
    clients: int,
    duration_s: float,
    rate: float | None,
    nice: int = 0,
) -> tuple[LoadResult, float]:
    """`calls`: method name -> its request as JSON fields. `rate` None: closed loop (each client
    waits for its answer, as fast as the server goes). `nice`: ghz's CPU priority (`allowed_nice`).
    Returns the result and ghz's CPU seconds."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)

    async def one(index: int, method: str, request: dict[str, str]) -> tuple[str, dict[str, object]]:
        workers = int(max(1, _share(clients, len(calls), index)))
        argv = [
            binary,
            "--insecure",
            *("--import-paths", str(ROOT / "protos"), "--proto", PROTO),
            *("--call", f"{SERVICE}.{method}", "-d", json.dumps(request)),
            *("--metadata", json.dumps({"authorization": f"Bearer {token}"})),
            *("-c", str(workers), "--connections", str(workers), "-t", "10s", "-O", "json"),
        ]
        if rate is None:
            argv += ["-z", f"{duration_s}s"]
        else:
            # A call count, not a duration: at the end of `-z` ghz closes its connections under the
            # calls still in flight (UNAVAILABLE "transport is closing"), and those are the slowest.
            method_rate = int(max(1, _share(rate, len(calls), index)))
            argv += ["--rps", str(method_rate), "--async", "-n", str(int(method_rate * duration_s))]
        # Through nice(1), not a preexec_fn: Python code between fork and exec in a process with
        # gRPC's threads once aborted the child (gRPC's fork handlers, "epoll_wait: Bad file descriptor").
        niced = ["nice", "-n", str(nice)] if nice else []
        proc = await asyncio.create_subprocess_exec(
            *niced, *argv, address, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        out, err = await proc.communicate()
        if proc.returncode != 0 and not out:
            raise RuntimeError(f"ghz {method} failed ({proc.returncode}): {err.decode()[-2000:]}")
        return method, json.loads(out)

    reports = await asyncio.gather(*(one(i, m, r) for i, (m, r) in enumerate(calls.items())))
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    stats: dict[str, MethodStats] = {}
    seconds = 0.0
    cut = 0
    for method, report in reports:
        s = stats[method] = MethodStats()
        seconds = max(seconds, float(report["total"]) / 1e9)  # type: ignore[arg-type]
        for record in report.get("details") or []:  # type: ignore[attr-defined]
            if record["status"] == "OK":
                s.latencies_s.append(record["latency"] / 1e9)
            elif record["status"] in _REFUSED:
                s.refused += 1
            elif rate is None and _CUT_AT_END in record["error"]:
                cut += 1  # ghz's own end of a closed loop (at most one call a client), not the server's
            else:
                s.errors[record["status"]] += 1
    return LoadResult(seconds or duration_s, stats, cut_at_end=cut), cpu
