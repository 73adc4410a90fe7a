//! `linkscope relay`: joins endpoints of any transport into one link.
//!
//! - [`locator`] parses the endpoints as written on the command line.
//! - [`framing`] is QEMU's stream framing (4-byte big-endian length, then the frame).
//! - [`backoff`] paces a connecting endpoint's reconnects.
//! - [`switch`] is the learning table of `--switch`.
//! - [`tap`], [`vxlan`], [`mcast`], [`exec`] are endpoints: a TAP device, a VXLAN tunnel, a
//!   QEMU multicast tunnel, a child's (or our own) stdin and stdout; [`counter`] holds the
//!   counters they keep beside the engine's.

pub mod backoff;
pub mod counter;
pub mod exec;
pub mod framing;
pub mod locator;
pub mod mcast;
pub mod switch;
pub mod tap;
pub mod vxlan;

pub use locator::Locator;
