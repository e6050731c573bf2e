//! Dot products of bfloat16 rows, a tile of queries by a block of rows at a time, for
//! a lower bound on the f32 distance that costs a fraction of the distance itself.
//!
//! The per-row bound of `bf16` widens the pool row and subtracts it from each f32
//! query (two instructions per 16 values and query). Here the query is rounded to
//! bfloat16 too, and `d(x~, p~)² = |x~|² + |p~|² - 2 x~·p~` takes one `vdpbf16ps` per
//! 32 values and pair, over a 4 x 4 tile that loads each value once for four products.
//! Products of two bfloat16 values are exact in f32; the sums are rounded, at most
//! `cols + 64` times per term in any order the instruction and the lane reduction take,
//! so `|computed - exact| <= gamma(cols + 64) |x~| |p~|` (doubled below, for an
//! implementation that rounds less carefully than to nearest). Subnormal values are
//! flushed to zero before the kernel sees them (the instruction treats them as zero),
//! and a product or sum that underflows is off by at most 2^-126, well inside
//! [`DOT_TINY`]. The bound on the f32 distance is then
//! `d(x, p) >= d(x~, p~) - |x - x~| - |p - p~|`: a filter only, never a distance.

use std::sync::OnceLock;

use super::bf16::from_bf16;

/// Rows ahead of the tile being multiplied that the kernel asks memory for.
const AHEAD: usize = 8;

/// Absolute slack on a dot product for flushed underflows (2^-126 each, a few thousand).
const DOT_TINY: f64 = 1e-30;

/// Whether [`dots`] runs the AVX-512 BF16 kernel here. Without it a tile costs more
/// than the per-row bound of `bf16`, so callers keep that.
#[must_use]
pub(crate) fn fast() -> bool {
    static FAST: OnceLock<bool> = OnceLock::new();
    *FAST.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            super::bf16::fast() && is_x86_feature_detected!("avx512bf16")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// `v` rounded to the nearest bfloat16, with subnormals (and values that round to a
/// subnormal) flushed to a zero of the same sign, as the dot kernel reads them.
#[must_use]
pub(crate) fn to_bf16_ftz(v: f32) -> u16 {
    let b = super::bf16::to_bf16(v);
    if b & 0x7f80 == 0 {
        b & 0x8000
    } else {
        b
    }
}

/// A row in bfloat16 for [`dots`]: its bits, `|x - x~|` (raised past the square root's
/// rounding) and `|x~|²`, both in f64.
#[derive(Debug, Clone, Default)]
pub(crate) struct HalfRow {
    pub(crate) bits: Vec<u16>,
    pub(crate) err: f64,
    pub(crate) norm2: f64,
}

impl HalfRow {
    #[must_use]
    pub(crate) fn new(x: &[f32]) -> Self {
        let bits: Vec<u16> = x.iter().map(|&v| to_bf16_ftz(v)).collect();
        let (err, norm2) = errors(x, &bits);
        Self { bits, err, norm2 }
    }
}

/// `(|x - x~|, |x~|²)` for a row `x` and its bfloat16 bits (in f64, where the
/// differences and squares are exact; the first raised past the square root's rounding).
#[must_use]
pub(crate) fn errors(x: &[f32], bits: &[u16]) -> (f64, f64) {
    let (mut sq, mut norm2) = (0.0_f64, 0.0_f64);
    for (&v, &b) in x.iter().zip(bits) {
        let h = f64::from(from_bf16(b));
        sq += (f64::from(v) - h).powi(2);
        norm2 += h * h;
    }
    (sq.sqrt() * (1.0 + 1e-12), norm2)
}

/// `row` in bfloat16 into `out` ([`to_bf16_ftz`]), and [`errors`] of the two: the same
/// bound, its f64 sums taken over eight lanes so that they vectorize.
pub(crate) fn convert(row: &[f32], out: &mut [u16]) -> (f64, f64) {
    assert_eq!(row.len(), out.len());
    #[cfg(target_arch = "x86_64")]
    if fast() && is_x86_feature_detected!("avx512dq") && is_x86_feature_detected!("avx512vl") {
        // SAFETY: `fast()` confirmed avx512f and avx512bw; avx512dq and avx512vl above.
        return unsafe { x86::convert(row, out) };
    }
    convert_lanes(row, out)
}

fn convert_lanes(row: &[f32], out: &mut [u16]) -> (f64, f64) {
    let (mut sq, mut norm2) = ([0.0_f64; 8], [0.0_f64; 8]);
    let mut rows = row.chunks_exact(8);
    let mut outs = out.chunks_exact_mut(8);
    for (r, o) in (&mut rows).zip(&mut outs) {
        for k in 0..8 {
            o[k] = to_bf16_ftz(r[k]);
            let h = f64::from(from_bf16(o[k]));
            let e = f64::from(r[k]) - h;
            sq[k] += e * e;
            norm2[k] += h * h;
        }
    }
    for (k, (&v, o)) in rows
        .remainder()
        .iter()
        .zip(outs.into_remainder())
        .enumerate()
    {
        *o = to_bf16_ftz(v);
        let h = f64::from(from_bf16(*o));
        sq[k] += (f64::from(v) - h).powi(2);
        norm2[k] += h * h;
    }
    // Each sum is within ~1e-13 relative of any other order's: inside the 1e-12 raise.
    let (sq, norm2): (f64, f64) = (sq.iter().sum(), norm2.iter().sum());
    (sq.sqrt() * (1.0 + 1e-12), norm2)
}

/// Lower bound on `d(x, p)` from the dot product `dot` of their bfloat16 copies
/// ([`dots`]) over `cols` values.
#[cfg(test)]
#[must_use]
pub(crate) fn lower(x: &HalfRow, p_norm2: f64, p_err: f64, dot: f32, cols: usize) -> f64 {
    lower_sq(x, p_norm2, dot, cols).max(0.0).sqrt() - x.err - p_err
}

/// Lower bound on `d(x~, p~)²` from their dot product `dot` (see [`lower`]): the error
/// bound `4 gamma |x~| |p~|` is taken at `(|x~|² + |p~|²) / 2 >= |x~| |p~|`, so that no
/// square root is needed.
#[inline]
#[must_use]
pub(crate) fn lower_sq(x: &HalfRow, p_norm2: f64, dot: f32, cols: usize) -> f64 {
    lower_sq_of(x.norm2, p_norm2, dot, cols)
}

/// [`lower_sq`] from the two copies' squared norms.
#[inline]
#[must_use]
pub(crate) fn lower_sq_of(x_norm2: f64, p_norm2: f64, dot: f32, cols: usize) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let ku = (cols + 64) as f64 * f64::from(f32::EPSILON) / 2.0;
    let slack = 2.0 * ku / (1.0 - ku) * (x_norm2 + p_norm2) + DOT_TINY;
    // The f64 arithmetic here rounds by ~1e-16 relative: far inside the callers' slack.
    x_norm2 + p_norm2 - 2.0 * f64::from(dot) - slack
}

/// `out[q * rows + r] = x~_q · p~_r` for the `queries` and the `rows` rows of `block`
/// (row-major, `cols` values each), summed in f32.
///
/// # Panics
/// When a query or `block` is not as long as `cols` says, or `out` is too short.
pub(crate) fn dots(queries: &[&[u16]], block: &[u16], cols: usize, out: &mut [f32]) {
    let rows = block.len().checked_div(cols).unwrap_or(0);
    assert!(queries.iter().all(|q| q.len() == cols) && block.len() == rows * cols);
    assert!(out.len() >= queries.len() * rows);
    if cols == 0 {
        out.fill(0.0);
        return;
    }
    if let [q] = queries {
        one_by(
            q,
            rows,
            |r| &block[r * cols..(r + 1) * cols],
            &mut out[..rows],
        );
        return;
    }
    #[cfg(target_arch = "x86_64")]
    if fast() {
        // Rows outer: a tile of rows is read from memory once for every query, and a
        // later tile's rows are fetched while this one is multiplied.
        for r0 in (0..rows).step_by(4) {
            let rs = (rows - r0).min(4);
            // A short tile repeats its last query or row; only real pairs are written.
            let r: [*const u16; 4] =
                std::array::from_fn(|j| block[(r0 + j.min(rs - 1)) * cols..].as_ptr());
            // Two tiles ahead: one tile's products take about as long as memory does to
            // answer, so one tile ahead arrives late.
            if r0 == 0 {
                super::prefetch(&block[..rows.min(8) * cols]);
            }
            let ahead_at = if r0 + AHEAD < rows { r0 + AHEAD } else { r0 };
            let ahead_len = (rows - ahead_at).min(4);
            let next: [*const u16; 4] =
                std::array::from_fn(|j| block[(ahead_at + j.min(ahead_len - 1)) * cols..].as_ptr());
            for (qt, qs) in queries.chunks(4).enumerate() {
                let q: [*const u16; 4] = std::array::from_fn(|i| qs[i.min(qs.len() - 1)].as_ptr());
                let ahead = if qt == 0 { next } else { r };
                // SAFETY: `fast()` confirmed avx512f, avx512bw and avx512bf16; every
                // pointer starts `cols` readable values (checked above).
                let tile = unsafe { x86::tile(q, r, ahead, cols) };
                for (i, t) in tile.iter().enumerate().take(qs.len()) {
                    let at = (qt * 4 + i) * rows + r0;
                    out[at..at + rs].copy_from_slice(&t[..rs]);
                }
            }
        }
        return;
    }
    for (i, q) in queries.iter().enumerate() {
        for (r, p) in block.chunks_exact(cols).enumerate() {
            out[i * rows + r] = q
                .iter()
                .zip(p)
                .map(|(&a, &b)| from_bf16(a) * from_bf16(b))
                .sum();
        }
    }
}

/// `out[r] = q · rows[r]` for rows that need not lie together, summed as [`dots`] sums.
///
/// # Panics
/// When a row is not as long as `q`, or `out` is too short.
pub(crate) fn dots_rows(q: &[u16], rows: &[&[u16]], out: &mut [f32]) {
    assert!(rows.iter().all(|r| r.len() == q.len()) && out.len() >= rows.len());
    one_by(q, rows.len(), |r| rows[r], out);
}

/// `out[r] = x~ · p~_r` for the query `q` and the `n` rows `row(0..n)`, each as long as
/// `q`, summed in f32 as [`dots`] sums them.
fn one_by<'a>(q: &[u16], n: usize, row: impl Fn(usize) -> &'a [u16], out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if fast() && !q.is_empty() {
        // Eight rows at a time, each value of the query loaded once for all eight (a
        // 4 x 4 tile would repeat the query and do four times the products), the next
        // eight rows asked for meanwhile.
        for r0 in (0..n).step_by(8) {
            let rs = (n - r0).min(8);
            let at = |r: usize| row(r.min(n - 1)).as_ptr();
            let r: [*const u16; 8] = std::array::from_fn(|j| at(r0 + j.min(rs - 1)));
            let ahead: [*const u16; 8] = std::array::from_fn(|j| at(r0 + 8 + j));
            // SAFETY: `fast()` confirmed avx512f, avx512bw and avx512bf16; every pointer
            // starts `q.len()` readable values (the callers' rows are as long as `q`).
            let d = unsafe { x86::row8(q.as_ptr(), r, ahead, q.len()) };
            out[r0..r0 + rs].copy_from_slice(&d[..rs]);
        }
        return;
    }
    for (r, o) in out.iter_mut().enumerate().take(n) {
        *o = q
            .iter()
            .zip(row(r))
            .map(|(&a, &b)| from_bf16(a) * from_bf16(b))
            .sum();
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m512, __m512bh, __m512i, _mm512_dpbf16_ps, _mm512_loadu_si512, _mm512_maskz_loadu_epi16,
        _mm512_reduce_add_ps, _mm512_setzero_ps, _mm_prefetch, _MM_HINT_T0,
    };

    /// [`super::convert`] in AVX-512: sixteen values per step, rounded as
    /// [`super::to_bf16_ftz`] rounds and summed lane by lane as `convert_lanes` sums
    /// (value `i` in lane `i % 8`, eight values at a time), so the same bits and sums.
    ///
    /// # Safety
    /// The CPU has avx512f, avx512bw, avx512dq and avx512vl.
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    pub(super) unsafe fn convert(row: &[f32], out: &mut [u16]) -> (f64, f64) {
        use std::arch::x86_64::{
            _mm512_add_epi32, _mm512_add_pd, _mm512_and_si512, _mm512_castps512_ps256,
            _mm512_castps_si512, _mm512_castsi512_ps, _mm512_cvtps_pd, _mm512_extractf32x8_ps,
            _mm512_mask_blend_epi32, _mm512_mask_cvtepi32_storeu_epi16, _mm512_maskz_loadu_ps,
            _mm512_mul_pd, _mm512_set1_epi32, _mm512_setzero_pd, _mm512_slli_epi32,
            _mm512_srli_epi32, _mm512_storeu_pd, _mm512_sub_ps, _mm512_testn_epi32_mask,
        };
        let len = row.len();
        let (one, round, exp, sign) = (
            _mm512_set1_epi32(1),
            _mm512_set1_epi32(0x7fff),
            _mm512_set1_epi32(0x7f80),
            _mm512_set1_epi32(0x8000),
        );
        let (mut sq, mut norm2) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let mut at = 0;
        while at < len {
            let left = len - at;
            let mask: u16 = if left >= 16 {
                u16::MAX
            } else {
                (1_u16 << left) - 1
            };
            // SAFETY: the mask enables only lanes inside `row`.
            let value = unsafe { _mm512_maskz_loadu_ps(mask, row.as_ptr().add(at)) };
            let bits = _mm512_castps_si512(value);
            let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(bits), one);
            let top = _mm512_srli_epi32::<16>(_mm512_add_epi32(bits, _mm512_add_epi32(round, lsb)));
            // A subnormal result (exponent bits zero) becomes a zero of its sign.
            let sub = _mm512_testn_epi32_mask(top, exp);
            let top = _mm512_mask_blend_epi32(sub, top, _mm512_and_si512(top, sign));
            // SAFETY: as the load.
            unsafe {
                _mm512_mask_cvtepi32_storeu_epi16(out.as_mut_ptr().add(at).cast(), mask, top);
            }
            let copy = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(top));
            // value - copy is exact in f32 (the copy is the value with its low 16 bits
            // rounded away).
            let err = _mm512_sub_ps(value, copy);
            for part in [
                _mm512_castps512_ps256(err),
                _mm512_extractf32x8_ps::<1>(err),
            ] {
                let part = _mm512_cvtps_pd(part);
                sq = _mm512_add_pd(sq, _mm512_mul_pd(part, part));
            }
            for part in [
                _mm512_castps512_ps256(copy),
                _mm512_extractf32x8_ps::<1>(copy),
            ] {
                let part = _mm512_cvtps_pd(part);
                norm2 = _mm512_add_pd(norm2, _mm512_mul_pd(part, part));
            }
            at += 16;
        }
        let (mut a, mut b) = ([0.0_f64; 8], [0.0_f64; 8]);
        // SAFETY: eight f64 lanes into eight f64 each.
        unsafe {
            _mm512_storeu_pd(a.as_mut_ptr(), sq);
            _mm512_storeu_pd(b.as_mut_ptr(), norm2);
        }
        let (sq, norm2): (f64, f64) = (a.iter().sum(), b.iter().sum());
        (sq.sqrt() * (1.0 + 1e-12), norm2)
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    fn bh(v: __m512i) -> __m512bh {
        // SAFETY: both are 64 bytes of plain lanes; the bits are reinterpreted as is.
        unsafe { std::mem::transmute::<__m512i, __m512bh>(v) }
    }

    /// The dot products of query `q` with the 8 rows `r`, `cols` values each, asking
    /// memory for the rows `ahead` meanwhile.
    ///
    /// # Safety
    /// As for [`tile`].
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    pub(super) unsafe fn row8(
        q: *const u16,
        r: [*const u16; 8],
        ahead: [*const u16; 8],
        cols: usize,
    ) -> [f32; 8] {
        let mut acc = [_mm512_setzero_ps(); 8];
        let full = cols - cols % 32;
        let mut at = 0;
        while at < full {
            // SAFETY: at + 32 <= full <= cols values from every pointer.
            let qv = bh(unsafe { _mm512_loadu_si512(q.add(at).cast()) });
            for j in 0..8 {
                // A hint, never a fault: the next rows' line at this offset.
                _mm_prefetch::<_MM_HINT_T0>(ahead[j].wrapping_add(at).cast());
                // SAFETY: as above.
                let rv = bh(unsafe { _mm512_loadu_si512(r[j].add(at).cast()) });
                acc[j] = _mm512_dpbf16_ps(acc[j], qv, rv);
            }
            at += 32;
        }
        if full < cols {
            let mask = (1_u32 << (cols - full)) - 1;
            // SAFETY: only the enabled lanes, which lie inside every row, are read.
            let qv = bh(unsafe { _mm512_maskz_loadu_epi16(mask, q.add(full).cast()) });
            for j in 0..8 {
                // SAFETY: as above.
                let rv = bh(unsafe { _mm512_maskz_loadu_epi16(mask, r[j].add(full).cast()) });
                acc[j] = _mm512_dpbf16_ps(acc[j], qv, rv);
            }
        }
        acc.map(|a| _mm512_reduce_add_ps(a))
    }

    /// The 4 x 4 dot products of queries `q` and rows `r`, `cols` values each.
    ///
    /// # Safety
    /// The CPU has avx512f, avx512bw and avx512bf16; every pointer starts `cols`
    /// readable values.
    #[target_feature(enable = "avx512f,avx512bw,avx512bf16")]
    #[allow(clippy::needless_range_loop)] // acc[i][j]: two indices
    pub(super) unsafe fn tile(
        q: [*const u16; 4],
        r: [*const u16; 4],
        ahead: [*const u16; 4],
        cols: usize,
    ) -> [[f32; 4]; 4] {
        let mut acc: [[__m512; 4]; 4] = [[_mm512_setzero_ps(); 4]; 4];
        let full = cols - cols % 32;
        let mut at = 0;
        while at < full {
            // SAFETY: at + 32 <= full <= cols values from every pointer.
            let qv: [__m512i; 4] =
                [0, 1, 2, 3].map(|i| unsafe { _mm512_loadu_si512(q[i].add(at).cast()) });
            for j in 0..4 {
                // A hint, never a fault: the next rows' line at this offset.
                _mm_prefetch::<_MM_HINT_T0>(ahead[j].wrapping_add(at).cast());
                // SAFETY: as above.
                let rv = bh(unsafe { _mm512_loadu_si512(r[j].add(at).cast()) });
                for i in 0..4 {
                    acc[i][j] = _mm512_dpbf16_ps(acc[i][j], bh(qv[i]), rv);
                }
            }
            at += 32;
        }
        if full < cols {
            let mask = (1_u32 << (cols - full)) - 1;
            // SAFETY: only the enabled lanes, which lie inside every row, are read.
            let qv: [__m512i; 4] = [0, 1, 2, 3]
                .map(|i| unsafe { _mm512_maskz_loadu_epi16(mask, q[i].add(full).cast()) });
            for j in 0..4 {
                // SAFETY: as above.
                let rv = bh(unsafe { _mm512_maskz_loadu_epi16(mask, r[j].add(full).cast()) });
                for i in 0..4 {
                    acc[i][j] = _mm512_dpbf16_ps(acc[i][j], bh(qv[i]), rv);
                }
            }
        }
        acc.map(|row| row.map(|a| _mm512_reduce_add_ps(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::l2;
    use crate::test_data::noise;

    #[test]
    #[allow(clippy::float_cmp)] // the same arithmetic: the same bits
    fn the_vector_conversion_gives_the_scalar_bits_and_sums() {
        for len in (0..40).chain([1280, 1283]) {
            let mut row = noise(len, 9);
            // Subnormals of both signs, zeros of both signs, ties to even and to odd.
            let special = [
                0x007f_ffff,
                0x8000_0005,
                0,
                0x8000_0000,
                0x3f80_8000,
                0x3f81_8000,
            ];
            for (v, bits) in row.iter_mut().zip(special) {
                *v = f32::from_bits(bits);
            }
            let (mut fast_bits, mut slow_bits) = (vec![0; len], vec![0; len]);
            let got = convert(&row, &mut fast_bits);
            let want = convert_lanes(&row, &mut slow_bits);
            assert_eq!(fast_bits, slow_bits, "len {len}");
            assert_eq!(got, want, "len {len}");
            let ftz: Vec<u16> = row.iter().map(|&v| to_bf16_ftz(v)).collect();
            assert_eq!(slow_bits, ftz, "len {len}");
            let (err, norm2) = errors(&row, &slow_bits);
            assert!((want.0 - err).abs() <= 1e-12 * err && (want.1 - norm2).abs() <= 1e-12 * norm2);
        }
    }

    #[test]
    fn the_dot_bound_never_exceeds_the_distance_and_rules_out_far_rows() {
        for cols in [0, 1, 5, 31, 32, 33, 100, 1280, 1283] {
            // Six queries by seven rows: both a full 4 x 4 tile and short ones.
            let xs = noise(6 * cols, 1);
            let ps = noise(7 * cols, 2);
            let qs: Vec<HalfRow> = xs
                .chunks_exact(cols.max(1))
                .take(6)
                .map(HalfRow::new)
                .collect();
            let rows: Vec<HalfRow> = ps
                .chunks_exact(cols.max(1))
                .take(7)
                .map(HalfRow::new)
                .collect();
            let block: Vec<u16> = rows.iter().flat_map(|r| r.bits.iter().copied()).collect();
            let bits: Vec<&[u16]> = qs.iter().map(|q| q.bits.as_slice()).collect();
            let mut out = vec![f32::NAN; 6 * 7];
            dots(&bits, &block, cols, &mut out);
            // One query alone takes its own kernel: the same products.
            if let Some(&q) = bits.first() {
                let mut one = vec![f32::NAN; 7];
                dots(&[q], &block, cols, &mut one);
                assert_eq!(one, out[..7], "{cols}: one query");
            }
            for (i, q) in qs.iter().enumerate().take(if cols == 0 { 0 } else { 6 }) {
                for (r, p) in rows.iter().enumerate() {
                    let exact: f64 = q
                        .bits
                        .iter()
                        .zip(&p.bits)
                        .map(|(&a, &b)| f64::from(from_bf16(a)) * f64::from(from_bf16(b)))
                        .sum();
                    let got = f64::from(out[i * 7 + r]);
                    assert!(
                        (got - exact).abs() <= 1e-5 * (q.norm2 * p.norm2).sqrt() + 1e-6,
                        "{cols} {i} {r}"
                    );
                    let x = &xs[i * cols..(i + 1) * cols];
                    let y = &ps[r * cols..(r + 1) * cols];
                    let d = l2(x, y);
                    let low = lower(q, p.norm2, p.err, out[i * 7 + r], cols);
                    assert!(
                        low <= d * (1.0 + 1e-6) + 1e-9,
                        "{cols} {i} {r}: {low} > {d}"
                    );
                    // Far from useless: within a few bfloat16 roundings of the distance.
                    assert!(low >= d - 0.02 * (1.0 + d), "{cols} {i} {r}: {low} << {d}");
                }
            }
        }
        assert_eq!(to_bf16_ftz(1e-39), 0);
        assert_eq!(to_bf16_ftz(-1e-39), 0x8000);
        assert_eq!(to_bf16_ftz(1.0), 0x3f80);
    }
}
