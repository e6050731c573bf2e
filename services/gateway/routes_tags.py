"""Tags, exported filenames and the embeddings CSV."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from datapool.v1 import scheduler_pb2
from datapool.vectors import from_batch
from services.gateway import models
from services.gateway.app import Gateway, gateway, token
from services.gateway.errors import not_found, unsupported

router = APIRouter()
Gw = Annotated[Gateway, Depends(gateway)]
Token = Annotated[str, Depends(token)]
EXPORT_TIMEOUT_S = 3600.0


def _tags(gw: Gateway, dataset_id: str, tok: str) -> list[scheduler_pb2.TagInfo]:
    request = scheduler_pb2.ListTagsRequest(dataset_id=dataset_id)
    return list(gw.scheduler.call(gw.scheduler.stub.ListTags, request, tok).tags)


def _tag(gw: Gateway, dataset_id: str, tag_id: str, tok: str) -> scheduler_pb2.TagInfo:
    for t in _tags(gw, dataset_id, tok):
        if models.tag_id(dataset_id, t.name) == tag_id:
            return t
    raise not_found(f"tag {tag_id!r} is not a tag of dataset {dataset_id!r}")


@router.get("/v1/datasets/{dataset_id}/tags")
def list_tags(dataset_id: str, gw: Gw, tok: Token) -> list[dict[str, Any]]:
    """Newest first; "initial-tag" (the whole pool) last."""
    return [models.tag(dataset_id, t) for t in _tags(gw, dataset_id, tok)]


@router.get("/v1/datasets/{dataset_id}/tags/{tag_id}")
def get_tag(dataset_id: str, tag_id: str, gw: Gw, tok: Token) -> dict[str, Any]:
    return models.tag(dataset_id, _tag(gw, dataset_id, tag_id, tok))


@router.get("/v1/datasets/{dataset_id}/tags/{tag_id}/export/basic/filenames")
def export_filenames(
    dataset_id: str,
    tag_id: str,
    gw: Gw,
    tok: Token,
    file_name_format: Annotated[str, Query(alias="fileNameFormat")] = "NAME",
    page_size: Annotated[int | None, Query(alias="pageSize", ge=1)] = None,
    page_offset: Annotated[int | None, Query(alias="pageOffset", ge=0)] = None,
) -> str:
    """Newline-separated frame names; pages count names (the client stops at a short page)."""
    if file_name_format != "NAME":
        raise unsupported(f"fileNameFormat {file_name_format!r} (datapool exports names only)")
    tag = _tag(gw, dataset_id, tag_id, tok)
    request = scheduler_pb2.ExportFilenamesRequest(dataset_id=dataset_id, tag_name=tag.name)
    names = list(
        gw.scheduler.call(gw.scheduler.stub.ExportFilenames, request, tok, EXPORT_TIMEOUT_S).filenames
    )
    start = page_offset or 0
    return "\n".join(names[start : start + page_size] if page_size else names[start:])


@router.get("/v1/datasets/{dataset_id}/embeddings")
def list_embeddings(dataset_id: str, gw: Gw, tok: Token) -> list[dict[str, Any]]:
    ds = gw.scheduler.call(gw.scheduler.stub.GetDataset, scheduler_pb2.GetDatasetRequest(id=dataset_id), tok)
    return [models.embedding(ds)]


def _csv_resource(dataset_id: str) -> str:
    return f"embeddings/{dataset_id}"


@router.get("/v1/datasets/{dataset_id}/embeddings/{embedding_id}/readCSVUrl")
def embeddings_read_url(dataset_id: str, embedding_id: str, request: Request, gw: Gw, tok: Token) -> str:
    """`download_embeddings_csv` asks for this URL, then GETs it without its token."""
    if embedding_id != dataset_id:
        raise not_found(f"embedding {embedding_id!r}: dataset {dataset_id!r} has one, with the dataset's id")
    gw.scheduler.call(gw.scheduler.stub.GetDataset, scheduler_pb2.GetDatasetRequest(id=dataset_id), tok)
    ticket = gw.tickets.issue(tok, _csv_resource(dataset_id))
    url = request.url_for("download_embeddings_csv", dataset_id=dataset_id)
    return str(url.include_query_params(ticket=ticket))


def _csv_lines(rows: Iterator[scheduler_pb2.EmbeddingRows]) -> Iterator[str]:
    """Lightly's embeddings CSV: `filenames,embedding_0..embedding_{d-1},labels`, one row per frame."""
    out = io.StringIO()
    writer = csv.writer(out)
    header = False
    for chunk in rows:
        if not header:
            writer.writerow(["filenames", *(f"embedding_{i}" for i in range(chunk.vectors.dim)), "labels"])
            header = True
        for name, vec in zip(chunk.filenames, from_batch(chunk.vectors, len(chunk.filenames)), strict=True):
            writer.writerow([name, *(repr(float(x)) for x in vec), 0])
        yield out.getvalue()
        out.seek(0)
        out.truncate()
    if not header:
        yield "filenames,labels\r\n"


@router.get("/v1/datasets/{dataset_id}/embeddings/default.csv", name="download_embeddings_csv")
def download_embeddings_csv(dataset_id: str, ticket: str, gw: Gw) -> StreamingResponse:
    tok = gw.tickets.redeem(ticket, _csv_resource(dataset_id))
    request = scheduler_pb2.ExportEmbeddingsRequest(dataset_id=dataset_id, tag_name="")
    rows = gw.scheduler.stream(gw.scheduler.stub.ExportEmbeddings, request, tok, EXPORT_TIMEOUT_S)
    # Pull the first chunk now, so a refused call is an HTTP error rather than a cut-off body.
    lines = _csv_lines(rows)
    first = next(lines)

    def body() -> Iterator[str]:
        yield first
        yield from lines

    return StreamingResponse(body(), media_type="text/csv")
