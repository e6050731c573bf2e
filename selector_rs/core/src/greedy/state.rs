//! One candidate's bounds, and the greedy rule's order on candidates.

use std::cmp::Ordering;

use crate::pool::beyond;

/// `(value, index)` beats `best`: farther, or as far with a lower index.
#[inline]
pub(super) fn beats(value: f64, index: usize, best: Option<(f64, usize)>) -> bool {
    match best {
        None => true,
        Some((d, i)) => match value.total_cmp(&d) {
            Ordering::Greater => true,
            Ordering::Equal => index < i,
            Ordering::Less => false,
        },
    }
}

/// A candidate's refinable state, copied out for parallel refinement and back.
#[derive(Debug, Clone, Copy)]
pub(super) struct State {
    pub(super) index: usize,
    pub(super) pick_min: f64,
    pub(super) seen: usize,
    pub(super) pool_ub: f64,
    pub(super) pool_exact: bool,
    /// Lower bound on the distance to the pool: the leader's, less the offset, and the
    /// magnitude it was computed from.
    pub(super) pool_lb: f64,
    pub(super) pool_lb_scale: f64,
    /// No pool row is nearer than this (a search found none below it): exact, no slack.
    pub(super) pool_floor: f64,
}

impl State {
    #[inline]
    pub(super) fn bound(&self) -> f64 {
        self.pick_min.min(self.pool_ub)
    }

    /// The pool is certainly no nearer than the nearest pick, so `pick_min` is `D`.
    #[inline]
    pub(super) fn pick_decides(&self) -> bool {
        self.pick_min <= self.pool_floor
            || beyond(
                self.pool_lb,
                self.pick_min,
                self.pool_lb_scale + self.pick_min,
            )
    }

    /// `bound()` is `D` itself, given all `picks` picks.
    #[inline]
    pub(super) fn exact(&self, picks: usize) -> bool {
        self.seen == picks && (self.pool_exact || self.pick_decides())
    }
}
