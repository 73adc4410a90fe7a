//! The impairment SPEC: `key=value` words separated by spaces, with netem's meaning
//! (tc-netem(8)), and the `[DIR:]SPEC` form of `--impair`.
//!
//! Accepted units, stated once here and in docs/impair.md:
//! - TIME: a number with `ns`, `us`/`usec`, `ms`/`msec` or `s`/`sec`; a bare number is
//!   refused (tc reads it as microseconds while tc-netem(8) speaks of milliseconds).
//! - RATE: as tc, case-insensitive: `bit`, `kbit`, `mbit`, `gbit`, `tbit` (bits/s, powers of
//!   1000), `kibit`, `mibit`, `gibit`, `tibit` (powers of 1024), and `bps`, `kbps`, `mbps`,
//!   `gbps`, `tbps`, `kibps`, `mibps`, `gibps`, `tibps` (BYTES per second, as tc: `kbps` is
//!   8,000 bit/s). A bare number is refused.
//! - PERCENT: a number followed by `%`, 0 to 100.

use std::fmt;
use std::time::Duration;

use crate::direction::Direction;
use crate::{Error, Result};

/// netem's default queue limit (packets).
pub const DEFAULT_LIMIT: usize = 1000;

/// How frames are chosen for loss.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Loss {
    /// Independent loss with probability `p`, each draw correlated with the last by `corr`
    /// (netem's `loss random P CORR`, which netem itself calls deprecated: the correlation
    /// also lowers the effective loss rate).
    Random { p: f64, corr: f64 },
    /// Gilbert–Elliott: `p` good→bad and `r` bad→good transition probabilities, `bad_loss`
    /// (netem's 1-h) the loss probability in the bad state, `good_loss` (1-k) in the good.
    GilbertElliott {
        p: f64,
        r: f64,
        bad_loss: f64,
        good_loss: f64,
    },
}

/// Distribution of the jitter around `delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Dist {
    /// Uniform in `[delay - jitter, delay + jitter]`: what the kernel does without a table.
    #[default]
    Uniform,
    /// Normal with standard deviation `jitter`.
    Normal,
    /// Pareto (shape 3, as iproute2's table), shifted to mean 0, scaled by `jitter`.
    Pareto,
    /// A mix of one quarter normal and three quarters Pareto, as iproute2's table.
    ParetoNormal,
}

impl Dist {
    fn name(self) -> &'static str {
        match self {
            Dist::Uniform => "uniform",
            Dist::Normal => "normal",
            Dist::Pareto => "pareto",
            Dist::ParetoNormal => "paretonormal",
        }
    }
}

/// One direction's impairment. The default impairs nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub loss: Option<Loss>,
    pub delay: Duration,
    pub jitter: Duration,
    pub dist: Dist,
    /// Bits per second of the token bucket on frame bytes.
    pub rate: Option<u64>,
    /// Frames the delay line and rate queue may hold; more are tail-dropped.
    pub limit: usize,
    pub duplicate: f64,
    pub reorder: f64,
    pub gap: u32,
    pub corrupt: f64,
    pub mtu: Option<usize>,
    pub down: bool,
}

impl Default for Spec {
    fn default() -> Spec {
        Spec {
            loss: None,
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            dist: Dist::Uniform,
            rate: None,
            limit: DEFAULT_LIMIT,
            duplicate: 0.0,
            reorder: 0.0,
            gap: 0,
            corrupt: 0.0,
            mtu: None,
            down: false,
        }
    }
}

impl Spec {
    /// True when this spec changes nothing.
    pub fn is_clear(&self) -> bool {
        *self == Spec::default()
    }

    /// True when frames may be held (delay, jitter or rate).
    pub fn holds(&self) -> bool {
        !self.delay.is_zero() || !self.jitter.is_zero() || self.rate.is_some()
    }

    /// Parses space-separated `key=value` words (and the bare word `down`). Errors name the
    /// key and use `field` (e.g. `--impair`) as the argument.
    pub fn parse(text: &str, field: &str) -> Result<Spec> {
        let mut spec = Spec::default();
        let mut seen: Vec<&str> = Vec::new();
        let mut loss_corr = None;
        let mut limit_set = false;
        let mut gap_set = false;
        for word in text.split_whitespace() {
            let (key, value) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (word, None),
            };
            let bad = |message: String| Error::Argument {
                field: field.into(),
                message: format!("{key}: {message}"),
            };
            if seen.contains(&key) {
                return Err(bad("given twice".into()));
            }
            seen.push(key);
            if key == "down" {
                if value.is_some() {
                    return Err(bad("takes no value (write `down`)".into()));
                }
                spec.down = true;
                continue;
            }
            let Some(value) = value else {
                return Err(bad(if KEYS.contains(&key) {
                    format!("expected {key}=VALUE")
                } else {
                    unknown_key()
                }));
            };
            match key {
                "loss" => {
                    spec.loss = Some(Loss::Random {
                        p: percent(value).map_err(bad)?,
                        corr: 0.0,
                    })
                }
                "loss-corr" => loss_corr = Some(percent(value).map_err(bad)?),
                "gemodel" => spec.loss = Some(gemodel(value).map_err(bad)?),
                "delay" => spec.delay = time(value).map_err(bad)?,
                "jitter" => spec.jitter = time(value).map_err(bad)?,
                "dist" => {
                    spec.dist = match value {
                        "uniform" => Dist::Uniform,
                        "normal" => Dist::Normal,
                        "pareto" => Dist::Pareto,
                        "paretonormal" => Dist::ParetoNormal,
                        _ => {
                            return Err(bad(format!(
                                "{value:?}: expected uniform, normal, pareto or paretonormal"
                            )));
                        }
                    }
                }
                "rate" => spec.rate = Some(rate(value).map_err(bad)?),
                "limit" => {
                    spec.limit = count(value, 1, 1 << 20).map_err(bad)? as usize;
                    limit_set = true;
                }
                "duplicate" => spec.duplicate = percent(value).map_err(bad)?,
                "reorder" => spec.reorder = percent(value).map_err(bad)?,
                "gap" => {
                    spec.gap = count(value, 1, u64::from(u32::MAX)).map_err(bad)? as u32;
                    gap_set = true;
                }
                "corrupt" => spec.corrupt = percent(value).map_err(bad)?,
                "mtu" => spec.mtu = Some(count(value, 1, 65535).map_err(bad)? as usize),
                _ => return Err(bad(unknown_key())),
            }
        }
        let conflict = |key: &str, message: &str| Error::Argument {
            field: field.into(),
            message: format!("{key}: {message}"),
        };
        if seen.contains(&"loss") && seen.contains(&"gemodel") {
            return Err(conflict(
                "gemodel",
                "give either loss= or gemodel=, not both",
            ));
        }
        if let Some(c) = loss_corr {
            match &mut spec.loss {
                Some(Loss::Random { corr, .. }) => *corr = c,
                _ => return Err(conflict("loss-corr", "needs loss=P%")),
            }
        }
        if seen.contains(&"dist") && spec.jitter.is_zero() {
            return Err(conflict("dist", "needs jitter=TIME"));
        }
        if seen.contains(&"reorder") && spec.delay.is_zero() {
            return Err(conflict(
                "reorder",
                "needs delay=TIME (frames overtake delayed ones)",
            ));
        }
        if gap_set && !seen.contains(&"reorder") {
            return Err(conflict("gap", "needs reorder=P%"));
        }
        if seen.contains(&"reorder") && !gap_set {
            // iproute2 sets gap 1 when reorder is given without one.
            spec.gap = 1;
        }
        if limit_set && !spec.holds() {
            return Err(conflict("limit", "needs delay, jitter or rate (a queue)"));
        }
        Ok(spec)
    }
}

/// Every key a SPEC may hold, for the error message.
const KEYS: [&str; 14] = [
    "loss",
    "loss-corr",
    "gemodel",
    "delay",
    "jitter",
    "dist",
    "rate",
    "limit",
    "duplicate",
    "reorder",
    "gap",
    "corrupt",
    "mtu",
    "down",
];

fn unknown_key() -> String {
    format!("unknown key; expected one of {}", KEYS.join(", "))
}

fn percent(text: &str) -> std::result::Result<f64, String> {
    let number = text
        .strip_suffix('%')
        .ok_or_else(|| format!("{text:?}: expected a percentage such as 10%"))?;
    match number.parse::<f64>() {
        Ok(v) if (0.0..=100.0).contains(&v) => Ok(v / 100.0),
        _ => Err(format!("{text:?}: expected a percentage from 0% to 100%")),
    }
}

fn gemodel(text: &str) -> std::result::Result<Loss, String> {
    let parts: Vec<&str> = text.split(',').collect();
    if parts.len() > 4 {
        return Err(format!("{text:?}: expected p[,r[,1-h[,1-k]]]"));
    }
    let mut values = Vec::with_capacity(4);
    for part in &parts {
        values.push(percent(part)?);
    }
    let p = values[0];
    Ok(Loss::GilbertElliott {
        p,
        // tc-netem(8): given p alone, r = 1-p, 1-h = 1 and 1-k = 0 (Bernoulli).
        r: values.get(1).copied().unwrap_or(1.0 - p),
        bad_loss: values.get(2).copied().unwrap_or(1.0),
        good_loss: values.get(3).copied().unwrap_or(0.0),
    })
}

fn count(text: &str, min: u64, max: u64) -> std::result::Result<u64, String> {
    match text.parse::<u64>() {
        Ok(v) if (min..=max).contains(&v) => Ok(v),
        _ => Err(format!(
            "{text:?}: expected a whole number from {min} to {max}"
        )),
    }
}

/// Splits a number from its unit.
fn number_unit(text: &str) -> Option<(f64, &str)> {
    let at = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let value: f64 = text[..at].parse().ok()?;
    (value.is_finite() && value >= 0.0).then_some((value, &text[at..]))
}

fn time(text: &str) -> std::result::Result<Duration, String> {
    let bad = || format!("{text:?}: expected a time such as 10ms (units ns, us, ms, s)");
    let (value, unit) = number_unit(text).ok_or_else(bad)?;
    let scale = match unit {
        "ns" | "nsec" => 1e-9,
        "us" | "usec" => 1e-6,
        "ms" | "msec" => 1e-3,
        "s" | "sec" => 1.0,
        _ => return Err(bad()),
    };
    let seconds = value * scale;
    if seconds > 3600.0 {
        return Err(format!("{text:?}: at most an hour"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn rate(text: &str) -> std::result::Result<u64, String> {
    let bad = || {
        format!("{text:?}: expected a rate such as 50Mbit (bit, kbit, mbit, gbit; bps = bytes/s)")
    };
    let (value, unit) = number_unit(text).ok_or_else(bad)?;
    let unit = unit.to_ascii_lowercase();
    let (prefix, bytes) = if let Some(p) = unit.strip_suffix("bit") {
        (p, false)
    } else if let Some(p) = unit.strip_suffix("bps") {
        (p, true)
    } else {
        return Err(bad());
    };
    let multiplier: f64 = match prefix {
        "" => 1.0,
        "k" => 1e3,
        "m" => 1e6,
        "g" => 1e9,
        "t" => 1e12,
        "ki" => 1024.0,
        "mi" => 1024.0 * 1024.0,
        "gi" => 1024.0 * 1024.0 * 1024.0,
        "ti" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        _ => return Err(bad()),
    };
    let bits = value * multiplier * if bytes { 8.0 } else { 1.0 };
    if !(1.0..=1e13).contains(&bits) {
        return Err(format!("{text:?}: expected 1 bit/s to 10 Tbit/s"));
    }
    Ok(bits.round() as u64)
}

fn fmt_percent(f: &mut fmt::Formatter<'_>, value: f64) -> fmt::Result {
    write!(f, "{}%", (value * 100.0 * 1e6).round() / 1e6)
}

fn fmt_time(f: &mut fmt::Formatter<'_>, value: Duration) -> fmt::Result {
    let ns = value.as_nanos();
    if ns.is_multiple_of(1_000_000) {
        write!(f, "{}ms", ns / 1_000_000)
    } else if ns.is_multiple_of(1_000) {
        write!(f, "{}us", ns / 1_000)
    } else {
        write!(f, "{ns}ns")
    }
}

/// The canonical SPEC text, which [`Spec::parse`] reads back to the same spec; empty when
/// clear.
impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        let mut word = |f: &mut fmt::Formatter<'_>, key: &str| -> fmt::Result {
            write!(f, "{sep}{key}")?;
            sep = " ";
            Ok(())
        };
        match self.loss {
            Some(Loss::Random { p, corr }) => {
                word(f, "loss=")?;
                fmt_percent(f, p)?;
                if corr > 0.0 {
                    word(f, "loss-corr=")?;
                    fmt_percent(f, corr)?;
                }
            }
            Some(Loss::GilbertElliott {
                p,
                r,
                bad_loss,
                good_loss,
            }) => {
                word(f, "gemodel=")?;
                for (i, v) in [p, r, bad_loss, good_loss].into_iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    fmt_percent(f, v)?;
                }
            }
            None => {}
        }
        if !self.delay.is_zero() {
            word(f, "delay=")?;
            fmt_time(f, self.delay)?;
        }
        if !self.jitter.is_zero() {
            word(f, "jitter=")?;
            fmt_time(f, self.jitter)?;
            if self.dist != Dist::Uniform {
                word(f, "dist=")?;
                f.write_str(self.dist.name())?;
            }
        }
        if let Some(bits) = self.rate {
            word(f, "rate=")?;
            write!(f, "{bits}bit")?;
        }
        if self.limit != DEFAULT_LIMIT {
            word(f, "limit=")?;
            write!(f, "{}", self.limit)?;
        }
        if self.duplicate > 0.0 {
            word(f, "duplicate=")?;
            fmt_percent(f, self.duplicate)?;
        }
        if self.gap > 0 {
            word(f, "reorder=")?;
            fmt_percent(f, self.reorder)?;
            word(f, "gap=")?;
            write!(f, "{}", self.gap)?;
        }
        if self.corrupt > 0.0 {
            word(f, "corrupt=")?;
            fmt_percent(f, self.corrupt)?;
        }
        if let Some(mtu) = self.mtu {
            word(f, "mtu=")?;
            write!(f, "{mtu}")?;
        }
        if self.down {
            word(f, "down")?;
        }
        Ok(())
    }
}

/// Which directions an `--impair` applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directions {
    One(Direction),
    Both,
}

impl Directions {
    /// True when `direction` is among these.
    pub fn includes(self, direction: Direction) -> bool {
        match self {
            Directions::Both => true,
            Directions::One(d) => d == direction,
        }
    }
}

/// One `--impair [DIR:]SPEC`.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectedSpec {
    pub directions: Directions,
    pub spec: Spec,
}

impl DirectedSpec {
    /// Parses `[DIR:]SPEC`, DIR being `a>b` or `b>a` (both when absent).
    pub fn parse(text: &str, field: &str) -> Result<DirectedSpec> {
        let text = text.trim_start();
        let (directions, rest) = if let Some(rest) = text.strip_prefix("a>b:") {
            (Directions::One(Direction::AToB), rest)
        } else if let Some(rest) = text.strip_prefix("b>a:") {
            (Directions::One(Direction::BToA), rest)
        } else if let Some((head, _)) = text.split_once(':')
            && !head.contains(char::is_whitespace)
            && !head.contains('=')
        {
            return Err(Error::Argument {
                field: field.into(),
                message: format!("{head:?}: a direction is a>b or b>a"),
            });
        } else {
            (Directions::Both, text)
        };
        Ok(DirectedSpec {
            directions,
            spec: Spec::parse(rest, field)?,
        })
    }
}

/// The specs of both directions after applying every `--impair` in order (a later one
/// replaces an earlier one for the directions it names).
pub fn resolve(specs: &[DirectedSpec]) -> [Spec; 2] {
    let mut out = [Spec::default(), Spec::default()];
    for directed in specs {
        for (i, direction) in Direction::BOTH.into_iter().enumerate() {
            if directed.directions.includes(direction) {
                out[i] = directed.spec.clone();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Spec> {
        Spec::parse(text, "--impair")
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[test]
    fn every_key_parses_with_netem_meaning() {
        let spec = parse(
            "loss=10% loss-corr=25% delay=10ms jitter=2ms dist=normal rate=50Mbit limit=20 \
             duplicate=1% reorder=25% gap=5 corrupt=0.5% mtu=1400",
        )
        .unwrap();
        assert_eq!(spec.loss, Some(Loss::Random { p: 0.1, corr: 0.25 }));
        assert_eq!(spec.delay, Duration::from_millis(10));
        assert_eq!(spec.jitter, Duration::from_millis(2));
        assert_eq!(spec.dist, Dist::Normal);
        assert_eq!(spec.rate, Some(50_000_000));
        assert_eq!(spec.limit, 20);
        assert_eq!(spec.duplicate, 0.01);
        assert_eq!((spec.reorder, spec.gap), (0.25, 5));
        assert_eq!(spec.corrupt, 0.005);
        assert_eq!(spec.mtu, Some(1400));
        assert!(!spec.down);
        assert!(parse("down").unwrap().down);
        assert!(parse("").unwrap().is_clear());
    }

    #[test]
    fn gemodel_defaults_follow_tc_netem() {
        let Some(Loss::GilbertElliott {
            p,
            r,
            bad_loss,
            good_loss,
        }) = parse("gemodel=1%").unwrap().loss
        else {
            panic!("not gemodel");
        };
        assert_eq!((p, r, bad_loss, good_loss), (0.01, 0.99, 1.0, 0.0));
        let Some(Loss::GilbertElliott { r, bad_loss, .. }) =
            parse("gemodel=1%,20%,80%").unwrap().loss
        else {
            panic!("not gemodel");
        };
        assert_eq!((r, bad_loss), (0.2, 0.8));
    }

    #[test]
    fn rates_and_times_use_tc_units() {
        let rate = |t: &str| parse(&format!("rate={t}")).unwrap().rate.unwrap();
        assert_eq!(rate("50Mbit"), 50_000_000);
        assert_eq!(rate("50mbit"), 50_000_000);
        assert_eq!(rate("100kbit"), 100_000);
        assert_eq!(rate("1Gbit"), 1_000_000_000);
        assert_eq!(rate("1kibit"), 1024);
        assert_eq!(rate("1000bps"), 8000);
        assert_eq!(rate("1kbps"), 8000);
        let delay = |t: &str| parse(&format!("delay={t}")).unwrap().delay;
        assert_eq!(delay("1.5ms"), Duration::from_micros(1500));
        assert_eq!(delay("250us"), Duration::from_micros(250));
        assert_eq!(delay("2s"), Duration::from_secs(2));
        assert_eq!(reorder_gap("delay=1ms reorder=10%"), 1);
    }

    fn reorder_gap(text: &str) -> u32 {
        parse(text).unwrap().gap
    }

    #[test]
    fn malformed_specs_name_the_key() {
        for (text, key) in [
            ("loss=10", "loss: "),
            ("loss=120%", "loss: "),
            ("delay=10", "delay: "),
            ("delay=tenms", "delay: "),
            ("jitter=1xs", "jitter: "),
            ("rate=50", "rate: "),
            ("rate=50Mbyte", "rate: "),
            ("limit=0 delay=1ms", "limit: "),
            ("mtu=70000", "mtu: "),
            ("gap=3", "gap: "),
            ("reorder=5%", "reorder: "),
            ("dist=normal", "dist: "),
            ("jitter=1ms dist=cauchy", "dist: "),
            ("gemodel=1%,2%,3%,4%,5%", "gemodel: "),
            ("loss=1% gemodel=1%", "gemodel: "),
            ("loss-corr=5%", "loss-corr: "),
            ("colour=blue", "colour: unknown key"),
            ("delay", "delay: expected delay=VALUE"),
            ("down=1", "down: "),
            ("loss=1% loss=2%", "loss: given twice"),
            ("limit=5", "limit: "),
        ] {
            let message = error(text);
            assert!(
                message.starts_with(&format!("--impair: {key}")),
                "{text}: {message}"
            );
        }
    }

    #[test]
    fn display_reads_back_to_the_same_spec() {
        for text in [
            "loss=10% loss-corr=25% delay=10ms jitter=2ms dist=pareto rate=50Mbit limit=20 \
             duplicate=1% reorder=25% gap=5 corrupt=0.5% mtu=1400",
            "gemodel=1%,10%,100%,0% delay=250us",
            "down",
            "",
        ] {
            let spec = parse(text).unwrap();
            let shown = spec.to_string();
            assert_eq!(parse(&shown).unwrap(), spec, "{text} -> {shown}");
        }
        assert_eq!(
            parse("delay=10ms loss=1%").unwrap().to_string(),
            "loss=1% delay=10ms"
        );
    }

    #[test]
    fn directions_apply_in_order() {
        let specs = [
            DirectedSpec::parse("delay=10ms", "--impair").unwrap(),
            DirectedSpec::parse("b>a:loss=5%", "--impair").unwrap(),
        ];
        let [ab, ba] = resolve(&specs);
        assert_eq!(ab.delay, Duration::from_millis(10));
        assert!(ab.loss.is_none());
        assert_eq!(ba.loss, Some(Loss::Random { p: 0.05, corr: 0.0 }));
        assert!(ba.delay.is_zero());
        let err = DirectedSpec::parse("a<b:loss=1%", "--impair").unwrap_err();
        assert!(
            err.to_string().contains("a direction is a>b or b>a"),
            "{err}"
        );
    }
}
