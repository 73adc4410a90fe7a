//! `linkscope relay`: joins endpoints of any transport into one link.
//!
//! - [`locator`] parses the endpoints as written on the command line.
//! - [`framing`] is QEMU's stream framing (4-byte big-endian length, then the frame).
//! - [`backoff`] paces a connecting endpoint's reconnects.
//! - [`switch`] is the learning table of `--switch`.

pub mod backoff;
pub mod framing;
pub mod locator;
pub mod switch;

pub use locator::Locator;
