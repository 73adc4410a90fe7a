//! Counters an endpoint keeps beside the engine's per-direction ones (frames of another
//! VXLAN network, a multicast tunnel's own echo, a child's exit), shared with whoever reports
//! them: the endpoint runs on an engine worker, the report is written elsewhere.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// One shared count; clones count into the same value.
#[derive(Debug, Clone, Default)]
pub struct Counter(Arc<AtomicU64>);

impl Counter {
    /// Adds `n`.
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    /// The count as of now.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// An endpoint's named counters, in a fixed order, for reports.
pub type Counters = Vec<(&'static str, Counter)>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_the_count() {
        let a = Counter::default();
        let b = a.clone();
        a.add(2);
        b.add(3);
        assert_eq!((a.get(), b.get()), (5, 5));
    }
}
