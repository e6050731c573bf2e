"""Synthetic embeddings that look like those of video frames, for benchmarks and tests.

Three shapes (``shape=``), all scenes of an AR(1) walk plus per-frame noise around a centre:
"video" (smooth, below: frames 0.02 apart, far smoother than real features), "rough" (every
parameter solved from real EfficientNet-Lite0 features of H.264 clips, `rough_shape`:
frames ~0.19 apart, 0.14 off their neighbours' line) and "hard" (rough frames in short scenes
of 8-48 frames, each a scene radius from one of ``n_topics`` places, so neighbouring scenes
overlap and no scale separates the data). `uniform_sphere` has no structure at all.

Model of the "video" shape (every row L2-normalised at the end):

- A *world*: a common direction ``m`` (real embeddings share a mean direction) and
  ``n_topics`` topic directions ``t_k = normalise(0.33 m + g_k)``, ``g_k`` isotropic
  Gaussian of unit norm, so two topics have cosine ~0.1.
- A *scene* has a topic, a centre ``c = normalise(t_k + s u)`` with ``u`` a random unit
  vector and ``s`` drawn per scene from U(0.3, 0.8), a basis ``B`` of ``drift_dims`` (8)
  random unit directions of its own, and a per-frame noise norm drawn from
  U(0.005, 0.01).
- A scene is a contiguous run of rows (frames in video order; its length drawn from
  ``scene_frames``). Frame ``t`` is ``normalise(c + x_t B + e_t)`` where ``x_t`` is a
  mean-reverting random walk (AR(1), ``x_t = rho x_{t-1} + eps_t``, rho from
  U(0.97, 0.99), stationary per-coordinate std from U(0.02, 0.05)) and ``e_t`` isotropic
  noise. Consecutive frames are therefore near-duplicates, and a scene is a slow,
  bounded trajectory around its centre.
- Scene topics are drawn uniformly, so consecutive scenes usually differ in topic.

``pool_and_candidates`` builds the pool (earlier videos) and the candidates (new
videos) in the same world: a fraction ``revisit`` of the candidate scenes revisit a pool
scene (same basis, centre moved by ~0.03, a new trajectory), the rest are new scenes.

Distances measured (dim 1280, seed 0; 200,000 rows = 370 scenes of 541 frames on
average; pool and candidates as in bench/bench_select.py):

===================================================  ======  ======  ======
pair of rows                                             p5  median     p95
===================================================  ======  ======  ======
consecutive frames of a scene                         0.013   0.021   0.034
two frames of the same scene                          0.044   0.110   0.204
scene means, same topic                                0.51    0.69    0.83
scene means, different topics                          1.32    1.36    1.39
two random rows (mostly different topics)              1.31    1.36    1.39
candidate in a revisited scene to nearest pool row    0.044   0.078   0.151
candidate in a new scene to nearest pool row,
  pool 5,000 rows (12 scenes), 100,000 candidates      0.59    1.31    1.34
  pool 100,000 rows (193 scenes), 200,000 candidates    0.46    0.59    0.74
===================================================  ======  ======  ======

29-31% of candidate rows lie in revisited scenes (``revisit=0.3``). For contrast,
``uniform_sphere`` rows are 1.38 / 1.415 / 1.445 (p5 / median / p95) apart. Greedy
selection at 100,000 candidates against that 5,000-row pool picks at D = 1.35 first, 0.22
at the median pick and 0.16 at the 500th.

This module holds the public functions and the scene layout; the world and scene model is
in `synthetic_scenes`, the drawing of a scene's frames in `scene_walk`.

Generation is scene by scene into one preallocated float32 array: beyond the output it
allocates only per-scene temporaries (about frames x dim float32), and 1,000,000 x 1280
rows take about 13 s on two idle cores (23 s with one of them busy elsewhere).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import numpy.typing as npt
from scene_walk import fill, parallel
from synthetic_scenes import (
    CANDS,
    LAYOUT,
    POOL,
    REVISIT,
    ROUGH,
    UNIFORM,
    Scene,
    World,
    make_rough_world,
    make_world,
    revisited_scene,
    scene_maker,
)

F32 = npt.NDArray[np.float32]

__all__ = ["ROUGH", "SHAPES", "pool_and_candidates", "scene_lengths", "uniform_sphere", "video_like"]

SHAPES = ("video", "rough", "hard")
HARD_SCENE_FRAMES = (8, 48)
# Rows normalised at once by `uniform_sphere`.
_CHUNK = 8192


def _scene_lengths(n: int, seed: int, role: int, scene_frames: tuple[int, int]) -> list[int]:
    lo, hi = scene_frames
    if not 1 <= lo <= hi:
        raise ValueError(f"scene_frames must be 1 <= lo <= hi, got {scene_frames}")
    rng = np.random.default_rng([seed, LAYOUT, role])
    lengths: list[int] = []
    total = 0
    while total < n:
        length = min(int(rng.integers(lo, hi + 1)), n - total)
        lengths.append(length)
        total += length
    return lengths


def _check(n: int, dim: int) -> None:
    if n < 0 or dim < 1:
        raise ValueError(f"need n >= 0 and dim >= 1, got n={n}, dim={dim}")


def _frames(shape: str, scene_frames: tuple[int, int] | None) -> tuple[int, int]:
    return scene_frames or (HARD_SCENE_FRAMES if shape == "hard" else (100, 1000))


def scene_lengths(
    n: int, seed: int, shape: str = "video", scene_frames: tuple[int, int] | None = None
) -> list[int]:
    """The scene lengths of ``video_like(n, ..., seed, shape=shape, scene_frames=scene_frames)``."""
    return _scene_lengths(n, seed, POOL, _frames(shape, scene_frames))


def _jobs(
    shape: str,
    n: int,
    dim: int,
    seed: int,
    scene_frames: tuple[int, int] | None,
    n_topics: int,
    drift_dims: int,
) -> tuple[World, tuple[int, int], list[tuple[int, Callable[[], Scene]]]]:
    """The pool's world, its scene lengths, and (length, scene) jobs for its rows."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}; got {shape!r}")
    frames = _frames(shape, scene_frames)
    world = make_world(dim, seed, n_topics) if shape == "video" else make_rough_world(dim, seed, n_topics)
    make = scene_maker(shape, world, seed, POOL, drift_dims)
    jobs: list[tuple[int, Callable[[], Scene]]] = [
        (length, partial(make, index)) for index, length in enumerate(_scene_lengths(n, seed, POOL, frames))
    ]
    return world, frames, jobs


def video_like(
    n: int,
    dim: int,
    seed: int,
    *,
    shape: str = "video",
    scene_frames: tuple[int, int] | None = None,
    n_topics: int = 32,
    drift_dims: int = 8,
) -> F32:
    """``n`` unit rows of width ``dim`` shaped like embeddings of video frames.

    Rows come in scenes: runs of ``scene_frames`` consecutive rows (default 100-1000; 8-48
    for "hard") tracing a trajectory around a scene centre. ``shape`` "video" (smooth): slow
    near-duplicate frames, see the module docstring; "rough" and "hard": see
    `rough_shape` (``drift_dims`` applies to "video" only, ``n_topics`` counts the
    topics of "video" and the places of "hard"). Deterministic per ``seed``.
    """
    _check(n, dim)
    _, _, jobs = _jobs(shape, n, dim, seed, scene_frames, n_topics, drift_dims)
    out = np.empty((n, dim), dtype=np.float32)
    fill(out, jobs, seed, POOL)
    return out


def pool_and_candidates(
    n_pool: int,
    n_cand: int,
    dim: int,
    seed: int,
    *,
    shape: str = "video",
    revisit: float = 0.3,
    scene_frames: tuple[int, int] | None = None,
    n_topics: int = 32,
    drift_dims: int = 8,
) -> tuple[F32, F32]:
    """A pool (earlier videos) and candidates (new videos) from the same world.

    The pool is exactly ``video_like(n_pool, dim, seed, ...)``. Each candidate scene
    revisits a random pool scene with probability ``revisit`` (same place, a new
    trajectory near the same centre), and is a new scene otherwise. Without a pool
    every candidate scene is new.
    """
    _check(n_pool, dim)
    _check(n_cand, dim)
    if not 0.0 <= revisit <= 1.0:
        raise ValueError(f"revisit must be in [0, 1], got {revisit}")
    pool = video_like(
        n_pool, dim, seed, shape=shape, scene_frames=scene_frames, n_topics=n_topics, drift_dims=drift_dims
    )
    world, frames, pool_jobs = _jobs(shape, n_pool, dim, seed, scene_frames, n_topics, drift_dims)
    make = scene_maker(shape, world, seed, CANDS, drift_dims)
    shift = 0.03 if shape == "video" else ROUGH.revisit_shift
    cands = np.empty((n_cand, dim), dtype=np.float32)
    choose = np.random.default_rng([seed, REVISIT])
    jobs: list[tuple[int, Callable[[], Scene]]] = []
    for index, length in enumerate(_scene_lengths(n_cand, seed, CANDS, frames)):
        if pool_jobs and choose.random() < revisit:
            pool_scene = pool_jobs[int(choose.integers(len(pool_jobs)))][1]
            jobs.append((length, partial(revisited_scene, pool_scene, seed, index, shift)))
        else:
            jobs.append((length, partial(make, index)))
    fill(cands, jobs, seed, CANDS)
    return pool, cands


def uniform_sphere(n: int, dim: int, seed: int) -> F32:
    """``n`` rows drawn uniformly from the unit sphere in ``dim`` dimensions (no structure)."""
    _check(n, dim)
    out = np.empty((n, dim), dtype=np.float32)

    def one(chunk: int) -> None:
        block = out[chunk * _CHUNK : (chunk + 1) * _CHUNK]
        np.random.default_rng([seed, UNIFORM, chunk]).standard_normal(out=block, dtype=np.float32)
        block /= np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]

    parallel(one, -(-n // _CHUNK))
    return out
