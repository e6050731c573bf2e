from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from selector_crash_child import CRASH_FILE
from selector_helpers import clustered_unit_vectors, file_ref, rendered_picks, select, spec

from datapool.pool.repository import PoolRepository
from services.common import faults
from services.selector.queries import pool_summary, processed_file_chunks
from services.selector.service import SelectorService
from services.selector.session import Committed

CHILD = Path(__file__).with_name("selector_crash_child.py")


@pytest.mark.parametrize(
    ("fault", "version_after_crash"),
    [
        ("selector.commit.before_data", 1),
        ("selector.commit.after_data", 1),
        ("selector.commit.after_manifest", 2),
    ],
)
def test_crash_leaves_old_or_new_version(
    fault: str, version_after_crash: int, repo: PoolRepository, pool_root: Path, tmp_path: Path
) -> None:
    service = SelectorService()
    seed_session = select(
        service, repo, spec("seed", n_samples=3), {file_ref("seed.mp4"): clustered_unit_vectors(20, 3, 3)}
    )
    assert isinstance(service.commit("seed", "seed", rendered_picks(seed_session)), Committed)
    before = repo.newest_manifest()

    fault_dir = tmp_path / "faults"
    faults.arm(fault_dir, fault)
    env = {**os.environ, faults.ENV: str(fault_dir)}
    child = subprocess.run(
        [sys.executable, str(CHILD), str(pool_root)], env=env, capture_output=True, text=True, timeout=60
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    assert not (fault_dir / fault).exists()

    # A fresh reader sees exactly one whole version.
    after = PoolRepository(repo.store)
    assert after.newest_version() == version_after_crash
    state = after.load_state(after.newest_manifest())
    crashed_in = any(f.file.path == CRASH_FILE for f in state.frames)
    assert crashed_in == (version_after_crash == 2)
    if version_after_crash == 1:
        assert after.newest_manifest() == before
    summary = pool_summary(after)
    assert summary.frame_count == len(state.frames) == (3 if version_after_crash == 1 else 8)
    processed = {f.path for chunk in processed_file_chunks(after) for f in chunk}
    assert (CRASH_FILE in processed) == (version_after_crash == 2)

    # The next run commits on top, and never pools a frame the crashed commit made visible.
    vectors = clustered_unit_vectors(seed=21, clusters=5, per_cluster=4)
    session = select(service, after, spec("next", n_samples=20), {file_ref(CRASH_FILE): vectors})
    outcome = service.commit("next", "next", rendered_picks(session))
    assert isinstance(outcome, Committed) and outcome.version == version_after_crash + 1
    final = after.load_state(after.newest_manifest())
    assert len(final.identities) == len(final.frames) == 3 + 20
