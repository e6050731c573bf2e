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

/// Rows of several borrowed matrices of one width, read as one matrix: the blocks'
/// rows one after another.
///
/// Selection over blocks that arrived one by one reads them where they are (the
/// caller's arrays, memory-mapped files) instead of copying them into one buffer: it
/// keeps only each block's first row.
#[derive(Debug, Clone)]
pub struct Blocks<'a> {
    parts: Vec<&'a [f32]>,
    /// `starts[b]`: the first row of block `b`; one more entry, the total row count.
    starts: Vec<usize>,
    cols: usize,
}

impl<'a> Blocks<'a> {
    /// The rows of `parts`, in that order.
    ///
    /// # Errors
    /// [`SelectError::WidthMismatch`] when a block's width is not `cols` (the pool's, or
    /// the first block's); the zero-row blocks of any width are accepted.
    pub fn new(parts: &[Matrix<'a>], cols: usize) -> Result<Self, SelectError> {
        let mut starts = Vec::with_capacity(parts.len() + 1);
        let mut rows = 0;
        starts.push(0);
        for m in parts {
            if m.rows() > 0 && m.cols() != cols {
                return Err(SelectError::WidthMismatch {
                    candidates: m.cols(),
                    pool: cols,
                });
            }
            rows += m.rows();
            starts.push(rows);
        }
        Ok(Self {
            parts: parts.iter().map(Matrix::data).collect(),
            starts,
            cols,
        })
    }

    #[must_use]
    pub fn rows(&self) -> usize {
        self.starts[self.starts.len() - 1]
    }

    #[must_use]
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// Row `i` of the blocks' rows one after another.
    ///
    /// # Panics
    /// When `i >= rows`.
    #[must_use]
    pub fn row(&self, i: usize) -> &'a [f32] {
        // The last block whose first row is at or before `i`; `starts[0] == 0`.
        let b = self.starts.partition_point(|&s| s <= i) - 1;
        let local = i - self.starts[b];
        &self.parts[b][local * self.cols..(local + 1) * self.cols]
    }
}

impl<'a> Blocks<'a> {
    /// Rows `first..first + count` as one slice, where they lie in one block.
    #[must_use]
    pub(crate) fn span(&self, first: usize, count: usize) -> Option<&'a [f32]> {
        let b = self.starts.partition_point(|&s| s <= first) - 1;
        let local = first - self.starts[b];
        (first + count <= self.starts[b + 1])
            .then(|| &self.parts[b][local * self.cols..(local + count) * self.cols])
    }
}

impl<'a> From<&Matrix<'a>> for Blocks<'a> {
    fn from(m: &Matrix<'a>) -> Self {
        Self {
            parts: vec![m.data()],
            starts: vec![0, m.rows()],
            cols: m.cols(),
        }
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

    #[test]
    fn blocks_read_their_rows_in_place_one_after_another() {
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0];
        let parts = [
            Matrix::new("a", &a, 2, 2).unwrap(),
            Matrix::new("e", &[], 0, 7).unwrap(),
            Matrix::new("b", &b, 1, 2).unwrap(),
        ];
        let blocks = Blocks::new(&parts, 2).unwrap();
        assert_eq!(blocks.rows(), 3);
        assert_eq!(blocks.row(1), &[3.0, 4.0]);
        assert_eq!(blocks.row(2), &[5.0, 6.0]);
        // Borrowed, not copied: the row is the caller's memory.
        assert!(std::ptr::eq(blocks.row(2).as_ptr(), b.as_ptr()));
        assert!(std::ptr::eq(blocks.row(0).as_ptr(), a.as_ptr()));
        // Rows within one block read as one slice; rows across two do not.
        assert_eq!(blocks.span(0, 2), Some(&a[..]));
        assert_eq!(blocks.span(2, 1), Some(&b[..]));
        assert_eq!(blocks.span(1, 2), None);
    }

    #[test]
    fn blocks_of_another_width_are_refused() {
        let parts = [Matrix::new("a", &[1.0; 6], 2, 3).unwrap()];
        assert!(Blocks::new(&parts, 2).is_err());
    }
}
