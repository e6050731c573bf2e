"""The statistics of every synthetic shape next to those of real features (same code for both).

Real: bench/data/real_feature_stats.json (bench/real_features.py: 64-frame clips). Each shape
is generated here as scenes of the same length, so that per-scene statistics compare (a
``to_scene_mean`` of a longer scene grows with its length), and once more with its own
scene lengths for the scene-level figures (``--frames 0`` skips that).

    .venv/bin/python bench/shape_stats.py
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# The generators and statistics are test-support code in tests/, shared with the tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from embedding_stats import raw_statistics, statistics, summarise, table
from synthetic_embeddings import SHAPES, scene_lengths, uniform_sphere, video_like

REAL = Path(__file__).resolve().parent / "data" / "real_feature_stats.json"
DIM = 1280


def nearest_other_scene_mean(rows: np.ndarray, lengths: list[int]) -> list[float]:
    """Quantiles of each scene mean's distance to the nearest other scene mean."""
    starts = np.cumsum([0, *lengths])
    m = np.stack([rows[a:b].astype(np.float64).mean(axis=0) for a, b in itertools.pairwise(starts)])
    sq = (m * m).sum(axis=1)
    d = np.sqrt(np.maximum(sq[:, None] + sq[None, :] - 2 * m @ m.T, 0.0))
    np.fill_diagonal(d, np.inf)
    return [round(float(q), 4) for q in np.percentile(d.min(axis=1), (5, 50, 95))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scenes", type=int, default=60, help="scenes per shape")
    parser.add_argument("--frames", type=int, default=64, help="frames per scene (as the real clips)")
    parser.add_argument("--rows", type=int, default=30_000, help="rows per shape at its own scene lengths")
    parser.add_argument("--seed", type=int, default=12345)
    args = parser.parse_args()

    real = json.loads(REAL.read_text())
    columns = {f"real ({real['frames']} frames)": real["statistics"]}
    lengths = [args.frames] * args.scenes
    for shape in SHAPES:
        rows = video_like(sum(lengths), DIM, args.seed, shape=shape, scene_frames=(args.frames, args.frames))
        columns[shape] = statistics(rows, lengths, args.seed)
    rows = uniform_sphere(sum(lengths), DIM, args.seed)
    columns["uniform"] = statistics(rows, lengths, args.seed)
    print(
        f"p5 / p50 / p95; synthetic shapes as {args.scenes} scenes of {args.frames} frames, seed {args.seed}"
    )
    print(table(columns))
    if args.rows:
        print(f"\nat each shape's own scene lengths ({args.rows:,} rows):")
        for shape in SHAPES:
            rows = video_like(args.rows, DIM, args.seed, shape=shape)
            own = scene_lengths(args.rows, args.seed, shape)
            values = summarise(raw_statistics(rows, own, args.seed))
            print(
                f"  {shape:6s} {len(own):5d} scenes; frame to scene mean {values['to_scene_mean']}; "
                f"scene mean to nearest other {nearest_other_scene_mean(rows, own)}"
            )


if __name__ == "__main__":
    main()
