from __future__ import annotations

from pathlib import Path

import pytest

from datapool.pool.repository import PoolRepository
from datapool.storage import LocalStore
from services.selector.service import SelectorService


@pytest.fixture
def pool_root(tmp_path: Path) -> Path:
    root = tmp_path / "pool"
    root.mkdir()
    return root


@pytest.fixture
def repo(pool_root: Path) -> PoolRepository:
    return PoolRepository(LocalStore(pool_root))


@pytest.fixture
def service() -> SelectorService:
    return SelectorService()
