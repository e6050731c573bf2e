//! The bfloat16 bound for a whole cluster at once: every open query against every row
//! of the cluster by one tile of dot products (`bf16_dot`), where the CPU has them.
//!
//! On rough footage the triangle bounds of `batch` rule out almost no pair of a query
//! and a row of a cluster the query cannot rule out as a whole (measured at 100k rough
//! rows: 12.0 M such pairs, 11.9 M left after the row bounds), so the pairs were
//! measured in bfloat16 one row at a time, each row read from wherever the pool lies
//! and widened for every four queries. A cluster's rows are consecutive pool rows, so
//! its bfloat16 copy is one contiguous block (80 KB at width 1280) that the tile reads
//! once, at the rate of the CPU's bfloat16 dot products.

use super::batch::Query;
use super::{Cluster, Scenes};
use crate::distance::bf16;
use crate::distance::bf16_dot::{self, HalfRow};
use crate::pool::beyond;

/// The dot products of a cluster's rows with the queries that cannot rule it out.
pub(super) struct Tile {
    /// The cluster's first pool row, and its row count.
    first: usize,
    rows: usize,
    /// `dots[k * rows + (p - first)]`: query `k` (of the cluster's queries), row `p`.
    dots: Vec<f32>,
}

impl Tile {
    /// Whether pool row `p` is certainly farther than `bound` from query `k` (bfloat16
    /// copy `x`), by its dot product in the tile (`HalfRows::farther`).
    #[inline]
    pub(super) fn rules_out(
        &self,
        scenes: &Scenes,
        x: &HalfRow,
        k: usize,
        p: usize,
        bound: f64,
    ) -> bool {
        let dot = self.dots[k * self.rows + (p - self.first)];
        scenes.half.farther(x, p, dot, bound)
    }
}

/// The queries' bfloat16 copies, where the tile kernel runs and the pool has a
/// bfloat16 copy (empty otherwise: `batch` then bounds row by row).
pub(super) fn halves(scenes: &Scenes, xs: &[&[f32]]) -> Vec<HalfRow> {
    if scenes.half.is_empty() || !bf16_dot::fast() {
        return Vec::new();
    }
    xs.iter().map(|x| HalfRow::new(x)).collect()
}

impl Scenes {
    /// The tile of `part` for the queries `open` (indices into `xh`), `None` without
    /// bfloat16 copies (`xh` empty).
    pub(super) fn tile(&self, xh: &[HalfRow], open: &[usize], part: &Cluster) -> Option<Tile> {
        let x0 = xh.first()?;
        let cols = x0.bits.len();
        let first = part.rows.iter().map(|r| r.1).min()? as usize;
        let rows = part.rows.len();
        debug_assert!(part.rows.iter().all(|r| (r.1 as usize) < first + rows));
        let block = self.half.block(first, first + rows);
        let qs: Vec<&[u16]> = open.iter().map(|&j| xh[j].bits.as_slice()).collect();
        let mut dots = vec![0.0; qs.len() * rows];
        bf16_dot::dots(&qs, block, cols, &mut dots);
        Some(Tile { first, rows, dots })
    }
}

impl Scenes {
    /// Drops from `need` (indices into `queries`) the queries that pool row `p` is
    /// certainly no nearer to than their bound, by a bfloat16 bound: from `tile` where
    /// there is one, else by `d(x, p) >= d(x, p~) - |p - p~|` row by row.
    pub(super) fn rule_out(
        &self,
        (xs, xh): (&[&[f32]], &[HalfRow]),
        tile: Option<&Tile>,
        queries: &[Query],
        p: usize,
        need: &mut Vec<usize>,
    ) {
        if let Some(t) = tile {
            need.retain(|&k| !t.rules_out(self, &xh[queries[k].0], k, p, queries[k].2 .0));
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
