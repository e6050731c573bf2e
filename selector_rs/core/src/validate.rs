//! Input checks, kept here rather than in the binding so that every message is
//! unit-tested without Python and any other front end reports the same problems.

use std::fmt;

use rayon::prelude::*;

use crate::matrix::Matrix;

/// Everything that can be wrong with the inputs. The `Display` text is what Python
/// users see in the `ValueError`, so each one names the argument at fault.
#[derive(Debug, Clone, PartialEq)]
pub enum SelectError {
    /// An argument has the wrong Python type (e.g. a list instead of an ndarray).
    WrongType {
        arg: &'static str,
        expected: &'static str,
        got: String,
    },
    NotTwoDimensional {
        arg: &'static str,
        ndim: usize,
    },
    WrongDtype {
        arg: &'static str,
        got: String,
    },
    NotContiguous {
        arg: &'static str,
    },
    NotAligned {
        arg: &'static str,
    },
    /// The buffer length does not match the stated shape: a bug in the caller.
    ShapeMismatch {
        arg: &'static str,
        len: usize,
        rows: usize,
        cols: usize,
    },
    NonFinite {
        arg: &'static str,
        row: usize,
        col: usize,
        value: f32,
    },
    /// Finite but so large that squared differences would overflow f32.
    OutOfRange {
        arg: &'static str,
        row: usize,
        col: usize,
        value: f32,
    },
    WidthMismatch {
        candidates: usize,
        pool: usize,
    },
    NegativeSamples {
        n_samples: i64,
    },
    InvalidMinDistance {
        value: f64,
    },
    /// The caller asked to stop (from Python: `KeyboardInterrupt`); not an input problem.
    Cancelled,
}

impl fmt::Display for SelectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WrongType { arg, expected, got } => {
                write!(f, "{arg} must be {expected}, got {got}")
            }
            Self::NotTwoDimensional { arg, ndim } => {
                write!(f, "{arg} must be a 2-D array, got a {ndim}-D array")
            }
            Self::WrongDtype { arg, got } => write!(f, "{arg} must be float32, got {got}"),
            Self::NotContiguous { arg } => write!(
                f,
                "{arg} must be C-contiguous (row-major); pass numpy.ascontiguousarray({arg})"
            ),
            Self::NotAligned { arg } => write!(
                f,
                "{arg} must be aligned for float32; pass a copy of it, e.g. {arg}.copy()"
            ),
            Self::ShapeMismatch {
                arg,
                len,
                rows,
                cols,
            } => write!(
                f,
                "{arg} has {len} values, which does not match its shape {rows}x{cols}"
            ),
            Self::NonFinite {
                arg,
                row,
                col,
                value,
            } => write!(
                f,
                "{arg} must be finite, but row {row} has {value} in column {col}"
            ),
            Self::OutOfRange {
                arg,
                row,
                col,
                value,
            } => write!(
                f,
                "{arg} values must lie within ±{MAX_ABS:e} (distances are summed in float32), \
                 but row {row} has {value:e} in column {col}"
            ),
            Self::WidthMismatch { candidates, pool } => write!(
                f,
                "candidates and pool must have the same number of columns, \
                 but candidates has {candidates} and pool has {pool}"
            ),
            Self::NegativeSamples { n_samples } => {
                write!(f, "n_samples must be >= 0, got {n_samples}")
            }
            Self::InvalidMinDistance { value } => {
                write!(f, "min_distance must be finite and >= 0, got {value}")
            }
            Self::Cancelled => write!(f, "selection cancelled"),
        }
    }
}

impl std::error::Error for SelectError {}

impl SelectError {
    /// The error for a refused value at `row`, `col` of `arg`: [`Self::OutOfRange`] when
    /// it is finite (too large), [`Self::NonFinite`] otherwise.
    #[must_use]
    pub fn refused_value(arg: &'static str, row: usize, col: usize, value: f32) -> Self {
        if value.is_finite() {
            Self::OutOfRange {
                arg,
                row,
                col,
                value,
            }
        } else {
            Self::NonFinite {
                arg,
                row,
                col,
                value,
            }
        }
    }
}

/// What a front end knows about an array argument before it can view it as a slice.
#[derive(Debug, Clone, Copy)]
#[allow(clippy::struct_excessive_bools)] // mirrors numpy's flags one to one
pub struct ArrayLayout<'a> {
    pub ndim: usize,
    /// The dtype as the user would write it, e.g. `float64` or `>f4`.
    pub dtype: &'a str,
    pub is_native_float32: bool,
    pub c_contiguous: bool,
    pub aligned: bool,
}

/// Checks that an array argument can be read as a row-major f32 matrix.
///
/// # Errors
/// The first problem found, dtype before shape before memory layout, so that the
/// most fundamental mistake is reported.
pub fn array_layout(arg: &'static str, layout: &ArrayLayout<'_>) -> Result<(), SelectError> {
    if !layout.is_native_float32 {
        return Err(SelectError::WrongDtype {
            arg,
            got: layout.dtype.to_owned(),
        });
    }
    if layout.ndim != 2 {
        return Err(SelectError::NotTwoDimensional {
            arg,
            ndim: layout.ndim,
        });
    }
    if !layout.c_contiguous {
        return Err(SelectError::NotContiguous { arg });
    }
    if !layout.aligned {
        return Err(SelectError::NotAligned { arg });
    }
    Ok(())
}

/// # Errors
/// [`SelectError::NegativeSamples`] when `n_samples < 0`.
pub fn n_samples(n_samples: i64) -> Result<usize, SelectError> {
    if n_samples < 0 {
        return Err(SelectError::NegativeSamples { n_samples });
    }
    // Only a 32-bit target can fail here, and there no more than usize::MAX rows exist.
    Ok(usize::try_from(n_samples).unwrap_or(usize::MAX))
}

/// # Errors
/// [`SelectError::InvalidMinDistance`] for NaN, infinities and negative values.
pub fn min_distance(value: f64) -> Result<f64, SelectError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(SelectError::InvalidMinDistance { value })
    }
}

/// An empty `0 x 0` pool stands for "no pool" whatever the candidates' width, so that
/// callers without a pool need not know `d`.
///
/// # Errors
/// [`SelectError::WidthMismatch`] when the widths differ otherwise.
pub fn same_width(candidates: &Matrix<'_>, pool: &Matrix<'_>) -> Result<(), SelectError> {
    let no_pool = pool.rows() == 0 && pool.cols() == 0;
    if no_pool || candidates.cols() == pool.cols() {
        Ok(())
    } else {
        Err(SelectError::WidthMismatch {
            candidates: candidates.cols(),
            pool: pool.cols(),
        })
    }
}

/// The largest magnitude accepted: differences of such values, squared and summed over
/// tens of millions of columns, still fit in f32. Embeddings are many orders smaller.
pub const MAX_ABS: f32 = 1e15;

/// # Errors
/// [`SelectError::NonFinite`] for the first NaN or infinity, [`SelectError::OutOfRange`]
/// for the first value beyond ±[`MAX_ABS`], by row-major position.
pub fn finite(m: &Matrix<'_>) -> Result<(), SelectError> {
    // A full pass over possibly gigabytes of features: worth both cores, in chunks
    // checked branch-free (so the loop vectorises); only a bad chunk is searched.
    const CHUNK: usize = 1 << 16;
    let in_range = |x: &f32| x.abs() <= MAX_ABS; // false for NaN too
    let bad = m
        .data()
        .par_chunks(CHUNK)
        .position_first(|c| !c.iter().fold(true, |ok, x| ok & in_range(x)))
        .and_then(|chunk| {
            let start = chunk * CHUNK;
            m.data()[start..]
                .iter()
                .position(|x| !in_range(x))
                .map(|p| start + p)
        });
    match bad {
        None => Ok(()),
        Some(pos) => {
            // cols > 0 here: an empty row has no values to be out of range.
            let (row, col) = (pos / m.cols(), pos % m.cols());
            Err(SelectError::refused_value(
                m.name(),
                row,
                col,
                m.data()[pos],
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(dtype: &str) -> ArrayLayout<'_> {
        ArrayLayout {
            ndim: 2,
            dtype,
            is_native_float32: dtype == "float32",
            c_contiguous: true,
            aligned: true,
        }
    }

    #[test]
    fn good_layout_passes() {
        assert_eq!(array_layout("candidates", &layout("float32")), Ok(()));
    }

    #[test]
    fn wrong_dtype_names_both_dtypes() {
        let err = array_layout("candidates", &layout("float64")).unwrap_err();
        assert_eq!(err.to_string(), "candidates must be float32, got float64");
    }

    #[test]
    fn wrong_ndim_is_reported() {
        let l = ArrayLayout {
            ndim: 1,
            ..layout("float32")
        };
        let err = array_layout("pool", &l).unwrap_err().to_string();
        assert!(
            err.contains("pool must be a 2-D array, got a 1-D array"),
            "{err}"
        );
    }

    #[test]
    fn layout_flags_are_reported() {
        let l = ArrayLayout {
            c_contiguous: false,
            ..layout("float32")
        };
        let err = array_layout("pool", &l).unwrap_err().to_string();
        assert!(err.contains("pool must be C-contiguous"), "{err}");
        let l = ArrayLayout {
            aligned: false,
            ..layout("float32")
        };
        let err = array_layout("candidates", &l).unwrap_err().to_string();
        assert!(err.contains("candidates must be aligned"), "{err}");
    }

    #[test]
    fn n_samples_must_not_be_negative() {
        assert_eq!(n_samples(0), Ok(0));
        assert_eq!(n_samples(7), Ok(7));
        let err = n_samples(-1).unwrap_err().to_string();
        assert!(err.contains("n_samples must be >= 0, got -1"), "{err}");
    }

    #[test]
    fn min_distance_must_be_finite_and_non_negative() {
        assert_eq!(min_distance(0.0), Ok(0.0));
        assert_eq!(min_distance(2.5), Ok(2.5));
        for bad in [f64::NAN, -1.0, f64::INFINITY, f64::NEG_INFINITY] {
            let err = min_distance(bad).unwrap_err().to_string();
            assert!(
                err.starts_with("min_distance must be finite and >= 0"),
                "{err}"
            );
        }
    }

    #[test]
    fn widths_must_match_unless_pool_is_zero_by_zero() {
        let c = Matrix::new("candidates", &[0.0; 6], 2, 3).unwrap();
        assert!(same_width(&c, &Matrix::new("pool", &[], 0, 0).unwrap()).is_ok());
        assert!(same_width(&c, &Matrix::new("pool", &[], 0, 3).unwrap()).is_ok());
        let err = same_width(&c, &Matrix::new("pool", &[], 0, 2).unwrap()).unwrap_err();
        assert_eq!(
            err,
            SelectError::WidthMismatch {
                candidates: 3,
                pool: 2
            }
        );
        assert!(err.to_string().contains("candidates has 3 and pool has 2"));
    }

    #[test]
    fn first_non_finite_value_is_located() {
        let mut data = vec![0.0_f32; 12];
        data[7] = f32::INFINITY;
        data[10] = f32::NAN;
        let m = Matrix::new("pool", &data, 4, 3).unwrap();
        let err = finite(&m).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pool must be finite, but row 2 has inf in column 1"
        );
        data[7] = 0.0;
        let m = Matrix::new("candidates", &data, 4, 3).unwrap();
        let err = finite(&m).unwrap_err().to_string();
        assert_eq!(
            err,
            "candidates must be finite, but row 3 has NaN in column 1"
        );
    }

    #[test]
    fn huge_values_are_refused_by_position() {
        let m = Matrix::new("candidates", &[0.0, 1.0, -3e30, f32::MAX], 2, 2).unwrap();
        let err = finite(&m).unwrap_err().to_string();
        assert!(
            err.starts_with("candidates values must lie within ±1e15"),
            "{err}"
        );
        assert!(err.contains("row 1 has -3e30 in column 0"), "{err}");
    }

    #[test]
    fn finite_matrices_pass() {
        let m = Matrix::new("pool", &[1.0, -2.0, MAX_ABS, -MAX_ABS], 2, 2).unwrap();
        assert!(finite(&m).is_ok());
        assert!(finite(&Matrix::new("pool", &[], 0, 0).unwrap()).is_ok());
    }
}
