//! `select_diverse` on synthetic video-like embeddings, against a brute-force greedy
//! baseline measured in the same run.
//!
//! From `selector_rs/core` (or with `-p selector_core` from the workspace root):
//!
//! ```text
//! cargo bench --bench select              # 20k x 256, pool 2k, 200 picks (< 1 min)
//! cargo bench --bench select -- --full    # also 100k x 1280, pool 5k, 500 picks (minutes:
//!                                         # the brute force alone is ~3 min on 2 cores)
//! SELECT_BENCH_FULL=1 cargo bench --bench select
//! ```
//!
//! The data follows `datapool/synthetic_embeddings.py` in spirit: unit rows in scenes of
//! 100..1000 consecutive near-duplicate frames drifting slowly (a mean-reverting walk in
//! 8 directions of their own, plus noise) around a scene centre near one of 32 topics;
//! 30% of the candidates' scenes revisit a pool scene. Deterministic (splitmix64 and
//! Box-Muller), so runs compare.
//!
//! The baseline computes every candidate's distance to every pool row, then per pick an
//! argmax and a distance update over all candidates, in parallel with rayon and with the
//! same f32 distance kernel as the core, so the ratio measures the algorithm.

// Sizes and PRNG draws: the casts lose nothing that matters.
#![allow(
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss,
    clippy::cast_sign_loss
)]

use std::time::{Duration, Instant};

use rayon::prelude::*;
use selector_core::{
    kernel_name, prepare, select_diverse_with, select_prepared, squared_l2, Matrix, Pick, PoolIndex,
};

const TOPICS: usize = 32;
const DRIFT_DIMS: usize = 8;
const SCENE_FRAMES: (usize, usize) = (100, 1000);
const REVISIT: f64 = 0.3;
const POOL: u64 = 0;
const CANDS: u64 = 1;
/// Brute force: candidates per parallel task, and bytes of pool rows per cache tile.
const CAND_TILE: usize = 32;
const POOL_TILE_BYTES: usize = 512 * 1024;

/// splitmix64 with Box-Muller normals.
struct Rng {
    state: u64,
    spare: Option<f64>,
}

impl Rng {
    fn new(seed: &[u64]) -> Self {
        let mut rng = Self {
            state: 0x2545_f491_4f6c_dd1d,
            spare: None,
        };
        for &s in seed {
            rng.state ^= s;
            rng.next_u64();
        }
        rng
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1_u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.uniform() * n as f64) as usize
    }

    fn normal(&mut self) -> f64 {
        if let Some(z) = self.spare.take() {
            return z;
        }
        let radius = (-2.0 * (1.0 - self.uniform()).ln()).sqrt(); // 1 - u in (0, 1]
        let (sin, cos) = (std::f64::consts::TAU * self.uniform()).sin_cos();
        self.spare = Some(radius * sin);
        radius * cos
    }

    fn unit_vector(&mut self, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| self.normal() as f32).collect();
        normalise(&mut v);
        v
    }
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x /= norm;
        }
    }
}

/// A common direction and topic directions at cosine ~0.1 from each other.
fn topics(dim: usize, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = Rng::new(&[seed, 1]);
    let common = rng.unit_vector(dim);
    (0..TOPICS)
        .map(|_| {
            let g = rng.unit_vector(dim);
            let mut t: Vec<f32> = g.iter().zip(&common).map(|(g, m)| g + 0.33 * m).collect();
            normalise(&mut t);
            t
        })
        .collect()
}

#[derive(Clone)]
struct Scene {
    centre: Vec<f32>,
    /// `DRIFT_DIMS` unit directions, row-major.
    basis: Vec<f32>,
    rho: f64,
    spread: f64,
    noise: f64,
}

fn scene(topics: &[Vec<f32>], seed: u64, role: u64, index: usize) -> Scene {
    let dim = topics[0].len();
    let mut rng = Rng::new(&[seed, 3, role, index as u64]);
    let topic = &topics[rng.below(topics.len())];
    let s = rng.range(0.3, 0.8) as f32;
    let u = rng.unit_vector(dim);
    let mut centre: Vec<f32> = topic.iter().zip(&u).map(|(t, u)| t + s * u).collect();
    normalise(&mut centre);
    let basis = (0..DRIFT_DIMS).flat_map(|_| rng.unit_vector(dim)).collect();
    Scene {
        centre,
        basis,
        rho: rng.range(0.97, 0.99),
        spread: rng.range(0.02, 0.05),
        noise: rng.range(0.005, 0.01),
    }
}

/// The same place seen again: centre moved by ~0.03.
fn revisit(mut scene: Scene, seed: u64, index: usize) -> Scene {
    let dim = scene.centre.len();
    let mut rng = Rng::new(&[seed, 5, index as u64]);
    let scale = 0.03 / (dim as f64).sqrt();
    for x in &mut scene.centre {
        *x += (rng.normal() * scale) as f32;
    }
    normalise(&mut scene.centre);
    scene
}

/// Frames of one scene: a stationary AR(1) walk in the drift directions plus noise.
fn fill_scene(out: &mut [f32], dim: usize, scene: &Scene, mut rng: Rng) {
    let step = scene.spread * (1.0 - scene.rho * scene.rho).sqrt();
    let noise = scene.noise / (dim as f64).sqrt();
    let mut x: Vec<f64> = (0..DRIFT_DIMS)
        .map(|_| rng.normal() * scene.spread)
        .collect();
    for row in out.chunks_exact_mut(dim) {
        for xk in &mut x {
            *xk = scene.rho * *xk + rng.normal() * step;
        }
        for (j, v) in row.iter_mut().enumerate() {
            *v = scene.centre[j] + (rng.normal() * noise) as f32;
        }
        for (k, &xk) in x.iter().enumerate() {
            let b = &scene.basis[k * dim..(k + 1) * dim];
            row.iter_mut().zip(b).for_each(|(v, b)| *v += xk as f32 * b);
        }
        normalise(row);
    }
}

fn scene_lengths(n: usize, seed: u64, role: u64) -> Vec<usize> {
    let mut rng = Rng::new(&[seed, 2, role]);
    let mut out = Vec::new();
    let mut total = 0;
    while total < n {
        let len = SCENE_FRAMES.0 + rng.below(SCENE_FRAMES.1 - SCENE_FRAMES.0 + 1);
        let len = len.min(n - total);
        out.push(len);
        total += len;
    }
    out
}

/// Rows of consecutive scenes, generated in parallel (each scene has its own stream).
fn frames(dim: usize, seed: u64, role: u64, scenes: &[(usize, Scene)]) -> Vec<f32> {
    let rows: usize = scenes.iter().map(|(len, _)| len).sum();
    let mut out = vec![0.0_f32; rows * dim];
    let mut slices = Vec::with_capacity(scenes.len());
    let mut rest = out.as_mut_slice();
    for (len, _) in scenes {
        let (head, tail) = rest.split_at_mut(len * dim);
        slices.push(head);
        rest = tail;
    }
    slices
        .into_par_iter()
        .zip(scenes)
        .enumerate()
        .for_each(|(i, (slice, (_, scene)))| {
            fill_scene(slice, dim, scene, Rng::new(&[seed, 4, role, i as u64]));
        });
    out
}

/// `(pool, candidates)` from the same world, row-major.
fn pool_and_candidates(
    n_pool: usize,
    n_cand: usize,
    dim: usize,
    seed: u64,
) -> (Vec<f32>, Vec<f32>) {
    let world = topics(dim, seed);
    let pool_scenes: Vec<(usize, Scene)> = scene_lengths(n_pool, seed, POOL)
        .into_iter()
        .enumerate()
        .map(|(i, len)| (len, scene(&world, seed, POOL, i)))
        .collect();
    let mut choose = Rng::new(&[seed, 6]);
    let cand_scenes: Vec<(usize, Scene)> = scene_lengths(n_cand, seed, CANDS)
        .into_iter()
        .enumerate()
        .map(|(i, len)| {
            if !pool_scenes.is_empty() && choose.uniform() < REVISIT {
                let original = pool_scenes[choose.below(pool_scenes.len())].1.clone();
                (len, revisit(original, seed, i))
            } else {
                (len, scene(&world, seed, CANDS, i))
            }
        })
        .collect();
    (
        frames(dim, seed, POOL, &pool_scenes),
        frames(dim, seed, CANDS, &cand_scenes),
    )
}

/// Brute-force greedy: exact pool distances for every candidate, then per pick an
/// argmax (lowest index on ties) and an update of every candidate's distance.
fn brute_force(cands: &Matrix<'_>, pool: &Matrix<'_>, n_samples: usize) -> Vec<Pick> {
    // Tiled so that a slab of pool rows stays in L2 while a few candidates sweep it;
    // untiled, every candidate would stream the whole pool from memory.
    let pool_tile = (POOL_TILE_BYTES / (4 * cands.cols().max(1))).max(1);
    let mut d = vec![f32::INFINITY; cands.rows()];
    d.par_chunks_mut(CAND_TILE)
        .enumerate()
        .for_each(|(tile, out)| {
            for start in (0..pool.rows()).step_by(pool_tile) {
                let end = (start + pool_tile).min(pool.rows());
                for (k, v) in out.iter_mut().enumerate() {
                    let row = cands.row(tile * CAND_TILE + k);
                    for j in start..end {
                        *v = v.min(squared_l2(row, pool.row(j)));
                    }
                }
            }
        });
    let mut picks = Vec::with_capacity(n_samples);
    while picks.len() < n_samples.min(cands.rows()) {
        let best = d
            .par_iter()
            .enumerate()
            .filter(|(_, v)| !v.is_nan())
            // Farther wins, then the lower index: `(value, Reverse(index))` order.
            .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)));
        let Some((index, &sq)) = best else { break };
        picks.push(Pick {
            index,
            distance: f64::from(sq).sqrt(),
        });
        let picked = cands.row(index);
        d.par_iter_mut().enumerate().for_each(|(i, v)| {
            if !v.is_nan() {
                *v = v.min(squared_l2(cands.row(i), picked));
            }
        });
        d[index] = f32::NAN; // picked
    }
    picks
}

fn ms(t: Duration) -> f64 {
    t.as_secs_f64() * 1e3
}

struct Size {
    n: usize,
    pool: usize,
    dim: usize,
    picks: usize,
}

fn run(size: &Size, reps: usize) {
    let Size {
        n,
        pool,
        dim,
        picks,
    } = *size;
    println!("\nN={n} x {dim}, pool {pool}, {picks} picks");
    let t = Instant::now();
    let (pool_data, cand_data) = pool_and_candidates(pool, n, dim, 7);
    println!("  data            {:>10.1} ms", ms(t.elapsed()));
    let c = Matrix::new("candidates", &cand_data, n, dim).unwrap();
    let p = Matrix::new("pool", &pool_data, pool, dim).unwrap();
    let never = || false;
    let n_samples = i64::try_from(picks).unwrap();

    // The phases one by one, as IncrementalSelector runs them.
    let t = Instant::now();
    let index = PoolIndex::build(&p, &never).unwrap();
    let t_index = t.elapsed();
    let t = Instant::now();
    let prepared = prepare(&c, &p, &index, &never).unwrap();
    let t_prepare = t.elapsed();
    let groups = prepared.group_count();
    let t = Instant::now();
    select_prepared(&c, &p, &index, prepared, n_samples, 0.0, &never).unwrap();
    let t_select = t.elapsed();
    println!(
        "  phases          index {:.1} ms ({} pool groups), prepare {:.1} ms ({groups} groups), select {:.1} ms",
        ms(t_index),
        index.group_count(),
        ms(t_prepare),
        ms(t_select),
    );

    let mut times = Vec::with_capacity(reps);
    let mut fast = Vec::new();
    for _ in 0..reps {
        let t = Instant::now();
        fast = select_diverse_with(&c, &p, n_samples, 0.0, &never).unwrap();
        times.push(t.elapsed());
    }
    times.sort();
    let best = times[0];
    let median = times[times.len() / 2];
    let t = Instant::now();
    let slow = brute_force(&c, &p, picks);
    let t_brute = t.elapsed();

    let rate = |t: Duration| fast.len() as f64 / t.as_secs_f64();
    println!(
        "  select_diverse  {:>10.1} ms best, {:.1} ms median of {reps}  ({:.0} picks/s)",
        ms(best),
        ms(median),
        rate(best),
    );
    println!(
        "  brute force     {:>10.1} ms  ({:.0} picks/s)",
        ms(t_brute),
        rate(t_brute)
    );
    println!(
        "  speed-up        {:>10.1}x",
        t_brute.as_secs_f64() / best.as_secs_f64()
    );
    match fast.iter().zip(&slow).position(|(a, b)| a.index != b.index) {
        None if fast.len() == slow.len() => println!("  picks           identical"),
        None => println!("  picks           {} vs {}", fast.len(), slow.len()),
        Some(k) => println!(
            "  picks           differ first at pick {k}: {:?} vs brute force {:?}",
            fast[k], slow[k]
        ),
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--full")
        || std::env::var("SELECT_BENCH_FULL").is_ok_and(|v| !v.is_empty() && v != "0");
    println!(
        "kernel {}, {} threads{}",
        kernel_name(),
        rayon::current_num_threads(),
        if full { ", full" } else { "" }
    );
    run(
        &Size {
            n: 20_000,
            pool: 2_000,
            dim: 256,
            picks: 200,
        },
        5,
    );
    if full {
        run(
            &Size {
                n: 100_000,
                pool: 5_000,
                dim: 1280,
                picks: 500,
            },
            3,
        );
    }
}
