//! The pruned loop: a max-heap of groups by the bound of their unpicked members, each
//! step visiting only the groups that can still hold the farthest candidate.

use std::collections::BinaryHeap;
use std::sync::atomic::AtomicU64;

use super::pool_pass::measure;
use super::selection::Selection;
use super::state::beats;
use super::Prepared;
use crate::distance::quant_rows::QuantRows;
use crate::matrix::{Blocks, Matrix};
use crate::pool::PoolIndex;
use crate::switch::Meter;
use crate::validate::SelectError;
use crate::Cancel;

/// Group visits between two looks at the clock (a visit is a few microseconds).
const VISITS_PER_CHECK: usize = 64;

/// Heap entry: a group with the bound its members had when it was pushed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) bound: f64,
    pub(super) start: usize,
    pub(super) group: usize,
    pub(super) version: u32,
}

// Largest bound first; on equal bounds the group with the lowest rows first.
largest_bound_first!(Entry, start);

/// The pruned loop, until it is done (`true`) or the measurements say to go dense.
pub(super) fn pruned(
    sel: &mut Selection<'_, '_>,
    heap: &mut BinaryHeap<Entry>,
    meter: &mut Option<Meter>,
    budget: usize,
    min_distance: f64,
    cancel: Cancel<'_>,
) -> Result<bool, SelectError> {
    let mut visited = Vec::new();
    let mut parked = Vec::new();
    let mut visits = 0_usize;
    while sel.picks.len() < budget {
        if cancel() {
            return Err(SelectError::Cancelled);
        }
        if measure(meter, sel, cancel)? {
            return Ok(false);
        }
        let mut best: Option<(f64, usize)> = None;
        sel.new_step();
        loop {
            let Some(top) = heap.peek().copied() else {
                if sel.pending.is_empty() {
                    break;
                }
                sel.search_pending(best);
                heap.extend(parked.drain(..));
                continue;
            };
            if top.version != sel.version[top.group] {
                heap.pop();
                continue;
            }
            let beats_best = beats(top.bound, top.start, best);
            if !sel.pending.is_empty() && (!beats_best || sel.batch_full()) {
                // The batch is complete: search it, then revisit its groups.
                sel.search_pending(best);
                heap.extend(parked.drain(..));
                continue;
            }
            if !beats_best {
                break;
            }
            heap.pop();
            sel.search_from = next_bound(heap, &sel.version);
            let collected = sel.pending.len();
            let (bound, waits) = sel.visit(top.group, &mut best);
            sel.bound[top.group] = bound;
            if sel.pending.len() > collected {
                // Out of the heap until its batch is searched.
                parked.push(Entry { bound, ..top });
            } else if waits {
                // Back on the heap now: it is visited again, and searches, once its
                // bound is the largest left and `best` has not overtaken it.
                heap.push(Entry { bound, ..top });
            } else {
                visited.push(top.group);
            }
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
        sel.take(index, distance);
        if let Some(m) = meter.as_mut() {
            m.picked(sel.search_s());
        }
    }
    Ok(sel.picks.len() >= budget)
}

/// The largest current bound on the heap (stale entries dropped), `-inf` when empty.
fn next_bound(heap: &mut BinaryHeap<Entry>, version: &[u32]) -> f64 {
    while let Some(top) = heap.peek() {
        if top.version == version[top.group] {
            return top.bound;
        }
        heap.pop();
    }
    f64::NEG_INFINITY
}

/// The pruned loop's starting state: every group on the heap at its first bound.
pub(super) fn start<'a, 'b>(
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
    // Each member's own pool bound (see `prepare`) bounds the group tightly.
    let bound: Vec<f64> = prep
        .groups
        .iter()
        .map(|g| {
            g.rows()
                .map(|i| prep.pool_ub[i])
                .fold(f64::NEG_INFINITY, f64::max)
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
        pool_floor: vec![f64::NEG_INFINITY; n],
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
        search_from: f64::NEG_INFINITY,
        pending: Vec::new(),
        batch_cap: 1,
        probed: vec![false; n],
        pick_quant: QuantRows::default(),
    };
    (heap, sel)
}
