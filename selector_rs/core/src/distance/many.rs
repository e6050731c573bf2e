//! One row's distances to four others at once, bit for bit what [`l2`] gives for each:
//! the row is loaded once for the four (the single kernel loads both rows for every
//! product, which is what bounds it when the rows are in cache).

use super::l2;

/// `[l2(p, q[0]), ..., l2(p, q[3])]`, computed together where the CPU allows.
#[must_use]
pub(crate) fn l2_x4(p: &[f32], q: [&[f32]; 4]) -> [f64; 4] {
    #[cfg(target_arch = "x86_64")]
    if super::kernel_name() == "avx512" && q.iter().all(|q| q.len() == p.len()) {
        // SAFETY: the avx512 kernel is installed only on CPUs with avx512f, avx512dq and
        // fma; the four rows are as long as `p`.
        let sq = unsafe { avx512_x4(p, q) };
        return sq.map(|s| f64::from(s).sqrt());
    }
    q.map(|q| l2(p, q))
}

/// Asks the CPU to start loading `row` into cache (a hint: nothing is read, and
/// nothing happens on other architectures), so that a distance computed on it next
/// does not wait for memory.
#[inline]
pub(crate) fn prefetch<T>(row: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        for line in row.chunks((64 / std::mem::size_of::<T>()).max(1)) {
            // SAFETY: a prefetch is a hint that never faults; the address is in `row`.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(line.as_ptr().cast()) };
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512dq,avx2,fma")]
#[allow(clippy::needless_range_loop)] // acc[j][k]: two indices, as in the single kernel
fn avx512_x4(p: &[f32], q: [&[f32]; 4]) -> [f32; 4] {
    use super::LANES;
    use std::arch::x86_64::{
        _mm256_add_ps, _mm512_add_ps, _mm512_castps512_ps256, _mm512_extractf32x8_ps,
        _mm512_fmadd_ps, _mm512_loadu_ps, _mm512_maskz_loadu_ps, _mm512_setzero_ps, _mm512_sub_ps,
    };
    let len = p.len();
    let full = len - len % LANES;
    let pp = p.as_ptr();
    let pq = q.map(<[f32]>::as_ptr);
    // acc[j][k]: query j's lanes 16k..16k+16, as in the single kernel.
    let mut acc = [[_mm512_setzero_ps(); LANES / 16]; 4];
    let mut at = 0;
    while at < full {
        for k in 0..LANES / 16 {
            // SAFETY: at + LANES <= full <= every length.
            let v = unsafe { _mm512_loadu_ps(pp.add(at + 16 * k)) };
            for j in 0..4 {
                // SAFETY: as above.
                let diff = unsafe { _mm512_sub_ps(_mm512_loadu_ps(pq[j].add(at + 16 * k)), v) };
                acc[j][k] = _mm512_fmadd_ps(diff, diff, acc[j][k]);
            }
        }
        at += LANES;
    }
    if full < len {
        for k in 0..LANES / 16 {
            let mask = match (len - full).saturating_sub(16 * k) {
                r if r >= 16 => u16::MAX,
                r => (1u16 << r) - 1,
            };
            // SAFETY: only enabled lanes are read, and they lie inside every row.
            let v = unsafe { _mm512_maskz_loadu_ps(mask, pp.add(full + 16 * k)) };
            for j in 0..4 {
                // SAFETY: as above.
                let w = unsafe { _mm512_maskz_loadu_ps(mask, pq[j].add(full + 16 * k)) };
                let diff = _mm512_sub_ps(w, v);
                acc[j][k] = _mm512_fmadd_ps(diff, diff, acc[j][k]);
            }
        }
    }
    acc.map(|a| {
        // The single kernel's pairwise reduction, step for step.
        let sum = _mm512_add_ps(_mm512_add_ps(a[0], a[2]), _mm512_add_ps(a[1], a[3]));
        let sum = _mm256_add_ps(
            _mm512_castps512_ps256(sum),
            _mm512_extractf32x8_ps::<1>(sum),
        );
        super::x86::reduce8(sum)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn four_at_once_are_the_single_kernel_bit_for_bit() {
        for len in (0..200).chain([1280, 1283]) {
            #[allow(clippy::cast_precision_loss)]
            let row = |s: f32| -> Vec<f32> { (0..len).map(|i| (i as f32 * s).sin()).collect() };
            let p = row(0.013);
            let qs = [row(0.029), row(0.5), row(0.77), row(1.9)];
            let got = l2_x4(&p, [&qs[0], &qs[1], &qs[2], &qs[3]]);
            for (g, q) in got.iter().zip(&qs) {
                assert_eq!(g.to_bits(), l2(q, &p).to_bits(), "{len}");
                assert_eq!(g.to_bits(), l2(&p, q).to_bits(), "{len}");
            }
        }
    }
}
