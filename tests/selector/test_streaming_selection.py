"""Candidates measured against the pool while they stream: the picks must not depend on it."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
import pytest
from greedy_reference import pick_distances64
from selector_helpers import (
    F32,
    MODEL,
    clustered_unit_vectors,
    file_ref,
    rendered,
    rendered_picks,
    select,
    spec,
)

from datapool.errors import InvalidArgument
from datapool.pool.layout import PoolManifest, PoolSegment
from datapool.pool.repository import PoolRepository
from datapool.pool.state import PoolFrame
from services.selector.model import FileRef, FrameIdentity, Pick
from services.selector.selection import select_picks
from services.selector.service import SelectorService, SelectStream
from services.selector.session import Committed, SelectionSession, SelectionSpec

DIM = 32


def _stream(
    service: SelectorService,
    repo: PoolRepository,
    selection: SelectionSpec,
    files: Mapping[FileRef, F32],
    completion_order: Sequence[FileRef],
    batch_rows: int = 5,
) -> SelectionSession:
    """Streams all files' batches interleaved (as parallel replicas would), each file's
    batches in a shuffled frame order, and completes the files in `completion_order`."""
    rng = np.random.default_rng(len(completion_order))
    stream = service.open_select(selection, repo)
    pending = {f: list(range(0, len(v), batch_rows)) for f, v in files.items()}
    for f in pending:
        rng.shuffle(pending[f])
    while any(pending.values()):
        for file in completion_order:
            if pending[file]:
                start = pending[file].pop()
                block = files[file][start : start + batch_rows]
                stream.add_batch(
                    file, list(range(start, start + len(block))), block.tobytes(), DIM, "float32"
                )
    for file in completion_order:
        stream.complete_file(file, len(files[file]), "video")
    return service.finish_select(stream)


def _summary(picks: Sequence[Pick]) -> list[tuple[str, int, str, float, int]]:
    return [(p.file.path, p.frame_index, p.frame_name, p.distance, p.row) for p in picks]


def _files(seed: int, sizes: Sequence[int]) -> dict[FileRef, F32]:
    vectors = clustered_unit_vectors(seed=seed, clusters=8, per_cluster=sum(sizes) // 8 + 1)
    rng = np.random.default_rng(seed)
    vectors = vectors[rng.permutation(len(vectors))]
    files, start = {}, 0
    for i, size in enumerate(sizes):
        files[file_ref(f"clip{i}.mp4")] = vectors[start : start + size]
        start += size
    return files


def _picks_by_completion_order(
    service: SelectorService, repo: PoolRepository, files: dict[FileRef, F32], label: str
) -> list[SelectionSession]:
    order = list(files)
    sessions = []
    for i, completion in enumerate([order, order[::-1], [order[2], order[4], order[0], order[3], order[1]]]):
        session = _stream(service, repo, spec(f"{label}{i}", n_samples=20), files, completion)
        assert session.candidate_count == sum(len(v) for v in files.values())
        assert len(session.picks) == 20
        sessions.append(session)
    return sessions


def test_completion_order_does_not_change_the_picks(service: SelectorService, repo: PoolRepository) -> None:
    files = _files(seed=21, sizes=[17, 9, 23, 1, 12])
    # Without a pool the first pick is the first candidate in (file, frame_index) order.
    empty = _picks_by_completion_order(service, repo, files, "empty")
    assert empty[0].picks[0].identity == FrameIdentity(min(files), 0)
    assert _summary(empty[0].picks) == _summary(empty[1].picks) == _summary(empty[2].picks)

    pooled = {file_ref("pooled.mp4"): clustered_unit_vectors(seed=22, clusters=3, per_cluster=4)}
    first = select(service, repo, spec("pool", n_samples=5), pooled)
    assert isinstance(service.commit("pool", "t0", rendered_picks(first)), Committed)
    against_pool = _picks_by_completion_order(service, repo, files, "pooled")
    assert (
        _summary(against_pool[0].picks) == _summary(against_pool[1].picks) == _summary(against_pool[2].picks)
    )
    # The same picks as selecting from scratch over the finished candidate set.
    for session in (empty[1], against_pool[1]):
        assert _summary(select_picks(session.candidates, session.pool, 20, 0.0)) == _summary(session.picks)


def test_picks_map_back_to_their_candidate_rows(service: SelectorService, repo: PoolRepository) -> None:
    files = _files(seed=23, sizes=[10, 15, 8])
    session = _stream(service, repo, spec("map", n_samples=33), files, list(files)[::-1])
    assert len(session.picks) == 33
    for pick in session.picks:
        assert session.candidates.identities[pick.row] == pick.identity
        assert session.candidates.frame_names[pick.row] == pick.frame_name
        np.testing.assert_array_equal(
            session.candidates.vectors[pick.row], files[pick.file][pick.frame_index]
        )


def test_dropped_file_is_not_selected_from(service: SelectorService, repo: PoolRepository) -> None:
    files = _files(seed=24, sizes=[12, 12])
    kept, dropped, redone = file_ref("kept.mp4"), file_ref("dropped.mp4"), file_ref("redone.mp4")
    far = -files[file_ref("clip0.mp4")][:4]  # far from every other row, so it would be picked first
    stream: SelectStream = service.open_select(spec("drop", n_samples=100), repo)
    stream.add_batch(kept, list(range(12)), files[file_ref("clip0.mp4")].tobytes(), DIM, "float32")
    stream.add_batch(dropped, list(range(4)), far.tobytes(), DIM, "float32")
    stream.add_batch(redone, list(range(4)), far.tobytes(), DIM, "float32")
    # Dropped after it completed (its block is already measured) and before.
    stream.complete_file(dropped, 4, "video")
    stream.complete_file(redone, 4, "video")
    stream.drop_file(dropped)
    stream.drop_file(redone)
    # A dropped file may be streamed again and count once, with its new vectors.
    second = files[file_ref("clip1.mp4")][:6]
    stream.add_batch(redone, list(range(6)), second.tobytes(), DIM, "float32")
    stream.complete_file(kept, 12, "video")
    stream.complete_file(redone, 6, "video")
    session = service.finish_select(stream)
    assert session.candidate_count == 18 and len(session.picks) == 18
    assert {p.file for p in session.picks} == {kept, redone}
    assert session.processed == [kept, redone]
    redone_picks = sorted((p for p in session.picks if p.file == redone), key=lambda p: p.frame_index)
    picked = session.candidates.vectors[[p.row for p in redone_picks]]
    np.testing.assert_array_equal(picked, second)


def test_batches_after_file_complete_are_still_refused(
    service: SelectorService, repo: PoolRepository
) -> None:
    vectors = clustered_unit_vectors(seed=25, clusters=1, per_cluster=3)
    stream = service.open_select(spec("late", n_samples=1), repo)
    stream.add_batch(file_ref("a.mp4"), [0, 1, 2], vectors.tobytes(), DIM, "float32")
    stream.complete_file(file_ref("a.mp4"), 3, "video")
    with pytest.raises(InvalidArgument, match="arrived after its file_complete"):
        stream.add_batch(file_ref("a.mp4"), [1], vectors[1].tobytes(), DIM, "float32")


def test_already_pooled_frames_are_excluded(service: SelectorService, repo: PoolRepository) -> None:
    files = _files(seed=26, sizes=[20, 20])
    first = select(service, repo, spec("first", n_samples=8), files)
    assert isinstance(service.commit("first", "t1", rendered_picks(first)), Committed)
    pooled = {p.identity for p in first.picks}
    # The same files again, plus a new one, completing in another order.
    more = {**files, file_ref("new.mp4"): clustered_unit_vectors(seed=27, clusters=2, per_cluster=5)}
    again = _stream(service, repo, spec("again", n_samples=100), more, list(more)[::-1])
    assert again.candidate_count == 50 - 8
    assert len(again.picks) == 42
    assert not {p.identity for p in again.picks} & pooled
    # Once every frame is pooled there is nothing left to pick, and that is no error.
    assert isinstance(service.commit("again", "t2", rendered_picks(again)), Committed)
    last = _stream(service, repo, spec("last", n_samples=10), more, list(more))
    assert last.candidate_count == 0 and last.picks == []
    assert len(last.candidates) == 50


def test_reported_distances_are_true_distances(service: SelectorService, repo: PoolRepository) -> None:
    files = _files(seed=28, sizes=[30, 25, 25])
    base = {file_ref("base.mp4"): clustered_unit_vectors(seed=29, clusters=6, per_cluster=5)}
    first = select(service, repo, spec("first", n_samples=6), base)
    assert math.isinf(first.picks[0].distance)
    assert isinstance(service.commit("first", "t1", rendered_picks(first)), Committed)
    session = select(service, repo, spec("d", n_samples=40), files, dtype="float16")
    picked = session.candidates.vectors[[p.row for p in session.picks]]
    true = pick_distances64(picked, session.pool.embeddings, range(len(picked)))
    assert len(session.picks) == 40
    np.testing.assert_allclose([p.distance for p in session.picks], true, rtol=0, atol=1e-4)


def test_redone_picks_after_a_lost_race_report_true_distances(
    service: SelectorService, repo: PoolRepository
) -> None:
    files = _files(seed=30, sizes=[30, 30])
    a = select(service, repo, spec("a", n_samples=5), files)
    b = select(service, repo, spec("b", n_samples=8), files)
    assert isinstance(service.commit("a", "ta", rendered_picks(a)), Committed)
    outcome = service.commit("b", "tb", rendered(b))
    assert isinstance(outcome, Committed) and outcome.version == 2
    session = service.sessions.get("b")
    assert session.base_version == 1
    assert not {p.identity for p in session.picks} & {p.identity for p in a.picks}
    picked = session.candidates.vectors[[p.row for p in session.picks]]
    true = pick_distances64(picked, session.pool.embeddings, range(len(picked)))
    np.testing.assert_allclose([p.distance for p in session.picks], true, rtol=0, atol=1e-4)


def test_values_selector_rs_refuses_are_invalid_arguments(
    service: SelectorService, repo: PoolRepository
) -> None:
    stream = service.open_select(spec("huge", n_samples=1), repo)
    huge = np.full((1, DIM), 1e16, dtype=np.float32)
    stream.add_batch(file_ref("huge.mp4"), [0], huge.tobytes(), DIM, "float32")
    with pytest.raises(InvalidArgument, match=r"huge\.mp4.*vectors"):
        stream.complete_file(file_ref("huge.mp4"), 1, "video")


def test_a_pool_selector_rs_refuses_fails_open_select_and_frees_the_session_id(
    service: SelectorService, repo: PoolRepository
) -> None:
    file = file_ref("old.mp4")
    frames = [PoolFrame("old-0-mp4.png", "frames/old-0-mp4.png", file, 0)]
    vectors = np.full((1, DIM), 1e16, dtype=np.float32)
    keys = repo.write_segment_data("c" * 32, frames, vectors, [file])
    segment = PoolSegment("c" * 32, "r", 1, "t", 0, 1, keys)
    assert repo.create_manifest(PoolManifest(1, "c" * 32, "r", 0, MODEL, DIM, (segment,)))
    with pytest.raises(InvalidArgument, match="the pool"):
        service.open_select(spec("bad-pool", n_samples=1), repo)
    assert len(service.sessions) == 0
