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

Generation is scene by scene into one preallocated float32 array: beyond the output it
allocates only per-scene temporaries (about frames x dim float32), and 1,000,000 x 1280
rows take about 13 s on two idle cores (23 s with one of them busy elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt
import rough_shape

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]

__all__ = ["SHAPES", "pool_and_candidates", "scene_lengths", "uniform_sphere", "video_like"]

SHAPES = ("video", "rough", "hard")
HARD_SCENE_FRAMES = (8, 48)
ROUGH = rough_shape.fit_rough(rough_shape.MEASURED)

# Tags that keep the random streams of different parts of the model independent.
_WORLD, _LAYOUT, _SCENE, _TRAJECTORY, _REVISIT, _UNIFORM, _ROUGH_WORLD, _ROUGH_SCENE = 1, 2, 3, 4, 5, 6, 7, 8
_POOL, _CANDS = 0, 1

# Steps of the AR(1) walk computed in closed form at once; rho**-_AR_BLOCK stays far
# from overflow and cancellation for rho >= 0.9.
_AR_BLOCK = 128
# Rows normalised at once by `uniform_sphere`.
_CHUNK = 8192


@dataclass(frozen=True)
class _World:
    topics: F32  # (n_topics, dim), unit rows; the places of "hard"
    common: F32 | None = None  # rough and hard: the direction all scene centres share


def _make_rough_world(dim: int, seed: int, n_places: int) -> _World:
    rng = np.random.default_rng([seed, _ROUGH_WORLD])
    common = _unit(rng.standard_normal(dim, dtype=np.float32))
    places = np.stack([rough_shape.centre(rng, common, ROUGH) for _ in range(n_places)])
    return _World(topics=places, common=common)


def _make_rough_scene(shape: str, world: _World, seed: int, role: int, index: int) -> _Scene:
    """A rough scene; a "hard" one sits a scene radius from one of a few places, overlapping others."""
    assert world.common is not None
    rng = np.random.default_rng([seed, _ROUGH_SCENE, role, index])
    if shape == "hard":
        place: F32 = world.topics[int(rng.integers(world.topics.shape[0]))]
        centre = rough_shape.moved(rng, place, rough_shape.scene_radius(ROUGH))
    else:
        centre = rough_shape.centre(rng, world.common, ROUGH)
    d = rough_shape.draw_scene(rng, centre, ROUGH)
    return _Scene(centre=d.centre, basis=d.basis, rho=d.rho, spread=d.spread, noise=d.noise)


@dataclass(frozen=True)
class _Scene:
    centre: F32  # (dim,), unit
    basis: F32  # (drift_dims, dim)
    rho: float
    spread: float  # stationary std of each walk coordinate
    noise: float  # norm of the per-frame isotropic noise


def _unit(v: F32) -> F32:
    out: F32 = (v / np.float32(np.linalg.norm(v))).astype(np.float32)
    return out


def _make_world(dim: int, seed: int, n_topics: int) -> _World:
    rng = np.random.default_rng([seed, _WORLD])
    common = _unit(rng.standard_normal(dim, dtype=np.float32))
    g = rng.standard_normal((n_topics, dim), dtype=np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    topics = g + np.float32(0.33) * common
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    return _World(topics=topics.astype(np.float32))


def _make_scene(world: _World, seed: int, role: int, index: int, drift_dims: int) -> _Scene:
    rng = np.random.default_rng([seed, _SCENE, role, index])
    n_topics, dim = (int(x) for x in world.topics.shape)
    topic: F32 = world.topics[int(rng.integers(n_topics))]
    u = _unit(rng.standard_normal(dim, dtype=np.float32))
    u *= np.float32(rng.uniform(0.3, 0.8))
    centre = _unit(topic + u)
    basis = rng.standard_normal((drift_dims, dim), dtype=np.float32)
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    return _Scene(
        centre=centre,
        basis=basis,
        rho=float(rng.uniform(0.97, 0.99)),
        spread=float(rng.uniform(0.02, 0.05)),
        noise=float(rng.uniform(0.005, 0.01)),
    )


def _revisit(make_scene: Callable[[], _Scene], seed: int, index: int, distance: float = 0.03) -> _Scene:
    """The same place seen again: same drift basis, centre moved by ~``distance``."""
    scene = make_scene()
    rng = np.random.default_rng([seed, _REVISIT, index])
    dim = scene.centre.shape[0]
    shift = rng.standard_normal(dim, dtype=np.float32) * np.float32(distance / np.sqrt(dim))
    return _Scene(
        centre=_unit(scene.centre + shift),
        basis=scene.basis,
        rho=scene.rho,
        spread=scene.spread,
        noise=scene.noise,
    )


def _ar1(rng: np.random.Generator, frames: int, k: int, rho: float, spread: float) -> F64:
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


def _fill_scene(out: F32, scene: _Scene, rng: np.random.Generator) -> None:
    """Writes one scene's frames into ``out`` (a contiguous slice of the result)."""
    frames, dim = out.shape
    rng.standard_normal(out=out, dtype=np.float32)
    out *= np.float32(scene.noise / np.sqrt(dim))
    out += scene.centre
    walk = _ar1(rng, frames, scene.basis.shape[0], scene.rho, scene.spread).astype(np.float32)
    out += np.einsum("ik,kj->ij", walk, scene.basis)  # not BLAS: its threads would fight ours
    norms = np.sqrt(np.einsum("ij,ij->i", out, out))
    out /= norms[:, None]


def _fill(out: F32, jobs: Sequence[tuple[int, Callable[[], _Scene]]], seed: int, role: int) -> None:
    """Fills ``out`` with consecutive scenes (length, parameters), on all cores.

    Each scene has its own random streams, so the result does not depend on the order
    the threads run in; NumPy releases the GIL in the bulk work.
    """
    starts = np.cumsum([0] + [length for length, _ in jobs])
    assert starts[-1] == out.shape[0]

    def one(index: int) -> None:
        length, make = jobs[index]
        rng = np.random.default_rng([seed, _TRAJECTORY, role, index])
        _fill_scene(out[starts[index] : starts[index] + length], make(), rng)

    _parallel(one, len(jobs))


def _parallel(fn: Callable[[int], None], count: int) -> None:
    """Runs ``fn(0) .. fn(count - 1)`` on one thread per core; re-raises their errors."""
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as executor:
        for _ in executor.map(fn, range(count)):
            pass


def _scene_lengths(n: int, seed: int, role: int, scene_frames: tuple[int, int]) -> list[int]:
    lo, hi = scene_frames
    if not 1 <= lo <= hi:
        raise ValueError(f"scene_frames must be 1 <= lo <= hi, got {scene_frames}")
    rng = np.random.default_rng([seed, _LAYOUT, role])
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


def _scene_maker(shape: str, world: _World, seed: int, role: int, drift_dims: int) -> Callable[[int], _Scene]:
    if shape == "video":
        return partial(_make_scene, world, seed, role, drift_dims=drift_dims)
    return partial(_make_rough_scene, shape, world, seed, role)


def _frames(shape: str, scene_frames: tuple[int, int] | None) -> tuple[int, int]:
    return scene_frames or (HARD_SCENE_FRAMES if shape == "hard" else (100, 1000))


def scene_lengths(
    n: int, seed: int, shape: str = "video", scene_frames: tuple[int, int] | None = None
) -> list[int]:
    """The scene lengths of ``video_like(n, ..., seed, shape=shape, scene_frames=scene_frames)``."""
    return _scene_lengths(n, seed, _POOL, _frames(shape, scene_frames))


def _jobs(
    shape: str,
    n: int,
    dim: int,
    seed: int,
    scene_frames: tuple[int, int] | None,
    n_topics: int,
    drift_dims: int,
) -> tuple[_World, tuple[int, int], list[tuple[int, Callable[[], _Scene]]]]:
    """The pool's world, its scene lengths, and (length, scene) jobs for its rows."""
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {', '.join(SHAPES)}; got {shape!r}")
    frames = _frames(shape, scene_frames)
    world = _make_world(dim, seed, n_topics) if shape == "video" else _make_rough_world(dim, seed, n_topics)
    make = _scene_maker(shape, world, seed, _POOL, drift_dims)
    jobs: list[tuple[int, Callable[[], _Scene]]] = [
        (length, partial(make, index)) for index, length in enumerate(_scene_lengths(n, seed, _POOL, frames))
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
    _fill(out, jobs, seed, _POOL)
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
    make = _scene_maker(shape, world, seed, _CANDS, drift_dims)
    shift = 0.03 if shape == "video" else ROUGH.revisit_shift
    cands = np.empty((n_cand, dim), dtype=np.float32)
    choose = np.random.default_rng([seed, _REVISIT])
    jobs: list[tuple[int, Callable[[], _Scene]]] = []
    for index, length in enumerate(_scene_lengths(n_cand, seed, _CANDS, frames)):
        if pool_jobs and choose.random() < revisit:
            pool_scene = pool_jobs[int(choose.integers(len(pool_jobs)))][1]
            jobs.append((length, partial(_revisit, pool_scene, seed, index, shift)))
        else:
            jobs.append((length, partial(make, index)))
    _fill(cands, jobs, seed, _CANDS)
    return pool, cands


def uniform_sphere(n: int, dim: int, seed: int) -> F32:
    """``n`` rows drawn uniformly from the unit sphere in ``dim`` dimensions (no structure)."""
    _check(n, dim)
    out = np.empty((n, dim), dtype=np.float32)

    def one(chunk: int) -> None:
        block = out[chunk * _CHUNK : (chunk + 1) * _CHUNK]
        np.random.default_rng([seed, _UNIFORM, chunk]).standard_normal(out=block, dtype=np.float32)
        block /= np.sqrt(np.einsum("ij,ij->i", block, block))[:, None]

    _parallel(one, -(-n // _CHUNK))
    return out
