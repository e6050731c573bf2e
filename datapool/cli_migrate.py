"""`datapool migrate`: bring the scheduler's metadata store to this version's schema.

The chart runs it as a pre-install/pre-upgrade hook Job, so scheduler replicas start on a
migrated schema (`--no-migrate`) instead of racing to migrate it themselves.
"""

from __future__ import annotations

import argparse
import os
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
    # Server-side code, imported only by this command: `datapool` stays light for clients.
    from datapool.errors import DatapoolError
    from services.scheduler.store.engine import default_database_url, open_engine
    from services.scheduler.store.migrate import upgrade

    url = args.database_url or default_database_url(args.state_dir)
    try:
        engine = open_engine(url)
        try:
            head = upgrade(engine)
            where = engine.url.render_as_string(hide_password=True)
        finally:
            engine.dispose()
    except DatapoolError as e:
        print(f"datapool migrate: {e}", file=sys.stderr)
        return 1
    print(f"datapool migrate: {where} is at schema {head}", flush=True)
    return 0
