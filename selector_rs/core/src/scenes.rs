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

use crate::distance::l2;
use crate::groups::scale;
use crate::matrix::Matrix;
use crate::pool::beyond;

/// Scenes must average at least this many rows to be worth a centre distance each.
const MIN_MEAN_ROWS: usize = 4;

/// Rows of a cluster: consecutive rows of a scene, around their own mean. A short
/// stretch of footage lies nearer its mean (~0.15 on rough data) than a whole scene
/// (~0.3), which is what lets a candidate ~1.1 away rule it out against a bound ~0.8.
const CLUSTER_ROWS: usize = 32;

/// A scene of at least this many clusters is searched on two threads.
const PARALLEL_PARTS: usize = 4;

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
    scenes: Vec<Scene>,
    /// The median scene's radius: the scale at which the pool is separated.
    median_radius: f64,
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
        Some(Self {
            scenes,
            median_radius,
        })
    }

    pub(crate) fn len(&self) -> usize {
        self.scenes.len()
    }

    pub(crate) fn median_radius(&self) -> f64 {
        self.median_radius
    }

    /// Each scene as `(rows, centre, radius)`: a scene is a run of consecutive pool rows.
    pub(crate) fn spans(&self) -> impl Iterator<Item = (std::ops::Range<usize>, &[f32], f64)> {
        self.scenes.iter().map(|s| {
            let rows = s.whole.rows.iter().map(|&(_, p)| p as usize);
            let first = rows.clone().min().unwrap_or(0);
            let end = rows.max().map_or(first, |p| p + 1);
            (first..end, s.whole.centre.as_slice(), s.whole.radius)
        })
    }

    /// The nearest pool row to `x` among those strictly nearer than `bound`, as
    /// `(distance, row)`, with `true` when that is certain; `(bound, usize::MAX, true)`
    /// when no row is nearer than `bound`. Returns early, with `false`, once a row
    /// nearer than `cutoff` is found: the caller only needs to know that there is one.
    pub(crate) fn nearest_below(
        &self,
        pool: &Matrix<'_>,
        x: &[f32],
        bound: f64,
        cutoff: f64,
    ) -> (f64, usize, bool) {
        let order = by_lower_bound(x, self.scenes.iter().map(|s| &s.whole));
        let mut found = (bound, usize::MAX);
        for &(lower, t, dc) in &order {
            let scene = &self.scenes[t];
            if beyond(lower, found.0, dc + scene.whole.radius + found.0) {
                break;
            }
            let parts = by_lower_bound(x, scene.parts.iter());
            // A search runs at memory speed, mostly while the other thread idles (a
            // group's few searches come one at a time): a scene's clusters in two
            // interleaved halves, on both threads, each half pruning by its own best.
            found = if parts.len() >= PARALLEL_PARTS {
                let (a, b) = rayon::join(
                    || scan_parts(pool, x, scene, &parts, 0, found),
                    || scan_parts(pool, x, scene, &parts, 1, found),
                );
                // The nearer, the lower row on ties (what one pass finds may differ
                // in the row, never in the distance).
                if (b.0, b.1) < (a.0, a.1) {
                    b
                } else {
                    a
                }
            } else {
                scan_parts(pool, x, scene, &parts, 0, found)
            };
            if found.1 != usize::MAX && found.0 < cutoff {
                return (found.0, found.1, false);
            }
        }
        (found.0, found.1, true)
    }
}

/// Folds into `found` the rows of `scene`'s clusters `parts[half]`, `parts[half + 2]`,
/// ... (every one when the scene is too small to split), nearest first by lower bound.
fn scan_parts(
    pool: &Matrix<'_>,
    x: &[f32],
    scene: &Scene,
    parts: &[(f64, usize, f64)],
    half: usize,
    mut found: (f64, usize),
) -> (f64, usize) {
    let step = if parts.len() >= PARALLEL_PARTS { 2 } else { 1 };
    for &(lower, k, dc) in parts.iter().skip(half).step_by(step) {
        let part = &scene.parts[k];
        if beyond(lower, found.0, dc + part.radius + found.0) {
            break;
        }
        scan(pool, x, part, dc, &mut found);
    }
    found
}

/// `(d(x, centre) - radius, position, d(x, centre))` for each cluster, ascending.
fn by_lower_bound<'c>(
    x: &[f32],
    clusters: impl Iterator<Item = &'c Cluster>,
) -> Vec<(f64, usize, f64)> {
    let mut order: Vec<(f64, usize, f64)> = clusters
        .enumerate()
        .map(|(t, c)| {
            let dc = l2(x, &c.centre);
            (dc - c.radius, t, dc)
        })
        .collect();
    order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    order
}

/// Folds into `found` the rows of `part` nearer to `x` than `found.0`, reading only
/// those whose distance to the centre allows it: `d(x, p) >= |d(x, c) - d(p, c)|`.
fn scan(pool: &Matrix<'_>, x: &[f32], part: &Cluster, dc: f64, found: &mut (f64, usize)) {
    // Rows nearer the centre than `dc - best` cannot be within `best` of x.
    let first = part
        .rows
        .partition_point(|&(dp, _)| beyond(dc - dp, found.0, dc + dp + found.0));
    for &(dp, p) in &part.rows[first..] {
        let best = found.0;
        if beyond(dp - dc, best, dc + dp + best) {
            break;
        }
        if beyond(dc - dp, best, dc + dp + best) {
            continue;
        }
        let d = l2(x, pool.row(p as usize));
        if d < best {
            *found = (d, p as usize);
        }
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
    use crate::test_data::{nearest_brute as brute, scenes_of};

    #[test]
    fn a_search_finds_the_nearest_row_below_its_bound_or_none() {
        let (d, len) = (8, 40);
        let data = scenes_of(6, len, d, 0.0);
        let pool = Matrix::new("pool", &data, 6 * len, d).unwrap();
        let scenes = Scenes::build(&pool).expect("the pool falls into scenes");
        assert_eq!(scenes.len(), 6);
        let queries = scenes_of(7, 3, d, 0.0);
        for q in 0..21 {
            let x = &queries[q * d..(q + 1) * d];
            let (want, row) = brute(&pool, x);
            let got = scenes.nearest_below(&pool, x, f64::INFINITY, f64::NEG_INFINITY);
            assert_eq!((got.0.to_bits(), got.1, got.2), (want.to_bits(), row, true));
            // Nothing nearer than the nearest row itself.
            let none = scenes.nearest_below(&pool, x, want, f64::NEG_INFINITY);
            assert_eq!(none.1, usize::MAX, "query {q}");
        }
    }

    #[test]
    fn a_pool_without_structure_has_no_scenes() {
        // Consecutive rows are as far apart as any: about every other gap is a cut.
        let data = crate::test_data::noise(256 * 8, 3);
        let pool = Matrix::new("pool", &data, 256, 8).unwrap();
        assert!(Scenes::build(&pool).is_none());
    }
}
