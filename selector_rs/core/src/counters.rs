//! Work counters for `SELECTOR_RS_TRACE`: how many distances each part of the pruned
//! loop computed, so that a trace says where the time went. Added to in bulk (once per
//! search or refinement), never per distance.

use std::sync::atomic::{AtomicU64, Ordering};

/// Pool searches, pool rows they measured, candidate-pick and leader-pick distances.
pub(crate) static BATCHES: AtomicU64 = AtomicU64::new(0);
pub(crate) static SEARCHES: AtomicU64 = AtomicU64::new(0);
pub(crate) static SEARCH_ROWS: AtomicU64 = AtomicU64::new(0);
pub(crate) static HALF_ROWS: AtomicU64 = AtomicU64::new(0);
pub(crate) static PICK_DISTANCES: AtomicU64 = AtomicU64::new(0);
pub(crate) static LEADER_DISTANCES: AtomicU64 = AtomicU64::new(0);
/// Candidate-pick pairs the dense path's lazy loop bounded (measured or not).
pub(crate) static PICKS_BOUNDED: AtomicU64 = AtomicU64::new(0);

#[inline]
pub(crate) fn add(counter: &AtomicU64, n: usize) {
    if n > 0 {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
}

/// The counters since the last call, as a line for the trace, and back to zero.
pub(crate) fn take() -> String {
    let get = |c: &AtomicU64| c.swap(0, Ordering::Relaxed);
    format!(
        "{} batches, {} pool searches reading {} rows ({} bfloat16 rows), {} candidate-pick and {} leader-pick distances",
        get(&BATCHES),
        get(&SEARCHES),
        get(&SEARCH_ROWS),
        get(&HALF_ROWS),
        get(&PICK_DISTANCES),
        get(&LEADER_DISTANCES)
    )
}
