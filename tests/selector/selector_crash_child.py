"""Run as a script by test_crash.py: selects and commits once, to be killed at a fault point."""

from __future__ import annotations

import sys

from selector_helpers import clustered_unit_vectors, file_ref, rendered_picks, select, spec

from datapool.pool.repository import PoolRepository
from datapool.storage import LocalStore
from services.selector.service import SelectorService

CRASH_FILE = "crash.mp4"


def main(pool_root: str) -> None:
    repo = PoolRepository(LocalStore(pool_root))
    service = SelectorService()
    vectors = clustered_unit_vectors(seed=21, clusters=5, per_cluster=4)
    session = select(service, repo, spec("child", n_samples=5), {file_ref(CRASH_FILE): vectors})
    service.commit("child", "crashed", rendered_picks(session))
    print("committed without being killed")


if __name__ == "__main__":
    main(sys.argv[1])
