//! Exact greedy farthest-point selection ("pick the most diverse rows").
//!
//! Plain Rust with no Python in sight, so the algorithm and its input checks can be
//! tested with `cargo test` alone; the `selector_rs` crate only adapts it to numpy.
//!
//! Two ways in: [`select_diverse`] for candidates that are all at hand, and
//! [`PoolIndex`] + [`prepare`] + [`select_prepared`] for candidates that arrive in
//! blocks (each block is prepared against the pool as it arrives, and selection runs
//! over the concatenation once the last block is in).

#[macro_use]
mod order;

mod counters;
mod dense;
mod distance;
mod greedy;
mod groups;
mod halves;
mod lazy;
mod matrix;
mod plan;
mod pool;
mod pool_bounds;
mod scenes;
mod switch;
pub mod validate;

#[cfg(test)]
mod fallback_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod test_data;
// The f64 reference the integration tests use too: one copy for both.
#[cfg(test)]
#[path = "../tests/reference/mod.rs"]
mod reference;

pub use distance::{kernel_name, l2, squared_l2};
pub use greedy::{Pick, Prepared, Selected};
pub use matrix::{Blocks, Matrix};
pub use pool::PoolIndex;
pub use switch::Strategy;
pub use validate::SelectError;

/// Asked now and then, from the calling thread, whether to give up; `true` makes the
/// running call return [`SelectError::Cancelled`].
pub type Cancel<'a> = &'a dyn Fn() -> bool;

fn never() -> bool {
    false
}

/// Picks up to `n_samples` candidate rows, farthest-first, and returns their indices
/// in pick order.
///
/// `D(i)` is the Euclidean distance from candidate `i` to its nearest row among `pool`
/// and the candidates picked so far. Each step picks the unpicked candidate with the
/// largest `D` (the lowest index on ties) and stops early once that largest `D` is
/// strictly below `min_distance`. With an empty pool the first pick is candidate 0.
/// Distances are computed in f32 (see [`squared_l2`]), so "largest" holds to f32
/// rounding, a few 1e-7 relative.
///
/// `pool` may be empty; a `0 x 0` pool is accepted as "no pool" whatever the width of
/// `candidates`.
///
/// # Errors
/// A [`SelectError`] when `n_samples` is negative, `min_distance` is not a finite
/// non-negative number, the two matrices differ in width, or either holds NaN, inf or
/// a value beyond ±[`validate::MAX_ABS`].
pub fn select_diverse(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    n_samples: i64,
    min_distance: f64,
) -> Result<Vec<usize>, SelectError> {
    let picks = select_diverse_with(candidates, pool, n_samples, min_distance, &never)?;
    Ok(picks.into_iter().map(|p| p.index).collect())
}

/// [`select_diverse`], returning each pick's distance too and checking `cancel`
/// between steps.
///
/// # Errors
/// As [`select_diverse`], and [`SelectError::Cancelled`].
pub fn select_diverse_with(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    n_samples: i64,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    // The cheap checks first, then candidates before pool, as the errors are documented.
    validate::n_samples(n_samples)?;
    validate::min_distance(min_distance)?;
    validate::same_width(candidates, pool)?;
    validate::finite(candidates)?;
    let budget = validate::n_samples(n_samples)?.min(candidates.rows());
    let blocks = Blocks::from(candidates);
    // The path to start on, as measured on earlier selections of this size (`plan`).
    let cost = switch::DenseCost::recent(&blocks, pool);
    let rows = switch::Rows {
        n: candidates.rows(),
        inexact: candidates.rows(),
        pool: pool.rows(),
    };
    let estimate = cost.remaining(rows, 0, budget);
    let start = plan::start(estimate);
    let started = std::time::Instant::now();
    let picks = match start {
        plan::Start::Dense => {
            // (The pruned path's pool index checks the pool itself.)
            validate::finite(pool)?;
            greedy::dense_alone(&blocks, pool, budget, min_distance, cancel)?
        }
        plan::Start::Pruned => {
            let index = PoolIndex::build(pool, cancel)?;
            index.assume_dense_cost(cost);
            let prepared = greedy::prepare(candidates, pool, &index, cancel)?;
            select_prepared(
                candidates,
                pool,
                &index,
                prepared,
                n_samples,
                min_distance,
                cancel,
            )?
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    plan::record(estimate, start, seconds);
    switch::trace(|| {
        format!("planned {start:?} (dense path estimated at {estimate:.4} s): {seconds:.4} s")
    });
    Ok(picks)
}

/// Checks a block of candidates and measures it against the pool: the work that can
/// be done before the last candidates arrive.
///
/// # Errors
/// [`SelectError::WidthMismatch`], [`SelectError::NonFinite`],
/// [`SelectError::OutOfRange`] or [`SelectError::Cancelled`].
pub fn prepare(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    cancel: Cancel<'_>,
) -> Result<Prepared, SelectError> {
    validate::same_width(candidates, pool)?;
    validate::finite(candidates)?;
    greedy::prepare(candidates, pool, index, cancel)
}

/// Selection over candidates prepared block by block; `candidates` holds the blocks'
/// rows in the order their [`Prepared`] parts were concatenated.
///
/// # Errors
/// As [`select_diverse_with`]; [`SelectError::ShapeMismatch`] when `prepared` does not
/// describe as many rows as `candidates` has.
pub fn select_prepared(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    prepared: Prepared,
    n_samples: i64,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    validate::same_width(candidates, pool)?;
    let blocks = Blocks::from(candidates);
    select_prepared_blocks(
        &blocks,
        pool,
        index,
        prepared,
        n_samples,
        min_distance,
        cancel,
    )
}

/// [`select_prepared`] over blocks read where they are: `candidates` holds the blocks'
/// rows in the order their [`Prepared`] parts were concatenated, and nothing is copied.
///
/// # Errors
/// As [`select_prepared`].
pub fn select_prepared_blocks(
    candidates: &Blocks<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    prepared: Prepared,
    n_samples: i64,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    select_prepared_blocks_with(
        candidates,
        pool,
        index,
        prepared,
        n_samples,
        min_distance,
        cancel,
        Strategy::Auto,
    )
    .map(|selected| selected.picks)
}

/// [`select_prepared_blocks`] on the path `strategy` says, reporting where the pruned
/// path handed over to the dense one.
///
/// # Errors
/// As [`select_prepared`].
#[allow(clippy::too_many_arguments)]
pub fn select_prepared_blocks_with(
    candidates: &Blocks<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    prepared: Prepared,
    n_samples: i64,
    min_distance: f64,
    cancel: Cancel<'_>,
    strategy: Strategy,
) -> Result<Selected, SelectError> {
    let n = validate::n_samples(n_samples)?;
    let min_d = validate::min_distance(min_distance)?;
    check_prepared(candidates, pool, index, &prepared)?;
    greedy::select_with(
        candidates, pool, index, prepared, n, min_d, cancel, strategy,
    )
}

/// `prepared` and `index` describe `candidates` and `pool`, which have one width.
fn check_prepared(
    candidates: &Blocks<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    prepared: &Prepared,
) -> Result<(), SelectError> {
    let no_pool = pool.rows() == 0 && pool.cols() == 0;
    if !no_pool && candidates.rows() > 0 && candidates.cols() != pool.cols() {
        return Err(SelectError::WidthMismatch {
            candidates: candidates.cols(),
            pool: pool.cols(),
        });
    }
    if prepared.rows() != candidates.rows() || index.rows() != pool.rows() {
        return Err(SelectError::ShapeMismatch {
            arg: "candidates",
            len: prepared.rows(),
            rows: candidates.rows(),
            cols: candidates.cols(),
        });
    }
    Ok(())
}
