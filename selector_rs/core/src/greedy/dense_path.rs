//! The dense path, from wherever the pruned loop handed over.

use std::time::Instant;

use super::{Pick, Prepared};
use crate::dense::{self, Targets};
use crate::matrix::{Blocks, Matrix};
use crate::switch::trace;
use crate::validate::SelectError;
use crate::Cancel;

/// The dense path from `picks` on: exact distances to the pool (by GEMM, for the rows
/// whose distance `prep` does not know exactly yet) and to those picks, then the lazy
/// greedy loop.
pub(crate) fn dense_from(
    candidates: &Blocks<'_>,
    pool: &Matrix<'_>,
    prep: &Prepared,
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
        .filter(|&i| !prep.pool_exact[i])
        .collect();
    let started = Instant::now();
    let mut d = prep.pool_ub.clone();
    for (i, near) in inexact
        .iter()
        .zip(dense::nearest(candidates, &inexact, pool_rows, cancel)?)
    {
        d[*i] = near;
    }
    trace(|| {
        format!(
            "dense: GEMM pool pass, {} rows, {:.3} s",
            inexact.len(),
            started.elapsed().as_secs_f64()
        )
    });
    let started = Instant::now();
    if !picks.is_empty() {
        let rows = dense::gather(candidates, &picks);
        let picked = Targets {
            data: &rows,
            rows: picks.len(),
        };
        let all = dense::all_rows(candidates);
        let near = dense::nearest(candidates, &all, picked, cancel)?;
        for (d, near) in d.iter_mut().zip(near) {
            *d = d.min(near);
        }
    }
    trace(|| {
        format!(
            "dense: GEMM pass over {} picks, {:.3} s",
            picks.len(),
            started.elapsed().as_secs_f64()
        )
    });
    let started = Instant::now();
    let picks = dense::select(candidates, d, picks, budget, min_distance, cancel)?;
    trace(|| {
        format!(
            "dense: lazy loop to {} picks, {:.3} s",
            picks.len(),
            started.elapsed().as_secs_f64()
        )
    });
    Ok(picks)
}
