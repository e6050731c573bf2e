//! A bfloat16 copy of rows, for a cheap lower bound on the f32 distance: `p~` keeps the
//! top 16 bits of each value of `p` (rounded to nearest), and `d(x, p) >= d(x, p~) -
//! |p - p~|` (the triangle inequality), with `|p - p~|` stored per row. Reading half
//! the bytes, a search can rule out most rows before it reads them in f32.

/// `v` rounded to the nearest bfloat16 (ties to even), as its bits.
#[must_use]
pub(crate) fn to_bf16(v: f32) -> u16 {
    let bits = v.to_bits();
    let round = 0x7fff + ((bits >> 16) & 1);
    #[allow(clippy::cast_possible_truncation)] // the top 16 bits
    let top = (bits.wrapping_add(round) >> 16) as u16;
    top
}

/// The f32 value of bfloat16 bits (exact).
#[must_use]
pub(crate) fn from_bf16(b: u16) -> f32 {
    f32::from_bits(u32::from(b) << 16)
}

/// Whether [`l2_bf16`] runs a vector kernel here (otherwise a bound costs as much as
/// the distance itself, and callers should not use one).
#[must_use]
pub(crate) fn fast() -> bool {
    super::kernel_name() == "avx512"
}

/// The distance from `x` to the row whose bfloat16 bits are `p`, in f32 summed as the
/// f32 kernel sums (its rounding is as small).
#[must_use]
pub(crate) fn l2_bf16(x: &[f32], p: &[u16]) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if fast() && x.len() == p.len() {
        // SAFETY: the avx512 kernel is installed only on CPUs with avx512f and fma.
        return f64::from(unsafe { avx512_bf16(x, p) }).sqrt();
    }
    let sum: f32 = x
        .iter()
        .zip(p)
        .map(|(&a, &b)| {
            let t = a - from_bf16(b);
            t * t
        })
        .sum();
    f64::from(sum).sqrt()
}

/// [`l2_bf16`] from each of four rows `x` to the row `p`, computed together (the
/// bfloat16 row is widened once for the four); the same values as one at a time.
#[must_use]
pub(crate) fn l2_bf16_x4(x: [&[f32]; 4], p: &[u16]) -> [f64; 4] {
    #[cfg(target_arch = "x86_64")]
    if fast() && x.iter().all(|x| x.len() == p.len()) {
        // SAFETY: as in `l2_bf16`.
        return unsafe { avx512_bf16_x4(x, p) }.map(|s| f64::from(s).sqrt());
    }
    x.map(|x| l2_bf16(x, p))
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
#[allow(clippy::needless_range_loop)] // acc[j][k]: two indices, as in the single kernel
fn avx512_bf16_x4(x: [&[f32]; 4], p: &[u16]) -> [f32; 4] {
    use std::arch::x86_64::{
        __m256i, _mm256_add_ps, _mm256_loadu_si256, _mm256_maskz_loadu_epi16, _mm512_add_ps,
        _mm512_castps512_ps256, _mm512_castsi512_ps, _mm512_cvtepu16_epi32, _mm512_extractf32x8_ps,
        _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps, _mm512_setzero_ps,
        _mm512_slli_epi32, _mm512_sub_ps,
    };
    let len = p.len();
    let full = len - len % 64;
    let pp = p.as_ptr();
    let px = x.map(<[f32]>::as_ptr);
    let mut acc = [[_mm512_setzero_ps(); 4]; 4];
    let widen = |h: __m256i| _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)));
    let mut at = 0;
    while at < full {
        for k in 0..4 {
            // SAFETY: at + 64 <= full <= every length.
            let b = widen(unsafe { _mm256_loadu_si256(pp.add(at + 16 * k).cast()) });
            for j in 0..4 {
                // SAFETY: as above.
                let a = unsafe { _mm512_loadu_ps(px[j].add(at + 16 * k)) };
                let diff = _mm512_sub_ps(a, b);
                acc[j][k] = _mm512_fmadd_ps(diff, diff, acc[j][k]);
            }
        }
        at += 64;
    }
    if full < len {
        for k in 0..4 {
            let mask = match (len - full).saturating_sub(16 * k) {
                r if r >= 16 => u16::MAX,
                r => (1u16 << r) - 1,
            };
            // SAFETY: only enabled lanes are read, and they lie inside every row.
            let b = widen(unsafe { _mm256_maskz_loadu_epi16(mask, pp.add(full + 16 * k).cast()) });
            for j in 0..4 {
                // SAFETY: as above.
                let a = unsafe { _mm512_maskz_loadu_ps(mask, px[j].add(full + 16 * k)) };
                let diff = _mm512_sub_ps(a, b);
                acc[j][k] = _mm512_fmadd_ps(diff, diff, acc[j][k]);
            }
        }
    }
    acc.map(|a| {
        let sum = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
        let sum = _mm256_add_ps(
            _mm512_castps512_ps256(sum),
            _mm512_extractf32x8_ps::<1>(sum),
        );
        super::x86::reduce8(sum)
    })
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
fn avx512_bf16(x: &[f32], p: &[u16]) -> f32 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_ps, _mm256_loadu_si256, _mm256_maskz_loadu_epi16, _mm512_add_ps,
        _mm512_castps512_ps256, _mm512_castsi512_ps, _mm512_cvtepu16_epi32, _mm512_extractf32x8_ps,
        _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps, _mm512_setzero_ps,
        _mm512_slli_epi32, _mm512_sub_ps,
    };
    let len = x.len();
    let full = len - len % 64;
    let (px, pp) = (x.as_ptr(), p.as_ptr());
    let mut acc = [_mm512_setzero_ps(); 4];
    let widen = |h: __m256i| _mm512_castsi512_ps(_mm512_slli_epi32::<16>(_mm512_cvtepu16_epi32(h)));
    let mut at = 0;
    while at < full {
        for (k, acc) in acc.iter_mut().enumerate() {
            // SAFETY: at + 64 <= full <= both lengths.
            let (a, b) = unsafe {
                (
                    _mm512_loadu_ps(px.add(at + 16 * k)),
                    _mm256_loadu_si256(pp.add(at + 16 * k).cast()),
                )
            };
            let diff = _mm512_sub_ps(a, widen(b));
            *acc = _mm512_fmadd_ps(diff, diff, *acc);
        }
        at += 64;
    }
    if full < len {
        for (k, acc) in acc.iter_mut().enumerate() {
            let mask = match (len - full).saturating_sub(16 * k) {
                r if r >= 16 => u16::MAX,
                r => (1u16 << r) - 1,
            };
            // SAFETY: only enabled lanes are read, and they lie inside both slices.
            let (a, b) = unsafe {
                (
                    _mm512_maskz_loadu_ps(mask, px.add(full + 16 * k)),
                    _mm256_maskz_loadu_epi16(mask, pp.add(full + 16 * k).cast()),
                )
            };
            let diff = _mm512_sub_ps(a, widen(b));
            *acc = _mm512_fmadd_ps(diff, diff, *acc);
        }
    }
    let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
    let sum = _mm256_add_ps(
        _mm512_castps512_ps256(sum),
        _mm512_extractf32x8_ps::<1>(sum),
    );
    super::x86::reduce8(sum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::l2;

    #[test]
    #[allow(clippy::cast_possible_truncation)] // test rows
    fn the_bfloat16_bound_never_exceeds_the_distance() {
        for len in (0..150).chain([1280, 1283]) {
            #[allow(clippy::cast_precision_loss)]
            let row = |s: f32| -> Vec<f32> { (0..len).map(|i| (i as f32 * s).sin()).collect() };
            let (x, p) = (row(0.013), row(0.029));
            let pb: Vec<u16> = p.iter().map(|&v| to_bf16(v)).collect();
            let err = p
                .iter()
                .zip(&pb)
                .map(|(&a, &b)| (f64::from(a) - f64::from(from_bf16(b))).powi(2))
                .sum::<f64>()
                .sqrt();
            let approx = l2_bf16(&x, &pb);
            let exact = l2(&x, &p);
            assert!(
                approx - err <= exact + 1e-5 * (exact + 1.0),
                "{len}: {approx} {err} {exact}"
            );
            assert!(
                (approx - exact).abs() <= err + 1e-5 * (exact + 1.0),
                "{len}"
            );
        }
        let p: Vec<f32> = (0..1283)
            .map(|i: i32| (f64::from(i) * 0.07).cos() as f32)
            .collect();
        let pb: Vec<u16> = p.iter().map(|&v| to_bf16(v)).collect();
        for len in [0, 5, 64, 100, 1280, 1283] {
            let xs: Vec<Vec<f32>> = (1..5)
                .map(|s| {
                    (0..len)
                        .map(|i: usize| {
                            (f64::from(u32::try_from(i * s).unwrap()) * 0.01).sin() as f32
                        })
                        .collect()
                })
                .collect();
            let h = &pb[..len];
            let got = l2_bf16_x4([&xs[0], &xs[1], &xs[2], &xs[3]], h);
            for (g, x) in got.iter().zip(&xs) {
                assert_eq!(g.to_bits(), l2_bf16(x, h).to_bits(), "{len}");
            }
        }
        assert_eq!(to_bf16(1.0), 0x3f80);
        assert_eq!(from_bf16(to_bf16(-2.5)).to_bits(), (-2.5_f32).to_bits());
    }
}
