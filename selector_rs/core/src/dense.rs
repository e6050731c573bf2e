//! The fallback for data where pruning does not pay (uniform rows, rough video).
//!
//! Two parts, both exact:
//!
//! * [`nearest`]: every candidate's distance to its nearest target row (pool rows and
//!   earlier picks) by a blocked GEMM (the `gemm` crate's `f32` kernels,
//!   chosen at run time: AVX-512, AVX2+FMA, ...), `|x|² + |t|² - 2 x·t`.
//!   That expansion is fast but loses the small distances to cancellation, so it only
//!   shortlists: every row whose GEMM value lies within a proven error bound of the
//!   smallest is measured again with the one distance kernel ([`l2`]). The result is
//!   bit for bit what [`l2`] gives for the nearest row, as on the pruned path.
//! * `lazy::select`, the greedy loop over those distances.

use rayon::prelude::*;

use crate::distance::l2;
use crate::greedy::Pick;
use crate::matrix::Blocks;
use crate::validate::SelectError;
use crate::Cancel;

/// Candidate rows multiplied against the targets at once (one GEMM per block).
const BLOCK_ROWS: usize = 128;

/// Target rows per GEMM: bounds the `BLOCK_ROWS x TARGET_CHUNK` f32 product buffer.
const TARGET_CHUNK: usize = 8192;

/// Candidate-target pairs between two cancellation checks (about 40 ms of GEMM at
/// width 1280 on two cores); at least one block per thread.
const PAIRS_PER_CHECK: usize = 1 << 20;

/// Relative slack for the f32 distance kernel's own rounding (far above its few 1e-7).
pub(crate) const KERNEL_SLACK: f64 = 1e-5;

/// Target rows, contiguous and row-major.
#[derive(Clone, Copy)]
pub(crate) struct Targets<'a> {
    pub data: &'a [f32],
    pub rows: usize,
}

/// `gamma_k = k u / (1 - k u)`: the relative bound on an f32 dot product of `k` terms
/// in any summation order, against the sum of the absolute products. It holds for any
/// GEMM kernel that forms each dot product as a sum of the `k` products (each term goes
/// through at most `k` roundings, whatever the order, the blocking over `k` or the
/// lanes), fused multiply-adds included (one rounding where there were two); it would
/// not hold for Strassen-like products, which no kernel used here is.
fn gamma(k: usize) -> f64 {
    #[allow(clippy::cast_precision_loss)]
    let ku = k as f64 * f64::from(f32::EPSILON) / 2.0;
    ku / (1.0 - ku)
}

/// `|row|²` in f64, in the eight lanes of `int8_dot::lanes` (one accumulator would
/// make a chain of 1,280 dependent additions of a row).
fn sum_squares(row: &[f32]) -> f64 {
    let mut acc = [0.0_f64; 8];
    let mut chunks = row.chunks_exact(8);
    for c in &mut chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += f64::from(v) * f64::from(v);
        }
    }
    for (a, &v) in acc.iter_mut().zip(chunks.remainder()) {
        *a += f64::from(v) * f64::from(v);
    }
    acc.iter().sum()
}

/// Distance from each of `candidates`' rows `rows` to its nearest row of `targets`, as
/// [`l2`] computes it (`inf` when there are no targets).
///
/// # Errors
/// [`SelectError::Cancelled`] when `cancel` says so (checked between slabs of blocks).
pub(crate) fn nearest(
    candidates: &Blocks<'_>,
    rows: &[usize],
    targets: Targets<'_>,
    cancel: Cancel<'_>,
) -> Result<Vec<f64>, SelectError> {
    let norms = norms(targets, candidates.cols());
    let near = nearest_rows(candidates, rows, targets, &norms, cancel)?;
    Ok(near.into_iter().map(|(d, _)| d).collect())
}

/// Squared norms of the target rows, in f64: what [`nearest_rows`] needs of them, so
/// that a caller searching the same targets many times computes them once.
pub(crate) fn norms(targets: Targets<'_>, cols: usize) -> Vec<f64> {
    if cols == 0 {
        return vec![0.0; targets.rows];
    }
    targets.data.chunks_exact(cols).map(sum_squares).collect()
}

/// [`nearest`], with each row's nearest target row too (the lowest one on ties;
/// `usize::MAX` when there are no targets), given the targets' [`norms`].
///
/// # Errors
/// [`SelectError::Cancelled`] when `cancel` says so (checked between slabs of blocks).
pub(crate) fn nearest_rows(
    candidates: &Blocks<'_>,
    rows: &[usize],
    targets: Targets<'_>,
    norms: &[f64],
    cancel: Cancel<'_>,
) -> Result<Vec<(f64, usize)>, SelectError> {
    let (n, cols) = (rows.len(), candidates.cols());
    if targets.rows == 0 {
        return Ok(vec![(f64::INFINITY, usize::MAX); n]);
    }
    if cols == 0 {
        return Ok(vec![(0.0, 0); n]);
    }
    let largest = norms.iter().copied().fold(0.0, f64::max).sqrt();
    let mut out = vec![(0.0, 0); n];
    let blocks = n.div_ceil(BLOCK_ROWS);
    let per_check =
        (PAIRS_PER_CHECK / (BLOCK_ROWS * targets.rows)).max(rayon::current_num_threads());
    for slab in (0..blocks).step_by(per_check) {
        if cancel() {
            return Err(SelectError::Cancelled);
        }
        let end = ((slab + per_check) * BLOCK_ROWS).min(n);
        out[slab * BLOCK_ROWS..end]
            .par_chunks_mut(BLOCK_ROWS)
            .enumerate()
            .for_each(|(b, out)| {
                let first = (slab + b) * BLOCK_ROWS;
                let rows = &rows[first..first + out.len()];
                nearest_block(candidates, rows, targets, norms, largest, out);
            });
    }
    Ok(out)
}

/// [`nearest_rows`] for one block of `rows`.
fn nearest_block(
    candidates: &Blocks<'_>,
    rows: &[usize],
    targets: Targets<'_>,
    norms: &[f64],
    largest: f64,
    out: &mut [(f64, usize)],
) {
    let (m, cols) = (out.len(), candidates.cols());
    // Consecutive rows of one block are multiplied where they lie; others are gathered.
    let consecutive = rows.windows(2).all(|w| w[1] == w[0] + 1);
    let gathered;
    let x = if let Some(x) = consecutive.then(|| candidates.span(rows[0], m)).flatten() {
        x
    } else {
        gathered = gather_rows(candidates, rows.iter().copied());
        &gathered[..]
    };
    let x_norms: Vec<f64> = x.chunks_exact(cols).map(sum_squares).collect();
    // |approx - true d²| <= 2 gamma |x| |t| (the dot product); the norms in f64 add
    // nothing that matters, but the bound is doubled anyway.
    let err: Vec<f64> = x_norms
        .iter()
        .map(|nx| 4.0 * gamma(cols) * nx.sqrt() * largest)
        .collect();
    let mut best = vec![f64::INFINITY; m];
    let mut shortlist: Vec<Vec<(f64, usize)>> = vec![Vec::new(); m];
    let chunk = TARGET_CHUNK.min(targets.rows);
    let mut product = vec![0.0_f32; m * chunk];
    let mut approx = vec![0.0_f64; chunk];
    for start in (0..targets.rows).step_by(chunk) {
        let width = chunk.min(targets.rows - start);
        let t = &targets.data[start * cols..(start + width) * cols];
        // SAFETY: `x` is m x cols row-major, `t` is width x cols row-major (read as its
        // transpose, cols x width, through the strides), `product` holds m x width;
        // `gemm` takes (column stride, row stride) pairs and computes
        // `dst = alpha dst + beta lhs rhs`, here with `dst` not read (alpha 0, beta 1).
        unsafe {
            gemm::gemm(
                m,
                width,
                cols,
                product.as_mut_ptr(),
                1,
                stride(width),
                false,
                x.as_ptr(),
                1,
                stride(cols),
                t.as_ptr(),
                stride(cols),
                1,
                0.0,
                1.0,
                false,
                false,
                false,
                // One thread per block: the blocks already run on every rayon thread,
                // which measured faster than one multi-threaded GEMM per larger block.
                gemm::Parallelism::None,
            );
        }
        let t_norms = &norms[start..start + width];
        for i in 0..m {
            let row = &product[i * width..(i + 1) * width];
            let approx = &mut approx[..width];
            let mut low = f64::INFINITY;
            for ((a, &p), &tn) in approx.iter_mut().zip(row).zip(t_norms) {
                *a = x_norms[i] + tn - 2.0 * f64::from(p);
                low = low.min(*a);
            }
            best[i] = best[i].min(low);
            let cut = window(best[i], err[i]);
            shortlist[i].extend(
                approx
                    .iter()
                    .enumerate()
                    .filter(|&(_, &a)| a <= cut)
                    .map(|(j, &a)| (a, start + j)),
            );
        }
    }
    for (i, o) in out.iter_mut().enumerate() {
        let cut = window(best[i], err[i]);
        let row = candidates.row(rows[i]);
        // The shortlist is in target order, so a strict `<` keeps the lowest row.
        *o = shortlist[i]
            .iter()
            .filter(|&&(a, _)| a <= cut)
            .map(|&(_, j)| (l2(row, &targets.data[j * cols..(j + 1) * cols]), j))
            .fold(
                (f64::INFINITY, usize::MAX),
                |a, b| if b.0 < a.0 { b } else { a },
            );
    }
}

/// The largest GEMM value the nearest row (by [`l2`]) can have, given the smallest GEMM
/// value `low` and the GEMM error bound `err`: that row's kernel value is at most the
/// kernel value of the row at `low`, so its GEMM value is at most `low + 2 err` plus
/// the kernel's relative rounding.
fn window(low: f64, err: f64) -> f64 {
    low + 2.0 * err + 3.0 * KERNEL_SLACK * (low.abs() + err)
}

fn stride(cols: usize) -> isize {
    isize::try_from(cols).expect("a row width fits in isize")
}

/// Gathers the picked rows into one buffer, to be measured against like pool rows.
pub(crate) fn gather(candidates: &Blocks<'_>, picks: &[Pick]) -> Vec<f32> {
    picks
        .iter()
        .flat_map(|p| candidates.row(p.index).iter().copied())
        .collect()
}

/// Rows `rows` of `candidates`, copied into one buffer.
pub(crate) fn gather_rows(candidates: &Blocks<'_>, rows: impl Iterator<Item = usize>) -> Vec<f32> {
    rows.flat_map(|i| candidates.row(i).iter().copied())
        .collect()
}

/// Every row of `candidates`, for [`nearest`].
pub(crate) fn all_rows(candidates: &Blocks<'_>) -> Vec<usize> {
    (0..candidates.rows()).collect()
}

#[cfg(test)]
#[allow(clippy::many_single_char_names, clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;
    use crate::test_data::noise;

    fn brute(c: &Blocks<'_>, t: &[f32], cols: usize) -> Vec<f64> {
        (0..c.rows())
            .map(|i| {
                t.chunks_exact(cols)
                    .map(|r| l2(c.row(i), r))
                    .fold(f64::INFINITY, f64::min)
            })
            .collect()
    }

    #[test]
    fn nearest_gives_the_kernels_own_distance_among_near_duplicates() {
        // Each candidate has 5 target rows within ~1e-3 of it (norms ~6): their squared
        // distances differ by far less than the GEMM expansion's error, so only the
        // exact re-measure of everything in the error window finds the nearest.
        let (n, copies, cols) = (300, 5, 96);
        let bases = noise(n * cols, 7);
        let t: Vec<f32> = bases
            .chunks_exact(cols)
            .zip(noise(n * copies * cols, 9).chunks_exact(copies * cols))
            .flat_map(|(base, tweaks)| {
                tweaks
                    .chunks_exact(cols)
                    .flat_map(|w| base.iter().zip(w).map(|(b, w)| b + 1e-4 * w))
                    .collect::<Vec<f32>>()
            })
            .collect();
        let c: Vec<f32> = bases
            .iter()
            .zip(noise(n * cols, 8))
            .map(|(b, w)| b + 1e-4 * w)
            .collect();
        let m = Matrix::new("candidates", &c, n, cols).unwrap();
        let c = Blocks::from(&m);
        let targets = Targets {
            data: &t,
            rows: n * copies,
        };
        let got = nearest(&c, &all_rows(&c), targets, &|| false).unwrap();
        assert_eq!(got, brute(&c, &t, cols));
        assert!(got.iter().all(|&d| d > 0.0 && d < 1e-2), "{:?}", &got[..4]);
    }

    #[test]
    fn nearest_handles_no_targets_and_zero_width() {
        let c = [1.0, 2.0];
        let m = Matrix::new("candidates", &c, 1, 2).unwrap();
        let none = Targets { data: &[], rows: 0 };
        assert_eq!(
            nearest(&Blocks::from(&m), &[0], none, &|| false).unwrap(),
            vec![f64::INFINITY]
        );
        let m = Matrix::new("candidates", &[], 3, 0).unwrap();
        let empty = Targets { data: &[], rows: 2 };
        assert_eq!(
            nearest(&Blocks::from(&m), &[0, 1, 2], empty, &|| false).unwrap(),
            vec![0.0; 3]
        );
    }

    #[test]
    fn cancellation_stops_the_gemm_pass() {
        let c = [0.0, 1.0, 3.0];
        let m = Matrix::new("candidates", &c, 3, 1).unwrap();
        let b = Blocks::from(&m);
        let t = Targets { data: &c, rows: 3 };
        assert_eq!(
            nearest(&b, &[0, 1, 2], t, &|| true),
            Err(SelectError::Cancelled)
        );
    }
}
