/// Independent partial sums: breaks the add dependency chain so the loop vectorises,
/// and shortens each chain, which also reduces rounding error.
const LANES: usize = 8;

/// Squared Euclidean distance between two equally long rows.
///
/// Differences are taken and summed in f64 rather than via `|a|² + |b|² - 2a·b`: the
/// expansion cancels catastrophically for nearby points, exactly the distances that
/// decide the close calls in farthest-point selection. Widening first also makes the
/// difference of two f32 values exact and the square of any finite f32 finite.
#[must_use]
#[inline]
pub fn squared_l2(a: &[f32], b: &[f32]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0.0_f64; LANES];
    let mut a_chunks = a.chunks_exact(LANES);
    let mut b_chunks = b.chunks_exact(LANES);
    for (xs, ys) in (&mut a_chunks).zip(&mut b_chunks) {
        for ((s, &x), &y) in acc.iter_mut().zip(xs).zip(ys) {
            let t = f64::from(x) - f64::from(y);
            *s += t * t;
        }
    }
    let mut tail = 0.0_f64;
    for (&x, &y) in a_chunks.remainder().iter().zip(b_chunks.remainder()) {
        let t = f64::from(x) - f64::from(y);
        tail += t * t;
    }
    ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7])) + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2))
            .sum()
    }

    #[test]
    fn matches_naive_sum_for_every_tail_length() {
        for len in 0..40 {
            #[allow(clippy::cast_precision_loss)] // small loop counters
            let a: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin()).collect();
            #[allow(clippy::cast_precision_loss)]
            let b: Vec<f32> = (0..len).map(|i| (i as f32 * 0.11).cos()).collect();
            let (got, want) = (squared_l2(&a, &b), naive(&a, &b));
            assert!(
                (got - want).abs() <= 1e-12 * want.max(1.0),
                "{len}: {got} vs {want}"
            );
        }
    }

    #[test]
    fn integer_rows_are_exact() {
        assert_eq!(
            squared_l2(&[0.0, 0.0], &[3.0, 4.0]).to_bits(),
            25.0_f64.to_bits()
        );
    }

    #[test]
    fn close_points_keep_their_distance() {
        // |a|² - 2ab + |b|² in f32 would return 0 (or garbage) here.
        let a = vec![1000.0_f32; 64];
        let mut b = a.clone();
        b[17] = 1000.0 + 1.0 / 16.0;
        assert_eq!(squared_l2(&a, &b).to_bits(), (1.0_f64 / 256.0).to_bits());
    }

    #[test]
    fn extreme_values_do_not_overflow() {
        let d = squared_l2(&[f32::MAX; 9], &[f32::MIN; 9]);
        assert!(d.is_finite() && d > 0.0);
    }
}
