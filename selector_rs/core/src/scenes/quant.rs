//! The pool's rows in int8 for the cluster tiles (`tile`): each row as its offset from
//! its cluster's centre, `d = p - c`, quantized with a scale of its own. Half the bytes
//! of a bfloat16 copy, and on rough footage a bound nearly as tight (18.5% more rows
//! left for f32 at target2): the offsets are small (~0.15 of a unit row), so their
//! rounding is too.
//!
//! For a query `x` (quantized too, `int8_dot::QuantRow`) and a row `p = c + d`:
//! `|x - p|² = |x - c|² - 2 (x - c)·d + |d|²`, where `(x - c)·d = x·d - c·d`, `c·d`
//! and `|d|²` are kept per row, and `x·d = s_p s_x (q_x·q_p) + s_p e_x·q_p + x·e_p`
//! with the exact integer `q_x·q_p` and both error terms bounded by Cauchy-Schwarz.

use rayon::prelude::*;

use super::Scene;
use crate::distance::int8_dot::{self, QuantRow, RowTerms};
use crate::matrix::Matrix;

#[derive(Debug, Clone, Default)]
pub(super) struct Quant {
    cols: usize,
    q: Vec<i8>,
    /// Per row: its terms for the bound on `x·d`, `c·d` and `|d|²`.
    terms: Vec<RowTerms>,
    cdot: Vec<f64>,
    dnorm2: Vec<f64>,
}

/// One row's quantized offset and its terms (see [`Quant`]).
struct Row {
    q: Vec<i8>,
    terms: RowTerms,
    cdot: f64,
    dnorm2: f64,
}

fn row(p: &[f32], c: &[f32]) -> Row {
    let d: Vec<f64> = p
        .iter()
        .zip(c)
        .map(|(&p, &c)| f64::from(p) - f64::from(c))
        .collect();
    let (q, scale, err) = int8_dot::quantize(&d);
    Row {
        terms: RowTerms::of(&q, scale, err),
        q,
        cdot: c.iter().zip(&d).map(|(&c, &d)| f64::from(c) * d).sum(),
        dnorm2: d.iter().map(|d| d * d).sum(),
    }
}

impl Quant {
    /// Every pool row against its cluster's centre (each row lies in one cluster).
    pub(super) fn build(pool: &Matrix<'_>, scenes: &[Scene]) -> Self {
        let (n, cols) = (pool.rows(), pool.cols());
        let parts: Vec<_> = scenes.iter().flat_map(|s| &s.parts).collect();
        let rows: Vec<Vec<(usize, Row)>> = parts
            .par_iter()
            .map(|part| {
                let of =
                    |&(_, p): &(f64, u32)| (p as usize, row(pool.row(p as usize), &part.centre));
                part.rows.iter().map(of).collect()
            })
            .collect();
        let mut out = Self {
            cols,
            q: vec![0; n * cols],
            terms: vec![RowTerms::default(); n],
            cdot: vec![0.0; n],
            dnorm2: vec![0.0; n],
        };
        for (p, r) in rows.into_iter().flatten() {
            out.q[p * cols..(p + 1) * cols].copy_from_slice(&r.q);
            (out.terms[p], out.cdot[p], out.dnorm2[p]) = (r.terms, r.cdot, r.dnorm2);
        }
        out
    }

    /// Rows `first..end` as one block of bytes.
    pub(super) fn block(&self, first: usize, end: usize) -> &[i8] {
        &self.q[first * self.cols..end * self.cols]
    }

    /// A lower bound on `d(x, p)²`, from the byte dot product `dot` of `x` with row `p`
    /// (`int8_dot::dots`) and `dc`, the f32 kernel's `d(x, c)` for the row's centre.
    #[inline]
    pub(super) fn lower_sq(&self, x: &QuantRow, p: usize, dot: i32, dc: f64) -> f64 {
        let xd = self.terms[p].dot_upper(x, dot);
        // The f32 kernel's sum of `cols` squares is off by at most ~cols * eps relative.
        #[allow(clippy::cast_precision_loss)]
        let dc2 = dc * dc * (1.0 - 2.0 * self.cols as f64 * f64::from(f32::EPSILON));
        dc2 + self.dnorm2[p] - 2.0 * (xd - self.cdot[p])
    }
}

#[cfg(test)]
mod tests {
    use super::super::Scenes;
    use crate::distance::int8_dot::{self, QuantRow};
    use crate::distance::l2;
    use crate::matrix::Matrix;
    use crate::test_data::scenes_of;

    #[test]
    fn the_int8_bound_never_exceeds_the_distance_and_stays_near_it() {
        let d = 48;
        let data = scenes_of(6, 50, d, 0.0);
        let pool = Matrix::new("pool", &data, 300, d).unwrap();
        let scenes = Scenes::build(&pool).expect("the pool falls into scenes");
        let quant = super::Quant::build(&pool, &scenes.list);
        let queries = scenes_of(9, 4, d, 1.3);
        for (k, x) in queries.chunks_exact(d).enumerate() {
            let xq = QuantRow::new(x);
            for part in scenes.list.iter().flat_map(|s| &s.parts) {
                let dc = l2(x, &part.centre);
                for &(_, p) in &part.rows {
                    let p = p as usize;
                    let mut dot = [0];
                    int8_dot::dots(&[&xq.bytes], quant.block(p, p + 1), d, &mut dot);
                    let (low, exact) = (
                        quant.lower_sq(&xq, p, dot[0], dc).max(0.0).sqrt(),
                        l2(x, pool.row(p)),
                    );
                    assert!(
                        low <= exact * (1.0 + 1e-9),
                        "query {k}, row {p}: {low} > {exact}"
                    );
                    // In squares, far tighter than the triangle bound through the centre
                    // (~0.5 off for the far rows here).
                    let near = low * low >= exact * exact - 0.05;
                    assert!(near, "query {k}, row {p}: {low} << {exact}");
                }
            }
        }
    }
}
