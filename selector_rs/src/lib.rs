//! Python bindings for `selector_core`. Conversion and GIL handling only: every check
//! and every message lives in the core crate, so this file maps its errors to
//! `ValueError` and nothing more.

use numpy::{
    dtype, IntoPyArray, PyArray1, PyArray2, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray2,
    PyUntypedArray, PyUntypedArrayMethods,
};
use std::cell::{Cell, RefCell};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::exceptions::{PyOverflowError, PyValueError};
use pyo3::prelude::*;
use selector_core::validate::{self, ArrayLayout};
use selector_core::{Blocks, Matrix, Pick, PoolIndex, Prepared, SelectError, Strategy};

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

pyo3::create_exception!(
    selector_rs,
    Cancelled,
    pyo3::exceptions::PyException,
    "The caller's `stop` callable returned true: the call gave up and returned nothing."
);

/// Polls Python for pending signals (Ctrl-C) and the caller's `stop` callable at most
/// every `INTERVAL`, from the thread that released the GIL, and keeps the exception a
/// signal handler (or `stop`) raised. Signal handlers only run on the main thread, so
/// `stop` is how a server thread (a cancelled RPC) ends a long call.
struct Interrupt {
    last: Cell<Instant>,
    error: RefCell<Option<PyErr>>,
    stop: Option<Py<PyAny>>,
}

impl Interrupt {
    const INTERVAL: Duration = Duration::from_millis(50);

    fn new(stop: Option<Py<PyAny>>) -> Self {
        Self {
            last: Cell::new(Instant::now()),
            error: RefCell::new(None),
            stop,
        }
    }

    /// Pending signals, then `stop()`: `Err` with the exception to raise.
    fn poll(&self, py: Python<'_>) -> PyResult<()> {
        py.check_signals()?;
        if let Some(stop) = &self.stop {
            if stop.bind(py).call0()?.is_truthy()? {
                return Err(Cancelled::new_err("stopped by the caller's stop()"));
            }
        }
        Ok(())
    }

    fn requested(&self) -> bool {
        if self.error.borrow().is_some() {
            return true;
        }
        if self.last.get().elapsed() < Self::INTERVAL {
            return false;
        }
        self.last.set(Instant::now());
        let pending = Python::attach(|py| self.poll(py));
        match pending {
            Ok(()) => false,
            Err(e) => {
                *self.error.borrow_mut() = Some(e);
                true
            }
        }
    }

    /// The Python exception for a core error: the signal's own exception after a
    /// cancellation, `ValueError` for everything else.
    fn into_error(self, err: &SelectError) -> PyErr {
        match (err, self.error.into_inner()) {
            (SelectError::Cancelled, Some(e)) => e,
            _ => value_error(err),
        }
    }
}

/// Runs `work` without the GIL, with Ctrl-C honoured within about `Interrupt::INTERVAL`.
fn run_detached<T: Send>(
    py: Python<'_>,
    work: impl FnOnce(selector_core::Cancel<'_>) -> Result<T, SelectError> + Send,
) -> PyResult<T> {
    run_stoppable(py, None, work)
}

/// [`run_detached`], also giving up once `stop()` returns true.
fn run_stoppable<T: Send>(
    py: Python<'_>,
    stop: Option<Py<PyAny>>,
    work: impl FnOnce(selector_core::Cancel<'_>) -> Result<T, SelectError> + Send,
) -> PyResult<T> {
    // The closure runs on this thread; only `Send` data crosses `detach`.
    py.detach(|| {
        let interrupt = Interrupt::new(stop);
        work(&|| interrupt.requested()).map_err(|e| interrupt.into_error(&e))
    })
}

fn to_i64(picks: &[Pick]) -> PyResult<Vec<i64>> {
    picks
        .iter()
        .map(|p| i64::try_from(p.index))
        .collect::<Result<Vec<i64>, _>>()
        .map_err(|e| PyValueError::new_err(format!("row index does not fit in int64: {e}")))
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
    let picks = run_detached(py, |cancel| {
        selector_core::select_diverse_with(&cand, &pool, n_samples, min_distance, cancel)
    })?;
    Ok(to_i64(&picks)?.into_pyarray(py))
}

/// `(indices, distances)` as returned to Python.
type Picks<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f64>>);

/// A block of candidates added to an `IncrementalSelector`, with what is known of it.
struct Block {
    rows: usize,
    /// The caller's array itself, not a copy: read in place by every later call.
    array: Py<PyArray2<f32>>,
    prepared: Prepared,
}

/// Greedy selection over candidates that arrive in blocks.
///
/// Each `add` keeps a reference to the caller's block (no copy: a block may be a
/// memory-mapped file much larger than RAM), checks it and measures it against the
/// pool right away (without the GIL), so that by the time the last block is in only
/// the greedy loop is left for `select`, which reads the blocks where they are. The
/// pool is referenced the same way. The arrays must not be written to afterwards.
#[pyclass(module = "selector_rs")]
struct IncrementalSelector {
    pool: Py<PyArray2<f32>>,
    pool_rows: usize,
    /// Row width; `None` until known (no pool rows and no block yet).
    dim: Option<usize>,
    index: PoolIndex,
    blocks: Vec<Block>,
    /// Where the last `select` left the pruned path: 0 for never, else picks + 1. An
    /// atomic, so that `select` keeps taking `&self` (concurrent selections stay legal).
    switched: AtomicUsize,
    /// The same for the GEMM pass over the pool during the last `select`.
    pool_pass: AtomicUsize,
}

/// Borrows a kept array again; it was checked (float32, C-contiguous, aligned) when kept.
fn reborrow<'py>(
    py: Python<'py>,
    array: &Py<PyArray2<f32>>,
) -> PyResult<PyReadonlyArray2<'py, f32>> {
    array
        .bind(py)
        .try_readonly()
        .map_err(|e| PyValueError::new_err(format!("a kept array cannot be read: {e}")))
}

impl IncrementalSelector {
    fn pool_matrix<'a>(&self, pool: &'a PyReadonlyArray2<'_, f32>) -> PyResult<Matrix<'a>> {
        let cols = if self.pool_rows == 0 {
            0
        } else {
            self.dim.unwrap_or(0)
        };
        Matrix::new("pool", pool.as_slice()?, self.pool_rows, cols).map_err(|e| value_error(&e))
    }
}

#[pymethods]
impl IncrementalSelector {
    #[new]
    fn new(py: Python<'_>, pool: &Bound<'_, PyAny>) -> PyResult<Self> {
        let array = read_matrix("pool", pool)?;
        let shape = array.shape();
        let (rows, cols) = (shape[0], shape[1]);
        let data = array.as_slice()?;
        let dim = (rows > 0 || cols > 0).then_some(cols);
        let index = run_detached(py, |cancel| {
            let m = Matrix::new("pool", data, rows, cols)?;
            PoolIndex::build(&m, cancel)
        })?;
        Ok(Self {
            pool: array.as_unbound().clone_ref(py),
            pool_rows: rows,
            dim,
            index,
            blocks: Vec::new(),
            switched: AtomicUsize::new(0),
            pool_pass: AtomicUsize::new(0),
        })
    }

    /// Keeps `vectors` (float32, N x d, C-contiguous) as the next block, by reference
    /// and without copying it; returns its id (0, 1, ...). Do not write to `vectors`
    /// afterwards.
    fn add(&mut self, py: Python<'_>, vectors: &Bound<'_, PyAny>) -> PyResult<usize> {
        let array = read_matrix("vectors", vectors)?;
        let shape = array.shape();
        let (rows, cols) = (shape[0], shape[1]);
        if let Some(dim) = self.dim {
            if cols != dim {
                return Err(PyValueError::new_err(format!(
                    "vectors has {cols} columns, but this selector's rows have {dim}"
                )));
            }
        }
        let data = array.as_slice()?;
        let pool_array = reborrow(py, &self.pool)?;
        let pool = self.pool_matrix(&pool_array)?;
        let index = &self.index;
        let prepared = run_detached(py, |cancel| {
            let m = Matrix::new("vectors", data, rows, cols)?;
            selector_core::prepare(&m, &pool, index, cancel)
        })?;
        self.dim = Some(cols);
        self.blocks.push(Block {
            rows,
            array: array.as_unbound().clone_ref(py),
            prepared,
        });
        Ok(self.blocks.len() - 1)
    }

    /// Greedy picks over the blocks in `order` (default: every block, in the order
    /// added). Returns `(indices, distances)`: int64 rows of the blocks concatenated in
    /// that order, and float64 distances of each pick to the pool and earlier picks.
    /// `stop`, if given, is called about every 50 ms; once it returns true the call
    /// raises `Cancelled`.
    /// `strategy`: "auto" (pruned while it pays, by measurement, then dense), "pruned"
    /// or "dense"; the picks are the same.
    #[pyo3(signature = (n_samples, min_distance, order=None, stop=None, strategy="auto"))]
    fn select<'py>(
        &self,
        py: Python<'py>,
        n_samples: &Bound<'py, PyAny>,
        min_distance: &Bound<'py, PyAny>,
        order: Option<Vec<i64>>,
        stop: Option<Py<PyAny>>,
        strategy: &str,
    ) -> PyResult<Picks<'py>> {
        let strategy = match strategy {
            "auto" => Strategy::Auto,
            "pruned" => Strategy::Pruned,
            "dense" => Strategy::Dense,
            other => {
                return Err(PyValueError::new_err(format!(
                    "strategy must be \"auto\", \"pruned\" or \"dense\", not {other:?}"
                )))
            }
        };
        let n_samples = extract_n_samples(n_samples)?;
        let min_distance = extract_min_distance(min_distance)?;
        let order = block_order(order, self.blocks.len())?;
        let dim = self.dim.unwrap_or(0);
        let pool_array = reborrow(py, &self.pool)?;
        let pool = self.pool_matrix(&pool_array)?;
        // The blocks are read where they are (no joined copy): borrowed here, under the
        // GIL, and only their slices cross into the detached loop.
        let arrays = order
            .iter()
            .map(|&b| reborrow(py, &self.blocks[b].array))
            .collect::<PyResult<Vec<_>>>()?;
        let matrices = arrays
            .iter()
            .zip(&order)
            .map(|(a, &b)| {
                Matrix::new("candidates", a.as_slice()?, self.blocks[b].rows, dim)
                    .map_err(|e| value_error(&e))
            })
            .collect::<PyResult<Vec<_>>>()?;
        let candidates = Blocks::new(&matrices, dim).map_err(|e| value_error(&e))?;
        let selected = run_stoppable(py, stop, |cancel| {
            let parts = order
                .iter()
                .map(|&b| self.blocks[b].prepared.clone())
                .collect();
            let prepared = Prepared::concat(parts);
            selector_core::select_prepared_blocks_with(
                &candidates,
                &pool,
                &self.index,
                prepared,
                n_samples,
                min_distance,
                cancel,
                strategy,
            )
        })?;
        self.switched
            .store(selected.switched_at.map_or(0, |k| k + 1), Ordering::Relaxed);
        self.pool_pass.store(
            selected.pool_pass_at.map_or(0, |k| k + 1),
            Ordering::Relaxed,
        );
        let picks = selected.picks;
        let distances: Vec<f64> = picks.iter().map(|p| p.distance).collect();
        Ok((to_i64(&picks)?.into_pyarray(py), distances.into_pyarray(py)))
    }

    /// Number of candidate rows added so far.
    #[getter]
    fn rows(&self) -> usize {
        self.blocks.iter().map(|b| b.rows).sum()
    }

    /// Number of blocks added so far.
    #[getter]
    fn blocks(&self) -> usize {
        self.blocks.len()
    }

    /// Number of pool rows.
    #[getter]
    fn pool_rows(&self) -> usize {
        self.pool_rows
    }

    /// Picks the last `select` made on the pruned path before it measured that the
    /// dense path would be faster and switched; `None` if it never switched.
    #[getter]
    fn last_switch(&self) -> Option<usize> {
        self.switched.load(Ordering::Relaxed).checked_sub(1)
    }

    /// Picks the last `select` had made when it measured that searching the pool row by
    /// row cost more than a GEMM pass over it would, and ran that pass; `None` if never.
    #[getter]
    fn last_pool_pass(&self) -> Option<usize> {
        self.pool_pass.load(Ordering::Relaxed).checked_sub(1)
    }

    /// Rows that `add` measured against the pool by the GEMM pass, because bounding them
    /// through their group leaders was measured to cost more.
    #[getter]
    fn gemm_rows(&self) -> usize {
        self.blocks.iter().map(|b| b.prepared.gemm_rows()).sum()
    }
}

/// Block ids to select over: all in order by default, else each given id at most once.
fn block_order(order: Option<Vec<i64>>, blocks: usize) -> PyResult<Vec<usize>> {
    let Some(order) = order else {
        return Ok((0..blocks).collect());
    };
    let mut seen = vec![false; blocks];
    order
        .into_iter()
        .map(|b| {
            let id = usize::try_from(b)
                .ok()
                .filter(|&id| id < blocks)
                .ok_or_else(|| {
                    PyValueError::new_err(format!(
                        "order names block {b}, but only blocks 0..{blocks} were added"
                    ))
                })?;
            if std::mem::replace(&mut seen[id], true) {
                return Err(PyValueError::new_err(format!(
                    "order names block {b} twice"
                )));
            }
            Ok(id)
        })
        .collect()
}

/// Starts the selection's worker threads if they are not running yet, and returns how many
/// there are. They are started from the calling thread and take its scheduling priority
/// (Linux: its nice value), so a caller that lowered its own priority first runs every later
/// selection below the threads that answer other calls.
#[pyfunction]
fn worker_threads() -> usize {
    rayon::current_num_threads()
}

#[pymodule]
fn selector_rs(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("kernel", selector_core::kernel_name())?;
    m.add_function(wrap_pyfunction!(select_diverse, m)?)?;
    m.add_function(wrap_pyfunction!(worker_threads, m)?)?;
    m.add_class::<IncrementalSelector>()?;
    m.add("Cancelled", m.py().get_type::<Cancelled>())?;
    Ok(())
}
