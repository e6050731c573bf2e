//! The bound for a whole cluster at once: every open query against every row of the
//! cluster by one tile of dot products, in int8 where the CPU has byte dot products
//! (`int8_dot`, the pool's rows as offsets from their cluster's centre: `quant`), else
//! in bfloat16 (`bf16_dot`).
//!
//! On rough footage the triangle bounds of `batch` rule out almost no pair of a query
//! and a row of a cluster the query cannot rule out as a whole (measured at 100k rough
//! rows: 12.0 M such pairs, 11.9 M left after the row bounds), so the pairs were
//! measured in bfloat16 one row at a time, each row read from wherever the pool lies
//! and widened for every four queries. A cluster's rows are consecutive pool rows, so
//! its copy is one contiguous block (80 KB in bfloat16 at width 1280, 40 KB in int8)
//! that the tile reads once. The int8 copy halves what the searches read: at target2
//! (1M rough candidates, 100k pool rows, seed 466523635; core alone, one run each)
//! searches 44.1 -> 40.0 s, the selection 70.2 -> 67.7 s, with 19% more rows left for
//! f32 (its bound is a little looser).
//!
//! In int8 the tile settles the cluster on its own (`near_pairs`): a pair whose bound
//! does not rule it out is measured at once, nearest bound first, instead of the rows
//! being walked one by one with their triangle bounds, which rule out next to nothing
//! once the tile has bounded every pair. At 300,000 rough candidates against 100,000
//! pool rows (seed 466523635, 300 picks, one thread each, run side by side, then the
//! cores swapped) the searches took 12.4 and 14.5 s against 13.2 and 15.1 s.

use super::batch::Query;
use super::{Cluster, Scenes};
use crate::distance::bf16;
use crate::distance::bf16_dot::{self, HalfRow};
use crate::distance::half_rows::farther_sq;
use crate::distance::int8_dot::{self, QuantRow};
use crate::pool::beyond;

/// The queries' copies for the tiles: in int8 where the pool has an int8 copy, else in
/// bfloat16 where the kernel runs (both empty otherwise: `batch` then bounds row by
/// row).
#[derive(Default)]
pub(super) struct Copies {
    half: Vec<HalfRow>,
    quant: Vec<QuantRow>,
}

/// Lower bounds on the distances of a cluster's rows to the queries that cannot rule
/// it out, as `half_rows::farther_sq` takes them.
pub(super) struct Tile {
    /// The cluster's first pool row, and its row count.
    first: usize,
    rows: usize,
    /// `low[k * rows + (p - first)]`: `(sq, pad)` for query `k` (of the cluster's
    /// queries) and row `p`.
    low: Vec<(f64, f64)>,
}

impl Tile {
    /// Whether pool row `p` is certainly farther than `bound` from query `k`.
    #[inline]
    pub(super) fn rules_out(&self, k: usize, p: usize, bound: f64) -> bool {
        let (sq, pad) = self.low[k * self.rows + (p - self.first)];
        farther_sq(sq, pad, bound)
    }
}

/// The copies of `xs` the tiles of `scenes` need.
pub(super) fn copies(scenes: &Scenes, xs: &[&[f32]]) -> Copies {
    if scenes.quant.is_some() {
        return Copies {
            quant: xs.iter().map(|x| QuantRow::new(x)).collect(),
            ..Copies::default()
        };
    }
    if scenes.half.is_empty() || !bf16_dot::fast() {
        return Copies::default();
    }
    Copies {
        half: xs.iter().map(|x| HalfRow::new(x)).collect(),
        ..Copies::default()
    }
}

impl Scenes {
    /// Where the pool has an int8 copy: the pairs `(query, sq, row)` (an index into
    /// `queries`, a pool row of `part` and the int8 bound on their squared distance) that
    /// the bound cannot show farther than the query's bound, by query and then nearest
    /// bound first; `None` without the int8 copy. Every other pair is settled by the tile
    /// alone, without a look at the rows one by one.
    pub(super) fn near_pairs(
        &self,
        xc: &Copies,
        queries: &[Query],
        part: &Cluster,
    ) -> Option<Vec<(usize, f64, usize)>> {
        let quant = self.quant.as_ref()?;
        let first = part.rows.iter().map(|r| r.1).min()? as usize;
        let rows = part.rows.len();
        debug_assert!(part.rows.iter().all(|r| (r.1 as usize) < first + rows));
        let qs: Vec<&[u8]> = queries
            .iter()
            .map(|q| xc.quant[q.0].bytes.as_slice())
            .collect();
        let cols = qs.first()?.len();
        let mut dots = vec![0; qs.len() * rows];
        int8_dot::dots(&qs, quant.block(first, first + rows), cols, &mut dots);
        let mut near = Vec::new();
        for (k, (q, dots)) in queries.iter().zip(dots.chunks_exact(rows)).enumerate() {
            let x = &xc.quant[q.0];
            for (r, &d) in dots.iter().enumerate() {
                let sq = quant.lower_sq(x, first + r, d, q.1);
                if !farther_sq(sq, 0.0, q.2 .0) {
                    near.push((k, sq, first + r));
                }
            }
        }
        near.sort_unstable_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
        Some(near)
    }
}

impl Scenes {
    /// The bfloat16 tile of `part` for `queries`, `None` without bfloat16 copies.
    pub(super) fn tile(&self, xc: &Copies, queries: &[Query], part: &Cluster) -> Option<Tile> {
        let first = part.rows.iter().map(|r| r.1).min()? as usize;
        let rows = part.rows.len();
        debug_assert!(part.rows.iter().all(|r| (r.1 as usize) < first + rows));
        let mut low = Vec::with_capacity(queries.len() * rows);
        let x0 = xc.half.first()?;
        let cols = x0.bits.len();
        let qs: Vec<&[u16]> = queries
            .iter()
            .map(|q| xc.half[q.0].bits.as_slice())
            .collect();
        let mut dots = vec![0.0; qs.len() * rows];
        bf16_dot::dots(&qs, self.half.block(first, first + rows), cols, &mut dots);
        for (q, dots) in queries.iter().zip(dots.chunks_exact(rows)) {
            let x = &xc.half[q.0];
            low.extend(dots.iter().enumerate().map(|(r, &d)| {
                let p = first + r;
                let sq = bf16_dot::lower_sq(x, self.half.norm2[p], d, cols);
                (sq, x.err + self.half.err[p])
            }));
        }
        Some(Tile { first, rows, low })
    }
}

impl Scenes {
    /// Drops from `need` (indices into `queries`) the queries that pool row `p` is
    /// certainly no nearer to than their bound, by a bfloat16 bound: from `tile` where
    /// there is one, else by `d(x, p) >= d(x, p~) - |p - p~|` row by row.
    pub(super) fn rule_out(
        &self,
        xs: &[&[f32]],
        tile: Option<&Tile>,
        queries: &[Query],
        p: usize,
        need: &mut Vec<usize>,
    ) {
        if let Some(t) = tile {
            need.retain(|&k| !t.rules_out(k, p, queries[k].2 .0));
            return;
        }
        let (h, err) = (self.half.block(p, p + 1), self.half.err[p]);
        let mut kept = 0;
        for at in (0..need.len()).step_by(4) {
            let ks = &need[at..(at + 4).min(need.len())];
            let approx: [f64; 4] = if let &[a, b, c, e] = ks {
                let q = |k: usize| xs[queries[k].0];
                bf16::l2_bf16_x4([q(a), q(b), q(c), q(e)], h)
            } else {
                let mut d = [0.0; 4];
                for (d, &k) in d.iter_mut().zip(ks) {
                    *d = bf16::l2_bf16(xs[queries[k].0], h);
                }
                d
            };
            for (i, &a) in approx.iter().enumerate().take(ks.len()) {
                let k = need[at + i];
                let b = queries[k].2 .0;
                if !beyond(a - err, b, a + err + b) {
                    need[kept] = k;
                    kept += 1;
                }
            }
        }
        need.truncate(kept);
    }
}
