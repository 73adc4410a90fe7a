//! Wireshark's extcap protocol: what `linkscope extcap` answers when Wireshark (or tshark,
//! dumpcap) asks for interfaces, link types and options, and where it is installed.
//!
//! Each link of the mapping is one extcap interface, `linkscope-{link}` (e.g.
//! `linkscope-100:1-102:1`). Wireshark runs an executable of its extcap folder with
//! `--extcap-interfaces`, `--extcap-dlts`, `--extcap-config`, then `--capture --fifo PATH`;
//! `linkscope extcap install` puts there a two-line script that runs this binary with the
//! mapping. The capture itself is the splice writing pcapng to the fifo (see `cli::extcap`).
//!
//! A remote host's links (`extcap install --remote [USER@]HOST[:PORT]`) are interfaces
//! `linkscope-{link}@{host}`, listed and captured through the system's `ssh` client.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::plan::Link;

/// Prefix of every extcap interface value, so ours never collide with another extcap's.
const PREFIX: &str = "linkscope-";

/// The name of the script installed in Wireshark's extcap folders.
pub const SCRIPT_NAME: &str = "linkscope";

/// The extcap interface value of a link.
pub fn interface_value(link: &Link) -> String {
    format!("{PREFIX}{}", link.name)
}

/// `--extcap-interfaces`: the extcap version line, then one interface per link.
pub fn interfaces(links: &[Link]) -> String {
    let mut out = format!(
        "extcap {{version={}}}{{display=linkscope: QEMU UDP socket links}}\n",
        env!("CARGO_PKG_VERSION")
    );
    for link in links {
        let _ = writeln!(
            out,
            "interface {{value={}}}{{display=linkscope {} (vm{}:eth{} - vm{}:eth{})}}",
            interface_value(link),
            link.name,
            link.a.vm,
            link.a.eth,
            link.b.vm,
            link.b.eth
        );
    }
    out
}

/// A host reached over SSH: `[USER@]HOST[:PORT]` (`[V6]:PORT` for an IPv6 address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Remote {
    /// `[USER@]HOST`, as ssh takes it.
    pub destination: String,
    /// The host alone, for interface names.
    pub host: String,
    /// The SSH port, when not ssh's default (or the user's ssh_config's).
    pub port: Option<u16>,
}

impl Remote {
    /// Parses `[USER@]HOST[:PORT]`; `field` names the argument in errors.
    pub fn parse(spec: &str, field: &str) -> crate::Result<Remote> {
        let bad = |message: &str| crate::Error::Argument {
            field: field.into(),
            message: format!("{spec:?}: {message} (expected [USER@]HOST[:PORT])"),
        };
        let (user, rest) = match spec.rsplit_once('@') {
            Some((user, rest)) if !user.is_empty() => (Some(user), rest),
            Some(_) => return Err(bad("empty user")),
            None => (None, spec),
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6.split_once(']').ok_or_else(|| bad("no closing ]"))?;
            match after.strip_prefix(':') {
                Some(port) => (host, Some(port)),
                None if after.is_empty() => (host, None),
                None => return Err(bad("junk after ]")),
            }
        } else {
            match rest.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        if host.is_empty() || host.starts_with('-') || host.contains(char::is_whitespace) {
            return Err(bad("not a host name"));
        }
        let port = port
            .map(|p| p.parse::<u16>().ok().filter(|&p| p > 0))
            .map(|p| p.ok_or_else(|| bad("the port is not a number from 1 to 65535")))
            .transpose()?;
        Ok(Remote {
            destination: user.map_or_else(|| host.to_owned(), |u| format!("{u}@{host}")),
            host: host.to_owned(),
            port,
        })
    }
}

/// The interface value of a remote host's link: `linkscope-{link}@{host}`.
pub fn remote_value(link: &str, host: &str) -> String {
    format!("{PREFIX}{link}@{host}")
}

/// The link named by a remote interface value, when it is one of `host`'s.
pub fn remote_link<'a>(value: &'a str, host: &str) -> Option<&'a str> {
    value
        .strip_prefix(PREFIX)?
        .strip_suffix(host)?
        .strip_suffix('@')
        .filter(|link| !link.is_empty())
}

/// The remote's `--extcap-interfaces` answer rewritten for this side: each interface value
/// and display name carries the host, so several hosts' links (and this host's) coexist.
pub fn remote_interfaces(listing: &str, host: &str) -> String {
    let mut out = String::new();
    for line in listing.lines() {
        let rewritten = if line.starts_with("extcap ") {
            line.replace(
                "{display=linkscope: ",
                &format!("{{display=linkscope on {host}: "),
            )
        } else if let Some(rest) = line.strip_prefix("interface {value=") {
            let Some((value, display)) = rest.split_once('}') else {
                continue;
            };
            let Some(link) = value.strip_prefix(PREFIX) else {
                continue;
            };
            let display = display
                .strip_suffix('}')
                .map_or_else(|| display.to_owned(), |d| format!("{d} on {host}}}"));
            format!("interface {{value={}}}{display}", remote_value(link, host))
        } else {
            continue;
        };
        out.push_str(&rewritten);
        out.push('\n');
    }
    out
}

/// `--extcap-dlts`: the link type of every interface, Ethernet.
pub fn dlts() -> &'static str {
    "dlt {number=1}{name=EN10MB}{display=Ethernet}\n"
}

/// `--extcap-config`: the options Wireshark offers in the interface's dialog (Capture
/// Options, the gear beside the interface), grouped in tabs; each reaches the splice that
/// captures the link.
pub fn config() -> &'static str {
    concat!(
        "arg {number=0}{call=--snaplen}{display=Snapshot length}{type=unsigned}{default=0}",
        "{tooltip=Bytes kept of each frame; 0 keeps frames whole}{group=Capture}\n",
        "arg {number=1}{call=--expect}{display=Expect control protocols}{type=string}",
        "{placeholder=lldp,stp:a>b}{tooltip=End the capture once these have crossed the link ",
        "(lldp, stp, lacp, each optionally :a>b or :b>a), or fail naming what never came}",
        "{group=Checks}\n",
        "arg {number=2}{call=--expect-timeout}{display=Expect timeout (seconds)}{type=double}",
        "{default=60}{tooltip=How long to wait for the expected protocols}{group=Checks}\n",
        "arg {number=3}{call=--measure}{display=Measure the link}{type=boolflag}{default=false}",
        "{tooltip=Rates, loss, latency and fragmentation, written to the report}",
        "{group=Measurements}\n",
        "arg {number=4}{call=--report}{display=Measurement report (JSON)}{type=fileselect}",
        "{mustexist=false}{tooltip=One JSON object per interval, then the final one}",
        "{group=Measurements}\n",
        "arg {number=5}{call=--stats-interval}{display=Report interval (seconds)}{type=double}",
        "{default=1}{group=Measurements}\n",
        "arg {number=6}{call=--host-mtu}{display=Host MTU (bytes)}{type=unsigned}",
        "{range=68,65535}{tooltip=The link's host_mtu for the fragmentation figures ",
        "(default: the mapping's)}{group=Measurements}\n",
        "arg {number=7}{call=--impair}{display=Impairment}{type=string}",
        "{placeholder=delay=10ms loss=1%}{tooltip=netem-style [DIR:]SPEC for the link while it ",
        "is captured (loss, delay, jitter, rate, duplicate, reorder, corrupt, mtu, down); ",
        "linkscope ctl changes it live}{group=Impairment}\n",
        "arg {number=8}{call=--seed}{display=Random seed}{type=unsigned}",
        "{tooltip=The same seed makes the same random choices}{group=Impairment}\n",
    )
}

/// The link an extcap interface value names.
pub fn find<'a>(links: &'a [Link], value: &str) -> crate::Result<&'a Link> {
    value
        .strip_prefix(PREFIX)
        .and_then(|name| crate::plan::find_link(links, name).ok())
        .ok_or_else(|| crate::Error::Argument {
            field: "--extcap-interface".into(),
            message: format!(
                "{value:?} is not a link of the mapping (expected one of: {})",
                links
                    .iter()
                    .map(interface_value)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        })
}

/// Wireshark's version (major, minor) from the first line of `tshark --version` or
/// `wireshark --version`, e.g. `TShark (Wireshark) 4.0.17 (Git v4.0.17 ...)`.
pub fn wireshark_version(version_output: &str) -> Option<(u32, u32)> {
    let first = version_output.lines().next()?;
    first.split_whitespace().find_map(|word| {
        let mut parts = word.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        parts.next()?;
        Some((major, minor))
    })
}

/// The personal extcap folder from `tshark -G folders`: its `Personal Extcap path` (printed
/// by the Wireshark versions that have a folder of their own for it, from 4.2 on), else the
/// `extcap` folder of its `Personal configuration` (4.0 and before).
pub fn personal_dir(folders: &str) -> Option<PathBuf> {
    let value = |key: &str| {
        folders.lines().find_map(|line| {
            let (k, v) = line.split_once(':')?;
            (k.trim() == key).then(|| PathBuf::from(v.trim()))
        })
    };
    value("Personal Extcap path")
        .or_else(|| value("Personal configuration").map(|c| c.join("extcap")))
}

/// Where a Wireshark version looks for a user's extcap programs: the personal configuration
/// folder's `extcap` up to 4.0 (`$XDG_CONFIG_HOME/wireshark/extcap`, by default
/// `~/.config/wireshark/extcap`), `~/.local/lib/wireshark/extcap` from 4.2 on. Without a
/// known version, both.
pub fn install_dirs(
    home: &Path,
    config_home: Option<&Path>,
    version: Option<(u32, u32)>,
) -> Vec<PathBuf> {
    let old = config_home
        .map_or_else(|| home.join(".config"), Path::to_path_buf)
        .join("wireshark/extcap");
    let new = home.join(".local/lib/wireshark/extcap");
    match version {
        Some(v) if v < (4, 2) => vec![old],
        Some(_) => vec![new],
        None => vec![old, new],
    }
}

/// The script Wireshark runs: this binary's `extcap` subcommand with `args` (the mapping,
/// and for a remote host how to reach it).
pub fn script(linkscope: &Path, args: &[String]) -> String {
    let mut line = format!("exec {} extcap", shell_quote(&linkscope.to_string_lossy()));
    for arg in args {
        line.push(' ');
        line.push_str(&shell_quote(arg));
    }
    format!(
        "#!/bin/sh\n# Installed by `linkscope extcap install`: Wireshark's interfaces for the \
         links of a mapping.\n{line} \"$@\"\n"
    )
}

/// The name of the script for `remote`'s links (`linkscope` for this host's): one per host,
/// so this host's and several remotes' install side by side.
pub fn script_name(remote: Option<&Remote>) -> String {
    match remote {
        None => SCRIPT_NAME.to_owned(),
        Some(r) => format!(
            "{SCRIPT_NAME}-{}",
            r.host
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                })
                .collect::<String>()
        ),
    }
}

/// Writes `script` into `dir` as `name` (the folder created if missing), executable; returns
/// its path.
pub fn install(dir: &Path, name: &str, script: &str) -> crate::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    let io = |source| crate::Error::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::write(&path, script).map_err(io)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    Ok(path)
}

/// Single-quotes a word for sh.
pub fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::links::testing::link;

    #[test]
    fn interfaces_list_one_line_per_link() {
        let text = interfaces(&[link()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("extcap {version="), "{text}");
        assert_eq!(
            lines[1],
            "interface {value=linkscope-100:1-102:1}{display=linkscope 100:1-102:1 (vm100:eth1 - vm102:eth1)}"
        );
    }

    #[test]
    fn find_takes_our_values_only() {
        let links = [link()];
        assert_eq!(
            find(&links, "linkscope-100:1-102:1").unwrap().name,
            "100:1-102:1"
        );
        let err = find(&links, "100:1-102:1").unwrap_err();
        assert!(err.is_input());
        assert!(err.to_string().contains("linkscope-100:1-102:1"), "{err}");
    }

    #[test]
    fn versions_choose_the_folder() {
        let version = |s| wireshark_version(s);
        assert_eq!(
            version("TShark (Wireshark) 4.0.17 (Git v4.0.17 packaged as 4.0.17-0+deb12u3).\n"),
            Some((4, 0))
        );
        assert_eq!(
            version("Wireshark 4.2.2 (Git v4.2.2 packaged as 4.2.2-1.1build3).\n"),
            Some((4, 2))
        );
        assert_eq!(version("nonsense"), None);
        let home = Path::new("/home/u");
        assert_eq!(
            install_dirs(home, None, Some((4, 0))),
            [PathBuf::from("/home/u/.config/wireshark/extcap")]
        );
        assert_eq!(
            install_dirs(home, Some(Path::new("/x")), Some((3, 6))),
            [PathBuf::from("/x/wireshark/extcap")]
        );
        assert_eq!(
            install_dirs(home, None, Some((4, 4))),
            [PathBuf::from("/home/u/.local/lib/wireshark/extcap")]
        );
        assert_eq!(install_dirs(home, None, None).len(), 2);
    }

    #[test]
    fn the_personal_folder_comes_from_tshark() {
        let v40 = "Temp:                \t/tmp\nPersonal configuration:\t/home/u/.config/wireshark\n\
                   Extcap path:         \t/usr/lib/x86_64-linux-gnu/wireshark/extcap\n";
        assert_eq!(
            personal_dir(v40),
            Some(PathBuf::from("/home/u/.config/wireshark/extcap"))
        );
        let v44 = "Personal configuration:\t/home/u/.config/wireshark\n\
                   Personal Extcap path:\t/home/u/.local/lib/wireshark/extcap\n\
                   Global Extcap path:\t/usr/lib/x86_64-linux-gnu/wireshark/extcap\n";
        assert_eq!(
            personal_dir(v44),
            Some(PathBuf::from("/home/u/.local/lib/wireshark/extcap"))
        );
        assert_eq!(personal_dir("nothing"), None);
    }

    #[test]
    fn remotes_parse_and_name_their_interfaces() {
        let r = Remote::parse("root@pve1:2222", "--remote").unwrap();
        assert_eq!(
            (r.destination.as_str(), r.host.as_str(), r.port),
            ("root@pve1", "pve1", Some(2222))
        );
        let r = Remote::parse("pve1", "--remote").unwrap();
        assert_eq!((r.destination.as_str(), r.port), ("pve1", None));
        let r = Remote::parse("[::1]:22", "--remote").unwrap();
        assert_eq!((r.destination.as_str(), r.port), ("::1", Some(22)));
        for bad in ["", "@h", "h:0", "h:x", "-oProxyCommand=x", "[::1"] {
            let err = Remote::parse(bad, "--remote").unwrap_err();
            assert!(
                err.is_input() && err.to_string().starts_with("--remote:"),
                "{err}"
            );
        }
        let listing = interfaces(&[link()]);
        let remote = remote_interfaces(&listing, "pve1");
        let lines: Vec<&str> = remote.lines().collect();
        assert!(
            lines[0].contains("{display=linkscope on pve1: "),
            "{remote}"
        );
        assert_eq!(
            lines[1],
            "interface {value=linkscope-100:1-102:1@pve1}{display=linkscope 100:1-102:1 (vm100:eth1 - vm102:eth1) on pve1}"
        );
        assert_eq!(
            remote_link("linkscope-100:1-102:1@pve1", "pve1"),
            Some("100:1-102:1")
        );
        assert_eq!(remote_link("linkscope-100:1-102:1@pve2", "pve1"), None);
        assert_eq!(remote_link("linkscope-@pve1", "pve1"), None);
        assert_eq!(script_name(Some(&r)), "linkscope-__1");
        let named = Remote::parse("root@pve-1.lab:22", "r").unwrap();
        assert_eq!(script_name(Some(&named)), "linkscope-pve-1.lab");
        assert_eq!(script_name(None), "linkscope");
    }

    #[test]
    fn script_quotes_paths() {
        let text = script(
            Path::new("/opt/link scope"),
            &["--mapping".into(), "/labs/it's.yaml".into()],
        );
        assert!(text.starts_with("#!/bin/sh\n"));
        assert!(
            text.ends_with(
                "exec '/opt/link scope' extcap '--mapping' '/labs/it'\\''s.yaml' \"$@\"\n"
            ),
            "{text}"
        );
    }
}
