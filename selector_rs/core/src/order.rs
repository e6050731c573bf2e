//! The order of the max-heap entries in the greedy loops: `f64` has no `Ord`, so each
//! entry orders itself by `total_cmp` on its bound, and ties go to the lowest rows, as
//! the greedy rule breaks them.

/// `Ord` (and the `PartialEq`, `Eq`, `PartialOrd` that agree with it) for a heap entry
/// with a `bound: f64`: the largest bound first, then the lowest `$tie` (its row).
macro_rules! largest_bound_first {
    ($entry:ty, $tie:ident) => {
        impl PartialEq for $entry {
            fn eq(&self, other: &Self) -> bool {
                self.cmp(other) == std::cmp::Ordering::Equal
            }
        }
        impl Eq for $entry {}
        impl PartialOrd for $entry {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }
        impl Ord for $entry {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.bound
                    .total_cmp(&other.bound)
                    .then(other.$tie.cmp(&self.$tie))
            }
        }
    };
}
