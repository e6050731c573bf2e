"""Crash trials at fork speed: one long-lived helper imports everything once, then forks a child per trial.

A fresh interpreter per trial costs about a second of imports; a fork costs milliseconds,
so hundreds of SIGKILLed commits fit in a test run. The helper is started clean (no
threads, no SDK clients, no gRPC channels), and each child opens its own store client
after the fork, because connection pools and SDK clients must not be shared across one.

Run as a script it is the helper: JSON requests on stdin, JSON replies on stdout.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

HERE = Path(__file__).parent
TRIAL_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class TrialResult:
    # "exited" (ran to the end or failed) or "killed" (SIGKILL, by a fault point or by us).
    ended: str
    exit_code: int
    # Seconds from the start of Commit to the child's end.
    commit_s: float
    log: str

    @property
    def killed(self) -> bool:
        return self.ended == "killed"


class ForkServer:
    """The parent's handle on the helper process."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**env, "PYTHONPATH": os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")])},
            text=True,
        )
        self._count = 0
        self._ask({"ping": True})

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(request) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fork helper exited with code {self._proc.wait()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def trial(
        self,
        location: bytes,
        scenario: dict[str, Any],
        fault: str | None = None,
        kill_after_s: float | None = None,
    ) -> TrialResult:
        """Runs the scenario in a forked child, armed at `fault` or killed `kill_after_s` into its Commit."""
        self._count += 1
        fault_dir = self.log_dir / f"faults-{self._count}"
        if fault:
            fault_dir.mkdir()
            (fault_dir / fault).touch()
        log_path = self.log_dir / f"trial-{self._count}.log"
        reply = self._ask(
            {
                "location": location.hex(),
                "scenario": scenario,
                "fault_dir": str(fault_dir) if fault else "",
                "kill_after_s": kill_after_s,
                "log": str(log_path),
            }
        )
        return TrialResult(
            ended=reply["ended"],
            exit_code=reply["exit_code"],
            commit_s=reply["commit_s"],
            log=log_path.read_text() if log_path.exists() else "",
        )

    def close(self) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()
        try:
            self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        # Closed here rather than by garbage collection (a ResourceWarning, an error under pytest's
        # filterwarnings=error in whichever test collects it).
        if self._proc.stdout is not None:
            self._proc.stdout.close()


# -- the helper process ------------------------------------------------------------------


def _child(request: dict[str, Any], ready_fd: int) -> None:
    from commit_support import Scenario, run_scenario

    from datapool.storage import open_store
    from datapool.v1 import common_pb2
    from services.common import faults

    log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115 - the child's stdout until os._exit
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    if request["fault_dir"]:
        os.environ[faults.ENV] = request["fault_dir"]
    else:
        os.environ.pop(faults.ENV, None)
    location = common_pb2.StoreLocation.FromString(bytes.fromhex(request["location"]))
    store = open_store(location)

    def committing() -> None:
        os.write(ready_fd, b"c")

    outcome = run_scenario(store, Scenario.from_json(request["scenario"]), on_committing=committing)
    print(f"committed version {outcome.version} after {outcome.attempts} attempt(s)", flush=True)


def _run_trial(request: dict[str, Any]) -> dict[str, Any]:
    read_fd, ready_fd = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            os.close(read_fd)
            _child(request, ready_fd)
        except BaseException:
            traceback.print_exc()
            code = 1
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(ready_fd)
    deadline = time.monotonic() + TRIAL_TIMEOUT_S
    started, _, _ = select.select([read_fd], [], [], TRIAL_TIMEOUT_S)
    if started:
        os.read(read_fd, 1)
    os.close(read_fd)
    commit_started = time.monotonic()
    kill_after = request.get("kill_after_s")
    if kill_after is not None and started:
        # A zombie (a child that already finished) ignores the signal, so a kill that comes
        # too late leaves the child's own exit status.
        time.sleep(kill_after)
        os.kill(pid, signal.SIGKILL)
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            return {"ended": "timeout", "exit_code": -1, "commit_s": time.monotonic() - commit_started}
        time.sleep(0.0005)
    commit_s = time.monotonic() - commit_started
    if os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL:
        return {"ended": "killed", "exit_code": -signal.SIGKILL, "commit_s": commit_s}
    return {"ended": "exited", "exit_code": os.waitstatus_to_exitcode(status), "commit_s": commit_s}


def _share_botocore_models() -> None:
    """Parse botocore's service models once, here, instead of in every child.

    Each S3 store starts a new botocore session whose loader parses the S3 model again
    (a third of a second in a fresh fork). The parsed models are read-only data, unlike
    clients and connection pools, which every child still creates for itself.
    """
    try:
        import boto3
        import botocore.loaders
        import botocore.session
    except ImportError:
        return
    shared = botocore.loaders.create_loader()
    botocore.session.create_loader = lambda search_path_string=None: shared
    session = boto3.session.Session(aws_access_key_id="warm", aws_secret_access_key="warm")
    session.client("s3", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")
    session.client("sts", region_name="us-east-1", endpoint_url="http://127.0.0.1:9")


def _serve(requests: IO[str]) -> None:
    # Import everything a trial needs now, so that each forked child starts warm.
    import commit_support  # noqa: F401

    import datapool.storage
    import services.selector.service  # noqa: F401

    for module in ("boto3", "botocore.session", "google.cloud.storage", "azure.storage.blob"):
        try:
            __import__(module)
        except ImportError:
            continue
    del datapool.storage
    _share_botocore_models()
    for line in requests:
        request = json.loads(line)
        reply = {"pong": True} if request.get("ping") else _run_trial(request)
        # os.write, not print: a forked child must not inherit half a buffered reply.
        os.write(1, (json.dumps(reply) + "\n").encode())


if __name__ == "__main__":
    _serve(sys.stdin)
