//! Which path a selection of candidates all at hand starts on, planned by measuring
//! both, as FFTW plans a transform (`FFTW_MEASURE`): once per size in a process.
//!
//! The pruned path pays for its pool index and for preparing the candidates before the
//! meter of `switch` can time a single pick, and on small inputs that alone can cost
//! more than the whole dense path (1,000 rows: ~3 ms of setup, 5-7 ms for the dense
//! path from start to end, 11-21 ms for the pruned one). Which one is faster there depends on the machine's thread
//! wake-ups and caches more than on the data, and no cheap look at the input tells. So
//! selections are sorted by the dense path's estimated time (`switch::DenseCost`, from
//! kernel timings) into classes a factor of two apart; the first selection of a class
//! takes the pruned path, the second the dense path, each timed in seconds per second
//! of that estimate, and later ones the faster (by the best of each path's last runs,
//! updated by every run; a run far off its path's best has the other path measured again,
//! as the inputs may have changed). Classes with an estimate above [`PLANNED_UP_TO`] always start
//! pruned: there the setup is a small part of either path, and the meter decides within
//! the run. The classes are sizes, not shapes: inputs of one size share a class.

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

/// How many of a path's latest runs in a class its time is the best of: a shared machine
/// only ever adds to a run's time, so the best of the last few is the steadiest measure
/// of the path, and one slow run does not turn a class over (unless it is [`CHANGED`]).
const KEPT: usize = 3;

/// A run this many times slower or faster than its path's best says the inputs changed
/// (a class holds every input of its size: smooth video, then uniform rows, say, on
/// which the two paths rank the other way round); within one kind of input, runs of a
/// path on a shared machine stay well within it.
const CHANGED: f64 = 1.5;

/// Seconds per estimated second of a path's last [`KEPT`] runs in a class.
#[derive(Debug, Clone, Default)]
struct Runs(Vec<f64>);

impl Runs {
    fn best(&self) -> Option<f64> {
        self.0.iter().copied().reduce(f64::min)
    }

    fn push(&mut self, rate: f64) {
        if self.0.len() == KEPT {
            self.0.remove(0);
        }
        self.0.push(rate);
    }
}

/// Both paths' runs in a class.
#[derive(Debug, Clone, Default)]
struct Timed {
    pruned: Runs,
    dense: Runs,
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
        match (timed.pruned.best(), timed.dense.best()) {
            (None, _) => Start::Pruned,
            (Some(_), None) => Start::Dense,
            (Some(p), Some(d)) => {
                if d < p {
                    Start::Dense
                } else {
                    Start::Pruned
                }
            }
        }
    }

    fn record(&mut self, estimate: f64, start: Start, seconds: f64) {
        if !planned(estimate) {
            return;
        }
        let timed = self.0.entry(class(estimate)).or_default();
        let rate = seconds / estimate;
        let (runs, other) = match start {
            Start::Pruned => (&mut timed.pruned, &mut timed.dense),
            Start::Dense => (&mut timed.dense, &mut timed.pruned),
        };
        // A run far off its path's best: the inputs (or the machine) may have changed,
        // and the other path's times are of what was before, so the next selection
        // measures it again. This path keeps its last runs: one slow run (a cold start)
        // does not make its best, and a real change shows in every run that follows.
        if runs
            .best()
            .is_some_and(|b| rate > b * CHANGED || rate * CHANGED < b)
        {
            other.0.clear();
        }
        runs.push(rate);
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
        assert_eq!(
            plans.start(e * 1.5),
            Start::Dense,
            "the faster, in the same class"
        );
        // Runs within 1.5x of the path's best are noise: the best of the last three
        // decides.
        plans.record(e, Start::Dense, 0.007);
        plans.record(e, Start::Dense, 0.007);
        assert_eq!(plans.start(e), Start::Dense);
        plans.record(e, Start::Dense, 0.007);
        assert_eq!(plans.start(e), Start::Dense, "0.007 still beats 0.012");
        // A run 1.5x off its path's best: the inputs may have changed, so the other
        // path is measured again; the faster by the best of the last three is kept.
        plans.record(e, Start::Dense, 0.030);
        assert_eq!(plans.start(e), Start::Pruned, "measured again after a change");
        plans.record(e, Start::Pruned, 0.010);
        assert_eq!(plans.start(e), Start::Dense, "one slow run: 0.007 still the best");
        plans.record(e, Start::Dense, 0.030);
        assert_eq!(plans.start(e), Start::Pruned);
        plans.record(e, Start::Pruned, 0.010);
        plans.record(e, Start::Dense, 0.030);
        assert_eq!(plans.start(e), Start::Pruned, "0.030 run after run: a change");
        plans.record(e, Start::Pruned, 0.010);
        assert_eq!(plans.start(e), Start::Pruned);
        plans.record(e, Start::Pruned, 0.004);
        assert_eq!(plans.start(e), Start::Dense, "faster inputs are a change too");
        // Another class is measured afresh.
        assert_eq!(plans.start(e * 4.0), Start::Pruned);
        // Above the planned range, always the pruned path, and nothing is recorded.
        plans.record(10.0, Start::Dense, 1.0);
        assert_eq!(plans.start(10.0), Start::Pruned);
        assert_eq!(plans.start(f64::NAN), Start::Pruned);
        assert_eq!(plans.0.len(), 1);
    }
}
