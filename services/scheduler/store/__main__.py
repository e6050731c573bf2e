"""`python -m services.scheduler.store`: migrate the metadata store (what `datapool migrate` runs).

Server code, so it lives with the store: the `datapool` package (the client) imports nothing from
`services/` and starts this as a process, as `datapool up` starts the services.
"""

from __future__ import annotations

import argparse
import sys

from datapool.cli import DEFAULT_STATE_DIR
from datapool.cli_migrate import add_migrate_args
from datapool.errors import DatapoolError
from services.scheduler.store.engine import default_database_url, open_engine
from services.scheduler.store.migrate import upgrade


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="datapool migrate", description=__doc__)
    add_migrate_args(parser, DEFAULT_STATE_DIR)
    args = parser.parse_args(argv)
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


if __name__ == "__main__":
    sys.exit(main())
