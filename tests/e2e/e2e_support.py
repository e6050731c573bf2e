"""Running `datapool up`, scheduling runs and reading a pool back through the client, for assertions."""

from __future__ import annotations

import contextlib
import csv
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datapool import ApiWorkflowClient


@dataclass
class RunningStack:
    address: str
    token: str
    fault_dir: Path
    state_dir: Path
    proc: subprocess.Popen[str]
    output: list[str]


def pool_embeddings(client: ApiWorkflowClient, tmp: Path) -> dict[str, np.ndarray]:
    path = tmp / f"emb-{len(list(tmp.glob('emb-*')))}.csv"
    client.download_embeddings_csv(str(path))
    with open(path) as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    assert header[0] == "filenames" and header[-1] == "labels"
    assert header[1:-1] == [f"embedding_{i}" for i in range(len(header) - 2)]
    out: dict[str, np.ndarray] = {}
    for row in body:
        assert row[0] not in out, f"frame {row[0]} is in the pool twice"
        out[row[0]] = np.array([float(x) for x in row[1:-1]], dtype=np.float64)
    return out


def selection(min_distance: float, n: int = 100) -> dict[str, Any]:
    return {
        "n_samples": n,
        "strategies": [
            {
                "input": {"type": "EMBEDDINGS"},
                "strategy": {"type": "DIVERSITY", "stopping_condition_minimum_distance": min_distance},
            }
        ],
    }


def run(client: ApiWorkflowClient, worker: dict[str, Any], sel: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    run_id = client.schedule_compute_worker_run(worker_config=worker, selection_config=sel)
    states = [info.state for info in client.compute_worker_run_info_generator(scheduled_run_id=run_id)]
    info = client.get_compute_worker_run_info(run_id)
    assert info.in_end_state()
    assert info.ended_successfully(), info.message
    assert states[-1] == "COMPLETED"
    report = client.download_compute_worker_run_report_json(
        client.get_compute_worker_run_from_scheduled_run(run_id)
    )
    return run_id, report


def processed_paths(report: dict[str, Any]) -> set[str]:
    return {f["path"] for f in report["files"]["processed"]}


def tag_names(client: ApiWorkflowClient, tag: str) -> list[str]:
    text = client.export_filenames_by_tag_name(tag)
    return [n for n in text.split("\n") if n]


def min_cross_distance(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) == 0 or len(b) == 0:
        return float("inf")
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return float(d.min())


def min_pairwise_distance(a: np.ndarray) -> float:
    if len(a) < 2:
        return float("inf")
    d = np.sqrt(((a[:, None, :] - a[None, :, :]) ** 2).sum(-1))
    d[np.diag_indices(len(a))] = np.inf
    return float(d.min())


READY_TIMEOUT_S = 240.0


@contextlib.contextmanager
def running_stack(
    base: Path, token: str, extra_env: dict[str, str] | None = None, args: tuple[str, ...] = ()
) -> Iterator[RunningStack]:
    """`datapool up [args]` as a user runs it; stops it with SIGTERM and checks it stops cleanly and fast."""
    import pytest

    from datapool.stack import free_port

    fault_dir = base / "faults"
    fault_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = dict(os.environ, DATAPOOL_TOKEN=token, DATAPOOL_FAULT_DIR=str(fault_dir), **(extra_env or {}))
    proc = subprocess.Popen(
        [
            sys.executable,
            *("-m", "datapool.cli", "up", "--port", str(port), "--state-dir", str(base / "state")),
            *args,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    output: list[str] = []
    ready = threading.Event()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "ready" in line:
                ready.set()

    pumping = threading.Thread(target=pump, daemon=True)
    pumping.start()

    def close_output() -> None:
        # The pipe is closed here, not by garbage collection (a ResourceWarning, an error under
        # pytest's filterwarnings=error in whichever test collects it).
        pumping.join(timeout=10)
        assert proc.stdout is not None
        if not pumping.is_alive():  # a reader still inside the pipe would fail on a closed file
            proc.stdout.close()

    if not ready.wait(READY_TIMEOUT_S):
        proc.kill()
        proc.wait()
        close_output()
        pytest.fail("datapool up did not print ready:\n" + "".join(output))
    yield RunningStack(f"127.0.0.1:{port}", token, fault_dir, base / "state", proc, output)
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    elapsed = time.monotonic() - t
    close_output()
    # `datapool up` must stop all three services cleanly within a few seconds.
    assert code == 0, "".join(output)
    assert elapsed < 15, f"stopping took {elapsed:.1f}s"
    assert any("stopped" in line for line in output)


def wait_end(client: ApiWorkflowClient, run_id: str) -> Any:
    for _ in client.compute_worker_run_info_generator(run_id):
        pass
    return client.get_compute_worker_run_info(run_id)


def service_pid(stack: RunningStack, module: str) -> int:
    """The pid of the stack's child process running `python -m <module>` now."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (stat.parent / "cmdline").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue  # gone meanwhile
        if ppid == stack.proc.pid and module.encode() in cmdline:
            return int(stat.parent.name)
    raise LookupError(f"no {module} process under datapool up (pid {stack.proc.pid})")
