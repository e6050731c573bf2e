"""A real `datapool up` (three service processes) shared by the end-to-end tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from e2e_support import RunningStack

from datapool.stack import free_port

TOKEN = "e2e-secret-token"
READY_TIMEOUT_S = 240.0


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    base = tmp_path_factory.mktemp("stack")
    fault_dir = base / "faults"
    fault_dir.mkdir()
    port = free_port()
    env = dict(os.environ, DATAPOOL_TOKEN=TOKEN, DATAPOOL_FAULT_DIR=str(fault_dir))
    proc = subprocess.Popen(
        [sys.executable, "-m", "datapool.cli", "up", "--port", str(port), "--state-dir", str(base / "state")],
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

    threading.Thread(target=pump, daemon=True).start()
    if not ready.wait(READY_TIMEOUT_S):
        proc.kill()
        pytest.fail("datapool up did not print ready:\n" + "".join(output))
    running = RunningStack(f"127.0.0.1:{port}", TOKEN, fault_dir, base / "state", proc, output)
    yield running
    t = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=30)
    elapsed = time.monotonic() - t
    # `datapool up` must stop all three services cleanly within a few seconds.
    assert code == 0, "".join(output)
    assert elapsed < 15, f"stopping took {elapsed:.1f}s"
    assert any("stopped" in line for line in output)
