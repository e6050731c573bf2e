//! The pruned loop's working state: every candidate's bounds and the picks so far, and
//! how one candidate's bound is tightened.

use std::sync::atomic::{AtomicU64, Ordering as AtomicOrdering};
use std::sync::OnceLock;
use std::time::Instant;

use super::state::State;
use super::{Pick, Prepared};
use crate::counters;
use crate::distance::int8_dot::{self, QuantRow};
use crate::distance::l2;
use crate::distance::quant_rows::QuantRows;
use crate::matrix::{Blocks, Matrix};
use crate::pool::{beyond, Hint, PoolIndex};

/// Distances to picks a candidate's refinement measures before it takes the byte dot
/// products of the rest (see `pick_dots`): most refinements stop after a few.
const PICK_DOTS_FROM: usize = 16;

/// A candidate's byte dot products with the picks `open`: `dots[j - from]` for pick `j`,
/// `None` where it has none.
pub(super) struct PickDots {
    from: usize,
    xq: QuantRow,
    dots: Vec<Option<i32>>,
}

impl PickDots {
    /// Whether pick `j` is certainly farther than `bound` (`false` where not known).
    #[inline]
    pub(super) fn farther(&self, picks: &QuantRows, j: usize, bound: f64) -> bool {
        let dot = j
            .checked_sub(self.from)
            .and_then(|at| self.dots.get(at)?.as_ref());
        dot.is_some_and(|&dot| picks.farther(&self.xq, j, dot, bound))
    }
}

pub(super) struct Selection<'a, 'b> {
    pub(super) candidates: &'b Blocks<'a>,
    pub(super) pool: &'b Matrix<'a>,
    pub(super) index: &'b PoolIndex,
    pub(super) prep: Prepared,
    pub(super) pick_min: Vec<f64>,
    /// Per candidate: no pool row is nearer than this (see `State::pool_floor`).
    pub(super) pool_floor: Vec<f64>,
    pub(super) seen: Vec<usize>,
    pub(super) picked: Vec<bool>,
    /// Per group: distances from the leader to the picks, as far as the group has seen
    /// them (filled only for groups that get visited), and the smallest of them.
    pub(super) leader_picks: Vec<Vec<f64>>,
    /// Per run: distances from its leader to the picks, as far as it has seen them.
    pub(super) run_picks: Vec<Vec<f64>>,
    pub(super) group_pick: Vec<f64>,
    pub(super) bound: Vec<f64>,
    pub(super) version: Vec<u32>,
    pub(super) picks: Vec<Pick>,
    /// Candidates whose pool distance is not exact yet, and the nanoseconds (summed over
    /// threads) spent so far searching the pool for such distances.
    pub(super) inexact: usize,
    pub(super) search_ns: AtomicU64,
    pub(super) pool_pass_at: Option<usize>,
    /// The next group's bound on the heap while a group is visited: a candidate below
    /// it waits for its pool search until it is the largest bound left (see `visit`).
    pub(super) search_from: f64,
    /// Candidates waiting for the next batch of pool searches, and how many the batch
    /// may hold (see `batch_search`).
    pub(super) pending: Vec<usize>,
    pub(super) batch_cap: usize,
    /// Per candidate: whether its nearest pool scenes were probed (see `batch_search`).
    pub(super) probed: Vec<bool>,
    /// The picks in int8, where the byte dot-product kernel runs (see `refine`).
    pub(super) pick_quant: QuantRows,
}

impl Selection<'_, '_> {
    #[inline]
    pub(super) fn state(&self, i: usize, group: usize) -> State {
        State {
            index: i,
            pick_min: self.pick_min[i],
            seen: self.seen[i],
            pool_ub: self.prep.pool_ub[i],
            pool_exact: self.prep.pool_exact[i],
            pool_lb: self.prep.leader_lb[group] - self.prep.offset[i],
            pool_lb_scale: self.prep.leader_lb[group].abs() + self.prep.offset[i],
            pool_floor: self.pool_floor[i],
        }
    }

    #[inline]
    pub(super) fn store(&mut self, s: &State) {
        self.pick_min[s.index] = s.pick_min;
        self.pool_floor[s.index] = s.pool_floor;
        self.seen[s.index] = s.seen;
        self.prep.pool_ub[s.index] = s.pool_ub;
        if s.pool_exact && !self.prep.pool_exact[s.index] {
            self.inexact -= 1;
        }
        self.prep.pool_exact[s.index] = s.pool_exact;
    }

    /// Takes candidate `index` as the next pick, `distance` from the pool and the picks.
    pub(super) fn take(&mut self, index: usize, distance: f64) {
        self.picked[index] = true;
        self.picks.push(Pick { index, distance });
        // (Wider rows could overflow the kernel's i32 sums: those go without dot products.)
        if int8_dot::fast() && self.candidates.cols() <= int8_dot::MAX_COLS {
            self.pick_quant.push(self.candidates.row(index));
        }
    }

    /// For a candidate `x` with many picks left to fold in (one refined for the first
    /// time late in the selection), its byte dot products with the picks `open` (in int8,
    /// `quant_rows`), which show most of them farther than its bound for a fraction of
    /// the distances' cost (`None` with few, or without the kernel). In bfloat16 before:
    /// int8 reads half the bytes and does twice the products per instruction; first
    /// 600 picks of 300,000 rough candidates against 100,000 pool rows, outside the
    /// searches, 5.5-6.1 s against 6.5-7.4 s (four pairs, one thread each, run side by
    /// side).
    pub(super) fn pick_dots(&self, x: &[f32], open: &[usize]) -> Option<PickDots> {
        if open.len() < PICK_DOTS_FROM || self.pick_quant.len() < self.picks.len() {
            return None;
        }
        let (xq, got) = self.pick_dot_products(x, open.iter().copied());
        let from = open[0];
        let mut dots = vec![None; open[open.len() - 1] + 1 - from];
        for (&j, &dot) in open.iter().zip(&got) {
            dots[j - from] = Some(dot);
        }
        Some(PickDots { from, xq, dots })
    }

    /// `x` quantized, and its byte dot products with the int8 copies of `picks` (in order).
    pub(super) fn pick_dot_products(
        &self,
        x: &[f32],
        picks: impl Iterator<Item = usize>,
    ) -> (QuantRow, Vec<i32>) {
        let xq = QuantRow::new(x);
        let rows: Vec<&[i8]> = picks.map(|j| self.pick_quant.row(j)).collect();
        let mut dots = vec![0; rows.len()];
        int8_dot::dots_rows(&xq.bytes, &rows, &mut dots);
        (xq, dots)
    }

    /// Seconds spent searching the pool so far, over all threads.
    #[inline]
    pub(super) fn search_s(&self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let ns = self.search_ns.load(AtomicOrdering::Relaxed) as f64;
        ns * 1e-9
    }

    /// Folds the picks `s` has not seen into its nearest-pick distance, until all are in
    /// or its bound is below `cutoff`.
    fn fold_picks(&self, s: &mut State, to_leader: &[f64], cutoff: f64) {
        let x = self.candidates.row(s.index);
        let offset = self.prep.offset[s.index];
        let mut measured = 0;
        let mut dots = None;
        let picks = self.picks.len();
        while s.seen < picks {
            // The picks the leader's distances show farther than the bound are passed over
            // in one sweep (the bound changes only with a distance measured below).
            let Some(step) = next_near(&to_leader[s.seen..picks], offset, s.bound()) else {
                s.seen = picks;
                break;
            };
            s.seen += step;
            let j = s.seen;
            if dots.is_none() && measured == PICK_DOTS_FROM {
                // Many picks to go: the rest that the leader's distances cannot show
                // farther than the bound now (the bound only shrinks) by dot products.
                let bound = s.bound();
                let open: Vec<usize> = (j..picks)
                    .filter(|&k| near(to_leader[k], offset, bound))
                    .collect();
                dots = self.pick_dots(x, &open);
            }
            let shown = |d: &PickDots| d.farther(&self.pick_quant, j, s.bound());
            if !dots.as_ref().is_some_and(shown) {
                let pick = self.candidates.row(self.picks[j].index);
                s.pick_min = s.pick_min.min(l2(x, pick));
                measured += 1;
            }
            s.seen += 1;
            if s.bound() < cutoff {
                break;
            }
        }
        counters::add(&counters::PICK_DISTANCES, measured);
    }

    /// Tightens `s` until it is exact or certainly below `cutoff`.
    ///
    /// `to_leader[j]` is the distance from the group's leader to pick `j`: a
    /// pick farther from the candidate than its current bound cannot lower it, and
    /// `d(x, q) >= d(leader, q) - d(x, leader)` shows most of them without a distance.
    pub(super) fn refine(
        &self,
        mut s: State,
        group: usize,
        to_leader: &[f64],
        hint: &OnceLock<Hint>,
        cutoff: f64,
    ) -> State {
        let search_from = self.search_from;
        self.fold_picks(&mut s, to_leader, cutoff);
        if s.bound() < cutoff {
            return s;
        }
        if !s.pool_exact && !s.pick_decides() {
            // (`prepare` measured `x` against its leader's nearest pool row already.)
            // A search is the expensive part: it waits while another group may hold a
            // larger bound, whose own exact value could make it unnecessary.
            if s.bound() < search_from {
                return s;
            }
            if self.index.scenes().is_some() {
                // Searched in a batch (see `batch_search`).
                return s;
            }
            let started = Instant::now();
            counters::add(&counters::SEARCHES, 1);
            let g = &self.prep.groups[group];
            let hint = hint.get_or_init(|| {
                self.index
                    .hint(self.pool, self.candidates.row(g.start), g.radius)
            });
            let x = self.candidates.row(s.index);
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
}

/// Whether a pick `to_leader` from the candidate's leader may lie nearer than `bound` to
/// the candidate, `offset` from its leader: `d(x, q) >= d(leader, q) - offset`.
#[inline]
fn near(to_leader: f64, offset: f64, bound: f64) -> bool {
    !beyond(to_leader - offset, bound, to_leader + offset + bound)
}

/// The first `j` with `near(to_leader[j], ..)`, eight at a time, so that the long runs of
/// picks the leader's distances show far away cost a compare each.
fn next_near(to_leader: &[f64], offset: f64, bound: f64) -> Option<usize> {
    let near = |d: f64| near(d, offset, bound);
    let mut chunks = to_leader.chunks_exact(8);
    let mut at = 0;
    for c in &mut chunks {
        if c.iter().fold(false, |any, &d| any | near(d)) {
            return c.iter().position(|&d| near(d)).map(|k| at + k);
        }
        at += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&d| near(d))
        .map(|k| at + k)
}

#[cfg(test)]
mod tests {
    use super::{near, next_near};

    #[test]
    fn the_sweep_stops_at_the_first_pick_the_leaders_distance_cannot_rule_out() {
        let (offset, bound) = (0.2, 1.0);
        for len in 0..40 {
            for at in 0..=len {
                // Every pick far away but the one at `at` (none when `at == len`).
                #[allow(clippy::cast_precision_loss)] // small loop counters
                let d: Vec<f64> = (0..len)
                    .map(|j| if j == at { 1.1 } else { 1.3 + j as f64 * 0.01 })
                    .collect();
                let want = d.iter().position(|&d| near(d, offset, bound));
                assert_eq!(want, (at < len).then_some(at), "{len} {at}");
                assert_eq!(next_near(&d, offset, bound), want, "{len} {at}");
            }
        }
    }
}
