//! The sender's rate and size specifications as users write them on the command line.

use crate::bench::frame::{MAX_SIZE, MIN_SIZE};
use crate::{Error, Result};

/// How fast to send.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rate {
    /// As fast as the socket takes frames.
    Max,
    /// Frames per second (all streams together).
    FramesPerSecond(f64),
    /// Tunnel payload bits per second (all streams together).
    BitsPerSecond(f64),
}

impl Rate {
    /// Parses `max`, frames per second (`1000`, `50kpps`) or bits per second with a unit
    /// (`100M`, `2.5Gbit`, `800kbps`: k, M, G are powers of 1000).
    pub fn parse(text: &str) -> Result<Rate> {
        let bad = |message: String| Error::Argument {
            field: "--rate".into(),
            message,
        };
        let t = text.trim();
        if t.eq_ignore_ascii_case("max") {
            return Ok(Rate::Max);
        }
        let (number, unit) = t.split_at(
            t.find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(t.len()),
        );
        let value: f64 = number
            .parse()
            .map_err(|_| bad(format!("`{text}` is not a number with an optional unit")))?;
        let (multiplier, rest) = match unit.chars().next() {
            Some('k' | 'K') => (1e3, &unit[1..]),
            Some('m' | 'M') => (1e6, &unit[1..]),
            Some('g' | 'G') => (1e9, &unit[1..]),
            _ => (1.0, unit),
        };
        let unit_lower = rest.to_ascii_lowercase();
        let rate = if unit_lower == "pps" || (unit_lower.is_empty() && multiplier == 1.0) {
            Rate::FramesPerSecond(value * multiplier)
        } else if matches!(unit_lower.as_str(), "" | "b" | "bit" | "bps" | "bit/s") {
            Rate::BitsPerSecond(value * multiplier)
        } else {
            return Err(bad(format!(
                "unknown unit in `{text}`: use frames/s (`1000`, `50kpps`), bit/s (`100M`, `2Gbit`) or `max`"
            )));
        };
        match rate {
            Rate::FramesPerSecond(v) | Rate::BitsPerSecond(v) if !(v > 0.0 && v.is_finite()) => {
                Err(bad(format!("`{text}` must be above zero")))
            }
            _ => Ok(rate),
        }
    }

    /// Frames per second for frames of `size` bytes, `None` for [`Rate::Max`].
    pub fn frames_per_second(&self, size: usize) -> Option<f64> {
        match *self {
            Rate::Max => None,
            Rate::FramesPerSecond(f) => Some(f),
            Rate::BitsPerSecond(b) => Some(b / (size as f64 * 8.0)),
        }
    }
}

/// Parses frame sizes: one (`1470`), a list (`64,512,1470`) or a sweep `FROM..TO:STEP`
/// (`64..9018:512`: 64, 576, …, and TO itself). Sizes are Ethernet frame lengths, which are
/// the tunnel datagrams' UDP payload lengths, from 60 to 65507 bytes.
pub fn parse_sizes(text: &str) -> Result<Vec<usize>> {
    let bad = |message: String| Error::Argument {
        field: "--size".into(),
        message,
    };
    let number = |t: &str| -> Result<usize> {
        let n: usize = t
            .trim()
            .parse()
            .map_err(|_| bad(format!("`{t}` is not a size in bytes")))?;
        if !(MIN_SIZE..=MAX_SIZE).contains(&n) {
            return Err(bad(format!(
                "{n} is outside {MIN_SIZE}..={MAX_SIZE} bytes (Ethernet minimum to largest UDP payload)"
            )));
        }
        Ok(n)
    };
    let mut sizes = Vec::new();
    for part in text.split(',') {
        if let Some((from, rest)) = part.split_once("..") {
            let (to, step) = rest
                .split_once(':')
                .ok_or_else(|| bad(format!("sweep `{part}` needs a step: FROM..TO:STEP")))?;
            let (from, to) = (number(from)?, number(to)?);
            let step: usize = step
                .trim()
                .parse()
                .ok()
                .filter(|s| *s > 0)
                .ok_or_else(|| bad(format!("step `{step}` must be a positive number")))?;
            if from > to {
                return Err(bad(format!("sweep `{part}` runs backwards")));
            }
            sizes.extend((from..=to).step_by(step));
            if sizes.last() != Some(&to) {
                sizes.push(to);
            }
        } else {
            sizes.push(number(part)?);
        }
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates() {
        assert_eq!(Rate::parse("max").unwrap(), Rate::Max);
        assert_eq!(Rate::parse("1000").unwrap(), Rate::FramesPerSecond(1000.0));
        assert_eq!(Rate::parse("50kpps").unwrap(), Rate::FramesPerSecond(50e3));
        assert_eq!(Rate::parse("100M").unwrap(), Rate::BitsPerSecond(100e6));
        assert_eq!(Rate::parse("2.5Gbit").unwrap(), Rate::BitsPerSecond(2.5e9));
        assert_eq!(Rate::parse("800kbps").unwrap(), Rate::BitsPerSecond(800e3));
        assert_eq!(Rate::parse("64bit").unwrap(), Rate::BitsPerSecond(64.0));
        for bad in ["", "fast", "10furlongs", "0", "-5", "1..2"] {
            let err = Rate::parse(bad).unwrap_err();
            assert!(err.is_input(), "{bad}: {err}");
        }
    }

    #[test]
    fn bit_rate_to_frames() {
        let r = Rate::BitsPerSecond(1e6);
        assert_eq!(r.frames_per_second(125), Some(1000.0));
        assert_eq!(Rate::Max.frames_per_second(64), None);
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_sizes("1470").unwrap(), vec![1470]);
        assert_eq!(parse_sizes("64,512,1470").unwrap(), vec![64, 512, 1470]);
        assert_eq!(
            parse_sizes("1000..2000:400").unwrap(),
            vec![1000, 1400, 1800, 2000]
        );
        assert_eq!(parse_sizes("60..100:20").unwrap(), vec![60, 80, 100]);
        for bad in ["59", "65508", "100..60:1", "60..100", "60..100:0", "x"] {
            assert!(parse_sizes(bad).unwrap_err().is_input(), "{bad}");
        }
    }
}
