"""Drawing the frames of synthetic scenes (`synthetic_scenes`) into one preallocated array.

A scene's frames are an AR(1) walk in its drift basis plus per-frame noise around its
centre, L2-normalised. Scenes are drawn on all cores, each from its own random stream,
so the result does not depend on the order the threads run in.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
from synthetic_scenes import TRAJECTORY, Scene

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

# Steps of the AR(1) walk computed in closed form at once; rho**-_AR_BLOCK stays far
# from overflow and cancellation for rho >= 0.9.
_AR_BLOCK = 128


def ar1(rng: np.random.Generator, frames: int, k: int, rho: float, spread: float) -> F64:
    """``frames`` steps of a stationary AR(1) walk in ``k`` coordinates, vectorised.

    Within a block of steps j = 1..b after a start x_0:
    x_j = rho**j * (x_0 + sum_{i<=j} rho**-i eps_i).
    """
    step_std = spread * np.sqrt(1.0 - rho * rho)
    eps = rng.standard_normal((frames, k)) * step_std
    x = np.empty((frames, k))
    prev = rng.standard_normal(k) * spread  # start from the stationary distribution
    # Shorter blocks for a fast-reverting walk (the rough shape), so rho**-block stays < 1e6.
    block_len = _AR_BLOCK if rho >= 0.9 else max(1, int(np.log(1e6) / -np.log(max(rho, 1e-3))))
    for start in range(0, frames, block_len):
        b = min(block_len, frames - start)
        j = np.arange(1, b + 1, dtype=np.float64)[:, None]
        block = rho**j * (prev + np.cumsum(rho**-j * eps[start : start + b], axis=0))
        x[start : start + b] = block
        prev = block[-1]
    return x


def fill_scene(out: F32, scene: Scene, rng: np.random.Generator) -> None:
    """Writes one scene's frames into ``out`` (a contiguous slice of the result)."""
    frames, dim = out.shape
    rng.standard_normal(out=out, dtype=np.float32)
    out *= np.float32(scene.noise / np.sqrt(dim))
    out += scene.centre
    walk = ar1(rng, frames, scene.basis.shape[0], scene.rho, scene.spread).astype(np.float32)
    out += np.einsum("ik,kj->ij", walk, scene.basis)  # not BLAS: its threads would fight ours
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    out /= norms[:, None]


def fill(out: F32, jobs: Sequence[tuple[int, Callable[[], Scene]]], seed: int, role: int) -> None:
    """Fills ``out`` with consecutive scenes (length, parameters), on all cores.

    Each scene has its own random streams, so the result does not depend on the order
    the threads run in; NumPy releases the GIL in the bulk work.
    """
    starts = np.cumsum([0] + [length for length, _ in jobs])
    assert starts[-1] == out.shape[0]

    def one(index: int) -> None:
        length, make = jobs[index]
        rng = np.random.default_rng([seed, TRAJECTORY, role, index])
        fill_scene(out[starts[index] : starts[index] + length], make(), rng)

    parallel(one, len(jobs))


def parallel(fn: Callable[[int], None], count: int) -> None:
    """Runs ``fn(0) .. fn(count - 1)`` on one thread per core; re-raises their errors."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as executor:
        for _ in executor.map(fn, range(count)):
            pass
