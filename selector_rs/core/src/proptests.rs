//! Property tests against the naive f64 reference (`tests/reference/mod.rs`, shared with
//! `tests/fuzz.rs`); each step of a pick path is judged on distances recomputed from scratch.

use proptest::prelude::*;

use crate::reference::{self, farthest};
use crate::{
    prepare, select_diverse, select_prepared, select_prepared_blocks_with, Blocks, Matrix,
    PoolIndex, Strategy as Path,
};

/// Relative gap under which two candidates count as tied: f64 sums in a different
/// order may rank them either way.
const TIE: f64 = 1e-5;

/// A matrix's rows, as the reference takes them.
fn rows<'a>(m: &Matrix<'a>) -> Vec<&'a [f32]> {
    (0..m.rows()).map(|i| m.row(i)).collect()
}

/// D(i) for every unpicked candidate, given the pool and the picks so far.
fn reference_d(c: &Matrix<'_>, pool: &Matrix<'_>, picks: &[usize]) -> Vec<Option<f64>> {
    reference::remaining(&rows(c), &rows(pool), picks)
}

fn reference(c: &Matrix<'_>, pool: &Matrix<'_>, n_samples: usize, min_d: f64) -> Vec<usize> {
    reference::reference(&rows(c), &rows(pool), n_samples, min_d)
}

// Exact equality first so that two infinite distances (no pool, no picks) count as close.
#[allow(clippy::float_cmp)]
fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= TIE * a.abs().max(b.abs())
}

/// Walks `picks` step by step and checks each against the reference D values; this
/// stays meaningful after a near-tie sends the two implementations different ways.
pub(crate) fn check_path(
    c: &Matrix<'_>,
    pool: &Matrix<'_>,
    n_samples: usize,
    min_d: f64,
    picks: &[usize],
) -> Result<(), TestCaseError> {
    prop_assert!(picks.len() <= n_samples.min(c.rows()));
    for (step, &i) in picks.iter().enumerate() {
        let d = reference_d(c, pool, &picks[..step]);
        let Some((want, want_d)) = farthest(&d) else {
            return Err(TestCaseError::fail(format!("step {step}: nothing left")));
        };
        let Some(got_d) = d.get(i).copied().flatten() else {
            return Err(TestCaseError::fail(format!("step {step}: {i} repeated")));
        };
        prop_assert!(
            i == want || close(got_d, want_d),
            "step {step}: picked {i} at D={got_d}, reference {want} at D={want_d}"
        );
        prop_assert!(
            got_d >= min_d || close(got_d, min_d),
            "step {step}: D={got_d} below min_distance {min_d}"
        );
    }
    if picks.len() < n_samples.min(c.rows()) {
        let after = farthest(&reference_d(c, pool, picks));
        if let Some((_, left_d)) = after {
            prop_assert!(
                left_d < min_d || close(left_d, min_d),
                "stopped with D={left_d} >= min_distance {min_d} left"
            );
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
struct Case {
    cands: Vec<f32>,
    pool: Vec<f32>,
    d: usize,
    n_samples: usize,
    min_distance: f64,
    /// Small integer coordinates: every distance is exact in f32, so ties are real
    /// and picks must match the reference exactly.
    integral: bool,
    /// Where to cut the candidates into two separately prepared blocks.
    split: usize,
}

/// Rows in runs of near-duplicates around a few centres, like frames of a video, so
/// that leader groups form and the bounds prune.
fn clustered(rows: usize, d: usize) -> BoxedStrategy<Vec<f32>> {
    (
        proptest::collection::vec(-10.0_f32..10.0, 4 * d),
        proptest::collection::vec(-0.05_f32..0.05, rows * d),
        1_usize..12,
        0_usize..4,
    )
        .prop_map(move |(centres, noise, run, shift)| {
            (0..rows * d)
                .map(|k| {
                    let (i, j) = (k / d, k % d);
                    let c = (i / run + shift) % 4;
                    // A slow drift along the run keeps consecutive rows closest.
                    #[allow(clippy::cast_precision_loss)]
                    let drift = (i % run) as f32 * 0.02;
                    centres[c * d + j] + drift + noise[k]
                })
                .collect()
        })
        .boxed()
}

fn case() -> impl Strategy<Value = Case> {
    (0_usize..60, 0_usize..30, 0_usize..8, 0_u8..3).prop_flat_map(|(n, p, d, kind)| {
        let integral = kind == 0;
        let (cands, pool) = match kind {
            0 => {
                let v = (-3_i8..=3).prop_map(f32::from);
                (
                    proptest::collection::vec(v.clone(), n * d).boxed(),
                    proptest::collection::vec(v, p * d).boxed(),
                )
            }
            1 => (
                proptest::collection::vec(-10.0_f32..10.0, n * d).boxed(),
                proptest::collection::vec(-10.0_f32..10.0, p * d).boxed(),
            ),
            _ => (clustered(n, d), clustered(p, d)),
        };
        (
            cands,
            pool,
            0_usize..70,
            prop_oneof![Just(0.0), 0.0_f64..8.0, (0_u8..6).prop_map(f64::from)],
            0..=n,
        )
            .prop_map(move |(cands, pool, n_samples, min_distance, split)| Case {
                cands,
                pool,
                d,
                n_samples,
                min_distance,
                integral,
                split,
            })
    })
}

impl Case {
    fn candidates(&self) -> Matrix<'_> {
        let rows = self.cands.len().checked_div(self.d).unwrap_or(0);
        Matrix::new("candidates", &self.cands, rows, self.d).unwrap()
    }

    fn pool(&self) -> Matrix<'_> {
        let rows = self.pool.len().checked_div(self.d).unwrap_or(0);
        Matrix::new("pool", &self.pool, rows, self.d).unwrap()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn agrees_with_reference(case in case()) {
        let (c, p) = (case.candidates(), case.pool());
        let n = i64::try_from(case.n_samples).unwrap();
        let picks = select_diverse(&c, &p, n, case.min_distance).unwrap();
        check_path(&c, &p, case.n_samples, case.min_distance, &picks)?;
        if case.integral {
            prop_assert_eq!(&picks, &reference(&c, &p, case.n_samples, case.min_distance));
        }
        // Preparing the candidates as two blocks must not change anything.
        let never = || false;
        let index = PoolIndex::build(&p, &never).unwrap();
        let split = case.split.min(c.rows());
        let (a, b) = case.cands.split_at(split * case.d);
        let a = Matrix::new("candidates", a, split, case.d).unwrap();
        let b = Matrix::new("candidates", b, c.rows() - split, case.d).unwrap();
        let joined = crate::Prepared::concat(vec![
            prepare(&a, &p, &index, &never).unwrap(),
            prepare(&b, &p, &index, &never).unwrap(),
        ]);
        let blocks = select_prepared(&c, &p, &index, joined, n, case.min_distance, &never).unwrap();
        prop_assert_eq!(&picks, &blocks.iter().map(|p| p.index).collect::<Vec<_>>());
        // Both paths compute D with the one kernel: the same picks, the same distances.
        for strategy in [Path::Dense, Path::Pruned] {
            let prep = prepare(&c, &p, &index, &never).unwrap();
            let got = select_prepared_blocks_with(
                &Blocks::from(&c), &p, &index, prep, n, case.min_distance, &never, strategy,
            ).unwrap();
            prop_assert_eq!(&got.picks, &blocks, "{:?}", strategy);
        }
    }

    #[test]
    fn never_repeats_and_respects_budget(case in case()) {
        let (c, p) = (case.candidates(), case.pool());
        let n = i64::try_from(case.n_samples).unwrap();
        let picks = select_diverse(&c, &p, n, 0.0).unwrap();
        // With min_distance 0 nothing stops the selection early.
        prop_assert_eq!(picks.len(), case.n_samples.min(c.rows()));
        let mut sorted = picks.clone();
        sorted.sort_unstable();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), picks.len());
    }
}

#[test]
fn invalid_inputs_are_errors_not_panics() {
    let c = Matrix::new("candidates", &[0.0, f32::NAN], 1, 2).unwrap();
    let p = Matrix::new("pool", &[], 0, 0).unwrap();
    let err = select_diverse(&c, &p, 1, 0.0).unwrap_err().to_string();
    assert!(err.contains("candidates") && err.contains("row 0"), "{err}");
    let c = Matrix::new("candidates", &[0.0, 1.0], 1, 2).unwrap();
    assert!(select_diverse(&c, &p, -1, 0.0).is_err());
    assert!(select_diverse(&c, &p, 1, f64::NAN).is_err());
    let p = Matrix::new("pool", &[1.0, 2.0, 3.0], 1, 3).unwrap();
    assert!(select_diverse(&c, &p, 1, 0.0).is_err());
    let p = Matrix::new("pool", &[1.0, f32::NEG_INFINITY], 1, 2).unwrap();
    let err = select_diverse(&c, &p, 1, 0.0).unwrap_err().to_string();
    assert!(err.contains("pool") && err.contains("row 0"), "{err}");
}
