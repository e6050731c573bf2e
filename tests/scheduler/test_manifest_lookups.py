"""A run looks the pool's newest manifest up once: ListProcessedFiles names the version, the
report's starting pool and the Select are pinned to it, and only the commit checks again."""

from __future__ import annotations

import dataclasses
import functools
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from stage_fakes import FakeEmbedder, FakeEmbedders, Observer, video_run

from datapool.pool.layout import MANIFESTS_PREFIX, manifest_key
from datapool.run_report import PoolPoint
from datapool.storage import LocalStore
from services.common.server import ServiceServer
from services.scheduler.pipeline import RunPipeline
from services.scheduler.remotes import SelectorClient
from services.selector.servicer import SERVICE_NAME, register


@pytest.fixture
def selector() -> Iterator[SelectorClient]:
    """A real selector in this process, so its store calls can be counted."""
    server = ServiceServer("selector", "127.0.0.1:0", register, [SERVICE_NAME], max_workers=4)
    server.start()
    client = SelectorClient(f"127.0.0.1:{server.port}")
    yield client
    client.close()
    server.stop(0)


class ManifestCalls:
    """Counts the pool store's listings of the manifests (a newest-manifest lookup) and the
    reads of each manifest."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.lookups = 0
        self.reads: Counter[str] = Counter()
        real_list, real_read = LocalStore.list, LocalStore.read

        @functools.wraps(real_list)
        def listing(store: LocalStore, prefix: str = "") -> Iterator[object]:
            self.lookups += prefix == MANIFESTS_PREFIX
            return real_list(store, prefix)

        @functools.wraps(real_read)
        def reading(store: LocalStore, key: str) -> bytes:
            if key.startswith(MANIFESTS_PREFIX):
                self.reads[key] += 1
            return real_read(store, key)

        monkeypatch.setattr(LocalStore, "list", listing)
        monkeypatch.setattr(LocalStore, "read", reading)


def test_a_run_looks_up_the_newest_manifest_once_and_the_commit_checks_it_once(
    tmp_path: Path, selector: SelectorClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    pipeline = RunPipeline(FakeEmbedders(FakeEmbedder("e:1")), selector)
    first = pipeline.execute(video_run(tmp_path, ["a.mp4", "b.mp4"]), Observer())
    assert first.pool_after == PoolPoint(version=1, frames=1)

    calls = ManifestCalls(monkeypatch)
    second = pipeline.execute(dataclasses.replace(video_run(tmp_path, ["c.mp4"]), run_id="r2"), Observer())
    assert second.pool_before == PoolPoint(version=1, frames=1)
    assert [f.path for f in second.files.processed] == ["c.mp4"]
    assert second.pool_after == PoolPoint(version=2, frames=2)
    # One lookup for the run (ListProcessedFiles), one by the commit before it creates the
    # next version (commit rule 4). The starting manifest is read by that lookup and by the
    # Select pinned to it; GetPool reads it no more.
    assert (calls.lookups, calls.reads[manifest_key(1)]) == (2, 2)
