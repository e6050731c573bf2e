"""One embedding cache entry: a file's vectors under one model and sampling rule, as bytes.

Layout: one JSON header line, then the frame indices (little-endian int64), then the
vectors (little-endian float16 where that is lossless, else float32). The header names
what made the entry and carries a SHA-256 of the payload, so an entry that was truncated,
altered or copied to the wrong name is refused instead of feeding wrong vectors into a
selection.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from datapool.pool.files import FileRef
from datapool.pool.naming import FILE_KINDS
from datapool.pool.repository import compact_embeddings
from datapool.pool.state import Vectors
from datapool.vectors import WIRE_DTYPES

ENTRY_FORMAT = 1
_INDEX_DTYPE = np.dtype("<i8")
_VECTOR_DTYPES = WIRE_DTYPES
# A header is a few hundred bytes; a longer first line means the bytes are not an entry.
_MAX_HEADER_BYTES = 1 << 16


class UnusableEntry(ValueError):
    """The bytes are not a valid entry for the file and scope asked for; says why."""


@dataclass(frozen=True)
class CacheScope:
    """What, besides the file, decides an embedding: the model and which frames it saw."""

    model: str
    sampling_key: str


@dataclass(frozen=True)
class CacheEntry:
    file: FileRef
    # The file's frame count as its FileComplete reported it; frame names are padded to it.
    frame_count: int
    kind: str
    # Ascending, unique; one row of `vectors` each.
    frame_indices: npt.NDArray[np.int64]
    vectors: Vectors

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])


def encode_entry(entry: CacheEntry, scope: CacheScope) -> bytes:
    indices = np.ascontiguousarray(entry.frame_indices, dtype=_INDEX_DTYPE).tobytes()
    vectors = compact_embeddings(entry.vectors)
    dtype = "float16" if vectors.dtype == np.float16 else "float32"
    payload = indices + np.ascontiguousarray(vectors, dtype=_VECTOR_DTYPES[dtype]).tobytes()
    header = {
        "format": ENTRY_FORMAT,
        "file": [entry.file.path, entry.file.size, entry.file.etag],
        "model": scope.model,
        "sampling_key": scope.sampling_key,
        "frame_count": entry.frame_count,
        "kind": entry.kind,
        "count": len(entry.frame_indices),
        "dim": entry.dim,
        "dtype": dtype,
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    return json.dumps(header, separators=(",", ":")).encode() + b"\n" + payload


def decode_entry(data: bytes, scope: CacheScope, file: FileRef, dim: int) -> CacheEntry:
    """The entry for `file` under `scope` with `dim`-wide vectors; UnusableEntry if it is not one."""
    end = data.find(b"\n", 0, _MAX_HEADER_BYTES)
    if end < 0:
        raise UnusableEntry("no header line")
    try:
        header = json.loads(data[:end])
        fields = (
            int(header["format"]),
            list(header["file"]),
            str(header["model"]),
            str(header["sampling_key"]),
            int(header["frame_count"]),
            str(header["kind"]),
            int(header["count"]),
            int(header["dim"]),
            str(header["dtype"]),
            str(header["sha256"]),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise UnusableEntry(f"bad header: {e}") from None
    fmt, identity, model, sampling_key, frame_count, kind, count, width, dtype, digest = fields
    if fmt != ENTRY_FORMAT:
        raise UnusableEntry(f"format {fmt}, expected {ENTRY_FORMAT}")
    if identity != [file.path, file.size, file.etag] or (model, sampling_key) != (
        scope.model,
        scope.sampling_key,
    ):
        raise UnusableEntry(f"it holds {identity} under {model!r}/{sampling_key!r}, not this file and scope")
    if width != dim:
        raise UnusableEntry(f"vectors are {width} wide, the model's are {dim}")
    if dtype not in _VECTOR_DTYPES or kind not in FILE_KINDS or count < 0 or frame_count < 0:
        raise UnusableEntry(f"dtype {dtype!r}, kind {kind!r}, count {count}, frame_count {frame_count}")
    payload = memoryview(data)[end + 1 :]
    index_bytes = count * _INDEX_DTYPE.itemsize
    if len(payload) != index_bytes + count * dim * _VECTOR_DTYPES[dtype].itemsize:
        raise UnusableEntry(f"{len(payload)} payload bytes do not hold {count} x {dim} {dtype}")
    if hashlib.sha256(payload).hexdigest() != digest:
        raise UnusableEntry("payload checksum mismatch")
    indices = np.frombuffer(payload[:index_bytes], dtype=_INDEX_DTYPE).astype(np.int64)
    vectors = np.frombuffer(payload[index_bytes:], dtype=_VECTOR_DTYPES[dtype]).reshape(count, dim)
    if count and (indices[0] < 0 or indices[-1] >= frame_count or np.any(np.diff(indices) <= 0)):
        raise UnusableEntry(f"frame indices are not ascending within 0..{frame_count - 1}")
    if kind == "image" and count and indices[-1] > 0:
        raise UnusableEntry("an image entry holds a frame other than 0")
    floats = vectors.astype(np.float32)
    if not np.isfinite(floats).all():
        raise UnusableEntry("vectors hold NaN or infinite values")
    return CacheEntry(file, frame_count, kind, indices, floats)
