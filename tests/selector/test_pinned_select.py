"""A Select pinned to the version the run's listing read (`spec.base_version`) measures against
that version; a commit landing since is caught up at Commit, never missed."""

from __future__ import annotations

import dataclasses

import pytest
from selector_helpers import clustered_unit_vectors, file_ref, rendered_picks, select, spec

from datapool.errors import FailedPrecondition, InvalidArgument
from datapool.pool.repository import PoolRepository
from services.selector.service import SelectorService
from services.selector.session import Committed, NeedFrames


def test_a_select_pinned_to_an_older_version_is_caught_up_at_commit(
    service: SelectorService, repo: PoolRepository
) -> None:
    vectors = clustered_unit_vectors(seed=21, clusters=8, per_cluster=6)
    a = select(service, repo, spec("a", n_samples=3), {file_ref("a.mp4"): vectors[:24]})
    assert isinstance(service.commit("a", "ta", rendered_picks(a)), Committed)

    # b's listing read version 0, before a committed.
    pinned = dataclasses.replace(spec("b", n_samples=3), base_version=0)
    b = select(service, repo, pinned, {file_ref("b.mp4"): vectors[24:]})
    assert b.base_version == 0 and len(b.pool.frames) == 0
    frames = rendered_picks(b)
    outcome = service.commit("b", "tb", frames)
    while isinstance(outcome, NeedFrames):
        assert outcome.base_version == 1
        frames |= {p.frame_name: f"frames/run-b/{p.frame_name}" for p in outcome.picks}
        outcome = service.commit("b", "tb", frames)
    assert isinstance(outcome, Committed) and outcome.version == 2
    assert outcome.pool_frame_count == 3 + len(outcome.picks)


def test_a_select_pinned_to_a_version_the_pool_lacks_is_refused_naming_the_field(
    service: SelectorService, repo: PoolRepository
) -> None:
    with pytest.raises(
        FailedPrecondition, match=r"^spec\.base_version 2: the pool in .* has no such version"
    ):
        service.open_select(dataclasses.replace(spec("s", n_samples=1), base_version=2), repo)
    with pytest.raises(InvalidArgument, match=r"^spec\.base_version must be >= 0, got -1"):
        service.open_select(dataclasses.replace(spec("s", n_samples=1), base_version=-1), repo)
    # The refused Selects left no session behind.
    assert len(service.sessions) == 0
