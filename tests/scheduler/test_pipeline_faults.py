"""The run pipeline against fake replicas: files it cannot carry are skipped naming the file,
an embedder failure fails the run (never a skipped file), frames count per batch, and the
report names the pool the commit produced."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from stage_fakes import Observer, OneReplica, QuietSelector, spec

from datapool.run_report import ModelInfo
from datapool.v1 import common_pb2, embedder_pb2, selector_pb2
from services.scheduler.pipeline import FILE_ATTEMPTS, RunFailed, RunPipeline
from services.scheduler.run.interfaces import EmbedderError

MODEL = "m"
BATCHES = 3
PER_BATCH = 4


class Replica:
    """Embeds every file in BATCHES batches of PER_BATCH frames, or fails every call."""

    def __init__(self, address: str = "127.0.0.1:1", broken: bool = False) -> None:
        self.address = address
        self.broken = broken
        self.calls = 0
        self.observer: ProgressLog | None = None
        self.progress_seen: list[tuple[int, int]] = []

    def model_info(self, backend: str = "") -> ModelInfo:
        return ModelInfo(name=MODEL, dim=2, backend="cpu", backend_reason="", numbering="")

    def embed_file(
        self, source: Any, file: common_pb2.FileRef, sampling: Any, backend: str = ""
    ) -> Iterator[embedder_pb2.EmbedFileResponse]:
        self.calls += 1
        if self.broken:  # what a call to a replica killed mid-stream raises
            raise EmbedderError("UNAVAILABLE", "Socket closed")
        yield embedder_pb2.EmbedFileResponse(info=embedder_pb2.MediaInfo(kind="video"))
        for b in range(BATCHES):
            vectors = np.ones((PER_BATCH, 2), dtype=np.float16).tobytes()
            indices = range(b * PER_BATCH, (b + 1) * PER_BATCH)
            yield embedder_pb2.EmbedFileResponse(
                batch=common_pb2.VectorBatch(
                    frame_indices=indices, vectors=vectors, dim=2, dtype=common_pb2.FLOAT16
                )
            )
            if self.observer is not None:  # what a watcher sees while the file is still in progress
                self.progress_seen.append(
                    (
                        self.observer.counts.get("files_done", 0),
                        self.observer.counts.get("frames_embedded", 0),
                    )
                )
        done = embedder_pb2.EmbedSummary(frame_count=BATCHES * PER_BATCH, model=MODEL)
        yield embedder_pb2.EmbedFileResponse(done=done)

    def render_frames(self, request: embedder_pb2.RenderFramesRequest) -> list[str]:
        return list(request.target_keys)


class Selector(QuietSelector):
    """Picks the first frame of every file and commits them."""

    def __init__(self) -> None:
        super().__init__()
        self.completed: list[str] = []

    def select(self, requests: Iterator[selector_pb2.SelectRequest]) -> selector_pb2.SelectResponse:
        picks = []
        for r in requests:
            if r.WhichOneof("item") == "file_complete":
                f = r.file_complete.file
                self.completed.append(f.path)
                picks.append(selector_pb2.Pick(file=f, frame_index=0, frame_name=f"{f.path}-0.png"))
        return selector_pb2.SelectResponse(picks=picks)

    def commit(self, request: selector_pb2.CommitRequest) -> selector_pb2.CommitResponse:
        picks = [selector_pb2.Pick(frame_name=f.frame_name) for f in request.frames]
        committed = selector_pb2.Committed(version=1, picks=picks, tag_name=request.tag_name, attempts=1)
        return selector_pb2.CommitResponse(committed=committed)


class RacedSelector(Selector):
    """Its commit lands on the second manifest put, after another writer's 12 frames."""

    def commit(self, request: selector_pb2.CommitRequest) -> selector_pb2.CommitResponse:
        picks = [selector_pb2.Pick(frame_name=f.frame_name) for f in request.frames]
        committed = selector_pb2.Committed(
            version=2, picks=picks, tag_name=request.tag_name, attempts=2, pool_frame_count=12 + len(picks)
        )
        return selector_pb2.CommitResponse(committed=committed)


class Renderer(Replica):
    """A replica that embeds and renders (every Replica renders; the name says what a test uses)."""


class ProgressLog(Observer):
    def __init__(self) -> None:
        super().__init__()
        self.counts: dict[str, int] = {}

    def set_progress(self, **counts: int) -> None:
        self.counts.update(counts)


def run(
    tmp_path: Path, replica: Replica, observer: Observer | None = None, selector: Selector | None = None
) -> tuple[dict[str, Any], Selector]:
    selector = selector or Selector()
    pipeline = RunPipeline(OneReplica(replica), selector)
    pipeline.progress_interval_s = 0  # every batch's frames reach the observer
    return pipeline.execute(spec(tmp_path), observer or Observer()).to_json(), selector


def test_files_a_run_cannot_carry_are_skipped_naming_them_and_the_run_goes_on(tmp_path: Path) -> None:
    inp = tmp_path / "in"
    inp.mkdir()
    for name in (b"good.mp4", b"bad\xff\xfe.mp4", b"two\nlines.mp4"):
        (inp / os.fsdecode(name)).write_bytes(b"video")
    (inp / "loop.mp4").symlink_to("loop.mp4")
    (inp / "sub").mkdir()
    (inp / "sub" / "up").symlink_to("..")
    report, selector = run(tmp_path, Renderer())
    assert selector.completed == ["good.mp4"]
    assert report["files"]["skipped"] == [
        {"path": "bad\\xff\\xfe.mp4", "reason": "the file name is not valid UTF-8; rename the file"},
        {"path": "loop.mp4", "reason": "cannot be read: Too many levels of symbolic links"},
        {"path": "sub/up/", "reason": "a symbolic link loop (a folder inside itself)"},
        {
            "path": "two\\nlines.mp4",
            "reason": "the file name contains a line break, which would split the pool's exported file names",
        },
    ]


def test_frames_count_per_batch_while_a_file_is_in_progress(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "long.mp4").write_bytes(b"video")
    replica, observer = Renderer(), ProgressLog()
    replica.observer = observer
    run(tmp_path, replica, observer)
    # (files_done, frames_embedded) after each batch: frames move before the file is done.
    assert replica.progress_seen == [(0, PER_BATCH * (b + 1)) for b in range(BATCHES)]
    assert observer.counts["frames_embedded"] == BATCHES * PER_BATCH


def test_the_report_names_the_pool_the_commit_produced_after_a_lost_race(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").write_bytes(b"video")
    report, _ = run(tmp_path, Renderer(), selector=RacedSelector())
    # The run started from an empty pool; another writer's 12 frames landed first.
    assert report["pool_before"] == {"version": 0, "frames": 0}
    assert report["pool_after"] == {"version": 2, "frames": 13}


def test_an_embedder_failure_fails_the_run_naming_the_embedder_and_skips_no_file(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.mp4").write_bytes(b"video")
    replica = Replica("127.0.0.1:7", broken=True)
    with pytest.raises(RunFailed) as failed:
        run(tmp_path, replica)
    assert replica.calls == FILE_ATTEMPTS
    assert f"the embedders failed {FILE_ATTEMPTS} times on a.mp4" in str(failed.value)
    assert "127.0.0.1:7: UNAVAILABLE: Socket closed" in str(failed.value)
