//! Helpers shared by integration tests. Each test binary uses a part of them.
#![allow(dead_code)]

pub mod browser;
pub mod frames;
pub mod impair;
pub mod ports;
pub mod process;
pub mod prometheus;
pub mod sshd;
pub mod tunnel;
pub mod wireshark;
