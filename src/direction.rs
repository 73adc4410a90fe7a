//! The two directions of a point-to-point link, shared by the forwarding engine, the
//! measurements and the capture.

use std::fmt;

/// A direction of a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From end A to end B.
    AToB,
    /// From end B to end A.
    BToA,
}

impl Direction {
    /// Both directions, A to B first.
    pub const BOTH: [Direction; 2] = [Direction::AToB, Direction::BToA];

    /// Short label: `a>b` or `b>a`.
    pub fn label(self) -> &'static str {
        match self {
            Direction::AToB => "a>b",
            Direction::BToA => "b>a",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}
