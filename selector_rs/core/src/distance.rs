//! The one distance kernel: Euclidean distance between two f32 rows.
//!
//! Differences are squared and summed in f32 across 64 independent lanes (so the loop
//! vectorises and each lane sums only `d / 64` terms), rather than via
//! `|a|² + |b|² - 2a·b`: that expansion cancels catastrophically for nearby points,
//! exactly the distances that decide the close calls in farthest-point selection.
//! For unit-norm rows of width 1280 the result is within a few 1e-7 of the float64
//! value. The widest instruction set the CPU has (AVX-512, AVX2+FMA, or baseline
//! SSE2) is picked once per process, at first use, and every call goes through it, so a
//! distance does not depend on which thread or which call site computed it.

use std::sync::OnceLock;

pub(crate) mod bf16;
pub(crate) mod bf16_dot;
pub(crate) mod half_rows;
pub(crate) mod int8_dot;
mod many;
pub(crate) mod quant_rows;
pub(crate) use many::{l2_x4, prefetch};

const LANES: usize = 64;

type Kernel = fn(&[f32], &[f32]) -> f32;

// Inlined into each `target_feature` wrapper, so that it is compiled for that ISA.
#[allow(clippy::inline_always)]
#[inline(always)]
fn body<const FMA: bool>(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0_f32; LANES];
    let mut xs = a.chunks_exact(LANES);
    let mut ys = b.chunks_exact(LANES);
    for (x, y) in (&mut xs).zip(&mut ys) {
        for k in 0..LANES {
            let t = x[k] - y[k];
            acc[k] = if FMA {
                t.mul_add(t, acc[k])
            } else {
                acc[k] + t * t
            };
        }
    }
    for (k, (&x, &y)) in xs.remainder().iter().zip(ys.remainder()).enumerate() {
        let t = x - y;
        acc[k] = if FMA {
            t.mul_add(t, acc[k])
        } else {
            acc[k] + t * t
        };
    }
    // Pairwise reduction in a fixed order.
    let mut width = LANES / 2;
    while width > 0 {
        for k in 0..width {
            acc[k] += acc[k + width];
        }
        width /= 2;
    }
    acc[0]
}

fn portable(a: &[f32], b: &[f32]) -> f32 {
    body::<false>(a, b)
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    // Explicit intrinsics: LLVM's auto-vectorisation of `body` came out as scattered
    // 128-bit pieces with spills, ~10x slower. These compute exactly what `body` does
    // (lane k of the 64 accumulates elements k, k + 64, ...; the same pairwise
    // reduction), so every kernel gives bit-identical distances.
    use std::arch::x86_64::{
        __m256, _mm256_add_ps, _mm256_castps256_ps128, _mm256_extractf128_ps, _mm256_fmadd_ps,
        _mm256_loadu_ps, _mm256_setzero_ps, _mm256_sub_ps, _mm512_add_ps, _mm512_castps512_ps256,
        _mm512_extractf32x8_ps, _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
        _mm512_setzero_ps, _mm512_sub_ps, _mm_add_ps, _mm_add_ss, _mm_cvtss_f32, _mm_movehl_ps,
        _mm_shuffle_ps,
    };

    use super::LANES;

    /// The last 16 + 8 + 4 + 2 + 1 steps of the pairwise reduction, from 8 lanes.
    #[target_feature(enable = "avx2,fma")]
    pub(super) fn reduce8(v: __m256) -> f32 {
        let v = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
        let v = _mm_add_ps(v, _mm_movehl_ps(v, v));
        _mm_cvtss_f32(_mm_add_ss(v, _mm_shuffle_ps::<1>(v, v)))
    }

    #[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
    fn avx512_impl(a: &[f32], b: &[f32]) -> f32 {
        let len = a.len().min(b.len());
        let full = len - len % LANES;
        let (pa, pb) = (a.as_ptr(), b.as_ptr());
        let mut acc = [_mm512_setzero_ps(); LANES / 16];
        let mut at = 0;
        while at < full {
            for (k, acc) in acc.iter_mut().enumerate() {
                // SAFETY: at + LANES <= full <= both lengths.
                let diff = unsafe {
                    _mm512_sub_ps(
                        _mm512_loadu_ps(pa.add(at + 16 * k)),
                        _mm512_loadu_ps(pb.add(at + 16 * k)),
                    )
                };
                *acc = _mm512_fmadd_ps(diff, diff, *acc);
            }
            at += LANES;
        }
        if full < len {
            // Masked loads read nothing past the end and give zeros, and
            // fma(0, 0, acc) == acc, so the tail needs no scalar loop.
            for (k, acc) in acc.iter_mut().enumerate() {
                let mask = match (len - full).saturating_sub(16 * k) {
                    r if r >= 16 => u16::MAX,
                    r => (1u16 << r) - 1,
                };
                // SAFETY: only enabled lanes are read, and they lie inside both slices.
                let diff = unsafe {
                    _mm512_sub_ps(
                        _mm512_maskz_loadu_ps(mask, pa.add(full + 16 * k)),
                        _mm512_maskz_loadu_ps(mask, pb.add(full + 16 * k)),
                    )
                };
                *acc = _mm512_fmadd_ps(diff, diff, *acc);
            }
        }
        // Pairwise, as in `body`: lanes k and k + 32, then k and k + 16, ...
        let sum = _mm512_add_ps(_mm512_add_ps(acc[0], acc[2]), _mm512_add_ps(acc[1], acc[3]));
        let sum = _mm256_add_ps(
            _mm512_castps512_ps256(sum),
            _mm512_extractf32x8_ps::<1>(sum),
        );
        reduce8(sum)
    }

    #[target_feature(enable = "avx2,fma")]
    fn avx2_impl(a: &[f32], b: &[f32]) -> f32 {
        let len = a.len().min(b.len());
        let mut acc = [_mm256_setzero_ps(); LANES / 8];
        let full = len - len % LANES;
        let step = |acc: &mut [__m256; LANES / 8], x: &[f32], y: &[f32]| {
            for (k, acc) in acc.iter_mut().enumerate() {
                // SAFETY: `x` and `y` hold LANES values.
                let diff = unsafe {
                    _mm256_sub_ps(
                        _mm256_loadu_ps(x.as_ptr().add(8 * k)),
                        _mm256_loadu_ps(y.as_ptr().add(8 * k)),
                    )
                };
                *acc = _mm256_fmadd_ps(diff, diff, *acc);
            }
        };
        let mut at = 0;
        while at < full {
            step(&mut acc, &a[at..at + LANES], &b[at..at + LANES]);
            at += LANES;
        }
        if full < len {
            // Zero-padded tail: fma(0, 0, acc) == acc in the padding lanes.
            let (mut x, mut y) = ([0.0_f32; LANES], [0.0_f32; LANES]);
            x[..len - full].copy_from_slice(&a[full..len]);
            y[..len - full].copy_from_slice(&b[full..len]);
            step(&mut acc, &x, &y);
        }
        // Pairwise, as in `body`: lanes k and k + 32, then k and k + 16, then k + 8.
        let quarter = |k: usize| _mm256_add_ps(acc[k], acc[k + 4]);
        let sum = _mm256_add_ps(
            _mm256_add_ps(quarter(0), quarter(2)),
            _mm256_add_ps(quarter(1), quarter(3)),
        );
        reduce8(sum)
    }

    pub(super) fn avx512(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only installed as the kernel after `is_x86_feature_detected!`
        // confirmed avx512f, avx512dq and fma on this CPU.
        unsafe { avx512_impl(a, b) }
    }

    pub(super) fn avx2(a: &[f32], b: &[f32]) -> f32 {
        // SAFETY: only installed after `is_x86_feature_detected!` confirmed avx2 and fma.
        unsafe { avx2_impl(a, b) }
    }

    pub(super) fn best() -> Option<(super::Kernel, &'static str)> {
        if is_x86_feature_detected!("avx512f")
            && is_x86_feature_detected!("avx512dq")
            && is_x86_feature_detected!("fma")
        {
            Some((avx512, "avx512"))
        } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
            Some((avx2, "avx2+fma"))
        } else {
            None
        }
    }
}

fn kernel() -> &'static (Kernel, &'static str) {
    static KERNEL: OnceLock<(Kernel, &'static str)> = OnceLock::new();
    KERNEL.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        if let Some(k) = x86::best() {
            return k;
        }
        (portable, "portable")
    })
}

/// The instruction set the kernel uses on this machine, for benchmark reports.
#[must_use]
pub fn kernel_name() -> &'static str {
    kernel().1
}

/// Squared Euclidean distance between two equally long rows.
#[must_use]
#[inline]
pub fn squared_l2(a: &[f32], b: &[f32]) -> f32 {
    (kernel().0)(a, b)
}

/// Euclidean distance between two equally long rows: the f32 sum of squares, widened
/// before the square root so that an exactly representable sum (e.g. 2) gives the same
/// distance as in float64.
#[must_use]
#[inline]
pub fn l2(a: &[f32], b: &[f32]) -> f64 {
    f64::from(squared_l2(a, b)).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum()
    }

    #[test]
    fn matches_float64_for_every_tail_length() {
        for len in 0..100 {
            #[allow(clippy::cast_precision_loss)] // small loop counters
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            #[allow(clippy::cast_precision_loss)]
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let (got, want) = (f64::from(squared_l2(&a, &b)), naive(&a, &b));
            assert!(
                (got - want).abs() <= 1e-6 * want.max(1.0),
                "{len}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn every_variant_agrees_bit_for_bit() {
        #[allow(clippy::cast_precision_loss)]
        let a: Vec<f32> = (0..1283).map(|i| (i as f32 * 0.013).sin()).collect();
        #[allow(clippy::cast_precision_loss)]
        let b: Vec<f32> = (0..1283).map(|i| (i as f32 * 0.029).cos()).collect();
        let want = portable(&a, &b);
        // FMA rounds once where mul+add rounds twice: equal to within an ulp or two.
        let got = squared_l2(&a, &b);
        assert!(
            (got - want).abs() <= 4.0 * f32::EPSILON * want,
            "{got} {want}"
        );
        #[cfg(target_arch = "x86_64")]
        for len in (0..300).chain([1280, 1283]) {
            let (a, b) = (&a[..len], &b[..len]);
            // The intrinsics compute what the FMA flavour of `body` computes.
            let want = body::<true>(a, b).to_bits();
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                assert_eq!(x86::avx2(a, b).to_bits(), want, "avx2, {len}");
            }
            if is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq") {
                assert_eq!(x86::avx512(a, b).to_bits(), want, "avx512, {len}");
            }
        }
    }

    #[test]
    fn integer_rows_are_exact() {
        assert_eq!(
            squared_l2(&[0.0, 0.0], &[3.0, 4.0]).to_bits(),
            25.0_f32.to_bits()
        );
        assert_eq!(l2(&[0.0, 0.0], &[3.0, 4.0]).to_bits(), 5.0_f64.to_bits());
    }

    #[test]
    fn close_points_keep_their_distance() {
        // |a|² - 2ab + |b|² in f32 would return 0 (or garbage) here.
        let a = vec![1000.0_f32; 64];
        let mut b = a.clone();
        b[17] = 1000.0 + 1.0 / 16.0;
        assert_eq!(squared_l2(&a, &b).to_bits(), (1.0_f32 / 256.0).to_bits());
    }

    #[test]
    fn empty_rows_are_at_distance_zero() {
        assert_eq!(squared_l2(&[], &[]).to_bits(), 0.0_f32.to_bits());
    }
}
