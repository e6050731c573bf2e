//! Exact greedy farthest-point selection with lazily tightened bounds.
//!
//! `D(i)`, candidate `i`'s distance to its nearest pool row or earlier pick, is never
//! computed for every candidate. Each candidate carries upper bounds instead, and only
//! a candidate whose bound could still beat the best exact `D` found in the current
//! step is refined:
//!
//! * `pool_ub`: distance to the nearest pool row, exact once refined; before that,
//!   `d(leader, nearest pool leader) + d(i, leader)`, measured on arrival, and a lower
//!   bound `pool_lb` from the same search order (`pool::Hint`).
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

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::time::Instant;

use rayon::prelude::*;

use crate::distance::l2;
use crate::groups::{self, Group};
use crate::matrix::{Blocks, Matrix};
use std::sync::OnceLock;

use crate::dense::{self, Targets};
use crate::pool::{beyond, raised, Hint, PoolIndex, SLACK};
use crate::switch::{trace, Meter, Rows, Strategy};
use crate::validate::SelectError;
use crate::Cancel;

/// Groups whose leaders are measured against the pool between two cancellation checks.
const GROUPS_PER_CHECK: usize = 512;

/// Candidates refined together before it pays to use more than one thread.
const PARALLEL_BATCH: usize = 16;

/// Group visits between two looks at the clock (a visit is a few microseconds).
const VISITS_PER_CHECK: usize = 64;

/// Radius of a run of groups, as a multiple of the group radius `tau`.
const RUN_TAU: f64 = 4.0;

/// A run never spans more groups than this.
const MAX_RUN_GROUPS: usize = 64;

/// A pick: the candidate's row and its distance to the pool and all earlier picks
/// (`inf` for the first pick without a pool).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pick {
    pub index: usize,
    pub distance: f64,
}

/// What is known about a block of candidates before selection: its groups and every
/// candidate's first bound on its distance to the pool. Computing it is the expensive
/// part that can run while further candidates are still being embedded.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    groups: Vec<Group>,
    /// Distance from each row to its group's leader.
    offset: Vec<f64>,
    /// Bounds on each leader's distance to the pool, and the pool row at the upper one.
    leader_lb: Vec<f64>,
    leader_ub: Vec<f64>,
    leader_near: Vec<usize>,
    pool_ub: Vec<f64>,
    pool_exact: Vec<bool>,
    /// Runs of consecutive groups whose leaders lie near the run's first leader: per
    /// group its run and its leader's distance to the run's leader; per run its first
    /// group.
    run_of: Vec<usize>,
    run_offset: Vec<f64>,
    runs: Vec<usize>,
    /// Rows whose pool distance the GEMM pass measured exactly (all or none of a block).
    gemm_rows: usize,
}

impl Prepared {
    /// Rows measured against the pool by the GEMM pass instead of bounded through their
    /// group leaders, because the bounds were measured to cost more (for tests and
    /// benchmarks).
    #[must_use]
    pub fn gemm_rows(&self) -> usize {
        self.gemm_rows
    }

    #[must_use]
    pub fn rows(&self) -> usize {
        self.offset.len()
    }

    /// Number of leader groups (for benchmarks and tests).
    #[must_use]
    pub fn group_count(&self) -> usize {
        self.groups.len()
    }

    /// The blocks one after the other, as if prepared as one matrix in that order.
    #[must_use]
    pub fn concat(parts: Vec<Prepared>) -> Prepared {
        let mut out = Prepared::default();
        for part in parts {
            let base = out.rows();
            let (group_base, run_base) = (out.groups.len(), out.runs.len());
            out.run_of.extend(part.run_of.iter().map(|r| r + run_base));
            out.run_offset.extend(part.run_offset);
            out.runs.extend(part.runs.iter().map(|g| g + group_base));
            out.groups.extend(part.groups.iter().map(|g| Group {
                start: g.start + base,
                end: g.end + base,
                radius: g.radius,
            }));
            out.offset.extend(part.offset);
            out.leader_lb.extend(part.leader_lb);
            out.leader_ub.extend(part.leader_ub);
            out.leader_near.extend(part.leader_near);
            out.pool_ub.extend(part.pool_ub);
            out.pool_exact.extend(part.pool_exact);
            out.gemm_rows += part.gemm_rows;
        }
        out
    }
}

/// Groups `candidates` and measures every group leader's exact distance to the pool.
pub(crate) fn prepare(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    cancel: Cancel<'_>,
) -> Result<Prepared, SelectError> {
    let tau = groups::tau(candidates);
    let grouped = groups::leader_groups(candidates, tau, cancel)?;
    let (run_of, run_offset, runs) = group_runs(candidates, &grouped.groups, RUN_TAU * tau);
    let mut lower = vec![f64::INFINITY; grouped.groups.len()];
    let mut upper = vec![f64::INFINITY; grouped.groups.len()];
    let mut leader_near = vec![usize::MAX; grouped.groups.len()];
    let n = candidates.rows();
    let mut exact = None;
    if pool.rows() > 0 {
        let started = Instant::now();
        for (slab_no, (((slab, lb), ub), near)) in grouped
            .groups
            .chunks(GROUPS_PER_CHECK)
            .zip(lower.chunks_mut(GROUPS_PER_CHECK))
            .zip(upper.chunks_mut(GROUPS_PER_CHECK))
            .zip(leader_near.chunks_mut(GROUPS_PER_CHECK))
            .enumerate()
        {
            if cancel() {
                return Err(SelectError::Cancelled);
            }
            if slab_no == 1 {
                // Measured on the first slab: when the groups do not compress the rows,
                // bounding each leader costs more than the GEMM pass that gives every
                // row its exact distance, and the bounds would prune little anyway.
                #[allow(clippy::cast_precision_loss)]
                let hints_left = started.elapsed().as_secs_f64() / GROUPS_PER_CHECK as f64
                    * (grouped.groups.len() - GROUPS_PER_CHECK) as f64;
                let cost = index.dense_cost(&Blocks::from(candidates), pool);
                let pass = cost.pool_pass(n, pool.rows());
                trace(|| {
                    format!("prepare {n} rows: bounds left {hints_left:.3} s, GEMM {pass:.3} s")
                });
                if hints_left > pass {
                    let rows = dense::all_rows(&Blocks::from(candidates));
                    let targets = Targets {
                        data: pool.data(),
                        rows: pool.rows(),
                    };
                    exact = Some(dense::nearest(
                        &Blocks::from(candidates),
                        &rows,
                        targets,
                        cancel,
                    )?);
                    break;
                }
            }
            // Bounds only: an exact search is left for the few candidates that could
            // still win when selection needs it.
            slab.par_iter()
                .zip(
                    lb.par_iter_mut()
                        .zip(ub.par_iter_mut().zip(near.par_iter_mut())),
                )
                .for_each(|(g, (lb, (ub, row)))| {
                    let hint = index.hint(pool, candidates.row(g.start), 0.0);
                    (*lb, *ub, *row) = hint.bounds(index);
                });
        }
    }
    let mut pool_ub = vec![0.0_f64; n];
    let mut pool_exact = vec![false; n];
    let gemm_rows = if exact.is_some() { n } else { 0 };
    if let Some(exact) = exact {
        for (k, g) in grouped.groups.iter().enumerate() {
            (lower[k], upper[k], leader_near[k]) = (exact[g.start], exact[g.start], usize::MAX);
        }
        pool_ub = exact;
        pool_exact.fill(true);
    } else {
        for (g, &d) in grouped.groups.iter().zip(&upper) {
            for i in g.rows() {
                pool_ub[i] = raised(d + grouped.offset[i]);
                pool_exact[i] = pool.rows() == 0;
            }
        }
    }
    Ok(Prepared {
        groups: grouped.groups,
        offset: grouped.offset,
        leader_lb: lower,
        leader_ub: upper,
        leader_near,
        pool_ub,
        pool_exact,
        run_of,
        run_offset,
        runs,
        gemm_rows,
    })
}

/// Runs over `groups`: a group joins the current run while its leader lies within
/// `tau` of the run's first leader (and the run is not full).
fn group_runs(m: &Matrix<'_>, groups: &[Group], tau: f64) -> (Vec<usize>, Vec<f64>, Vec<usize>) {
    let mut run_of = Vec::with_capacity(groups.len());
    let mut run_offset = Vec::with_capacity(groups.len());
    let mut runs: Vec<usize> = Vec::new();
    for (k, g) in groups.iter().enumerate() {
        let joined = runs.last().and_then(|&first| {
            if k - first >= MAX_RUN_GROUPS {
                return None;
            }
            let d = l2(m.row(g.start), m.row(groups[first].start));
            (d <= tau).then_some(d)
        });
        if let Some(d) = joined {
            run_offset.push(d);
        } else {
            runs.push(k);
            run_offset.push(0.0);
        }
        run_of.push(runs.len() - 1);
    }
    (run_of, run_offset, runs)
}

/// `(value, index)` beats `best`: farther, or as far with a lower index.
#[inline]
fn beats(value: f64, index: usize, best: Option<(f64, usize)>) -> bool {
    match best {
        None => true,
        Some((d, i)) => match value.total_cmp(&d) {
            Ordering::Greater => true,
            Ordering::Equal => index < i,
            Ordering::Less => false,
        },
    }
}

/// Heap entry: a group with the bound its members had when it was pushed.
#[derive(Debug, Clone, Copy)]
struct Entry {
    bound: f64,
    start: usize,
    group: usize,
    version: u32,
}

// Largest bound first; on equal bounds the group with the lowest rows first.
largest_bound_first!(Entry, start);

/// A candidate's refinable state, copied out for parallel refinement and back.
#[derive(Debug, Clone, Copy)]
struct State {
    index: usize,
    pick_min: f64,
    seen: usize,
    pool_ub: f64,
    pool_exact: bool,
    /// Lower bound on the distance to the pool: the leader's, less the offset, and the
    /// magnitude it was computed from.
    pool_lb: f64,
    pool_lb_scale: f64,
}

impl State {
    fn bound(&self) -> f64 {
        self.pick_min.min(self.pool_ub)
    }

    /// The pool is certainly no nearer than the nearest pick, so `pick_min` is `D`.
    fn pick_decides(&self) -> bool {
        beyond(
            self.pool_lb,
            self.pick_min,
            self.pool_lb_scale + self.pick_min,
        )
    }

    /// `bound()` is `D` itself, given all `picks` picks.
    fn exact(&self, picks: usize) -> bool {
        self.seen == picks && (self.pool_exact || self.pick_decides())
    }
}

struct Selection<'a, 'b> {
    candidates: &'b Blocks<'a>,
    pool: &'b Matrix<'a>,
    index: &'b PoolIndex,
    prep: Prepared,
    pick_min: Vec<f64>,
    seen: Vec<usize>,
    picked: Vec<bool>,
    /// Per group: distances from the leader to the picks, as far as the group has seen
    /// them (filled only for groups that get visited), and the smallest of them.
    leader_picks: Vec<Vec<f64>>,
    /// Per run: distances from its leader to the picks, as far as it has seen them.
    run_picks: Vec<Vec<f64>>,
    group_pick: Vec<f64>,
    bound: Vec<f64>,
    version: Vec<u32>,
    picks: Vec<Pick>,
    /// Candidates whose pool distance is not exact yet, and the nanoseconds (summed over
    /// threads) spent so far searching the pool for such distances.
    inexact: usize,
    search_ns: AtomicU64,
    pool_pass_at: Option<usize>,
}

impl Selection<'_, '_> {
    fn state(&self, i: usize, group: usize) -> State {
        State {
            index: i,
            pick_min: self.pick_min[i],
            seen: self.seen[i],
            pool_ub: self.prep.pool_ub[i],
            pool_exact: self.prep.pool_exact[i],
            pool_lb: self.prep.leader_lb[group] - self.prep.offset[i],
            pool_lb_scale: self.prep.leader_lb[group].abs() + self.prep.offset[i],
        }
    }

    fn store(&mut self, s: &State) {
        self.pick_min[s.index] = s.pick_min;
        self.seen[s.index] = s.seen;
        self.prep.pool_ub[s.index] = s.pool_ub;
        if s.pool_exact && !self.prep.pool_exact[s.index] {
            self.inexact -= 1;
        }
        self.prep.pool_exact[s.index] = s.pool_exact;
    }

    /// Seconds spent searching the pool so far, over all threads.
    fn search_s(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let ns = self.search_ns.load(AtomicOrdering::Relaxed) as f64;
        ns * 1e-9
    }

    /// Every remaining pool distance at once, by the dense path's GEMM pass: the bounds
    /// already computed stay valid (they only ever exceed the exact distances).
    fn pool_pass(&mut self, cancel: Cancel<'_>) -> Result<(), SelectError> {
        let rows: Vec<usize> = (0..self.prep.rows())
            .filter(|&i| !self.prep.pool_exact[i])
            .collect();
        let targets = Targets {
            data: self.pool.data(),
            rows: self.pool.rows(),
        };
        let exact = dense::nearest(self.candidates, &rows, targets, cancel)?;
        for (&i, d) in rows.iter().zip(exact) {
            self.prep.pool_ub[i] = d;
            self.prep.pool_exact[i] = true;
        }
        self.inexact = 0;
        self.pool_pass_at = Some(self.picks.len());
        Ok(())
    }

    /// Tightens `s` until it is exact or certainly below `cutoff`.
    ///
    /// `to_leader[j - first]` is the distance from the group's leader to pick `j`: a
    /// pick farther from the candidate than its current bound cannot lower it, and
    /// `d(x, q) >= d(leader, q) - d(x, leader)` shows most of them without a distance.
    fn refine(
        &self,
        mut s: State,
        group: usize,
        to_leader: &[f64],
        hint: &OnceLock<Hint>,
        cutoff: f64,
    ) -> State {
        let x = self.candidates.row(s.index);
        let offset = self.prep.offset[s.index];
        while s.seen < self.picks.len() {
            let near = to_leader[s.seen];
            if !beyond(near - offset, s.bound(), near + offset + s.bound()) {
                let q = self.candidates.row(self.picks[s.seen].index);
                s.pick_min = s.pick_min.min(l2(x, q));
            }
            s.seen += 1;
            if s.bound() < cutoff {
                return s;
            }
        }
        if !s.pool_exact && !s.pick_decides() {
            // The pool row nearest the leader is usually near `x` too: one distance that
            // often settles `x` without a search.
            let near = self.prep.leader_near[group];
            if near != usize::MAX {
                s.pool_ub = s.pool_ub.min(l2(x, self.pool.row(near)));
                if s.bound() < cutoff {
                    return s;
                }
            }
            let started = Instant::now();
            let g = &self.prep.groups[group];
            let hint = hint.get_or_init(|| {
                self.index
                    .hint(self.pool, self.candidates.row(g.start), g.radius)
            });
            let (d, exact, _) =
                self.index
                    .nearest(self.pool, x, self.prep.offset[s.index], hint, cutoff);
            s.pool_ub = if exact { d } else { s.pool_ub.min(d) };
            s.pool_exact = exact;
            let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.search_ns.fetch_add(ns, AtomicOrdering::Relaxed);
        }
        s
    }

    /// Brings group `k` up to date and folds its best exact candidate into `best`.
    /// Returns the new bound on its unpicked members (`-inf` when none is left).
    fn visit(&mut self, k: usize, best: &mut Option<(f64, usize)>) -> f64 {
        let g = self.prep.groups[k];
        let leader = self.candidates.row(g.start);
        let run = self.prep.run_of[k];
        let mut to_run = std::mem::take(&mut self.run_picks[run]);
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
        for (p, &d) in self.picks[fresh..].iter().zip(&to_run[fresh..]) {
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
                let exact = l2(leader, self.candidates.row(p.index));
                to_leader.push(exact);
                near_pick = near_pick.min(exact);
            }
        }
        self.run_picks[run] = to_run;
        self.group_pick[k] = near_pick;
        let bound = self.visit_members(k, near_pick, &to_leader, best);
        self.leader_picks[k] = to_leader;
        bound
    }

    /// `visit` for the members, given the leader's distances to all picks.
    fn visit_members(
        &mut self,
        k: usize,
        near_pick: f64,
        to_leader: &[f64],
        best: &mut Option<(f64, usize)>,
    ) -> f64 {
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
            return bound;
        }
        // Most promising first, in rounds that double in size: the first exact values
        // raise the cutoff that lets the later rounds stop early.
        needy.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        // Built by the first candidate that needs a search of the pool, if any does.
        let hint = OnceLock::new();
        let mut done = 0;
        let mut round = 1;
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
                batch.into_iter().map(refine).collect()
            } else {
                batch.into_par_iter().map(refine).collect()
            };
            for s in &refined {
                self.store(s);
                let value = s.bound();
                bound = bound.max(value.min(raised(self.prep.offset[s.index] + near_pick)));
                if s.exact(t) && beats(value, s.index, *best) {
                    *best = Some((value, s.index));
                }
            }
        }
        bound
    }
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
            &prep,
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
            "pruned loop: {} picks, {:.3} s",
            sel.picks.len(),
            started.elapsed().as_secs_f64()
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
        &sel.prep,
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

/// The pruned loop, until it is done (`true`) or the measurements say to go dense.
fn pruned(
    sel: &mut Selection<'_, '_>,
    heap: &mut BinaryHeap<Entry>,
    meter: &mut Option<Meter>,
    budget: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<bool, SelectError> {
    let mut visited = Vec::new();
    let mut visits = 0_usize;
    while sel.picks.len() < budget {
        if cancel() {
            return Err(SelectError::Cancelled);
        }
        if measure(meter, sel, cancel)? {
            return Ok(false);
        }
        let mut best: Option<(f64, usize)> = None;
        while let Some(top) = heap.peek().copied() {
            if top.version != sel.version[top.group] {
                heap.pop();
                continue;
            }
            if !beats(top.bound, top.start, best) {
                break;
            }
            heap.pop();
            sel.bound[top.group] = sel.visit(top.group, &mut best);
            visited.push(top.group);
            visits += 1;
            // Mid-pick too: on unprunable data one pick can outlast the dense path.
            if visits.is_multiple_of(VISITS_PER_CHECK) && measure(meter, sel, cancel)? {
                return Ok(false);
            }
        }
        for group in visited.drain(..) {
            sel.version[group] += 1;
            if sel.bound[group] > f64::NEG_INFINITY {
                heap.push(Entry {
                    bound: sel.bound[group],
                    start: sel.prep.groups[group].start,
                    group,
                    version: sel.version[group],
                });
            }
        }
        let Some((distance, index)) = best else {
            return Ok(true);
        };
        if distance < min_distance {
            return Ok(true);
        }
        sel.picked[index] = true;
        sel.picks.push(Pick { index, distance });
        if let Some(m) = meter.as_mut() {
            m.picked();
        }
    }
    Ok(sel.picks.len() >= budget)
}

/// The measured decisions (see `switch`): the GEMM pass over the pool once searching
/// it row by row has cost as much as that pass would; then whether to leave the pruned
/// loop for the dense path (`true`).
fn measure(
    meter: &mut Option<Meter>,
    sel: &mut Selection<'_, '_>,
    cancel: Cancel<'_>,
) -> Result<bool, SelectError> {
    let Some(m) = meter.as_mut() else {
        return Ok(false);
    };
    if sel.inexact > 0 && m.pool_pass_due(sel.inexact, sel.search_s()) {
        let started = Instant::now();
        let (inexact, searched) = (sel.inexact, sel.search_s());
        sel.pool_pass(cancel)?;
        m.pool_done();
        trace(|| {
            format!(
                "GEMM pool pass after {} picks: {inexact} rows in {:.3} s (searches took {searched:.3} thread-s)",
                sel.picks.len(),
                started.elapsed().as_secs_f64()
            )
        });
    }
    Ok(m.switch(sel.picks.len()))
}

/// The pruned loop's starting state: every group on the heap at its first bound.
fn start<'a, 'b>(
    candidates: &'b Blocks<'a>,
    pool: &'b Matrix<'a>,
    index: &'b PoolIndex,
    prep: Prepared,
    budget: usize,
) -> (BinaryHeap<Entry>, Selection<'a, 'b>) {
    let n = candidates.rows();
    let prep_inexact = prep.pool_exact.iter().filter(|&&e| !e).count();
    let k = prep.groups.len();
    let run_count = prep.runs.len();
    let bound: Vec<f64> = prep
        .groups
        .iter()
        .zip(&prep.leader_ub)
        .map(|(g, d)| {
            // Members that know their pool distance exactly bound the group tightly.
            if g.rows().all(|i| prep.pool_exact[i]) {
                g.rows()
                    .map(|i| prep.pool_ub[i])
                    .fold(f64::NEG_INFINITY, f64::max)
            } else {
                raised(d + g.radius)
            }
        })
        .collect();
    let heap: BinaryHeap<Entry> = prep
        .groups
        .iter()
        .enumerate()
        .map(|(group, g)| Entry {
            bound: bound[group],
            start: g.start,
            group,
            version: 0,
        })
        .collect();
    let sel = Selection {
        candidates,
        pool,
        index,
        prep,
        pick_min: vec![f64::INFINITY; n],
        seen: vec![0; n],
        picked: vec![false; n],
        leader_picks: vec![Vec::new(); k],
        run_picks: vec![Vec::new(); run_count],
        group_pick: vec![f64::INFINITY; k],
        bound,
        version: vec![0; k],
        picks: Vec::with_capacity(budget),
        inexact: prep_inexact,
        search_ns: AtomicU64::new(0),
        pool_pass_at: None,
    };
    (heap, sel)
}

/// The dense path from `picks` on: exact distances to the pool (by GEMM, for the rows
/// whose distance `prep` does not know exactly yet) and to those picks, then the lazy
/// greedy loop.
pub(crate) fn dense_from(
    candidates: &Blocks<'_>,
    pool: &Matrix<'_>,
    prep: &Prepared,
    picks: Vec<Pick>,
    budget: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    let pool_rows = Targets {
        data: pool.data(),
        rows: pool.rows(),
    };
    let inexact: Vec<usize> = (0..candidates.rows())
        .filter(|&i| !prep.pool_exact[i])
        .collect();
    let started = Instant::now();
    let mut d = prep.pool_ub.clone();
    for (i, near) in inexact
        .iter()
        .zip(dense::nearest(candidates, &inexact, pool_rows, cancel)?)
    {
        d[*i] = near;
    }
    trace(|| {
        format!(
            "dense: GEMM pool pass, {} rows, {:.3} s",
            inexact.len(),
            started.elapsed().as_secs_f64()
        )
    });
    let started = Instant::now();
    if !picks.is_empty() {
        let rows = dense::gather(candidates, &picks);
        let picked = Targets {
            data: &rows,
            rows: picks.len(),
        };
        let all = dense::all_rows(candidates);
        let near = dense::nearest(candidates, &all, picked, cancel)?;
        for (d, near) in d.iter_mut().zip(near) {
            *d = d.min(near);
        }
    }
    trace(|| {
        format!(
            "dense: GEMM pass over {} picks, {:.3} s",
            picks.len(),
            started.elapsed().as_secs_f64()
        )
    });
    let started = Instant::now();
    let picks = dense::select(candidates, d, picks, budget, min_distance, cancel)?;
    trace(|| {
        format!(
            "dense: lazy loop to {} picks, {:.3} s",
            picks.len(),
            started.elapsed().as_secs_f64()
        )
    });
    Ok(picks)
}

#[cfg(test)]
mod tests {
    use super::*;
    // The greedy loop on the path the measurements choose, as the crate's callers run it.
    use crate::select_prepared_blocks as select;

    fn never() -> bool {
        false
    }

    fn m<'a>(name: &'static str, data: &'a [f32], cols: usize) -> Matrix<'a> {
        let rows = data.len().checked_div(cols).unwrap_or(0);
        Matrix::new(name, data, rows, cols).unwrap()
    }

    fn no_pool() -> Matrix<'static> {
        Matrix::new("pool", &[], 0, 0).unwrap()
    }

    fn run(c: &Matrix<'_>, p: &Matrix<'_>, n: i64, min_d: f64) -> Vec<usize> {
        let index = PoolIndex::build(p, &never).unwrap();
        let prep = prepare(c, p, &index, &never).unwrap();
        select(&Blocks::from(c), p, &index, prep, n, min_d, &never)
            .unwrap()
            .iter()
            .map(|p| p.index)
            .collect()
    }

    #[test]
    fn first_pick_without_pool_is_candidate_zero() {
        let c = [5.0, 0.0, 1.0, 9.0];
        assert_eq!(run(&m("c", &c, 1), &no_pool(), 1, 0.0), vec![0]);
    }

    #[test]
    fn picks_farthest_first() {
        // 1-D points; after 0.0 the farthest is 9.0, then 5.0 (4 from 9, 5 from 0).
        let c = [0.0, 1.0, 9.0, 5.0];
        assert_eq!(run(&m("c", &c, 1), &no_pool(), 10, 0.0), vec![0, 2, 3, 1]);
    }

    #[test]
    fn ties_go_to_the_lowest_index() {
        // From candidate 0, candidates 2 and 3 are both at distance 1 (1 at 0.5).
        let c = [0.0, 0.0, 0.5, 0.0, 0.0, 1.0, -1.0, 0.0];
        assert_eq!(run(&m("c", &c, 2), &no_pool(), 4, 0.0), vec![0, 2, 3, 1]);
    }

    #[test]
    fn pool_rows_count_as_already_picked() {
        // D from the pool: 0, 4, 1; after picking 4, candidate 10 is still 1 away.
        let c = [0.0, 4.0, 10.0];
        let p = [0.0, 9.0];
        assert_eq!(run(&m("c", &c, 1), &m("p", &p, 1), 3, 0.0), vec![1, 2, 0]);
    }

    #[test]
    fn reports_each_picks_distance() {
        let c = [0.0, 4.0, 10.0];
        let p = [0.0, 9.0];
        let (c, p) = (m("c", &c, 1), m("p", &p, 1));
        let index = PoolIndex::build(&p, &never).unwrap();
        let prep = prepare(&c, &p, &index, &never).unwrap();
        let picks = select(&Blocks::from(&c), &p, &index, prep, 3, 0.0, &never).unwrap();
        let d: Vec<f64> = picks.iter().map(|p| p.distance).collect();
        assert_eq!(d, vec![4.0, 1.0, 0.0]);
    }

    #[test]
    fn stops_below_min_distance_but_keeps_exact_ties() {
        let c = [0.0, 0.0, 3.0, 4.0, 0.0, 1.0];
        let p = [0.0, -5.0];
        // D from the pool: 5, sqrt(90), 6, so candidate 1 goes first.
        let got = run(&m("c", &c, 2), &m("p", &p, 2), 10, 5.0);
        // Candidate 0 is exactly 5 from both pool and candidate 1: picked.
        assert_eq!(got, vec![1, 0]);
        let got = run(&m("c", &c, 2), &m("p", &p, 2), 10, 5.000_001);
        assert_eq!(got, vec![1]);
    }

    #[test]
    fn candidate_equal_to_a_pool_row_needs_zero_min_distance() {
        let c = [1.0, 2.0];
        let p = [1.0, 2.0];
        assert!(run(&m("c", &c, 2), &m("p", &p, 2), 1, 1e-9).is_empty());
        assert_eq!(run(&m("c", &c, 2), &m("p", &p, 2), 1, 0.0), vec![0]);
    }

    #[test]
    fn never_picks_more_than_there_are() {
        let c = [0.0, 0.0, 0.0];
        assert_eq!(run(&m("c", &c, 1), &no_pool(), 99, 0.0), vec![0, 1, 2]);
        assert!(run(&m("c", &c, 1), &no_pool(), 0, 0.0).is_empty());
        assert!(run(&m("c", &[], 3), &no_pool(), 5, 0.0).is_empty());
    }

    #[test]
    fn zero_width_rows_are_all_at_distance_zero() {
        let c = Matrix::new("c", &[], 3, 0).unwrap();
        assert_eq!(run(&c, &no_pool(), 5, 0.0), vec![0, 1, 2]);
        assert_eq!(run(&c, &no_pool(), 5, 0.5), vec![0]);
        let p = Matrix::new("p", &[], 2, 0).unwrap();
        assert!(run(&c, &p, 5, 0.5).is_empty());
    }

    #[test]
    fn prepared_blocks_concatenate_like_one_matrix() {
        #[allow(clippy::cast_precision_loss)]
        let c: Vec<f32> = (0..600)
            .map(|i| ((i * 7919) % 1013) as f32 / 17.0)
            .collect();
        let p: Vec<f32> = c[..60].iter().map(|v| v + 0.5).collect();
        let (whole, pool) = (m("c", &c, 3), m("p", &p, 3));
        let index = PoolIndex::build(&pool, &never).unwrap();
        let a = m("c", &c[..300], 3);
        let b = m("c", &c[300..], 3);
        let parts = vec![
            prepare(&a, &pool, &index, &never).unwrap(),
            prepare(&b, &pool, &index, &never).unwrap(),
        ];
        let joined = Prepared::concat(parts);
        assert_eq!(joined.rows(), 200);
        let got = select(
            &Blocks::from(&whole),
            &pool,
            &index,
            joined,
            50,
            0.0,
            &never,
        )
        .unwrap();
        let want = run(&whole, &pool, 50, 0.0);
        assert_eq!(got.iter().map(|p| p.index).collect::<Vec<_>>(), want);
        // The same blocks read in place, without joining their rows into one buffer.
        let parts = vec![
            prepare(&a, &pool, &index, &never).unwrap(),
            prepare(&b, &pool, &index, &never).unwrap(),
        ];
        let borrowed = Blocks::new(&[a, b], 3).unwrap();
        let in_place = select(
            &borrowed,
            &pool,
            &index,
            Prepared::concat(parts),
            50,
            0.0,
            &never,
        );
        assert_eq!(in_place.unwrap(), got);
    }

    #[test]
    fn cancellation_stops_the_loop() {
        let c = [0.0, 1.0, 2.0];
        let c = m("c", &c, 1);
        let p = no_pool();
        let index = PoolIndex::build(&p, &never).unwrap();
        let prep = prepare(&c, &p, &index, &never).unwrap();
        let err = select(&Blocks::from(&c), &p, &index, prep, 3, 0.0, &|| true).unwrap_err();
        assert_eq!(err, SelectError::Cancelled);
    }

    /// Scenes of drifting near-duplicate rows: many small groups, chained into runs.
    #[allow(clippy::cast_precision_loss)]
    fn scenes(rows: usize, d: usize, seed: usize) -> Vec<f32> {
        (0..rows * d)
            .map(|k| {
                let (i, j) = (k / d, k % d);
                let scene = (i / 150 + seed) % 7;
                let centre = ((scene * 31 + j * 17) % 13) as f32;
                let drift = ((i % 150) as f32 * 0.05 + j as f32).sin() * 0.6;
                let noise = ((k * 7919 + seed) % 101) as f32 * 1e-3;
                centre + drift + noise
            })
            .collect()
    }

    #[test]
    fn runs_chain_nearby_leaders() {
        // 1-D leaders 0, 1, 2.5 | 10 with tau 3: the fourth starts a run.
        let data = [0.0, 1.0, 2.5, 10.0];
        let c = m("c", &data, 1);
        let groups: Vec<Group> = (0..4)
            .map(|i| Group {
                start: i,
                end: i + 1,
                radius: 0.0,
            })
            .collect();
        let (run_of, offset, runs) = group_runs(&c, &groups, 3.0);
        assert_eq!(run_of, vec![0, 0, 0, 1]);
        assert_eq!(runs, vec![0, 3]);
        assert_eq!(offset, vec![0.0, 1.0, 2.5, 0.0]);
    }

    #[test]
    fn picks_measured_through_runs_match_the_reference() {
        let (n, p, d) = (1200, 150, 8);
        let c = scenes(n, d, 0);
        let pool = scenes(p, d, 3);
        let (c, pool) = (m("c", &c, d), m("p", &pool, d));
        let index = PoolIndex::build(&pool, &never).unwrap();
        let prep = prepare(&c, &pool, &index, &never).unwrap();
        // The data must exercise the run path: runs holding several groups.
        assert!(
            prep.runs.len() * 3 < prep.groups.len(),
            "{} runs",
            prep.runs.len()
        );
        let picks = select(&Blocks::from(&c), &pool, &index, prep, 40, 0.0, &never).unwrap();
        let picks: Vec<usize> = picks.iter().map(|p| p.index).collect();
        crate::proptests::check_path(&c, &pool, 40, 0.0, &picks).unwrap();
    }

    #[test]
    fn entries_order_by_bound_then_lowest_rows() {
        let e = |bound, start| Entry {
            bound,
            start,
            group: 0,
            version: 0,
        };
        assert!(e(2.0, 5) > e(1.0, 0));
        assert!(e(1.0, 0) > e(1.0, 5));
        assert!(e(f64::INFINITY, 9) > e(3.0, 0));
    }
}
