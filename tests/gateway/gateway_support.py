"""`datapool up --http-port` for the gateway tests, and the lightly venv that talks to it."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from stack_launcher import running_stack

REPO = Path(__file__).resolve().parents[2]
LIGHTLY_PYTHON = REPO / ".lightly-venv" / "bin" / "python"
HERE = Path(__file__).resolve().parent


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
    """`datapool up --http-port` (tests/stack_launcher.py, shared with tests/e2e)."""
    with running_stack(base, token, extra_env, http=True) as stack:
        assert stack.http_url is not None
        yield GatewayStack(stack.http_url, token, stack.state_dir, stack.output)


def log_tails(stack: GatewayStack, lines: int = 25) -> str:
    """The last lines of each service's log (SDK request dumps left out), for a failed run's message."""
    out = []
    for log in sorted((stack.state_dir / "logs").glob("*.log")):
        kept = [
            line
            for line in log.read_text(errors="replace").splitlines()
            if line[:1].isdigit() and "http_logging_policy" not in line
        ]
        out.append(f"--- {log.name}\n" + "\n".join(kept[-lines:]))
    return "\n" + "\n".join(out)


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
