"""A file deleted between listing and reading is skipped with its reason; the pool is untouched."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stage_fakes import Observer, OneReplica, QuietSelector, spec

from datapool.run_report import ModelInfo, PoolPoint
from datapool.v1 import common_pb2, embedder_pb2, selector_pb2
from services.scheduler.pipeline import RunPipeline


class Replica:
    address = "fake"

    def model_info(self, backend: str = "") -> ModelInfo:
        return ModelInfo(name="m", dim=0, backend="cpu", backend_reason="", numbering="")

    def embed_file(
        self, source: Any, file: common_pb2.FileRef, sampling: Any, backend: str = ""
    ) -> Iterator[embedder_pb2.EmbedFileResponse]:
        yield embedder_pb2.EmbedFileResponse(skipped=embedder_pb2.FileSkipped(reason="deleted since listing"))

    def render_frames(self, request: embedder_pb2.RenderFramesRequest) -> list[str]:
        raise AssertionError("nothing to render")


class Selector(QuietSelector):
    def __init__(self) -> None:
        super().__init__(PoolPoint(version=3, frames=7))
        self.requests: list[selector_pb2.SelectRequest] = []
        self.commits = 0

    def select(self, requests: Iterator[selector_pb2.SelectRequest]) -> selector_pb2.SelectResponse:
        self.requests = list(requests)
        return selector_pb2.SelectResponse(base_version=3)

    def commit(self, request: selector_pb2.CommitRequest) -> selector_pb2.CommitResponse:
        self.commits += 1
        raise AssertionError("nothing to commit")


def test_deleted_since_listing_is_a_skip_and_no_commit(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "gone.mp4").write_bytes(b"video")
    selector = Selector()
    pipeline = RunPipeline(OneReplica(Replica()), selector)
    report = pipeline.execute(spec(tmp_path), Observer()).to_json()
    assert report["files"]["skipped"] == [{"path": "gone.mp4", "reason": "deleted since listing"}]
    assert report["files"]["processed"] == []
    assert selector.commits == 0
    assert report["pool_after"] == {"version": 3, "frames": 7}
    assert [r.WhichOneof("item") for r in selector.requests] == ["spec", "file_dropped"]
