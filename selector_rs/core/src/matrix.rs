use crate::validate::SelectError;

/// A borrowed, row-major `rows x cols` matrix of `f32`.
///
/// Carries the argument name it came from so that validation errors can say which
/// input was at fault.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    name: &'static str,
    data: &'a [f32],
    rows: usize,
    cols: usize,
}

impl<'a> Matrix<'a> {
    /// Wraps `data` as a `rows x cols` matrix.
    ///
    /// # Errors
    /// [`SelectError::ShapeMismatch`] when `data.len() != rows * cols`.
    pub fn new(
        name: &'static str,
        data: &'a [f32],
        rows: usize,
        cols: usize,
    ) -> Result<Self, SelectError> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(SelectError::ShapeMismatch {
                arg: name,
                len: data.len(),
                rows,
                cols,
            });
        }
        Ok(Self {
            name,
            data,
            rows,
            cols,
        })
    }

    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    #[must_use]
    pub fn rows(&self) -> usize {
        self.rows
    }

    #[must_use]
    pub fn cols(&self) -> usize {
        self.cols
    }

    #[must_use]
    pub fn data(&self) -> &'a [f32] {
        self.data
    }

    /// Row `i`. Indexing by offset rather than `chunks_exact` keeps `cols == 0` legal.
    ///
    /// # Panics
    /// When `i >= rows`.
    #[must_use]
    pub fn row(&self, i: usize) -> &'a [f32] {
        &self.data[i * self.cols..(i + 1) * self.cols]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_slices_of_the_buffer() {
        let data = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let m = Matrix::new("candidates", &data, 3, 2).unwrap();
        assert_eq!(m.row(1), &[3.0, 4.0]);
        assert_eq!(m.rows(), 3);
        assert_eq!(m.cols(), 2);
    }

    #[test]
    fn zero_width_rows_are_empty() {
        let m = Matrix::new("candidates", &[], 4, 0).unwrap();
        assert!(m.row(3).is_empty());
    }

    #[test]
    fn wrong_length_is_an_error() {
        let err = Matrix::new("pool", &[1.0; 5], 2, 3).unwrap_err();
        assert!(err.to_string().contains("pool"), "{err}");
    }

    #[test]
    fn overflowing_shape_is_an_error() {
        assert!(Matrix::new("pool", &[], usize::MAX, 2).is_err());
    }
}
