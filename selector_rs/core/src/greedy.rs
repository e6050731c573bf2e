use std::cmp::Ordering;

use rayon::prelude::*;

use crate::distance::squared_l2;
use crate::matrix::Matrix;

/// Values (not rows) each rayon task should at least cover: below this, handing work
/// to another thread costs more than computing the distances.
const VALUES_PER_TASK: usize = 32 * 1024;

/// Candidate rows scored together against each pool row, so that every pool row is
/// read from memory once per block rather than once per candidate.
const POOL_BLOCK_ROWS: usize = 32;

/// Rows per task for a matrix of width `cols`.
fn grain(cols: usize) -> usize {
    (VALUES_PER_TASK / cols.max(1)).max(1)
}

pub(crate) fn farthest_point(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    n_samples: usize,
    min_distance: f64,
) -> Vec<usize> {
    farthest_point_with_grain(
        candidates,
        pool,
        n_samples,
        min_distance,
        grain(candidates.cols()),
    )
}

/// The greedy loop, with the parallel grain exposed so tests can force rayon to split
/// even tiny inputs.
///
/// Memory beyond the inputs is O(N): squared distance to the nearest pool row or pick
/// for every candidate, and a picked mask. Distances are kept squared (monotone in
/// the true distance) so that only the stopping test needs a square root.
pub(crate) fn farthest_point_with_grain(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    n_samples: usize,
    min_distance: f64,
    grain: usize,
) -> Vec<usize> {
    let budget = n_samples.min(candidates.rows());
    if budget == 0 {
        return Vec::new();
    }
    let mut nearest = nearest_in_pool(candidates, pool);
    let mut picked = vec![false; candidates.rows()];
    let mut picks = Vec::with_capacity(budget);
    let mut best = argmax_unpicked(&nearest, &picked, grain);
    while let Some((i, d2)) = best {
        if d2.sqrt() < min_distance {
            break;
        }
        picks.push(i);
        picked[i] = true;
        if picks.len() == budget {
            break;
        }
        best = relax_and_argmax(candidates, i, &mut nearest, &picked, grain);
    }
    picks
}

/// Squared distance from each candidate to its nearest pool row (+inf without a pool).
fn nearest_in_pool(candidates: &Matrix<'_>, pool: &Matrix<'_>) -> Vec<f64> {
    let mut nearest = vec![f64::INFINITY; candidates.rows()];
    if pool.rows() == 0 {
        return nearest;
    }
    nearest
        .par_chunks_mut(POOL_BLOCK_ROWS)
        .enumerate()
        .for_each(|(block, out)| {
            let first = block * POOL_BLOCK_ROWS;
            for p in 0..pool.rows() {
                let pool_row = pool.row(p);
                for (offset, best) in out.iter_mut().enumerate() {
                    let d2 = squared_l2(candidates.row(first + offset), pool_row);
                    if d2 < *best {
                        *best = d2;
                    }
                }
            }
        });
    nearest
}

/// Lowers every unpicked candidate's distance by the newest pick and returns the
/// farthest candidate, in a single pass over the data.
fn relax_and_argmax(
    candidates: &Matrix<'_>,
    newest: usize,
    nearest: &mut [f64],
    picked: &[bool],
    grain: usize,
) -> Option<(usize, f64)> {
    let pick_row = candidates.row(newest);
    nearest
        .par_iter_mut()
        .zip(picked.par_iter())
        .enumerate()
        .with_min_len(grain)
        .filter(|(_, (_, &done))| !done)
        .map(|(i, (best, _))| {
            let d2 = squared_l2(candidates.row(i), pick_row);
            if d2 < *best {
                *best = d2;
            }
            (i, *best)
        })
        .reduce_with(farther)
}

fn argmax_unpicked(nearest: &[f64], picked: &[bool], grain: usize) -> Option<(usize, f64)> {
    nearest
        .par_iter()
        .zip(picked.par_iter())
        .enumerate()
        .with_min_len(grain)
        .filter(|(_, (_, &done))| !done)
        .map(|(i, (&d2, _))| (i, d2))
        .reduce_with(farther)
}

/// The farther of two `(index, squared distance)` pairs, the lower index on an exact
/// tie. Being commutative and associative, the result is the same however rayon
/// splits the work. Distances are never NaN (inputs are validated finite).
fn farther(a: (usize, f64), b: (usize, f64)) -> (usize, f64) {
    match b.1.total_cmp(&a.1) {
        Ordering::Greater => b,
        Ordering::Equal if b.0 < a.0 => b,
        _ => a,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m<'a>(name: &'static str, data: &'a [f32], cols: usize) -> Matrix<'a> {
        let rows = data.len().checked_div(cols).unwrap_or(0);
        Matrix::new(name, data, rows, cols).unwrap()
    }

    fn no_pool() -> Matrix<'static> {
        Matrix::new("pool", &[], 0, 0).unwrap()
    }

    #[test]
    fn first_pick_without_pool_is_candidate_zero() {
        let c = [5.0, 0.0, 1.0, 9.0];
        assert_eq!(farthest_point(&m("c", &c, 1), &no_pool(), 1, 0.0), vec![0]);
    }

    #[test]
    fn picks_farthest_first() {
        // 1-D points; after 0.0 the farthest is 9.0, then 5.0 (4 from 9, 5 from 0).
        let c = [0.0, 1.0, 9.0, 5.0];
        assert_eq!(
            farthest_point(&m("c", &c, 1), &no_pool(), 10, 0.0),
            vec![0, 2, 3, 1]
        );
    }

    #[test]
    fn ties_go_to_the_lowest_index() {
        // From candidate 0, candidates 2 and 3 are both at distance 1 (1 at 0.5).
        let c = [0.0, 0.0, 0.5, 0.0, 0.0, 1.0, -1.0, 0.0];
        for grain in [1, 2, 1000] {
            let got = farthest_point_with_grain(&m("c", &c, 2), &no_pool(), 4, 0.0, grain);
            assert_eq!(got, vec![0, 2, 3, 1], "grain {grain}");
        }
    }

    #[test]
    fn pool_rows_count_as_already_picked() {
        // D from the pool: 0, 4, 1; after picking 4, candidate 10 is still 1 away.
        let c = [0.0, 4.0, 10.0];
        let p = [0.0, 9.0];
        assert_eq!(
            farthest_point(&m("c", &c, 1), &m("p", &p, 1), 3, 0.0),
            vec![1, 2, 0]
        );
    }

    #[test]
    fn stops_below_min_distance_but_keeps_exact_ties() {
        let c = [0.0, 0.0, 3.0, 4.0, 0.0, 1.0];
        let p = [0.0, -5.0];
        // D from the pool: 5, sqrt(90), 6, so candidate 1 goes first.
        let got = farthest_point(&m("c", &c, 2), &m("p", &p, 2), 10, 5.0);
        // Candidate 0 is exactly 5 from both pool and candidate 1: picked.
        assert_eq!(got, vec![1, 0]);
        let got = farthest_point(&m("c", &c, 2), &m("p", &p, 2), 10, 5.000_001);
        assert_eq!(got, vec![1]);
    }

    #[test]
    fn candidate_equal_to_a_pool_row_needs_zero_min_distance() {
        let c = [1.0, 2.0];
        let p = [1.0, 2.0];
        assert!(farthest_point(&m("c", &c, 2), &m("p", &p, 2), 1, 1e-9).is_empty());
        assert_eq!(
            farthest_point(&m("c", &c, 2), &m("p", &p, 2), 1, 0.0),
            vec![0]
        );
    }

    #[test]
    fn never_picks_more_than_there_are() {
        let c = [0.0, 0.0, 0.0];
        assert_eq!(
            farthest_point(&m("c", &c, 1), &no_pool(), 99, 0.0),
            vec![0, 1, 2]
        );
        assert!(farthest_point(&m("c", &c, 1), &no_pool(), 0, 0.0).is_empty());
        assert!(farthest_point(&m("c", &[], 3), &no_pool(), 5, 0.0).is_empty());
    }

    #[test]
    fn zero_width_rows_are_all_at_distance_zero() {
        let c = Matrix::new("c", &[], 3, 0).unwrap();
        assert_eq!(farthest_point(&c, &no_pool(), 5, 0.0), vec![0, 1, 2]);
        assert_eq!(farthest_point(&c, &no_pool(), 5, 0.5), vec![0]);
        let p = Matrix::new("p", &[], 2, 0).unwrap();
        assert!(farthest_point(&c, &p, 5, 0.5).is_empty());
    }

    #[test]
    fn parallel_split_does_not_change_the_result() {
        let n = 3000;
        #[allow(clippy::cast_precision_loss)] // indices well below 2^24
        let c: Vec<f32> = (0..n * 3)
            .map(|i| ((i * 7919) % 1013) as f32 / 17.0)
            .collect();
        let p: Vec<f32> = c[..300].to_vec();
        let (c, p) = (m("c", &c, 3), m("p", &p, 3));
        let serial = farthest_point_with_grain(&c, &p, 200, 0.0, usize::MAX);
        let split = farthest_point_with_grain(&c, &p, 200, 0.0, 1);
        assert_eq!(serial.len(), 200);
        assert_eq!(serial, split);
    }

    #[test]
    fn farther_is_order_independent() {
        let pairs = [(3, 1.0), (1, 1.0), (2, 0.5), (0, 1.0), (4, f64::INFINITY)];
        for &a in &pairs {
            for &b in &pairs {
                assert_eq!(farther(a, b), farther(b, a));
            }
        }
        assert_eq!(farther((3, 1.0), (1, 1.0)), (1, 1.0));
    }
}
