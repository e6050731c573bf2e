//! Visiting a group in the pruned loop: its leader's distances to the new picks, through
//! its run where that shows a pick is too far away to matter, then the members that
//! could still be the farthest candidate, refined in rounds.

use std::sync::OnceLock;

use rayon::prelude::*;

use super::selection::Selection;
use super::state::{beats, State};
use crate::distance::{l2, prefetch};
use crate::pool::{beyond, raised, SLACK};

/// New picks a group's visit bounds by byte dot products first (`leader_bounds`).
const LEADER_DOTS_FROM: usize = 8;

/// Candidates refined together before it pays to use more than one thread.
const PARALLEL_BATCH: usize = 16;

impl Selection<'_, '_> {
    /// Brings group `k` up to date and folds its best exact candidate into `best`.
    /// Returns the new bound on its unpicked members (`-inf` when none is left), and
    /// whether a member that could still beat `best` waits for its pool search (the
    /// group must go back on the heap in this step).
    pub(super) fn visit(&mut self, k: usize, best: &mut Option<(f64, usize)>) -> (f64, bool) {
        let g = self.prep.groups[k];
        let leader = self.candidates.row(g.start);
        let run = self.prep.run_of[k];
        let mut to_run = std::mem::take(&mut self.run_picks[run]);
        let mut measured = self.picks.len() - to_run.len();
        let run_leader = self
            .candidates
            .row(self.prep.groups[self.prep.runs[run]].start);
        to_run.extend(
            self.picks[to_run.len()..]
                .iter()
                .map(|p| l2(run_leader, self.candidates.row(p.index))),
        );
        let mut to_leader = std::mem::take(&mut self.leader_picks[k]);
        let fresh = to_leader.len();
        let off = self.prep.run_offset[k];
        let limit = self.bound[k];
        let mut near_pick = self.group_pick[k];
        // Picks the run cannot show far away: each needs the leader's distance, or a
        // lower bound where that cannot lower `near_pick` (see `leader_bounds`).
        let mut open = Vec::new();
        for (j, (p, &d)) in self.picks.iter().zip(&to_run).enumerate().skip(fresh) {
            if off == 0.0 {
                to_leader.push(d);
                near_pick = near_pick.min(d);
                continue;
            }
            // d(leader, q) >= d(run leader, q) - d(run leader, leader), lowered past
            // rounding; a pick that far away can never lower a member's bound below
            // the group's, so its exact distance is not needed.
            let lower = d - off - SLACK * (d + off);
            if beyond(lower - g.radius, limit, lower + g.radius + limit) {
                to_leader.push(lower);
            } else {
                to_leader.push(f64::NAN);
                open.push((j, p.index));
            }
        }
        let bounds = self.leader_bounds(k, &open);
        for (at, &(j, pick)) in open.iter().enumerate() {
            let low = bounds.as_ref().map_or(f64::NEG_INFINITY, |b| b[at]);
            to_leader[j] = if low >= near_pick {
                low
            } else {
                let exact = l2(leader, self.candidates.row(pick));
                measured += 1;
                near_pick = near_pick.min(exact);
                exact
            };
        }
        self.run_picks[run] = to_run;
        crate::counters::add(&crate::counters::LEADER_DISTANCES, measured);
        self.group_pick[k] = near_pick;
        let bound = self.visit_members(k, near_pick, &to_leader, best);
        self.leader_picks[k] = to_leader;
        bound
    }

    /// Lower bounds on the distances from group `k`'s leader to the picks `open`
    /// (`(pick number, candidate row)`), by byte dot products with the picks' int8 copy
    /// (`None` with few picks, or without the kernel). A pick no nearer than the bound
    /// says cannot lower the group's nearest-pick distance, and a bound serves the
    /// members' filter (`refine`'s `d(x, q) >= d(leader, q) - d(x, leader)`) about as
    /// well as the distance: most leader-pick distances on rough footage are such picks.
    fn leader_bounds(&self, k: usize, open: &[(usize, usize)]) -> Option<Vec<f64>> {
        if open.len() < LEADER_DOTS_FROM || self.pick_quant.len() < self.picks.len() {
            return None;
        }
        // Quantized at each such visit: a copy kept per group added 58 MiB of peak RSS at
        // target2 on smooth video (6,187,384 against 6,128,476 KiB) and no measured speed (target2
        // rough 41.1 against 42.0 s, one run each).
        let leader = self.candidates.row(self.prep.groups[k].start);
        let (xq, dots) = self.pick_dot_products(leader, open.iter().map(|&(j, _)| j));
        Some(
            open.iter()
                .zip(&dots)
                .map(|(&(j, _), &dot)| self.pick_quant.lower(&xq, j, dot))
                .collect(),
        )
    }

    /// `visit` for the members, given the leader's distances to all picks.
    pub(super) fn visit_members(
        &mut self,
        k: usize,
        near_pick: f64,
        to_leader: &[f64],
        best: &mut Option<(f64, usize)>,
    ) -> (f64, bool) {
        let g = self.prep.groups[k];
        let t = self.picks.len();

        let mut bound = f64::NEG_INFINITY;
        let mut needy: Vec<(f64, usize)> = Vec::new();
        for i in g.rows() {
            if self.picked[i] {
                continue;
            }
            let ub = self
                .state(i, k)
                .bound()
                .min(raised(self.prep.offset[i] + near_pick));
            if beats(ub, i, *best) {
                needy.push((ub, i));
            } else {
                bound = bound.max(ub);
            }
        }
        if needy.is_empty() {
            return (bound, false);
        }
        // Most promising first, in rounds that double in size: the first exact values
        // raise the cutoff that lets the later rounds stop early.
        needy.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        // Built by the first candidate that needs a search of the pool, if any does.
        let hint = OnceLock::new();
        let mut done = 0;
        let mut round = 1;
        let mut waiting: Option<(f64, usize)> = None;
        while done < needy.len() {
            let batch: Vec<State> = needy[done..(done + round).min(needy.len())]
                .iter()
                .filter(|&&(ub, i)| {
                    let keep = beats(ub, i, *best);
                    if !keep {
                        bound = bound.max(ub);
                    }
                    keep
                })
                .map(|&(_, i)| self.state(i, k))
                .collect();
            done = (done + round).min(needy.len());
            round *= 2;
            let cutoff = best.map_or(f64::NEG_INFINITY, |b| b.0);
            let this = &*self;
            let refine = |s| this.refine(s, k, to_leader, &hint, cutoff);
            // Waking the other threads costs more than refining a few candidates.
            let refined: Vec<State> = if batch.len() < PARALLEL_BATCH {
                // The next candidate's row is on its way while this one is refined.
                let next: Vec<usize> = batch.iter().skip(1).map(|s| s.index).collect();
                batch
                    .into_iter()
                    .enumerate()
                    .map(|(n, s)| {
                        if let Some(&i) = next.get(n) {
                            prefetch(this.candidates.row(i));
                        }
                        refine(s)
                    })
                    .collect()
            } else {
                batch.into_par_iter().map(refine).collect()
            };
            for s in &refined {
                self.store(s);
                let value = s.bound();
                bound = bound.max(value.min(raised(self.prep.offset[s.index] + near_pick)));
                if s.exact(t) {
                    if beats(value, s.index, *best) {
                        *best = Some((value, s.index));
                    }
                } else if self.defers(s) && beats(value, s.index, *best) && self.collect(s, value) {
                    // Searched with the batch; its group is parked until then.
                } else if beats(value, s.index, waiting) {
                    waiting = Some((value, s.index));
                }
            }
        }
        let waits = waiting.is_some_and(|(v, i)| beats(v, i, *best));
        (bound, waits)
    }
}
