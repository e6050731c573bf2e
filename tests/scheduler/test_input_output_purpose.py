"""Purpose INPUT_OUTPUT (Lightly's default): one location for input and pool, the pool at the
input's reserved `.lightly/` prefix, which no run lists as input."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import pytest
from catalog_helpers import INPUT, POOL, videos_catalog
from stage_fakes import spec

from datapool.errors import InvalidArgument
from datapool.storage import azure_location, gcs_location, local_location, s3_location
from datapool.storage.nesting import reserved_pool_location
from datapool.v1 import common_pb2, scheduler_pb2, selector_pb2
from services.scheduler.datasources import DatasourceCatalog
from services.scheduler.run.listing import list_new_files

catalog = pytest.fixture(videos_catalog, name="catalog")


@pytest.mark.parametrize(
    ("inp", "pool"),
    [
        (s3_location("bkt", ""), s3_location("bkt", ".lightly/")),
        (s3_location("bkt", "videos"), s3_location("bkt", "videos/.lightly/")),
        (gcs_location("bkt", "in/"), gcs_location("bkt", "in/.lightly/")),
        (azure_location("acct", "box", "in/"), azure_location("acct", "box", "in/.lightly/")),
        (local_location("/data/in"), local_location("/data/in/.lightly")),
    ],
)
def test_the_pool_of_an_input_output_location_is_its_reserved_prefix(
    inp: common_pb2.StoreLocation, pool: common_pb2.StoreLocation
) -> None:
    assert reserved_pool_location(inp) == pool


def test_input_output_sets_the_input_and_a_verified_pool_at_its_reserved_prefix(
    catalog: tuple[DatasourceCatalog, str], tmp_path: Path
) -> None:
    cat, dataset = catalog
    (tmp_path / "bucket").mkdir()
    cat.set(dataset, scheduler_pb2.INPUT_OUTPUT, local_location(str(tmp_path / "bucket")), verify=True)
    assert cat.get(dataset, INPUT) == local_location(str(tmp_path / "bucket"))
    assert cat.get(dataset, POOL) == local_location(str(tmp_path / "bucket" / ".lightly"))
    # Verifying the pool wrote (and removed) its probe there: the folder is usable.
    assert (tmp_path / "bucket" / ".lightly").is_dir()


def test_a_malformed_input_output_prefix_is_refused_naming_the_path(
    catalog: tuple[DatasourceCatalog, str],
) -> None:
    cat, dataset = catalog
    with pytest.raises(InvalidArgument, match=r"resource_path: invalid prefix 'a/\.\./b'"):
        # Built by hand: s3_location() itself refuses the prefix, a client's message need not.
        bad = common_pb2.StoreLocation(s3=common_pb2.S3Location(bucket="bkt", prefix="a/../b"))
        cat.set(dataset, scheduler_pb2.INPUT_OUTPUT, bad, verify=False)
    assert cat.get(dataset, INPUT) is None and cat.get(dataset, POOL) is None


@pytest.mark.parametrize("pool_prefix", ["videos/.lightly/", "videos/.lightly"])
def test_a_pool_at_the_inputs_reserved_prefix_is_accepted(
    catalog: tuple[DatasourceCatalog, str], pool_prefix: str
) -> None:
    cat, dataset = catalog
    cat.set(dataset, INPUT, s3_location("bkt", "videos/"), verify=False)
    cat.set(dataset, POOL, s3_location("bkt", pool_prefix), verify=False)
    assert cat.get(dataset, POOL) == s3_location("bkt", pool_prefix)


@pytest.mark.parametrize("pool_prefix", ["videos/.lightly/sub/", "videos/lightly/", "videos/.lightly2/"])
def test_a_pool_elsewhere_inside_the_input_is_still_refused(
    catalog: tuple[DatasourceCatalog, str], pool_prefix: str
) -> None:
    cat, dataset = catalog
    cat.set(dataset, INPUT, s3_location("bkt", "videos/"), verify=False)
    with pytest.raises(InvalidArgument, match=r"lies inside .* or the input's '\.lightly/' prefix"):
        cat.set(dataset, POOL, s3_location("bkt", pool_prefix), verify=False)


def test_the_reserved_prefix_is_never_listed_as_input(tmp_path: Path) -> None:
    # The spec's pool is in/pool; in/.lightly holds a video too (a pool's frames, Lightly's
    # thumbnails): neither is input.
    for name in ("a.mp4", ".lightly/frames/x.mp4", ".lightly/y.png", "pool/z.mp4", "sub/.lightly/b.mp4"):
        (tmp_path / "in" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "in" / name).write_bytes(b"video")
    listing = list_new_files(spec(tmp_path, process_all=True), _EmptyPool())
    assert [f.path for f in listing.new] == ["a.mp4", "sub/.lightly/b.mp4"]
    assert listing.listed == 2 and listing.not_media == []


class _EmptyPool:
    """A selector whose pool is empty (with process_all, listing asks for no processed files)."""

    def get_pool(self, pool: common_pb2.StoreLocation) -> selector_pb2.PoolSummary:
        return selector_pb2.PoolSummary()

    def processed_files(self, pool: common_pb2.StoreLocation) -> NoReturn:
        raise AssertionError("process_all lists no processed files")
