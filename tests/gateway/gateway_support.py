"""`datapool up --http-port` for the gateway tests, and the lightly venv that talks to it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from datapool.stack import free_port

REPO = Path(__file__).resolve().parents[2]
LIGHTLY_PYTHON = REPO / ".lightly-venv" / "bin" / "python"
HERE = Path(__file__).resolve().parent
READY_TIMEOUT_S = 240.0


@dataclass
class GatewayStack:
    url: str
    token: str
    state_dir: Path
    output: list[str]


def lightly_python() -> Path:
    """The venv with `lightly==1.5.26` that scripts/setup.sh creates; an error with instructions if absent."""
    if not LIGHTLY_PYTHON.exists():
        pytest.fail(f"{LIGHTLY_PYTHON} is missing: run scripts/setup.sh (it installs lightly==1.5.26 there)")
    return LIGHTLY_PYTHON


def lightly_env(stack: GatewayStack, token: str | None = None) -> dict[str, str]:
    """Only what a Lightly user sets: the server location and the token (plus PATH and HOME)."""
    env = {k: os.environ[k] for k in ("PATH", "HOME") if k in os.environ}
    env["LIGHTLY_SERVER_LOCATION"] = stack.url
    env["LIGHTLY_TOKEN"] = token if token is not None else stack.token
    return env


@contextlib.contextmanager
def gateway_stack(base: Path, token: str, extra_env: dict[str, str]) -> Iterator[GatewayStack]:
    port, http_port = free_port(), free_port()
    env = dict(os.environ, DATAPOOL_TOKEN=token, **extra_env)
    for k in ("DATAPOOL_SECRET_KEY", "DATAPOOL_SECRET_KEY_FILE"):
        env.pop(k, None)
    argv = [sys.executable, "-m", "datapool.cli", "up", "--port", str(port), "--http-port", str(http_port)]
    argv += ["--state-dir", str(base / "state")]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
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
    if not ready.wait(READY_TIMEOUT_S):
        proc.kill()
        pytest.fail("datapool up --http-port did not print ready:\n" + "".join(output))
    assert f"Lightly REST API on http://127.0.0.1:{http_port}" in "".join(output)
    try:
        yield GatewayStack(f"http://127.0.0.1:{http_port}", token, base / "state", output)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        pumping.join(timeout=10)  # the pipe is at its end once the process is gone
        assert proc.stdout is not None
        proc.stdout.close()
        assert code == 0, "".join(output)


class LightlyRunner:
    """lightly_runner.py in the lightly venv: one JSON line of results per step."""

    def __init__(self, stack: GatewayStack, spec: dict[str, Any], tmp: Path) -> None:
        spec_path = tmp / "spec.json"
        spec_path.write_text(json.dumps(spec))
        self.log: list[str] = []
        self.proc = subprocess.Popen(
            [str(lightly_python()), str(HERE / "lightly_runner.py"), str(spec_path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=lightly_env(stack),
            cwd=tmp,
        )

    def next_result(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line)
            if line.startswith("{"):
                result: dict[str, Any] = json.loads(line)
                return result
        self.proc.wait(timeout=30)
        pytest.fail(f"the Lightly example exited with {self.proc.returncode}:\n" + "".join(self.log))

    def proceed(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
