//! The measured decisions of `switch` and the paths they lead to: every path gives the
//! pruned loop's picks and distances. The costs are fixed here (`assume_dense_cost`)
//! so that each decision is taken on purpose, not by the machine's speed.

use crate::greedy::{dense_from, prepare, select_with, Selected};
use crate::switch::{DenseCost, Strategy};
use crate::test_data::noise;
use crate::{Blocks, Matrix, Pick, PoolIndex};

fn never() -> bool {
    false
}

struct Case {
    cands: Vec<f32>,
    pool: Vec<f32>,
    cols: usize,
}

impl Case {
    fn new(n: usize, p: usize, cols: usize) -> Self {
        Self {
            cands: noise(n * cols, 1),
            pool: noise(p * cols, 2),
            cols,
        }
    }

    fn matrices(&self) -> (Matrix<'_>, Matrix<'_>) {
        let c = Matrix::new("c", &self.cands, self.cands.len() / self.cols, self.cols);
        let p = Matrix::new("p", &self.pool, self.pool.len() / self.cols, self.cols);
        (c.unwrap(), p.unwrap())
    }

    /// Selection with the dense path's costs fixed to `cost` (`None`: measured).
    fn select(&self, k: usize, strategy: Strategy, cost: Option<DenseCost>) -> Selected {
        let (c, p) = self.matrices();
        let index = PoolIndex::build(&p, &never).unwrap();
        if let Some(cost) = cost {
            index.assume_dense_cost(cost);
        }
        let prep = prepare(&c, &p, &index, &never).unwrap();
        select_with(
            &Blocks::from(&c),
            &p,
            &index,
            prep,
            k,
            0.0,
            &never,
            strategy,
        )
        .unwrap()
    }
}

#[test]
fn a_pool_costlier_to_bound_than_to_multiply_is_measured_by_gemm_in_prepare() {
    // 1500 single-row groups: the first 512 leaders' bounds are timed, and against a
    // free GEMM pass they lose.
    let case = Case::new(1500, 200, 24);
    let (c, p) = case.matrices();
    let index = PoolIndex::build(&p, &never).unwrap();
    index.assume_dense_cost(DenseCost {
        pair_s: 0.0,
        distance_s: 1.0,
    });
    let prep = prepare(&c, &p, &index, &never).unwrap();
    assert_eq!(prep.gemm_rows(), 1500);
    let got = select_with(
        &Blocks::from(&c),
        &p,
        &index,
        prep,
        80,
        0.0,
        &never,
        Strategy::Auto,
    )
    .unwrap();
    let want = case.select(80, Strategy::Pruned, None);
    assert_eq!(got.picks, want.picks);
    // Against a GEMM pass costing a second per pair the bounds win.
    let index = PoolIndex::build(&p, &never).unwrap();
    index.assume_dense_cost(DenseCost {
        pair_s: 1.0,
        distance_s: 1.0,
    });
    assert_eq!(prepare(&c, &p, &index, &never).unwrap().gemm_rows(), 0);
}

#[test]
fn pool_searches_costlier_than_the_gemm_pass_hand_over_to_it_mid_selection() {
    // Few rows (one slab: prepare decides nothing), so the searches happen in select;
    // with the GEMM pass free it runs at the first look after a search, and the loop
    // goes on pruned (dense picks cost a second per distance: never cheaper).
    let case = Case::new(400, 300, 16);
    let cost = DenseCost {
        pair_s: 0.0,
        distance_s: 1.0,
    };
    let got = case.select(60, Strategy::Auto, Some(cost));
    let want = case.select(60, Strategy::Pruned, None);
    assert!(got.pool_pass_at.is_some(), "{got:?}");
    assert_eq!(got.switched_at, None);
    assert_eq!(got.picks, want.picks);
}

#[test]
fn a_free_dense_path_takes_over_at_once_and_picks_the_same() {
    let case = Case::new(400, 300, 16);
    let free = DenseCost {
        pair_s: 0.0,
        distance_s: 0.0,
    };
    let got = case.select(60, Strategy::Auto, Some(free));
    assert_eq!(got.switched_at, Some(0));
    assert_eq!(got.picks, case.select(60, Strategy::Pruned, None).picks);
    let dense = case.select(60, Strategy::Dense, None);
    assert_eq!(dense.picks, got.picks);
}

#[test]
fn the_dense_path_continues_a_pruned_selection_exactly() {
    // The hand-over mid-run: picks made by the pruned loop, bounds left inexact, then
    // the GEMM passes over the inexact rows and the picks, then the lazy loop.
    let case = Case::new(700, 150, 12);
    let (c, p) = case.matrices();
    let whole = case.select(90, Strategy::Pruned, None).picks;
    for made in [1, 17, 89] {
        let index = PoolIndex::build(&p, &never).unwrap();
        let prep = prepare(&c, &p, &index, &never).unwrap();
        let first: Vec<Pick> = whole[..made].to_vec();
        let rest = dense_from(
            &Blocks::from(&c),
            &p,
            (&prep).into(),
            first,
            90,
            0.0,
            &never,
        )
        .unwrap();
        assert_eq!(rest, whole, "handed over after {made} picks");
    }
}

#[test]
fn the_dense_path_alone_picks_as_the_pruned_loop_does() {
    // What `plan` starts on for small inputs: no pool index, no preparation.
    let case = Case::new(700, 60, 48);
    let pruned = case.select(70, Strategy::Pruned, None);
    let (c, p) = case.matrices();
    let alone = crate::greedy::dense_alone(&Blocks::from(&c), &p, 70, 0.0, &never).unwrap();
    assert_eq!(alone, pruned.picks);
    // And through the entry point, whichever path it plans.
    for _ in 0..3 {
        let got = crate::select_diverse_with(&c, &p, 70, 0.0, &never).unwrap();
        assert_eq!(got, pruned.picks);
    }
}
