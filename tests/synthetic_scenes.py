"""The scene model of the synthetic embeddings (`synthetic_embeddings`): a world, and the
parameters of each scene drawn in it.

A "video" world is a common direction and topic directions around it; a rough or "hard"
world (`rough_shape`) is a common direction and, for "hard", a few places that scenes
crowd around. Each draw has its own random stream, tagged by the constants below, so a
scene's parameters depend only on the seed, its role (pool or candidates) and its index.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import numpy.typing as npt
import rough_shape

F32 = npt.NDArray[np.float32]

ROUGH = rough_shape.fit_rough(rough_shape.MEASURED)

# Tags that keep the random streams of different parts of the model independent.
WORLD, LAYOUT, SCENE, TRAJECTORY, REVISIT, UNIFORM, ROUGH_WORLD, ROUGH_SCENE = 1, 2, 3, 4, 5, 6, 7, 8
# Roles: the pool's scenes and the candidates' scenes draw from different streams.
POOL, CANDS = 0, 1


@dataclass(frozen=True)
class World:
    topics: F32  # (n_topics, dim), unit rows; the places of "hard"
    common: F32 | None = None  # rough and hard: the direction all scene centres share


@dataclass(frozen=True)
class Scene:
    centre: F32  # (dim,), unit
    basis: F32  # (drift_dims, dim)
    rho: float
    spread: float  # stationary std of each walk coordinate
    noise: float  # norm of the per-frame isotropic noise


def unit(v: F32) -> F32:
    out: F32 = (v / np.float32(np.linalg.norm(v))).astype(np.float32)
    return out


def make_world(dim: int, seed: int, n_topics: int) -> World:
    rng = np.random.default_rng([seed, WORLD])
    common = unit(rng.standard_normal(dim, dtype=np.float32))
    g = rng.standard_normal((n_topics, dim), dtype=np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    topics = g + np.float32(0.33) * common
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    return World(topics=topics.astype(np.float32))


def make_rough_world(dim: int, seed: int, n_places: int) -> World:
    rng = np.random.default_rng([seed, ROUGH_WORLD])
    common = unit(rng.standard_normal(dim, dtype=np.float32))
    places = np.stack([rough_shape.centre(rng, common, ROUGH) for _ in range(n_places)])
    return World(topics=places, common=common)


def make_scene(world: World, seed: int, role: int, index: int, drift_dims: int) -> Scene:
    rng = np.random.default_rng([seed, SCENE, role, index])
    n_topics, dim = (int(x) for x in world.topics.shape)
    topic: F32 = world.topics[int(rng.integers(n_topics))]
    u = unit(rng.standard_normal(dim, dtype=np.float32))
    u *= np.float32(rng.uniform(0.3, 0.8))
    centre = unit(topic + u)
    basis = rng.standard_normal((drift_dims, dim), dtype=np.float32)
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    return Scene(
        centre=centre,
        basis=basis,
        rho=float(rng.uniform(0.97, 0.99)),
        spread=float(rng.uniform(0.02, 0.05)),
        noise=float(rng.uniform(0.005, 0.01)),
    )


def make_rough_scene(shape: str, world: World, seed: int, role: int, index: int) -> Scene:
    """A rough scene; a "hard" one sits a scene radius from one of a few places, overlapping others."""
    assert world.common is not None
    rng = np.random.default_rng([seed, ROUGH_SCENE, role, index])
    if shape == "hard":
        place: F32 = world.topics[int(rng.integers(world.topics.shape[0]))]
        centre = rough_shape.moved(rng, place, rough_shape.scene_radius(ROUGH))
    else:
        centre = rough_shape.centre(rng, world.common, ROUGH)
    d = rough_shape.draw_scene(rng, centre, ROUGH)
    return Scene(centre=d.centre, basis=d.basis, rho=d.rho, spread=d.spread, noise=d.noise)


def scene_maker(shape: str, world: World, seed: int, role: int, drift_dims: int) -> Callable[[int], Scene]:
    """The scene of each index, for a role in a world of `shape`."""
    if shape == "video":
        return partial(make_scene, world, seed, role, drift_dims=drift_dims)
    return partial(make_rough_scene, shape, world, seed, role)


def revisited_scene(make: Callable[[], Scene], seed: int, index: int, distance: float = 0.03) -> Scene:
    """The same place seen again: same drift basis, centre moved by ~``distance``."""
    scene = make()
    rng = np.random.default_rng([seed, REVISIT, index])
    dim = scene.centre.shape[0]
    shift = rng.standard_normal(dim, dtype=np.float32) * np.float32(distance / np.sqrt(dim))
    return Scene(
        centre=unit(scene.centre + shift),
        basis=scene.basis,
        rho=scene.rho,
        spread=scene.spread,
        noise=scene.noise,
    )
