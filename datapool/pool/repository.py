"""Reads and commits the pool through a Store, following the commit rules.

Readers trust only manifests: data objects are written first under a fresh commit id,
and a commit becomes visible in one step, when its manifest is created if absent.
"""

from __future__ import annotations

import gzip
import io
import json
import logging
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from datapool.errors import FailedPrecondition, Unavailable, reworded
from datapool.pool.files import FileRef
from datapool.pool.layout import (
    LEGACY_PROCESSED_SUFFIX,
    MANIFESTS_PREFIX,
    PoolManifest,
    PoolSegment,
    SegmentKeys,
    manifest_key,
    manifest_version,
)
from datapool.pool.state import PoolFrame, PoolState, SegmentData, Vectors
from datapool.storage import ObjectNotFound, Store, StoreAccessDenied, StoreError, StoreFull

log = logging.getLogger(__name__)

# embeddings.npy: float16 where that is lossless (see compact_embeddings), else float32;
# segments written before float16 was used are float32. Readers get float32 either way.
_EMBEDDING_DTYPES = (np.dtype(np.float16), np.dtype(np.float32))

# A put that fails in transit may have succeeded; retrying the same bytes is safe
# because the commit id inside tells our own manifest apart from a rival's.
_MANIFEST_PUT_TRIES = 3


class PoolRepository:
    def __init__(self, store: Store) -> None:
        self.store = store

    def describe(self) -> str:
        return self.store.describe()

    # -- reading -----------------------------------------------------------------

    def newest_version(self) -> int:
        newest = 0
        try:
            for info in self.store.list(MANIFESTS_PREFIX):
                version = manifest_version(info.key)
                if version is not None:
                    newest = max(newest, version)
        except StoreError as e:
            raise Unavailable(f"cannot list the pool's manifests: {e}") from e
        return newest

    def manifest(self, version: int) -> PoolManifest | None:
        """The manifest of `version`; None for version 0 or a manifest that is absent."""
        if version == 0:
            return None
        key = manifest_key(version)
        try:
            raw = self.store.read(key)
        except ObjectNotFound:
            return None
        except StoreError as e:
            raise Unavailable(f"cannot read {key}: {e}") from e
        try:
            manifest = PoolManifest.from_json(json.loads(raw))
        except (ValueError, KeyError, TypeError) as e:
            raise FailedPrecondition(f"pool manifest {key} in {self.describe()} is corrupt: {e}") from e
        if manifest.version != version:
            raise FailedPrecondition(f"pool manifest {key} claims version {manifest.version}")
        return manifest

    def newest_manifest(self) -> PoolManifest | None:
        version = self.newest_version()
        manifest = self.manifest(version)
        if version and manifest is None:
            raise Unavailable(f"pool manifest {manifest_key(version)} vanished while reading")
        return manifest

    def _read_data(self, key: str) -> bytes:
        try:
            return self.store.read(key)
        except ObjectNotFound as e:
            raise FailedPrecondition(f"pool object {key} named by a manifest is missing: {e}") from e
        except StoreError as e:
            raise Unavailable(f"cannot read {key}: {e}") from e

    def _read_json(self, key: str) -> Any:
        try:
            return json.loads(self._read_data(key))
        except ValueError as e:
            raise FailedPrecondition(f"pool object {key} is not valid JSON: {e}") from e

    def load_frames(self, segment: PoolSegment) -> list[PoolFrame]:
        frames = [PoolFrame.from_json(row) for row in self._read_json(segment.keys.entries)]
        if len(frames) != segment.frame_count:
            raise FailedPrecondition(
                f"{segment.keys.entries} has {len(frames)} rows, its manifest says {segment.frame_count}"
            )
        return frames

    def load_embeddings(self, segment: PoolSegment, dim: int) -> Vectors:
        """The segment's embeddings as float32, whether stored as float16 or float32."""
        raw = self._read_data(segment.keys.embeddings)
        try:
            array = np.load(io.BytesIO(raw), allow_pickle=False)
        except ValueError as e:
            raise FailedPrecondition(f"{segment.keys.embeddings} is not a .npy array: {e}") from e
        if array.dtype not in _EMBEDDING_DTYPES or array.shape != (segment.frame_count, dim):
            raise FailedPrecondition(
                f"{segment.keys.embeddings} holds {array.dtype}{array.shape}, "
                f"expected float16 or float32({segment.frame_count}, {dim})"
            )
        return np.ascontiguousarray(array, dtype=np.float32)

    def load_processed(self, segment: PoolSegment) -> list[FileRef]:
        return list(self.iter_processed(segment))

    def iter_processed(self, segment: PoolSegment) -> Iterator[FileRef]:
        """The segment's processed files in (path, size, etag) order."""
        for path, size, etag in self.iter_processed_rows(segment):
            yield FileRef(path, size, etag)

    def iter_processed_rows(self, segment: PoolSegment) -> Iterator[tuple[str, int, str]]:
        """Like iter_processed, as plain tuples: merging a million files compares tuples
        several times each, and tuple comparison is far cheaper than a dataclass's."""
        key = segment.keys.processed
        if key.endswith(LEGACY_PROCESSED_SUFFIX):
            rows = (FileRef.from_json(row) for row in self._read_json(key))
            yield from sorted((f.path, f.size, f.etag) for f in rows)
            return
        raw = self._read_data(key)
        previous: tuple[str, int, str] | None = None
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw), mode="rb") as lines:
                for line in lines:
                    path, size, etag = json.loads(line)
                    row = (str(path), int(size), str(etag))
                    if previous is not None and row < previous:
                        raise ValueError(f"{row[0]!r} after {previous[0]!r}: not sorted")
                    previous = row
                    yield row
        except (OSError, EOFError, ValueError, TypeError) as e:
            raise FailedPrecondition(f"pool object {key} is corrupt: {e}") from e

    def load_segments(
        self, segments: Iterable[PoolSegment], dim: int, with_embeddings: bool = True
    ) -> list[SegmentData]:
        return [
            SegmentData(
                segment=s,
                frames=self.load_frames(s),
                embeddings=self.load_embeddings(s, dim) if with_embeddings else None,
            )
            for s in segments
        ]

    def load_state(self, manifest: PoolManifest | None) -> PoolState:
        if manifest is None:
            return PoolState.empty()
        return PoolState.empty().extended(manifest, self.load_segments(manifest.segments, manifest.dim))

    # -- committing --------------------------------------------------------------

    def write_segment_data(
        self, commit_id: str, frames: list[PoolFrame], embeddings: Vectors, processed: list[FileRef]
    ) -> SegmentKeys:
        keys = SegmentKeys.for_commit(commit_id)
        buffer = io.BytesIO()
        np.save(buffer, compact_embeddings(embeddings), allow_pickle=False)
        try:
            self.store.put(keys.entries, _json_bytes([f.to_json() for f in frames]))
            self.store.put(keys.embeddings, buffer.getvalue())
            self.store.put(keys.processed, processed_bytes(processed))
        except (StoreFull, StoreAccessDenied) as e:
            # Not a passing outage: keep the code, so a full disk reads as one.
            raise reworded(e, f"cannot write the pool's data objects: {e}") from e
        except StoreError as e:
            raise Unavailable(f"cannot write the pool's data objects: {e}") from e
        return keys

    def create_manifest(self, manifest: PoolManifest) -> bool:
        """True if this call created the manifest; False if that version already exists."""
        key = manifest_key(manifest.version)
        data = _json_bytes(manifest.to_json())
        for attempt in range(1, _MANIFEST_PUT_TRIES + 1):
            try:
                return self.store.put_if_absent(key, data)
            except (StoreFull, StoreAccessDenied) as e:
                raise reworded(e, f"cannot create {key}: {e}") from e
            except StoreError as e:
                if attempt == _MANIFEST_PUT_TRIES:
                    raise Unavailable(f"cannot create {key}: {e}") from e
                log.warning("creating %s failed (%s); retrying", key, e)
        raise AssertionError("unreachable")


def compact_embeddings(embeddings: Vectors) -> npt.NDArray[np.float16] | Vectors:
    """The embeddings as float16 when that keeps every value exactly, else as float32.

    Vectors reach the selector as float16 on the wire, so a pool's embeddings normally are
    float16 values, and storing them so halves the object without losing anything.
    """
    vectors = np.ascontiguousarray(embeddings, dtype=np.float32)
    with np.errstate(over="ignore"):
        half = vectors.astype(np.float16)
    if np.array_equal(half.astype(np.float32), vectors):
        return half
    return vectors


def processed_bytes(files: Iterable[FileRef]) -> bytes:
    buffer = io.BytesIO()
    # mtime=0: the same files give the same bytes.
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=6, mtime=0) as out:
        for f in sorted({(f.path, f.size, f.etag) for f in files}):
            out.write(json.dumps(f, separators=(",", ":")).encode() + b"\n")
    return buffer.getvalue()


def _json_bytes(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()
