"""Shared fixtures: one model per test session, one folder of generated media."""

from __future__ import annotations

import pytest
from embedder_media import Media, build_media

from services.embedder.model import TorchCpuBackend, load_backend


@pytest.fixture(scope="session")
def backend() -> TorchCpuBackend:
    loaded = load_backend("torch-cpu")
    assert isinstance(loaded, TorchCpuBackend)
    return loaded


@pytest.fixture(scope="session")
def media(tmp_path_factory: pytest.TempPathFactory) -> Media:
    return build_media(tmp_path_factory.mktemp("bucket"))
