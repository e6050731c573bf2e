//! The dense path's pool pass through bfloat16 copies, where `halves` copies the
//! candidates: every candidate-pool dot product by the tile kernel of `bf16_dot` (twice
//! the f32 GEMM's speed here), kept per pair as a bound, and each candidate's distance
//! to the pool known only as an upper bound. The lazy loop of `dense` orders candidates
//! by those upper bounds and settles a candidate's exact pool distance only when it
//! reaches the top ([`PoolBounds::settle`]): the pool rows its bounds cannot rule out,
//! measured with [`l2`].
//!
//! Why bounds suffice: far from the pool, rows lie at nearly one distance from every
//! pool row, so bounds this loose (about 0.003 at width 1,280) do not find each row's
//! nearest; but the greedy loop needs exact values only for the candidates that come
//! near the top. On the bench's 2,000-row inputs (pool 200, 100 picks) that is ~10% of
//! them on rough frames, reading 2-5 pool rows each, and ~40% on smooth video, reading
//! ~70 each (`SELECTOR_RS_TRACE=1`).
//!
//! The bound per pair is `bf16_dot`'s: `d(x~, p~)² = |x~|² + |p~|² - 2 x~·p~` within
//! `lower_sq_of`'s slack (taken at the largest `|p~|²`), and `|d(x, p) - d(x~, p~)| <=
//! |x - x~| + |p - p~|` (the pool's error taken at its largest).

use rayon::prelude::*;

use crate::dense::{Targets, KERNEL_SLACK};
use crate::distance::bf16_dot;
use crate::distance::half_rows::{farther_sq, HalfRows};
use crate::distance::{l2, l2_x4};
use crate::matrix::{Blocks, Matrix};
use crate::validate::SelectError;
use crate::Cancel;

/// Candidates multiplied against every pool row at once: their copies (320 KiB at width
/// 1,280) stay in L2 while the pool streams past.
const BLOCK_ROWS: usize = 128;

/// Largest per-pair store, in bytes (4 per pair): beyond it the f32 GEMM pass of
/// `dense::nearest` computes exact distances instead (`PoolBounds::fits`).
const MAX_PAIR_BYTES: usize = 64 << 20;

/// The candidates' pool distances, bounded (see the module docs).
pub(crate) struct PoolBounds<'a> {
    pool: Targets<'a>,
    /// `|p~_j|² - 2 x~·p~_j` (f32) per pair: row `slot[i]`, one value per pool row.
    partial: Vec<f32>,
    /// Per candidate: its row in `partial` (`usize::MAX`: not bounded here).
    slot: Vec<usize>,
    /// Per bounded row: `|x~|²` less the slack of the pair's squared distance.
    base: Vec<f64>,
    /// Per bounded row: `|x - x~|` plus the largest `|p - p~|`.
    pad: Vec<f64>,
    /// Per bounded row: an upper bound on the distance [`l2`] gives to the nearest pool
    /// row.
    pub(crate) upper: Vec<f64>,
}

impl<'a> PoolBounds<'a> {
    /// Whether the per-pair store for `rows` candidates and `pool_rows` pool rows fits.
    pub(crate) fn fits(rows: usize, pool_rows: usize) -> bool {
        rows.saturating_mul(pool_rows).saturating_mul(4) <= MAX_PAIR_BYTES
    }

    /// Bounds for the candidates `rows` (of `half`, the copies of all candidates).
    ///
    /// # Errors
    /// [`SelectError::Cancelled`] when `cancel` says so (checked between slabs).
    pub(crate) fn build(
        half: &HalfRows,
        rows: &[usize],
        pool: &Matrix<'a>,
        cancel: Cancel<'_>,
    ) -> Result<Self, SelectError> {
        let (p, cols) = (pool.rows(), pool.cols());
        let pool_half = HalfRows::of(pool);
        let pool_pad = pool_half.err.iter().copied().fold(0.0, f64::max);
        let largest = pool_half.norm2.iter().copied().fold(0.0, f64::max);
        #[allow(clippy::cast_possible_truncation)] // rounding is in the slack below
        let norms: Vec<f32> = pool_half.norm2.iter().map(|&v| v as f32).collect();
        let mut partial = vec![0.0_f32; rows.len() * p];
        let mut lowest = vec![f32::INFINITY; rows.len()];
        let per_slab = BLOCK_ROWS * rayon::current_num_threads() * 4;
        for (s, (part, low)) in partial
            .chunks_mut(per_slab * p.max(1))
            .zip(lowest.chunks_mut(per_slab))
            .enumerate()
        {
            if cancel() {
                return Err(SelectError::Cancelled);
            }
            let first = s * per_slab;
            part.par_chunks_mut(BLOCK_ROWS * p.max(1))
                .zip(low.par_chunks_mut(BLOCK_ROWS))
                .enumerate()
                .for_each(|(b, (out, low))| {
                    let at = first + b * BLOCK_ROWS;
                    let queries: Vec<&[u16]> = rows[at..at + low.len()]
                        .iter()
                        .map(|&i| half.row(i))
                        .collect();
                    bounded_block(&queries, &pool_half, &norms, out, low);
                });
        }
        let mut slot = vec![usize::MAX; half.err.len()];
        let (mut base, mut pad, mut upper) = (Vec::new(), Vec::new(), Vec::new());
        for (k, (&i, &low)) in rows.iter().zip(&lowest).enumerate() {
            slot[i] = k;
            let x_norm2 = half.norm2[i];
            // The dot product's slack (`lower_sq_of`) and the f32 rounding of `|p~|²`
            // and of the subtraction, at most a few f32 ulps of `|x~|² + |p~|²`.
            let slack = x_norm2 + largest - bf16_dot::lower_sq_of(x_norm2, largest, 0.0, cols)
                + 4.0 * f64::from(f32::EPSILON) * (x_norm2 + largest);
            base.push(x_norm2 - slack);
            pad.push(half.err[i] + pool_pad);
            let top = (x_norm2 + f64::from(low) + slack).max(0.0).sqrt() * (1.0 + 1e-12);
            upper.push((top + half.err[i] + pool_pad) * (1.0 + KERNEL_SLACK));
        }
        Ok(Self {
            pool: Targets {
                data: pool.data(),
                rows: p,
            },
            partial,
            slot,
            base,
            pad,
            upper,
        })
    }

    /// Whether candidate `i` was bounded here (its pool distance is not yet exact).
    pub(crate) fn bounded(&self, i: usize) -> bool {
        self.slot[i] != usize::MAX
    }

    /// Candidate `i`'s distance to its nearest pool row by [`l2`], when that is at most
    /// `cutoff` (at least the row's upper bound, or a distance already known); otherwise
    /// some value above `cutoff`. And how many pool rows it measured.
    pub(crate) fn settle(&self, candidates: &Blocks<'_>, i: usize, cutoff: f64) -> (f64, usize) {
        let slot = self.slot[i];
        let p = self.pool.rows;
        let cols = candidates.cols();
        let x = candidates.row(i);
        let (base, pad) = (self.base[slot], self.pad[slot]);
        let values = &self.partial[slot * p..(slot + 1) * p];
        let row = |j: usize| &self.pool.data[j * cols..(j + 1) * cols];
        // A row whose distance is at most `nearest` has a bound at most `nearest` (plus
        // the kernel's rounding): `bound` tightens as rows are measured.
        let widen = 1.0 + 3.0 * KERNEL_SLACK;
        let mut bound = cutoff * widen;
        let mut nearest = f64::INFINITY;
        let mut measured = 0;
        // The row with the smallest bound first: far from the pool its distance is
        // usually within the bounds' slack of the nearest, and rules out most others.
        let Some(first) = (0..p).min_by(|&a, &b| values[a].total_cmp(&values[b])) else {
            return (nearest, measured);
        };
        if !farther_sq(base + f64::from(values[first]), pad, bound) {
            nearest = l2(x, row(first));
            measured += 1;
            bound = bound.min(nearest * widen);
        }
        // The others four at a time (`x` read once for four rows).
        let mut quad = [0_usize; 4];
        let mut open = 0;
        for (j, &v) in values.iter().enumerate() {
            if j == first || farther_sq(base + f64::from(v), pad, bound) {
                continue;
            }
            quad[open] = j;
            open += 1;
            if open == 4 {
                let d = l2_x4(x, quad.map(row));
                nearest = d.into_iter().fold(nearest, f64::min);
                bound = bound.min(nearest * widen);
                measured += 4;
                open = 0;
            }
        }
        for &j in &quad[..open] {
            nearest = nearest.min(l2(x, row(j)));
        }
        (nearest, measured + open)
    }
}

/// One block of candidates' copies `queries` against every pool row: `out` gets the
/// per-pair values, `low` each candidate's smallest.
fn bounded_block(
    queries: &[&[u16]],
    pool: &HalfRows,
    norms: &[f32],
    out: &mut [f32],
    low: &mut [f32],
) {
    let p = norms.len();
    if p == 0 {
        return;
    }
    bf16_dot::dots(queries, &pool.bits, pool.cols(), out);
    for (row, low) in out.chunks_exact_mut(p).zip(low) {
        let mut least = f32::INFINITY;
        for (v, &norm) in row.iter_mut().zip(norms) {
            *v = norm - 2.0 * *v;
            least = least.min(*v);
        }
        *low = least;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::noise;

    #[test]
    #[allow(clippy::float_cmp)] // the kernel's own distance, bit for bit
    fn settling_gives_the_kernels_nearest_pool_distance_under_any_cutoff_above_it() {
        // Unrelated rows lie at nearly one distance from each other (width 96), and
        // every third candidate has a pool row ~1e-4 away: distances the bounds cannot
        // order either way.
        let (n, p, cols) = (90, 40, 96);
        let c = noise(n * cols, 21);
        let mut pool_rows = noise(p * cols, 22);
        let tweak = noise(p * cols, 23);
        for j in 0..p / 3 {
            for v in 0..cols {
                pool_rows[j * cols + v] = c[3 * j * cols + v] + 1e-4 * tweak[j * cols + v];
            }
        }
        let cm = Matrix::new("candidates", &c, n, cols).unwrap();
        let pm = Matrix::new("pool", &pool_rows, p, cols).unwrap();
        let blocks = Blocks::from(&cm);
        let half = HalfRows::of_blocks(&blocks);
        let rows: Vec<usize> = (0..n).filter(|i| i % 5 != 4).collect();
        let bounds = PoolBounds::build(&half, &rows, &pm, &|| false).unwrap();
        let mut measured = 0;
        for (k, &i) in rows.iter().enumerate() {
            assert!(bounds.bounded(i));
            let want = pool_rows
                .chunks_exact(cols)
                .map(|t| l2(blocks.row(i), t))
                .fold(f64::INFINITY, f64::min);
            let upper = bounds.upper[k];
            // Loose where the squared form cancels (a near-duplicate: ~0.15 at norms
            // ~5.7), within ~1% where rows are far apart.
            assert!(upper >= want, "row {i}: {upper} vs {want}");
            assert!(upper < want * 1.01 + 0.2, "row {i}: {upper} vs {want}");
            let (got, read) = bounds.settle(&blocks, i, upper);
            assert_eq!(got, want, "row {i}");
            measured += read;
            assert_eq!(
                bounds.settle(&blocks, i, want).0,
                want,
                "row {i} at its own distance"
            );
            let below = want * 0.9;
            assert!(bounds.settle(&blocks, i, below).0 > below, "row {i} below");
        }
        assert!((0..n).filter(|i| i % 5 == 4).all(|i| !bounds.bounded(i)));
        assert!(measured < rows.len() * p, "the bounds ruled nothing out");
    }

    #[test]
    fn building_the_bounds_stops_when_cancelled() {
        let c = noise(8 * 4, 1);
        let cm = Matrix::new("candidates", &c, 8, 4).unwrap();
        let pm = Matrix::new("pool", &c, 8, 4).unwrap();
        let half = HalfRows::of_blocks(&Blocks::from(&cm));
        let rows: Vec<usize> = (0..8).collect();
        assert!(matches!(
            PoolBounds::build(&half, &rows, &pm, &|| false).map(|_| ()),
            Ok(())
        ));
        assert!(matches!(
            PoolBounds::build(&half, &rows, &pm, &|| true),
            Err(SelectError::Cancelled)
        ));
    }
}
