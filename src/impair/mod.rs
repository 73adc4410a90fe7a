//! Impairment of a link direction with netem's vocabulary (tc-netem(8)): loss (random or
//! Gilbert–Elliott), delay with jitter, rate with a queue limit, duplication, reordering,
//! corruption, a smaller MTU and a pulled cable.
//!
//! [`spec`] parses what the user writes (`--impair [DIR:]SPEC`, `linkscope ctl … impair`),
//! [`model`] is the per-direction state machine the engine drives with its clock and timers,
//! [`rng`] the seeded random source that makes `--seed N` repeatable, and [`stage`] puts the
//! model on the engine's stage seam and lets the control socket change it while it runs.

pub mod live;
pub mod model;
pub mod rng;
pub mod spec;
pub mod stage;

pub use live::{ImpairConfig, Live};
pub use model::{Cause, Counters, Impairment, Verdict};
pub use spec::{DirectedSpec, Directions, Loss, Spec};
pub use stage::{ImpairStage, Registry};
