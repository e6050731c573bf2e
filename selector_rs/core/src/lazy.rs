//! The dense path's greedy loop, lazily: a max-heap of per-candidate upper bounds, and a
//! candidate folds in the picks it has not seen (and settles its pool distance, where
//! `pool_bounds` left only a bound) only when it reaches the top. Each candidate-pick
//! distance is computed at most once, so this never does more distance work than a full
//! per-pick update of every candidate, and on spread-out data (where a new pick is far
//! from almost everyone) it does a few rows per pick.
//!
//! The candidates are dealt round-robin into one part per thread, each with its own
//! heap. For each pick every part, at once, refines its top until it is exact or below
//! the best exact value another part has found so far (it cannot win then), and the
//! pick is the best of the parts' tops, ties to the lowest index: the greedy rule's own
//! order, so the picks do not depend on the number of parts. Most picks refine a few
//! dozen candidates, each a few microseconds of work: too little to hand to threads one
//! batch at a time, enough to keep two busy for the whole pick.

use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::counters;
use crate::distance::half_rows::HalfRows;
use crate::distance::{l2, l2_x4};
use crate::greedy::Pick;
use crate::matrix::Blocks;
use crate::pool_bounds::PoolBounds;
use crate::validate::SelectError;
use crate::Cancel;

/// Heap entry: a candidate (its index within its part) with an upper bound on its
/// distance, exact once it has seen every pick and its pool distance is settled.
#[derive(Debug, Clone, Copy)]
struct Entry {
    bound: f64,
    index: usize,
}

// Largest bound first, then the lowest index: the greedy rule's own order (a part's
// indices are in the order of the candidates' own).
largest_bound_first!(Entry, index);

/// Distances computed between two cancellation checks in the greedy loop (about 50 ms
/// at width 1280 on two cores).
const DISTANCES_PER_CHECK: usize = 1 << 18;

/// Stale candidates refined together before it pays to use more than one thread.
const PARALLEL_BATCH: usize = 64;

/// Fewest candidates per part: below it one part does all.
const PART_ROWS: usize = 256;

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

/// What every part reads.
struct Shared<'a> {
    candidates: &'a Blocks<'a>,
    half: Option<&'a HalfRows>,
    bounds: Option<&'a PoolBounds<'a>>,
}

/// A candidate's state.
#[derive(Clone, Copy)]
struct Row {
    /// Its index among all candidates.
    index: usize,
    near: f64,
    pool: f64,
    seen: usize,
    settled: bool,
}

impl Row {
    fn bound(&self) -> f64 {
        self.near.min(self.pool)
    }

    fn exact(&self, t: usize) -> bool {
        self.seen == t && self.settled
    }

    /// This row after folding in the `picks` it has not seen, until it falls below
    /// `floor`, and settling its pool distance if it is still at or above `floor`.
    fn refine(mut self, shared: &Shared<'_>, picks: &[Pick], floor: f64) -> Self {
        let (candidates, i) = (shared.candidates, self.index);
        let unseen = &picks[self.seen..];
        let (near, folded, measured) = match shared.half {
            Some(h) => h.fold(candidates, i, unseen, self.near, floor),
            None => fold_picks(candidates, candidates.row(i), unseen, self.near, floor),
        };
        counters::add(&counters::PICK_DISTANCES, measured);
        counters::add(&counters::PICKS_BOUNDED, folded);
        self.near = near;
        self.seen += folded;
        if let Some(b) = shared.bounds {
            if !self.settled && self.seen == picks.len() && self.bound() >= floor {
                let (pool, rows) = b.settle(candidates, i, self.bound());
                counters::add(&counters::SEARCHES, 1);
                counters::add(&counters::SEARCH_ROWS, rows);
                self.pool = pool;
                self.settled = true;
            }
        }
        self
    }
}

/// The largest exact value any part has found for the current pick (an f64's bits:
/// distances are never negative, so their bits order as they do).
struct Best(AtomicU64);

impl Best {
    fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }

    fn raise(&self, v: f64) {
        self.0.fetch_max(v.to_bits(), Ordering::Relaxed);
    }
}

/// Some of the candidates, with their heap.
struct Part {
    rows: Vec<Row>,
    heap: BinaryHeap<Entry>,
    refined: usize,
}

/// Where a part got to for the current pick.
#[derive(Clone, Copy)]
enum Step {
    /// Its exact top, left in its heap, or none that can win.
    Done(Option<Entry>),
    /// Its work budget ran out first.
    More,
}

impl Part {
    /// Refines the top until it is exact or below `best`, or until about
    /// [`DISTANCES_PER_CHECK`] distances were spent (then the caller checks for
    /// cancellation and calls again).
    fn advance(&mut self, shared: &Shared<'_>, picks: &[Pick], best: &Best) -> Step {
        let t = picks.len();
        let mut round = 1;
        let mut batch: Vec<Entry> = Vec::new();
        let mut spent = 0;
        loop {
            let Some(top) = self.heap.peek().copied() else {
                return Step::Done(None);
            };
            if top.bound < best.get() {
                return Step::Done(None);
            }
            if self.rows[top.index].exact(t) {
                best.raise(top.bound);
                return Step::Done(Some(top));
            }
            if spent >= DISTANCES_PER_CHECK {
                return Step::More;
            }
            // Every stale entry at the top, up to `round` of them (and a bounded number
            // of distances), refined together: rounds double so that a long stale
            // stretch goes to the threads.
            while batch.len() < round && spent < DISTANCES_PER_CHECK {
                match self.heap.peek() {
                    Some(e) if !self.rows[e.index].exact(t) => {
                        spent += t - self.rows[e.index].seen + 1;
                        batch.push(self.heap.pop().expect("peeked"));
                    }
                    _ => break,
                }
            }
            round = (round * 2).min(4096);
            // A row whose bound falls below the largest bound left in the heap, or below
            // another part's exact best, cannot be picked now: its refinement stops
            // there, the rest kept for when it comes up again.
            let floor = self
                .heap
                .peek()
                .map_or(f64::NEG_INFINITY, |e| e.bound)
                .max(best.get());
            let rows = &self.rows;
            let refine = |e: &Entry| (e.index, rows[e.index].refine(shared, picks, floor));
            let refined: Vec<(usize, Row)> = if batch.len() < PARALLEL_BATCH {
                batch.iter().map(refine).collect()
            } else {
                batch.par_iter().map(refine).collect()
            };
            batch.clear();
            self.refined += refined.len();
            for (k, row) in refined {
                self.rows[k] = row;
                self.heap.push(Entry {
                    bound: row.bound(),
                    index: k,
                });
            }
        }
    }
}

/// The greedy loop from `picks` (already made) on, from `start`; picked candidates are
/// skipped.
///
/// # Errors
/// [`SelectError::Cancelled`].
pub(crate) fn select(
    candidates: &Blocks<'_>,
    half: Option<&HalfRows>,
    start: &Start<'_>,
    picks: Vec<Pick>,
    budget: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    let shared = Shared {
        candidates,
        half,
        bounds: start.bounds,
    };
    let n = start.pool.len();
    let count = rayon::current_num_threads().min(n / PART_ROWS).max(1);
    select_in(&shared, start, count, picks, budget, min_distance, cancel)
}

/// [`select`] in `count` parts.
fn select_in(
    shared: &Shared<'_>,
    start: &Start<'_>,
    count: usize,
    picks: Vec<Pick>,
    budget: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    let n = start.pool.len();
    let mut picked = vec![false; n];
    for p in &picks {
        picked[p.index] = true;
    }
    let mut parts: Vec<Part> = (0..count)
        .map(|part| {
            let rows: Vec<Row> = (part..n)
                .step_by(count)
                .map(|index| Row {
                    index,
                    near: start.near[index],
                    pool: start.pool[index],
                    seen: picks.len(),
                    settled: start.bounds.is_none_or(|b| !b.bounded(index)),
                })
                .collect();
            let heap = rows
                .iter()
                .enumerate()
                .filter(|(_, r)| !picked[r.index])
                .map(|(index, r)| Entry {
                    bound: r.bound(),
                    index,
                })
                .collect();
            Part {
                rows,
                heap,
                refined: 0,
            }
        })
        .collect();
    let picks = pick_all(shared, &mut parts, picks, budget, min_distance, cancel)?;
    crate::switch::trace(|| {
        format!(
            "dense: {} parts, {} rows refined, {} candidate-pick pairs seen, {} measured; {} pool distances settled, reading {} pool rows",
            parts.len(),
            parts.iter().map(|p| p.refined).sum::<usize>(),
            counters::PICKS_BOUNDED.swap(0, Ordering::Relaxed),
            counters::PICK_DISTANCES.swap(0, Ordering::Relaxed),
            counters::SEARCHES.swap(0, Ordering::Relaxed),
            counters::SEARCH_ROWS.swap(0, Ordering::Relaxed)
        )
    });
    Ok(picks)
}

/// [`select`]'s loop over the picks: on the pool's threads, a slice of
/// [`SLICE`] at a time, each slice a task on one of them (its parts run in `rayon::join`,
/// which a thread of the pool starts without waking one), and `cancel` asked on the
/// calling thread between slices.
fn pick_all(
    shared: &Shared<'_>,
    parts: &mut [Part],
    mut picks: Vec<Pick>,
    budget: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    loop {
        if cancel() {
            return Err(SelectError::Cancelled);
        }
        let done = rayon::scope(|_| pick_slice(shared, parts, &mut picks, budget, min_distance));
        if done {
            return Ok(picks);
        }
    }
}

/// Time between two cancellation checks of [`pick_all`].
const SLICE: Duration = Duration::from_millis(20);

/// Picks until `budget`, the stopping rule or no candidate left (`true`), or until
/// [`SLICE`] has passed or a part's work budget ran out (`false`; an unfinished pick
/// starts over next time, its parts' refinements kept).
fn pick_slice(
    shared: &Shared<'_>,
    parts: &mut [Part],
    picks: &mut Vec<Pick>,
    budget: usize,
    min_distance: f64,
) -> bool {
    let started = Instant::now();
    let mut steps = vec![Step::More; parts.len()];
    while picks.len() < budget {
        if started.elapsed() > SLICE {
            return false;
        }
        let best = Best(AtomicU64::new(0.0_f64.to_bits()));
        let (picks_now, best) = (&picks[..], &best);
        let advance = |part: &mut Part| part.advance(shared, picks_now, best);
        match (&mut *parts, &mut *steps) {
            ([a, b], [sa, sb]) => {
                (*sa, *sb) = rayon::join(|| advance(a), || advance(b));
            }
            _ => {
                for (part, step) in parts.iter_mut().zip(steps.iter_mut()) {
                    *step = advance(part);
                }
            }
        }
        if steps.iter().any(|s| matches!(s, Step::More)) {
            return false;
        }
        // The best top, ties to the lowest index among all candidates.
        let winner = steps
            .iter()
            .enumerate()
            .filter_map(|(p, step)| match step {
                Step::Done(Some(e)) => Some((p, *e, parts[p].rows[e.index].index)),
                _ => None,
            })
            .max_by(|a, b| a.1.bound.total_cmp(&b.1.bound).then(b.2.cmp(&a.2)));
        let Some((part, top, index)) = winner else {
            return true;
        };
        if top.bound < min_distance {
            return true;
        }
        parts[part].heap.pop();
        picks.push(Pick {
            index,
            distance: top.bound,
        });
    }
    true
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

#[cfg(test)]
#[allow(clippy::many_single_char_names, clippy::float_cmp)]
mod tests {
    use super::*;
    use crate::matrix::Matrix;
    use crate::test_data::noise;

    #[test]
    fn the_lazy_loop_picks_as_a_full_update_would_in_one_part_or_several() {
        // Whatever the machine's thread count: one part, and two or three (each part's
        // own heap, tops compared across parts, ties to the lowest index).
        for (n, parts) in [(500, 1), (1300, 2), (1300, 3)] {
            picks_as_a_full_update_would(n, parts);
        }
    }

    fn picks_as_a_full_update_would(n: usize, parts: usize) {
        let cols = 16;
        let c = noise(n * cols, 3);
        let m = Matrix::new("candidates", &c, n, cols).unwrap();
        let b = Blocks::from(&m);
        let shared = Shared {
            candidates: &b,
            half: None,
            bounds: None,
        };
        let start = Start::exact(vec![f64::INFINITY; n]);
        let picks = select_in(&shared, &start, parts, Vec::new(), 60, 0.0, &|| false).unwrap();
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
            &Start::exact(d.clone()),
            Vec::new(),
            80,
            0.0,
            &|| false,
        )
        .unwrap();
        let bounded = select(
            &b,
            Some(&half),
            &Start::exact(d),
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
            &Start::exact(d.clone()),
            Vec::new(),
            9,
            1.5,
            &|| false,
        )
        .unwrap();
        assert_eq!(got.iter().map(|p| p.index).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(
            select(&b, None, &Start::exact(d), Vec::new(), 9, 0.0, &|| false)
                .unwrap()
                .len(),
            3
        );
    }

    #[test]
    fn cancellation_stops_the_loop() {
        let c = [0.0, 1.0, 3.0];
        let m = Matrix::new("candidates", &c, 3, 1).unwrap();
        let b = Blocks::from(&m);
        let err = select(
            &b,
            None,
            &Start::exact(vec![1.0; 3]),
            Vec::new(),
            2,
            0.0,
            &|| true,
        )
        .unwrap_err();
        assert_eq!(err, SelectError::Cancelled);
    }
}
