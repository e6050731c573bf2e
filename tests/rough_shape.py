"""Parameters of the "rough" synthetic shape, derived from measured real-feature statistics.

The rough shape uses the scene model of `synthetic_embeddings` (a unit centre, an
AR(1) walk of ``k`` coordinates along random unit directions, isotropic per-frame noise, the
row normalised), with every parameter solved from the statistics that bench/real_features.py
measured on real EfficientNet-Lite0 features of H.264 clips (bench/data/real_feature_stats.json).
Nothing here is chosen to make a selection benchmark pass: `fit_rough` only inverts the
model's expected statistics. Before normalisation, with walk step ``a = 2 k v (1 - rho)``
(``v``: stationary variance per walk coordinate), noise ``b = sigma**2`` and ``n**2 = 1 + k v + b``
the squared norm that normalisation divides out:

- consecutive frames:            ``d_c**2 n**2 = a + 2 b``
- off the neighbours' line:      ``d_l**2 n**2 = a (3 - rho) / 4 + 3 b / 2``
- to the mean of an L-frame clip: ``R**2 n**2 = k v (1 - g(rho, L)) + b (1 - 1/L)``, ``g`` the
  variance of an AR(1) mean over L steps relative to ``v``
- frames of different scenes:    ``cos = c_i . c_j / n**2``, with centres
  ``c = sqrt(s) m + sqrt(1 - s) u`` (``m`` shared, ``u`` a random unit vector) and ``s`` per
  scene from U(s_lo, s_hi), solved so the 5% and 95% quantiles of ``sqrt(s_i s_j)`` match
- a place seen again (two clips of one photograph): its centre moves by ``shift``.

Each scene scales its step and noise by a factor drawn from U(r_lo, r_hi), the measured
spread of per-clip median consecutive distances around their median (a fast pan against a
tripod shot). The 16-frame top-direction share is not fitted: it is a check of the model.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

F32 = npt.NDArray[np.float32]

# Medians and quantiles copied from bench/data/real_feature_stats.json; a test checks that
# they still match the file.
MEASURED: dict[str, list[float]] = {
    "consecutive": [0.1267, 0.1856, 0.2923],
    "scene_consecutive": [0.1466, 0.1807, 0.2525],
    "off_line": [0.0979, 0.1441, 0.2298],
    "to_scene_mean": [0.1702, 0.2954, 0.4837],
    "cross_scene": [1.0965, 1.2738, 1.346],
    "same_photo_means": [0.1464, 0.3259, 0.59],
}
CLIP_FRAMES = 64  # frames per measured clip (L above)
WALK_DIMS = 64  # k: enough that no few directions dominate a 16-frame window


@dataclass(frozen=True)
class RoughParams:
    noise: float  # sigma: norm of the per-frame noise before normalisation
    rho: float  # AR(1) coefficient of the walk
    spread: float  # stationary std of each walk coordinate (sqrt(v))
    walk_dims: int
    shared_lo: float  # s range: weight of the shared direction in a scene centre
    shared_hi: float
    rough_lo: float  # per-scene factor on step and noise
    rough_hi: float
    revisit_shift: float  # how far a revisited scene's centre moves


def _mean_variance_share(rho: float, length: int) -> float:
    """Variance of the mean of ``length`` AR(1) steps, relative to the stationary variance."""
    total = length + 2 * sum((length - j) * rho**j for j in range(1, length))
    return total / length**2


def _quantiles_of_products(lo: float, hi: float, probs: Sequence[float]) -> list[float]:
    rng = np.random.default_rng(0)  # fixed: the fit must be deterministic
    s = rng.uniform(lo, hi, (2, 20_000))
    return [float(q) for q in np.quantile(np.sqrt(s[0] * s[1]), probs)]


def _fit_shared(cos_lo: float, cos_hi: float) -> tuple[float, float]:
    lo, hi = cos_lo, cos_hi
    for _ in range(40):
        got_lo, got_hi = _quantiles_of_products(lo, hi, (0.05, 0.95))
        lo = min(max(lo + cos_lo - got_lo, 0.0), 1.0)
        hi = min(max(hi + cos_hi - got_hi, lo), 1.0)
    return lo, hi


def fit_rough(
    stats: Mapping[str, Sequence[float]], length: int = CLIP_FRAMES, k: int = WALK_DIMS
) -> RoughParams:
    """Solves the model above for the statistics ``{name: [p5, p50, p95]}`` of real clips."""
    d_c, d_l, radius = stats["consecutive"][1], stats["off_line"][1], stats["to_scene_mean"][1]
    n2, rho = 1.0, 0.9
    for _ in range(50):  # fixed point: n2 and rho enter each other's equations
        # (1) and (2) give step a and noise b for this n2 and rho.
        c1, c2 = d_c**2 * n2, d_l**2 * n2
        w = (3 - rho) / 4
        b = max((c2 - w * c1) / (1.5 - 2 * w), 0.0)
        a = max(c1 - 2 * b, 1e-12)
        target = radius**2 * n2 - b * (1 - 1 / length)

        def excess(r: float, a: float = a, target: float = target) -> float:
            kv = a / (2 * (1 - r))
            return kv * (1 - _mean_variance_share(r, length)) - target

        lo_r, hi_r = 0.0, 0.9999
        if excess(lo_r) > 0:
            rho = lo_r
        else:
            for _ in range(60):
                mid = (lo_r + hi_r) / 2
                lo_r, hi_r = (mid, hi_r) if excess(mid) < 0 else (lo_r, mid)
            rho = (lo_r + hi_r) / 2
        kv = a / (2 * (1 - rho))
        n2 = 1 + kv + b
    cross = stats["cross_scene"]
    cos_lo, cos_hi = ((1 - cross[2] ** 2 / 2) * n2, (1 - cross[0] ** 2 / 2) * n2)
    shared_lo, shared_hi = _fit_shared(max(cos_lo, 0.0), max(cos_hi, 0.0))
    per_clip = stats["scene_consecutive"]
    same = stats.get("same_photo_means", [])
    # Two clip means of one place differ by the shift and by each clip's own wander.
    wander = 2 * (kv * _mean_variance_share(rho, length) + b / length)
    shift = math.sqrt(max(same[1] ** 2 * n2 - wander, 0.0)) if same else 0.0
    return RoughParams(
        noise=math.sqrt(b),
        rho=rho,
        spread=math.sqrt(kv / k),
        walk_dims=k,
        shared_lo=shared_lo,
        shared_hi=shared_hi,
        rough_lo=per_clip[0] / per_clip[1],
        rough_hi=per_clip[2] / per_clip[1],
        revisit_shift=shift,
    )


@dataclass(frozen=True)
class SceneDraw:
    centre: F32  # (dim,), unit
    basis: F32  # (walk_dims, dim), unit rows
    rho: float
    spread: float
    noise: float


def _unit(v: F32) -> F32:
    out: F32 = (v / np.float32(np.linalg.norm(v))).astype(np.float32)
    return out


def centre(rng: np.random.Generator, common: F32, p: RoughParams) -> F32:
    """A scene centre: ``sqrt(s) m + sqrt(1 - s) u`` with ``s`` from U(shared_lo, shared_hi)."""
    s = rng.uniform(p.shared_lo, p.shared_hi)
    u = _unit(rng.standard_normal(int(common.shape[0]), dtype=np.float32))
    mixed: F32 = (np.float32(math.sqrt(s)) * common + np.float32(math.sqrt(1 - s)) * u).astype(np.float32)
    return _unit(mixed)


def draw_scene(rng: np.random.Generator, centre: F32, p: RoughParams) -> SceneDraw:
    """One scene around ``centre``: a walk basis and its roughness (step and noise scaled together)."""
    dim = centre.shape[0]
    basis = rng.standard_normal((p.walk_dims, dim), dtype=np.float32)
    basis /= np.linalg.norm(basis, axis=1, keepdims=True)
    # Half the scenes smoother, half rougher than the median clip: median factor 1.
    r = rng.uniform(p.rough_lo, 1.0) if rng.random() < 0.5 else rng.uniform(1.0, p.rough_hi)
    return SceneDraw(centre, basis, p.rho, p.spread * r, p.noise * r)


def moved(rng: np.random.Generator, centre: F32, distance: float) -> F32:
    """``centre`` moved by about ``distance`` in a random direction, back on the sphere."""
    dim = centre.shape[0]
    return _unit(centre + rng.standard_normal(dim, dtype=np.float32) * np.float32(distance / math.sqrt(dim)))


def scene_radius(p: RoughParams) -> float:
    """Stationary distance of a median frame from its scene centre, after normalisation."""
    kv, b = p.walk_dims * p.spread**2, p.noise**2
    return math.sqrt((kv + b) / (1 + kv + b))
