//! Rows in int8 for the byte dot-product bound of `int8_dot`, one after the other: the
//! picks, for a candidate's distances to many picks (see `greedy::selection`).
//!
//! Each row `p` is quantized on its own scale (`p = s_p q_p + e_p`), a query `x` as
//! `int8_dot::QuantRow`, and `|x - p|² = |x|² + |p|² - 2 x·p` with
//! `x·p <= s_x s_p (q_x·q_p) + s_p |q_p| |e_x| + |x| |e_p|` (Cauchy-Schwarz on both error
//! terms). Half the bytes of a bfloat16 copy, and four byte products per lane where
//! bfloat16 has two; the bound is looser (the rows are not centred) but spares nearly as
//! many distances: 4,243,971 candidate-pick distances against 4,241,703 with bfloat16
//! (600 picks of 300,000 rough candidates against 100,000 pool rows).

use super::half_rows::farther_sq;
use super::int8_dot::{self, QuantRow, RowTerms};

#[derive(Debug, Clone, Default)]
pub(crate) struct QuantRows {
    q: Vec<i8>,
    cols: usize,
    /// Per row: its terms for the bound on `x·p`, and `|p|²`.
    terms: Vec<RowTerms>,
    norm2: Vec<f64>,
}

impl QuantRows {
    pub(crate) fn push(&mut self, row: &[f32]) {
        let mut q = vec![0_i8; row.len()];
        let (scale, err, norm2) = int8_dot::quantize_row(row, &mut q);
        self.cols = row.len();
        self.terms.push(RowTerms::of(&q, scale, err));
        self.norm2.push(norm2);
        self.q.extend_from_slice(&q);
    }

    pub(crate) fn len(&self) -> usize {
        self.terms.len()
    }

    /// Row `p`'s bytes.
    pub(crate) fn row(&self, p: usize) -> &[i8] {
        &self.q[p * self.cols..(p + 1) * self.cols]
    }

    /// Whether row `p` is certainly farther than `bound` from `x`, given the byte dot
    /// product `dot` of `x` with it (`int8_dot::dots_rows`).
    #[inline]
    pub(crate) fn farther(&self, x: &QuantRow, p: usize, dot: i32, bound: f64) -> bool {
        // The norms' f64 sums round by ~1e-13 relative: inside `farther_sq`'s slack.
        farther_sq(self.lower_sq(x, p, dot), 0.0, bound)
    }

    /// `|x|² + |p|² - 2 x·p` with `x·p` at its upper bound: a lower bound on `d(x, p)²`
    /// up to the f64 sums' rounding.
    #[inline]
    fn lower_sq(&self, x: &QuantRow, p: usize, dot: i32) -> f64 {
        x.norm2 + self.norm2[p] - 2.0 * self.terms[p].dot_upper(x, dot)
    }
}

impl QuantRows {
    /// A lower bound on the distance from `x` to row `p`, given their byte dot product
    /// `dot`: the bound of [`Self::farther`], lowered past the f64 sums' rounding.
    #[inline]
    pub(crate) fn lower(&self, x: &QuantRow, p: usize, dot: i32) -> f64 {
        let sq = self.lower_sq(x, p, dot);
        (sq - 1e-9 * (x.norm2 + self.norm2[p] + 1.0))
            .max(0.0)
            .sqrt()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::l2;
    use crate::test_data::noise;

    #[test]
    fn a_row_is_shown_farther_than_a_bound_only_where_it_is_and_mostly_where_it_is() {
        let cols = 200;
        let rows = noise(40 * cols, 5);
        let xs = noise(6 * cols, 6);
        let mut quant = QuantRows::default();
        for p in rows.chunks_exact(cols) {
            quant.push(p);
        }
        assert_eq!(quant.len(), 40);
        let (mut shown, mut beyond) = (0, 0);
        for x in xs.chunks_exact(cols) {
            let xq = QuantRow::new(x);
            let each: Vec<&[i8]> = (0..40).map(|p| quant.row(p)).collect();
            let mut dots = vec![0; 40];
            int8_dot::dots_rows(&xq.bytes, &each, &mut dots);
            let mut d: Vec<f64> = rows.chunks_exact(cols).map(|p| l2(x, p)).collect();
            let exact = d.clone();
            // At its own distance, no row is farther: the error terms must cover the
            // rounding (without them, rows here are shown farther; either term alone
            // covers both roundings on rows this alike).
            for (p, &e) in exact.iter().enumerate() {
                assert!(
                    !quant.farther(&xq, p, dots[p], e),
                    "row {p} at its distance {e}"
                );
            }
            d.sort_by(f64::total_cmp);
            for bound in [d[0], d[10], d[20], d[39]] {
                for (p, &e) in exact.iter().enumerate() {
                    if quant.farther(&xq, p, dots[p], bound) {
                        assert!(e > bound, "row {p} at {e} shown farther than {bound}");
                        shown += 1;
                    }
                    if e > bound * 1.02 + 1e-3 {
                        beyond += 1;
                    }
                }
            }
        }
        assert!(
            beyond > 100 && shown * 10 >= beyond * 9,
            "{shown} of {beyond}"
        );
    }

    #[test]
    fn the_lower_bound_never_exceeds_the_distance_and_lies_near_it() {
        let cols = 300;
        let rows = noise(30 * cols, 7);
        let mut quant = QuantRows::default();
        for p in rows.chunks_exact(cols) {
            quant.push(p);
        }
        // The rows themselves among the queries: a distance of zero must stay a bound.
        for x in noise(5 * cols, 8)
            .chunks_exact(cols)
            .chain(rows.chunks_exact(cols).take(3))
        {
            let xq = QuantRow::new(x);
            let each: Vec<&[i8]> = (0..30).map(|p| quant.row(p)).collect();
            let mut dots = vec![0; 30];
            int8_dot::dots_rows(&xq.bytes, &each, &mut dots);
            for (p, row) in rows.chunks_exact(cols).enumerate() {
                let (low, exact) = (quant.lower(&xq, p, dots[p]), l2(x, row));
                assert!(low <= exact, "row {p}: {low} > {exact}");
                assert!(
                    low >= exact - 0.05 * exact.max(1.0),
                    "row {p}: {low} << {exact}"
                );
            }
        }
    }
}
