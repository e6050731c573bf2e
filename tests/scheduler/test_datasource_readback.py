"""Reading a dataset's datasource back (Lightly's get_datasource): the purpose it serves, and the
location with its credentials masked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from datapool.errors import InvalidArgument, NotFound
from datapool.storage import s3_location
from datapool.v1 import scheduler_pb2
from services.common.secrets import MASK, SecretBox
from services.scheduler.datasource_readback import read_back
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.db import MetadataDB

INPUT, POOL, BOTH = scheduler_pb2.INPUT, scheduler_pb2.LIGHTLY, scheduler_pb2.INPUT_OUTPUT
ANY = scheduler_pb2.DATASOURCE_PURPOSE_UNSPECIFIED
KEYS = {"access_key_id": "AKIA-READBACK", "secret_access_key": "secret-readback"}


@pytest.fixture
def catalog(tmp_path: Path) -> Iterator[tuple[DatasourceCatalog, str]]:
    db = MetadataDB(tmp_path / "state" / "datapool.sqlite3")
    box = SecretBox(Fernet.generate_key())
    yield DatasourceCatalog(db, box), db.create_dataset("videos", scheduler_pb2.VIDEOS).id
    db.close()


def test_an_input_output_datasource_reads_back_as_one_with_its_credentials_masked(
    catalog: tuple[DatasourceCatalog, str],
) -> None:
    cat, dataset = catalog
    cat.set(dataset, BOTH, s3_location("bkt", "videos/", **KEYS), verify=False)
    for asked in (ANY, BOTH, INPUT):
        got = read_back(cat, dataset, asked)
        assert got.purpose == (INPUT if asked == INPUT else BOTH)
        assert (got.location.s3.bucket, got.location.s3.prefix) == ("bkt", "videos/")
        assert got.location.s3.access_key.secret_access_key == MASK
        assert "secret-readback" not in str(got) and "AKIA-READBACK" not in str(got)
    assert read_back(cat, dataset, POOL).location.s3.prefix == "videos/.lightly/"


def test_separate_datasources_read_back_by_purpose_and_not_as_input_output(
    catalog: tuple[DatasourceCatalog, str],
) -> None:
    cat, dataset = catalog
    cat.set(dataset, INPUT, s3_location("bkt", "in/", **KEYS), verify=False)
    assert read_back(cat, dataset, ANY).purpose == INPUT
    with pytest.raises(NotFound, match=f"dataset {dataset} has no LIGHTLY datasource"):
        read_back(cat, dataset, POOL)
    cat.set(dataset, POOL, s3_location("bkt", "pool/", **KEYS), verify=False)
    assert read_back(cat, dataset, POOL).location.s3.prefix == "pool/"
    with pytest.raises(NotFound, match=r"no INPUT_OUTPUT datasource .* ask for purpose INPUT or LIGHTLY"):
        read_back(cat, dataset, BOTH)


def test_nothing_set_unknown_dataset_and_bad_purpose_are_named(
    catalog: tuple[DatasourceCatalog, str],
) -> None:
    cat, dataset = catalog
    with pytest.raises(NotFound, match=f"dataset {dataset} has no INPUT datasource"):
        read_back(cat, dataset, ANY)
    with pytest.raises(NotFound, match="0123456789abcdef01234567"):
        read_back(cat, "0123456789abcdef01234567", ANY)
    with pytest.raises(InvalidArgument, match="purpose must be INPUT, LIGHTLY or INPUT_OUTPUT"):
        read_back(cat, dataset, 7)
