"""A run's own commit is found in the pool by its run id, with its picks as they were picked,
even when it added no frames and so has no tag; GetRunCommit carries it to the scheduler."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, cast

import pytest
from selector_helpers import clustered_unit_vectors, file_ref, rendered_picks, select, spec

from datapool.errors import InvalidArgument
from datapool.pool.files import FileRef
from datapool.pool.repository import PoolRepository
from datapool.pool.state import PoolFrame
from datapool.storage.locations import local_location
from datapool.v1 import selector_pb2
from services.selector.run_commit import run_commit
from services.selector.service import SelectorService
from services.selector.servicer import SelectorServicer


def _commit(service: SelectorService, repo: PoolRepository, run: str, n: int, seed: int) -> None:
    files = {file_ref(f"{run}.mp4"): clustered_unit_vectors(seed=seed, clusters=4, per_cluster=5)}
    session = select(service, repo, spec(run, n_samples=n, run_id=run), files)
    service.commit(run, f"tag-{run}" if n else "", rendered_picks(session))


def test_a_run_commit_is_found_by_run_id_with_its_picks_in_pick_order_and_their_distances(
    service: SelectorService, repo: PoolRepository
) -> None:
    _commit(service, repo, "other", n=2, seed=1)
    files = {file_ref("b.mp4"): clustered_unit_vectors(seed=2, clusters=4, per_cluster=5)}
    session = select(service, repo, spec("b", n_samples=3, run_id="run-b"), files)
    service.commit("b", "tag-b", rendered_picks(session))
    _commit(service, repo, "later", n=1, seed=3)

    found = run_commit(repo, "run-b")
    assert found is not None
    assert (found.segment.version, found.segment.tag, found.base_frames, found.pool_frames) == (
        2,
        "tag-b",
        2,
        5,
    )
    assert [(f.frame_name, f.file, f.frame_index, f.distance) for f in found.frames] == [
        (p.frame_name, p.file, p.frame_index, p.distance) for p in session.picks
    ]
    assert all(f.distance is not None and 0 < f.distance < math.inf for f in found.frames)


def test_a_run_commit_that_added_no_frames_is_found_though_it_has_no_tag(
    service: SelectorService, repo: PoolRepository
) -> None:
    _commit(service, repo, "first", n=2, seed=1)
    _commit(service, repo, "empty", n=0, seed=2)
    found = run_commit(repo, "empty")
    assert found is not None
    assert (found.segment.version, found.segment.tag, found.frames, found.pool_frames) == (2, "", [], 2)


def test_no_commit_is_found_for_a_run_that_did_not_commit(
    service: SelectorService, repo: PoolRepository
) -> None:
    assert run_commit(repo, "nobody") is None  # empty pool
    _commit(service, repo, "first", n=2, seed=1)
    assert run_commit(repo, "nobody") is None
    with pytest.raises(InvalidArgument, match="run_id"):
        service.run_commit(repo, "")


def test_get_run_commit_answers_the_run_commit_and_not_found_for_another_run(
    service: SelectorService, repo: PoolRepository, pool_root: Path
) -> None:
    _commit(service, repo, "r", n=2, seed=1)
    servicer = SelectorServicer(service)
    request = selector_pb2.GetRunCommitRequest(pool=local_location(str(pool_root)), run_id="r")
    answer = servicer.GetRunCommit(request, cast(Any, None))
    assert (answer.found, answer.version, answer.tag_name, answer.pool_frame_count) == (True, 1, "tag-r", 2)
    assert [p.frame_name for p in answer.picks] == [f.frame_name for f in run_commit(repo, "r").frames]  # type: ignore[union-attr]
    assert answer.picks[0].distance == math.inf  # the first pick into an empty pool
    miss = servicer.GetRunCommit(
        selector_pb2.GetRunCommitRequest(pool=request.pool, run_id="x"), cast(Any, None)
    )
    assert not miss.found


def test_an_entries_row_committed_before_distances_were_recorded_reads_back_without_one() -> None:
    legacy = PoolFrame.from_json(
        {"frame_name": "f", "key": "k", "source": FileRef("a", 1, "e").to_json(), "frame_index": 0}
    )
    assert legacy.distance is None and PoolFrame.from_json(legacy.to_json()) == legacy
