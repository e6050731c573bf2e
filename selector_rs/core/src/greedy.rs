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
//! Candidates live in contiguous leader groups (see `groups`); a max-heap orders the
//! groups by the largest bound of their unpicked members, so each step touches only
//! the groups that can still hold the farthest candidate. Bounds only ever shrink
//! (`D` only shrinks as picks accumulate), so a bound computed once stays valid.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use rayon::prelude::*;

use crate::distance::l2;
use crate::groups::{self, Group};
use crate::matrix::Matrix;
use std::sync::OnceLock;

use crate::pool::{beyond, raised, Hint, PoolIndex};
use crate::validate::SelectError;
use crate::Cancel;

/// Groups whose leaders are measured against the pool between two cancellation checks.
const GROUPS_PER_CHECK: usize = 512;

/// Candidates refined together before it pays to use more than one thread.
const PARALLEL_BATCH: usize = 16;

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
}

impl Prepared {
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
    let grouped = groups::leader_groups(candidates, groups::tau(candidates), cancel)?;
    let mut lower = vec![f64::INFINITY; grouped.groups.len()];
    let mut upper = vec![f64::INFINITY; grouped.groups.len()];
    let mut leader_near = vec![usize::MAX; grouped.groups.len()];
    if pool.rows() > 0 {
        for (((slab, lb), ub), near) in grouped
            .groups
            .chunks(GROUPS_PER_CHECK)
            .zip(lower.chunks_mut(GROUPS_PER_CHECK))
            .zip(upper.chunks_mut(GROUPS_PER_CHECK))
            .zip(leader_near.chunks_mut(GROUPS_PER_CHECK))
        {
            if cancel() {
                return Err(SelectError::Cancelled);
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
    let n = candidates.rows();
    let mut pool_ub = vec![0.0_f64; n];
    let mut pool_exact = vec![false; n];
    for (g, &d) in grouped.groups.iter().zip(&upper) {
        for i in g.rows() {
            pool_ub[i] = raised(d + grouped.offset[i]);
            pool_exact[i] = pool.rows() == 0;
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
    })
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

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Entry {
    /// Largest bound first; on equal bounds the group with the lowest rows first.
    fn cmp(&self, other: &Self) -> Ordering {
        self.bound
            .total_cmp(&other.bound)
            .then(other.start.cmp(&self.start))
    }
}

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
    candidates: &'b Matrix<'a>,
    pool: &'b Matrix<'a>,
    index: &'b PoolIndex,
    prep: Prepared,
    pick_min: Vec<f64>,
    seen: Vec<usize>,
    picked: Vec<bool>,
    /// Per group: distances from the leader to the picks, as far as the group has seen
    /// them (filled only for groups that get visited), and the smallest of them.
    leader_picks: Vec<Vec<f64>>,
    group_pick: Vec<f64>,
    bound: Vec<f64>,
    version: Vec<u32>,
    picks: Vec<Pick>,
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
        self.prep.pool_exact[s.index] = s.pool_exact;
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
        }
        s
    }

    /// Brings group `k` up to date and folds its best exact candidate into `best`.
    /// Returns the new bound on its unpicked members (`-inf` when none is left).
    fn visit(&mut self, k: usize, best: &mut Option<(f64, usize)>) -> f64 {
        let leader = self.candidates.row(self.prep.groups[k].start);
        let mut to_leader = std::mem::take(&mut self.leader_picks[k]);
        let fresh = to_leader.len();
        to_leader.extend(
            self.picks[fresh..]
                .iter()
                .map(|p| l2(leader, self.candidates.row(p.index))),
        );
        let near_pick = to_leader[fresh..]
            .iter()
            .fold(self.group_pick[k], |a, &b| a.min(b));
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

/// The greedy loop over prepared candidates.
pub(crate) fn select(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    prep: Prepared,
    n_samples: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<Vec<Pick>, SelectError> {
    let n = candidates.rows();
    let budget = n_samples.min(n);
    let k = prep.groups.len();
    let bound: Vec<f64> = prep
        .groups
        .iter()
        .zip(&prep.leader_ub)
        .map(|(g, d)| raised(d + g.radius))
        .collect();
    let mut heap: BinaryHeap<Entry> = prep
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
    let mut sel = Selection {
        candidates,
        pool,
        index,
        prep,
        pick_min: vec![f64::INFINITY; n],
        seen: vec![0; n],
        picked: vec![false; n],
        leader_picks: vec![Vec::new(); k],
        group_pick: vec![f64::INFINITY; k],
        bound,
        version: vec![0; k],
        picks: Vec::with_capacity(budget),
    };
    let mut visited = Vec::new();
    while sel.picks.len() < budget {
        if cancel() {
            return Err(SelectError::Cancelled);
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
        let Some((distance, index)) = best else { break };
        if distance < min_distance {
            break;
        }
        sel.picked[index] = true;
        sel.picks.push(Pick { index, distance });
    }
    Ok(sel.picks)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    fn run(c: &Matrix<'_>, p: &Matrix<'_>, n: usize, min_d: f64) -> Vec<usize> {
        let index = PoolIndex::build(p, &never).unwrap();
        let prep = prepare(c, p, &index, &never).unwrap();
        select(c, p, &index, prep, n, min_d, &never)
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
        let picks = select(&c, &p, &index, prep, 3, 0.0, &never).unwrap();
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
        let got = select(&whole, &pool, &index, joined, 50, 0.0, &never).unwrap();
        let want = run(&whole, &pool, 50, 0.0);
        assert_eq!(got.iter().map(|p| p.index).collect::<Vec<_>>(), want);
    }

    #[test]
    fn cancellation_stops_the_loop() {
        let c = [0.0, 1.0, 2.0];
        let c = m("c", &c, 1);
        let p = no_pool();
        let index = PoolIndex::build(&p, &never).unwrap();
        let prep = prepare(&c, &p, &index, &never).unwrap();
        let err = select(&c, &p, &index, prep, 3, 0.0, &|| true).unwrap_err();
        assert_eq!(err, SelectError::Cancelled);
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
