//! Many queries' bounds on their distance to the pool at once (the candidate groups'
//! leaders in `prepare`), from bfloat16 dot products with every pool group's leader.
//!
//! [`Hint::bounds`](super::Hint::bounds), one query at a time, measures the query
//! against the pool groups' leaders in f32: at 1M rough candidates against 100k pool
//! rows (23,258 leaders, 2,299 pool groups) 5.9 s of a 9.1 s `prepare`. Here a block of
//! queries is multiplied with all the leaders' bfloat16 copies in 4 x 4 tiles
//! (`bf16_dot::dots`), which bound each distance from below, and the one leader whose
//! product says nearest is measured exactly for the upper bound.

use super::{PoolIndex, SLACK};
use crate::distance::bf16_dot::{self, HalfRow};
use crate::distance::l2;
use crate::matrix::Matrix;

impl PoolIndex {
    /// For each of `xs`, `(lower, upper, row)` as [`Hint::bounds`](super::Hint::bounds)
    /// gives them for a query: a lower bound on its distance to the pool (a little
    /// below the hint's, by the bfloat16 error), and its exact distance to pool row
    /// `row`, a group leader. `None` where the pool groups' leaders have no bfloat16
    /// copy (the kernel does not run here).
    pub(crate) fn bounds_many(
        &self,
        pool: &Matrix<'_>,
        xs: &[&[f32]],
    ) -> Option<Vec<(f64, f64, usize)>> {
        let half = self.leader_half.as_ref()?;
        let groups = &self.groups.groups;
        let (m, cols) = (groups.len(), pool.cols());
        let hs: Vec<HalfRow> = xs.iter().map(|x| HalfRow::new(x)).collect();
        let qs: Vec<&[u16]> = hs.iter().map(|h| h.bits.as_slice()).collect();
        let mut dots = vec![0.0; xs.len() * m];
        bf16_dot::dots(&qs, &half.bits, cols, &mut dots);
        let bounds = xs.iter().zip(&hs).zip(dots.chunks_exact(m));
        Some(
            bounds
                .map(|((x, h), dots)| {
                    let mut lower = f64::INFINITY;
                    let mut nearest = (f64::INFINITY, 0);
                    for (g, (group, &dot)) in groups.iter().zip(dots).enumerate() {
                        // d(x, leader) >= d(x~, leader~) - |x - x~| - |leader - leader~|,
                        // and a row of the group lies within its radius of the leader.
                        let sq = bf16_dot::lower_sq(h, half.norm2[g], dot, cols);
                        let to_leader = sq.max(0.0).sqrt() - h.err - half.err[g];
                        lower = lower.min(to_leader - group.radius);
                        if sq < nearest.0 {
                            nearest = (sq, g);
                        }
                    }
                    let row = groups[nearest.1].start;
                    let upper = l2(x, pool.row(row));
                    let lower = (lower - SLACK * (lower.abs() + 1.0)).max(0.0);
                    (lower.min(upper), upper, row)
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::distance::bf16_dot;
    use crate::matrix::Matrix;
    use crate::pool::PoolIndex;
    use crate::test_data::{nearest_brute, scenes_of};

    #[test]
    fn many_queries_bounds_hold_the_pool_distance_and_stay_near_the_hints() {
        let d = 40;
        let data = scenes_of(8, 60, d, 0.0);
        let pool = Matrix::new("pool", &data, 8 * 60, d).unwrap();
        let index = PoolIndex::build(&pool, &|| false).unwrap();
        let queries = scenes_of(12, 9, d, 2.1);
        let xs: Vec<&[f32]> = queries.chunks_exact(d).collect();
        let Some(many) = index.bounds_many(&pool, &xs) else {
            assert!(!bf16_dot::fast(), "the kernel runs but gave no bounds");
            return;
        };
        for (q, (x, &(lower, upper, row))) in xs.iter().zip(&many).enumerate() {
            let exact = nearest_brute(&pool, x).0;
            let (h_lower, h_upper, _) = index.hint(&pool, x, 0.0).bounds(&index);
            assert!(
                lower <= exact && exact <= upper,
                "query {q}: {lower} {exact} {upper}"
            );
            assert_eq!(
                upper.to_bits(),
                crate::distance::l2(x, pool.row(row)).to_bits()
            );
            // As tight as the f32 hint's, but for the bfloat16 error.
            assert!(
                lower >= h_lower - 0.02 && upper <= h_upper + 0.02,
                "query {q}"
            );
        }
    }
}
