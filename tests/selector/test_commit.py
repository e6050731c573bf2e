from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from selector_helpers import (
    clustered_unit_vectors,
    earlier_min_distances,
    file_ref,
    pairwise_min_distance,
    rendered,
    rendered_picks,
    select,
    spec,
)

from datapool.errors import FailedPrecondition, InvalidArgument, NotFound
from datapool.pool.repository import PoolRepository
from datapool.storage import ForwardingStore, Store, StoreError
from services.selector.errors import CommitAborted
from services.selector.queries import pool_summary, processed_file_chunks
from services.selector.service import SelectorService
from services.selector.session import Committed, NeedFrames, SessionRegistry

TOL = 1e-5


def test_sequential_commits_grow_the_pool(service: SelectorService, repo: PoolRepository) -> None:
    vectors = clustered_unit_vectors(seed=10, clusters=8, per_cluster=8)
    for i in range(3):
        files = {file_ref(f"clip{i}.mp4"): vectors[i * 20 : (i + 1) * 20]}
        session = select(service, repo, spec(f"s{i}", n_samples=4), files)
        assert session.base_version == i
        outcome = service.commit(f"s{i}", f"tag{i}", rendered_picks(session))
        assert outcome == Committed(i + 1, session.picks, f"tag{i}", 1)
    summary = pool_summary(repo)
    assert (summary.version, summary.frame_count, summary.dim) == (3, 12, 32)
    assert [t.tag for t in summary.tags] == ["tag0", "tag1", "tag2"]
    state = repo.load_state(repo.newest_manifest())
    assert len(state.identities) == 12
    assert state.frames[0].key == f"frames/run-s0/{state.frames[0].frame_name}"


def test_commit_with_no_picks_records_processed_files(service: SelectorService, repo: PoolRepository) -> None:
    session = select(
        service, repo, spec("none", n_samples=0), {file_ref("a.mp4"): clustered_unit_vectors(1, 1, 3)}
    )
    outcome = service.commit("none", "ignored", {})
    assert outcome == Committed(1, [], "", 1)
    assert session.processed == [file_ref("a.mp4")]
    assert list(processed_file_chunks(repo)) == [[file_ref("a.mp4")]]
    assert pool_summary(repo).tags == ()


def test_commit_is_idempotent_and_validates(service: SelectorService, repo: PoolRepository) -> None:
    session = select(
        service, repo, spec("s", n_samples=2), {file_ref("a.mp4"): clustered_unit_vectors(2, 2, 3)}
    )
    assert service.commit("s", "t", {}) == NeedFrames(session.picks, 0)
    with pytest.raises(InvalidArgument, match="reserved"):
        service.commit("s", "initial-tag", rendered_picks(session))
    with pytest.raises(InvalidArgument, match="tag_name is empty"):
        service.commit("s", "", rendered_picks(session))
    first = service.commit("s", "t", rendered_picks(session))
    assert service.commit("s", "t", {}) == first
    assert repo.newest_version() == 1
    with pytest.raises(NotFound, match="nope"):
        service.commit("nope", "t", {})
    service.close_session("s")
    with pytest.raises(NotFound):
        service.commit("s", "t", {})


def test_race_loser_redoes_selection_against_winner(service: SelectorService, repo: PoolRepository) -> None:
    vectors = clustered_unit_vectors(seed=11, clusters=10, per_cluster=12)
    shared, only_a, only_b = file_ref("shared.mp4"), file_ref("a.mp4"), file_ref("b.mp4")
    files_a = {shared: vectors[:60], only_a: vectors[60:90]}
    files_b = {shared: vectors[:60], only_b: vectors[90:]}
    a = select(service, repo, spec("a", n_samples=6, min_distance=0.3), files_a)
    b = select(service, repo, spec("b", n_samples=6, min_distance=0.3), files_b)
    assert a.base_version == b.base_version == 0
    assert {p.identity for p in a.picks} & {p.identity for p in b.picks}, "the test needs overlapping picks"
    assert isinstance(service.commit("a", "ta", rendered_picks(a)), Committed)

    frames = rendered_picks(b)
    outcome = service.commit("b", "tb", frames)
    rounds = 0
    while isinstance(outcome, NeedFrames):
        rounds += 1
        assert outcome.base_version == 1
        frames |= {p.frame_name: f"frames/b/{p.frame_name}" for p in outcome.picks}
        outcome = service.commit("b", "tb", frames)
    assert isinstance(outcome, Committed) and outcome.version == 2
    assert rounds == 1 and outcome.attempts == 1

    pool = repo.load_state(repo.newest_manifest())
    assert len(pool.identities) == len(pool.frames), "no identity pooled twice"
    b_rows = np.arange(len(pool.frames))[[s == "b" for s in _segment_runs(repo)]]
    a_rows = np.arange(len(pool.frames))[[s == "a" for s in _segment_runs(repo)]]
    b_vectors = pool.embeddings[b_rows]
    assert pairwise_min_distance(b_vectors, pool.embeddings[a_rows]) >= 0.3 - TOL
    assert all(d >= 0.3 - TOL for d in earlier_min_distances(b_vectors)[1:])


def test_race_loser_reports_the_pool_its_commit_produced(
    service: SelectorService, repo: PoolRepository
) -> None:
    vectors = clustered_unit_vectors(seed=12, clusters=10, per_cluster=6)
    a = select(service, repo, spec("a", n_samples=5), {file_ref("a.mp4"): vectors[:30]})
    b = select(service, repo, spec("b", n_samples=5), {file_ref("b.mp4"): vectors[30:]})
    won = service.commit("a", "ta", rendered_picks(a))
    assert isinstance(won, Committed) and won.pool_frame_count == 5
    frames = rendered_picks(b)
    outcome = service.commit("b", "tb", frames)
    while isinstance(outcome, NeedFrames):
        frames |= {p.frame_name: f"frames/b/{p.frame_name}" for p in outcome.picks}
        outcome = service.commit("b", "tb", frames)
    assert isinstance(outcome, Committed) and outcome.version == 2
    # b started from an empty pool; its commit produced the pool with a's frames as well.
    assert outcome.pool_frame_count == pool_summary(repo).frame_count == 5 + len(outcome.picks)


def _segment_runs(repo: PoolRepository) -> list[str]:
    manifest = repo.newest_manifest()
    assert manifest is not None
    return [s.run_id.removeprefix("run-") for s in manifest.segments for _ in range(s.frame_count)]


def test_race_loser_with_all_frames_rendered_retries_at_once(
    service: SelectorService, repo: PoolRepository
) -> None:
    vectors = clustered_unit_vectors(seed=12, clusters=6, per_cluster=10)
    files = {file_ref("shared.mp4"): vectors}
    a = select(service, repo, spec("a", n_samples=5), files)
    b = select(service, repo, spec("b", n_samples=5), files)
    assert isinstance(service.commit("a", "ta", rendered_picks(a)), Committed)
    outcome = service.commit("b", "tb", rendered(b))
    assert isinstance(outcome, Committed)
    assert outcome.version == 2 and outcome.attempts == 1
    assert not {p.identity for p in outcome.picks} & {p.identity for p in a.picks}


class _LostReplyStore(ForwardingStore):
    """Creates the manifest, then reports a transport error, as a dropped reply would."""

    def __init__(self, inner: Store, lost_puts: int = 1, report_exists: bool = False) -> None:
        super().__init__(inner)
        self.lost_puts = lost_puts
        self.report_exists = report_exists

    def put_if_absent(self, key: str, data: bytes) -> bool:
        created = self.inner.put_if_absent(key, data)
        if self.lost_puts:
            self.lost_puts -= 1
            if self.report_exists:
                return False
            raise StoreError("connection reset")
        return created


@pytest.mark.parametrize("report_exists", [False, True], ids=["error-then-exists", "exists"])
def test_ambiguous_retry_is_our_own_success(
    service: SelectorService, repo: PoolRepository, report_exists: bool
) -> None:
    flaky = PoolRepository(_LostReplyStore(repo.store, report_exists=report_exists))
    session = select(
        service, flaky, spec("s", n_samples=3), {file_ref("a.mp4"): clustered_unit_vectors(3, 3, 3)}
    )
    outcome = service.commit("s", "t", rendered_picks(session))
    assert isinstance(outcome, Committed) and outcome.version == 1 and outcome.attempts == 1
    assert repo.newest_version() == 1
    assert pool_summary(repo).frame_count == 3


def test_bounded_attempts(repo: PoolRepository) -> None:
    class AlwaysTaken(_LostReplyStore):
        def put_if_absent(self, key: str, data: bytes) -> bool:
            return False

    service = SelectorService()
    service.committer.max_attempts = 3
    taken = PoolRepository(AlwaysTaken(repo.store))
    session = select(
        service, taken, spec("s", n_samples=1), {file_ref("a.mp4"): clustered_unit_vectors(4, 1, 2)}
    )
    with pytest.raises(CommitAborted, match="3 times"):
        service.commit("s", "t", rendered_picks(session))


def test_sessions_expire_when_idle(repo: PoolRepository) -> None:
    now = [0.0]
    service = SelectorService(sessions=SessionRegistry(ttl_seconds=3600, clock=lambda: now[0]))
    select(service, repo, spec("old", n_samples=1), {file_ref("a.mp4"): clustered_unit_vectors(5, 1, 2)})
    now[0] = 3599.0
    service.sessions.get("old")
    now[0] = 3599.0 + 3601.0
    with pytest.raises(NotFound, match="expired"):
        service.commit("old", "t", {})
    assert len(service.sessions) == 0


def test_concurrent_commits_through_threads(service: SelectorService, repo: PoolRepository) -> None:
    vectors = clustered_unit_vectors(seed=13, clusters=8, per_cluster=6)
    files = {file_ref("shared.mp4"): vectors}
    sessions = [select(service, repo, spec(f"t{i}", n_samples=4), files) for i in range(4)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(
            pool.map(lambda s: service.commit(s.spec.session_id, s.spec.session_id, rendered(s)), sessions)
        )
    assert all(isinstance(o, Committed) for o in outcomes)
    assert sorted(o.version for o in outcomes if isinstance(o, Committed)) == [1, 2, 3, 4]
    state = repo.load_state(repo.newest_manifest())
    assert len(state.frames) == len(state.identities) == 16


def test_a_second_attempt_of_a_run_cannot_commit_after_the_first_did(
    service: SelectorService, repo: PoolRepository
) -> None:
    # Two scheduler replicas ran one run (one lost its lease, alive): whichever commits second
    # is refused, so the pool never holds the run twice.
    vectors = clustered_unit_vectors(seed=12, clusters=6, per_cluster=6)
    files = {file_ref("a.mp4"): vectors}
    first = select(service, repo, spec("first", n_samples=3, run_id="run-1"), files)
    second = select(service, repo, spec("second", n_samples=3, run_id="run-1"), files)
    assert service.commit("first", "tag-1", rendered_picks(first)) == Committed(1, first.picks, "tag-1", 1)
    with pytest.raises(
        FailedPrecondition, match=r"run 'run-1' already committed pool version 1 \(tag 'tag-1'\)"
    ):
        service.commit("second", "tag-2", rendered_picks(second))
    assert repo.newest_version() == 1
    other = select(service, repo, spec("other", n_samples=3, run_id="run-2"), files)
    assert isinstance(service.commit("other", "tag-3", rendered_picks(other)), Committed | NeedFrames)
