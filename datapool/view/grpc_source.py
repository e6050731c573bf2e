"""The view's data from the scheduler, over gRPC, read-only, with the client's token and TLS."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import grpc
import numpy as np

from datapool.client import EXPORT_EMBEDDINGS_DEADLINE_S, ApiWorkflowClient
from datapool.client_models import ApiError
from datapool.v1 import scheduler_pb2
from datapool.vectors import from_batch
from datapool.view.data import UnknownDataset, ViewData, empty


class ViewClient(ApiWorkflowClient):
    """The client, plus the scheduler's read-only calls only the view makes."""

    def export_view_frames(self, with_cache: bool = True) -> Iterator[scheduler_pb2.ViewFrames]:
        """Pooled frames with vectors, then (`with_cache`) the embedding cache's frames the
        pool does not hold."""
        request = scheduler_pb2.ExportViewFramesRequest(dataset_id=self.dataset_id, with_cache=with_cache)
        return self._stream(self._stub.ExportViewFrames, request, timeout=EXPORT_EMBEDDINGS_DEADLINE_S)

    def read_frame(self, key: str) -> scheduler_pb2.FrameImage:
        """A rendered frame of the pool (`frames/<run id>/<name>`)."""
        request = scheduler_pb2.ReadFrameRequest(dataset_id=self.dataset_id, key=key)
        return self._call(self._stub.ReadFrame, request)


class GrpcViewSource:
    """Reads through the scheduler's read-only calls, with the client's token and TLS."""

    def __init__(
        self, address: str | None, token: str | None, ca_cert: str | os.PathLike[str] | None = None
    ) -> None:
        self._address, self._token, self._ca_cert = address, token, ca_cert
        self._clients: dict[str, ViewClient] = {}
        self._lock = threading.Lock()

    def _client(self, dataset: str) -> ViewClient:
        # One client per dataset: a client holds its current dataset.
        with self._lock:
            client = self._clients.get(dataset)
            if client is None:
                client = ViewClient(token=self._token, address=self._address, ca_cert=self._ca_cert)
                try:
                    client.set_dataset_id_by_name(dataset)
                except ApiError as e:
                    client.close()
                    if e.code == grpc.StatusCode.NOT_FOUND:
                        raise UnknownDataset(dataset) from None
                    raise
                self._clients[dataset] = client
            return client

    def datasets(self) -> list[str]:
        with ViewClient(token=self._token, address=self._address, ca_cert=self._ca_cert) as client:
            return sorted(d.name for d in client.get_datasets())

    def frame(self, dataset: str, key: str) -> tuple[bytes, str]:
        image = self._client(dataset).read_frame(key)
        return image.data, image.content_type

    def load(self, dataset: str) -> ViewData:
        client = self._client(dataset)
        tags: dict[str, int] = {}
        tag_of: list[int] = []
        names, keys, sources, index, blocks = [], [], [], [], []
        version = 0
        try:
            for message in client.export_view_frames(with_cache=True):
                version = message.pool_version
                for f in message.frames:
                    tag_of.append(tags.setdefault(f.tag_name, len(tags)) if f.pooled else -1)
                    names.append(f.frame_name)
                    keys.append(f.key)
                    sources.append(f.source_path)
                    index.append(f.frame_index)
                if message.frames:
                    blocks.append(from_batch(message.vectors, len(message.frames)))
        except ApiError as e:
            if e.code == grpc.StatusCode.NOT_FOUND:
                return empty(e.message)
            raise
        if not blocks:
            return empty()
        return ViewData(
            version=version,
            tags=list(tags),
            tag_of=np.asarray(tag_of, np.int32),
            vectors=np.concatenate(blocks),
            names=names,
            keys=keys,
            sources=sources,
            frame_index=np.asarray(index, np.int64),
        )

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
