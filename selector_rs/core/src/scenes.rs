//! The pool cut into scenes at the jumps in its row order, for exact searches where the
//! data is separated only at that scale.
//!
//! On rough footage (frames ~0.2 apart, ~0.3 from their scene's mean, scenes ~1.2 apart)
//! the leader groups are as wide as the gaps between frames, and a leader's bound is
//! loosened by each member's ~0.3 offset, so nothing prunes. Scenes prune instead, with
//! each candidate's own distance to a scene's centre and each pool row's distance to it:
//! `d(x, p) >= |d(x, c) - d(p, c)|`. With the rows of a scene sorted by `d(p, c)`, the
//! rows that can lie within `r` of `x` are one contiguous range, so a search for "a pool
//! row nearer than `r`" reads only that range of each scene that can hold one.
//!
//! Where the cut is: consecutive rows farther apart than the geometric mean of the
//! median consecutive and the median random distance, both measured on the pool. A
//! pool without that structure (uniform rows: every gap is a jump) gets no scenes.

use rayon::prelude::*;

use crate::distance::half_rows::HalfRows;
use crate::distance::int8_dot;
use crate::distance::{bf16, l2};
use crate::groups::scale;
use crate::matrix::Matrix;
use quant::Quant;

mod batch;
mod quant;
mod tile;
mod waves;

/// Scenes must average at least this many rows to be worth a centre distance each.
const MIN_MEAN_ROWS: usize = 4;

/// Rows of a cluster: consecutive rows of a scene, around their own mean. A short
/// stretch of footage lies nearer its mean (~0.15 on rough data) than a whole scene
/// (~0.3), which is what lets a candidate ~1.1 away rule it out against a bound ~0.8.
const CLUSTER_ROWS: usize = 32;

#[derive(Debug, Clone)]
struct Cluster {
    centre: Vec<f32>,
    /// `(d(p, centre), p)` for the cluster's rows, ascending.
    rows: Vec<(f64, u32)>,
    radius: f64,
}

#[derive(Debug, Clone)]
struct Scene {
    whole: Cluster,
    /// The scene's clusters, `CLUSTER_ROWS` consecutive rows each.
    parts: Vec<Cluster>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Scenes {
    list: Vec<Scene>,
    /// The median scene's radius: the scale at which the pool is separated.
    median_radius: f64,
    /// The pool's rows in int8 for the cluster tiles, where the byte kernel runs (see
    /// `quant`); else in bfloat16 (empty where the bfloat16 kernel would not be
    /// faster: see `batch`).
    quant: Option<Quant>,
    half: HalfRows,
}

impl Scenes {
    /// The pool's scenes, or `None` when the pool does not fall into scenes.
    pub(crate) fn build(pool: &Matrix<'_>) -> Option<Self> {
        let n = pool.rows();
        if n < 2 * MIN_MEAN_ROWS || pool.cols() == 0 || u32::try_from(n).is_err() {
            return None;
        }
        let (consecutive, random) = scale(pool);
        let cut = (consecutive * random).sqrt();
        let jumps: Vec<usize> = (1..n)
            .into_par_iter()
            .filter(|&i| l2(pool.row(i - 1), pool.row(i)) > cut)
            .collect();
        if (jumps.len() + 1) * MIN_MEAN_ROWS > n {
            return None;
        }
        let bounds: Vec<(usize, usize)> = std::iter::once(0)
            .chain(jumps.iter().copied())
            .zip(jumps.iter().copied().chain(std::iter::once(n)))
            .collect();
        let scenes: Vec<Scene> = bounds
            .into_par_iter()
            .map(|(start, end)| Scene {
                whole: cluster(pool, start, end),
                parts: (start..end)
                    .step_by(CLUSTER_ROWS)
                    .map(|s| cluster(pool, s, (s + CLUSTER_ROWS).min(end)))
                    .collect(),
            })
            .collect();
        let mut radii: Vec<f64> = scenes.iter().map(|s| s.whole.radius).collect();
        radii.sort_by(f64::total_cmp);
        let median_radius = radii[radii.len() / 2];
        let quant = (int8_dot::fast() && pool.cols() <= int8_dot::MAX_COLS)
            .then(|| Quant::build(pool, &scenes));
        let half = if quant.is_none() && bf16::fast() {
            HalfRows::of(pool)
        } else {
            HalfRows::default()
        };
        Some(Self {
            list: scenes,
            median_radius,
            quant,
            half,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    pub(crate) fn median_radius(&self) -> f64 {
        self.median_radius
    }
}

/// Rows `start..end` around their mean.
fn cluster(pool: &Matrix<'_>, start: usize, end: usize) -> Cluster {
    let mut sum = vec![0.0_f64; pool.cols()];
    for i in start..end {
        for (s, &v) in sum.iter_mut().zip(pool.row(i)) {
            *s += f64::from(v);
        }
    }
    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    let centre: Vec<f32> = sum
        .iter()
        .map(|s| (s / (end - start) as f64) as f32)
        .collect();
    #[allow(clippy::cast_possible_truncation)] // pool rows < 2^32
    let mut rows: Vec<(f64, u32)> = (start..end)
        .map(|i| (l2(pool.row(i), &centre), i as u32))
        .collect();
    rows.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let radius = rows.last().map_or(0.0, |r| r.0);
    Cluster {
        centre,
        rows,
        radius,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_without_structure_has_no_scenes() {
        // Consecutive rows are as far apart as any: about every other gap is a cut.
        let data = crate::test_data::noise(256 * 8, 3);
        let pool = Matrix::new("pool", &data, 256, 8).unwrap();
        assert!(Scenes::build(&pool).is_none());
    }
}
