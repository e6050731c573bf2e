"""The merge-join that tells new files from processed ones, and the listing stage around it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stage_fakes import spec

from datapool.pool.files import FileRef
from datapool.run_report import PoolPoint, SkippedFile
from datapool.storage import ObjectInfo
from datapool.v1 import common_pb2, selector_pb2
from services.scheduler.diff import StreamOrderError, new_objects
from services.scheduler.pipeline import RunFailed
from services.scheduler.run.interfaces import ProcessedListing
from services.scheduler.run.listing import Listing, list_new_files


def obj(key: str, size: int = 1, etag: str = "e") -> ObjectInfo:
    return ObjectInfo(key, size, etag)


def new_keys(listing: list[ObjectInfo], processed: list[FileRef]) -> list[str]:
    return [o.key for o in new_objects(listing, processed)]


def test_unchanged_files_are_skipped_and_new_ones_interleaved() -> None:
    listing = [obj("a"), obj("b"), obj("c"), obj("d"), obj("e")]
    processed = [FileRef("b", 1, "e"), FileRef("d", 1, "e")]
    assert new_keys(listing, processed) == ["a", "c", "e"]


def test_changed_size_or_etag_is_new() -> None:
    listing = [obj("a", 2, "e"), obj("b", 1, "f"), obj("c")]
    processed = [FileRef("a", 1, "e"), FileRef("b", 1, "e"), FileRef("c", 1, "e")]
    assert new_keys(listing, processed) == ["a", "b"]


def test_a_path_processed_in_several_versions() -> None:
    # Replaced once and processed both times: the current version is known, the path is not new.
    processed = [FileRef("a", 1, "old"), FileRef("a", 1, "zzz"), FileRef("b", 1, "e")]
    assert new_keys([obj("a", 1, "old"), obj("b")], processed) == []
    assert new_keys([obj("a", 1, "new"), obj("b")], processed) == ["a"]


def test_deleted_files_and_empty_streams() -> None:
    processed = [FileRef("a", 1, "e"), FileRef("gone", 1, "e"), FileRef("z-gone", 1, "e")]
    assert new_keys([obj("a"), obj("m")], processed) == ["m"]
    assert new_keys([], processed) == []
    assert new_keys([obj("a")], []) == ["a"]


def test_key_order_is_string_order_not_path_depth() -> None:
    # "a-b" sorts before "a/b" ('-' < '/'), as every store lists them.
    listing = [obj("a-b"), obj("a/b"), obj("a0")]
    processed = [FileRef("a-b", 1, "e"), FileRef("a0", 1, "e")]
    assert new_keys(listing, processed) == ["a/b"]


def test_out_of_order_streams_are_refused() -> None:
    with pytest.raises(StreamOrderError, match="INPUT listing is not in key order"):
        new_keys([obj("b"), obj("a")], [])
    with pytest.raises(StreamOrderError, match="processed files are not sorted"):
        new_keys([obj("z")], [FileRef("b", 1, "e"), FileRef("a", 1, "e")])


def test_consumes_the_processed_stream_lazily() -> None:
    pulled: list[str] = []

    def processed() -> Iterator[FileRef]:
        for i in range(100):
            pulled.append(f"f{i:03d}")
            yield FileRef(f"f{i:03d}", 1, "e")

    stream = new_objects(iter([obj("f000"), obj("f001x"), obj("f050")]), processed())
    assert next(stream).key == "f001x"
    assert len(pulled) <= 3


class FakeSelector:
    def __init__(self, processed: list[FileRef]) -> None:
        self.processed = processed

    def get_pool(self, pool: common_pb2.StoreLocation) -> selector_pb2.PoolSummary:
        return selector_pb2.PoolSummary()

    def processed_files(self, pool: common_pb2.StoreLocation) -> ProcessedListing:
        files = (common_pb2.FileRef(path=f.path, size=f.size, etag=f.etag) for f in self.processed)
        return ProcessedListing(PoolPoint(), files)


def listing_of(tmp_path: Path, processed: list[FileRef], process_all: bool = False) -> Listing:
    return list_new_files(spec(tmp_path, process_all), FakeSelector(processed))


def test_listing_stage_skips_pool_and_non_media(tmp_path: Path) -> None:
    (tmp_path / "in" / "pool" / ".datapool").mkdir(parents=True)
    (tmp_path / "in" / "pool" / ".datapool" / "x.mp4").write_bytes(b"x")
    for name in ("a.mp4", "b.mp4", "notes.txt"):
        (tmp_path / "in" / name).write_bytes(b"video")
    b = ObjectInfo("b.mp4", 5, "")
    from datapool.storage import LocalStore

    b = LocalStore(tmp_path / "in").stat("b.mp4")  # type: ignore[assignment]
    assert b is not None
    listing = listing_of(tmp_path, [FileRef(b.key, b.size, b.etag)])
    assert [f.path for f in listing.new] == ["a.mp4"]
    assert (listing.listed, listing.media) == (3, 2)
    assert listing.not_media == [SkippedFile(path="notes.txt", reason="not a video file (extension .txt)")]
    everything = listing_of(tmp_path, [FileRef(b.key, b.size, b.etag)], process_all=True)
    assert [f.path for f in everything.new] == ["a.mp4", "b.mp4"]


def test_no_videos_note(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    assert "is empty" in listing_of(tmp_path, []).nothing_new_note()
    (tmp_path / "in" / "readme.md").write_text("x")
    note = listing_of(tmp_path, []).nothing_new_note()
    assert "has no video files" in note and str(tmp_path / "in") in note


def test_missing_input_fails_the_run(tmp_path: Path) -> None:
    with pytest.raises(RunFailed, match="cannot list the INPUT datasource"):
        listing_of(tmp_path, [])
