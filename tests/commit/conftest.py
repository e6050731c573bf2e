from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from commit_stores import MakeLocation, NewPool
from fork_trials import ForkServer

from datapool.storage import Store, open_store
from datapool.v1 import common_pb2


@pytest.fixture
def new_pool(store_kind: str, make_location: MakeLocation) -> NewPool:
    def make() -> tuple[common_pb2.StoreLocation, Store]:
        location = make_location(store_kind)
        return location, open_store(location)

    return make


@pytest.fixture(scope="session")
def fork_server(
    tmp_path_factory: pytest.TempPathFactory, emulator_env: dict[str, str]
) -> Iterator[ForkServer]:
    server = ForkServer({**os.environ, **emulator_env}, tmp_path_factory.mktemp("trials"))
    yield server
    server.close()
