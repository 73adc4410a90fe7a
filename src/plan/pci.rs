//! PCI slot allocation on pci.0 for new NICs, as the reference generator does it: usable
//! slots are 0x02..=0x1d (0x1e and 0x1f hold PVE's PCI bridges).

use std::collections::BTreeSet;

use super::mapping::PciStrategy;

const FIRST: u64 = 0x02;
/// One past the last usable slot.
const END: u64 = 0x1e;

/// The slots of one VM.
#[derive(Debug, Clone)]
pub struct Slots {
    used: BTreeSet<u64>,
    /// The highest NIC slot so far (`None` when the VM has no NIC slot yet).
    highest: Option<u64>,
}

impl Slots {
    /// Starts from the slots the VM already uses and its highest NIC slot; 0x1e and 0x1f are
    /// always reserved.
    pub fn new(used: &BTreeSet<u64>, highest_nic_slot: Option<u64>) -> Slots {
        let mut used = used.clone();
        used.extend([0x1e, 0x1f]);
        Slots {
            used,
            highest: highest_nic_slot,
        }
    }

    /// Marks a slot kept by a reused NIC as used.
    pub fn keep(&mut self, slot: u64) {
        self.used.insert(slot);
    }

    /// Allocates a slot, or `None` when 0x02..=0x1d are all taken.
    pub fn allocate(&mut self, strategy: PciStrategy) -> Option<u64> {
        if strategy == PciStrategy::NextHighest {
            let start = self
                .highest
                .map_or(FIRST, |h| h.saturating_add(1).max(FIRST));
            if let Some(slot) = (start..END).find(|s| !self.used.contains(s)) {
                return Some(self.take(slot));
            }
        }
        let slot = (FIRST..END).find(|s| !self.used.contains(s))?;
        Some(self.take(slot))
    }

    fn take(&mut self, slot: u64) -> u64 {
        self.used.insert(slot);
        self.highest = self.highest.max(Some(slot));
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(used: &[u64], highest: Option<u64>) -> Slots {
        Slots::new(&used.iter().copied().collect(), highest)
    }

    #[test]
    fn lowest_free_fills_holes() {
        let mut s = slots(&[0x02, 0x03, 0x05, 0x12], Some(0x12));
        let got: Vec<_> = (0..3)
            .map(|_| s.allocate(PciStrategy::LowestFree))
            .collect();
        assert_eq!(got, [Some(0x04), Some(0x06), Some(0x07)]);
    }

    #[test]
    fn next_highest_goes_above_then_falls_back() {
        let mut s = slots(&[0x02, 0x05, 0x1b], Some(0x1b));
        let got: Vec<_> = (0..4)
            .map(|_| s.allocate(PciStrategy::NextHighest))
            .collect();
        assert_eq!(got, [Some(0x1c), Some(0x1d), Some(0x03), Some(0x04)]);
        let mut fresh = slots(&[], None);
        assert_eq!(fresh.allocate(PciStrategy::NextHighest), Some(0x02));
        assert_eq!(fresh.allocate(PciStrategy::NextHighest), Some(0x03));
    }

    #[test]
    fn lowest_free_raises_highest_for_next_highest() {
        let mut s = slots(&[0x10], Some(0x10));
        assert_eq!(s.allocate(PciStrategy::LowestFree), Some(0x02));
        assert_eq!(s.highest, Some(0x10));
        let mut low = slots(&[], Some(0x01));
        low.allocate(PciStrategy::LowestFree);
        assert_eq!(low.highest, Some(0x02));
    }

    #[test]
    fn exhaustion() {
        let all: Vec<u64> = (0x02..0x1e).collect();
        assert_eq!(slots(&all, None).allocate(PciStrategy::LowestFree), None);
        assert_eq!(
            slots(&all, Some(0x1d)).allocate(PciStrategy::NextHighest),
            None
        );
        let mut one = slots(&all[1..], Some(0xff));
        assert_eq!(one.allocate(PciStrategy::NextHighest), Some(0x02));
    }
}
