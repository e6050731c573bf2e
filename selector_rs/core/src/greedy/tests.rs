//! The pruned loop's unit tests: the greedy rule, prepared blocks, runs and the heap order.

use super::prepare::group_runs;
use super::pruned_loop::Entry;
use super::*;
use crate::distance::l2;
use crate::groups::Group;
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

/// A pool of 6 scenes and candidates in 24 (6 of them the pool's again): the pool falls
/// into scenes, so candidates are probed in their nearest scene before a search of the
/// whole pool, and the candidates of the revisited scenes are first refined when many
/// picks have been made.
#[test]
fn probed_candidates_refined_late_against_many_picks_still_pick_exactly() {
    let d = 32;
    let (pool, cands) = (
        crate::test_data::scenes_of(6, 40, d, 0.0),
        crate::test_data::scenes_of(24, 25, d, 1.7),
    );
    let (c, pool) = (m("c", &cands, d), m("p", &pool, d));
    let index = PoolIndex::build(&pool, &never).unwrap();
    assert!(index.scenes().is_some(), "the pool must fall into scenes");
    let blocks = Blocks::from(&c);
    let prep = prepare(&c, &pool, &index, &never).unwrap();
    let budget = 60;
    let (mut heap, mut sel) = start(&blocks, &pool, &index, prep, budget);
    assert!(pruned(&mut sel, &mut heap, &mut None, budget, 0.0, &never).unwrap());
    assert!(sel.probed.iter().any(|&p| p), "no candidate was probed");
    let picks: Vec<usize> = sel.picks.iter().map(|p| p.index).collect();
    crate::proptests::check_path(&c, &pool, budget, 0.0, &picks).unwrap();
    if !crate::distance::int8_dot::fast() {
        return;
    }
    // A candidate's dot products with all 60 picks show a pick farther than a bound
    // only where it is, and show most picks well beyond the bound.
    assert_eq!(sel.pick_quant.len(), budget);
    let x = c.row(0);
    let dots = sel
        .pick_dots(x, &(0..budget).collect::<Vec<_>>())
        .expect("60 picks: dot products");
    let mut far: Vec<f64> = sel.picks.iter().map(|p| l2(x, c.row(p.index))).collect();
    far.sort_by(f64::total_cmp);
    for bound in [far[0], far[10], far[30], far[59]] {
        let (mut shown, mut beyond) = (0, 0);
        for (j, p) in sel.picks.iter().enumerate() {
            let d = l2(x, c.row(p.index));
            if dots.farther(&sel.pick_quant, j, bound) {
                assert!(d > bound, "pick {j} at {d} shown farther than {bound}");
                shown += 1;
            }
            if d > bound * 1.05 + 1e-3 {
                beyond += 1;
            }
        }
        assert!(shown >= beyond, "bound {bound}: {shown} of {beyond} shown");
    }
}

#[test]
fn picks_too_wide_for_the_byte_kernel_get_no_int8_copy_and_no_dot_products() {
    let fast = crate::distance::int8_dot::fast();
    for (d, copied) in [(8, fast), (crate::distance::int8_dot::MAX_COLS + 1, false)] {
        let data = crate::test_data::noise(20 * d, 9);
        let (c, pool) = (m("c", &data, d), no_pool());
        let index = PoolIndex::build(&pool, &never).unwrap();
        let blocks = Blocks::from(&c);
        let prep = prepare(&c, &pool, &index, &never).unwrap();
        let (_, mut sel) = start(&blocks, &pool, &index, prep, 19);
        for i in 0..19 {
            sel.take(i, 1.0);
        }
        assert_eq!(
            sel.pick_quant.len(),
            if copied { 19 } else { 0 },
            "width {d}"
        );
        let dots = sel.pick_dots(c.row(19), &(0..19).collect::<Vec<_>>());
        assert_eq!(dots.is_some(), copied, "width {d}");
    }
}
