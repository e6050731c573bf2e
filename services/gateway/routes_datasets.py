"""Version checks, datasets and datasources."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, ConfigDict

from datapool.v1 import scheduler_pb2
from services.gateway import datasources, models
from services.gateway.app import Gateway, PageOffset, PageSize, gateway, page, token
from services.gateway.errors import bad_request, unsupported

router = APIRouter()
# The version the gateway was proven against (tests/gateway/); answered as "latest" so the client
# does not nag its users to upgrade to a version nobody has checked.
LIGHTLY_VERSION = "1.5.26"
MINIMUM_VERSION = "1.0.0"

Gw = Annotated[Gateway, Depends(gateway)]
Token = Annotated[str, Depends(token)]


@router.get("/v1/versions/pip/minimum")
def minimum_version() -> str:
    return MINIMUM_VERSION


@router.get("/v1/versions/pip/latest")
def latest_version() -> str:
    return LIGHTLY_VERSION


class DatasetCreateRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    type: str = "Images"
    creator: str | None = None


def _datasets(gw: Gateway, tok: str) -> list[scheduler_pb2.Dataset]:
    return list(
        gw.scheduler.call(gw.scheduler.stub.ListDatasets, scheduler_pb2.ListDatasetsRequest(), tok).datasets
    )


@dataclass(frozen=True)
class DatasetListing:
    """The query both dataset listings take. Datapool has no sharing or teams: a listing of shared
    or team datasets is empty (the scheduler is not asked), every other dataset is the caller's own."""

    only_others: bool
    page_size: int | None
    page_offset: int | None

    def answer(self, datasets: Callable[[], list[scheduler_pb2.Dataset]]) -> list[dict[str, Any]]:
        if self.only_others:
            return []
        return page([models.dataset(d) for d in datasets()], self.page_size, self.page_offset)


def _listing(
    shared: bool = False,
    get_assets_of_team: Annotated[bool, Query(alias="getAssetsOfTeam")] = False,
    page_size: PageSize = None,
    page_offset: PageOffset = None,
) -> DatasetListing:
    return DatasetListing(shared or get_assets_of_team, page_size, page_offset)


Listing = Annotated[DatasetListing, Depends(_listing)]


@router.get("/v1/datasets")
def list_datasets(gw: Gw, tok: Token, listing: Listing) -> list[dict[str, Any]]:
    return listing.answer(lambda: _datasets(gw, tok))


@router.get("/v1/datasets/query/name/{dataset_name}")
def datasets_by_name(
    dataset_name: str, gw: Gw, tok: Token, listing: Listing, exact: bool = False
) -> list[dict[str, Any]]:
    """The name-exists query `create_dataset` and `set_dataset_id_by_name` make."""
    return listing.answer(
        lambda: [
            d
            for d in _datasets(gw, tok)
            if d.name == dataset_name or (not exact and d.name.startswith(dataset_name))
        ]
    )


@router.post("/v1/datasets", status_code=201)
def create_dataset(body: DatasetCreateRequest, gw: Gw, tok: Token) -> dict[str, str]:
    for key, value in (body.model_extra or {}).items():
        if value is not None:
            raise unsupported(f"dataset field {key!r}")
    try:
        kind = models.dataset_type(body.type)
    except ValueError as e:
        raise bad_request(str(e)) from None
    request = scheduler_pb2.CreateDatasetRequest(name=body.name, type=kind)  # type: ignore[arg-type]
    return {"id": gw.scheduler.call(gw.scheduler.stub.CreateDataset, request, tok).id}


@router.get("/v1/datasets/{dataset_id}")
def get_dataset(dataset_id: str, gw: Gw, tok: Token) -> dict[str, Any]:
    ds = gw.scheduler.call(gw.scheduler.stub.GetDataset, scheduler_pb2.GetDatasetRequest(id=dataset_id), tok)
    return models.dataset(ds)


@router.put("/v1/datasets/{dataset_id}/datasource")
def set_datasource(dataset_id: str, gw: Gw, tok: Token, body: Annotated[dict[str, Any], Body()]) -> None:
    """`set_s3_config`, `set_s3_delegated_access_config`, `set_gcs_config`, `set_azure_config`,
    `set_local_config`: the scheduler verifies access before it stores the datasource."""
    request = scheduler_pb2.SetDatasourceRequest(
        dataset_id=dataset_id,
        purpose=datasources.purpose(body),  # type: ignore[arg-type]
        location=datasources.location(body),
    )
    gw.scheduler.call(gw.scheduler.stub.SetDatasource, request, tok)


@router.get("/v1/datasets/{dataset_id}/datasource")
def get_datasource(dataset_id: str, gw: Gw, tok: Token, purpose: str | None = None) -> dict[str, Any]:
    """`get_datasource`: without a purpose, the INPUT_OUTPUT datasource where the dataset has one
    (Lightly's default), else the INPUT one. Credentials come back masked."""
    which = (
        datasources.purpose({"purpose": purpose}) if purpose else scheduler_pb2.DATASOURCE_PURPOSE_UNSPECIFIED
    )
    request = scheduler_pb2.GetDatasourceRequest(dataset_id=dataset_id, purpose=which)  # type: ignore[arg-type]
    return datasources.as_lightly(gw.scheduler.call(gw.scheduler.stub.GetDatasource, request, tok))
