"""`datapool migrate`: bring the scheduler's metadata store to this version's schema.

The chart runs it as a pre-install/pre-upgrade hook Job, so scheduler replicas start on a
migrated schema (`--no-migrate`) instead of racing to migrate it themselves.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

DATABASE_URL_ENV = "DATAPOOL_DATABASE_URL"


def add_migrate_args(p: argparse.ArgumentParser, default_state_dir: Path) -> None:
    p.add_argument(
        "--database-url",
        default=os.environ.get(DATABASE_URL_ENV),
        help=f"sqlite:///PATH or postgresql://USER:PASSWORD@HOST:PORT/DB (default: ${DATABASE_URL_ENV}, "
        "then the SQLite file in --state-dir)",
    )
    p.add_argument("--state-dir", type=Path, default=default_state_dir, help="where the SQLite file lives")


def cmd_migrate(args: argparse.Namespace) -> int:
    # The store and its migrations are server code (services/scheduler/store): run them as a
    # process, as `datapool up` runs the services, so the client package imports no server code.
    # The URL may hold a password: it goes by environment, never on a command line.
    env = dict(os.environ)
    if args.database_url:
        env[DATABASE_URL_ENV] = args.database_url
    command = [sys.executable, "-m", "services.scheduler.store", "--state-dir", str(args.state_dir)]
    return subprocess.run(command, env=env, check=False).returncode
