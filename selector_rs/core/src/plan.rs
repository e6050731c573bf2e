//! Which path a selection of candidates all at hand starts on, planned by measuring
//! both, as FFTW plans a transform (`FFTW_MEASURE`): once per size in a process.
//!
//! The pruned path pays for its pool index and for preparing the candidates before the
//! meter of `switch` can time a single pick, and on small inputs that alone can cost
//! more than the whole dense path (1,000 rows: ~3 ms of setup, 5-7 ms for the dense
//! path from start to end, 11-21 ms for the pruned one). Which one is faster there
//! depends on the machine's thread wake-ups and caches more than on the data, and no
//! cheap look at the input tells. So selections are sorted by the dense path's estimated
//! time (`switch::DenseCost`, from kernel timings) into classes a factor of two apart;
//! the first four selections of a class take the pruned path, the dense path, and both
//! again (a path's first run in a process often pays for its first allocations), each
//! timed in seconds per second of that estimate, and later ones the faster (by the best
//! of each path's last runs, updated by every run). Two runs in a row far off their
//! path's best have the other path measured again, as the inputs have changed; and the
//! slower path runs again after 8, 16, 32, ... selections, in case its times met a busy
//! stretch. Classes with an estimate above [`PLANNED_UP_TO`] always start pruned: there
//! the setup is a small part of either path, and the meter decides within the run. The
//! classes are sizes, not shapes: inputs of one size share a class.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Largest dense-path estimate, in seconds, whose class is planned: it caps what one
/// trial of the dense path can cost. Past it the pruned path's setup is a small part of
/// either path (100,000 rows against 5,000 pool rows: the dense path estimated at 21-24 s,
/// the whole pruned selection 0.6-1.4 s on smooth and rough frames, 9.2 s uniform, where
/// the meter hands over); 10,000 rows against 1,000, the largest small case, are
/// estimated at ~1.0 s (measured 0.34-0.39 s dense, 0.08 s pruned on rough frames).
pub(crate) const PLANNED_UP_TO: f64 = 2.0;

/// The path a selection starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// Pool index, preparation, then the pruned loop with its meter.
    Pruned,
    /// The dense path from the first pick, with no index and no preparation.
    Dense,
}

impl Start {
    fn other(self) -> Self {
        match self {
            Self::Pruned => Self::Dense,
            Self::Dense => Self::Pruned,
        }
    }
}

/// How many of a path's latest runs in a class its time is the best of: a shared machine
/// only ever adds to a run's time, so the best of the last few is the steadiest measure
/// of the path, and one slow run does not turn a class over.
const KEPT: usize = 3;

/// Runs of each path before the faster is chosen.
const TRIALS: usize = 2;

/// Selections on the faster path before the slower one runs again, at first; doubled
/// each time it is still the slower, up to [`MAX_PATIENCE`]: the cost of looking again
/// falls from an eighth of the runs to a few in a thousand.
const FIRST_PATIENCE: u32 = 8;
const MAX_PATIENCE: u32 = 512;

/// Runs this many times slower or faster than their path's best say the inputs changed
/// (a class holds every input of its size: smooth video, then uniform rows, say, on
/// which the two paths rank the other way round); within one kind of input, runs of a
/// path on a shared machine stay well within it.
const CHANGED: f64 = 1.5;

/// Seconds per estimated second of a path's last runs in a class ([`KEPT`], and one
/// more for [`Runs::changed`]).
#[derive(Debug, Clone, Default)]
struct Runs(Vec<f64>);

impl Runs {
    fn push(&mut self, rate: f64) {
        if self.0.len() == KEPT + 1 {
            self.0.remove(0);
        }
        self.0.push(rate);
    }

    /// The best of the last [`KEPT`] runs.
    fn best(&self) -> Option<f64> {
        self.0[self.0.len().saturating_sub(KEPT)..]
            .iter()
            .copied()
            .reduce(f64::min)
    }

    /// Whether the last two runs are both more than [`CHANGED`] times slower, or both
    /// faster, than the best of the runs before them.
    fn changed(&self) -> bool {
        let Some(split) = self.0.len().checked_sub(2).filter(|&s| s > 0) else {
            return false;
        };
        let (before, last) = self.0.split_at(split);
        let best = before.iter().copied().fold(f64::INFINITY, f64::min);
        last.iter().all(|&r| r > best * CHANGED) || last.iter().all(|&r| r * CHANGED < best)
    }
}

/// Both paths' runs in a class.
#[derive(Debug, Clone)]
struct Timed {
    pruned: Runs,
    dense: Runs,
    /// Selections on the faster path since the other last ran.
    since: u32,
    /// How many of those before the other runs again ([`FIRST_PATIENCE`], doubled each
    /// time the other path is still the slower).
    patience: u32,
}

impl Default for Timed {
    fn default() -> Self {
        Self {
            pruned: Runs::default(),
            dense: Runs::default(),
            since: 0,
            patience: FIRST_PATIENCE,
        }
    }
}

impl Timed {
    /// The faster path by the best of the last runs, once both have [`TRIALS`] runs.
    fn faster(&self) -> Option<Start> {
        if self.pruned.0.len() < TRIALS || self.dense.0.len() < TRIALS {
            return None;
        }
        Some(if self.dense.best() < self.pruned.best() {
            Start::Dense
        } else {
            Start::Pruned
        })
    }
}

/// Classes measured so far: one table for the process ([`start`], [`record`]).
#[derive(Debug, Default)]
struct Plans(BTreeMap<i32, Timed>);

static PLANS: Mutex<Plans> = Mutex::new(Plans(BTreeMap::new()));

#[allow(clippy::cast_possible_truncation)] // a base-2 logarithm of seconds
fn class(estimate: f64) -> i32 {
    estimate.max(1e-9).log2().floor() as i32
}

fn planned(estimate: f64) -> bool {
    estimate > 0.0 && estimate <= PLANNED_UP_TO
}

impl Plans {
    fn start(&self, estimate: f64) -> Start {
        if !planned(estimate) {
            return Start::Pruned;
        }
        let Some(timed) = self.0.get(&class(estimate)) else {
            return Start::Pruned;
        };
        // Each path is judged on two runs at least (the first of a path in a process
        // often pays for its first allocations), tried in turn.
        let (p, d) = (&timed.pruned.0, &timed.dense.0);
        if p.len() < TRIALS && p.len() <= d.len() {
            return Start::Pruned;
        }
        let Some(faster) = timed.faster() else {
            return Start::Dense;
        };
        // Now and then the slower path again: the times it was judged by may have met a
        // busy stretch of the machine, or other inputs. Rarer each time it loses.
        if timed.since >= timed.patience {
            return faster.other();
        }
        faster
    }

    fn record(&mut self, estimate: f64, start: Start, seconds: f64) {
        if !planned(estimate) {
            return;
        }
        let timed = self.0.entry(class(estimate)).or_default();
        let rate = seconds / estimate;
        let before = timed.faster();
        let (runs, other) = match start {
            Start::Pruned => (&mut timed.pruned, &mut timed.dense),
            Start::Dense => (&mut timed.dense, &mut timed.pruned),
        };
        runs.push(rate);
        // Two runs in a row far off the path's best before them: the inputs (or the
        // machine) changed, and the other path's times are of what was before, so the
        // next selection measures it again. One such run is not enough: the first call
        // after a pause (threads asleep, caches cold) is often one.
        if runs.changed() {
            other.0.clear();
        }
        match before {
            Some(path) if path == start => timed.since += 1,
            Some(_) => {
                timed.since = 0;
                timed.patience = if timed.faster() == before {
                    (timed.patience * 2).min(MAX_PATIENCE)
                } else {
                    FIRST_PATIENCE
                };
            }
            None => timed.since = 0,
        }
    }
}

fn plans() -> std::sync::MutexGuard<'static, Plans> {
    PLANS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The path to start on for a selection whose dense path is estimated at `estimate`
/// seconds.
pub(crate) fn start(estimate: f64) -> Start {
    plans().start(estimate)
}

/// A selection estimated at `estimate` seconds dense took `seconds` from `start`.
pub(crate) fn record(estimate: f64, start: Start, seconds: f64) {
    plans().record(estimate, start, seconds);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_tries_both_paths_keeps_the_faster_measures_again_when_inputs_change_and_large_ones_start_pruned(
    ) {
        let mut plans = Plans::default();
        let e = 0.004;
        assert_eq!(plans.start(e), Start::Pruned, "first of its class");
        plans.record(e, Start::Pruned, 0.012);
        assert_eq!(plans.start(e), Start::Dense, "second of its class");
        plans.record(e, Start::Dense, 0.005);
        assert_eq!(plans.start(e), Start::Pruned, "each path runs twice");
        plans.record(e, Start::Pruned, 0.012);
        assert_eq!(plans.start(e), Start::Dense);
        plans.record(e, Start::Dense, 0.005);
        assert_eq!(
            plans.start(e * 1.5),
            Start::Dense,
            "the faster, in the same class"
        );
        // Runs within 1.5x of the path's best are noise: the best of the last three
        // decides.
        plans.record(e, Start::Dense, 0.007);
        plans.record(e, Start::Dense, 0.007);
        plans.record(e, Start::Dense, 0.007);
        assert_eq!(plans.start(e), Start::Dense, "0.007 still beats 0.012");
        // One run far off (a cold start) changes nothing; two in a row are a change of
        // inputs, so the other path is measured again.
        plans.record(e, Start::Dense, 0.030);
        assert_eq!(plans.start(e), Start::Dense, "one slow run");
        plans.record(e, Start::Dense, 0.030);
        assert_eq!(
            plans.start(e),
            Start::Pruned,
            "measured again after a change"
        );
        plans.record(e, Start::Pruned, 0.010);
        assert_eq!(plans.start(e), Start::Pruned, "twice");
        plans.record(e, Start::Pruned, 0.010);
        assert_eq!(
            plans.start(e),
            Start::Dense,
            "0.007 is still among the last three"
        );
        plans.record(e, Start::Dense, 0.030);
        assert_eq!(plans.start(e), Start::Pruned, "the new inputs' times only");
        // Faster inputs are a change too.
        plans.record(e, Start::Pruned, 0.010);
        plans.record(e, Start::Pruned, 0.003);
        assert_eq!(plans.start(e), Start::Pruned);
        plans.record(e, Start::Pruned, 0.003);
        assert_eq!(
            plans.start(e),
            Start::Dense,
            "measured again on the faster inputs"
        );
        // Another class is measured afresh.
        assert_eq!(plans.start(e * 4.0), Start::Pruned);
        // Above the planned range, always the pruned path, and nothing is recorded.
        plans.record(10.0, Start::Dense, 1.0);
        assert_eq!(plans.start(10.0), Start::Pruned);
        assert_eq!(plans.start(f64::NAN), Start::Pruned);
        assert_eq!(plans.0.len(), 1);
    }

    #[test]
    fn the_slower_path_runs_again_after_8_then_16_selections_and_wins_if_faster_then() {
        let mut plans = Plans::default();
        let e = 0.004;
        for (path, seconds) in [
            (Start::Pruned, 0.012),
            (Start::Dense, 0.005),
            (Start::Pruned, 0.012),
            (Start::Dense, 0.005),
        ] {
            assert_eq!(plans.start(e), path);
            plans.record(e, path, seconds);
        }
        let run = |plans: &mut Plans, n: usize, seconds: f64| {
            for _ in 0..n {
                assert_eq!(plans.start(e), Start::Dense);
                plans.record(e, Start::Dense, seconds);
            }
        };
        run(&mut plans, 8, 0.005);
        assert_eq!(plans.start(e), Start::Pruned, "looked at again after 8");
        plans.record(e, Start::Pruned, 0.012);
        run(&mut plans, 16, 0.005);
        assert_eq!(plans.start(e), Start::Pruned, "after 16 the next time");
        // This time the pruned path is the faster (its first runs met a busy machine):
        // it is kept.
        plans.record(e, Start::Pruned, 0.003);
        assert_eq!(plans.start(e), Start::Pruned);
    }
}
