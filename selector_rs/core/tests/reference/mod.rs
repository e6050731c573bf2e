//! The f64 reference of the greedy rule, for the unit tests (`src/proptests.rs`, included with
//! `#[path]`) and `tests/fuzz.rs` alike: one copy that both judge the selection against.
//!
//! `D(i)` is the distance from candidate `i` to its nearest row among the pool and the picks
//! so far (+inf with neither); each step picks the unpicked candidate with the largest `D`
//! (the lowest index on ties) and stops once that is below `min_distance`. Everything here
//! is plain f64 arithmetic on row slices: slow, and easy to trust.

// Each including crate uses only part of it.
#![allow(dead_code)]

/// The Euclidean distance of two rows, in f64.
pub(crate) fn dist64(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// `D` of every candidate before the first pick: its distance to the nearest pool row.
pub(crate) fn pool_distances(cands: &[&[f32]], pool: &[&[f32]]) -> Vec<f64> {
    cands
        .iter()
        .map(|c| {
            pool.iter()
                .map(|p| dist64(c, p))
                .fold(f64::INFINITY, f64::min)
        })
        .collect()
}

/// `D` of every candidate given `picks` (`None` for the picked ones).
pub(crate) fn remaining(cands: &[&[f32]], pool: &[&[f32]], picks: &[usize]) -> Vec<Option<f64>> {
    let to_pool = pool_distances(cands, pool);
    (0..cands.len())
        .map(|i| {
            if picks.contains(&i) {
                return None;
            }
            let to_picks = picks.iter().map(|&j| dist64(cands[i], cands[j]));
            Some(to_picks.fold(to_pool[i], f64::min))
        })
        .collect()
}

/// The largest `D` and its candidate, the lowest index on ties; `None` if all are picked.
pub(crate) fn farthest(d: &[Option<f64>]) -> Option<(usize, f64)> {
    d.iter()
        .enumerate()
        .filter_map(|(i, v)| v.map(|v| (i, v)))
        .fold(None, |best, (i, v)| match best {
            Some((_, bv)) if bv >= v => best,
            _ => Some((i, v)),
        })
}

/// The picks of the rule for at most `budget` picks: exact for small-integer data.
pub(crate) fn reference(
    cands: &[&[f32]],
    pool: &[&[f32]],
    budget: usize,
    min_d: f64,
) -> Vec<usize> {
    let mut d: Vec<Option<f64>> = pool_distances(cands, pool).into_iter().map(Some).collect();
    let mut picks = Vec::new();
    while picks.len() < budget {
        match farthest(&d) {
            Some((i, di)) if di >= min_d => {
                picks.push(i);
                d[i] = None;
                for (k, dk) in d.iter_mut().enumerate() {
                    if let Some(v) = dk {
                        *v = v.min(dist64(cands[k], cands[i]));
                    }
                }
            }
            _ => break,
        }
    }
    picks
}
