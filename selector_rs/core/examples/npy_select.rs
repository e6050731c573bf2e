//! `select_diverse` on a pool and candidates saved by numpy (`np.save`, float32, C order),
//! e.g. the inputs `bench/bench_select.py` caches in /tmp/datapool-bench, without Python:
//!
//! ```text
//! SELECTOR_RS_TRACE=1 cargo run --release --example npy_select -- POOL.npy CANDS.npy PICKS
//! ```
//!
//! Prints the wall time and a digest of the picks (to compare two builds' picks).

use std::time::Instant;

use selector_core::{select_diverse_with, Matrix};

/// The rows, columns and values of a 2-D little-endian float32 `.npy` file.
fn load(path: &str) -> (usize, usize, Vec<f32>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(&bytes[..6], b"\x93NUMPY", "{path}: not a .npy file");
    let (header_len, start) = if bytes[6] == 1 {
        (usize::from(u16::from_le_bytes([bytes[8], bytes[9]])), 10)
    } else {
        let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
        (usize::try_from(len).expect("header length"), 12)
    };
    let header = std::str::from_utf8(&bytes[start..start + header_len]).expect("ascii header");
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
    let (rows, cols) = (dims[0], dims[1]);
    let values: Vec<f32> = bytes[start + header_len..]
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(values.len(), rows * cols, "{path}: size");
    (rows, cols, values)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    assert!(
        args.len() >= 4,
        "usage: npy_select POOL.npy CANDS.npy PICKS"
    );
    let (p_rows, p_cols, pool) = load(&args[1]);
    let (c_rows, c_cols, cands) = load(&args[2]);
    let picks: i64 = args[3].parse().expect("PICKS: an integer");
    let pool = Matrix::new("pool", &pool, p_rows, p_cols).expect("pool");
    let cands = Matrix::new("candidates", &cands, c_rows, c_cols).expect("candidates");
    let started = Instant::now();
    let got = select_diverse_with(&cands, &pool, picks, 0.0, &|| false).expect("selection");
    let seconds = started.elapsed().as_secs_f64();
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
