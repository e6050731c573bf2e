from __future__ import annotations

import math

import numpy as np
import pytest
from selector_helpers import (
    MODEL,
    clustered_unit_vectors,
    earlier_min_distances,
    file_ref,
    pairwise_min_distance,
    rendered_picks,
    select,
    spec,
)

from datapool.errors import AlreadyExists, FailedPrecondition, InvalidArgument
from datapool.pool.repository import PoolRepository
from services.selector.service import SelectorService
from services.selector.session import Committed, SelectionSession

# Float32 inputs against float64 checks: allow rounding, nothing more.
TOL = 1e-5


def _picked_vectors(session: SelectionSession) -> np.ndarray:
    return session.candidates.vectors[[p.row for p in session.picks]]


def test_picks_respect_min_distance_and_report_true_distances(
    service: SelectorService, repo: PoolRepository
) -> None:
    vectors = clustered_unit_vectors(seed=1, clusters=12, per_cluster=20)
    session = select(service, repo, spec("s1", n_samples=100, min_distance=0.5), {file_ref("a.mp4"): vectors})
    picked = _picked_vectors(session)
    # Clusters are tight (spread 0.05), so about one pick per cluster clears 0.5.
    assert 8 <= len(session.picks) <= 12
    assert session.picks[0].frame_index == 0 and math.isinf(session.picks[0].distance)
    true = earlier_min_distances(picked)
    for pick, distance in zip(session.picks, true, strict=True):
        assert pick.distance == pytest.approx(distance, abs=TOL)
    assert min(true[1:]) >= 0.5 - TOL
    assert [p.distance for p in session.picks[1:]] == sorted(
        (p.distance for p in session.picks[1:]), reverse=True
    )


def test_n_samples_and_proportion(service: SelectorService, repo: PoolRepository) -> None:
    vectors = clustered_unit_vectors(seed=2, clusters=5, per_cluster=6)
    files = {file_ref("a.mp4"): vectors}
    assert len(select(service, repo, spec("n", n_samples=7), files).picks) == 7
    assert len(select(service, repo, spec("zero", n_samples=0), files).picks) == 0
    # ceil(0.1 * 30) is 3, not 4, despite 0.1 * 30 = 3.0000000000000004 in floats.
    proportional = select(service, repo, spec("p", proportion=0.1), files)
    assert len(proportional.picks) == 3 and proportional.candidate_count == 30
    assert len(select(service, repo, spec("p2", proportion=0.11), files).picks) == 4


def test_bad_proportion_rejected(service: SelectorService, repo: PoolRepository) -> None:
    with pytest.raises(InvalidArgument, match="proportion_samples"):
        service.open_select(spec("bad", n_samples=-1, proportion=0.0), repo)
    with pytest.raises(InvalidArgument, match="min_distance"):
        service.open_select(spec("bad2", n_samples=1, min_distance=-1), repo)


def test_excludes_identities_already_pooled_and_respects_pool(
    service: SelectorService, repo: PoolRepository
) -> None:
    vectors = clustered_unit_vectors(seed=3, clusters=6, per_cluster=10)
    files = {file_ref("a.mp4"): vectors[:30], file_ref("b.mp4"): vectors[30:]}
    first = select(service, repo, spec("first", n_samples=10), files)
    outcome = service.commit("first", "t1", rendered_picks(first))
    assert isinstance(outcome, Committed) and outcome.version == 1
    # Same files again (as process_all sends them), min_distance 0: never the same frame twice.
    again = select(service, repo, spec("again", n_samples=60), files)
    assert again.candidate_count == 50
    assert len(again.picks) == 50
    assert not {p.identity for p in again.picks} & {p.identity for p in first.picks}
    # A changed etag is a different file version, so its frames are candidates again.
    changed = select(
        service, repo, spec("changed", n_samples=100), {file_ref("a.mp4", etag="e2"): vectors[:30]}
    )
    assert changed.candidate_count == 30


def test_picks_keep_min_distance_from_pool(service: SelectorService, repo: PoolRepository) -> None:
    vectors = clustered_unit_vectors(seed=4, clusters=10, per_cluster=10)
    first = select(
        service, repo, spec("first", n_samples=5, min_distance=0.5), {file_ref("a.mp4"): vectors[:50]}
    )
    assert isinstance(service.commit("first", "t1", rendered_picks(first)), Committed)
    second = select(
        service, repo, spec("second", n_samples=50, min_distance=0.5), {file_ref("b.mp4"): vectors}
    )
    pool = repo.load_state(repo.newest_manifest())
    picked = _picked_vectors(second)
    assert pairwise_min_distance(picked, pool.embeddings) >= 0.5 - TOL
    assert all(d >= 0.5 - TOL for d in earlier_min_distances(picked)[1:])
    assert not math.isinf(second.picks[0].distance)


def test_file_dropped_discards_and_incomplete_files_do_not_count(
    service: SelectorService, repo: PoolRepository
) -> None:
    vectors = clustered_unit_vectors(seed=5, clusters=2, per_cluster=5)
    stream = service.open_select(spec("drop", n_samples=100), repo)
    kept, dropped, unfinished = file_ref("kept.mp4"), file_ref("dropped.mp4"), file_ref("unfinished.mp4")
    for file in (kept, dropped, unfinished):
        stream.add_batch(file, list(range(10)), vectors.tobytes(), vectors.shape[1], "float32")
    stream.drop_file(dropped)
    stream.complete_file(kept, 10, "video")
    session = service.finish_select(stream)
    assert session.candidate_count == 10
    assert {p.file for p in session.picks} == {kept}
    assert session.processed == [kept]


def test_float16_input(service: SelectorService, repo: PoolRepository) -> None:
    vectors = clustered_unit_vectors(seed=6, clusters=4, per_cluster=5)
    session = select(service, repo, spec("f16", n_samples=4), {file_ref("a.mp4"): vectors}, dtype="float16")
    assert session.candidates.vectors.dtype == np.float32
    np.testing.assert_allclose(session.candidates.vectors, vectors, atol=1e-3)
    assert len(session.picks) == 4


def test_bad_batches_rejected(service: SelectorService, repo: PoolRepository) -> None:
    stream = service.open_select(spec("bad", n_samples=1), repo)
    with pytest.raises(InvalidArgument, match="bytes"):
        stream.add_batch(file_ref("a.mp4"), [0, 1], b"\0" * 12, 2, "float32")
    with pytest.raises(InvalidArgument, match="NaN"):
        stream.add_batch(file_ref("a.mp4"), [0], np.array([np.nan, 1], np.float32).tobytes(), 2, "float32")
    stream.add_batch(file_ref("a.mp4"), [5], np.ones(2, np.float32).tobytes(), 2, "float32")
    with pytest.raises(InvalidArgument, match="frame_count"):
        stream.complete_file(file_ref("a.mp4"), 3, "video")


def test_model_and_dim_must_match_pool(service: SelectorService, repo: PoolRepository) -> None:
    vectors = clustered_unit_vectors(seed=7, clusters=2, per_cluster=2)
    first = select(service, repo, spec("first", n_samples=1), {file_ref("a.mp4"): vectors})
    assert isinstance(service.commit("first", "t", rendered_picks(first)), Committed)
    with pytest.raises(FailedPrecondition, match=f"other-model.*{MODEL}"):
        service.open_select(spec("model", n_samples=1, model="other-model"), repo)
    stream = service.open_select(spec("dim", n_samples=1), repo)
    with pytest.raises(FailedPrecondition, match=r"dim 8.*dim 32"):
        stream.add_batch(file_ref("b.mp4"), [0], np.ones(8, np.float32).tobytes(), 8, "float32")


def test_duplicate_session_id_rejected(service: SelectorService, repo: PoolRepository) -> None:
    select(service, repo, spec("dup", n_samples=1), {file_ref("a.mp4"): clustered_unit_vectors(8, 1, 2)})
    with pytest.raises(AlreadyExists):
        service.open_select(spec("dup", n_samples=1), repo)


def test_replayed_file_keeps_one_row_per_frame(service: SelectorService, repo: PoolRepository) -> None:
    vectors = clustered_unit_vectors(seed=9, clusters=3, per_cluster=3)
    stream = service.open_select(spec("replay", n_samples=100), repo)
    file = file_ref("a.mp4")
    # A replica died mid-file and another streamed the whole file again.
    stream.add_batch(file, [0, 1, 2], vectors[:3].tobytes(), vectors.shape[1], "float32")
    stream.add_batch(file, list(range(9)), vectors.tobytes(), vectors.shape[1], "float32")
    stream.complete_file(file, 9, "video")
    session = service.finish_select(stream)
    assert session.candidate_count == 9 and len(session.picks) == 9
