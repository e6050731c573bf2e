//! The order in which one call of `nearest_below_many` reads the scenes, in waves.
//!
//! Scenes come nearest first (by the smallest lower bound of any query); between two
//! waves each query's bound tightens to the nearest row found so far, and a query that
//! has found a row nearer than the cutoff stops there, as a lone search does. A wave is
//! a run of scenes read together on every thread, twice as many clusters as the wave
//! before: one scene at a time, a full search woke the other thread once per scene
//! (~180 times per batch at 100,000 pool rows), and the wake-ups took ~15% of the
//! searches' time; at 300,000 rough candidates against 100,000 pool rows (seed
//! 466523635, 300 picks, two runs each, one after the other) the searches took 8.9 and
//! 9.0 s in waves against 9.9 and 10.3 s scene by scene.

use rayon::prelude::*;

use super::batch::Found;
use super::{Cluster, Scenes};
use crate::distance::l2;
use crate::pool::{beyond, SLACK};

/// Clusters of the first wave, and the most a wave may hold.
const FIRST_WAVE: usize = 16;
const LAST_WAVE: usize = 512;

/// Distances to scene centres worth computing on every thread.
const PARALLEL_DISTANCES: usize = 1024;

/// The clusters of a wave, each with the index of its scene's open queries in `opens`.
pub(super) struct Wave<'s> {
    pub(super) jobs: Vec<(&'s Cluster, usize)>,
    pub(super) opens: Vec<Vec<usize>>,
}

/// One call's state: per query, its distances to the scenes' centres, the window of them
/// it searches, and the nearest row found so far.
pub(super) struct Plan<'s> {
    scenes: &'s Scenes,
    /// `dc[t][j]`: d(query j, centre of scene t).
    dc: Vec<Vec<f64>>,
    /// Query `j` searches the scenes whose centre distance lies in `(from[j], reach[j]]`.
    from: Vec<f64>,
    reach: Vec<f64>,
    /// `(smallest lower bound of any query, scene)`, ascending, and the next to read.
    order: Vec<(f64, usize)>,
    at: usize,
    size: usize,
    widest: f64,
    /// `(distance, row)` of the nearest row so far (`usize::MAX`: none, the bound).
    pub(super) best: Vec<(f64, usize)>,
    live: Vec<bool>,
}

impl<'s> Plan<'s> {
    /// See `Scenes::nearest_below_many` for `ranks`.
    pub(super) fn new(
        scenes: &'s Scenes,
        xs: &[&[f32]],
        below: &[f64],
        ranks: std::ops::Range<usize>,
    ) -> Self {
        let list = &scenes.list;
        let centres = |s: &super::Scene| xs.iter().map(|x| l2(x, &s.whole.centre)).collect();
        let dc: Vec<Vec<f64>> = if xs.len() * list.len() < PARALLEL_DISTANCES {
            list.iter().map(centres).collect()
        } else {
            list.par_iter().map(centres).collect()
        };
        // The `k`-th smallest centre distance for the ranks' ends.
        let (from, reach) = (0..xs.len())
            .map(|j| {
                let mut d: Vec<f64> = dc.iter().map(|d| d[j]).collect();
                let mut kth = |k: usize| *d.select_nth_unstable_by(k - 1, f64::total_cmp).1;
                let from = match ranks.start {
                    0 => f64::NEG_INFINITY,
                    k if k > list.len() => f64::INFINITY,
                    k => kth(k),
                };
                let reach = if ranks.end >= list.len() {
                    f64::INFINITY
                } else {
                    kth(ranks.end)
                };
                (from, reach)
            })
            .unzip();
        let mut order: Vec<(f64, usize)> = (0..list.len())
            .map(|t| {
                let r = list[t].whole.radius;
                let low = dc[t].iter().map(|d| d - r).fold(f64::INFINITY, f64::min);
                (low, t)
            })
            .collect();
        order.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        Self {
            scenes,
            dc,
            from,
            reach,
            order,
            at: 0,
            size: FIRST_WAVE,
            widest: list.iter().map(|s| s.whole.radius).fold(0.0, f64::max),
            best: below.iter().map(|&b| (b, usize::MAX)).collect(),
            live: vec![true; xs.len()],
        }
    }

    /// The next scenes, nearest first, until they hold the wave's clusters, each with the
    /// queries that cannot rule it out; `None` once no scene is left that could hold a
    /// row nearer than a live query's bound.
    pub(super) fn next(&mut self) -> Option<Wave<'s>> {
        let mut wave = Wave {
            jobs: Vec::new(),
            opens: Vec::new(),
        };
        while self.at < self.order.len() && wave.jobs.len() < self.size {
            let (low, t) = self.order[self.at];
            // Scenes come by the smallest lower bound of any query: once that is beyond
            // every live query's bound (as `beyond` would find with any scene's scale), so
            // is every later scene.
            let spent = (0..self.best.len()).filter(|&j| self.live[j]).all(|j| {
                low * (1.0 - SLACK) > self.best[j].0 * (1.0 + SLACK) + 2.0 * SLACK * self.widest
            });
            if spent {
                self.at = self.order.len();
                break;
            }
            self.at += 1;
            let scene = &self.scenes.list[t];
            let r = scene.whole.radius;
            let open: Vec<usize> = (0..self.best.len())
                .filter(|&j| {
                    let (d, b) = (self.dc[t][j], self.best[j].0);
                    self.live[j]
                        && self.from[j] < d
                        && d <= self.reach[j]
                        && !beyond(d - r, b, d + r + b)
                })
                .collect();
            if !open.is_empty() {
                wave.jobs
                    .extend(scene.parts.iter().map(|part| (part, wave.opens.len())));
                wave.opens.push(open);
            }
        }
        self.size = (self.size * 2).min(LAST_WAVE);
        (!wave.jobs.is_empty()).then_some(wave)
    }

    /// Folds in what a wave found, `(query, distance, row)`, and stops the queries of
    /// `opens` that found a row nearer than `cutoff`.
    pub(super) fn merge(
        &mut self,
        found: impl Iterator<Item = (usize, f64, usize)>,
        opens: &[Vec<usize>],
        cutoff: f64,
    ) {
        for (j, d, row) in found {
            // The nearer, the lower row on ties: the same whatever the clusters' order.
            if (d, row) < self.best[j] {
                self.best[j] = (d, row);
            }
        }
        for &j in opens.iter().flatten() {
            if self.best[j].1 != usize::MAX && self.best[j].0 < cutoff {
                self.live[j] = false;
            }
        }
    }

    pub(super) fn found(self) -> Vec<Found> {
        self.best
            .iter()
            .zip(&self.live)
            .map(|(&(d, row), &live)| Found {
                nearest: (row != usize::MAX).then_some((d, row)),
                exact: live,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::Scenes;
    use super::FIRST_WAVE;
    use crate::distance::l2;
    use crate::matrix::Matrix;
    use crate::test_data::{nearest_brute, noise, scenes_of};

    #[test]
    fn a_search_over_many_waves_finds_every_querys_nearest_row() {
        let (scenes, len, d) = (40, 40, 48);
        let data = scenes_of(scenes, len, d, 0.0);
        let pool = Matrix::new("pool", &data, scenes * len, d).unwrap();
        let index = Scenes::build(&pool).expect("the pool falls into scenes");
        let clusters: usize = index.list.iter().map(|s| s.parts.len()).sum();
        assert!(
            clusters > 3 * FIRST_WAVE,
            "{clusters} clusters: too few waves"
        );
        // A query near each scene (its nearest rows in different waves) and some between.
        let mut queries = scenes_of(scenes, 1, d, 1.3);
        queries.extend(noise(10 * d, 4).iter().map(|v| 0.3 + 0.3 * v));
        let xs: Vec<&[f32]> = queries.chunks_exact(d).collect();
        let open = vec![f64::INFINITY; xs.len()];
        let got = index.nearest_below_many(&pool, &xs, &open, f64::NEG_INFINITY, 0..usize::MAX);
        for (q, (g, x)) in got.iter().zip(&xs).enumerate() {
            let want = nearest_brute(&pool, x);
            let found = g.nearest.map(|(d, p)| (d.to_bits(), p));
            assert_eq!(found, Some((want.0.to_bits(), want.1)), "query {q}");
            assert!(g.exact, "query {q}");
        }
        // With a cutoff no row is nearer than, a query may stop at any row: a real one.
        let got = index.nearest_below_many(&pool, &xs, &open, f64::INFINITY, 0..usize::MAX);
        for (q, (g, x)) in got.iter().zip(&xs).enumerate() {
            let (d, p) = g.nearest.expect("a row below inf");
            assert_eq!(d.to_bits(), l2(x, pool.row(p)).to_bits(), "query {q}");
            assert!(d >= nearest_brute(&pool, x).0, "query {q}");
        }
    }
}
