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
//! * [`select`]: the greedy loop over those distances, lazily: a max-heap of
//!   per-candidate upper bounds, and a candidate folds in the picks it has not seen
//!   only when it reaches the top. Each candidate-pick distance is computed at most
//!   once, so this never does more distance work than a full per-pick update of every
//!   candidate, and on spread-out data (where a new pick is far from almost everyone)
//!   it does a few rows per pick.

use std::collections::BinaryHeap;

use rayon::prelude::*;

use std::sync::atomic::Ordering;

use crate::counters;
use crate::distance::half_rows::HalfRows;
use crate::distance::{l2, l2_x4};
use crate::greedy::Pick;
use crate::matrix::Blocks;
use crate::pool_bounds::PoolBounds;
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
const KERNEL_SLACK: f64 = 1e-5;

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

/// Heap entry: a candidate with an upper bound on its distance, exact once it has
/// seen every pick.
#[derive(Debug, Clone, Copy)]
struct Entry {
    bound: f64,
    index: usize,
}

// Largest bound first, then the lowest index: the greedy rule's own order.
largest_bound_first!(Entry, index);

/// Distances computed between two cancellation checks in the greedy loop (about 50 ms
/// at width 1280 on two cores).
const DISTANCES_PER_CHECK: usize = 1 << 18;

/// Stale candidates refined together before it pays to use more than one thread.
const PARALLEL_BATCH: usize = 64;

/// Where the lazy loop starts, per candidate.
pub(crate) struct Start<'s> {
    /// The distance to the pool (and to picks made before the loop, if any): exact,
    /// except for the candidates `bounds` bounded, whose value here is an upper bound.
    pub pool: Vec<f64>,
    /// The exact distance to picks made before the loop that `pool` does not include.
    pub near: Vec<f64>,
    pub bounds: Option<&'s PoolBounds<'s>>,
}

impl Start<'_> {
    /// Exact distances `d` to the pool and any earlier picks.
    #[cfg(test)]
    pub(crate) fn exact(d: Vec<f64>) -> Self {
        let near = vec![f64::INFINITY; d.len()];
        Self {
            pool: d,
            near,
            bounds: None,
        }
    }
}

/// A stale candidate after its refinement.
struct Refined {
    index: usize,
    near: f64,
    pool: f64,
    seen: usize,
    settled: bool,
}

/// The greedy loop from `picks` (already made) on, from `start`; picked candidates are
/// skipped. A candidate is exact once it has seen every pick and its pool distance is
/// settled.
///
/// # Errors
/// [`SelectError::Cancelled`].
pub(crate) fn select(
    candidates: &Blocks<'_>,
    half: Option<&HalfRows>,
    start: Start<'_>,
    mut picks: Vec<Pick>,
    budget: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    let Start {
        mut pool,
        mut near,
        bounds,
    } = start;
    let n = pool.len();
    let mut settled: Vec<bool> = (0..n)
        .map(|i| bounds.is_none_or(|b| !b.bounded(i)))
        .collect();
    let mut seen = vec![picks.len(); n];
    let mut picked = vec![false; n];
    for p in &picks {
        picked[p.index] = true;
    }
    let mut heap: BinaryHeap<Entry> = (0..n)
        .filter(|&i| !picked[i])
        .map(|index| Entry {
            bound: pool[index].min(near[index]),
            index,
        })
        .collect();
    let mut batch: Vec<Entry> = Vec::new();
    let mut refined_rows = 0_usize;
    while picks.len() < budget {
        if cancel() {
            return Err(SelectError::Cancelled);
        }
        let t = picks.len();
        let mut round = 1;
        let top = loop {
            let Some(top) = heap.peek().copied() else {
                break None;
            };
            if seen[top.index] == t && settled[top.index] {
                break Some(heap.pop().expect("peeked"));
            }
            if cancel() {
                return Err(SelectError::Cancelled);
            }
            // Every stale entry at the top, up to `round` of them (and a bounded number
            // of distances), refined together: rounds double so that a long stale
            // stretch goes to the threads.
            let mut work = 0;
            while batch.len() < round && work < DISTANCES_PER_CHECK {
                match heap.peek() {
                    Some(e) if seen[e.index] < t || !settled[e.index] => {
                        work += t - seen[e.index] + 1;
                        batch.push(heap.pop().expect("peeked"));
                    }
                    _ => break,
                }
            }
            round = (round * 2).min(4096);
            // A row whose bound falls below the largest bound left in the heap cannot
            // be picked now: its folding stops there, the picks it has not seen (and its
            // pool distance, if not settled) kept for when it comes up again.
            let floor = heap.peek().map_or(f64::NEG_INFINITY, |e| e.bound);
            let refine = |e: &Entry| {
                let i = e.index;
                let from = seen[i];
                let picks = &picks[from..t];
                let (nearest, folded, measured) = match half {
                    Some(h) => h.fold(candidates, i, picks, near[i], floor),
                    None => fold_picks(candidates, candidates.row(i), picks, near[i], floor),
                };
                counters::add(&counters::PICK_DISTANCES, measured);
                counters::add(&counters::PICKS_BOUNDED, folded);
                let mut to_pool = pool[i];
                let mut now = settled[i];
                if let Some(b) = bounds.filter(|_| !now && from + folded == t) {
                    let cutoff = nearest.min(to_pool);
                    if cutoff >= floor {
                        let (exact, rows) = b.settle(candidates, i, cutoff);
                        counters::add(&counters::SEARCHES, 1);
                        counters::add(&counters::SEARCH_ROWS, rows);
                        to_pool = exact;
                        now = true;
                    }
                }
                Refined {
                    index: i,
                    near: nearest,
                    pool: to_pool,
                    seen: from + folded,
                    settled: now,
                }
            };
            let refined: Vec<Refined> = if batch.len() < PARALLEL_BATCH {
                batch.iter().map(refine).collect()
            } else {
                batch.par_iter().map(refine).collect()
            };
            batch.clear();
            refined_rows += refined.len();
            for r in refined {
                let i = r.index;
                (near[i], pool[i], seen[i], settled[i]) = (r.near, r.pool, r.seen, r.settled);
                heap.push(Entry {
                    bound: r.near.min(r.pool),
                    index: i,
                });
            }
        };
        let Some(top) = top else { break };
        if top.bound < min_distance {
            break;
        }
        picked[top.index] = true;
        picks.push(Pick {
            index: top.index,
            distance: top.bound,
        });
    }
    crate::switch::trace(|| {
        format!(
            "dense: {refined_rows} rows refined, {} candidate-pick pairs seen, {} measured; {} pool distances settled, reading {} pool rows",
            counters::PICKS_BOUNDED.swap(0, Ordering::Relaxed),
            counters::PICK_DISTANCES.swap(0, Ordering::Relaxed),
            counters::SEARCHES.swap(0, Ordering::Relaxed),
            counters::SEARCH_ROWS.swap(0, Ordering::Relaxed)
        )
    });
    Ok(picks)
}

/// `start` lowered by the distances from `x` to the rows of `picks`, four at a time (`x`
/// read once for four picks), until it falls below `floor`; how many picks it saw, and
/// measured (all it saw).
fn fold_picks(
    candidates: &Blocks<'_>,
    x: &[f32],
    picks: &[Pick],
    start: f64,
    floor: f64,
) -> (f64, usize, usize) {
    let mut nearest = start;
    let mut chunks = picks.chunks_exact(4);
    for (k, c) in (&mut chunks).enumerate() {
        if nearest < floor {
            return (nearest, 4 * k, 4 * k);
        }
        let rows = [0, 1, 2, 3].map(|j| candidates.row(c[j].index));
        nearest = l2_x4(x, rows).into_iter().fold(nearest, f64::min);
    }
    let done = picks.len() - chunks.remainder().len();
    for (k, p) in chunks.remainder().iter().enumerate() {
        if nearest < floor {
            return (nearest, done + k, done + k);
        }
        nearest = nearest.min(l2(x, candidates.row(p.index)));
    }
    (nearest, picks.len(), picks.len())
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
    fn the_lazy_loop_picks_as_a_full_update_would() {
        let (n, cols) = (500, 16);
        let c = noise(n * cols, 3);
        let m = Matrix::new("candidates", &c, n, cols).unwrap();
        let b = Blocks::from(&m);
        let picks = select(
            &b,
            None,
            Start::exact(vec![f64::INFINITY; n]),
            Vec::new(),
            60,
            0.0,
            &|| false,
        )
        .unwrap();
        // A full update of every candidate after every pick.
        let mut d = vec![f64::INFINITY; n];
        let mut want = Vec::new();
        for _ in 0..60 {
            let (i, &di) = d
                .iter()
                .enumerate()
                .filter(|(i, _)| !want.contains(i))
                .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
                .unwrap();
            want.push(i);
            assert_eq!(picks[want.len() - 1].distance, di);
            for (k, dk) in d.iter_mut().enumerate() {
                *dk = dk.min(l2(b.row(k), b.row(i)));
            }
        }
        assert_eq!(picks.iter().map(|p| p.index).collect::<Vec<_>>(), want);
    }

    #[test]
    fn the_lazy_loop_over_bfloat16_bounds_picks_as_the_f32_loop_does() {
        // Clusters of near-duplicates: distances the bounds cannot tell apart.
        let (n, cols) = (600, 64);
        let centres = noise(30 * cols, 11);
        let c: Vec<f32> = noise(n * cols, 12)
            .chunks_exact(cols)
            .enumerate()
            .flat_map(|(i, w)| {
                let centre = &centres[(i % 30) * cols..(i % 30 + 1) * cols];
                centre
                    .iter()
                    .zip(w)
                    .map(|(c, w)| c + 1e-3 * w)
                    .collect::<Vec<f32>>()
            })
            .collect();
        let m = Matrix::new("candidates", &c, n, cols).unwrap();
        let b = Blocks::from(&m);
        let half = HalfRows::of_blocks(&b);
        let d = vec![f64::INFINITY; n];
        let plain = select(
            &b,
            None,
            Start::exact(d.clone()),
            Vec::new(),
            80,
            0.0,
            &|| false,
        )
        .unwrap();
        let bounded = select(
            &b,
            Some(&half),
            Start::exact(d),
            Vec::new(),
            80,
            0.0,
            &|| false,
        )
        .unwrap();
        assert_eq!(plain, bounded);
        assert!(plain[79].distance < 0.05, "{:?}", plain[79]);
    }

    #[test]
    fn the_lazy_loop_stops_below_min_distance_and_when_rows_run_out() {
        let c = [0.0, 1.0, 3.0];
        let m = Matrix::new("candidates", &c, 3, 1).unwrap();
        let b = Blocks::from(&m);
        let d = vec![f64::INFINITY; 3];
        let got = select(
            &b,
            None,
            Start::exact(d.clone()),
            Vec::new(),
            9,
            1.5,
            &|| false,
        )
        .unwrap();
        assert_eq!(got.iter().map(|p| p.index).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(
            select(&b, None, Start::exact(d), Vec::new(), 9, 0.0, &|| false)
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn cancellation_stops_the_gemm_pass_and_the_loop() {
        let c = [0.0, 1.0, 3.0];
        let m = Matrix::new("candidates", &c, 3, 1).unwrap();
        let b = Blocks::from(&m);
        let t = Targets { data: &c, rows: 3 };
        assert_eq!(
            nearest(&b, &[0, 1, 2], t, &|| true),
            Err(SelectError::Cancelled)
        );
        let err = select(
            &b,
            None,
            Start::exact(vec![1.0; 3]),
            Vec::new(),
            2,
            0.0,
            &|| true,
        )
        .unwrap_err();
        assert_eq!(err, SelectError::Cancelled);
    }
}
