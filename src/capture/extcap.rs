//! Wireshark's extcap protocol: what `linkscope extcap` answers when Wireshark (or tshark,
//! dumpcap) asks for interfaces, link types and options, and where it is installed.
//!
//! Each link of the mapping is one extcap interface, `linkscope-{link}` (e.g.
//! `linkscope-100:1-102:1`). Wireshark runs an executable of its extcap folder with
//! `--extcap-interfaces`, `--extcap-dlts`, `--extcap-config`, then `--capture --fifo PATH`;
//! `linkscope extcap install` puts there a two-line script that runs this binary with the
//! mapping. The capture itself is the splice writing pcapng to the fifo (see `cli::extcap`).

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

/// `--extcap-dlts`: the link type of every interface, Ethernet.
pub fn dlts() -> &'static str {
    "dlt {number=1}{name=EN10MB}{display=Ethernet}\n"
}

/// `--extcap-config`: the options Wireshark offers in the interface's dialog.
pub fn config() -> &'static str {
    "arg {number=0}{call=--snaplen}{display=Snapshot length}{type=unsigned}{default=0}\
     {tooltip=Bytes kept of each frame; 0 keeps frames whole}\n"
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

/// The script Wireshark runs: this binary's `extcap` subcommand with the mapping.
pub fn script(linkscope: &Path, mapping: &Path) -> String {
    format!(
        "#!/bin/sh\n# Installed by `linkscope extcap install`: Wireshark's interfaces for the \
         links of this mapping.\nexec {} extcap --mapping {} \"$@\"\n",
        shell_quote(&linkscope.to_string_lossy()),
        shell_quote(&mapping.to_string_lossy())
    )
}

/// Writes the script into `dir` (created if missing), executable; returns its path.
pub fn install(dir: &Path, linkscope: &Path, mapping: &Path) -> crate::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(SCRIPT_NAME);
    let io = |source| crate::Error::Io {
        path: path.clone(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(io)?;
    std::fs::write(&path, script(linkscope, mapping)).map_err(io)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(io)?;
    Ok(path)
}

/// Single-quotes a word for sh.
fn shell_quote(word: &str) -> String {
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
    fn script_quotes_paths() {
        let text = script(Path::new("/opt/link scope"), Path::new("/labs/it's.yaml"));
        assert!(text.starts_with("#!/bin/sh\n"));
        assert!(
            text.ends_with(
                "exec '/opt/link scope' extcap --mapping '/labs/it'\\''s.yaml' \"$@\"\n"
            ),
            "{text}"
        );
    }
}
