//! Contiguous "leader" groups: runs of consecutive rows within `tau` of the run's
//! first row (its leader).
//!
//! Video embeddings arrive in frame order, and consecutive frames are near-duplicates,
//! so a single pass finds tight groups. Nothing depends on that for correctness: the
//! group of a row only serves the triangle inequality, `d(x, y) >= |d(x, l) - d(y, l)|`
//! and `d(x, y) <= d(x, l) + d(l, y)`, which holds for any grouping. On shuffled or
//! structureless data the groups are single rows and the bounds prune nothing.

use rayon::prelude::*;

use crate::distance::l2;
use crate::matrix::Matrix;
use crate::validate::SelectError;
use crate::Cancel;

/// A group never grows past this many rows, so a group's bound stays local.
pub(crate) const MAX_GROUP_ROWS: usize = 256;

/// Rows per parallel task. Groups never span two tasks, so the grouping is the same on
/// any number of threads.
const CHUNK_ROWS: usize = 4096;

/// Tasks between two cancellation checks (about 1e8 values, well under a second).
const CHUNKS_PER_CHECK: usize = 16;

/// Random pairs sampled to estimate the data's scale.
const SCALE_PAIRS: usize = 255;

/// `tau` as a multiple of the median distance between consecutive rows...
const TAU_CONSECUTIVE: f64 = 3.0;
/// ...but at most this fraction of the median distance between random rows.
const TAU_RANDOM: f64 = 0.5;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Group {
    /// First row, which is also the leader.
    pub start: usize,
    pub end: usize,
    /// Largest distance from the leader to a member.
    pub radius: f64,
}

impl Group {
    pub fn rows(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Groups {
    pub groups: Vec<Group>,
    /// Distance from each row to its group's leader.
    pub offset: Vec<f64>,
}

/// splitmix64: a fixed, seedable sequence so that `tau` is reproducible.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The grouping radius for `m`: a few steps between consecutive rows, so that a group
/// spans a short stretch of a video, but never a large part of the data's spread (on
/// structureless data consecutive rows are as far apart as any, and every row is its
/// own group). 0 for fewer than two rows.
pub(crate) fn tau(m: &Matrix<'_>) -> f64 {
    let (consecutive, random) = scale(m);
    (TAU_CONSECUTIVE * consecutive).min(TAU_RANDOM * random)
}

/// The grouping radius for a coarser level over leaders: a fraction of the spread.
pub(crate) fn tau_coarse(m: &Matrix<'_>) -> f64 {
    TAU_RANDOM * scale(m).1
}

/// Median distances between consecutive rows and between random rows (0 for fewer
/// than two rows).
pub(crate) fn scale(m: &Matrix<'_>) -> (f64, f64) {
    let n = m.rows();
    if n < 2 {
        return (0.0, 0.0);
    }
    let mut state = 0x5EED_u64 ^ (n as u64);
    let mut pick = || {
        #[allow(clippy::cast_possible_truncation)] // the modulus brings it below n
        let i = (splitmix(&mut state) % n as u64) as usize;
        i
    };
    let median = |mut d: Vec<f64>| {
        d.sort_by(f64::total_cmp);
        d[d.len() / 2]
    };
    let random = median(
        (0..SCALE_PAIRS)
            .map(|_| l2(m.row(pick()), m.row(pick())))
            .collect(),
    );
    let consecutive = median(
        (0..SCALE_PAIRS)
            .map(|_| {
                let i = pick().min(n - 2);
                l2(m.row(i), m.row(i + 1))
            })
            .collect(),
    );
    (consecutive, random)
}

/// Groups `m`'s rows; `offset` gets each row's distance to its leader.
fn group_chunk(m: &Matrix<'_>, first: usize, offset: &mut [f64], tau: f64) -> Vec<Group> {
    let mut groups = Vec::new();
    let mut current = Group {
        start: first,
        end: first,
        radius: 0.0,
    };
    for (k, out) in offset.iter_mut().enumerate() {
        let i = first + k;
        let d = if i == current.start {
            0.0
        } else {
            l2(m.row(i), m.row(current.start))
        };
        if i > current.start && (d > tau || i - current.start >= MAX_GROUP_ROWS) {
            groups.push(current);
            current = Group {
                start: i,
                end: i + 1,
                radius: 0.0,
            };
            *out = 0.0;
        } else {
            current.end = i + 1;
            current.radius = current.radius.max(d);
            *out = d;
        }
    }
    if current.end > current.start {
        groups.push(current);
    }
    groups
}

/// Leader groups of `m` with radius `tau`, in row order.
pub(crate) fn leader_groups(
    m: &Matrix<'_>,
    tau: f64,
    cancel: Cancel<'_>,
) -> Result<Groups, SelectError> {
    let mut offset = vec![0.0_f64; m.rows()];
    let mut groups = Vec::new();
    let step = CHUNK_ROWS * CHUNKS_PER_CHECK;
    for (round, slab) in offset.chunks_mut(step).enumerate() {
        if cancel() {
            return Err(SelectError::Cancelled);
        }
        let base = round * step;
        let parts: Vec<Vec<Group>> = slab
            .par_chunks_mut(CHUNK_ROWS)
            .enumerate()
            .map(|(c, out)| group_chunk(m, base + c * CHUNK_ROWS, out, tau))
            .collect();
        groups.extend(parts.into_iter().flatten());
    }
    Ok(Groups { groups, offset })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn never() -> bool {
        false
    }

    #[test]
    fn runs_within_tau_share_a_leader() {
        // 1-D: 0, 0.1, 0.2 | 5, 5.05 | 9
        let data = [0.0, 0.1, 0.2, 5.0, 5.05, 9.0];
        let m = Matrix::new("c", &data, 6, 1).unwrap();
        let g = leader_groups(&m, 0.25, &never).unwrap();
        let spans: Vec<_> = g.groups.iter().map(|g| (g.start, g.end)).collect();
        assert_eq!(spans, vec![(0, 3), (3, 5), (5, 6)]);
        assert!((g.groups[0].radius - 0.2).abs() < 1e-6);
        assert!((g.offset[4] - 0.05).abs() < 1e-6);
        assert_eq!(g.offset[3].to_bits(), 0.0_f64.to_bits());
    }

    #[test]
    fn groups_are_capped_and_chunked_the_same_on_any_thread_count() {
        let n = 3 * CHUNK_ROWS + 17;
        let data = vec![1.0_f32; n];
        let m = Matrix::new("c", &data, n, 1).unwrap();
        let g = leader_groups(&m, 0.5, &never).unwrap();
        assert!(g.groups.iter().all(|g| g.end - g.start <= MAX_GROUP_ROWS));
        assert_eq!(g.groups.iter().map(|g| g.end - g.start).sum::<usize>(), n);
        assert!(g.groups.windows(2).all(|w| w[0].end == w[1].start));
        // Chunk boundaries always start a group.
        assert!(g.groups.iter().any(|g| g.start == CHUNK_ROWS));
    }

    #[test]
    fn tau_scales_with_the_data() {
        #[allow(clippy::cast_precision_loss)]
        let data: Vec<f32> = (0..1000).map(|i| (i % 10) as f32).collect();
        let m = Matrix::new("c", &data, 1000, 1).unwrap();
        let scaled: Vec<f32> = data.iter().map(|x| x * 100.0).collect();
        let m2 = Matrix::new("c", &scaled, 1000, 1).unwrap();
        let (t1, t2) = (tau(&m), tau(&m2));
        assert!(t1 > 0.0);
        assert!((t2 / t1 - 100.0).abs() < 1e-3, "{t1} {t2}");
        assert_eq!(tau(&Matrix::new("c", &[1.0], 1, 1).unwrap()).to_bits(), 0);
    }

    #[test]
    fn cancellation_is_honoured() {
        let m = Matrix::new("c", &[0.0; 4], 4, 1).unwrap();
        assert_eq!(
            leader_groups(&m, 0.1, &|| true).unwrap_err(),
            SelectError::Cancelled
        );
    }
}
