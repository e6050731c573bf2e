//! The GEMM pass over the pool in the middle of the pruned loop, and the measured
//! decisions (see `switch`) that call for it or for the hand-over to the dense path.

use std::time::Instant;

use super::selection::Selection;
use crate::dense::{self, Targets};
use crate::switch::{trace, Meter};
use crate::validate::SelectError;
use crate::Cancel;

impl Selection<'_, '_> {
    /// Every remaining pool distance at once, by the dense path's GEMM pass: the bounds
    /// already computed stay valid (they only ever exceed the exact distances).
    pub(super) fn pool_pass(&mut self, cancel: Cancel<'_>) -> Result<(), SelectError> {
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
}

/// The measured decisions (see `switch`): the GEMM pass over the pool once searching
/// it row by row has cost as much as that pass would; then whether to leave the pruned
/// loop for the dense path (`true`).
pub(super) fn measure(
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
    Ok(m.switch(sel.picks.len(), sel.search_s()))
}
