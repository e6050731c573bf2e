//! Many searches of the scenes at once: each pool row that several of the queries
//! cannot rule out is read once and measured against all of them while it is in cache,
//! instead of once per query (a search one candidate at a time reads ~30% of the pool
//! on rough footage, from L3 or memory).
//!
//! Where the CPU has bfloat16 dot products, a cluster's rows and the queries that
//! cannot rule the cluster out are bounded in one tile (`tile`) instead of row by row.
//!
//! Scenes are searched nearest first, in waves (`waves`): each wave's clusters on every
//! thread, and between waves each query's bound tightens to the nearest row found so
//! far.

use std::cmp::Ordering;

use rayon::prelude::*;

use super::tile::Copies;
use super::waves::Plan;
use super::{Cluster, Scenes};
use crate::counters;
use crate::distance::half_rows::farther_sq;
use crate::distance::{l2, l2_x4, prefetch};
use crate::matrix::Matrix;
use crate::pool::beyond;

/// A query open in a cluster: its index, `d(query, centre)` and `(distance, row)` of the
/// nearest row found so far (`usize::MAX`: none yet, the distance is its bound).
pub(super) type Query = (usize, f64, (f64, usize));

/// A wave of at least this many clusters is searched on every thread.
const PARALLEL_PARTS: usize = 4;

/// What a search found: the nearest pool row strictly nearer than the query's bound, as
/// `(distance, row)`, `None` when there is none; `exact` is `false` when the search
/// stopped early at a row nearer than `cutoff` (a bound then, not the distance).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Found {
    pub(crate) nearest: Option<(f64, usize)>,
    pub(crate) exact: bool,
}

impl Scenes {
    /// For each of `xs`, its nearest pool row strictly nearer than `below[j]` (see
    /// [`Found`]) in the scenes whose centres rank `ranks` by distance from it (`0..k`:
    /// its `k` nearest; `k..usize::MAX`: all but those, which an earlier search of its
    /// `k` nearest read already; ties go with the nearer rank); a query may stop once it
    /// has found a row nearer than `cutoff`.
    pub(crate) fn nearest_below_many(
        &self,
        pool: &Matrix<'_>,
        xs: &[&[f32]],
        below: &[f64],
        cutoff: f64,
        ranks: std::ops::Range<usize>,
    ) -> Vec<Found> {
        assert!(ranks.end > 0, "no scene to search");
        counters::add(&counters::SEARCHES, xs.len());
        let xh = super::tile::copies(self, xs);
        let mut plan = Plan::new(self, xs, below, ranks);
        while let Some(wave) = plan.next() {
            let found: Vec<Vec<(usize, f64, usize)>> = {
                let best = &plan.best;
                let scan = |&(part, o): &(&Cluster, usize)| {
                    self.scan_many(pool, (xs, &xh), best, &wave.opens[o], part)
                };
                // Waking the other thread costs more than a small wave's few clusters.
                if wave.jobs.len() < PARALLEL_PARTS {
                    wave.jobs.iter().map(scan).collect()
                } else {
                    wave.jobs.par_iter().map(scan).collect()
                }
            };
            plan.merge(found.into_iter().flatten(), &wave.opens, cutoff);
        }
        plan.found()
    }
}

impl Scenes {
    /// The rows of `part` nearer to each of the `open` queries than its bound in `best`, as
    /// `(query, distance, row)`, the nearest per query. A row is read once, for every query
    /// that cannot rule it out by `d(x, p) >= |d(x, c) - d(p, c)|`.
    fn scan_many(
        &self,
        pool: &Matrix<'_>,
        (xs, xh): (&[&[f32]], &Copies),
        best: &[(f64, usize)],
        open: &[usize],
        part: &Cluster,
    ) -> Vec<(usize, f64, usize)> {
        let r = part.radius;
        // (query, d(query, centre), best so far) for the queries the cluster can hold a row for.
        let mut queries: Vec<Query> = open
            .iter()
            .filter_map(|&j| {
                let dc = l2(xs[j], &part.centre);
                let b = best[j].0;
                (!beyond(dc - r, b, dc + r + b)).then_some((j, dc, best[j]))
            })
            .collect();
        if queries.is_empty() {
            return Vec::new();
        }
        if let Some(near) = self.near_pairs(xh, &queries, part) {
            counters::add(&counters::HALF_ROWS, part.rows.len());
            let mut read = 0;
            for (k, sq, p) in near {
                // The query's bound may have tightened since the tile: nearest bounds first.
                if !farther_sq(sq, 0.0, queries[k].2 .0) {
                    read += 1;
                    let d = l2(xs[queries[k].0], pool.row(p));
                    nearer(&mut queries[k].2, d, p);
                }
            }
            counters::add(&counters::SEARCH_ROWS, read);
            return found(queries);
        }
        let tile = self.tile(xh, &queries, part);
        let mut read = 0;
        let mut halves = 0;
        let mut need: Vec<usize> = Vec::with_capacity(queries.len());
        for (at_row, &(dp, p)) in part.rows.iter().enumerate() {
            if let (Some(&(_, next)), false, None) =
                (part.rows.get(at_row + 1), self.half.is_empty(), &tile)
            {
                // The next row's bfloat16 copy is on its way while this one is measured:
                // a cluster's rows lie anywhere in the pool, so no hardware prefetcher
                // sees them coming.
                let next = next as usize;
                prefetch(self.half.block(next, next + 1));
            }
            need.clear();
            let mut spent_all = true;
            for (k, &(_, dc, b)) in queries.iter().enumerate() {
                // Rows come by ascending d(p, c): once past `dc + best` for every query,
                // no later row can be near enough.
                if !beyond(dp - dc, b.0, dc + dp + b.0) {
                    spent_all = false;
                }
                if !beyond((dc - dp).abs(), b.0, dc + dp + b.0) {
                    need.push(k);
                }
            }
            if spent_all {
                break;
            }
            if (tile.is_some() || !self.half.is_empty()) && !need.is_empty() {
                self.rule_out(xs, tile.as_ref(), &queries, p as usize, &mut need);
                halves += 1;
                if need.is_empty() {
                    continue;
                }
            }
            let v = pool.row(p as usize);
            read += need.len();
            for ks in need.chunks(4) {
                let d: [f64; 4] = if let &[a, b, c, e] = ks {
                    let q = |k: usize| xs[queries[k].0];
                    l2_x4(v, [q(a), q(b), q(c), q(e)])
                } else {
                    let mut d = [0.0; 4];
                    for (d, &k) in d.iter_mut().zip(ks) {
                        *d = l2(xs[queries[k].0], v);
                    }
                    d
                };
                for (&k, &d) in ks.iter().zip(&d) {
                    nearer(&mut queries[k].2, d, p as usize);
                }
            }
        }
        counters::add(&counters::SEARCH_ROWS, read);
        counters::add(&counters::HALF_ROWS, halves);
        found(queries)
    }
}

/// `best = (d, p)` where row `p` at `d` is nearer (the lower row on ties, and never a
/// bound's `usize::MAX`).
#[inline]
fn nearer(best: &mut (f64, usize), d: f64, p: usize) {
    let closer = match d.total_cmp(&best.0) {
        Ordering::Less => true,
        Ordering::Equal => best.1 != usize::MAX && p < best.1,
        Ordering::Greater => false,
    };
    if closer {
        *best = (d, p);
    }
}

/// `(query, distance, row)` for the queries that found a row.
fn found(queries: Vec<Query>) -> Vec<(usize, f64, usize)> {
    queries
        .into_iter()
        .filter(|q| q.2 .1 != usize::MAX)
        .map(|(j, _, b)| (j, b.0, b.1))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::{nearest_brute as brute, scenes_of};

    /// Six pool scenes of 40 rows (width 8) and three query rows from a seventh scene.
    fn with_scenes(test: impl FnOnce(&Matrix, &Scenes, &[&[f32]])) {
        let (d, len) = (8, 40);
        let data = scenes_of(6, len, d, 0.0);
        let pool = Matrix::new("pool", &data, 6 * len, d).unwrap();
        let scenes = Scenes::build(&pool).expect("the pool falls into scenes");
        let queries = scenes_of(7, 3, d, 0.0);
        let xs: Vec<&[f32]> = queries.chunks_exact(d).collect();
        test(&pool, &scenes, &xs);
    }

    #[test]
    fn every_query_gets_its_nearest_row_below_its_bound_or_none() {
        with_scenes(|pool, scenes, xs| {
            let want: Vec<(f64, usize)> = xs.iter().map(|x| brute(pool, x)).collect();
            let none = f64::NEG_INFINITY;
            let open = vec![f64::INFINITY; xs.len()];
            let got = scenes.nearest_below_many(pool, xs, &open, none, 0..usize::MAX);
            for (q, (g, w)) in got.iter().zip(&want).enumerate() {
                let (gd, _) = g.nearest.expect("a row below inf");
                assert_eq!((gd.to_bits(), g.exact), (w.0.to_bits(), true), "query {q}");
            }
            // Nothing is strictly nearer than the nearest row itself; a bound just above it
            // finds it.
            let tight: Vec<f64> = want.iter().map(|w| w.0).collect();
            let got = scenes.nearest_below_many(pool, xs, &tight, none, 0..usize::MAX);
            assert!(got.iter().all(|g| g.nearest.is_none() && g.exact));
            let above: Vec<f64> = want.iter().map(|w| w.0 * 1.001 + 1e-6).collect();
            let got = scenes.nearest_below_many(pool, xs, &above, none, 0..usize::MAX);
            for (g, w) in got.iter().zip(&want) {
                assert_eq!(g.nearest.map(|g| g.0.to_bits()), Some(w.0.to_bits()));
            }
        });
    }

    #[test]
    fn a_query_that_finds_a_row_nearer_than_the_cutoff_may_stop_there() {
        with_scenes(|pool, scenes, xs| {
            let open = vec![f64::INFINITY; xs.len()];
            for (g, x) in scenes
                .nearest_below_many(pool, xs, &open, f64::INFINITY, 0..usize::MAX)
                .iter()
                .zip(xs)
            {
                let (gd, _) = g.nearest.expect("a row below inf");
                // Not necessarily the nearest, but a real row's distance, at least the nearest's.
                assert!(gd >= brute(pool, x).0);
            }
        });
    }

    #[test]
    fn a_query_past_its_nearest_scenes_gets_the_nearest_row_of_the_others() {
        with_scenes(|pool, scenes, xs| {
            let open = vec![f64::INFINITY; xs.len()];
            for skip in [1, 2, 5] {
                let got = scenes.nearest_below_many(pool, xs, &open, f64::NEG_INFINITY, skip..9);
                for (q, (g, x)) in got.iter().zip(xs).enumerate() {
                    let mut by: Vec<&super::super::Scene> = scenes.list.iter().collect();
                    by.sort_by(|a, b| l2(x, &a.whole.centre).total_cmp(&l2(x, &b.whole.centre)));
                    let want = by[skip..]
                        .iter()
                        .flat_map(|s| &s.whole.rows)
                        .map(|&(_, p)| (l2(x, pool.row(p as usize)), p as usize))
                        .fold((f64::INFINITY, 0), |a, b| if b < a { b } else { a });
                    let got = g.nearest.map(|g| (g.0.to_bits(), g.1));
                    assert_eq!(
                        got,
                        Some((want.0.to_bits(), want.1)),
                        "skip {skip}, query {q}"
                    );
                }
            }
        });
    }

    #[test]
    fn a_query_limited_to_its_nearest_scene_gets_that_scenes_nearest_row() {
        with_scenes(|pool, scenes, _| {
            // Rows between the scenes: some lie nearest to a row of a scene whose centre
            // is not their nearest centre.
            let d = pool.cols();
            let noise = crate::test_data::noise(200 * d, 3);
            let queries: Vec<f32> = noise.iter().map(|v| 0.4 + 0.4 * v).collect();
            let xs: Vec<&[f32]> = queries.chunks_exact(d).collect();
            let open = vec![f64::INFINITY; xs.len()];
            let got = scenes.nearest_below_many(pool, &xs, &open, f64::NEG_INFINITY, 0..1);
            let mut elsewhere = 0;
            for (q, (g, x)) in got.iter().zip(&xs).enumerate() {
                let to = |s: &super::super::Scene| l2(x, &s.whole.centre);
                let near = scenes
                    .list
                    .iter()
                    .min_by(|a, b| to(a).total_cmp(&to(b)))
                    .unwrap();
                let want = near
                    .whole
                    .rows
                    .iter()
                    .map(|&(_, p)| (l2(x, pool.row(p as usize)), p as usize))
                    .fold((f64::INFINITY, 0), |a, b| if b < a { b } else { a });
                let got = g.nearest.map(|g| (g.0.to_bits(), g.1));
                assert_eq!(got, Some((want.0.to_bits(), want.1)), "query {q}");
                if !near
                    .whole
                    .rows
                    .iter()
                    .any(|r| r.1 as usize == brute(pool, x).1)
                {
                    elsewhere += 1;
                }
            }
            assert!(
                elsewhere > 0,
                "no query whose nearest row lies in another scene"
            );
        });
    }
}
