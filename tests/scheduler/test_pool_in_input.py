"""set_*_config refuses a pool that is its input or lies inside it, naming both locations."""

from __future__ import annotations

from pathlib import Path

import pytest
from catalog_helpers import INPUT, POOL, videos_catalog

from datapool.errors import InvalidArgument
from datapool.storage import local_location, s3_location
from datapool.v1 import common_pb2
from services.scheduler.datasources import DatasourceCatalog

catalog = pytest.fixture(videos_catalog, name="catalog")


def _set_both(
    catalog: tuple[DatasourceCatalog, str],
    inp: common_pb2.StoreLocation,
    pool: common_pb2.StoreLocation,
    pool_first: bool,
) -> None:
    cat, dataset = catalog
    order = [(POOL, pool), (INPUT, inp)] if pool_first else [(INPUT, inp), (POOL, pool)]
    for purpose, location in order:
        cat.set(dataset, purpose, location, verify=False)


@pytest.mark.parametrize("pool_first", [False, True], ids=["input-first", "pool-first"])
def test_a_pool_inside_the_input_through_dot_dot_is_refused(
    catalog: tuple[DatasourceCatalog, str], tmp_path: Path, pool_first: bool
) -> None:
    inp = tmp_path / "in"
    (inp / "sub").mkdir(parents=True)
    pool = f"{inp}/sub/../pool"
    with pytest.raises(InvalidArgument) as refused:
        _set_both(catalog, local_location(str(inp)), local_location(pool), pool_first)
    message = str(refused.value)
    assert f"LIGHTLY datasource local folder {pool} (resolves to {inp / 'pool'}) lies inside" in message
    assert f"the INPUT datasource local folder {inp}" in message


def test_a_pool_that_is_the_input_is_refused(catalog: tuple[DatasourceCatalog, str], tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match=r"is the same location as the INPUT datasource"):
        _set_both(catalog, local_location(str(tmp_path)), local_location(f"{tmp_path}/"), pool_first=False)


def test_a_pool_reached_through_a_symlink_into_the_input_is_refused(
    catalog: tuple[DatasourceCatalog, str], tmp_path: Path
) -> None:
    (tmp_path / "in" / "pool").mkdir(parents=True)
    (tmp_path / "pool-link").symlink_to(tmp_path / "in" / "pool")
    with pytest.raises(InvalidArgument, match=r"lies inside \(at 'pool/'\) the INPUT"):
        _set_both(
            catalog, local_location(str(tmp_path / "in")), local_location(str(tmp_path / "pool-link")), True
        )


def test_an_s3_pool_under_the_input_prefix_is_refused(catalog: tuple[DatasourceCatalog, str]) -> None:
    with pytest.raises(InvalidArgument, match=r"LIGHTLY datasource s3://bkt/videos/pool/ lies inside"):
        _set_both(catalog, s3_location("bkt", "videos/"), s3_location("bkt", "videos/pool/"), False)


def test_a_pool_beside_the_input_is_accepted(catalog: tuple[DatasourceCatalog, str], tmp_path: Path) -> None:
    _set_both(catalog, local_location(str(tmp_path / "in")), local_location(str(tmp_path / "in-pool")), False)
    _set_both(catalog, s3_location("bkt", "videos/"), s3_location("bkt", "videos-pool/"), True)
    cat, dataset = catalog
    assert cat.get(dataset, POOL) == s3_location("bkt", "videos-pool/")
