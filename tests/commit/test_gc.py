"""`datapool gc` on every store: orphans of crashed and lost commits go, nothing referenced does."""

from __future__ import annotations

import time

import pytest
from commit_stores import CachingReads, NewPool
from commit_support import writer_run
from fork_trials import ForkServer
from pool_checks import check_invariants, pool_view
from trial_driver import PoolTrials

from datapool import cli
from datapool.pool.gc import collect_garbage
from datapool.pool.layout import DATA_PREFIX
from datapool.pool.repository import PoolRepository
from datapool.storage import ObjectInfo, Store
from datapool.v1 import common_pb2

# Crashes that leave orphans: frames only, part of the data objects, all of them, a lost race's.
ORPHANING_CRASHES = [
    ("selector.commit.before_data", ""),
    ("selector.commit.after_data.embeddings", ""),
    ("selector.commit.after_data", ""),
    ("selector.commit.lost_race", "at_put"),
]


def _objects(store: Store) -> dict[str, ObjectInfo]:
    return {i.key: i for prefix in (DATA_PREFIX, "frames/") for i in store.list(prefix)}


def _referenced(store: Store) -> set[str]:
    repo = PoolRepository(store)
    manifest = repo.newest_manifest()
    assert manifest is not None
    keys: set[str] = set()
    for segment in manifest.segments:
        keys.update((segment.keys.entries, segment.keys.embeddings, segment.keys.processed))
        keys.update(f.key for f in repo.load_frames(segment))
    return keys


def _crashed_pool(new_pool: NewPool, fork_server: ForkServer) -> tuple[common_pb2.StoreLocation, Store]:
    location, store = new_pool()
    trials = PoolTrials(location, store, fork_server, seed=7)
    trials.calibrate()
    for fault, rival in ORPHANING_CRASHES:
        trials.fault_trial(fault, rival)
    trials.follow_up()
    return location, store


def test_gc_removes_orphans_and_nothing_else(new_pool: NewPool, fork_server: ForkServer) -> None:
    _, store = _crashed_pool(new_pool, fork_server)
    before = _objects(store)
    referenced = _referenced(store)
    orphans = set(before) - referenced
    assert orphans, "the crashes left no orphans to collect"
    assert any(k.startswith("frames/") for k in orphans) and any(k.startswith(DATA_PREFIX) for k in orphans)
    view = pool_view(PoolRepository(store))

    # Everything is younger than the default grace period: an in-flight commit looks just like this.
    young = collect_garbage(store)
    assert not young.deleted and {o.key for o in young.kept_young} == orphans
    dry = collect_garbage(store, min_age_s=0, dry_run=True)
    assert {o.key for o in dry.deleted} == orphans
    assert _objects(store) == before

    # Half the orphans are old enough: only those go.
    old_keys = set(sorted(orphans)[::2])
    now = time.time()
    report = collect_garbage(
        store, min_age_s=600, modified_time=lambda _s, info: now - 3600 if info.key in old_keys else now
    )
    assert {o.key for o in report.deleted} == old_keys
    assert set(_objects(store)) == set(before) - old_keys

    report = collect_garbage(store, min_age_s=0)
    assert {o.key for o in report.deleted} == orphans - old_keys
    after = _objects(store)
    assert set(after) == referenced
    # Referenced objects untouched: same size and etag.
    assert all(after[k] == before[k] for k in referenced)
    repo = PoolRepository(CachingReads(store))
    assert check_invariants(repo) == view
    # And the pool still takes commits.
    writer_run(store, "after-gc", ("after-gc/a.mp4",), 2)
    assert check_invariants(PoolRepository(store)).version == view.version + 1


def _pool_url(location: common_pb2.StoreLocation) -> list[str]:
    kind = location.WhichOneof("kind")
    if kind == "local":
        return ["--pool", location.local.root]
    if kind == "s3":
        s3 = location.s3
        args = ["--pool", f"s3://{s3.bucket}/{s3.prefix}", "--endpoint-url", s3.endpoint_url]
        return args + (["--region", s3.region] if s3.region else [])
    if kind == "gcs":
        return [
            "--pool",
            f"gs://{location.gcs.bucket}/{location.gcs.prefix}",
            "--endpoint-url",
            location.gcs.endpoint_url,
        ]
    az = location.azure
    return [
        "--pool",
        f"azure://{az.account_name}/{az.container}/{az.prefix}",
        "--endpoint-url",
        az.endpoint_url,
        "--sas-token",
        az.sas_token,
    ]


def test_gc_command(
    new_pool: NewPool,
    fork_server: ForkServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    location, store = _crashed_pool(new_pool, fork_server)
    if location.WhichOneof("kind") == "s3":
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", location.s3.access_key.access_key_id)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", location.s3.access_key.secret_access_key)
    before = _objects(store)
    orphans = set(before) - _referenced(store)

    def gc(*extra: str) -> str:
        with pytest.raises(SystemExit) as exit_info:
            cli.main(["gc", *_pool_url(location), *extra])
        out, err = capsys.readouterr()
        assert exit_info.value.code == 0, err
        return out

    out = gc("--dry-run", "--min-age", "0")
    assert f"would delete {len(orphans)} orphaned object(s)" in out
    assert all(f"would delete {k} " in out for k in orphans)
    assert _objects(store) == before
    out = gc()
    assert "deleted 0 orphaned object(s)" in out and f"{len(orphans)} orphan(s) kept" in out
    out = gc("--min-age", "0")
    assert f"deleted {len(orphans)} orphaned object(s)" in out
    assert set(_objects(store)) == set(before) - orphans
