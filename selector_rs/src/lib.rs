//! Python bindings for `selector_core`. Conversion and GIL handling only: every check
//! and every message lives in the core crate, so this file maps its errors to
//! `ValueError` and nothing more.

use numpy::{
    dtype, IntoPyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray2,
    PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;
use selector_core::validate::{self, ArrayLayout};
use selector_core::{Matrix, SelectError};

fn value_error(err: &SelectError) -> PyErr {
    PyValueError::new_err(err.to_string())
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map_or_else(|_| "<unknown type>".to_owned(), |n| n.to_string())
}

/// Borrows `obj` as a C-contiguous float32 matrix, or says what is wrong with it.
///
/// Takes `PyAny` rather than `PyReadonlyArray2<f32>` because pyo3's own extraction
/// raises `TypeError` with a generic message for a wrong dtype or rank.
fn read_matrix<'py>(
    arg: &'static str,
    obj: &Bound<'py, PyAny>,
) -> PyResult<PyReadonlyArray2<'py, f32>> {
    let Ok(array) = obj.cast::<PyUntypedArray>() else {
        return Err(value_error(&SelectError::WrongType {
            arg,
            expected: "a numpy.ndarray",
            got: type_name(obj),
        }));
    };
    let descr = array.dtype();
    let dtype_name = descr.to_string();
    let layout = ArrayLayout {
        ndim: array.ndim(),
        dtype: &dtype_name,
        is_native_float32: descr.is_equiv_to(&dtype::<f32>(obj.py())),
        c_contiguous: array.is_c_contiguous(),
        aligned: array.is_aligned(),
    };
    validate::array_layout(arg, &layout).map_err(|e| value_error(&e))?;
    let typed = array.cast::<PyArray2<f32>>()?;
    typed
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("{arg} cannot be read: {e}")))
}

fn as_matrix<'a>(arg: &'static str, array: &'a PyReadonlyArray2<'_, f32>) -> PyResult<Matrix<'a>> {
    let shape = array.shape();
    Matrix::new(arg, array.as_slice()?, shape[0], shape[1]).map_err(|e| value_error(&e))
}

fn extract_n_samples(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    match obj.extract::<i64>() {
        Ok(n) => Ok(n),
        // Beyond i64 only the sign matters: the core caps the count at the row count.
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            Ok(if obj.gt(0)? { i64::MAX } else { i64::MIN })
        }
        Err(_) => Err(value_error(&SelectError::WrongType {
            arg: "n_samples",
            expected: "an int",
            got: type_name(obj),
        })),
    }
}

fn extract_min_distance(obj: &Bound<'_, PyAny>) -> PyResult<f64> {
    obj.extract::<f64>().map_err(|_| {
        value_error(&SelectError::WrongType {
            arg: "min_distance",
            expected: "a float",
            got: type_name(obj),
        })
    })
}

/// Greedy farthest-point selection of the most diverse candidate rows.
///
/// Returns candidate row indices (int64) in pick order. Each step picks the unpicked
/// candidate whose Euclidean distance to its nearest pool row or earlier pick is
/// largest (lowest index on ties), and stops after `n_samples` picks, when no
/// candidates are left, or when that distance is below `min_distance`.
#[pyfunction]
#[pyo3(signature = (candidates, pool, n_samples, min_distance))]
fn select_diverse<'py>(
    py: Python<'py>,
    candidates: &Bound<'py, PyAny>,
    pool: &Bound<'py, PyAny>,
    n_samples: &Bound<'py, PyAny>,
    min_distance: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray1<i64>>> {
    let cand_array = read_matrix("candidates", candidates)?;
    let pool_array = read_matrix("pool", pool)?;
    let n_samples = extract_n_samples(n_samples)?;
    let min_distance = extract_min_distance(min_distance)?;

    let cand = as_matrix("candidates", &cand_array)?;
    let pool = as_matrix("pool", &pool_array)?;

    // Validation reads every value, so it runs without the GIL too.
    let picks = py
        .detach(|| selector_core::select_diverse(&cand, &pool, n_samples, min_distance))
        .map_err(|e| value_error(&e))?;
    let picks = picks
        .into_iter()
        .map(i64::try_from)
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|e| PyValueError::new_err(format!("row index does not fit in int64: {e}")))?;
    Ok(picks.into_pyarray(py))
}

#[pymodule]
fn selector_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(select_diverse, m)?)?;
    Ok(())
}
