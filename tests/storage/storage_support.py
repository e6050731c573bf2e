"""Types and helpers for the storage tests (the fixtures themselves live in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from datapool.v1 import common_pb2

MakeLocation = Callable[..., common_pb2.StoreLocation]


class EmulatorsApi(Protocol):
    """What the storage tests use of tests/emulators.Emulators."""

    @property
    def moto_url(self) -> str: ...

    def s3_user(self, actions: list[str]) -> tuple[str, str]: ...

    def s3_admin(self, service: str = "s3") -> Any: ...

    def azure_sas(self, container: str, permission: str = "racwdl", *, valid_s: float = 86400) -> str: ...

    def emulator_env(self) -> dict[str, str]: ...


def _copy(location: common_pb2.StoreLocation, local_name: str) -> tuple[common_pb2.StoreLocation, str]:
    """A copy of `location` and its kind; a local copy is already the folder `local_name` beside
    the original (a local location has no bucket or prefix apart from its folder)."""
    other = common_pb2.StoreLocation()
    other.CopyFrom(location)
    kind = str(other.WhichOneof("kind"))
    if kind == "local":
        other.local.root = str(Path(other.local.root).parent / local_name)
    return other, kind


def with_prefix(location: common_pb2.StoreLocation, prefix: str) -> common_pb2.StoreLocation:
    """The same bucket (or the parent folder, for "local") under another prefix."""
    other, kind = _copy(location, prefix)
    if kind != "local":
        getattr(other, kind).prefix = prefix
    return other


def with_bucket(location: common_pb2.StoreLocation, bucket: str) -> common_pb2.StoreLocation:
    other, kind = _copy(location, bucket)
    if kind == "azure":
        other.azure.container = bucket
    elif kind != "local":
        getattr(other, kind).bucket = bucket
    return other
