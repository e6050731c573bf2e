"""Fakes of the remotes Protocols (services/scheduler/run/interfaces.py) for stage tests.

They speak the domain interfaces, not gRPC: a dead replica raises EmbedderError, a
refusing one BackendRefused, as services/scheduler/remotes.py does for real calls.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from datapool.config import FrameSampling, parse_run_config
from datapool.run_report import ModelInfo, PoolPoint, RunReport
from datapool.storage.locations import local_location
from datapool.v1 import common_pb2, embedder_pb2, scheduler_pb2, selector_pb2
from services.scheduler.pipeline import RunSpec
from services.scheduler.run.interfaces import BackendRefused, Embedder, EmbedderError, ProcessedListing

MODEL = ModelInfo(name="m", dim=2, backend="cpu", backend_reason="default", numbering="n1")
FRAMES_PER_FILE = 4


def spec(root: Path, process_all: bool = False) -> RunSpec:
    """A run over root/in whose pool, root/in/pool, lies inside the input."""
    config = parse_run_config(
        {"datasource": {"process_all": process_all}},
        {
            "n_samples": 1,
            "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
        },
    )
    return RunSpec(
        "r",
        scheduler_pb2.VIDEOS,
        local_location(str(root / "in")),
        local_location(str(root / "in" / "pool")),
        config,
    )


def video_run(root: Path, names: Sequence[str], model_backend: str = "auto") -> RunSpec:
    """A run over `names` (tiny files in root/in) into root/pool."""
    (root / "in").mkdir(exist_ok=True)
    for name in names:
        (root / "in" / name).write_bytes(b"video")
    selection = {
        "n_samples": 1,
        "strategies": [{"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}],
    }
    config = parse_run_config({"model_backend": model_backend}, selection)
    return RunSpec(
        "r",
        scheduler_pb2.VIDEOS,
        local_location(str(root / "in")),
        local_location(str(root / "pool")),
        config,
    )


class FakeEmbedder:
    """Embeds each file as FRAMES_PER_FILE frames; `dies` after that many calls, `refuses` the backend."""

    def __init__(self, address: str, dies_after: int | None = None, refuses: str = "") -> None:
        self.address = address
        self.dies_after = dies_after
        self.refuses = refuses
        self.embedded: list[str] = []
        self.embed_calls = 0
        self.model_info_calls = 0

    def model_info(self, backend: str) -> ModelInfo:
        self.model_info_calls += 1
        return MODEL

    def embed_file(
        self,
        source: common_pb2.StoreLocation,
        file: common_pb2.FileRef,
        sampling: FrameSampling,
        backend: str,
    ) -> Iterator[embedder_pb2.EmbedFileResponse]:
        self.embed_calls += 1
        if self.refuses:
            raise BackendRefused("FAILED_PRECONDITION", self.refuses)
        if self.dies_after is not None and len(self.embedded) >= self.dies_after:
            raise EmbedderError("UNAVAILABLE", "Socket closed")
        vectors = np.ones((FRAMES_PER_FILE, MODEL.dim), dtype=np.float16).tobytes()
        batch = common_pb2.VectorBatch(
            frame_indices=range(FRAMES_PER_FILE), vectors=vectors, dim=MODEL.dim, dtype=common_pb2.FLOAT16
        )
        yield embedder_pb2.EmbedFileResponse(batch=batch)
        self.embedded.append(file.path)
        done = embedder_pb2.EmbedSummary(frame_count=FRAMES_PER_FILE, model=MODEL.name)
        yield embedder_pb2.EmbedFileResponse(done=done)

    def render_frames(self, request: embedder_pb2.RenderFramesRequest) -> list[str]:
        return list(request.target_keys)


class FakeEmbedders:
    """Hands out replicas in turn, preferring those a file has not tried yet."""

    def __init__(self, *replicas: FakeEmbedder, streams: int = 1) -> None:
        self._replicas = list(replicas)
        self.streams = streams
        self._turn = 0

    @property
    def replicas(self) -> Sequence[Embedder]:
        return self._replicas

    def wait_ready(self, avoid: set[str] | None, timeout: float) -> Embedder | None:
        fresh = [r for r in self._replicas if not avoid or r.address not in avoid]
        choice = (fresh or self._replicas)[self._turn % len(fresh or self._replicas)]
        self._turn += 1
        return choice


class OneReplica:
    """Every file goes to the one replica."""

    def __init__(self, replica: Embedder, streams: int = 2) -> None:
        self.replicas = [replica]
        self.streams = streams

    def wait_ready(self, avoid: set[str] | None = None, timeout: float = 0.0) -> Embedder:
        return self.replicas[0]


class QuietSelector:
    """A pool at `pool` that has processed no file and caches no embedding; its Select
    picks nothing and it refuses to commit. Subclasses override what their test needs."""

    def __init__(self, pool: PoolPoint | None = None) -> None:
        self.pool = pool or PoolPoint()

    def get_pool(self, pool: common_pb2.StoreLocation) -> selector_pb2.PoolSummary:
        return selector_pb2.PoolSummary(version=self.pool.version, frame_count=self.pool.frames)

    def run_commit(self, pool: common_pb2.StoreLocation, run_id: str) -> selector_pb2.RunCommit:
        return selector_pb2.RunCommit(found=False)

    def processed_files(self, pool: common_pb2.StoreLocation) -> ProcessedListing:
        return ProcessedListing(self.pool, iter(()))

    def load_cached(
        self, requests: Iterator[selector_pb2.LoadCachedRequest]
    ) -> Iterator[selector_pb2.CachedFiles]:
        list(requests)
        yield selector_pb2.CachedFiles()

    def select(self, requests: Iterator[selector_pb2.SelectRequest]) -> selector_pb2.SelectResponse:
        list(requests)
        return selector_pb2.SelectResponse()

    def commit(self, request: selector_pb2.CommitRequest) -> selector_pb2.CommitResponse:
        raise AssertionError("nothing to commit")

    def close_session(self, session_id: str) -> None:
        pass


class FakeSelector(QuietSelector):
    """Picks frame 0 of every completed file; `races` commits lose to another writer first."""

    def __init__(self, races: int = 0, other_frames: int = 0) -> None:
        super().__init__(PoolPoint(version=1, frames=other_frames))
        self.races = races
        self.other_frames = other_frames
        self.commits: list[selector_pb2.CommitRequest] = []
        self.items: list[str] = []

    def select(self, requests: Iterator[selector_pb2.SelectRequest]) -> selector_pb2.SelectResponse:
        picks = []
        for r in requests:
            self.items.append(str(r.WhichOneof("item")))
            if r.WhichOneof("item") == "file_complete":
                f = r.file_complete.file
                picks.append(selector_pb2.Pick(file=f, frame_index=0, frame_name=f"{f.path}-0.png"))
        return selector_pb2.SelectResponse(picks=picks, candidate_count=len(picks))

    def commit(self, request: selector_pb2.CommitRequest) -> selector_pb2.CommitResponse:
        self.commits.append(request)
        picks = [selector_pb2.Pick(frame_name=f.frame_name) for f in request.frames]
        if len(self.commits) <= self.races:
            # Another run committed first: the merged selection needs one more of our frames.
            extra = selector_pb2.Pick(
                file=common_pb2.FileRef(path="a.mp4"),
                frame_index=1,
                frame_name=f"a.mp4-{len(self.commits)}.png",
            )
            return selector_pb2.CommitResponse(need_frames=selector_pb2.NeedFrames(picks=[extra]))
        committed = selector_pb2.Committed(
            version=2 + self.races,
            picks=picks,
            tag_name=request.tag_name,
            attempts=len(self.commits),
            pool_frame_count=self.other_frames + len(picks),
        )
        return selector_pb2.CommitResponse(committed=committed)


class Observer:
    def __init__(self) -> None:
        self.states: list[str] = []
        self.drafts: list[dict[str, Any]] = []

    def set_state(self, state: int, message: str) -> None:
        self.states.append(message)

    def set_progress(self, **counts: int) -> None:
        pass

    def save_draft(self, report: RunReport) -> None:
        self.drafts.append(json.loads(json.dumps(report.to_json())))
