//! `linkscope relay`: joins endpoints of any transport into one link.
//!
//! [`locator`] parses the endpoints as written on the command line.

pub mod locator;

pub use locator::Locator;
