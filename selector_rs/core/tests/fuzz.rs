//! Fuzzing of the public API with arbitrary shapes, f32 bit patterns (NaN, ±inf,
//! subnormals, values near and beyond ±`MAX_ABS`), `n_samples` (any i64) and
//! `min_distance` (any f64).
//!
//! For every input: no panic, and an error exactly when the input is invalid, one that
//! describes a real problem of the input and names the argument at fault. For valid
//! input the picks are distinct, in range and within budget, and replaying them against
//! distances recomputed in f64 shows each was the farthest remaining candidate to 2e-4
//! relative (the core sums squares in f32), at least `min_distance` away, and that the
//! selection stopped early only when nothing at `min_distance` was left. Preparing the
//! candidates in blocks cut at random rows and concatenating them gives the very same
//! picks, and a cancelled call either finishes as usual or says it was cancelled.
//!
//! `PROPTEST_CASES` sets the number of cases per property (default 500).

// Row counts and PRNG draws are small; the casts cannot lose anything that matters.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]

use std::cell::Cell;

mod reference;

use proptest::prelude::*;
use reference::dist64;
use selector_core::validate::MAX_ABS;
use selector_core::{
    l2, prepare, select_diverse, select_diverse_with, select_prepared, Matrix, Pick, PoolIndex,
    Prepared, SelectError,
};

/// The relative tolerance the selection promises against f64 distances.
const RTOL: f64 = 2e-4;
/// Squares below ~1e-38 lose precision in f32 (subnormals); this covers what that
/// loss can do to a distance over up to 40 columns.
const ATOL: f64 = 1e-18;

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

/// splitmix64: the data of a case comes from one seed, so that pool and candidates can
/// share cluster centres.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`, `n > 0`.
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `[lo, hi)`.
    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next() >> 40) as f32 / (1_u64 << 24) as f32;
        lo + (hi - lo) * u
    }
}

/// How a matrix's values are made.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fill {
    /// -3..=3: every distance exact in f32 and f64, so ties are real ties.
    Integers,
    Uniform,
    /// Runs of near-duplicate (or identical) rows around a few shared centres.
    Runs,
    /// Any sign and exponent up to 2^49 (< 1e15), subnormals and zeros included.
    WideMagnitude,
    /// 0, -0, ±`MAX_ABS`, ±smallest subnormal, ±smallest normal, ±1.
    Extremes,
    /// Arbitrary bit patterns: mostly invalid.
    AnyBits,
}

fn fill() -> impl Strategy<Value = Fill> {
    prop_oneof![
        3 => Just(Fill::Integers),
        3 => Just(Fill::Uniform),
        4 => Just(Fill::Runs),
        2 => Just(Fill::WideMagnitude),
        2 => Just(Fill::Extremes),
        1 => Just(Fill::AnyBits),
    ]
}

const EXTREMES: [f32; 11] = [
    0.0,
    -0.0,
    MAX_ABS,
    -MAX_ABS,
    1e-45,
    -1e-45,
    f32::MIN_POSITIVE,
    -f32::MIN_POSITIVE,
    1.0,
    -1.0,
    0.5,
];

/// Row `i % rows` of a row-major matrix, if it has rows.
fn nth_row(data: &[f32], rows: usize, cols: usize, i: usize) -> Option<&[f32]> {
    (rows > 0).then(|| &data[(i % rows) * cols..(i % rows + 1) * cols])
}

fn invalid(x: f32) -> bool {
    x.is_nan() || x.abs() > MAX_ABS
}

/// A value the core must refuse.
fn bad_value(rng: &mut Rng) -> f32 {
    match rng.below(8) {
        0 => f32::NAN,
        1 => f32::from_bits(0xff80_0001 | (rng.next() as u32 & 0x003f_ffff)), // NaN, payload
        2 => f32::INFINITY,
        3 => f32::NEG_INFINITY,
        4 => f32::MAX,
        5 => -f32::from_bits(MAX_ABS.to_bits() + 1),
        6 => f32::from_bits(MAX_ABS.to_bits() + 1),
        // Exponent field 178..=255: 2^51 and beyond, or inf/NaN.
        _ => {
            let bits = rng.next() as u32;
            f32::from_bits((bits & 0x807f_ffff) | ((178 + (bits >> 8) % 78) << 23))
        }
    }
}

fn make(rng: &mut Rng, fill: Fill, centres: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(rows * cols);
    match fill {
        Fill::Integers => out.extend((0..rows * cols).map(|_| rng.below(7) as f32 - 3.0)),
        Fill::Uniform => out.extend((0..rows * cols).map(|_| rng.range(-10.0, 10.0))),
        Fill::Runs => {
            let noise = [0.0, 1e-6, 1e-3, 0.05][rng.below(4)];
            let mut i = 0;
            while i < rows {
                let run = (1 + rng.below(8)).min(rows - i);
                let c = rng.below((centres.len() / cols.max(1)).max(1));
                let step: Vec<f32> = (0..cols).map(|_| rng.range(-0.02, 0.02)).collect();
                for k in 0..run {
                    for (j, &dj) in step.iter().enumerate() {
                        let base = centres.get(c * cols + j).copied().unwrap_or(0.0);
                        out.push(base + k as f32 * dj + noise * rng.range(-1.0, 1.0));
                    }
                }
                i += run;
            }
        }
        Fill::WideMagnitude => out.extend((0..rows * cols).map(|_| {
            let bits = rng.next() as u32;
            // Exponent field 0..=176: zero and subnormals up to 2^49.
            f32::from_bits((bits & 0x807f_ffff) | (((bits >> 8) % 177) << 23))
        })),
        Fill::Extremes => out.extend((0..rows * cols).map(|_| EXTREMES[rng.below(EXTREMES.len())])),
        Fill::AnyBits => out.extend((0..rows * cols).map(|_| f32::from_bits(rng.next() as u32))),
    }
    out
}

/// Replaces 1..=3 values by ones the core must refuse.
fn dirty(rng: &mut Rng, data: &mut [f32]) {
    if data.is_empty() {
        return;
    }
    for _ in 0..=rng.below(3) {
        let at = rng.below(data.len());
        data[at] = bad_value(rng);
    }
}

#[derive(Debug, Clone, Copy)]
enum MinDistance {
    Zero,
    Bits(u64),
    Special(f64),
    /// The distance between two rows (candidate or pool), exactly as the core
    /// computes it, or the next f64 above it: exercises the `>=` of the stop.
    Between(usize, usize, bool),
}

fn min_distance() -> impl Strategy<Value = MinDistance> {
    prop_oneof![
        3 => Just(MinDistance::Zero),
        2 => any::<u64>().prop_map(MinDistance::Bits),
        2 => prop::sample::select(vec![
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
            -1.0,
            -f64::MIN_POSITIVE,
            5e-324,
            f64::MIN_POSITIVE,
            1e-300,
            0.5,
            1.0,
            3.0,
            1e15,
            f64::MAX,
        ])
        .prop_map(MinDistance::Special),
        6 => (any::<usize>(), any::<usize>(), any::<bool>())
            .prop_map(|(a, b, up)| MinDistance::Between(a, b, up)),
    ]
}

fn n_samples() -> impl Strategy<Value = i64> {
    prop_oneof![
        6 => 0_i64..50,
        1 => -5_i64..0,
        1 => any::<i64>(),
        1 => prop::sample::select(vec![i64::MIN, i64::MAX, -1, 0, 1]),
    ]
}

#[derive(Debug, Clone)]
struct Input {
    cands: Vec<f32>,
    c_rows: usize,
    c_cols: usize,
    pool: Vec<f32>,
    p_rows: usize,
    p_cols: usize,
    n_samples: i64,
    min_distance: f64,
    /// Rows at which the candidates are cut into separately prepared blocks.
    cuts: Vec<usize>,
    /// Both matrices hold small integers: the picks must equal the reference's exactly.
    integral: bool,
}

/// The candidates' width: mostly narrow, sometimes past a SIMD register or two.
fn cols() -> impl Strategy<Value = usize> {
    prop_oneof![8 => 0_usize..6, 2 => 6_usize..40]
}

#[derive(Debug, Clone, Copy)]
enum PoolShape {
    SameWidth,
    /// `0 x 0`: "no pool" whatever the candidates' width.
    ZeroByZero,
    /// Another width (a mismatch unless the pool is `0 x 0`).
    Width(usize),
}

fn pool_shape() -> impl Strategy<Value = PoolShape> {
    prop_oneof![
        8 => Just(PoolShape::SameWidth),
        1 => Just(PoolShape::ZeroByZero),
        1 => (0_usize..8).prop_map(PoolShape::Width),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    (
        (0_usize..40, cols(), 0_usize..16, pool_shape()),
        (
            fill(),
            fill(),
            prop::bool::weighted(0.12),
            prop::bool::weighted(0.12),
        ),
        any::<u64>(),
        n_samples(),
        min_distance(),
        prop::collection::vec(0_usize..=40, 0..4),
    )
        .prop_map(
            |(
                (c_rows, c_cols, p_rows, shape),
                (c_fill, p_fill, c_dirty, p_dirty),
                seed,
                n_samples,
                md,
                cuts,
            )| {
                let mut rng = Rng(seed);
                let (p_rows, p_cols) = match shape {
                    PoolShape::SameWidth => (p_rows, c_cols),
                    PoolShape::ZeroByZero => (0, 0),
                    PoolShape::Width(w) => (p_rows, w),
                };
                let centres: Vec<f32> = (0..4 * c_cols.max(p_cols))
                    .map(|_| rng.range(-5.0, 5.0))
                    .collect();
                let mut cands = make(&mut rng, c_fill, &centres, c_rows, c_cols);
                let mut pool = make(&mut rng, p_fill, &centres, p_rows, p_cols);
                if c_dirty {
                    dirty(&mut rng, &mut cands);
                }
                if p_dirty {
                    dirty(&mut rng, &mut pool);
                }
                let min_distance = match md {
                    MinDistance::Zero => 0.0,
                    MinDistance::Bits(b) => f64::from_bits(b),
                    MinDistance::Special(v) => v,
                    MinDistance::Between(one, other, up) => {
                        let first = nth_row(&cands, c_rows, c_cols, one);
                        let second = nth_row(&pool, p_rows, p_cols, other)
                            .filter(|_| other % 2 == 0 && p_cols == c_cols)
                            .or_else(|| nth_row(&cands, c_rows, c_cols, other));
                        match (first, second) {
                            (Some(first), Some(second)) => {
                                let dist = l2(first, second);
                                // The next f64 up (`f64::next_up` is newer than the MSRV).
                                if up && dist.is_finite() {
                                    f64::from_bits(dist.to_bits() + 1)
                                } else {
                                    dist
                                }
                            }
                            _ => 0.0,
                        }
                    }
                };
                Input {
                    integral: c_fill == Fill::Integers
                        && p_fill == Fill::Integers
                        && !c_dirty
                        && !p_dirty,
                    cands,
                    c_rows,
                    c_cols,
                    pool,
                    p_rows,
                    p_cols,
                    n_samples,
                    min_distance,
                    cuts,
                }
            },
        )
}

impl Input {
    fn candidates(&self) -> Matrix<'_> {
        Matrix::new("candidates", &self.cands, self.c_rows, self.c_cols).unwrap()
    }

    fn pool(&self) -> Matrix<'_> {
        Matrix::new("pool", &self.pool, self.p_rows, self.p_cols).unwrap()
    }

    fn budget(&self) -> usize {
        usize::try_from(self.n_samples)
            .unwrap_or(usize::MAX)
            .min(self.c_rows)
    }

    /// Valid data: matching widths (or a `0 x 0` pool) and no refused value.
    fn data_ok(&self) -> bool {
        let no_pool = self.p_rows == 0 && self.p_cols == 0;
        (no_pool || self.p_cols == self.c_cols)
            && first_bad("candidates", &self.cands, self.c_cols).is_none()
            && first_bad("pool", &self.pool, self.p_cols).is_none()
    }

    /// Every problem of the input, each as the error that would report it.
    fn problems(&self) -> Vec<SelectError> {
        let mut out = Vec::new();
        if self.n_samples < 0 {
            out.push(SelectError::NegativeSamples {
                n_samples: self.n_samples,
            });
        }
        if !(self.min_distance.is_finite() && self.min_distance >= 0.0) {
            out.push(SelectError::InvalidMinDistance {
                value: self.min_distance,
            });
        }
        let no_pool = self.p_rows == 0 && self.p_cols == 0;
        if !no_pool && self.p_cols != self.c_cols {
            out.push(SelectError::WidthMismatch {
                candidates: self.c_cols,
                pool: self.p_cols,
            });
        }
        out.extend(first_bad("candidates", &self.cands, self.c_cols));
        out.extend(first_bad("pool", &self.pool, self.p_cols));
        out
    }
}

/// The error for the first refused value of a matrix, by row-major position.
fn first_bad(arg: &'static str, data: &[f32], cols: usize) -> Option<SelectError> {
    let pos = data.iter().position(|&x| invalid(x))?;
    Some(SelectError::refused_value(
        arg,
        pos / cols,
        pos % cols,
        data[pos],
    ))
}

/// The argument an error must name.
fn named(err: &SelectError) -> Vec<&'static str> {
    match err {
        SelectError::NegativeSamples { .. } => vec!["n_samples"],
        SelectError::InvalidMinDistance { .. } => vec!["min_distance"],
        SelectError::WidthMismatch { .. } => vec!["candidates", "pool"],
        SelectError::NonFinite { arg, .. }
        | SelectError::OutOfRange { arg, .. }
        | SelectError::ShapeMismatch { arg, .. }
        | SelectError::WrongType { arg, .. }
        | SelectError::NotTwoDimensional { arg, .. }
        | SelectError::WrongDtype { arg, .. }
        | SelectError::NotContiguous { arg }
        | SelectError::NotAligned { arg } => vec![arg],
        SelectError::Cancelled => vec![],
    }
}

/// `err` is one of `expected` (compared through `Debug`, so that NaN values match) and
/// its message names the argument at fault.
fn check_error(err: &SelectError, expected: &[SelectError]) -> Result<(), TestCaseError> {
    let got = format!("{err:?}");
    prop_assert!(
        expected.iter().any(|e| format!("{e:?}") == got),
        "error {got} is none of the input's problems {expected:?}"
    );
    let text = err.to_string();
    for arg in named(err) {
        prop_assert!(text.contains(arg), "{text:?} does not name {arg}");
    }
    Ok(())
}

/// Equal, NaN values in errors included (compared through `Debug`, which prints each
/// f32/f64 value exactly).
fn same<T: std::fmt::Debug>(a: &T, b: &T) -> Result<(), TestCaseError> {
    let (a, b) = (format!("{a:?}"), format!("{b:?}"));
    prop_assert!(a == b, "{a} != {b}");
    Ok(())
}

fn tolerance(d: f64) -> f64 {
    RTOL * d.abs() + ATOL
}

/// `got` is `want` to the promised tolerance (equal when infinite).
#[allow(clippy::float_cmp)] // two infinities are equal, and nothing else is close to one
fn close(got: f64, want: f64) -> bool {
    got == want || (got - want).abs() <= tolerance(got.max(want))
}

/// Replays `picks` against f64 distances: the greedy rule to `RTOL`.
fn check_picks(inp: &Input, picks: &[Pick]) -> Result<(), TestCaseError> {
    let (c, p) = (inp.candidates(), inp.pool());
    let budget = inp.budget();
    prop_assert!(
        picks.len() <= budget,
        "{} picks, budget {budget}",
        picks.len()
    );
    let mut dist = pool_distances(inp);
    let mut alive = vec![true; c.rows()];
    for (step, pick) in picks.iter().enumerate() {
        let i = pick.index;
        prop_assert!(i < c.rows(), "step {step}: index {i} of {} rows", c.rows());
        prop_assert!(alive[i], "step {step}: {i} picked again");
        let best = (0..c.rows())
            .filter(|&k| alive[k])
            .map(|k| dist[k])
            .fold(f64::NEG_INFINITY, f64::max);
        let reported = pick.distance;
        prop_assert!(
            close(reported, dist[i]),
            "step {step}: {i} reported at {reported}, f64 distance {}",
            dist[i]
        );
        prop_assert!(
            reported >= best - tolerance(best) || close(reported, best),
            "step {step}: picked {i} at {reported}, but {best} remained"
        );
        // Bitwise-equal rows are exactly as far from everything: a real tie.
        let tied = (0..i).find(|&k| alive[k] && c.row(k) == c.row(i));
        prop_assert!(
            tied.is_none(),
            "step {step}: picked {i}, but row {tied:?} is the same and comes first"
        );
        prop_assert!(
            reported >= inp.min_distance,
            "step {step}: {reported} < min_distance {}",
            inp.min_distance
        );
        alive[i] = false;
        for (k, d) in dist.iter_mut().enumerate() {
            *d = d.min(dist64(c.row(k), c.row(i)));
        }
    }
    if p.rows() == 0 && budget > 0 && !picks.is_empty() {
        prop_assert_eq!(
            picks[0],
            Pick {
                index: 0,
                distance: f64::INFINITY
            }
        );
    }
    if picks.len() < budget {
        let left = (0..c.rows())
            .filter(|&k| alive[k])
            .map(|k| dist[k])
            .fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(
            left < inp.min_distance || close(left, inp.min_distance),
            "stopped after {} picks with {left} >= min_distance {} left",
            picks.len(),
            inp.min_distance
        );
    }
    Ok(())
}

/// A matrix's rows, as the reference takes them.
fn rows<'a>(m: &Matrix<'a>) -> Vec<&'a [f32]> {
    (0..m.rows()).map(|i| m.row(i)).collect()
}

/// Every candidate's f64 distance to its nearest pool row (inf without a pool).
fn pool_distances(inp: &Input) -> Vec<f64> {
    reference::pool_distances(&rows(&inp.candidates()), &rows(&inp.pool()))
}

/// The greedy rule in f64, lowest index on ties: exact for small-integer data.
fn reference(inp: &Input) -> Vec<usize> {
    let (c, p) = (inp.candidates(), inp.pool());
    reference::reference(&rows(&c), &rows(&p), inp.budget(), inp.min_distance)
}

/// Row ranges of the blocks the candidates are cut into.
fn blocks(inp: &Input) -> Vec<(usize, usize)> {
    let mut cuts: Vec<usize> = inp.cuts.iter().map(|&c| c.min(inp.c_rows)).collect();
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut start = 0;
    for cut in cuts.into_iter().chain([inp.c_rows]) {
        out.push((start, cut));
        start = cut;
    }
    out
}

fn block(inp: &Input, (start, end): (usize, usize)) -> Matrix<'_> {
    let data = &inp.cands[start * inp.c_cols..end * inp.c_cols];
    Matrix::new("candidates", data, end - start, inp.c_cols).unwrap()
}

proptest! {
    #![proptest_config(config())]

    /// The one-shot API: errors exactly for invalid input, the greedy rule otherwise.
    #[test]
    fn select_diverse_is_total_and_exact(inp in input()) {
        let (c, p) = (inp.candidates(), inp.pool());
        let never = || false;
        let problems = inp.problems();
        let with = select_diverse_with(&c, &p, inp.n_samples, inp.min_distance, &never);
        let plain = select_diverse(&c, &p, inp.n_samples, inp.min_distance);
        match (&with, &plain) {
            (Ok(picks), Ok(indices)) => {
                prop_assert!(problems.is_empty(), "accepted despite {problems:?}");
                let from_with: Vec<usize> = picks.iter().map(|p| p.index).collect();
                prop_assert_eq!(&from_with, indices);
                check_picks(&inp, picks)?;
                if inp.integral {
                    prop_assert_eq!(&from_with, &reference(&inp));
                }
            }
            (Err(a), Err(b)) => {
                same(a, b)?;
                prop_assert!(!problems.is_empty(), "refused valid input: {a}");
                check_error(a, &problems)?;
            }
            _ => prop_assert!(false, "select_diverse_with {with:?} but select_diverse {plain:?}"),
        }
    }

    /// Blocks cut at random rows, prepared one by one and concatenated, select exactly
    /// what the whole matrix selects; a bad block is refused by `prepare`.
    #[test]
    fn blocks_select_the_same(inp in input()) {
        let (c, p) = (inp.candidates(), inp.pool());
        let never = || false;
        let index = match PoolIndex::build(&p, &never) {
            Ok(index) => {
                prop_assert!(first_bad("pool", &inp.pool, inp.p_cols).is_none());
                prop_assert_eq!(index.rows(), p.rows());
                index
            }
            Err(e) => {
                let want: Vec<SelectError> = first_bad("pool", &inp.pool, inp.p_cols).into_iter().collect();
                return check_error(&e, &want);
            }
        };
        let mut parts = Vec::new();
        for range in blocks(&inp) {
            let m = block(&inp, range);
            let no_pool = inp.p_rows == 0 && inp.p_cols == 0;
            let mut want = Vec::new();
            if !no_pool && inp.p_cols != inp.c_cols {
                want.push(SelectError::WidthMismatch { candidates: inp.c_cols, pool: inp.p_cols });
            }
            want.extend(first_bad("candidates", m.data(), m.cols()));
            match prepare(&m, &p, &index, &never) {
                Ok(part) => {
                    prop_assert!(want.is_empty(), "block {range:?} accepted despite {want:?}");
                    prop_assert_eq!(part.rows(), m.rows());
                    parts.push(part);
                }
                Err(e) => {
                    prop_assert!(!want.is_empty(), "block {range:?} refused: {e}");
                    check_error(&e, &want)?;
                }
            }
        }
        if !inp.data_ok() {
            return Ok(());
        }
        let whole = select_diverse_with(&c, &p, inp.n_samples, inp.min_distance, &never);
        // A `Prepared` for fewer rows than the candidates is refused, not trusted.
        if let Some(last) = parts.iter().rposition(|part| part.rows() > 0) {
            let mut short = parts.clone();
            short.remove(last);
            let got = select_prepared(&c, &p, &index, Prepared::concat(short), inp.n_samples, inp.min_distance, &never);
            prop_assert!(got.is_err(), "select_prepared accepted too few prepared rows: {got:?}");
        }
        let joined = Prepared::concat(parts);
        prop_assert_eq!(joined.rows(), c.rows());
        let got = select_prepared(&c, &p, &index, joined, inp.n_samples, inp.min_distance, &never);
        same(&got, &whole)?;
    }

    /// Cancelling after `polls` checks: the same result, or `Cancelled`.
    #[test]
    fn cancel_stops_cleanly(inp in input(), polls in 0_usize..40) {
        let (c, p) = (inp.candidates(), inp.pool());
        let never = || false;
        let count = Cell::new(0_usize);
        let cancel = || {
            count.set(count.get() + 1);
            count.get() > polls
        };
        let want = select_diverse_with(&c, &p, inp.n_samples, inp.min_distance, &never);
        match select_diverse_with(&c, &p, inp.n_samples, inp.min_distance, &cancel) {
            Err(SelectError::Cancelled) => {
                prop_assert!(count.get() > polls, "Cancelled without being asked");
            }
            got => same(&got, &want)?,
        }
    }

    /// `Matrix::new` accepts exactly the lengths that match the shape.
    #[test]
    fn matrix_shape_is_checked(len in 0_usize..64, rows in prop_oneof![0_usize..16, any::<usize>()], cols in prop_oneof![0_usize..16, any::<usize>()]) {
        let data = vec![0.0_f32; len];
        match Matrix::new("pool", &data, rows, cols) {
            Ok(m) => {
                prop_assert_eq!(rows.checked_mul(cols), Some(len));
                prop_assert_eq!((m.rows(), m.cols()), (rows, cols));
            }
            Err(e) => {
                prop_assert_ne!(rows.checked_mul(cols), Some(len));
                prop_assert_eq!(e, SelectError::ShapeMismatch { arg: "pool", len, rows, cols });
            }
        }
    }
}

// Cases the fuzzing above found, spelled out.

/// One column, a pool spanning 1e-16..6e13: the nearest pool row of 8.555128 is
/// 0.1202306 (distance 8.4349), but the pool search must not trust triangle bounds whose
/// f32 rounding (about 1e13 * 6e-8 here) dwarfs the distances compared.
#[test]
fn pool_of_wide_magnitudes_still_gives_the_nearest_row() {
    let cands = [-5.379_118_f32, -6.054_38, 8.555_128];
    let pool = [
        -1_337_715.3_f32,
        -3.960_449_8e-7,
        -38.755_78,
        1.093_632e-16,
        -1.174_397_4e-15,
        -47.505_142,
        5_241_307_600.0,
        -315_108_520_000.0,
        -0.342_373_22,
        0.000_297_96,
        58_503_600_000_000.0,
        -239_311_950.0,
        0.120_230_6,
    ];
    let c = Matrix::new("candidates", &cands, 3, 1).unwrap();
    let p = Matrix::new("pool", &pool, 13, 1).unwrap();
    let picks = select_diverse_with(&c, &p, 1, 0.0, &|| false).unwrap();
    let want = f64::from(8.555_128_f32) - f64::from(0.120_230_6_f32);
    assert_eq!(picks.len(), 1);
    assert_eq!(picks[0].index, 2, "{picks:?}");
    assert!(
        (picks[0].distance - want).abs() <= RTOL * want,
        "{picks:?}, want distance {want}"
    );
}

/// Rows 4..=11 lie evenly spaced on a line (a run of frames) and row 12 repeats row 4.
/// After picks 0, 4, 11 and 3, rows 7 and 8 are exactly as far (0.10192741804387971)
/// from the picks. The lowest index, 7, must win whether or not the rows were prepared
/// in blocks (found with blocks 0..1 and 1..13).
#[rustfmt::skip]
#[allow(clippy::unreadable_literal)] // copied verbatim from the failure report
const TIED: [f32; 130] = [
    0.97947645_f32, -4.142023, 2.1910295, 2.226881, 0.69062185, 3.5798664, 1.3599501, 2.0186844, 2.994481, 1.1752996, // 0
    0.9826985, -4.1302953, 2.1991277, 2.225108, 0.67098814, 3.5939827, 1.3620871, 2.0261319, 2.9844723, 1.1600167, // 1
    0.9859206, -4.118568, 2.2072256, 2.2233346, 0.6513545, 3.608099, 1.3642242, 2.033579, 2.9744635, 1.1447338, // 2
    0.98914266, -4.10684, 2.2153237, 2.2215614, 0.6317208, 3.622215, 1.3663613, 2.0410266, 2.964455, 1.1294508, // 3
    3.8802204, 4.424247, -2.0742083, 4.647991, -3.7516265, 1.1923242, 1.4821997, 2.0183344, -3.1141644, 1.0055757, // 4
    3.878682, 4.4265704, -2.0856533, 4.667112, -3.7455986, 1.2063433, 1.4873527, 2.0056195, -3.0990634, 1.0065069, // 5
    3.8771434, 4.4288945, -2.0970984, 4.6862326, -3.7395704, 1.2203624, 1.4925058, 1.9929045, -3.0839627, 1.0074382, // 6
    3.8756049, 4.431218, -2.1085434, 4.7053533, -3.7335424, 1.2343814, 1.4976588, 1.9801897, -3.0688617, 1.0083694, // 7
    3.8740664, 4.433542, -2.1199884, 4.724474, -3.7275145, 1.2484006, 1.5028119, 1.9674748, -3.053761, 1.0093008, // 8
    3.8725278, 4.4358654, -2.1314335, 4.7435946, -3.7214863, 1.2624197, 1.507965, 1.9547598, -3.03866, 1.0102321, // 9
    3.8709893, 4.4381895, -2.1428785, 4.7627153, -3.7154584, 1.2764387, 1.513118, 1.942045, -3.0235593, 1.0111634, // 10
    3.8694508, 4.440513, -2.1543236, 4.781836, -3.7094305, 1.2904578, 1.5182711, 1.9293301, -3.0084584, 1.0120946, // 11
    3.8802204, 4.424247, -2.0742083, 4.647991, -3.7516265, 1.1923242, 1.4821997, 2.0183344, -3.1141644, 1.0055757, // 12
];

#[test]
fn ties_go_to_the_lowest_index_across_blocks() {
    let c = Matrix::new("candidates", &TIED, 13, 10).unwrap();
    let p = Matrix::new("pool", &[], 0, 10).unwrap();
    let never = || false;
    let whole = select_diverse_with(&c, &p, 5, 0.0, &never).unwrap();
    let indices: Vec<usize> = whole.iter().map(|p| p.index).collect();
    assert_eq!(indices, [0, 4, 11, 3, 7]);
    let index = PoolIndex::build(&p, &never).unwrap();
    for cut in 0..=13 {
        let (a, b) = TIED.split_at(cut * 10);
        let a = Matrix::new("candidates", a, cut, 10).unwrap();
        let b = Matrix::new("candidates", b, 13 - cut, 10).unwrap();
        let parts = vec![
            prepare(&a, &p, &index, &never).unwrap(),
            prepare(&b, &p, &index, &never).unwrap(),
        ];
        let blocks =
            select_prepared(&c, &p, &index, Prepared::concat(parts), 5, 0.0, &never).unwrap();
        assert_eq!(blocks, whole, "blocks cut at row {cut}");
    }
}

/// Rows 5 and 8 are both -1.0, so after picks 1 (-3.0) and 6 (3.0) they are exactly as
/// far from the pool and the picks (1.0949, to pool row 0.0949); the lowest index, 5,
/// must be picked, whether or not the rows were prepared in blocks.
#[test]
fn identical_rows_tie_to_the_lowest_index() {
    let cands = [
        0.0_f32, -3.0, -2.0, 0.0, 0.0, -1.0, 3.0, -3.0, -1.0, -2.0, 0.0,
    ];
    let pool = [
        0.094_886_78_f32,
        0.100_785_43,
        0.106_684_074,
        0.112_582_72,
        0.118_481_37,
        0.124_380_015,
        0.130_278_66,
    ];
    let c = Matrix::new("candidates", &cands, 11, 1).unwrap();
    let p = Matrix::new("pool", &pool, 7, 1).unwrap();
    let never = || false;
    let whole = select_diverse(&c, &p, 3, 0.0).unwrap();
    assert_eq!(whole, [1, 6, 5]);
    let index = PoolIndex::build(&p, &never).unwrap();
    for cut in 0..=11 {
        let (a, b) = cands.split_at(cut);
        let a = Matrix::new("candidates", a, cut, 1).unwrap();
        let b = Matrix::new("candidates", b, 11 - cut, 1).unwrap();
        let parts = vec![
            prepare(&a, &p, &index, &never).unwrap(),
            prepare(&b, &p, &index, &never).unwrap(),
        ];
        let blocks =
            select_prepared(&c, &p, &index, Prepared::concat(parts), 3, 0.0, &never).unwrap();
        let blocks: Vec<usize> = blocks.iter().map(|p| p.index).collect();
        assert_eq!(blocks, whole, "blocks cut at row {cut}");
    }
}
