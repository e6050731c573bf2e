"""Starts and supervises the three services as separate processes on one machine.

`datapool up` and `datapool run` both use this. A child that dies unexpectedly is
restarted on the same port (as Kubernetes would restart a pod); a stop sends
SIGTERM to all, waits for their graceful shutdown, then SIGKILLs stragglers.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from datapool.channels import wait_healthy
from datapool.cpu_priority import IDLE, Priority, check_priority, lower
from datapool.internal_token import TOKEN_FILE_ENV, TOKEN_FILE_OPTION, ensure_token_file
from datapool.ports import free_port
from datapool.secret_key import KEY_ENV, KEY_FILE_ENV, KEY_FILE_OPTION, ensure_key_file
from datapool.tls import CA_ENV, channel_credentials
from datapool.tls_certs import ensure_local_tls

log = logging.getLogger(__name__)

# Where `datapool up` records each service's metrics URL, in its state directory.
METRICS_FILE = "metrics.json"

STARTUP_TIMEOUT_S = 300.0
STOP_GRACE_S = 8.0
# The embedders' CPU priority (datapool/cpu_priority.py): idle, so that on one host a call that
# wakes the scheduler or the selector takes a core from their decoding and inference at once (the
# read target with 4 runs: met in 6 of 9 runs idle, 1 of 4 at nice 10; README, Load). The selector
# lowers its Selects itself (`python -m services.selector --selection-nice`, idle by default).
EMBEDDER_NICE: Priority = IDLE


def _http_healthy(address: str, timeout: float) -> bool:
    """True once the HTTP server at `address` answers GET /healthz with 200."""
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://{address}/healthz", timeout=timeout) as r:
                return bool(r.status == 200)
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)


@dataclass
class _Child:
    name: str
    args: list[str]
    address: str
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    log_file: IO[bytes] | None = field(default=None, repr=False)
    # Health checked over HTTP (GET /healthz) instead of the gRPC health service.
    http: bool = False
    # Added to the child's nice value (lower CPU priority) as soon as it starts; IDLE: SCHED_IDLE.
    nice: Priority = 0

    def spawn(self, env: dict[str, str]) -> None:
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the child
        self.proc = subprocess.Popen(
            [sys.executable, "-m", *self.args],
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            # Own process group: a Ctrl-C in the terminal reaches `datapool up`, which then stops
            # the children in order. Not a session of their own: where the kernel groups CPU time
            # by session (autogroup, on by default in many distributions), every session gets an
            # equal share and nice values count only inside one, so the embedders' lower priority
            # would not make them give way to the scheduler and the selector at all.
            process_group=0,
        )
        if self.nice:
            # Set from here rather than in a preexec_fn (unsafe with the supervisor thread). Popen
            # returns once the child has exec'd Python, before it starts any thread of its own;
            # on Linux each later thread inherits the niceness of the thread that starts it.
            with contextlib.suppress(ProcessLookupError):  # already gone: the supervisor restarts it
                lower(self.proc.pid, self.nice)


class Stack:
    def __init__(
        self,
        state_dir: Path,
        port: int = 50051,
        host: str = "127.0.0.1",
        embedder_replicas: int = 1,
        backend: str = "auto",
        log_level: str = "INFO",
        http_port: int | None = None,
        log_format: str | None = None,
        otel: bool = False,
        tls_dir: Path | None = None,
        embedder_nice: Priority = EMBEDDER_NICE,
        selection_nice: Priority | None = None,
    ) -> None:
        """`selection_nice`: the selector's `--selection-nice` (None: its default)."""
        check_priority(embedder_nice, "--embedder-nice")
        if selection_nice is not None:
            check_priority(selection_nice, "--selection-nice")
        self.state_dir = state_dir.absolute()
        self.host = host
        self.port = port
        logs = self.state_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        # All three get the same internal token, by path: a value on the command line
        # would show in `ps` to every local user.
        self.internal_token_file = ensure_token_file(self.state_dir / "internal.token")
        token_args = [TOKEN_FILE_OPTION, str(self.internal_token_file)]
        # TLS on every hop from one local CA; the scheduler's certificate is its client
        # certificate towards the selector and embedders, which ask for one (mutual TLS).
        self.tls = ensure_local_tls(tls_dir, hosts=[host]) if tls_dir is not None else None
        tls_args = (
            [
                "--tls-cert",
                str(self.tls.cert),
                "--tls-key",
                str(self.tls.key),
                "--tls-ca",
                str(self.tls.ca_cert),
            ]
            if self.tls is not None
            else []
        )
        self._credentials = (
            channel_credentials(self.tls.ca_cert, self.tls.cert, self.tls.key) if self.tls else None
        )
        selector_port = free_port(host)
        self.selector = _Child(
            "selector",
            [
                "services.selector",
                *token_args,
                *tls_args,
                "--host",
                host,
                "--port",
                str(selector_port),
                "--log-level",
                log_level,
                *([] if selection_nice is None else ["--selection-nice", str(selection_nice)]),
            ],
            f"{host}:{selector_port}",
            logs / "selector.log",
        )
        self.embedders = []
        for i in range(embedder_replicas):
            p = free_port(host)
            self.embedders.append(
                _Child(
                    f"embedder-{i}",
                    [
                        "services.embedder",
                        *token_args,
                        *tls_args,
                        "--host",
                        host,
                        "--port",
                        str(p),
                        "--backend",
                        backend,
                        "--log-level",
                        log_level,
                    ],
                    f"{host}:{p}",
                    logs / f"embedder-{i}.log",
                    nice=embedder_nice,
                )
            )
        secret_args = self._secret_key_args()
        self.scheduler = _Child(
            "scheduler",
            [
                "services.scheduler",
                *secret_args,
                *token_args,
                *tls_args,
                "--host",
                host,
                "--port",
                str(port),
                "--state-dir",
                str(self.state_dir),
                "--selector",
                self.selector.address,
                "--embedder",
                ",".join(e.address for e in self.embedders),
                "--log-level",
                log_level,
            ],
            f"{host}:{port}",
            logs / "scheduler.log",
        )
        # The Lightly-compatible REST gateway (services/gateway), a client of the scheduler.
        self.gateway: _Child | None = None
        if http_port is not None:
            self.gateway = _Child(
                "gateway",
                [
                    "services.gateway",
                    "--host",
                    host,
                    "--port",
                    str(http_port),
                    "--scheduler",
                    self.scheduler.address,
                    "--log-level",
                    log_level,
                ],
                f"{host}:{http_port}",
                logs / "gateway.log",
                http=True,
            )
        # Each gRPC service serves Prometheus metrics on a port of its own (kept across restarts),
        # recorded in STATE_DIR/metrics.json for scrapers and tests.
        self.metrics: dict[str, str] = {}
        for child in (self.selector, *self.embedders, self.scheduler):
            metrics_port = free_port(host)
            child.args += ["--metrics-port", str(metrics_port)]
            # Without them, each service reads $DATAPOOL_LOG_FORMAT and $DATAPOOL_OTEL itself.
            child.args += ["--log-format", log_format] if log_format else []
            child.args += ["--otel"] if otel else []
            self.metrics[child.name] = f"http://{host}:{metrics_port}/metrics"
        (self.state_dir / METRICS_FILE).write_text(json.dumps(self.metrics, indent=2) + "\n")
        if self.gateway is not None and log_format:
            self.gateway.args += ["--log-format", log_format]
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        self._lock = threading.Lock()

    def _secret_key_args(self) -> list[str]:
        """`--secret-key-file` for the scheduler, creating a key when the environment names none."""
        if os.environ.get(KEY_ENV) or os.environ.get(KEY_FILE_ENV):
            return []  # the scheduler reads them from the environment it inherits
        return [KEY_FILE_OPTION, str(ensure_key_file(self.state_dir / "secret.key"))]

    @property
    def children(self) -> list[_Child]:
        return [self.selector, *self.embedders, self.scheduler, *([self.gateway] if self.gateway else [])]

    @property
    def address(self) -> str:
        return self.scheduler.address

    @property
    def ca_cert(self) -> Path | None:
        """The CA certificate clients trust (`ca_cert=`, $DATAPOOL_CA_CERT); None without TLS."""
        return self.tls.ca_cert if self.tls else None

    def _env(self, child: _Child) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("PYTHONUNBUFFERED", "1")
        if child is self.gateway and self.tls is not None:
            env[CA_ENV] = str(self.tls.ca_cert)  # the gateway is a client of the scheduler
        # The flag names the stack's own token; one from the caller's environment must not differ.
        env.pop(TOKEN_FILE_ENV, None)
        if child is not self.scheduler:
            # Only the scheduler decrypts datasources; the others get locations per call.
            env.pop(KEY_ENV, None)
            env.pop(KEY_FILE_ENV, None)
        return env

    def start(self, timeout: float = STARTUP_TIMEOUT_S) -> None:
        for child in self.children:
            child.spawn(self._env(child))
        deadline = time.monotonic() + timeout
        for child in self.children:
            while True:
                if child.proc is not None and child.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(
                        f"{child.name} exited with code {child.proc.returncode} during start-up; "
                        f"see {child.log_path}"
                    )
                if (
                    _http_healthy(child.address, timeout=1.0)
                    if child.http
                    else wait_healthy(child.address, timeout=1.0, credentials=self._credentials)
                ):
                    break
                if time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"{child.name} did not become healthy in {timeout:.0f}s; see {child.log_path}"
                    )
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._supervisor.start()

    def _supervise(self) -> None:
        while not self._stopping.wait(0.5):
            with self._lock:
                for child in self.children:
                    if self._stopping.is_set():
                        return
                    if child.proc is not None and child.proc.poll() is not None:
                        code = child.proc.returncode
                        child.restarts += 1
                        print(
                            f"datapool: {child.name} exited with code {code}; restarting "
                            f"(restart {child.restarts}, log {child.log_path})",
                            file=sys.stderr,
                            flush=True,
                        )
                        child.spawn(self._env(child))

    def stop(self, grace: float = STOP_GRACE_S) -> None:
        self._stopping.set()
        with self._lock:
            # The gateway and scheduler first, so no new work reaches the others while they stop.
            order = [
                *([self.gateway] if self.gateway else []),
                self.scheduler,
                *self.embedders,
                self.selector,
            ]
            for child in order:
                if child.proc is not None and child.proc.poll() is None:
                    child.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for child in order:
                if child.proc is None:
                    continue
                try:
                    child.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    child.proc.kill()
                    child.proc.wait()
                if child.log_file is not None:
                    child.log_file.close()
