//! Deterministic test rows, so the unit tests need no RNG crate.

use crate::distance::l2;
use crate::matrix::Matrix;

/// `len` values in [-1, 1) from an xorshift stream seeded by `seed`: rows that do not
/// group (every row its own leader).
pub(crate) fn noise(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            #[allow(clippy::cast_precision_loss)]
            let v = (s >> 40) as f32 / (1u64 << 23) as f32;
            v * 2.0 - 1.0
        })
        .collect()
}

/// `scenes` runs of `len` rows around a point of their own (one coordinate per scene), with a
/// wobble shifted by `phase`: far apart between scenes, close within.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn scenes_of(scenes: usize, len: usize, d: usize, phase: f32) -> Vec<f32> {
    (0..scenes * len * d)
        .map(|k| {
            let (i, j) = (k / d, k % d);
            let centre = if j == (i / len) % d { 1.0 } else { 0.0 };
            centre + 0.05 * ((i * 7 + j * 3) as f32 * 0.37 + phase).sin()
        })
        .collect()
}

/// The nearest pool row to `x` and its distance, by trying every row.
pub(crate) fn nearest_brute(pool: &Matrix<'_>, x: &[f32]) -> (f64, usize) {
    (0..pool.rows())
        .map(|p| (l2(x, pool.row(p)), p))
        .fold(
            (f64::INFINITY, usize::MAX),
            |a, b| if b.0 < a.0 { b } else { a },
        )
}
