"""A real, throwaway Postgres for tests: Debian's `postgresql` package, started from initdb.

`PostgresServer.start()` initialises a cluster in a new temporary directory (under /tmp, not pytest's
root-only tmp_path, so the `postgres` user can reach it), listens on a free loopback port (its unix
socket in `root` too, so nothing touches /var/run/postgresql) and `close()` stops it. Durability is
off (fsync, synchronous_commit): the data dies with the test session anyway.

Postgres refuses to run as root; under root (CI containers) its processes run as the `postgres`
user that the Debian package creates, and `root` is handed to it.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

PREFIX = "datapool-pg-"
SETUP_HINT = "install it with `apt-get install -y postgresql` (scripts/setup.sh does, as root)"


def postgres_bin() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if found:
        return Path(found[-1]).parent
    on_path = shutil.which("initdb")
    if on_path is None:
        raise RuntimeError(f"Postgres (initdb, pg_ctl) not found: {SETUP_HINT}")
    return Path(on_path).parent


def stop_orphans() -> None:
    """Stops the servers of test sessions that were killed before their teardown (a timeout's
    SIGKILL): without this each one would keep a Postgres running until the machine stops."""
    for owner in glob.glob(f"{tempfile.gettempdir()}/{PREFIX}*/owner.pid"):
        root = Path(owner).parent
        try:
            os.kill(int(Path(owner).read_text()), 0)
            continue  # its session is alive
        except ProcessLookupError:
            pass
        except (ValueError, PermissionError, FileNotFoundError):
            continue
        pid_file = root / "data" / "postmaster.pid"
        if pid_file.exists():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text().split()[0]), signal.SIGQUIT)
        shutil.rmtree(root, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    def __init__(self, root: Path) -> None:
        self.bin = postgres_bin()
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self._user = pwd.getpwnam("postgres") if os.geteuid() == 0 else None
        if self._user is not None:
            os.chown(root, self._user.pw_uid, self._user.pw_gid)
        self._pg("initdb", "-D", str(self.data), "-U", "datapool", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -k {root} -h 127.0.0.1 -c fsync=off -c synchronous_commit=off "
            "-c full_page_writes=off -c max_connections=300"
        )
        self._pg(
            "pg_ctl", "-D", str(self.data), "-o", options, "-l", str(root / "postgres.log"), "-w", "start"
        )

    def _pg(self, tool: str, *args: str) -> None:
        command = [str(self.bin / tool), *args]
        if self._user is not None:
            command = ["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            log = self.root / "postgres.log"
            tail = log.read_text()[-2000:] if log.exists() else ""
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}\n{tail}")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://datapool@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; its postgresql:// URL."""
        name = f"t{uuid.uuid4().hex[:16]}"
        with psycopg.connect(self.url(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    @classmethod
    def start(cls) -> PostgresServer:
        stop_orphans()
        server = cls(Path(tempfile.mkdtemp(prefix=PREFIX)))
        (server.root / "owner.pid").write_text(str(os.getpid()))
        return server

    def close(self) -> None:
        try:
            self._pg("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
