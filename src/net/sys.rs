//! Thin wrappers over the system calls the standard library and socket2 do not offer.
//!
//! This is the only module of the crate allowed to contain `unsafe`; each block says why it
//! is sound.
