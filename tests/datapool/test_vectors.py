"""The wire codec for vectors."""

from __future__ import annotations

import numpy as np
import pytest

from datapool.v1 import common_pb2
from datapool.vectors import dtype_name, from_batch, to_batch, unpack


@pytest.mark.parametrize("dtype", ["float32", "float16"])
def test_round_trip(dtype: str) -> None:
    v = np.random.default_rng(0).standard_normal((5, 7)).astype(np.float32)
    batch = to_batch(v, dtype, [3, 4, 5, 6, 7])
    assert list(batch.frame_indices) == [3, 4, 5, 6, 7]
    back = from_batch(batch, 5)
    assert back.dtype == np.float32 and back.shape == (5, 7)
    np.testing.assert_allclose(back, v, rtol=1e-3 if dtype == "float16" else 0)
    assert len(batch.vectors) == 5 * 7 * (2 if dtype == "float16" else 4)


def test_unspecified_dtype_means_float32() -> None:
    assert dtype_name(common_pb2.VECTOR_DTYPE_UNSPECIFIED) == "float32"
    with pytest.raises(ValueError, match="not supported"):
        dtype_name(99)


def test_length_mismatch_is_named() -> None:
    with pytest.raises(ValueError, match="10 bytes is not 2 rows x dim 3"):
        unpack(b"\0" * 10, 2, 3, "float32")
    with pytest.raises(ValueError, match="dim must be positive"):
        unpack(b"", 0, 0, "float32")
