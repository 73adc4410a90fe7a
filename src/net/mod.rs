//! Sockets: tunnel endpoints, steal sockets, batch I/O and taps.
//!
//! Every `unsafe` block of the crate lives in [`sys`], each with a comment saying why it is
//! sound.

pub mod batch;
mod sock_diag;
pub mod sys;
pub mod tap;
pub mod tunnel;
pub mod udp_owners;
pub mod udp_table;
