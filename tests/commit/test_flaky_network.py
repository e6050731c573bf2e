"""Commits against S3, GCS and Azure emulators behind a proxy that drops, resets and delays connections.

Each commit either completes (the adapters' SDK retries with backoff ride out the faults)
or fails with a clear error; either way the pool is exactly the old or the new version,
and once the network heals the next commit succeeds.
"""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from commit_stores import CachingReads, MakeLocation, MemoryStore
from commit_support import Scenario, run_scenario
from flaky_proxy import Faults, FlakyProxy
from fork_trials import ForkServer
from pool_checks import check_invariants, pool_view
from trial_driver import PoolTrials

from datapool.errors import DatapoolError
from datapool.pool.repository import PoolRepository
from datapool.storage import StoreError, open_store
from datapool.v1 import common_pb2

COMMITS = 6
KILLED_TRIALS = 8
FAULTS = Faults(
    drop=0.1,
    reset=0.1,
    delay=0.2,
    delay_s=(0.001, 0.03),
    max_drops=2,
    max_resets=2,
    max_delays=60,
)


@pytest.fixture(params=["s3", "gcs", "azure"])
def cloud_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _endpoint(location: common_pb2.StoreLocation) -> tuple[object, str]:
    kind = location.WhichOneof("kind")
    assert kind in ("s3", "gcs", "azure")
    message = getattr(location, kind)
    return message, str(message.endpoint_url)


@pytest.fixture
def flaky(
    cloud_kind: str, make_location: MakeLocation
) -> Iterator[tuple[common_pb2.StoreLocation, common_pb2.StoreLocation, FlakyProxy]]:
    """(healthy location, the same pool behind the proxy, the proxy)."""
    location = make_location(cloud_kind)
    _, url = _endpoint(location)
    port = urlsplit(url).port
    assert port is not None and urlsplit(url).hostname == "127.0.0.1"
    proxy = FlakyProxy(port, seed=sum(map(ord, cloud_kind)))
    through = common_pb2.StoreLocation()
    through.CopyFrom(location)
    message, _ = _endpoint(through)
    message.endpoint_url = proxy.rewrite(url)  # type: ignore[attr-defined]
    try:
        yield location, through, proxy
    finally:
        proxy.stop()


def test_commits_survive_a_flaky_network(
    flaky: tuple[common_pb2.StoreLocation, common_pb2.StoreLocation, FlakyProxy],
) -> None:
    healthy, through, proxy = flaky
    checker = PoolRepository(CachingReads(open_store(healthy)))
    store = open_store(through)
    shadow = MemoryStore()
    proxy.inject(FAULTS)
    completed, failed = 0, []
    for i in range(COMMITS):
        earlier = (f"net{i - 1}/a.mp4",) if i else ()
        scenario = Scenario(f"net{i}", (f"net{i}/a.mp4", *earlier), n_samples=3)
        old = pool_view(PoolRepository(shadow))
        reference = shadow.copy()
        run_scenario(reference, scenario)
        new = pool_view(PoolRepository(reference))
        try:
            run_scenario(store, scenario)
            completed += 1
        except (DatapoolError, StoreError) as e:
            # A clear error: names what failed and where.
            assert str(e) and ("cannot" in str(e) or store.describe() in str(e)), repr(e)
            failed.append(str(e))
        view = check_invariants(checker)
        assert view in (old, new), f"pool at {view.describe()} after {'; '.join(failed)}"
        shadow = reference if view == new else shadow
    stats = proxy.stats
    assert stats.drops + stats.resets > 0, stats
    print(
        f"\n{healthy.WhichOneof('kind')}: {completed} commit(s) completed, {len(failed)} failed cleanly "
        f"through {stats.connections} connections ({stats.drops} dropped, {stats.resets} reset, "
        f"{stats.delays} chunks delayed)"
    )
    proxy.heal()
    run_scenario(store, Scenario("healed", ("healed/a.mp4",), n_samples=3))
    assert check_invariants(checker).segments[-1].run_id == "healed"


def test_kills_mid_transfer_behind_a_slow_network(
    flaky: tuple[common_pb2.StoreLocation, common_pb2.StoreLocation, FlakyProxy], fork_server: ForkServer
) -> None:
    """SIGKILLs at random moments while the proxy holds bytes back, so many land mid-request."""
    healthy, through, proxy = flaky
    trials = PoolTrials(through, open_store(healthy), fork_server, seed=11, before_settle=proxy.wait_quiet)
    proxy.inject(Faults(delay=0.5, delay_s=(0.002, 0.02), max_delays=10_000))
    commit_s = trials.calibrate()
    for _ in range(KILLED_TRIALS):
        if trials.random_trial(1.2 * commit_s) != "new":
            trials.follow_up()
    assert trials.stats.killed > 0
    print(
        f"\n{healthy.WhichOneof('kind')}: {trials.stats.random_trials} kills behind a slow proxy, "
        f"{trials.stats.killed} mid-commit; outcomes {trials.stats.outcomes}"
    )
