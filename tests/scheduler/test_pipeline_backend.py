"""A run's worker_config.model_backend reaches a real embedder: used when it can run, and the run
fails when it cannot (before anything is embedded where the embedders can tell); vectors of
another model than the run's never reach the selection."""

from __future__ import annotations

import copy
import dataclasses
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from stage_fakes import Observer, QuietSelector, spec

from datapool.config import parse_run_config
from datapool.samples import make_video
from datapool.v1 import selector_pb2
from services.common.server import ServiceServer
from services.embedder.backends import BackendOptions, backend_model_id, load_backend
from services.embedder.backends.base import ModelBackend
from services.embedder.backends.cuda import GPU_RESIZE_SUFFIX
from services.embedder.server import make_server
from services.scheduler.pipeline import FILE_ATTEMPTS, RunFailed, RunPipeline, RunSpec
from services.scheduler.remotes import EmbedderPool


class Selector(QuietSelector):
    """Takes the vectors, picks nothing, commits an empty selection."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[selector_pb2.CandidateBatch] = []
        self.items: list[str] = []  # the Select stream's item kinds, runs of batches as one

    def select(self, requests: Iterator[selector_pb2.SelectRequest]) -> selector_pb2.SelectResponse:
        received = list(requests)
        self.batches = [r.batch for r in received if r.WhichOneof("item") == "batch"]
        self.items = [str(k) for k, _ in itertools.groupby(r.WhichOneof("item") for r in received)]
        return selector_pb2.SelectResponse()

    def commit(self, request: Any) -> selector_pb2.CommitResponse:
        return selector_pb2.CommitResponse(
            committed=selector_pb2.Committed(version=1, tag_name=request.tag_name)
        )


@pytest.fixture(scope="module")
def torch_cpu() -> ModelBackend:
    return load_backend("torch-cpu")


def serve(backend: ModelBackend, options: BackendOptions | None = None) -> ServiceServer:
    server = make_server(backend, "127.0.0.1:0", max_workers=4, options=options)
    server.start()
    return server


@pytest.fixture(scope="module")
def embedders(torch_cpu: ModelBackend) -> Iterator[EmbedderPool]:
    server = serve(torch_cpu)
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
    spec = run_spec(tmp_path, "onnxruntime-cpu")
    report = RunPipeline(embedders, selector).execute(spec, Observer()).to_json()
    assert report["model"]["backend"] == "onnxruntime-cpu"
    assert "worker_config.model_backend='onnxruntime-cpu'" in report["model"]["backend_reason"]
    assert sum(len(b.vectors.frame_indices) for b in selector.batches) == 6


@pytest.mark.skipif(torch.cuda.is_available(), reason="expects a machine without a CUDA GPU")
def test_a_backend_the_embedders_cannot_run_fails_the_run_up_front(
    embedders: EmbedderPool, tmp_path: Path
) -> None:
    selector = Selector()
    with pytest.raises(RunFailed) as failed:
        RunPipeline(embedders, selector).execute(run_spec(tmp_path, "torch-cuda"), Observer())
    message = str(failed.value)
    assert message.startswith("worker_config.model_backend='torch-cuda' cannot be used: FAILED_PRECONDITION")
    assert "no CUDA GPU" in message
    assert selector.batches == []


def test_a_backend_that_fails_to_load_fails_the_run_and_refuses_the_next(tmp_path: Path) -> None:
    # torch refuses --threads -1 when torch-cpu loads: a load failure on the first file,
    # which GetModelInfo at run start cannot foresee.
    server = serve(load_backend("onnxruntime-cpu"), BackendOptions(threads=-1))
    embedders = EmbedderPool([f"127.0.0.1:{server.port}"])
    try:
        selector = Selector()
        with pytest.raises(RunFailed) as failed:
            RunPipeline(embedders, selector).execute(run_spec(tmp_path, "torch-cpu"), Observer())
        message = str(failed.value)
        assert f"worker_config.model_backend='torch-cpu' cannot be used: 127.0.0.1:{server.port}: " in message
        assert "failed to load: RuntimeError: set_num_threads expects a positive integer" in message
        assert "file_complete" not in selector.items
        # The embedder remembers the failure: the next run is refused before it embeds.
        with pytest.raises(RunFailed) as refused:
            RunPipeline(embedders, Selector()).execute(run_spec(tmp_path, "torch-cpu"), Observer())
        assert str(refused.value).startswith(
            "worker_config.model_backend='torch-cpu' cannot be used: FAILED_PRECONDITION: "
        )
        assert "failed to load" in str(refused.value)
    finally:
        embedders.close()
        server.stop(0)


@pytest.fixture(scope="module")
def mixed_models(torch_cpu: ModelBackend) -> Iterator[tuple[str, list[str]]]:
    """One replica with the usual model id, three whose vectors carry another: replicas started
    with --gpu-resize, which need a GPU, so a CPU backend stands in with their model id."""
    odd = copy.copy(torch_cpu)
    odd.model_id = backend_model_id("torch-cuda", BackendOptions(gpu_resize=True))
    servers = [serve(torch_cpu)] + [serve(odd) for _ in range(FILE_ATTEMPTS)]
    addresses = [f"127.0.0.1:{s.port}" for s in servers]
    yield addresses[0], addresses[1:]
    for s in servers:
        s.stop(0)


def run_on(addresses: list[str], tmp_path: Path) -> tuple[dict[str, Any], Selector]:
    """A run whose model comes from addresses[0] (the first replica picked) and whose one
    file goes to the others in turn."""
    embedders = EmbedderPool(addresses)
    selector = Selector()
    try:
        report = RunPipeline(embedders, selector).execute(run_spec(tmp_path, "auto"), Observer()).to_json()
    finally:
        embedders.close()
    return report, selector


def test_vectors_of_another_model_are_dropped_and_the_file_embedded_elsewhere(
    torch_cpu: ModelBackend, mixed_models: tuple[str, list[str]], tmp_path: Path
) -> None:
    usual, odd = mixed_models
    report, selector = run_on([usual, odd[0]], tmp_path)
    assert report["model"]["name"] == torch_cpu.model_id
    assert [f["path"] for f in report["files"]["processed"]] == ["clip.mp4"]
    assert report["files"]["skipped"] == []
    assert selector.items == ["spec", "batch", "file_dropped", "batch", "file_complete"]


def test_a_file_only_other_models_embed_fails_the_run_naming_both_model_ids(
    torch_cpu: ModelBackend, mixed_models: tuple[str, list[str]], tmp_path: Path
) -> None:
    # Misconfigured embedders are not a broken file: the run fails rather than skip it.
    usual, odd = mixed_models
    embedders = EmbedderPool([usual, *odd])
    selector = Selector()
    try:
        with pytest.raises(RunFailed) as failed:
            RunPipeline(embedders, selector).execute(run_spec(tmp_path, "auto"), Observer())
    finally:
        embedders.close()
    odd_id = torch_cpu.model_id + GPU_RESIZE_SUFFIX
    message = str(failed.value)
    assert message.startswith(f"the embedders failed {FILE_ATTEMPTS} times on clip.mp4; last: 127.0.0.1:")
    assert f"embedded with model {odd_id!r}, not the run's model {torch_cpu.model_id!r}" in message
    assert selector.items == ["spec"] + ["batch", "file_dropped"] * FILE_ATTEMPTS
