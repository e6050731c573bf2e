//! Rows in bfloat16 for the dot-product bound of `bf16_dot`, one after the other, with
//! each row's distance to its f32 original and its squared norm: the pool's rows, for
//! searches of its scenes where the CPU has no byte dot products (the picks' copies are
//! in int8 now: `quant_rows`).

use rayon::prelude::*;

use super::bf16_dot;
use crate::matrix::{Blocks, Matrix};
use crate::pool::SLACK;

#[derive(Debug, Clone, Default)]
pub(crate) struct HalfRows {
    pub(crate) bits: Vec<u16>,
    /// `|p - p~|` (raised past the square root's rounding) and `|p~|²`, per row.
    pub(crate) err: Vec<f64>,
    pub(crate) norm2: Vec<f64>,
}

impl HalfRows {
    /// Every row of `matrix`.
    pub(crate) fn of(matrix: &Matrix<'_>) -> Self {
        Self::of_blocks(&Blocks::from(matrix))
    }

    /// Every row of `rows`, converted on every thread (`bf16_dot::convert`).
    pub(crate) fn of_blocks(rows: &Blocks<'_>) -> Self {
        let cols = rows.cols();
        if cols == 0 {
            // Zero-width rows: every copy exact, every norm zero.
            let zeros = vec![0.0; rows.rows()];
            return Self {
                bits: Vec::new(),
                err: zeros.clone(),
                norm2: zeros,
            };
        }
        let mut bits = vec![0_u16; rows.rows() * cols];
        let (err, norm2) = bits
            .par_chunks_mut(cols)
            .enumerate()
            .map(|(i, out)| bf16_dot::convert(rows.row(i), out))
            .unzip();
        Self { bits, err, norm2 }
    }

    /// Row `i`'s bits.
    pub(crate) fn row(&self, i: usize) -> &[u16] {
        let cols = self.cols();
        &self.bits[i * cols..(i + 1) * cols]
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.err.is_empty()
    }

    pub(crate) fn cols(&self) -> usize {
        self.bits.len().checked_div(self.err.len()).unwrap_or(0)
    }

    /// Rows `first..end` as one block.
    pub(crate) fn block(&self, first: usize, end: usize) -> &[u16] {
        let cols = self.cols();
        &self.bits[first * cols..end * cols]
    }
}

/// Whether a row is certainly farther than `bound`, given `sq`, a lower bound on the
/// squared distance between stand-ins for the query and the row, and `pad`, how far the
/// stand-ins may lie from the two (`d >= sqrt(sq) - pad`): compared in squares, no square
/// root per pair, with the slack of `pool::beyond` and then some.
#[inline]
pub(crate) fn farther_sq(sq: f64, pad: f64, bound: f64) -> bool {
    let t = bound + pad + 3.0 * SLACK * (bound.abs() + 1.0);
    t >= 0.0 && sq > t * t
}
