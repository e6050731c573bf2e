//! Exact greedy farthest-point selection with lazily tightened bounds.
//!
//! `D(i)`, candidate `i`'s distance to its nearest pool row or earlier pick, is never
//! computed for every candidate. Each candidate carries upper bounds instead, and only
//! a candidate whose bound could still beat the best exact `D` found in the current
//! step is refined:
//!
//! * `pool_ub`: distance to the nearest pool row, exact once refined; before that,
//!   the candidate's own distance to its leader's nearest pool row, measured on
//!   arrival, and a lower bound `pool_lb` from the leader's search order
//!   (`pool::Hint`). Where the pool falls into scenes (`scenes`), a search asks only
//!   for a pool row nearer than the candidate's bounds, which the scenes' per-row
//!   distances to their centres rule out wholesale; finding none, `pool_floor`
//!   records that the pick decides `D`. A search waits until the candidate's group
//!   holds the largest bound on the heap; where the pool falls into scenes, searches
//!   go in batches (`batch_search`) that read each pool row once for all of them.
//! * `pick_min`: exact distance to the nearest of the first `seen` picks.
//! * `offset + group_pick`: distance to the leader plus the leader's distance to the
//!   nearest pick, which retires a whole group at once when a pick lands next to it.
//!
//! A leader's distance to a pick is itself often unneeded: groups are chained into
//! runs (consecutive groups near the run's first leader, a scene in video data), each
//! run measures its leader against every pick once, and a group computes its own
//! exact distance to a pick only when the run's lower bound cannot show the pick is
//! too far away to matter to any member.
//!
//! Candidates live in contiguous leader groups (see `groups`); a max-heap orders the
//! groups by the largest bound of their unpicked members, so each step touches only
//! the groups that can still hold the farthest candidate. Bounds only ever shrink
//! (`D` only shrinks as picks accumulate), so a bound computed once stays valid.
//!
//! The modules, in the order a selection runs: `prepare` builds the [`Prepared`]
//! bounds of a block; `pruned_loop` runs the loop over a heap of groups, `visit`
//! brings one group up to date, refining the candidates of `selection` whose `state`
//! could still win; `pool_pass` and `dense_path` are where the measured decisions of
//! `switch` lead.

use std::time::Instant;

use crate::matrix::{Blocks, Matrix};
use crate::pool::PoolIndex;
use crate::switch::{trace, Meter, Rows, Strategy};
use crate::validate::SelectError;
use crate::Cancel;

mod batch_search;
mod dense_path;
mod pool_pass;
mod prepare;
mod prepared;
mod pruned_loop;
mod selection;
mod state;
mod visit;

#[cfg(test)]
mod tests;

pub(crate) use dense_path::{dense_alone, dense_from};
pub(crate) use prepare::prepare;
pub use prepared::Prepared;
use pruned_loop::{pruned, start};

/// A pick: the candidate's row and its distance to the pool and all earlier picks
/// (`inf` for the first pick without a pool).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub index: usize,
    pub distance: f64,
}

/// The picks, and where the measured decisions (see `switch`) changed course, as pick
/// counts: the GEMM pass over the pool during the pruned loop, and the hand-over from
/// the pruned loop to the dense path (`None`: never).
#[derive(Debug, Clone, PartialEq)]
pub struct Selected {
    pub picks: Vec<Pick>,
    pub pool_pass_at: Option<usize>,
    pub switched_at: Option<usize>,
}

/// The greedy loop over prepared candidates on the path `strategy` says: pruned while
/// it pays (`Strategy::Auto`, see `switch`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn select_with(
    candidates: &Blocks<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    prep: Prepared,
    n_samples: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
    strategy: Strategy,
) -> Result<Selected, SelectError> {
    let n = candidates.rows();
    let budget = n_samples.min(n);
    if strategy == Strategy::Dense {
        let picks = dense_from(
            candidates,
            pool,
            (&prep).into(),
            Vec::new(),
            budget,
            min_distance,
            cancel,
        )?;
        return Ok(Selected {
            picks,
            pool_pass_at: None,
            switched_at: Some(0),
        });
    }
    let rows = Rows {
        n,
        inexact: prep.pool_exact.iter().filter(|&&e| !e).count(),
        pool: pool.rows(),
    };
    let mut meter = (strategy == Strategy::Auto && budget > 0)
        .then(|| Meter::new(index.dense_cost(candidates, pool), rows, budget));
    let (mut heap, mut sel) = start(candidates, pool, index, prep, budget);
    let started = Instant::now();
    let done = pruned(
        &mut sel,
        &mut heap,
        &mut meter,
        budget,
        min_distance,
        cancel,
    )?;
    trace(|| {
        format!(
            "pruned loop: {} picks, {:.3} s (searches {:.3} s): {}",
            sel.picks.len(),
            started.elapsed().as_secs_f64(),
            sel.search_s(),
            crate::counters::take()
        )
    });
    if done {
        return Ok(Selected {
            picks: sel.picks,
            pool_pass_at: sel.pool_pass_at,
            switched_at: None,
        });
    }
    let switched_at = Some(sel.picks.len());
    let pool_pass_at = sel.pool_pass_at;
    let picks = dense_from(
        candidates,
        pool,
        (&sel.prep).into(),
        sel.picks,
        budget,
        min_distance,
        cancel,
    )?;
    Ok(Selected {
        picks,
        pool_pass_at,
        switched_at,
    })
}
