"""A run's worker_config.model_backend reaches a real embedder: used when it can run, and the run
is refused before anything is embedded when it cannot."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from test_diff import spec
from test_pipeline_skips import Observer

from datapool.config import parse_run_config
from datapool.samples import make_video
from datapool.v1 import selector_pb2
from services.embedder.backends import load_backend
from services.embedder.server import make_server
from services.scheduler.pipeline import RunFailed, RunPipeline, RunSpec
from services.scheduler.remotes import EmbedderPool


class Selector:
    """Takes the vectors, picks nothing, commits an empty selection."""

    def __init__(self) -> None:
        self.batches: list[selector_pb2.CandidateBatch] = []

    def get_pool(self, pool: Any) -> selector_pb2.PoolSummary:
        return selector_pb2.PoolSummary(version=0, frame_count=0)

    def processed_files(self, pool: Any) -> Iterator[Any]:
        return iter(())

    def load_cached(self, requests: Iterator[Any]) -> Iterator[selector_pb2.CachedFiles]:
        list(requests)
        yield selector_pb2.CachedFiles()

    def select(self, requests: Iterator[selector_pb2.SelectRequest]) -> selector_pb2.SelectResponse:
        self.batches = [r.batch for r in requests if r.WhichOneof("item") == "batch"]
        return selector_pb2.SelectResponse()

    def commit(self, request: Any) -> selector_pb2.CommitResponse:
        return selector_pb2.CommitResponse(
            committed=selector_pb2.Committed(version=1, tag_name=request.tag_name)
        )

    def close_session(self, session_id: str) -> None:
        pass


@pytest.fixture(scope="module")
def embedders() -> Iterator[EmbedderPool]:
    server = make_server(load_backend("torch-cpu"), "127.0.0.1:0", max_workers=4)
    server.start()
    pool = EmbedderPool([f"127.0.0.1:{server.port}"])
    yield pool
    pool.close()
    server.stop(0)


def run_spec(tmp_path: Path, backend: str) -> RunSpec:
    make_video(tmp_path / "in" / "clip.mp4", scene_seed=3, n_frames=6)
    strategy = {"input": {"type": "EMBEDDINGS"}, "strategy": {"type": "DIVERSITY"}}
    config = parse_run_config({"model_backend": backend}, {"n_samples": 1, "strategies": [strategy]})
    return dataclasses.replace(spec(tmp_path), config=config)


def test_the_run_embeds_with_the_backend_it_asks_for(embedders: EmbedderPool, tmp_path: Path) -> None:
    selector = Selector()
    report = RunPipeline(embedders, selector).execute(run_spec(tmp_path, "onnxruntime-cpu"), Observer())  # type: ignore[arg-type]
    assert report["model"]["backend"] == "onnxruntime-cpu"
    assert "worker_config.model_backend='onnxruntime-cpu'" in report["model"]["backend_reason"]
    assert sum(len(b.vectors.frame_indices) for b in selector.batches) == 6


@pytest.mark.skipif(torch.cuda.is_available(), reason="expects a machine without a CUDA GPU")
def test_a_backend_the_embedders_cannot_run_fails_the_run_up_front(
    embedders: EmbedderPool, tmp_path: Path
) -> None:
    selector = Selector()
    with pytest.raises(RunFailed) as failed:
        RunPipeline(embedders, selector).execute(run_spec(tmp_path, "torch-cuda"), Observer())  # type: ignore[arg-type]
    message = str(failed.value)
    assert message.startswith("worker_config.model_backend='torch-cuda' cannot be used: FAILED_PRECONDITION")
    assert "no CUDA GPU" in message
    assert selector.batches == []
