//! [`Prepared`]: what a block of candidates brings to selection, and how blocks join.

use crate::groups::Group;

/// What is known about a block of candidates before selection: its groups and every
/// candidate's first bound on its distance to the pool. Computing it is the expensive
/// part that can run while further candidates are still being embedded.
#[derive(Debug, Clone, Default)]
pub struct Prepared {
    pub(super) groups: Vec<Group>,
    /// Distance from each row to its group's leader.
    pub(super) offset: Vec<f64>,
    /// Bounds on each leader's distance to the pool, and the pool row at the upper one.
    pub(super) leader_lb: Vec<f64>,
    pub(super) leader_ub: Vec<f64>,
    pub(super) leader_near: Vec<usize>,
    pub(super) pool_ub: Vec<f64>,
    pub(super) pool_exact: Vec<bool>,
    /// Runs of consecutive groups whose leaders lie near the run's first leader: per
    /// group its run and its leader's distance to the run's leader; per run its first
    /// group.
    pub(super) run_of: Vec<usize>,
    pub(super) run_offset: Vec<f64>,
    pub(super) runs: Vec<usize>,
    /// Rows whose pool distance the GEMM pass measured exactly (all or none of a block).
    pub(super) gemm_rows: usize,
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
