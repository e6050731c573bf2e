"""A real `datapool up` (three service processes) shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from e2e_support import RunningStack, running_stack

TOKEN = "e2e-secret-token"


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with running_stack(tmp_path_factory.mktemp("stack"), TOKEN) as running:
        yield running
