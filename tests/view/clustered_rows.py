"""Unit rows in a few tight clusters: what the projection tests fit and place."""

from __future__ import annotations

import numpy as np


def clusters(n: int, dim: int = 32, seed: int = 0, centres: int = 4) -> np.ndarray:
    rng = np.random.default_rng(seed)
    middle = np.random.default_rng(99).normal(size=(centres, dim))
    v = middle[rng.integers(0, centres, n)] + 0.05 * rng.normal(size=(n, dim))
    out: np.ndarray = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
    return out
