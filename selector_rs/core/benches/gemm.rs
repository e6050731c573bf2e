//! The dense fallback's GEMM (`x · tᵀ`, f32, rows of width 1280) in two pure-Rust
//! crates (`gemm`, which `dense.rs` uses, and `matrixmultiply`, which it used before)
//! and two arrangements, on the shapes `dense.rs` runs, in one process, on the
//! same inputs, with the variants interleaved so that a busy machine hurts all alike.
//!
//! ```text
//! cargo bench --bench gemm                 # from selector_rs/core; ~1 min on 2 cores
//! GEMM_BENCH_REPEATS=9 cargo bench --bench gemm
//! ```
//!
//! * `blocks`: what `dense.rs` did with `matrixmultiply`: rayon over 128-row blocks of
//!   candidates, one single-threaded GEMM per block against up to 8,192 target rows.
//! * `wide`: one multi-threaded GEMM per `WIDE_ROWS`-row block (the crate's own rayon
//!   split), as `OpenBLAS` does for `NumPy`.
//!
//! Prints the median seconds and GFLOP/s of each, and each one's time over
//! `matrixmultiply`'s `blocks`. `bench/gemm_numpy.py` times `OpenBLAS` on the same shapes.
//! `faer` 0.24's matmul was measured too (2026-12-02): between the two on three shapes,
//! ahead of `gemm` at 256 x 100,000, behind it in the `wide` arrangement, and a much
//! heavier build; it is not a dependency.

#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap,
    clippy::many_single_char_names
)]

use std::time::Instant;

use rayon::prelude::*;

const COLS: usize = 1280;
const BLOCK_ROWS: usize = 128;
const TARGET_CHUNK: usize = 8192;
const WIDE_ROWS: usize = 1024;

/// Unit rows, uniform on the sphere (splitmix64 + Box-Muller), deterministic.
fn sphere(rows: usize, seed: u64) -> Vec<f32> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x2545_f491_4f6c_dd1d;
    let mut next = move || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    };
    let mut out = Vec::with_capacity(rows * COLS);
    for _ in 0..rows {
        let row: Vec<f64> = (0..COLS)
            .map(|_| {
                let (u, v) = (next().max(1e-300), next());
                (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            })
            .collect();
        let norm = row.iter().map(|v| v * v).sum::<f64>().sqrt();
        out.extend(row.iter().map(|v| (v / norm) as f32));
    }
    out
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Lib {
    Matrixmultiply,
    Gemm,
}

/// `out (m x w) = x (m x COLS) · t (w x COLS)ᵀ`, all row-major, on one thread or (with
/// `parallel`) on all of rayon's.
fn product(lib: Lib, x: &[f32], t: &[f32], out: &mut [f32], parallel: bool) {
    let (m, w) = (x.len() / COLS, t.len() / COLS);
    let k = COLS as isize;
    match lib {
        Lib::Matrixmultiply => {
            assert!(!parallel, "matrixmultiply is built without its threading");
            // SAFETY: the shapes and strides above describe the three buffers.
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    COLS,
                    w,
                    1.0,
                    x.as_ptr(),
                    k,
                    1,
                    t.as_ptr(),
                    1,
                    k,
                    0.0,
                    out.as_mut_ptr(),
                    w as isize,
                    1,
                );
            }
        }
        Lib::Gemm => {
            let par = if parallel {
                gemm::Parallelism::Rayon(0)
            } else {
                gemm::Parallelism::None
            };
            // SAFETY: as above; `gemm` takes (column stride, row stride) pairs.
            unsafe {
                gemm::gemm(
                    m,
                    w,
                    COLS,
                    out.as_mut_ptr(),
                    1,
                    w as isize,
                    false,
                    x.as_ptr(),
                    1,
                    k,
                    t.as_ptr(),
                    k,
                    1,
                    0.0,
                    1.0,
                    false,
                    false,
                    false,
                    par,
                );
            }
        }
    }
}

/// Every row of `x` against every row of `t`, in one of the two arrangements; returns
/// a checksum so that nothing is optimised away.
fn pass(lib: Lib, wide: bool, x: &[f32], t: &[f32]) -> f64 {
    let p = t.len() / COLS;
    let chunk = TARGET_CHUNK.min(p);
    let one = |xb: &[f32], parallel: bool| {
        let m = xb.len() / COLS;
        let mut out = vec![0.0_f32; m * chunk];
        let mut sum = 0.0;
        for start in (0..p).step_by(chunk) {
            let width = chunk.min(p - start);
            let out = &mut out[..m * width];
            product(
                lib,
                xb,
                &t[start * COLS..(start + width) * COLS],
                out,
                parallel,
            );
            sum += f64::from(out[0]) + f64::from(out[out.len() - 1]);
        }
        sum
    };
    if wide {
        x.chunks(WIDE_ROWS * COLS).map(|xb| one(xb, true)).sum()
    } else {
        x.par_chunks(BLOCK_ROWS * COLS)
            .map(|xb| one(xb, false))
            .sum()
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let repeats: usize = std::env::var("GEMM_BENCH_REPEATS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    // (name, candidate rows, target rows): the switch's sample, a pool pass over a
    // pool of 5,000 and of 100,000 (a slice of the candidates), the small case whole.
    let shapes = [
        ("small 1000 x 100", 1000, 100),
        ("small 2000 x 200", 2000, 200),
        ("small 5000 x 500", 5000, 500),
        ("sample 256 x 2048", 256, 2048),
        ("blocks 2048 x 5000", 2048, 5000),
        ("blocks 256 x 100000", 256, 100_000),
        ("full 20000 x 1000", 20_000, 1000),
    ];
    let variants = [
        (Lib::Matrixmultiply, false),
        (Lib::Gemm, false),
        (Lib::Gemm, true),
    ];
    println!(
        "{} rayon threads, width {COLS}, median of {repeats}",
        rayon::current_num_threads()
    );
    for (name, n, p) in shapes {
        let x = sphere(n, 1);
        let t = sphere(p, 2);
        let mut times = vec![Vec::new(); variants.len()];
        let mut sums = vec![0.0; variants.len()];
        for _ in 0..=repeats {
            for (i, &(lib, wide)) in variants.iter().enumerate() {
                let start = Instant::now();
                sums[i] = pass(lib, wide, &x, &t);
                times[i].push(start.elapsed().as_secs_f64());
            }
        }
        let flop = 2.0 * n as f64 * p as f64 * COLS as f64;
        // The first round warms caches and thread pools; it is not counted.
        let medians: Vec<f64> = times.iter_mut().map(|t| median(&mut t[1..])).collect();
        for (i, &(lib, wide)) in variants.iter().enumerate() {
            let arrangement = if wide { "wide" } else { "blocks" };
            let label = format!("{lib:?} {arrangement}");
            println!(
                "{name:<22} {label:<22} {:>8.4} s {:>7.1} GFLOP/s  x{:.2} of matrixmultiply  (checksum {:.3})",
                medians[i],
                flop / medians[i] / 1e9,
                medians[i] / medians[0],
                sums[i]
            );
        }
    }
}
