//! `select_diverse` on a pool and candidates saved by numpy (`np.save`, float32, C order),
//! e.g. the inputs `bench/bench_select.py` caches in /tmp/datapool-bench, without Python:
//!
//! ```text
//! SELECTOR_RS_TRACE=1 cargo run --release --example npy_select -- POOL.npy CANDS.npy PICKS \
//!     [POOL_ROWS CANDS_ROWS]
//! ```
//!
//! With `POOL_ROWS CANDS_ROWS`, only the first rows of each file are read. With
//! `NPY_SELECT_REPEAT=K`, the selection runs K times (small inputs take milliseconds).
//! `NPY_SELECT_STRATEGY` names the path, or several separated by commas, which then take
//! turns run by run: `diverse` (the default: `select_diverse_with`, as Python's
//! `select_diverse`, on the path it plans), or `auto`, `pruned`, `dense` (pool index,
//! `prepare`, then `select_prepared_blocks_with` on that `Strategy`; with
//! `NPY_SELECT_STEPS` set, the time of each step goes to stderr).
//!
//! Prints each path's median and best time, the wall time of the first path (its median)
//! and a digest of the picks (to compare two builds' picks).

use std::time::Instant;

use selector_core::{
    prepare, select_diverse_with, select_prepared_blocks_with, Blocks, Matrix, PoolIndex, Strategy,
};

/// The rows, columns and values of a 2-D little-endian float32 `.npy` file, read straight
/// into the values (no second copy: the 1M-row inputs are 5 GB).
fn load(path: &str, limit: usize) -> (usize, usize, Vec<f32>) {
    use std::io::Read;
    let mut file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut head = [0_u8; 12];
    file.read_exact(&mut head).expect("npy header");
    assert_eq!(&head[..6], b"\x93NUMPY", "{path}: not a .npy file");
    let (header_len, start) = if head[6] == 1 {
        (usize::from(u16::from_le_bytes([head[8], head[9]])), 10)
    } else {
        let len = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
        (usize::try_from(len).expect("header length"), 12)
    };
    let mut header = vec![0_u8; start + header_len - 12];
    file.read_exact(&mut header).expect("npy header");
    let header = [&head[start.min(12)..], &header[..]].concat();
    let header = std::str::from_utf8(&header).expect("ascii header");
    assert!(header.contains("'<f4'"), "{path}: not float32: {header}");
    assert!(
        header.contains("'fortran_order': False"),
        "{path}: not C order"
    );
    let shape = &header[header.find("'shape': (").expect("shape") + 10..];
    let dims: Vec<usize> = shape[..shape.find(')').expect("shape end")]
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let (rows, cols) = (dims[0].min(limit), dims[1]);
    let mut values = vec![0.0_f32; rows * cols];
    // SAFETY: any bytes are a valid f32, and the buffer is exactly the values' bytes;
    // `.npy` '<f4' is little-endian, as the x86 and ARM targets this runs on.
    let bytes = unsafe {
        std::slice::from_raw_parts_mut(values.as_mut_ptr().cast::<u8>(), values.len() * 4)
    };
    file.read_exact(bytes)
        .unwrap_or_else(|e| panic!("{path}: values: {e}"));
    (rows, cols, values)
}

/// The pool index, `prepare` and the selection on the path `strategy` names (auto,
/// pruned, dense).
fn select(
    cands: &Matrix<'_>,
    pool: &Matrix<'_>,
    picks: i64,
    strategy: &str,
) -> Vec<selector_core::Pick> {
    let strategy = match strategy {
        "dense" => Strategy::Dense,
        "pruned" => Strategy::Pruned,
        _ => Strategy::Auto,
    };
    let never = || false;
    let t = Instant::now();
    let index = PoolIndex::build(pool, &never).expect("pool");
    let t1 = t.elapsed().as_secs_f64();
    let prepared = prepare(cands, pool, &index, &never).expect("prepare");
    let t2 = t.elapsed().as_secs_f64();
    let blocks = Blocks::from(cands);
    let out = select_prepared_blocks_with(
        &blocks, pool, &index, prepared, picks, 0.0, &never, strategy,
    )
    .expect("selection")
    .picks;
    if std::env::var_os("NPY_SELECT_STEPS").is_some() {
        eprintln!(
            "steps: index {:.3} ms, prepare {:.3} ms, select {:.3} ms",
            1e3 * t1,
            1e3 * (t2 - t1),
            1e3 * (t.elapsed().as_secs_f64() - t2)
        );
    }
    out
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() >= 4,
        "usage: npy_select POOL.npy CANDS.npy PICKS [POOL_ROWS CANDS_ROWS]"
    );
    // Optional: only the first rows of each file (a smaller input of the same shape).
    let limit = |k: usize| args.get(k).map_or(usize::MAX, |s| s.parse().expect("ROWS"));
    let (p_rows, p_cols, pool) = load(&args[1], limit(4));
    let (c_rows, c_cols, cands) = load(&args[2], limit(5));
    let picks: i64 = args[3].parse().expect("PICKS: an integer");
    let pool = Matrix::new("pool", &pool, p_rows, p_cols).expect("pool");
    let cands = Matrix::new("candidates", &cands, c_rows, c_cols).expect("candidates");
    let repeat: usize = std::env::var("NPY_SELECT_REPEAT").map_or(1, |s| s.parse().expect("K"));
    // Several strategies (`auto,dense`) alternate run by run: a noisy machine hurts all alike.
    let strategies = std::env::var("NPY_SELECT_STRATEGY").unwrap_or_else(|_| "diverse".into());
    let strategies: Vec<&str> = strategies.split(',').collect();
    let mut times = vec![Vec::new(); strategies.len()];
    let mut got = Vec::new();
    for _ in 0..repeat.max(1) {
        for (s, times) in strategies.iter().zip(&mut times) {
            let started = Instant::now();
            got = if *s == "diverse" {
                select_diverse_with(&cands, &pool, picks, 0.0, &|| false).expect("selection")
            } else {
                select(&cands, &pool, picks, s)
            };
            times.push(started.elapsed().as_secs_f64());
        }
    }
    for (s, times) in strategies.iter().zip(&mut times) {
        times.sort_by(f64::total_cmp);
        println!(
            "{s}: median {:.3} ms, best {:.3} ms",
            1e3 * times[times.len() / 2],
            1e3 * times[0]
        );
    }
    let seconds = times[0][times[0].len() / 2];
    let digest = got.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, p| {
        (h ^ p.index as u64).wrapping_mul(0x100_0000_01b3)
    });
    let last = got.last().map_or(f64::NAN, |p| p.distance);
    println!(
        "{} picks in {seconds:.3} s, first D {:.4}, last D {last:.4}, digest {digest:016x}",
        got.len(),
        got.first().map_or(f64::NAN, |p| p.distance)
    );
}
