//! How long a connecting endpoint waits before its next attempt: 100 ms, doubling after each
//! failure up to 2 s, back to 100 ms once a connection works.

use std::time::Duration;

/// The first wait.
pub const FIRST: Duration = Duration::from_millis(100);

/// The longest wait.
pub const MAX: Duration = Duration::from_secs(2);

/// The reconnect backoff state of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The wait before the next attempt; the one after will be twice as long (up to
    /// [`MAX`]).
    pub fn failed(&mut self) -> Duration {
        let wait = self.next;
        self.next = (self.next * 2).min(MAX);
        wait
    }

    /// A connection worked: the next failure waits [`FIRST`] again.
    pub fn connected(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_100_ms_to_2_s_and_resets_on_success() {
        let mut b = Backoff::default();
        let waits: Vec<u64> = (0..8).map(|_| b.failed().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600, 2000, 2000, 2000]);
        b.connected();
        assert_eq!(b.failed(), FIRST);
    }
}
