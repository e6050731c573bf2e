//! Exact nearest-pool-row search, pruned with the triangle inequality over the pool's
//! leader groups.

use std::sync::OnceLock;

use crate::distance::bf16_dot;
use crate::distance::half_rows::HalfRows;
use crate::distance::l2;
use crate::groups::{self, Group, Groups};
use crate::matrix::{Blocks, Matrix};
use crate::scenes::Scenes;
use crate::switch::DenseCost;
use crate::validate::{self, SelectError};
use crate::Cancel;

mod leader_bounds;

/// Relative slack on every bound. Distances carry f32 rounding (a few 1e-7 of the
/// magnitudes they are computed from); a lower bound must beat the best distance by
/// more than this before anything is skipped, and an upper bound built from sums of
/// distances is raised by it, so rounding can never hide a nearer row or a tie.
pub(crate) const SLACK: f64 = 1e-5;

/// `lower` is certainly beyond `best`; `scale` is the sum of the magnitudes both were
/// computed from.
#[inline]
pub(crate) fn beyond(lower: f64, best: f64, scale: f64) -> bool {
    lower > best + SLACK * scale
}

/// An upper bound computed as a sum of distances, raised past its rounding error.
#[inline]
pub(crate) fn raised(upper: f64) -> f64 {
    upper + SLACK * upper
}

/// The pool's rows grouped around leaders. Holds no reference to the rows: every
/// search is given the same matrix the index was built from.
#[derive(Debug, Clone, Default)]
pub struct PoolIndex {
    groups: Groups,
    /// A coarser level: runs of consecutive groups whose leaders lie near the run's
    /// first leader (scenes, in video data), so a search can skip whole runs.
    runs: Vec<Run>,
    /// The pool cut into scenes (see `scenes`), where it falls into them.
    scenes: Option<Scenes>,
    /// The groups' leaders in bfloat16, where the dot-product kernel runs and the pool
    /// falls into scenes (see `leader_bounds`).
    leader_half: Option<HalfRows>,
    rows: usize,
    /// The dense path's costs, measured once on a sizeable input: GEMM and distance
    /// times do not depend on the values, so every later block and selection reuses it.
    dense_cost: OnceLock<DenseCost>,
}

#[derive(Debug, Clone, Copy)]
struct Run {
    /// Groups `first..end`; the run's leader is the first group's leader.
    first: usize,
    end: usize,
    /// Largest distance from the run's leader to any row of the run.
    radius: f64,
}

/// For one query point (usually a candidate group's leader): the pool groups that may
/// hold the nearest pool row of any point within `radius` of it, by lower bound.
pub(crate) struct Hint {
    /// `(d(query, leader) - group radius, group, d(query, leader))`, ascending.
    order: Vec<(f64, u32, f64)>,
}

impl Hint {
    /// Bounds on the query's own distance to the pool, `(lower, upper, row)`: the upper
    /// bound is the distance to the nearest group leader, pool row `row`. An empty pool
    /// gives `(inf, inf, usize::MAX)`.
    pub(crate) fn bounds(&self, index: &PoolIndex) -> (f64, f64, usize) {
        let lower = self.order.first().map_or(f64::INFINITY, |e| e.0.max(0.0));
        let nearest = self.order.iter().min_by(|a, b| a.2.total_cmp(&b.2));
        match nearest {
            Some(&(_, m, d)) => (lower.min(d), d, index.group(m).start),
            None => (f64::INFINITY, f64::INFINITY, usize::MAX),
        }
    }
}

impl PoolIndex {
    /// Groups the pool's rows. Checks that every value is finite.
    ///
    /// # Errors
    /// [`SelectError::NonFinite`] / [`SelectError::OutOfRange`] naming the pool row, or
    /// [`SelectError::Cancelled`].
    pub fn build(pool: &Matrix<'_>, cancel: Cancel<'_>) -> Result<Self, SelectError> {
        validate::finite(pool)?;
        let started = std::time::Instant::now();
        let groups = groups::leader_groups(pool, groups::tau(pool), cancel)?;
        let cols = pool.cols();
        let leaders: Vec<f32> = groups
            .groups
            .iter()
            .flat_map(|g| pool.row(g.start).iter().copied())
            .collect();
        let leaders = Matrix::new("pool", &leaders, groups.groups.len(), cols)?;
        let coarse = groups::leader_groups(&leaders, groups::tau_coarse(&leaders), cancel)?;
        let runs = coarse
            .groups
            .iter()
            .map(|r| Run {
                first: r.start,
                end: r.end,
                radius: r
                    .rows()
                    .map(|m| coarse.offset[m] + groups.groups[m].radius)
                    .fold(0.0, f64::max),
            })
            .collect();
        let scenes = Scenes::build(pool);
        let leader_half = (scenes.is_some() && bf16_dot::fast()).then(|| HalfRows::of(&leaders));
        crate::switch::trace(|| {
            format!(
                "pool {} rows: {} groups, {} scenes, {:.3} s",
                pool.rows(),
                groups.groups.len(),
                scenes.as_ref().map_or(0, Scenes::len),
                started.elapsed().as_secs_f64()
            )
        });
        Ok(Self {
            groups,
            runs,
            scenes,
            leader_half,
            rows: pool.rows(),
            dense_cost: OnceLock::new(),
        })
    }

    #[must_use]
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of leader groups (for benchmarks and tests).
    #[must_use]
    pub fn group_count(&self) -> usize {
        self.groups.groups.len()
    }

    /// Fixes the dense path's costs, as if measured here (measured before, or tests of
    /// the decisions).
    pub(crate) fn assume_dense_cost(&self, cost: DenseCost) {
        self.dense_cost.set(cost).expect("not measured yet");
    }

    /// The dense path's measured costs against this pool (see `switch`).
    pub(crate) fn dense_cost(&self, candidates: &Blocks<'_>, pool: &Matrix<'_>) -> DenseCost {
        if let Some(cost) = self.dense_cost.get() {
            return *cost;
        }
        let cost = DenseCost::measure(candidates, pool);
        // A few rows time too little work to stand for later, larger inputs.
        if candidates.rows() >= crate::switch::SAMPLE_ROWS {
            let _ = self.dense_cost.set(cost);
        }
        cost
    }

    /// The pool's scenes, where it falls into them.
    pub(crate) fn scenes(&self) -> Option<&Scenes> {
        self.scenes.as_ref()
    }

    fn group(&self, m: u32) -> &Group {
        &self.groups.groups[m as usize]
    }

    /// The search order for points within `radius` of `query`.
    ///
    /// A point x within `radius` of the query has a pool row within `min(d) + radius`
    /// (d: the query's distance to any leader), and a group or run can only hold a
    /// nearer one if its lower bound for the query, lowered by `radius`, is below that.
    pub(crate) fn hint(&self, pool: &Matrix<'_>, query: &[f32], radius: f64) -> Hint {
        let leader = |m: usize| pool.row(self.groups.groups[m].start);
        let to_runs: Vec<f64> = self
            .runs
            .iter()
            .map(|r| l2(query, leader(r.first)))
            .collect();
        let nearest_run = to_runs.iter().copied().fold(f64::INFINITY, f64::min);
        let limit = nearest_run + 2.0 * radius;
        let mut order: Vec<(f64, u32, f64)> = Vec::new();
        for (r, &d) in self.runs.iter().zip(&to_runs) {
            if beyond(d - r.radius, limit, d + r.radius + limit) {
                continue;
            }
            for m in r.first..r.end {
                let g = &self.groups.groups[m];
                let d = if m == r.first {
                    d
                } else {
                    l2(query, leader(m))
                };
                #[allow(clippy::cast_possible_truncation)] // group count < 2^32 (rows are)
                order.push((d - g.radius, m as u32, d));
            }
        }
        let nearest_leader = order.iter().map(|e| e.2).fold(f64::INFINITY, f64::min);
        let limit = nearest_leader + 2.0 * radius;
        order.retain(|e| !beyond(e.0, limit, 2.0 * e.2 - e.0 + limit));
        order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Hint { order }
    }

    /// Distance from `x` to its nearest pool row.
    ///
    /// `hint` comes from a query point `offset` away from `x`. Returns `(distance, true,
    /// row)` with the exact distance, or `(bound, false, row)` with an upper bound below
    /// `cutoff` as soon as one is found: the caller only needs to know that `x` is nearer
    /// than that. An empty pool is infinitely far (and `row` is `usize::MAX`).
    pub(crate) fn nearest(
        &self,
        pool: &Matrix<'_>,
        x: &[f32],
        offset: f64,
        hint: &Hint,
        cutoff: f64,
    ) -> (f64, bool, usize) {
        let mut best = f64::INFINITY;
        let mut row = usize::MAX;
        for &(lower, m, to_query) in &hint.order {
            // d(x, any row of m) >= d(query, leader) - offset - radius.
            if beyond(lower - offset, best, 2.0 * to_query - lower + offset + best) {
                break;
            }
            let g = self.group(m);
            let to_leader = if offset == 0.0 {
                to_query
            } else {
                l2(x, pool.row(g.start))
            };
            if to_leader < best {
                (best, row) = (to_leader, g.start);
            }
            if beyond(to_leader - g.radius, best, to_leader + g.radius + best) {
                continue;
            }
            for p in g.start + 1..g.end {
                // d(x, p) >= |d(x, leader) - d(p, leader)|.
                let lower = (to_leader - self.groups.offset[p]).abs();
                if beyond(lower, best, to_leader + self.groups.offset[p] + best) {
                    continue;
                }
                let d = l2(x, pool.row(p));
                if d < best {
                    (best, row) = (d, p);
                }
            }
            if best < cutoff {
                return (best, false, row);
            }
        }
        (best, true, row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    fn brute(pool: &Matrix<'_>, x: &[f32]) -> f64 {
        (0..pool.rows())
            .map(|p| l2(x, pool.row(p)))
            .fold(f64::INFINITY, f64::min)
    }

    #[allow(clippy::cast_precision_loss, clippy::cast_possible_truncation)]
    fn wavy(n: usize, d: usize, phase: f64) -> Vec<f32> {
        (0..n * d)
            .map(|k| {
                let (i, j) = (k / d, k % d);
                (((i / 50) as f64 * 1.3 + j as f64 * 0.7 + phase).sin()
                    + (i as f64 * 0.01 + j as f64).cos() * 0.05) as f32
            })
            .collect()
    }

    #[test]
    fn search_is_exact_from_any_hint_origin() {
        let (n, d) = (600, 8);
        let data = wavy(n, d, 0.0);
        let pool = Matrix::new("pool", &data, n, d).unwrap();
        let index = PoolIndex::build(&pool, &never).unwrap();
        assert!(
            index.group_count() < n / 2,
            "{} groups",
            index.group_count()
        );
        let queries = wavy(40, d, 0.4);
        for q in 0..40 {
            let x = &queries[q * d..(q + 1) * d];
            let want = brute(&pool, x);
            let hint = index.hint(&pool, x, 0.0);
            let (got, exact, _) = index.nearest(&pool, x, 0.0, &hint, f64::NEG_INFINITY);
            assert!(exact);
            assert_eq!(got.to_bits(), want.to_bits(), "query {q}");
            // Searching for a neighbour of the query, via the query's hint.
            let y: Vec<f32> = x.iter().map(|v| v + 0.01).collect();
            let off = l2(x, &y);
            let hint = index.hint(&pool, x, off);
            let (got, exact, _) = index.nearest(&pool, &y, off, &hint, f64::NEG_INFINITY);
            assert!(exact);
            assert_eq!(
                got.to_bits(),
                brute(&pool, &y).to_bits(),
                "neighbour of {q}"
            );
        }
    }

    #[test]
    fn cutoff_returns_an_early_upper_bound() {
        let data = [0.0, 1.0, 2.0, 10.0];
        let pool = Matrix::new("pool", &data, 4, 1).unwrap();
        let index = PoolIndex::build(&pool, &never).unwrap();
        let x = [2.5];
        let hint = index.hint(&pool, &x, 0.0);
        let (d, exact, _) = index.nearest(&pool, &x, 0.0, &hint, 3.0);
        assert!(!exact && d < 3.0);
        let (d, exact, row) = index.nearest(&pool, &x, 0.0, &hint, 0.1);
        assert!(exact);
        assert_eq!(row, 2);
        assert!((d - 0.5).abs() < 1e-6);
    }

    #[test]
    fn empty_pool_is_infinitely_far() {
        let pool = Matrix::new("pool", &[], 0, 3).unwrap();
        let index = PoolIndex::build(&pool, &never).unwrap();
        let hint = index.hint(&pool, &[1.0, 2.0, 3.0], 0.0);
        let got = index.nearest(&pool, &[1.0, 2.0, 3.0], 0.0, &hint, 0.0);
        assert_eq!(got, (f64::INFINITY, true, usize::MAX));
    }
}
