"""Datasources at rest (encrypted) and their access check (messages name permission and path)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from secret_locations import SAS, SECRET, azure_location, s3_location

from datapool.errors import FailedPrecondition, InvalidArgument
from datapool.storage import LocalStore, ObjectInfo
from datapool.v1 import common_pb2, scheduler_pb2
from services.common.secrets import Scrubber, SecretBox
from services.scheduler import datasources as datasources_module
from services.scheduler.datasources import DatasourceCatalog, verify_datasource
from services.scheduler.db import MetadataDB


@pytest.fixture
def db(make_db: Callable[[], MetadataDB]) -> MetadataDB:
    return make_db()


def _raw_state(db: MetadataDB, tmp_path: Path) -> bytes:
    if db.is_postgres:
        # Every stored value of every table, as Postgres hands it out.
        with db.engine.connect() as c:
            tables = ("datasets", "datasources", "runs")
            return b"".join(repr(r).encode() for t in tables for r in c.exec_driver_sql(f"SELECT * FROM {t}"))
    # The database file and its write-ahead log: a secret in either is on disk.
    return b"".join(p.read_bytes() for p in (tmp_path / "state").iterdir() if p.is_file())


def test_credentials_are_encrypted_at_rest(db: MetadataDB, tmp_path: Path) -> None:
    key = SecretBox.generate_key()
    catalog = DatasourceCatalog(db, SecretBox(key), Scrubber())
    ds = db.create_dataset("cloud", scheduler_pb2.VIDEOS)
    catalog.set(ds.id, scheduler_pb2.INPUT, s3_location(), verify=False)
    catalog.set(ds.id, scheduler_pb2.LIGHTLY, azure_location(), verify=False)
    assert catalog.get(ds.id, scheduler_pb2.INPUT) == s3_location()
    assert catalog.get(ds.id, scheduler_pb2.LIGHTLY) == azure_location()
    raw = _raw_state(db, tmp_path)
    for needle in (SECRET, SAS, "sig=", "AKIAEXAMPLE123", key.decode()):
        assert needle.encode() not in raw, needle


def test_no_key_refuses_credentials_but_takes_local_folders(db: MetadataDB, tmp_path: Path) -> None:
    catalog = DatasourceCatalog(db, None, Scrubber())
    ds = db.create_dataset("d", scheduler_pb2.VIDEOS)
    with pytest.raises(FailedPrecondition) as err:
        catalog.set(ds.id, scheduler_pb2.INPUT, s3_location(), verify=False)
    assert "DATAPOOL_SECRET_KEY" in str(err.value) and "--secret-key-file" in str(err.value)
    local = common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(tmp_path)))
    catalog.set(ds.id, scheduler_pb2.INPUT, local, verify=False)
    assert catalog.get(ds.id, scheduler_pb2.INPUT) == local


def test_wrong_or_missing_key_names_the_dataset(db: MetadataDB) -> None:
    ds = db.create_dataset("pedestrians", scheduler_pb2.VIDEOS)
    DatasourceCatalog(db, SecretBox(SecretBox.generate_key()), Scrubber()).set(
        ds.id, scheduler_pb2.INPUT, s3_location(), verify=False
    )
    with pytest.raises(FailedPrecondition) as err:
        DatasourceCatalog(db, SecretBox(SecretBox.generate_key()), Scrubber()).require(
            ds.id, scheduler_pb2.INPUT
        )
    assert "wrong secret key" in str(err.value) and "'pedestrians'" in str(err.value)
    with pytest.raises(FailedPrecondition) as err:
        DatasourceCatalog(db, None, Scrubber()).require(ds.id, scheduler_pb2.INPUT)
    assert "no secret key" in str(err.value) and "'pedestrians'" in str(err.value)


def test_missing_datasource_says_how_to_set_it(db: MetadataDB) -> None:
    ds = db.create_dataset("d", scheduler_pb2.VIDEOS)
    with pytest.raises(FailedPrecondition, match=r"no LIGHTLY datasource; set it with set_local_config"):
        DatasourceCatalog(db, None).require(ds.id, scheduler_pb2.LIGHTLY)


class DenyingStore(LocalStore):
    """A local folder whose backend refuses one operation, as a bucket policy would."""

    def __init__(self, root: Path, deny: str) -> None:
        super().__init__(root)
        self.deny = deny

    def _check(self, op: str) -> None:
        if op == self.deny:
            raise PermissionError(13, f"AccessDenied, credential {SECRET}")

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        self._check("list")
        return super().list(prefix)

    def read(self, key: str) -> bytes:
        self._check("read")
        return super().read(key)

    def read_range(self, key: str, start: int, end: int | None = None) -> bytes:
        self._check("read")
        return super().read_range(key, start, end)

    def put(self, key: str, data: bytes) -> None:
        self._check("write")
        super().put(key, data)

    def delete(self, key: str) -> None:
        self._check("delete")
        super().delete(key)


@pytest.mark.parametrize(
    ("purpose", "deny"),
    [
        (scheduler_pb2.INPUT, "list"),
        (scheduler_pb2.INPUT, "read"),
        (scheduler_pb2.LIGHTLY, "write"),
        (scheduler_pb2.LIGHTLY, "delete"),
    ],
)
def test_verification_names_permission_and_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, purpose: int, deny: str
) -> None:
    (tmp_path / "a.mp4").write_bytes(b"x")
    store = DenyingStore(tmp_path, deny)
    monkeypatch.setattr(datasources_module, "open_store", lambda _loc: store)
    scrubber = Scrubber()
    scrubber.register(s3_location())
    with pytest.raises(FailedPrecondition) as err:
        verify_datasource(s3_location(), purpose, scrubber)
    message = str(err.value)
    assert f"missing permission to {deny}" in message
    assert str(tmp_path) in message and "AccessDenied" in message
    assert SECRET not in message


def test_input_needs_no_write_and_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = DenyingStore(tmp_path, "write")
    monkeypatch.setattr(datasources_module, "open_store", lambda _loc: store)
    verify_datasource(s3_location(), scheduler_pb2.INPUT)
    store.deny = ""
    verify_datasource(s3_location(), scheduler_pb2.LIGHTLY)
    assert list(tmp_path.rglob("*access-check*")) == []


def test_unusable_location_is_invalid_argument() -> None:
    with pytest.raises(InvalidArgument, match="resource_path"):
        verify_datasource(
            common_pb2.StoreLocation(local=common_pb2.LocalLocation(root="")), scheduler_pb2.INPUT
        )


def test_missing_input_folder_is_failed_precondition(tmp_path: Path) -> None:
    missing = common_pb2.StoreLocation(local=common_pb2.LocalLocation(root=str(tmp_path / "nope")))
    with pytest.raises(FailedPrecondition, match="nope"):
        verify_datasource(missing, scheduler_pb2.INPUT)
