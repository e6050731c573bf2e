"""Session fixtures for tests/view: one stack with its datasets, the view on it, one browser."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright
from view_support import TOKEN, Datasets, fill, launch, serving

from datapool.ports import free_port
from datapool.stack import Stack
from datapool.view.app import create_app
from datapool.view.grpc_source import GrpcViewSource


@pytest.fixture(scope="session")
def datasets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Datasets]:
    base = tmp_path_factory.mktemp("view")
    stack = Stack(base / "state", port=free_port(), tls_dir=base / "tls")
    saved = os.environ.get("DATAPOOL_TOKEN")
    os.environ["DATAPOOL_TOKEN"] = TOKEN  # the scheduler's user token, inherited at spawn
    try:
        stack.start()
    finally:
        if saved is None:
            del os.environ["DATAPOOL_TOKEN"]
        else:
            os.environ["DATAPOOL_TOKEN"] = saved
    try:
        assert stack.ca_cert is not None
        data = Datasets(stack.address, base / "data", stack.ca_cert)
        fill(data)
        yield data
    finally:
        stack.stop()


@pytest.fixture(scope="session")
def view_url(datasets: Datasets) -> Iterator[str]:
    source = GrpcViewSource(datasets.address, TOKEN, datasets.ca_cert)
    with serving(create_app(source)) as url:
        yield url
    source.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = launch(playwright)
        yield browser
        browser.close()
