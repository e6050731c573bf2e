//! Whether pruning pays, decided from measurements taken during the run.
//!
//! Pruning wins by orders of magnitude on data that is separated at the scale of its
//! groups and loses several-fold on data that is not (uniform rows; frames whose noise
//! is as large as the gaps between them), and which case an input is cannot be told
//! cheaply beforehand. So the pruned loop runs first and is timed, and the dense path
//! (`dense`: a GEMM pass over the pool and the picks so far, then a lazy greedy loop)
//! is timed on a small sample of the same input. The run switches once the pruned
//! loop is projected to need more time than the dense path would for everything left,
//! or once a single pick has cost half of that (the first picks on unprunable data
//! can take longer than the whole dense path). The projection leaves out the pruned
//! loop's pool searches: each candidate needs at most one exact one, most of them in
//! the first picks, and their total is bounded apart (`pool_pass_due`).

use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use rayon::prelude::*;

use crate::dense::{self, Targets};
use crate::distance::l2;
use crate::matrix::{Blocks, Matrix};

/// With `SELECTOR_RS_TRACE` set, the measured decisions and the time each part took go
/// to stderr, so that a benchmark can say where its time went.
pub(crate) fn trace(what: impl FnOnce() -> String) {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    if *ON.get_or_init(|| std::env::var_os("SELECTOR_RS_TRACE").is_some()) {
        eprintln!("selector_rs: {}", what());
    }
}

/// Which path [`crate::select_prepared_blocks_with`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Pruned while it pays, by measurement, then dense.
    #[default]
    Auto,
    /// Pruned all the way (for benchmarks and tests).
    Pruned,
    /// Dense from the first pick (for benchmarks and tests).
    Dense,
}

/// Candidate rows and pool rows in the sample that times the GEMM pass.
pub(crate) const SAMPLE_ROWS: usize = 256;
const SAMPLE_POOL: usize = 2048;

/// Seconds a measured [`DenseCost`] is reused for (`DenseCost::recent`).
const REUSE_S: f64 = 60.0;

/// Rows in the sample that times single distances.
const SAMPLE_DISTANCES: usize = 4096;

/// A single pick may cost this share of the dense path's remaining time: the first
/// picks do most of the pruned path's pool searches, so they may cost far more than
/// later ones, but a pick costing as much as the whole dense path is a loss however
/// cheap the rest would be; at one half the worst case is 1.5 times the dense path.
const PICK_SHARE: f64 = 0.5;

/// Weight of the latest pick in the running per-pick time.
const RECENT_WEIGHT: f64 = 0.25;

/// Picks timed (after the first) before their running time projects the rest: the
/// first picks bound most candidates for good and cost far more than later ones.
const WARM_PICKS: usize = 4;

/// Measured seconds of the dense path's two parts on this input.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DenseCost {
    /// Per candidate-target pair of the GEMM pass.
    pub pair_s: f64,
    /// Per candidate-pick distance of the greedy loop.
    pub distance_s: f64,
}

#[allow(clippy::cast_precision_loss)]
fn per(seconds: f64, count: usize) -> f64 {
    seconds / count.max(1) as f64
}

impl DenseCost {
    /// Times the dense path's kernels on the first rows of `candidates` and `pool`.
    pub(crate) fn measure(candidates: &Blocks<'_>, pool: &Matrix<'_>) -> Self {
        let (n, cols) = (candidates.rows(), candidates.cols());
        let rows = SAMPLE_ROWS.min(n);
        let sample = dense::gather_rows(candidates, 0..rows);
        let sample = Matrix::new("candidates", &sample, rows, cols).expect("rows x cols values");
        let sample = Blocks::from(&sample);
        // Without a pool the candidates stand in for it: same width, same cost.
        let own;
        let targets = if pool.rows() > 0 {
            let p = SAMPLE_POOL.min(pool.rows());
            Targets {
                data: &pool.data()[..p * cols],
                rows: p,
            }
        } else {
            let p = SAMPLE_POOL.min(n);
            own = dense::gather_rows(candidates, 0..p);
            Targets {
                data: &own,
                rows: p,
            }
        };
        // Timed twice, the faster kept: the first product in a process also pays for waking
        // rayon's threads and touching the packing buffers, and once made uniform rows look
        // cheaper to bound than to measure by GEMM (tests/selector_rs/test_dense_fallback.py).
        let pair_s = (0..2)
            .map(|_| {
                let start = Instant::now();
                let _ = dense::nearest(&sample, &dense::all_rows(&sample), targets, &|| false);
                per(start.elapsed().as_secs_f64(), rows * targets.rows)
            })
            .fold(f64::INFINITY, f64::min);
        let rows = SAMPLE_DISTANCES.min(n);
        let start = Instant::now();
        if rows > 0 {
            let q = candidates.row(0);
            let total: f64 = (0..rows)
                .into_par_iter()
                .map(|i| l2(candidates.row(i), q))
                .sum();
            std::hint::black_box(total);
        }
        let distance_s = per(start.elapsed().as_secs_f64(), rows);
        Self { pair_s, distance_s }
    }

    /// [`Self::measure`], reused within a process for a minute per row width: the
    /// kernels' speeds are the machine's, not the input's, and measuring costs ~1 ms,
    /// a quarter of a 1,000-row selection.
    pub(crate) fn recent(candidates: &Blocks<'_>, pool: &Matrix<'_>) -> Self {
        static RECENT: Mutex<Vec<(usize, Instant, DenseCost)>> = Mutex::new(Vec::new());
        let cols = candidates.cols();
        let fresh = |at: &Instant| at.elapsed().as_secs_f64() < REUSE_S;
        let lock = || RECENT.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, _, cost)) = lock().iter().find(|(c, at, _)| *c == cols && fresh(at)) {
            return *cost;
        }
        // Measured without the lock: the measurement runs on the rayon threads, which a
        // selection waiting for the lock on one of them would otherwise hold up.
        let cost = Self::measure(candidates, pool);
        // A few rows time too little work to stand for later, larger inputs.
        if candidates.rows() >= SAMPLE_ROWS {
            let mut recent = lock();
            recent.retain(|(c, at, _)| *c != cols && fresh(at));
            recent.push((cols, Instant::now(), cost));
        }
        cost
    }

    /// Seconds the dense path needs from `picks` picks to `budget`: the GEMM pass of
    /// the `inexact` rows over the pool and of all `n` over the picks, then at most one
    /// distance per candidate and pick.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn remaining(&self, rows: Rows, picks: usize, budget: usize) -> f64 {
        let (n, inexact, pool, picks, left) = (
            rows.n as f64,
            rows.inexact as f64,
            rows.pool as f64,
            picks as f64,
            budget.saturating_sub(picks) as f64,
        );
        self.pair_s * (inexact * pool + n * picks) + self.distance_s * n * left
    }

    /// Seconds of the GEMM pass of `n` rows over `pool` rows.
    #[allow(clippy::cast_precision_loss)]
    pub(crate) fn pool_pass(&self, n: usize, pool: usize) -> f64 {
        self.pair_s * n as f64 * pool as f64
    }
}

/// The sizes the dense path's cost depends on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rows {
    /// Candidates.
    pub n: usize,
    /// Candidates whose distance to the pool is not known exactly yet.
    pub inexact: usize,
    pub pool: usize,
}

/// Times the pruned loop and says when to leave it.
pub(crate) struct Meter {
    cost: DenseCost,
    rows: Rows,
    budget: usize,
    pick_start: Instant,
    /// Running per-pick time of the pruned loop, from the second pick on.
    recent: Option<f64>,
    timed: usize,
    first_done: bool,
    /// Pool-search seconds (over threads) when the current pick started: searches are
    /// bounded apart, by `pool_pass_due`, and most happen in the first picks, so the
    /// per-pick projection leaves them out.
    search_at_start: f64,
}

impl Meter {
    pub(crate) fn new(cost: DenseCost, rows: Rows, budget: usize) -> Self {
        Self {
            cost,
            rows,
            budget,
            pick_start: Instant::now(),
            recent: None,
            timed: 0,
            first_done: false,
            search_at_start: 0.0,
        }
    }

    /// A pick was made; the next one starts now. `search_s`: pool-search seconds so far.
    pub(crate) fn picked(&mut self, search_s: f64) {
        let took = self.without_searches(search_s);
        self.pick_start = Instant::now();
        self.search_at_start = search_s;
        if !std::mem::replace(&mut self.first_done, true) {
            return;
        }
        self.timed += 1;
        self.recent = Some(match self.recent {
            None => took,
            Some(r) => r + RECENT_WEIGHT * (took - r),
        });
    }

    /// Whether searching the pool row by row has cost (`search_s`, over all threads) as
    /// much as the GEMM pass for the `inexact` rows left would; the pass is then the
    /// cheaper way to finish, and the search time spent so far bounds the loss at 2x.
    pub(crate) fn pool_pass_due(&self, inexact: usize, search_s: f64) -> bool {
        #[allow(clippy::cast_precision_loss)]
        let threads = rayon::current_num_threads() as f64;
        search_s / threads > self.cost.pool_pass(inexact, self.rows.pool)
    }

    /// The GEMM pass ran: every pool distance is exact.
    pub(crate) fn pool_done(&mut self) {
        self.rows.inexact = 0;
    }

    /// Seconds of the current pick, less its pool searches.
    fn without_searches(&self, search_s: f64) -> f64 {
        let took = self.pick_start.elapsed().as_secs_f64();
        (took - (search_s - self.search_at_start)).max(0.0)
    }

    /// Whether to go dense now, with `picks` picks made and `search_s` pool-search
    /// seconds so far.
    pub(crate) fn switch(&self, picks: usize, search_s: f64) -> bool {
        let dense = self.cost.remaining(self.rows, picks, self.budget);
        let this_pick = self.pick_start.elapsed().as_secs_f64();
        let recent = self.recent.filter(|_| self.timed >= WARM_PICKS);
        let left = self.budget.saturating_sub(picks);
        let go = this_pick > PICK_SHARE * dense
            || decide(self.without_searches(search_s), recent, left, dense);
        if go {
            trace(|| {
                format!(
                    "dense after {picks} picks: this pick {this_pick:.3} s, recent {recent:?} s \
                     x {left} left, dense path {dense:.3} s ({:?})",
                    self.cost
                )
            });
        }
        go
    }
}

/// The rule, given the time spent on the current pick, the running per-pick time, the
/// picks left and the dense path's time for them.
#[allow(clippy::cast_precision_loss)]
pub(crate) fn decide(this_pick: f64, recent: Option<f64>, left: usize, dense: f64) -> bool {
    if this_pick > PICK_SHARE * dense {
        return true;
    }
    // A pick running long raises the projection as it would raise the running time if
    // it ended now, not wholly: one pick 10x the others (a load spike, or the picks
    // where far scenes give way to picks inside scenes) projected over every pick left
    // switched rough footage to a dense path 10x slower.
    recent.is_some_and(|r| (r + RECENT_WEIGHT * (this_pick - r).max(0.0)) * left as f64 > dense)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pick_costing_half_the_dense_path_switches() {
        assert!(decide(5.1, None, 500, 10.0));
        assert!(!decide(4.9, None, 500, 10.0));
    }

    #[test]
    fn a_projected_pruned_time_beyond_the_dense_path_switches() {
        // 100 picks left at 0.2 s each: 20 s against 10 s dense.
        assert!(decide(0.0, Some(0.2), 100, 10.0));
        // At 0.05 s each, 5 s: pruning pays.
        assert!(!decide(0.0, Some(0.05), 100, 10.0));
        // A pick running long raises the projection before it ends...
        assert!(decide(0.5, Some(0.05), 100, 10.0));
        // ...as it would raise the running time: one pick 10x the others does not
        // project over every pick left (measured on rough target1, a fresh seed: 0.114 s
        // against 0.0117 s, 377 picks left, dense path 34.9 s).
        assert!(!decide(0.114, Some(0.0117), 377, 34.9));
    }

    #[test]
    fn the_running_pick_time_follows_recent_picks() {
        let cost = DenseCost {
            pair_s: 1e-9,
            distance_s: 1e-9,
        };
        let rows = Rows {
            n: 1000,
            inexact: 1000,
            pool: 100,
        };
        let mut m = Meter::new(cost, rows, 10);
        m.picked(0.0);
        assert_eq!(m.recent, None, "the first pick is not timed");
        m.recent = Some(1.0);
        m.pick_start = Instant::now();
        m.picked(0.0);
        assert!(m.recent.unwrap() < 0.8, "{:?}", m.recent);
        // Time spent in pool searches is left out: they are bounded apart.
        m.recent = Some(0.0);
        std::thread::sleep(std::time::Duration::from_millis(20));
        m.picked(10.0);
        assert_eq!(m.recent, Some(0.0));
        std::thread::sleep(std::time::Duration::from_millis(20));
        m.picked(10.0);
        assert!(m.recent.unwrap() > 0.004, "{:?}", m.recent);
    }

    #[test]
    fn the_dense_estimate_counts_the_pool_the_picks_and_the_picks_left() {
        let cost = DenseCost {
            pair_s: 2.0,
            distance_s: 3.0,
        };
        // 10 rows (4 without an exact pool distance): GEMM of 4 against 5 pool rows
        // and of 10 against 2 picks, then 3 picks left.
        let rows = Rows {
            n: 10,
            inexact: 4,
            pool: 5,
        };
        let want = 2.0 * (4.0 * 5.0 + 10.0 * 2.0) + 3.0 * 10.0 * 3.0;
        assert!((cost.remaining(rows, 2, 5) - want).abs() < 1e-9);
        assert!((cost.remaining(rows, 9, 5) - 2.0 * (20.0 + 90.0)).abs() < 1e-9);
    }
}
