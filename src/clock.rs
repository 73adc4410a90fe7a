//! The clock every timestamp of linkscope is read from: the wall clock (`CLOCK_REALTIME`) in
//! nanoseconds since the Unix epoch. It is the clock and the unit of the kernel's receive
//! timestamps (`SO_TIMESTAMPNS`), so a time read here and a frame's receive time subtract.

use std::time::{SystemTime, UNIX_EPOCH};

/// Nanoseconds since the Unix epoch, now; 0 if the clock is set before 1970.
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn agrees_with_the_system_clock() {
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let now = super::now_ns();
        assert!(
            now >= before && now - before < 60_000_000_000,
            "{before} {now}"
        );
    }
}
