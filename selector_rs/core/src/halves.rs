//! Candidates in bfloat16 for the lazy greedy loop of `dense`, where the CPU multiplies
//! bfloat16 (AVX-512 BF16): a candidate is compared with the picks it has not seen
//! through the copies first, `d(x, t) >= d(x~, t~) - |x - x~| - |t - t~|` (`bf16_dot`),
//! each copy lying about 0.1% of its norm from its row, and only a pick that bound
//! cannot rule out is measured in f32. So the loop reads half the bytes per pair and
//! skips most f32 distances, and the distances it keeps are exactly what [`l2`] gives.
//!
//! The pool pass bounds through the same copies (`pool_bounds`), but there a bound is
//! not enough to find each row's nearest: far from the pool, high-dimensional rows lie
//! at nearly one distance from every pool row (1,000 frames of one scene, 100 pool rows
//! of another: all within 0.008 of each other at 1.34). So that pass keeps upper bounds
//! only, and the lazy loop settles the exact pool distance of the few rows that reach
//! the top.

use crate::distance::bf16_dot;
use crate::distance::half_rows::{farther_sq, HalfRows};
use crate::distance::l2;
use crate::greedy::Pick;
use crate::matrix::Blocks;

/// Picks bounded per call of the dot kernel in [`HalfRows::fold`].
const FOLD_PICKS: usize = 8;

/// Largest bfloat16 copy made, in bytes: the copy is half the candidates' own size, and
/// selections of a million rows keep their extra memory within 30% of that (issue 11), so
/// large inputs fold in f32 instead; below it (26,000 rows at width 1280) the copy is a
/// few tens of MiB at most.
const MAX_COPY_BYTES: usize = 64 << 20;

/// Whether to fold through bfloat16 copies of `candidates`: the CPU runs the kernels at
/// speed and the copy is no larger than [`MAX_COPY_BYTES`].
pub(crate) fn worth_copying(candidates: &Blocks<'_>) -> bool {
    let bytes = candidates
        .rows()
        .saturating_mul(candidates.cols())
        .saturating_mul(2);
    bf16_dot::fast() && bytes <= MAX_COPY_BYTES
}

impl HalfRows {
    /// Whether row `i` of these copies and row `j` of `other`, whose copies have the dot
    /// product `dot`, are certainly farther apart than `bound`.
    #[inline]
    fn farther(&self, i: usize, other: &Self, j: usize, dot: f32, bound: f64) -> bool {
        let sq = bf16_dot::lower_sq_of(self.norm2[i], other.norm2[j], dot, self.cols());
        farther_sq(sq, self.err[i] + other.err[j], bound)
    }

    /// `start` lowered by the distances from candidate `x` to `picks` (rows of
    /// `candidates`, whose copies these are), in pick order, until it falls below
    /// `floor`; how many picks it saw, and how many of them it measured (a pick whose
    /// bound rules it out is not).
    pub(crate) fn fold(
        &self,
        candidates: &Blocks<'_>,
        x: usize,
        picks: &[Pick],
        start: f64,
        floor: f64,
    ) -> (f64, usize, usize) {
        let (mut nearest, mut dots, mut measured) = (start, [0.0_f32; FOLD_PICKS], 0);
        let row = candidates.row(x);
        for (k, chunk) in picks.chunks(FOLD_PICKS).enumerate() {
            if nearest < floor {
                return (nearest, k * FOLD_PICKS, measured);
            }
            let mut rows: [&[u16]; FOLD_PICKS] = [&[]; FOLD_PICKS];
            for (r, p) in rows.iter_mut().zip(chunk) {
                *r = self.row(p.index);
            }
            bf16_dot::dots_rows(self.row(x), &rows[..chunk.len()], &mut dots);
            for (p, &dot) in chunk.iter().zip(&dots) {
                if !self.farther(x, self, p.index, dot, nearest) {
                    nearest = nearest.min(l2(row, candidates.row(p.index)));
                    measured += 1;
                }
            }
        }
        (nearest, picks.len(), measured)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;
    use crate::test_data::noise;

    #[test]
    #[allow(clippy::float_cmp)] // the kernel's own distance, bit for bit
    fn a_fold_measures_every_pick_its_bound_cannot_rule_out() {
        // Rows in pairs ~1e-3 apart (far inside a bfloat16 copy's error) among unrelated
        // ones: the fold must measure the twin, and may skip the rest.
        let (n, cols) = (60, 96);
        let base = noise(n / 2 * cols, 5);
        let tweak = noise(n / 2 * cols, 6);
        let rows: Vec<f32> = base
            .chunks_exact(cols)
            .zip(tweak.chunks_exact(cols))
            .flat_map(|(b, t)| {
                let twin: Vec<f32> = b.iter().zip(t).map(|(b, t)| b + 1e-4 * t).collect();
                [b.to_vec(), twin].concat()
            })
            .collect();
        let m = Matrix::new("candidates", &rows, n, cols).unwrap();
        let blocks = Blocks::from(&m);
        let half = HalfRows::of_blocks(&blocks);
        let picks: Vec<Pick> = (0..n)
            .filter(|i| i % 3 != 0)
            .map(|index| Pick {
                index,
                distance: 0.0,
            })
            .collect();
        let mut skipped = 0;
        for x in (0..n).filter(|i| i % 3 == 0) {
            let want = picks
                .iter()
                .map(|p| l2(blocks.row(x), blocks.row(p.index)))
                .fold(f64::INFINITY, f64::min);
            let (got, seen, measured) =
                half.fold(&blocks, x, &picks, f64::INFINITY, f64::NEG_INFINITY);
            assert_eq!(got, want, "row {x}");
            assert_eq!(seen, picks.len());
            skipped += picks.len() - measured;
            // With a floor above every distance, the fold stops at the first chunk.
            let (_, seen, _) = half.fold(&blocks, x, &picks, f64::INFINITY, 1e30);
            assert_eq!(seen, FOLD_PICKS);
        }
        assert!(skipped > 0, "the bound ruled nothing out");
    }
}
