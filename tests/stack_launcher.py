"""`datapool up` as a user runs it, for the end-to-end tests of every folder (tests/e2e through
e2e_support.py, tests/gateway through gateway_support.py): started in its own process, ready once
it says so, stopped with SIGTERM and checked to stop cleanly and fast."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from datapool.ports import free_port

READY_TIMEOUT_S = 240.0
STOP_LIMIT_S = 15.0
# Each stack makes its own secret key in its state directory, whatever the test's environment.
_NOT_INHERITED = ("DATAPOOL_SECRET_KEY", "DATAPOOL_SECRET_KEY_FILE")


@dataclass
class RunningStack:
    address: str
    token: str
    fault_dir: Path
    state_dir: Path
    proc: subprocess.Popen[str]
    output: list[str]
    # The Lightly-compatible REST gateway's base URL, when started with http=True.
    http_url: str | None = None


@contextlib.contextmanager
def running_stack(
    base: Path,
    token: str,
    extra_env: dict[str, str] | None = None,
    args: tuple[str, ...] = (),
    *,
    http: bool = False,
) -> Iterator[RunningStack]:
    """`datapool up [args]` (with `--http-port` when `http`); `extra_env` over the test's own."""
    fault_dir = base / "faults"
    fault_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    env |= {"DATAPOOL_TOKEN": token, "DATAPOOL_FAULT_DIR": str(fault_dir), **(extra_env or {})}
    argv = [
        sys.executable,
        "-m",
        "datapool.cli",
        "up",
        "--port",
        str(port),
        "--state-dir",
        str(base / "state"),
    ]
    http_url = None
    if http:
        http_port = free_port()
        argv += ["--http-port", str(http_port)]
        http_url = f"http://127.0.0.1:{http_port}"
    proc = subprocess.Popen(
        [*argv, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
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
    if http_url is not None:
        assert f"Lightly REST API on {http_url}" in "".join(output), "".join(output)
    try:
        yield RunningStack(f"127.0.0.1:{port}", token, fault_dir, base / "state", proc, output, http_url)
    except BaseException:
        # The body failed: stop the stack anyway (SIGTERM, so `datapool up` stops its services
        # too; no process left running after the test), and report the body's error.
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        close_output()
        raise
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    elapsed = time.monotonic() - t
    close_output()
    # `datapool up` must stop all its services cleanly within a few seconds.
    assert code == 0, "".join(output)
    assert elapsed < STOP_LIMIT_S, f"stopping took {elapsed:.1f}s"
    assert any("stopped" in line for line in output)
