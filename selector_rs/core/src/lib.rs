//! Exact greedy farthest-point selection ("pick the most diverse rows").
//!
//! Plain Rust with no Python in sight, so the algorithm and its input checks can be
//! tested with `cargo test` alone; the `selector_rs` crate only adapts it to numpy.

mod distance;
mod greedy;
mod matrix;
pub mod validate;

#[cfg(test)]
mod proptests;

pub use distance::squared_l2;
pub use matrix::Matrix;
pub use validate::SelectError;

/// Picks up to `n_samples` candidate rows, farthest-first, and returns their indices
/// in pick order.
///
/// `D(i)` is the Euclidean distance from candidate `i` to its nearest row among `pool`
/// and the candidates picked so far. Each step picks the unpicked candidate with the
/// largest `D` (the lowest index on ties) and stops early once that largest `D` is
/// strictly below `min_distance`. With an empty pool the first pick is candidate 0.
///
/// `pool` may be empty; a `0 x 0` pool is accepted as "no pool" whatever the width of
/// `candidates`.
///
/// # Errors
/// A [`SelectError`] when `n_samples` is negative, `min_distance` is not a finite
/// non-negative number, the two matrices differ in width, or either holds NaN or inf.
pub fn select_diverse(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    n_samples: i64,
    min_distance: f64,
) -> Result<Vec<usize>, SelectError> {
    let n_samples = validate::n_samples(n_samples)?;
    let min_distance = validate::min_distance(min_distance)?;
    validate::same_width(candidates, pool)?;
    validate::finite(candidates)?;
    validate::finite(pool)?;
    Ok(greedy::farthest_point(
        candidates,
        pool,
        n_samples,
        min_distance,
    ))
}
