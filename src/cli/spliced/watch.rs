//! The control-plane lines of `linkscope splice`: one on standard error per change of what
//! a direction shows (LLDP neighbour, STP view, LACP state), the summary lines, and the
//! `--expect` verdict.

use std::io::{self, IsTerminal, Write};
use std::time::Duration;

use crate::measure::l2::{Expect, View};
use crate::splice::watch::{Change, OnChange};
use crate::splice::{Direction, LinkStats};

use super::time_of_day;
use crate::plan::LinkNames;

/// Prints each change as `TIME LINK FROM > TO PROTO ...` on standard error (on a terminal,
/// over the refreshing status line, which the next status rewrites).
pub(in crate::cli) fn printer(names: Vec<LinkNames>) -> OnChange {
    let clear = if io::stderr().is_terminal() {
        "\r\x1b[K"
    } else {
        ""
    };
    Box::new(move |c: &Change<'_>| {
        let Some(n) = names.get(c.link) else {
            return;
        };
        let (from, to) = n.ends(c.direction);
        if let Some(text) = c.view.describe(c.protocol) {
            // A closed standard error must not stop the relay.
            let _ = writeln!(
                io::stderr(),
                "{clear}{} {} {from} > {to} {text}",
                time_of_day(c.timestamp_ns),
                n.link
            );
        }
    })
}

/// One line per direction this host carries that showed any control frame: the newest
/// state of each protocol.
pub(in crate::cli) fn print_summary(
    views: &[View],
    stats: &[LinkStats],
    names: &[LinkNames],
    err: &mut impl Write,
) -> io::Result<()> {
    for ((view, link), names) in views.iter().zip(stats).zip(names) {
        for direction in Direction::BOTH {
            if link.direction(direction).is_none() {
                continue;
            }
            let shown = view.direction(direction);
            let parts = shown.describe_all();
            if parts.is_empty() && shown.malformed() == 0 {
                continue;
            }
            let (from, to) = names.ends(direction);
            write!(err, "{} {from} > {to}: {}", names.link, parts.join("; "))?;
            if shown.malformed() > 0 {
                let sep = if parts.is_empty() { "" } else { "; " };
                write!(err, "{sep}{} malformed control frames", shown.malformed())?;
            }
            writeln!(err)?;
        }
    }
    Ok(())
}

/// Prints whether every link showed every expected protocol, naming what never came;
/// returns whether it did.
pub(in crate::cli) fn verdict(
    expect: &Expect,
    views: &[View],
    names: &[LinkNames],
    waited: Duration,
    err: &mut impl Write,
) -> io::Result<bool> {
    let mut missing = Vec::new();
    for (view, names) in views.iter().zip(names) {
        for e in expect.missing(view) {
            let (from, to) = names.ends(e.direction);
            missing.push(format!(
                "{} {} ({from} > {to}) on {}",
                e.protocol.name(),
                e.direction.label(),
                names.link
            ));
        }
    }
    let links: Vec<&str> = names.iter().map(|n| n.link.as_str()).collect();
    print_verdict(
        expect,
        &missing,
        &format!(" seen on {}", links.join(", ")),
        waited,
        err,
    )
}

/// Prints `expect: passed: …` (the expected protocols, then `passed_where`) when nothing is
/// `missing`, else `expect: FAILED: …` naming what never came in `waited`; returns whether
/// it passed. Splice and relay word their missing items themselves.
pub(in crate::cli) fn print_verdict(
    expect: &Expect,
    missing: &[String],
    passed_where: &str,
    waited: Duration,
    err: &mut impl Write,
) -> io::Result<bool> {
    if missing.is_empty() {
        let wanted: Vec<String> = expect.wanted().iter().map(ToString::to_string).collect();
        writeln!(err, "expect: passed: {}{passed_where}", wanted.join(", "))?;
        Ok(true)
    } else {
        writeln!(
            err,
            "expect: FAILED: never seen in {:.1} s: {}",
            waited.as_secs_f64(),
            missing.join(", ")
        )?;
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<LinkNames> {
        vec![LinkNames {
            link: "100:1-102:1".into(),
            a: "vm100:eth1".into(),
            b: "vm102:eth1".into(),
            detail: String::new(),
        }]
    }

    /// An LLDPDU with only the mandatory TLVs (chassis local "sw", port local "p", TTL 9).
    fn lldp() -> Vec<u8> {
        let mut f = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e, 2, 0, 0, 0, 0, 1, 0x88, 0xcc];
        f.extend_from_slice(&[0x02, 0x03, 0x07, b's', b'w']);
        f.extend_from_slice(&[0x04, 0x02, 0x07, b'p']);
        f.extend_from_slice(&[0x06, 0x02, 0x00, 0x09, 0, 0]);
        f
    }

    #[test]
    fn verdict_names_what_never_came() {
        let expect = Expect::parse(&["lldp,stp:b>a"], "--expect").unwrap();
        let mut views = vec![View::new()];
        views[0].record(Direction::AToB, 1, &lldp());
        let mut out = Vec::new();
        let passed = verdict(&expect, &views, &names(), Duration::from_secs(3), &mut out).unwrap();
        assert!(!passed);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "expect: FAILED: never seen in 3.0 s: lldp b>a (vm102:eth1 > vm100:eth1) on \
             100:1-102:1, stp b>a (vm102:eth1 > vm100:eth1) on 100:1-102:1\n"
        );
        let expect = Expect::parse(&["lldp:a>b"], "--expect").unwrap();
        let mut out = Vec::new();
        assert!(verdict(&expect, &views, &names(), Duration::ZERO, &mut out).unwrap());
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "expect: passed: lldp a>b seen on 100:1-102:1\n"
        );
    }
}
