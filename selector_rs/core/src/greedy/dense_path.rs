//! The dense path, from wherever the pruned loop handed over.

use std::time::Instant;

use super::{Pick, Prepared};
use crate::dense::{self, Targets};
use crate::distance::half_rows::HalfRows;
use crate::halves;
use crate::lazy::{self, Start};
use crate::matrix::{Blocks, Matrix};
use crate::pool_bounds::PoolBounds;
use crate::switch::trace;
use crate::validate::SelectError;
use crate::Cancel;

/// What is known of the candidates' pool distances: bounds, exact where `exact` says.
#[derive(Clone, Copy)]
pub(crate) struct Known<'a> {
    pub pool_ub: &'a [f64],
    pub exact: &'a [bool],
}

impl<'a> From<&'a Prepared> for Known<'a> {
    fn from(prep: &'a Prepared) -> Self {
        Self {
            pool_ub: &prep.pool_ub,
            exact: &prep.pool_exact,
        }
    }
}

/// The dense path from the first pick, knowing nothing of the candidates yet: no pool
/// index and no preparation (see `plan`).
///
/// # Errors
/// [`SelectError::Cancelled`].
pub(crate) fn dense_alone(
    candidates: &Blocks<'_>,
    pool: &Matrix<'_>,
    budget: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    let n = candidates.rows();
    let (pool_ub, exact) = (vec![f64::INFINITY; n], vec![false; n]);
    let known = Known {
        pool_ub: &pool_ub,
        exact: &exact,
    };
    dense_from(
        candidates,
        pool,
        known,
        Vec::new(),
        budget,
        min_distance,
        cancel,
    )
}

/// The dense path from `picks` on: exact distances to the pool (by GEMM, for the rows
/// whose distance `known` does not give exactly yet) and to those picks, then the lazy
/// greedy loop.
pub(crate) fn dense_from(
    candidates: &Blocks<'_>,
    pool: &Matrix<'_>,
    known: Known<'_>,
    picks: Vec<Pick>,
    budget: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    let pool_rows = Targets {
        data: pool.data(),
        rows: pool.rows(),
    };
    let inexact: Vec<usize> = (0..candidates.rows())
        .filter(|&i| !known.exact[i])
        .collect();
    let started = Instant::now();
    // The lazy loop bounds candidate-pick pairs through bfloat16 copies where the CPU
    // has the kernels (see `halves`) and the copies stay small.
    let half = halves::worth_copying(candidates).then(|| HalfRows::of_blocks(candidates));
    trace(|| {
        format!(
            "dense: bfloat16 copies, {:.4} s",
            started.elapsed().as_secs_f64()
        )
    });
    let started = Instant::now();
    let nearest =
        |rows: &[usize], targets: Targets<'_>| dense::nearest(candidates, rows, targets, cancel);
    // Through the bfloat16 copies, the pool pass gives bounds and the lazy loop settles
    // exact pool distances on demand (`pool_bounds`); otherwise the f32 GEMM gives them.
    let bounds = match &half {
        Some(h) if pool.rows() > 0 && PoolBounds::fits(inexact.len(), pool.rows()) => {
            Some(PoolBounds::build(h, &inexact, pool, cancel)?)
        }
        _ => None,
    };
    let mut d = known.pool_ub.to_vec();
    match &bounds {
        Some(b) => {
            for (i, upper) in inexact.iter().zip(&b.upper) {
                d[*i] = *upper;
            }
        }
        None => {
            for (i, near) in inexact.iter().zip(nearest(&inexact, pool_rows)?) {
                d[*i] = near;
            }
        }
    }
    trace(|| {
        format!(
            "dense: {} pool pass, {} rows, {:.4} s",
            if bounds.is_some() { "bfloat16" } else { "GEMM" },
            inexact.len(),
            started.elapsed().as_secs_f64()
        )
    });
    let started = Instant::now();
    let mut near = vec![f64::INFINITY; candidates.rows()];
    if !picks.is_empty() {
        let rows = dense::gather(candidates, &picks);
        let picked = Targets {
            data: &rows,
            rows: picks.len(),
        };
        let all = dense::all_rows(candidates);
        near = nearest(&all, picked)?;
    }
    trace(|| {
        format!(
            "dense: GEMM pass over {} picks, {:.4} s",
            picks.len(),
            started.elapsed().as_secs_f64()
        )
    });
    let start = Start {
        pool: d,
        near,
        bounds: bounds.as_ref(),
    };
    let started = Instant::now();
    let picks = lazy::select(
        candidates,
        half.as_ref(),
        &start,
        picks,
        budget,
        min_distance,
        cancel,
    )?;
    trace(|| {
        format!(
            "dense: lazy loop to {} picks, {:.4} s",
            picks.len(),
            started.elapsed().as_secs_f64()
        )
    });
    Ok(picks)
}
