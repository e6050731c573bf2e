"""Processed files: stored sorted per segment, merged into one sorted stream on read."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest

from datapool.errors import FailedPrecondition
from datapool.pool.files import FileRef
from datapool.pool.layout import PoolManifest, PoolSegment, SegmentKeys
from datapool.pool.repository import PoolRepository
from datapool.storage import LocalStore
from services.selector.queries import processed_file_chunks, processed_files_sorted


def commit(repo: PoolRepository, segments: list[PoolSegment], files: list[FileRef]) -> None:
    version = len(segments) + 1
    commit_id = f"{version:032x}"
    keys = repo.write_segment_data(commit_id, [], np.zeros((0, 4), np.float32), files)
    segments.append(PoolSegment(commit_id, "r", version, "", 0, 0, keys))
    assert repo.create_manifest(PoolManifest(version, commit_id, "r", 0, "m", 4, tuple(segments)))


def test_segments_merge_into_one_sorted_stream_without_duplicates(tmp_path: Path) -> None:
    repo = PoolRepository(LocalStore(tmp_path))
    segments: list[PoolSegment] = []
    commit(repo, segments, [FileRef("m.mp4", 1, "e"), FileRef("a.mp4", 1, "e"), FileRef("z/x.mp4", 1, "e")])
    commit(repo, segments, [FileRef("b.mp4", 1, "e"), FileRef("a.mp4", 1, "e"), FileRef("a.mp4", 2, "f")])
    commit(repo, segments, [FileRef("a-b.mp4", 1, "e")])
    files = list(processed_files_sorted(repo))
    assert files == sorted(set(files))
    assert [f.path for f in files] == ["a-b.mp4", "a.mp4", "a.mp4", "b.mp4", "m.mp4", "z/x.mp4"]
    assert [len(c) for c in processed_file_chunks(repo, chunk=4)] == [4, 2]


def test_segment_object_is_compact_sorted_json_lines(tmp_path: Path) -> None:
    repo = PoolRepository(LocalStore(tmp_path))
    commit(repo, [], [FileRef("b", 2, "y"), FileRef("a", 1, "x"), FileRef("b", 2, "y")])
    (path,) = tmp_path.rglob("processed.jsonl.gz")
    lines = gzip.decompress(path.read_bytes()).decode().splitlines()
    assert [json.loads(line) for line in lines] == [["a", 1, "x"], ["b", 2, "y"]]


def test_legacy_processed_json_segments_still_read(tmp_path: Path) -> None:
    repo = PoolRepository(LocalStore(tmp_path))
    segments: list[PoolSegment] = []
    legacy_id = "0" * 31 + "1"
    folder = tmp_path / ".datapool" / "data" / legacy_id
    folder.mkdir(parents=True)
    (folder / "processed.json").write_text(
        json.dumps([{"path": "z.mp4", "size": 1, "etag": "e"}, {"path": "c.mp4", "size": 1, "etag": "e"}])
    )
    keys = SegmentKeys(
        f".datapool/data/{legacy_id}/entries.json", "unused", f".datapool/data/{legacy_id}/processed.json"
    )
    (folder / "entries.json").write_text("[]")
    segments.append(PoolSegment(legacy_id, "r", 1, "", 0, 0, keys))
    assert repo.create_manifest(PoolManifest(1, legacy_id, "r", 0, "m", 4, tuple(segments)))
    commit(repo, segments, [FileRef("d.mp4", 1, "e")])
    assert [f.path for f in processed_files_sorted(repo)] == ["c.mp4", "d.mp4", "z.mp4"]


def test_unsorted_or_corrupt_segment_is_refused(tmp_path: Path) -> None:
    repo = PoolRepository(LocalStore(tmp_path))
    commit(repo, [], [FileRef("a", 1, "e")])
    (path,) = tmp_path.rglob("processed.jsonl.gz")
    path.write_bytes(gzip.compress(b'["b",1,"e"]\n["a",1,"e"]\n'))
    with pytest.raises(FailedPrecondition, match="not sorted"):
        list(processed_files_sorted(repo))
    path.write_bytes(b"not gzip")
    with pytest.raises(FailedPrecondition, match="corrupt"):
        list(processed_files_sorted(repo))
