//! Preparing a block of candidates: its leader groups, the runs of nearby groups, and
//! every leader's bounds on its distance to the pool (or, where the bounds would cost
//! more, every row's exact distance by the GEMM pass).

use std::time::Instant;

use rayon::prelude::*;

use super::Prepared;
use crate::dense::{self, Targets};
use crate::distance::l2;
use crate::groups::{self, Group};
use crate::matrix::{Blocks, Matrix};
use crate::pool::{raised, PoolIndex};
use crate::switch::trace;
use crate::validate::SelectError;
use crate::Cancel;

/// Groups whose leaders are measured against the pool between two cancellation checks.
const GROUPS_PER_CHECK: usize = 512;

/// Leaders bounded together by one block of dot products (`PoolIndex::bounds_many`).
const LEADERS_PER_TILE: usize = 64;

/// Radius of a run of groups, as a multiple of the group radius `tau`.
const RUN_TAU: f64 = 4.0;

/// A run never spans more groups than this.
const MAX_RUN_GROUPS: usize = 64;

/// Pool scenes searched for a wide leader's near pool row: those with the nearest
/// centres. Any pool row gives a valid bound, but a looser one sends more candidates
/// into a pool search later. Measured at 1M rough rows (179 pool scenes, seed
/// 466523635): every scene, 123 s of GEMM in a 155 s `prepare`; the nearest 16, 9.0 s
/// of 23.0 s with as many searches later (54,255; 54,434 before); the nearest 2, 2.8 s,
/// but 139,730 searches (the loop 261 s instead of ~120-140 s).
const WIDE_SCENES: usize = 16;

/// Groups `candidates` and measures every group leader's exact distance to the pool.
pub(crate) fn prepare(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    cancel: Cancel<'_>,
) -> Result<Prepared, SelectError> {
    let started = Instant::now();
    let tau = groups::tau(candidates);
    let grouped = groups::leader_groups(candidates, tau, cancel)?;
    let (run_of, run_offset, runs) = group_runs(candidates, &grouped.groups, RUN_TAU * tau);
    let grouping_s = started.elapsed().as_secs_f64();
    // Seconds spent on the leaders' bounds and on the wide leaders' GEMM (for the trace).
    let mut seconds = [0.0; 2];
    let mut lower = vec![f64::INFINITY; grouped.groups.len()];
    let mut upper = vec![f64::INFINITY; grouped.groups.len()];
    let mut leader_near = vec![usize::MAX; grouped.groups.len()];
    let n = candidates.rows();
    let mut exact = None;
    // Whether the leaders' bounds come from tiles (`None`: not measured yet).
    let mut tiles = None;
    if pool.rows() > 0 {
        let started = Instant::now();
        // Seconds the first slab spent on the way to bound leaders that was not chosen.
        let mut spare = 0.0;
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
                let hints_left = (started.elapsed().as_secs_f64() - spare)
                    / GROUPS_PER_CHECK as f64
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
            let out = (lb, ub, near);
            spare += slab_bounds(candidates, pool, index, slab, out, &mut tiles, &mut seconds);
        }
    }
    let at = Instant::now();
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
        pool_ub = member_bounds(candidates, pool, &grouped, &upper, &leader_near);
        pool_exact.fill(pool.rows() == 0);
    }
    trace(|| {
        format!(
            "prepare {n} rows: {:.3} s: {} groups {grouping_s:.3} s, leader bounds {:.3} s, \
             wide leaders' search {:.3} s, member bounds {:.3} s; wide leaders: {}",
            started.elapsed().as_secs_f64(),
            grouped.groups.len(),
            seconds[0],
            seconds[1],
            at.elapsed().as_secs_f64(),
            crate::counters::take()
        )
    });
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

/// Bounds on the pool distance of the leaders of `slab` into `lb`, `ub` and `near` (the
/// pool row at `ub`), adding the seconds taken by the leaders' bounds and by the wide
/// leaders' search (`wide_nearest`) to `seconds`; returns the seconds spent on the way
/// not chosen (the first slab measures both).
///
/// The bounds come from each leader's search order over the pool groups
/// (`PoolIndex::hint`, which skips the pool's runs far from it) or from tiles of dot
/// products with every pool group's leader (`PoolIndex::bounds_many`), whichever the
/// first slab measures faster (`tiles`): at 1M rough rows the tiles took 0.7 s against
/// 5.9 s, but where the pool's runs prune (smooth video at 1M rows, 9,020 pool groups)
/// reading every group cost 10.6 s.
#[allow(clippy::too_many_arguments)]
fn slab_bounds(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    slab: &[Group],
    (lb, ub, near): (&mut [f64], &mut [f64], &mut [usize]),
    tiles: &mut Option<bool>,
    seconds: &mut [f64; 2],
) -> f64 {
    let at = Instant::now();
    let mut spare = 0.0;
    let by_tiles = || -> Option<Vec<(f64, f64, usize)>> {
        let leaders: Vec<&[f32]> = slab.iter().map(|g| candidates.row(g.start)).collect();
        let blocks = leaders.par_chunks(LEADERS_PER_TILE);
        let many = blocks.map(|xs| index.bounds_many(pool, xs));
        many.collect::<Option<Vec<_>>>().map(|v| v.concat())
    };
    let by_hints = || -> Vec<(f64, f64, usize)> {
        let hint = |g: &Group| index.hint(pool, candidates.row(g.start), 0.0).bounds(index);
        slab.par_iter().map(hint).collect()
    };
    let got = match *tiles {
        Some(true) => by_tiles().unwrap_or_else(by_hints),
        Some(false) => by_hints(),
        None => {
            let from_hints = by_hints();
            let split = Instant::now();
            let from_tiles = by_tiles();
            let (hints_s, tiles_s) = (split.duration_since(at), split.elapsed());
            let faster = from_tiles.is_some() && tiles_s < hints_s;
            *tiles = Some(faster);
            spare = if faster { hints_s } else { tiles_s }.as_secs_f64();
            if faster {
                from_tiles.unwrap_or(from_hints)
            } else {
                from_hints
            }
        }
    };
    for ((lb, (ub, row)), b) in lb
        .iter_mut()
        .zip(ub.iter_mut().zip(near.iter_mut()))
        .zip(got)
    {
        (*lb, *ub, *row) = b;
    }
    seconds[0] += at.elapsed().as_secs_f64();
    let at = Instant::now();
    wide_nearest(candidates, pool, index, slab, ub, near);
    seconds[1] += at.elapsed().as_secs_f64();
    spare
}

/// A near pool row of the leaders of `slab`'s wide groups, into `upper` and `near`: the
/// nearest in the `WIDE_SCENES` pool scenes with the nearest centres. Where the pool
/// falls into scenes and a group spreads as wide as a pool scene (rough footage),
/// every member's bound is its distance to that row, and the nearest group leader
/// overshoots by the spread of the pool's frames, sending many members
/// into a search later (measured on rough data at 100k rows: a third of the searches,
/// half the selection's time). Tight groups (smooth video) are bounded well without it.
/// One batched scene search for the slab's leaders together (`Scenes::nearest_below_many`:
/// each pool row read once for all of them, bounded in bfloat16 tiles). Row by row, each
/// leader read most of the pool (7 M distances at 100k rough rows, 0.95 s); by one f32
/// GEMM per scene (`scene_gemm`, until 2026-12-03), 0.24 s there, 2.06 s at 300k rows;
/// by the tiles 0.15 s and 0.89 s.
fn wide_nearest(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    index: &PoolIndex,
    slab: &[Group],
    upper: &mut [f64],
    near: &mut [usize],
) {
    let Some(scenes) = index.scenes() else {
        return;
    };
    let wide: Vec<usize> = (0..slab.len())
        .filter(|&k| slab[k].radius > scenes.median_radius())
        .collect();
    if wide.is_empty() {
        return;
    }
    let leaders: Vec<usize> = wide.iter().map(|&k| slab[k].start).collect();
    let bounds: Vec<f64> = wide.iter().map(|&k| upper[k]).collect();
    let xs: Vec<&[f32]> = leaders.iter().map(|&i| candidates.row(i)).collect();
    let found = scenes.nearest_below_many(pool, &xs, &bounds, f64::NEG_INFINITY, 0..WIDE_SCENES);
    for (&k, found) in wide.iter().zip(found) {
        if let Some((d, row)) = found.nearest {
            (upper[k], near[k]) = (d, row);
        }
    }
}

/// Every row's own distance to its leader's nearest pool row (`upper`, `near`): one
/// distance a row that makes the bound nearly exact on rough data, where the leader's
/// bound plus the row's offset overshoots by the offset (~0.3) and would send most
/// rows into a pool search.
fn member_bounds(
    candidates: &Matrix<'_>,
    pool: &Matrix<'_>,
    grouped: &groups::Groups,
    upper: &[f64],
    leader_near: &[usize],
) -> Vec<f64> {
    let offset = &grouped.offset;
    let per_group: Vec<Vec<f64>> = grouped
        .groups
        .par_iter()
        .zip(upper.par_iter().zip(leader_near.par_iter()))
        .map(|(g, (&d, &near))| {
            g.rows()
                .map(|i| {
                    let bound = raised(d + offset[i]);
                    if near == usize::MAX {
                        bound
                    } else {
                        bound.min(l2(candidates.row(i), pool.row(near)))
                    }
                })
                .collect()
        })
        .collect();
    per_group.concat()
}

/// Runs over `groups`: a group joins the current run while its leader lies within
/// `tau` of the run's first leader (and the run is not full).
pub(super) fn group_runs(
    m: &Matrix<'_>,
    groups: &[Group],
    tau: f64,
) -> (Vec<usize>, Vec<f64>, Vec<usize>) {
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
