"""The embedding cache through a real `datapool up`, on a local folder and on S3 (moto): a
`process_all` run over unchanged files embeds nothing; new and changed files, another sampling
rule and an unusable entry are embedded; picks from cached vectors equal picks from embedded ones.

What the embedders did is read from their own logs, apart from the scheduler's report."""

from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from datasource_setup import set_location
from e2e_support import RunningStack, pool_embeddings, processed_paths, run, selection, wait_end

from datapool import ApiWorkflowClient, DatasetType, DatasourcePurpose
from datapool.channels import wait_healthy
from datapool.config import FrameSampling
from datapool.pool.cache_entry import CacheScope
from datapool.pool.files import FileRef
from datapool.pool.layout import EMBEDDING_CACHE_PREFIX
from datapool.samples import make_video
from datapool.storage import Store, open_store
from datapool.v1 import common_pb2
from services.common.faults import held, hold, release
from services.scheduler.pipeline import cache_sampling_key
from services.selector.embedding_cache import EmbeddingCache

pytestmark = pytest.mark.e2e
FRAMES = 6
SELECTION = selection(0.05, n=5)
EVERY_2ND = {"frame_sampling": {"every_nth": 2}}
_EMBEDDED = re.compile(r"embedded (\S+): \d+ frames")


class EmbedderLog:
    """Which files the embedders embedded since the last call, from their log files."""

    def __init__(self, stack: RunningStack) -> None:
        self.logs = stack.state_dir / "logs"
        self.seen = self._counts()

    def _counts(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for log in self.logs.glob("embedder-*.log"):
            counts.update(m.group(1) for m in _EMBEDDED.finditer(log.read_text(errors="replace")))
        return counts

    def since_last(self) -> list[str]:
        now = self._counts()
        new = now - self.seen
        self.seen = now
        return sorted(new.elements())


def put_video(store: Store, tmp: Path, name: str, seed: int) -> None:
    path = make_video(tmp / f"{seed}-{name}", scene_seed=seed, n_frames=FRAMES)
    store.put(name, path.read_bytes())


def cache_stats(report: dict[str, Any]) -> tuple[int, int, int]:
    cache = report["embedding_cache"]
    return cache["files_from_cache"], cache["files_embedded"], cache["unusable_entries"]


def picks(report: dict[str, Any]) -> list[tuple[str, int, float]]:
    return [(p["frame_name"], p["frame_index"], round(p["distance"], 6)) for p in report["selected"]]


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_embedding_cache_end_to_end(
    stack: RunningStack, make_location: Callable[..., common_pb2.StoreLocation], tmp_path: Path, kind: str
) -> None:
    inp, pool = make_location(kind, "input/"), make_location(kind, "lightly/")
    source = open_store(inp)
    names = [f"cache-{kind}-{i}.mp4" for i in range(4)]
    for i, name in enumerate(names[:3]):
        put_video(source, tmp_path, name, seed=i)
    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    client.create_dataset(dataset_name=f"cache-{kind}-{tmp_path.name}", dataset_type=DatasetType.VIDEOS)
    set_location(client, inp, DatasourcePurpose.INPUT)
    set_location(client, pool, DatasourcePurpose.LIGHTLY)
    embedded = EmbedderLog(stack)
    process_all: dict[str, Any] = {"datasource": {"process_all": True}}

    # First run: everything is embedded, and each file's vectors are cached.
    _, first = run(client, {}, SELECTION)
    assert cache_stats(first) == (0, 3, 0)
    assert first["embedding_cache"]["entries_written"] == 3
    assert first["frames"]["embedded"] == 3 * FRAMES and first["frames"]["from_cache"] == 0
    assert embedded.since_last() == names[:3]

    # process_all over the unchanged files: nothing reaches an embedder.
    _, hit = run(client, process_all, SELECTION)
    assert cache_stats(hit) == (3, 0, 0)
    assert hit["frames"]["embedded"] == 0 and hit["frames"]["from_cache"] == 3 * FRAMES
    assert hit["embedding_cache"]["entries_written"] == 0
    assert processed_paths(hit) == set(names[:3])
    assert embedded.since_last() == []

    # A changed file and a new one are embedded; the others still come from the cache.
    put_video(source, tmp_path, names[1], seed=11)
    put_video(source, tmp_path, names[3], seed=3)
    _, changed = run(client, process_all, SELECTION)
    assert cache_stats(changed) == (2, 2, 0)
    assert embedded.since_last() == [names[1], names[3]]
    assert {p["path"] for p in changed["files"]["processed"] if p["from_cache"]} == {names[0], names[2]}

    # Another sampling rule misses everything once, then hits.
    _, sampled = run(client, {**process_all, **EVERY_2ND}, SELECTION)
    assert cache_stats(sampled) == (0, 4, 0)
    assert embedded.since_last() == sorted(names)
    _, sampled_again = run(client, {**process_all, **EVERY_2ND}, SELECTION)
    assert cache_stats(sampled_again) == (4, 0, 0)
    assert embedded.since_last() == []

    # An unusable entry is a miss: that file alone is embedded, and its entry is written anew.
    pool_store = open_store(pool)
    info = source.stat(names[2])
    assert info is not None
    model = first["model"]
    scope = CacheScope(model["name"], cache_sampling_key(FrameSampling(), model["numbering"]))
    key = EmbeddingCache(pool_store, scope).key(FileRef(info.key, info.size, info.etag))
    pool_store.put(key, pool_store.read(key)[:-100])
    _, corrupt = run(client, process_all, SELECTION)
    assert cache_stats(corrupt) == (3, 1, 1)
    assert corrupt["embedding_cache"]["entries_written"] == 1
    assert embedded.since_last() == [names[2]]

    # Picks from cached vectors equal picks from embedded ones: the same run against an
    # emptied pool that kept its cache, and against a new pool without one.
    for obj in list(pool_store.list()):
        if not obj.key.startswith(EMBEDDING_CACHE_PREFIX):
            pool_store.delete(obj.key)
    _, cached_run = run(client, {}, SELECTION)
    assert cache_stats(cached_run) == (4, 0, 0)
    assert embedded.since_last() == []
    set_location(client, make_location(kind, "fresh-pool/"), DatasourcePurpose.LIGHTLY)
    _, fresh_run = run(client, {}, SELECTION)
    assert cache_stats(fresh_run) == (0, 4, 0)
    assert embedded.since_last() == sorted(names)
    assert len(picks(cached_run)) == 5
    assert picks(cached_run) == picks(fresh_run)


def selector_of(stack: RunningStack) -> tuple[int, str] | None:
    """The pid and address of the stack's selector process, a child of `datapool up`."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            ppid = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            args = (proc / "cmdline").read_bytes().decode().split("\0")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == stack.proc.pid and "services.selector" in args:
            return int(proc.name), f"{args[args.index('--host') + 1]}:{args[args.index('--port') + 1]}"
    return None


def test_selector_restart_between_cache_load_and_select_fails_the_run(
    stack: RunningStack, tmp_path: Path
) -> None:
    """The restarted selector lost the staged load: the run fails, naming it, instead of
    committing a run that reports cached files processed which it never selected from."""
    videos, pool = tmp_path / "videos", tmp_path / "pool"
    videos.mkdir()
    for i in range(2):
        make_video(videos / f"v{i}.mp4", scene_seed=40 + i, n_frames=FRAMES)
    client = ApiWorkflowClient(token=stack.token, address=stack.address)
    client.create_dataset(dataset_name=f"cache-restart-{tmp_path.name}", dataset_type=DatasetType.VIDEOS)
    client.set_local_config(resource_path=str(videos), purpose=DatasourcePurpose.INPUT)
    client.set_local_config(resource_path=str(pool), purpose=DatasourcePurpose.LIGHTLY)
    _, first = run(client, {}, SELECTION)
    before = pool_embeddings(client, tmp_path)
    manifests = sorted(p.name for p in (pool / ".datapool" / "manifests").iterdir())
    make_video(videos / "v2.mp4", scene_seed=42, n_frames=FRAMES)

    point = "scheduler.run.after_cache_load"
    hold(stack.fault_dir, point)
    try:
        lost = client.schedule_compute_worker_run(
            worker_config={"datasource": {"process_all": True}}, selection_config=SELECTION
        )
        deadline = time.monotonic() + 120
        while not held(stack.fault_dir, point):
            assert time.monotonic() < deadline, "the run never reached the cache load"
            time.sleep(0.05)
        selector = selector_of(stack)
        assert selector is not None
        pid, address = selector
        os.kill(pid, signal.SIGKILL)
        # The supervisor starts a new selector on the same port.
        deadline = time.monotonic() + 60
        while (selector := selector_of(stack)) is None or selector[0] == pid:
            assert time.monotonic() < deadline, "the selector was not restarted"
            time.sleep(0.1)
        assert wait_healthy(address, timeout=60)
    finally:
        release(stack.fault_dir, point)
    info = wait_end(client, lost)
    assert not info.ended_successfully()
    assert "embedding cache load" in info.message and "run again" in info.message, info.message
    assert sorted(p.name for p in (pool / ".datapool" / "manifests").iterdir()) == manifests
    assert pool_embeddings(client, tmp_path).keys() == before.keys()

    # Run again: the cached files load, the new one is embedded, all three are selected from.
    _, again = run(client, {"datasource": {"process_all": True}}, SELECTION)
    assert cache_stats(again) == (2, 1, 0)
    assert processed_paths(again) == {"v0.mp4", "v1.mp4", "v2.mp4"}
    assert again["frames"]["from_cache"] == 2 * FRAMES and again["frames"]["embedded"] == FRAMES
    # Every frame but those pooled by the first run is a candidate, cached ones included.
    assert again["selection"]["candidates"] == 3 * FRAMES - len(first["selected"])
