"""Vectors on the wire: packed little-endian rows in a `bytes` field, never `repeated float`.

One codec for every service and the client, so a dtype or byte-order rule
cannot drift between the side that packs and the side that unpacks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from datapool.v1 import common_pb2

WIRE_DTYPES: dict[str, np.dtype[np.floating]] = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2")}
_BY_ENUM = {
    common_pb2.VECTOR_DTYPE_UNSPECIFIED: "float32",
    common_pb2.FLOAT32: "float32",
    common_pb2.FLOAT16: "float16",
}
_ENUM_OF = {"float32": common_pb2.FLOAT32, "float16": common_pb2.FLOAT16}


def dtype_name(value: int) -> str:
    """The wire dtype's name for a VectorDType value; ValueError if unknown."""
    try:
        return _BY_ENUM[value]  # type: ignore[index]
    except KeyError:
        raise ValueError(f"vector dtype {value} is not supported (use FLOAT32 or FLOAT16)") from None


def unpack(data: bytes, count: int, dim: int, dtype: str) -> npt.NDArray[np.float32]:
    """count x dim float32 from packed bytes; ValueError naming the mismatch."""
    if dim <= 0:
        raise ValueError(f"dim must be positive, got {dim}")
    item = WIRE_DTYPES[dtype]
    if len(data) != count * dim * item.itemsize:
        raise ValueError(
            f"{len(data)} bytes is not {count} rows x dim {dim} x {item.itemsize} bytes ({dtype})"
        )
    return np.frombuffer(data, dtype=item).reshape(count, dim).astype(np.float32)


def to_batch(
    vectors: npt.NDArray[np.floating], dtype: str = "float32", frame_indices: Sequence[int] = ()
) -> common_pb2.VectorBatch:
    packed = np.ascontiguousarray(vectors, dtype=WIRE_DTYPES[dtype]).tobytes()
    return common_pb2.VectorBatch(
        frame_indices=frame_indices, vectors=packed, dim=int(vectors.shape[1]), dtype=_ENUM_OF[dtype]
    )


def from_batch(batch: common_pb2.VectorBatch, count: int) -> npt.NDArray[np.float32]:
    if count == 0:
        return np.zeros((0, max(batch.dim, 0)), np.float32)
    return unpack(batch.vectors, count, batch.dim, dtype_name(batch.dtype))
