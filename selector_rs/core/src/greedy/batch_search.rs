//! Pool searches in batches: where the pool falls into scenes, a candidate that needs
//! an exact pool distance does not search at once but joins a batch, and the batch is
//! searched together (`Scenes::nearest_below_many`: a pool row is read once for all
//! the candidates that cannot rule it out, instead of once per candidate).
//!
//! One at a time, the searches ran in the order of their bounds, each candidate waiting
//! until its bound was the largest left, so that an exact value found first could
//! spare the later ones. On rough footage that spared few: the searched candidates'
//! bounds lie within ~0.01 of their exact distances, and a pick needed ~9 searches,
//! each reading ~30% of the pool. A batch's first candidate still waits until its
//! bound is the largest left; the batch then takes the next candidates in the order
//! the heap gives them, up to a size that doubles with each batch of the same step (1,
//! 2, 4, ...), so a step searches at most about twice the candidates it would have
//! searched one at a time.
//!
//! A candidate's first search reads only its `PROBE_SCENES` nearest pool scenes (a
//! probe). Measured at 300,000 rough candidates against 30,000 pool rows (seed
//! 466523635), the searches with a cutoff that found no row below it read the whole
//! pool (958 of 962 clusters each, 54% of the searches' cluster visits), and those that
//! stopped at a row below the cutoff 79 clusters each: most candidates sent into a
//! search were not the farthest, but their bound (a row near their group's leader) was
//! ~0.01 too loose to show it. The nearest row of their nearest scenes is about as tight
//! as their exact distance, and rules most of them out for a scene's reading; only a
//! candidate still above `best` after its probe is searched across the rest of the pool
//! (the scenes its probe read hold no row nearer than the bound it left).

use std::sync::atomic::Ordering as AtomicOrdering;
use std::time::Instant;

use super::selection::Selection;
use super::state::{beats, State};
use crate::counters;

/// Pool scenes a candidate's first search reads: those with the nearest centres (see
/// `search_pending`). Measured on the first 50,000 pool and 500,000 candidate rows of
/// the 1M rough benchmark (seed 466523635, 400 picks, two alternating runs each): the
/// loop 11.9/12.2 s with 1, 11.2/10.8 s with 2 (36.6 M bfloat16 rows read, 41.6 M with
/// 1). On the first 30,000 / 300,000 rows (300 picks, one run each, one after the
/// other): 7.9 and 8.1 s without probes, 5.9 s with 1, 5.6 s with 2, 6.5 s with 4.
const PROBE_SCENES: usize = 2;

impl Selection<'_, '_> {
    /// Whether `s`, after folding in every pick, still needs a pool search that a batch
    /// will do (the pool falls into scenes).
    #[inline]
    pub(super) fn defers(&self, s: &State) -> bool {
        self.index.scenes().is_some()
            && s.seen == self.picks.len()
            && !s.pool_exact
            && !s.pick_decides()
    }

    /// Adds candidate `s` (bound `value`) to the batch: as its first when its bound is
    /// the largest left, after that while the batch has room; `false` when it must
    /// wait for a later batch.
    pub(super) fn collect(&mut self, s: &State, value: f64) -> bool {
        let room = if self.pending.is_empty() {
            // Another group's exact value may still spare it.
            value >= self.search_from
        } else {
            self.pending.len() < self.batch_cap
        };
        if room {
            self.pending.push(s.index);
        }
        room
    }

    /// Whether the batch is as large as this step's batches may be now.
    pub(super) fn batch_full(&self) -> bool {
        self.pending.len() >= self.batch_cap
    }

    /// A new step: its first batch holds one candidate.
    pub(super) fn new_step(&mut self) {
        self.batch_cap = 1;
    }

    /// Searches the batch: every candidate in it whose bound still beats `best` and that
    /// was probed already gets its exact pool distance, or learns that its nearest pick
    /// decides `D`, or (its search stopped early) a pool bound below `best`; the others
    /// are probed (their nearest row in their nearest scenes bounds them).
    pub(super) fn search_pending(&mut self, best: Option<(f64, usize)>) {
        let started = Instant::now();
        let pending = std::mem::take(&mut self.pending);
        self.batch_cap *= 2;
        let bound = |sel: &Self, i: usize| sel.pick_min[i].min(sel.prep.pool_ub[i]);
        let rows: Vec<usize> = pending
            .into_iter()
            .filter(|&i| !self.prep.pool_exact[i] && beats(bound(self, i), i, best))
            .collect();
        let Some(scenes) = self.index.scenes() else {
            return;
        };
        if rows.is_empty() {
            return;
        }
        counters::add(&counters::BATCHES, 1);
        // With no more scenes than a probe reads, a probe would be the whole search.
        let (fresh, rows, probed): (Vec<usize>, Vec<usize>, usize) = if scenes.len() > PROBE_SCENES
        {
            let (fresh, rows) = rows.into_iter().partition(|&i| !self.probed[i]);
            (fresh, rows, PROBE_SCENES)
        } else {
            (Vec::new(), rows, 0)
        };
        if !fresh.is_empty() {
            // First the nearest scenes only: the row found there bounds the candidate
            // about as tightly as its exact distance, and a bound below `best` needs no
            // search of the whole pool.
            let xs: Vec<&[f32]> = fresh.iter().map(|&i| self.candidates.row(i)).collect();
            let below: Vec<f64> = fresh.iter().map(|&i| bound(self, i)).collect();
            let found = scenes.nearest_below_many(
                self.pool,
                &xs,
                &below,
                f64::NEG_INFINITY,
                0..PROBE_SCENES,
            );
            for (&i, found) in fresh.iter().zip(found) {
                self.probed[i] = true;
                if let Some((d, _)) = found.nearest {
                    self.prep.pool_ub[i] = d;
                }
            }
        }
        if !rows.is_empty() {
            let xs: Vec<&[f32]> = rows.iter().map(|&i| self.candidates.row(i)).collect();
            // Only a pool row nearer than both bounds can matter: with none, the pick
            // decides `D`, or the pool bound is the pool distance.
            let below: Vec<f64> = rows.iter().map(|&i| bound(self, i)).collect();
            let cutoff = best.map_or(f64::NEG_INFINITY, |b| b.0);
            // Not the scenes its probe read: none of their rows is nearer than the probe's
            // bound or the row it found, and `below` is no larger than either.
            let found =
                scenes.nearest_below_many(self.pool, &xs, &below, cutoff, probed..usize::MAX);
            for ((&i, &below), found) in rows.iter().zip(&below).zip(found) {
                if let Some((d, _)) = found.nearest {
                    self.prep.pool_ub[i] = d;
                    if found.exact {
                        self.set_exact(i);
                    }
                } else if self.prep.pool_ub[i] <= below {
                    self.set_exact(i);
                } else {
                    self.pool_floor[i] = below;
                }
            }
        }
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.search_ns.fetch_add(ns, AtomicOrdering::Relaxed);
    }

    fn set_exact(&mut self, i: usize) {
        if !self.prep.pool_exact[i] {
            self.prep.pool_exact[i] = true;
            self.inexact -= 1;
        }
    }
}
