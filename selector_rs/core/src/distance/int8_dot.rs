//! Dot products of int8 rows, a tile of queries by a block of rows at a time, for a
//! lower bound on the f32 distance that reads half the bytes of a bfloat16 copy.
//!
//! A query is quantized as unsigned bytes (`q + 128`, `q = round(x / s)` in
//! [-127, 127]) and a row as signed bytes, and `vpdpbusd` sums four byte products per
//! lane in i32: exact (at most `cols * 255 * 127` in magnitude, inside i32 for up to
//! [`MAX_COLS`] values). What the quantization loses is bounded per row by the norms
//! of its errors (see `scenes::quant`).

use std::sync::OnceLock;

/// Widest rows whose byte products cannot overflow i32 (`2^31 / (255 * 127)`).
pub(crate) const MAX_COLS: usize = 66_000;

/// Whether [`dots`] runs the AVX-512 VNNI kernel here (and [`quantize_row`] its
/// AVX-512 kernel, which needs DQ and VL besides).
#[must_use]
pub(crate) fn fast() -> bool {
    static FAST: OnceLock<bool> = OnceLock::new();
    *FAST.get_or_init(|| {
        #[cfg(target_arch = "x86_64")]
        {
            is_x86_feature_detected!("avx512f")
                && is_x86_feature_detected!("avx512bw")
                && is_x86_feature_detected!("avx512dq")
                && is_x86_feature_detected!("avx512vl")
                && is_x86_feature_detected!("avx512vnni")
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    })
}

/// `values` quantized: `q = round(v / scale)` in [-127, 127] with `scale = max|v| / 127`,
/// and `(q, scale, |v - scale q|)` (the last raised past the square root's rounding).
#[must_use]
pub(crate) fn quantize(values: &[f64]) -> (Vec<i8>, f64, f64) {
    let top = lanes(values, 0.0, |m, v| m.max(v.abs()), f64::max);
    let scale = if top > 0.0 { top / 127.0 } else { 1.0 };
    // A product, not a quotient per value (a division is ten times the cost); the
    // bytes need not be the nearest, as `err` measures what they miss.
    let inverse = 1.0 / scale;
    #[allow(clippy::cast_possible_truncation)] // rounded into [-127, 127]
    let q: Vec<i8> = values
        .iter()
        // Half away from zero, as `round` would, without its library call.
        .map(|v| {
            let t = (v * inverse).clamp(-127.0, 127.0);
            (t + 0.5_f64.copysign(t)) as i8
        })
        .collect();
    let e: Vec<f64> = values
        .iter()
        .zip(&q)
        .map(|(v, &q)| v - scale * f64::from(q))
        .collect();
    let err2 = lanes(&e, 0.0, |s, e| s + e * e, |a, b| a + b);
    (q, scale, err2.sqrt() * (1.0 + 1e-12))
}

/// `values` folded by `step` in eight lanes (value `i` into lane `i % 8`), the lanes
/// joined by `join` in a fixed order: the same result every time, without the chain of
/// dependent additions one accumulator makes of a sum (the f64 sums here are bounds
/// raised far past any order's rounding).
#[must_use]
pub(crate) fn lanes(
    values: &[f64],
    zero: f64,
    step: impl Fn(f64, f64) -> f64,
    join: impl Fn(f64, f64) -> f64,
) -> f64 {
    let mut acc = [zero; 8];
    let mut chunks = values.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a = step(*a, v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a = step(*a, v);
    }
    join(
        join(join(acc[0], acc[4]), join(acc[2], acc[6])),
        join(join(acc[1], acc[5]), join(acc[3], acc[7])),
    )
}

/// A quantized row's terms for the bound on `x·p` (see [`RowTerms::dot_upper`]): its
/// scale, the sum of its bytes, `s_p |q_p|` and `|p - s_p q_p|` (both raised past
/// rounding).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct RowTerms {
    scale: f64,
    sum: i32,
    qnorm: f64,
    err: f64,
}

impl RowTerms {
    /// The terms of bytes `q` at `scale`, `err` from [`quantize`].
    #[must_use]
    pub(crate) fn of(q: &[i8], scale: f64, err: f64) -> Self {
        let q2: i64 = q.iter().map(|&q| i64::from(q) * i64::from(q)).sum();
        #[allow(clippy::cast_precision_loss)] // q2 < 2^53
        let qnorm = scale * (q2 as f64).sqrt() * (1.0 + 1e-12);
        let sum = q.iter().map(|&q| i32::from(q)).sum();
        Self {
            scale,
            sum,
            qnorm,
            err,
        }
    }

    /// An upper bound on `x·p` from the byte dot product `dot` of `x`'s bytes with the
    /// row's: `x·p = s_x s_p (q_x·q_p) + s_p e_x·q_p + x·e_p`, the error terms bounded by
    /// Cauchy-Schwarz.
    #[inline]
    #[must_use]
    pub(crate) fn dot_upper(&self, x: &QuantRow, dot: i32) -> f64 {
        // q_x·q_p: the query's bytes hold q_x + 128.
        let qq = f64::from(dot) - 128.0 * f64::from(self.sum);
        self.scale * x.scale * qq + self.qnorm * x.err + x.norm * self.err
    }
}

/// A query for [`dots`]: its bytes (`q + 128`), scale, `|x - scale q|`, `|x|` (raised
/// past the square root's rounding) and `|x|²` (the f64 sum).
#[derive(Debug, Clone, Default)]
pub(crate) struct QuantRow {
    pub(crate) bytes: Vec<u8>,
    pub(crate) scale: f64,
    pub(crate) err: f64,
    pub(crate) norm: f64,
    pub(crate) norm2: f64,
}

impl QuantRow {
    #[must_use]
    pub(crate) fn new(x: &[f32]) -> Self {
        let mut q = vec![0_i8; x.len()];
        let (scale, err, norm2) = quantize_row(x, &mut q);
        // q + 128 lies in [1, 255]: the sign bit flipped.
        let bytes = q.iter().map(|&q| q.cast_unsigned() ^ 0x80).collect();
        Self {
            bytes,
            scale,
            err,
            norm: norm2.sqrt() * (1.0 + 1e-12),
            norm2,
        }
    }
}

/// [`quantize`] of an f32 row into `q`, with the row's squared norm (an f64 sum in the
/// eight lanes of [`lanes`]): `(scale, err, |x|²)`, the same values as the f64 route.
pub(crate) fn quantize_row(x: &[f32], q: &mut [i8]) -> (f64, f64, f64) {
    assert_eq!(x.len(), q.len());
    #[cfg(target_arch = "x86_64")]
    if fast() {
        // SAFETY: `fast()` confirmed avx512f, avx512bw, avx512dq and avx512vl.
        return unsafe { x86::quantize_row(x, q) };
    }
    let values: Vec<f64> = x.iter().map(|&v| f64::from(v)).collect();
    let (bytes, scale, err) = quantize(&values);
    q.copy_from_slice(&bytes);
    (
        scale,
        err,
        lanes(&values, 0.0, |s, v| s + v * v, |a, b| a + b),
    )
}

/// `out[q * rows + r] = sum_k queries[q][k] * block[r * cols + k]` (unsigned by signed
/// bytes) for the `rows` rows of `block`.
///
/// # Panics
/// When a query or `block` is not as long as `cols` says, `out` is too short, or
/// `cols` exceeds [`MAX_COLS`].
pub(crate) fn dots(queries: &[&[u8]], block: &[i8], cols: usize, out: &mut [i32]) {
    let rows = block.len().checked_div(cols).unwrap_or(0);
    assert!(queries.iter().all(|q| q.len() == cols) && block.len() == rows * cols);
    assert!(out.len() >= queries.len() * rows && cols <= MAX_COLS);
    #[cfg(target_arch = "x86_64")]
    if fast() && cols > 0 && queries.len() == 1 {
        let each: Vec<&[i8]> = block.chunks_exact(cols).collect();
        return dots_rows(queries[0], &each, out);
    }
    #[cfg(target_arch = "x86_64")]
    if fast() && cols > 0 {
        for r0 in (0..rows).step_by(4) {
            let rs = (rows - r0).min(4);
            let r: [*const i8; 4] =
                std::array::from_fn(|j| block[(r0 + j.min(rs - 1)) * cols..].as_ptr());
            for (qt, qs) in queries.chunks(4).enumerate() {
                let q: [*const u8; 4] = std::array::from_fn(|i| qs[i.min(qs.len() - 1)].as_ptr());
                // SAFETY: `fast()` confirmed avx512f, avx512bw and avx512vnni; every
                // pointer starts `cols` readable bytes (checked above).
                let tile = unsafe { x86::tile(q, r, cols) };
                for (i, t) in tile.iter().enumerate().take(qs.len()) {
                    let at = (qt * 4 + i) * rows + r0;
                    out[at..at + rs].copy_from_slice(&t[..rs]);
                }
            }
        }
        return;
    }
    for (i, q) in queries.iter().enumerate() {
        for (r, p) in block.chunks_exact(cols.max(1)).take(rows).enumerate() {
            out[i * rows + r] = q
                .iter()
                .zip(p)
                .map(|(&a, &b)| i32::from(a) * i32::from(b))
                .sum();
        }
    }
}

/// `out[r] = sum_k query[k] * rows[r][k]` (unsigned by signed bytes), for rows that
/// need not lie together: eight at a time, the query's bytes loaded once for all eight.
///
/// # Panics
/// When a row is not as long as the query, `out` is too short, or the rows are wider
/// than [`MAX_COLS`].
pub(crate) fn dots_rows(query: &[u8], rows: &[&[i8]], out: &mut [i32]) {
    let cols = query.len();
    assert!(rows.iter().all(|r| r.len() == cols) && out.len() >= rows.len());
    assert!(cols <= MAX_COLS);
    #[cfg(target_arch = "x86_64")]
    if fast() && cols > 0 {
        for (r8, out) in rows.chunks(8).zip(out.chunks_mut(8)) {
            let r: [*const i8; 8] = std::array::from_fn(|j| r8[j.min(r8.len() - 1)].as_ptr());
            // SAFETY: `fast()` confirmed avx512f, avx512bw and avx512vnni; every pointer
            // starts `cols` readable bytes (checked above).
            let d = unsafe { x86::row8(query.as_ptr(), r, cols) };
            out[..r8.len()].copy_from_slice(&d[..r8.len()]);
        }
        return;
    }
    for (o, r) in out.iter_mut().zip(rows) {
        *o = query
            .iter()
            .zip(*r)
            .map(|(&a, &b)| i32::from(a) * i32::from(b))
            .sum();
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    /// [`super::quantize_row`] in AVX-512: eight values per step, each step the scalar
    /// route's arithmetic lane by lane (value `i` in lane `i % 8`), the lanes joined in
    /// the order of [`super::lanes`], so the same bytes, scale and sums.
    ///
    /// # Safety
    /// The CPU has avx512f, avx512bw, avx512dq and avx512vl.
    #[target_feature(enable = "avx512f,avx512bw,avx512dq,avx512vl")]
    pub(super) unsafe fn quantize_row(row: &[f32], bytes: &mut [i8]) -> (f64, f64, f64) {
        use std::arch::x86_64::{
            _mm256_mask_cvtepi32_storeu_epi8, _mm256_maskz_loadu_ps, _mm512_abs_pd, _mm512_add_pd,
            _mm512_and_pd, _mm512_cvtepi32_pd, _mm512_cvtps_pd, _mm512_cvttpd_epi32, _mm512_max_pd,
            _mm512_min_pd, _mm512_mul_pd, _mm512_or_pd, _mm512_set1_pd, _mm512_setzero_pd,
            _mm512_sub_pd,
        };
        let len = row.len();
        let (mut top, mut norm2) = (_mm512_setzero_pd(), _mm512_setzero_pd());
        let mut at = 0;
        while at < len {
            // SAFETY: the mask enables only lanes inside `row`.
            let value = _mm512_cvtps_pd(unsafe {
                _mm256_maskz_loadu_ps(tail(len - at), row.as_ptr().add(at))
            });
            top = _mm512_max_pd(top, _mm512_abs_pd(value));
            norm2 = _mm512_add_pd(norm2, _mm512_mul_pd(value, value));
            at += 8;
        }
        let top = join(top, f64::max);
        let scale = if top > 0.0 { top / 127.0 } else { 1.0 };
        let (step, low, high) = (
            _mm512_set1_pd(scale),
            _mm512_set1_pd(-127.0),
            _mm512_set1_pd(127.0),
        );
        let inverse = _mm512_set1_pd(1.0 / scale);
        let (half, sign) = (_mm512_set1_pd(0.5), _mm512_set1_pd(-0.0));
        let mut err2 = _mm512_setzero_pd();
        let mut at = 0;
        while at < len {
            let mask = tail(len - at);
            // SAFETY: the mask enables only lanes inside `row`.
            let value =
                _mm512_cvtps_pd(unsafe { _mm256_maskz_loadu_ps(mask, row.as_ptr().add(at)) });
            let scaled = _mm512_min_pd(_mm512_max_pd(_mm512_mul_pd(value, inverse), low), high);
            // Half away from zero, then toward zero: the scalar `(t + 0.5.copysign(t)) as i8`.
            let away = _mm512_or_pd(half, _mm512_and_pd(scaled, sign));
            let rounded = _mm512_cvttpd_epi32(_mm512_add_pd(scaled, away));
            // SAFETY: the mask enables only lanes inside `bytes` (as long as `row`).
            unsafe {
                _mm256_mask_cvtepi32_storeu_epi8(bytes.as_mut_ptr().add(at).cast(), mask, rounded);
            }
            let err = _mm512_sub_pd(value, _mm512_mul_pd(step, _mm512_cvtepi32_pd(rounded)));
            err2 = _mm512_add_pd(err2, _mm512_mul_pd(err, err));
            at += 8;
        }
        let err2 = join(err2, |a, b| a + b);
        (
            scale,
            err2.sqrt() * (1.0 + 1e-12),
            join(norm2, |a, b| a + b),
        )
    }

    /// The lanes of an eight-value step `left` values from the end.
    #[inline]
    fn tail(left: usize) -> u8 {
        if left >= 8 {
            u8::MAX
        } else {
            (1_u8 << left) - 1
        }
    }

    /// The eight lanes joined as [`super::lanes`] joins them.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn join(lanes: std::arch::x86_64::__m512d, op: fn(f64, f64) -> f64) -> f64 {
        let mut a = [0.0_f64; 8];
        // SAFETY: eight f64 lanes into eight f64.
        unsafe { std::arch::x86_64::_mm512_storeu_pd(a.as_mut_ptr(), lanes) };
        op(
            op(op(a[0], a[4]), op(a[2], a[6])),
            op(op(a[1], a[5]), op(a[3], a[7])),
        )
    }

    use std::arch::x86_64::{
        __m512i, _mm512_dpbusd_epi32, _mm512_loadu_si512, _mm512_maskz_loadu_epi8,
        _mm512_reduce_add_epi32, _mm512_setzero_si512,
    };

    /// The byte dot products of query `q` with the 8 rows `r`, `cols` bytes each.
    ///
    /// # Safety
    /// As for [`tile`].
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn row8(q: *const u8, r: [*const i8; 8], cols: usize) -> [i32; 8] {
        let mut acc = [_mm512_setzero_si512(); 8];
        let full = cols - cols % 64;
        let mut at = 0;
        while at < full {
            // SAFETY: at + 64 <= full <= cols bytes from every pointer.
            let qv = unsafe { _mm512_loadu_si512(q.add(at).cast()) };
            for j in 0..8 {
                // SAFETY: as above.
                let rv = unsafe { _mm512_loadu_si512(r[j].add(at).cast()) };
                acc[j] = _mm512_dpbusd_epi32(acc[j], qv, rv);
            }
            at += 64;
        }
        if full < cols {
            let mask = (1_u64 << (cols - full)) - 1;
            // SAFETY: only the enabled lanes, which lie inside every row, are read.
            let qv = unsafe { _mm512_maskz_loadu_epi8(mask, q.add(full).cast()) };
            for j in 0..8 {
                // SAFETY: as above.
                let rv = unsafe { _mm512_maskz_loadu_epi8(mask, r[j].add(full).cast()) };
                acc[j] = _mm512_dpbusd_epi32(acc[j], qv, rv);
            }
        }
        acc.map(|a| _mm512_reduce_add_epi32(a))
    }

    /// The 4 x 4 byte dot products of queries `q` and rows `r`, `cols` bytes each.
    ///
    /// # Safety
    /// The CPU has avx512f, avx512bw and avx512vnni; every pointer starts `cols`
    /// readable bytes.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::needless_range_loop)] // acc[i][j]: two indices
    pub(super) unsafe fn tile(q: [*const u8; 4], r: [*const i8; 4], cols: usize) -> [[i32; 4]; 4] {
        let mut acc: [[__m512i; 4]; 4] = [[_mm512_setzero_si512(); 4]; 4];
        let full = cols - cols % 64;
        let mut at = 0;
        while at < full {
            // SAFETY: at + 64 <= full <= cols bytes from every pointer.
            let qv: [__m512i; 4] =
                [0, 1, 2, 3].map(|i| unsafe { _mm512_loadu_si512(q[i].add(at).cast()) });
            for j in 0..4 {
                // SAFETY: as above.
                let rv = unsafe { _mm512_loadu_si512(r[j].add(at).cast()) };
                for i in 0..4 {
                    acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], qv[i], rv);
                }
            }
            at += 64;
        }
        if full < cols {
            let mask = (1_u64 << (cols - full)) - 1;
            // SAFETY: only the enabled lanes, which lie inside every row, are read.
            let qv: [__m512i; 4] = [0, 1, 2, 3]
                .map(|i| unsafe { _mm512_maskz_loadu_epi8(mask, q[i].add(full).cast()) });
            for j in 0..4 {
                // SAFETY: as above.
                let rv = unsafe { _mm512_maskz_loadu_epi8(mask, r[j].add(full).cast()) };
                for i in 0..4 {
                    acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], qv[i], rv);
                }
            }
        }
        acc.map(|row| row.map(|a| _mm512_reduce_add_epi32(a)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_data::noise;

    #[test]
    #[allow(clippy::float_cmp)] // the same arithmetic: the same bits
    fn an_f32_row_quantizes_as_its_f64_values_do() {
        for len in (0..40).chain([1280, 1283]) {
            let mut row = noise(len, 4);
            if len > 3 {
                // A value at the top of the scale, and halves to round away from zero.
                row[0] = 3.0;
                row[1] = 3.0 * 0.5 / 127.0;
                row[2] = -3.0 * 2.5 / 127.0;
            }
            let mut bytes = vec![0_i8; len];
            let got = quantize_row(&row, &mut bytes);
            let values: Vec<f64> = row.iter().map(|&v| f64::from(v)).collect();
            let (want_bytes, scale, err) = quantize(&values);
            let norm2 = lanes(&values, 0.0, |s, v| s + v * v, |a, b| a + b);
            assert_eq!(bytes, want_bytes, "len {len}");
            assert_eq!(got, (scale, err, norm2), "len {len}");
        }
    }

    #[test]
    fn byte_dot_products_are_exact_and_quantization_errors_are_measured() {
        for cols in [0, 1, 5, 63, 64, 65, 1280, 1283] {
            let xs = noise(5 * cols, 1);
            let ps = noise(6 * cols, 2);
            let qs: Vec<QuantRow> = xs
                .chunks_exact(cols.max(1))
                .take(5)
                .map(QuantRow::new)
                .collect();
            let rows: Vec<(Vec<i8>, f64, f64)> = ps
                .chunks_exact(cols.max(1))
                .take(6)
                .map(|p| quantize(&p.iter().map(|&v| f64::from(v)).collect::<Vec<_>>()))
                .collect();
            let block: Vec<i8> = rows.iter().flat_map(|r| r.0.iter().copied()).collect();
            let bytes: Vec<&[u8]> = qs.iter().map(|q| q.bytes.as_slice()).collect();
            let mut out = vec![i32::MIN; bytes.len() * 6];
            dots(&bytes, &block, cols, &mut out);
            if let Some(&q) = bytes.first() {
                // One query alone takes its own kernel: the same sums.
                let mut one = vec![i32::MIN; 6];
                dots(&[q], &block, cols, &mut one);
                assert_eq!(one, out[..6], "{cols}: one query");
            }
            for (i, q) in qs.iter().enumerate() {
                for (r, row) in rows.iter().enumerate() {
                    let want: i64 = q
                        .bytes
                        .iter()
                        .zip(&row.0)
                        .map(|(&a, &b)| i64::from(a) * i64::from(b))
                        .sum();
                    assert_eq!(i64::from(out[i * 6 + r]), want, "{cols} {i} {r}");
                }
                let x = &xs[i * cols..(i + 1) * cols];
                let back: f64 = x
                    .iter()
                    .zip(&q.bytes)
                    .map(|(&v, &b)| (f64::from(v) - q.scale * (f64::from(b) - 128.0)).powi(2))
                    .sum();
                assert!(back.sqrt() <= q.err && q.err <= back.sqrt() * 1.001 + 1e-12);
                #[allow(clippy::cast_precision_loss)]
                let half_steps = q.scale * (cols as f64).sqrt() / 2.0;
                assert!(q.err <= half_steps + 1e-12, "{cols}: rounding");
            }
        }
    }
}
