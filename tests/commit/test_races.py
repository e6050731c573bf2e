"""Many writers committing to one pool at once, each with its own session and store client."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from commit_stores import NewPool
from commit_support import writer_run
from pool_checks import check_invariants, pool_view

from datapool.pool.repository import PoolRepository
from datapool.storage import open_store
from services.selector.session import Committed

WRITERS = 6
ROUNDS = 2


def test_concurrent_writers_lose_nothing_and_duplicate_nothing(new_pool: NewPool) -> None:
    location, store = new_pool()
    start = threading.Barrier(WRITERS)

    def writer(i: int) -> list[Committed]:
        # Its own client, as a separate selector process would have.
        own = open_store(location)
        outcomes = []
        for r in range(ROUNDS):
            if r == 0:
                start.wait()
            # Every writer also offers the shared files, so their frames are contested.
            files = (f"w{i}-r{r}/a.mp4", f"shared-{r}/a.mp4", f"shared-{r}/b.mp4")
            outcomes.append(writer_run(own, f"w{i}-r{r}", files, n_samples=4))
        return outcomes

    with ThreadPoolExecutor(WRITERS) as pool:
        results = [c for cs in pool.map(writer, range(WRITERS)) for c in cs]

    view = check_invariants(PoolRepository(store))
    # Versions contiguous: one per commit, none lost, none doubled.
    assert (
        sorted(c.version for c in results)
        == list(range(1, WRITERS * ROUNDS + 1))
        == [s.version for s in view.segments]
    )
    pooled = [f[0] for s in view.segments for f in s.frames]
    committed = [p.frame_name for c in results for p in c.picks]
    # Every committed frame is in the pool exactly once, under its writer's tag.
    assert sorted(pooled) == sorted(committed)
    by_tag = {s.tag: {f[0] for f in s.frames} for s in view.segments}
    for c in results:
        if c.picks:
            assert {p.frame_name for p in c.picks} == by_tag[c.tag_name]
    assert sum(c.attempts for c in results) > len(results), "the writers never actually raced"
    assert pool_view(PoolRepository(open_store(location))) == view
