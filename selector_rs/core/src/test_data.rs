//! Deterministic test rows, so the unit tests need no RNG crate.

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
