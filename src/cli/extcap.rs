//! `linkscope extcap`: the links of a mapping as Wireshark interfaces (the extcap protocol),
//! this host's or a remote host's over SSH, and `linkscope extcap install` to put them where
//! Wireshark looks.
//!
//! Wireshark shows anything an extcap program prints on standard error as an error, so a
//! capture that ends normally (SIGTERM from Wireshark, the fifo closed) prints nothing. A
//! capture that cannot run opens the fifo first, then prints why and exits non-zero: dumpcap
//! sees the fifo end and Wireshark shows the message, instead of waiting on a fifo nobody
//! opens.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::capture::extcap::{self, Remote};
use crate::capture::filter::Filter;

/// The links of a mapping as Wireshark capture interfaces (extcap).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// The mapping.yaml whose links are offered as interfaces (with --remote: its path on
    /// the remote host).
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    #[command(flatten)]
    remote: RemoteArgs,
    /// List the interfaces (one per link).
    #[arg(long)]
    extcap_interfaces: bool,
    /// Wireshark's version, sent with --extcap-interfaces; the answer does not depend on it.
    #[arg(long = "extcap-version", value_name = "VERSION")]
    _extcap_version: Option<String>,
    /// The interface asked about or captured: linkscope-LINK (linkscope-LINK@HOST remote).
    #[arg(long, value_name = "INTERFACE")]
    extcap_interface: Option<String>,
    /// List the interface's link types.
    #[arg(long)]
    extcap_dlts: bool,
    /// List the interface's options.
    #[arg(long)]
    extcap_config: bool,
    /// Splice the interface's link and write pcapng to --fifo until SIGTERM.
    #[arg(long, requires_all = ["extcap_interface", "fifo"])]
    capture: bool,
    /// Where to write the capture.
    #[arg(long, value_name = "PATH")]
    fifo: Option<PathBuf>,
    /// A capture filter in libpcap syntax (as dumpcap's -f). Without --capture, Wireshark's
    /// check of the filter: nothing on standard output when it is valid, libpcap's message
    /// when it is not.
    #[arg(long, value_name = "FILTER")]
    extcap_capture_filter: Option<String>,
    /// Bytes kept of each frame (0: whole frames).
    #[arg(long, default_value_t = 0)]
    snaplen: u32,
    #[command(flatten)]
    dialog: DialogArgs,
    /// Sent by Wireshark when its own debug log is on; linkscope keeps no debug log.
    #[arg(long = "debug", hide = true)]
    _debug: bool,
    /// Sent by Wireshark with --debug; linkscope keeps no debug log.
    #[arg(long = "debug-file", value_name = "FILE", hide = true)]
    _debug_file: Option<PathBuf>,
}

/// The options of Wireshark's interface dialog (`--extcap-config`), passed on to the
/// splice. Taken as text and checked by the splice, so a bad value reaches Wireshark as a
/// message rather than as an argument error before the fifo is opened.
#[derive(Debug, Clone, clap::Args)]
struct DialogArgs {
    /// Meter the link (rates, loss, latency, fragmentation) into the --report file.
    #[arg(long)]
    measure: bool,
    /// The JSON measurement report (one object per --stats-interval, then the final one).
    #[arg(long, value_name = "FILE")]
    report: Option<String>,
    /// Seconds between the report's objects.
    #[arg(long, value_name = "SECONDS")]
    stats_interval: Option<String>,
    /// The link's host_mtu for the fragmentation figures.
    #[arg(long, value_name = "BYTES")]
    host_mtu: Option<String>,
    /// End the capture once these control protocols have crossed the link (splice's
    /// --expect: lldp, stp, lacp, each optionally :a>b or :b>a), or fail naming what never
    /// came after --expect-timeout.
    #[arg(long, value_name = "PROTO[:DIR],...")]
    expect: Option<String>,
    /// Seconds --expect waits.
    #[arg(long, value_name = "SECONDS")]
    expect_timeout: Option<String>,
    /// Impair the link while it is captured (splice's --impair: `[DIR:]SPEC`).
    #[arg(long, value_name = "[DIR:]SPEC")]
    impair: Option<String>,
    /// The impairment's random seed (splice's --seed).
    #[arg(long, value_name = "N")]
    seed: Option<String>,
}

/// How to reach a remote host's links.
#[derive(Debug, Clone, clap::Args)]
struct RemoteArgs {
    /// The links are on [USER@]HOST[:PORT], reached with the system's ssh client (your keys,
    /// agent, ProxyJump and known_hosts apply; BatchMode, so it never prompts).
    #[arg(long, value_name = "[USER@]HOST[:PORT]")]
    remote: Option<String>,
    /// linkscope on the remote host.
    #[arg(
        long,
        value_name = "PATH",
        default_value = "linkscope",
        requires = "remote"
    )]
    remote_linkscope: String,
    /// An ssh option (`-o OPTION`, e.g. IdentityFile=~/.ssh/lab), repeatable.
    #[arg(long, value_name = "OPTION", requires = "remote")]
    ssh_option: Vec<String>,
    /// The remote's interfaces as `extcap install` read them, answered without ssh, so
    /// Wireshark starts at once even when the remote is unreachable.
    #[arg(long, value_name = "LISTING", requires = "remote", hide = true)]
    remote_listing: Option<String>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Install the extcap script for a mapping where Wireshark finds it.
    Install(InstallArgs),
}

#[derive(Debug, clap::Args)]
struct InstallArgs {
    /// The mapping.yaml whose links Wireshark will offer (with --remote: its path on the
    /// remote host).
    #[arg(long, value_name = "FILE")]
    mapping: PathBuf,
    #[command(flatten)]
    remote: RemoteArgs,
    /// Install into DIR instead of Wireshark's personal extcap folder (as `tshark -G folders`
    /// names it; without tshark, chosen from Wireshark's version: ~/.config/wireshark/extcap
    /// up to 4.0, ~/.local/lib/wireshark/extcap from 4.2 on; both when no Wireshark answers).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// How long the remote has to answer a listing, and ssh to connect.
const SSH_CONNECT_TIMEOUT_S: u32 = 10;

/// Bytes of a remote's standard error kept to explain a failure.
const STDERR_LIMIT: usize = 16 * 1024;

/// Bytes of a remote's interface list kept (a few hundred bytes per link).
const LISTING_LIMIT: u64 = 4 << 20;

/// How long a failing capture waits for Wireshark's reader to open the fifo.
const FIFO_WAIT: Duration = Duration::from_secs(30);

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Action::Install(install)) = &args.action {
        return run_install(install);
    }
    if args.capture {
        let fifo = args.fifo.clone().context("--capture needs --fifo")?;
        let stop = super::stop::flag()?;
        // Held open until the outcome is printed: dumpcap sees the fifo end only after the
        // message is on standard error, where Wireshark reads it.
        let held = hold_fifo(&fifo, &stop);
        let outcome = prepare(&args).and_then(|prepared| capture(prepared, &fifo, &stop));
        let code = match outcome {
            Ok(code) => code,
            Err(err) => super::report(&err),
        };
        drop(held);
        return Ok(code);
    }
    let source = Source::new(&args)?;
    let mut out = std::io::stdout().lock();
    if args.extcap_interfaces {
        out.write_all(source.interfaces()?.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(value) = args.extcap_interface.as_deref() else {
        return Err(crate::Error::Argument {
            field: "--extcap-interface".into(),
            message: "expected --extcap-interfaces, or --extcap-interface with \
                      --extcap-dlts, --extcap-config, --extcap-capture-filter or --capture"
                .into(),
        }
        .into());
    };
    source.link(value)?;
    if args.extcap_dlts {
        out.write_all(extcap::dlts().as_bytes())?;
    } else if args.extcap_config {
        out.write_all(extcap::config().as_bytes())?;
    } else if let Some(expression) = &args.extcap_capture_filter {
        // Wireshark's filter check: an empty answer is valid; otherwise its first line is
        // the reason, shown under the filter field. Either way the check itself succeeded.
        if let Err(err) = check_filter(
            matches!(source, Source::Remote { .. }),
            expression,
            args.snaplen,
        ) {
            writeln!(out, "{}", one_line(&err))?;
        }
    } else {
        return Err(crate::Error::Argument {
            field: "--extcap-interface".into(),
            message: "expected --extcap-dlts, --extcap-config, --extcap-capture-filter or \
                      --capture with it"
                .into(),
        }
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Where the interfaces come from: this host's mapping, or a remote host's over SSH.
enum Source {
    Local(Vec<crate::plan::Link>),
    Remote {
        remote: Remote,
        args: RemoteArgs,
        mapping: PathBuf,
    },
}

impl Source {
    fn new(args: &Args) -> anyhow::Result<Source> {
        let mapping = args
            .mapping
            .as_deref()
            .ok_or_else(|| crate::Error::Argument {
                field: "--mapping".into(),
                message: "the extcap interfaces are the links of a mapping: give --mapping \
                          FILE (`linkscope extcap install --mapping FILE` writes a script \
                          that does)"
                    .into(),
            })?;
        Ok(match &args.remote.remote {
            None => Source::Local(crate::plan::load_links(mapping)?),
            Some(spec) => Source::Remote {
                remote: Remote::parse(spec, "--remote")?,
                args: args.remote.clone(),
                mapping: mapping.to_owned(),
            },
        })
    }

    /// The `--extcap-interfaces` answer.
    fn interfaces(&self) -> anyhow::Result<String> {
        match self {
            Source::Local(links) => Ok(extcap::interfaces(links)),
            Source::Remote {
                remote,
                args,
                mapping,
            } => {
                let listing = match &args.remote_listing {
                    Some(listing) => listing.clone(),
                    None => remote_listing(remote, args, mapping)?,
                };
                Ok(extcap::remote_interfaces(&listing, &remote.host))
            }
        }
    }

    /// The link an interface value names (checked against the mapping for this host's).
    fn link(&self, value: &str) -> crate::Result<String> {
        match self {
            Source::Local(links) => extcap::find(links, value).map(|l| l.name.clone()),
            Source::Remote { remote, .. } => extcap::remote_link(value, &remote.host)
                .map(str::to_owned)
                .ok_or_else(|| crate::Error::Argument {
                    field: "--extcap-interface".into(),
                    message: format!(
                        "{value:?} is not an interface of {} (expected {})",
                        remote.host,
                        extcap::remote_value("LINK", &remote.host)
                    ),
                }),
        }
    }
}

/// Compiles a capture filter for the check call. For a remote host, libpcap missing here is
/// no verdict: the remote compiles the filter again when the capture starts.
fn check_filter(remote: bool, expression: &str, snaplen: u32) -> crate::Result<()> {
    match Filter::compile(expression, snaplen) {
        Err(crate::Error::Libpcap(_)) if remote => Ok(()),
        outcome => outcome.map(drop),
    }
}

/// An error's message on one line, for Wireshark's filter field.
fn one_line(err: &crate::Error) -> String {
    err.to_string().replace(['\n', '\r'], " ")
}

/// Everything a capture needs, checked before the fifo is touched: the splice to run
/// (`linkscope splice … -w -`), here or on a remote host.
struct Prepared {
    /// The splice's arguments after `linkscope`.
    splice: Vec<String>,
    remote: Option<(Remote, RemoteArgs)>,
}

fn prepare(args: &Args) -> anyhow::Result<Prepared> {
    let source = Source::new(args)?;
    let value = args
        .extcap_interface
        .as_deref()
        .context("--capture needs --extcap-interface")?;
    let link = source.link(value)?;
    let filter = args
        .extcap_capture_filter
        .as_deref()
        .filter(|f| !f.trim().is_empty());
    let remote = matches!(source, Source::Remote { .. });
    if let Some(filter) = filter {
        check_filter(remote, filter, args.snaplen)?;
    }
    let (mapping, remote) = match source {
        Source::Local(_) => {
            let mapping = args.mapping.as_deref().context("--mapping")?;
            let mapping = std::fs::canonicalize(mapping).map_err(|source| crate::Error::Io {
                path: mapping.to_owned(),
                source,
            })?;
            (mapping, None)
        }
        Source::Remote {
            remote,
            args,
            mapping,
        } => (mapping, Some((remote, args))),
    };
    let splice = splice_args(&mapping, &link, args.snaplen, filter, &args.dialog)?;
    Ok(Prepared { splice, remote })
}

/// `splice` and its arguments for a capture of `link` to standard output with the dialog's
/// options: quiet, and metered only when a report is asked for.
fn splice_args(
    mapping: &Path,
    link: &str,
    snaplen: u32,
    filter: Option<&str>,
    dialog: &DialogArgs,
) -> crate::Result<Vec<String>> {
    let mut words: Vec<String> = [
        "splice",
        "--mapping",
        &mapping.to_string_lossy(),
        "--link",
        link,
        "-w",
        "-",
        "-q",
        "-s",
        &snaplen.to_string(),
    ]
    .map(str::to_owned)
    .into();
    let mut push = |flag: &str, value: &str| words.extend([flag.to_owned(), value.to_owned()]);
    if let Some(filter) = filter {
        push("-f", filter);
    }
    let report = dialog.report.as_deref().filter(|r| !r.is_empty());
    match report {
        Some(report) => {
            push("--json", report);
            if let Some(interval) = &dialog.stats_interval {
                push("--stats-interval", interval);
            }
            if let Some(mtu) = dialog.host_mtu.as_deref().filter(|m| !m.is_empty()) {
                push("--host-mtu", mtu);
            }
        }
        None if dialog.measure => {
            return Err(crate::Error::Argument {
                field: "--measure".into(),
                message: "the measurements go into a JSON report: choose its file \
                          (Measurement report, --report FILE)"
                    .into(),
            });
        }
        None => {}
    }
    if let Some(expect) = dialog.expect.as_deref().filter(|e| !e.is_empty()) {
        push("--expect", expect);
        if let Some(timeout) = &dialog.expect_timeout {
            push("--timeout", timeout);
        }
    }
    if let Some(impair) = dialog.impair.as_deref().filter(|i| !i.trim().is_empty()) {
        push("--impair", impair);
        if let Some(seed) = dialog.seed.as_deref().filter(|s| !s.is_empty()) {
            push("--seed", seed);
        }
    }
    if report.is_some() {
        words.push("--json-stream".into());
    } else {
        words.push("--no-measure".into());
    }
    Ok(words)
}

/// Opens the fifo for writing, waiting up to [`FIFO_WAIT`] for its reader (dumpcap) to open
/// it; a stop request ends the wait. None when the reader never came.
fn hold_fifo(fifo: &Path, stop: &AtomicBool) -> Option<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let start = Instant::now();
    while start.elapsed() < FIFO_WAIT && !stop.load(Ordering::SeqCst) {
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo);
        match opened {
            Ok(file) => return Some(file),
            Err(e) if e.raw_os_error() == Some(libc::ENXIO) => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(_) => return None,
        }
    }
    None
}

/// Runs the splice, here or over ssh, with its pcapng on the fifo until SIGTERM (Wireshark
/// stopping) or until it ends by itself (--expect met or failed, an error). A failure's
/// words (the splice's, ssh's) go to standard error, where Wireshark shows them.
fn capture(prepared: Prepared, fifo: &Path, stop: &AtomicBool) -> anyhow::Result<ExitCode> {
    let out = File::options()
        .write(true)
        .open(fifo)
        .map_err(|source| crate::Error::Io {
            path: fifo.to_owned(),
            source,
        })?;
    let mut command = match &prepared.remote {
        None => {
            let mut command =
                Command::new(std::env::current_exe().context("locating the linkscope binary")?);
            command.args(&prepared.splice);
            command
        }
        Some((remote, args)) => {
            let mut command = ssh(remote, args);
            command.arg(remote_capture_command(args, &prepared.splice));
            command
        }
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(out)
        .stderr(Stdio::piped())
        .spawn()
        .context(match prepared.remote {
            None => "starting the splice",
            Some(_) => "running ssh (Debian package openssh-client)",
        })?;
    let stderr = child.stderr.take().context("the splice's standard error")?;
    let said = std::thread::spawn(move || keep_tail(stderr, STDERR_LIMIT));
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break Some(status);
        }
        if stop.load(Ordering::SeqCst) {
            match prepared.remote {
                // The splice hands the link back and finishes the capture.
                None => crate::net::sys::process::terminate(&child)?,
                // The connection closes; the remote script stops the splice.
                Some(_) => child.kill()?,
            }
            child.wait()?;
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let said = said.join().unwrap_or_default();
    let Some(status) = status.filter(|s| !s.success()) else {
        return Ok(ExitCode::SUCCESS);
    };
    match &prepared.remote {
        Some((remote, args)) => Err(remote_failure(remote, args, status, &said)),
        None => {
            std::io::stderr().write_all(&verdict(&said))?;
            Ok(ExitCode::from(
                status
                    .code()
                    .and_then(|c| u8::try_from(c).ok())
                    .unwrap_or(1),
            ))
        }
    }
}

/// What a failed splice said that explains the failure (its error and `--expect` lines,
/// which Wireshark shows in its dialog), without its start report and summaries; all of it
/// when it said neither.
fn verdict(said: &[u8]) -> Vec<u8> {
    let text = String::from_utf8_lossy(said);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("linkscope:") || l.starts_with("expect:"))
        .collect();
    if lines.is_empty() {
        said.to_vec()
    } else {
        (lines.join("\n") + "\n").into_bytes()
    }
}

/// `ssh` to `remote` in batch mode (never a prompt), with the user's options.
fn ssh(remote: &Remote, args: &RemoteArgs) -> Command {
    let mut command = Command::new("ssh");
    command
        .args(["-o", "BatchMode=yes"])
        .arg("-o")
        .arg(format!("ConnectTimeout={SSH_CONNECT_TIMEOUT_S}"));
    if let Some(port) = remote.port {
        command.arg("-p").arg(port.to_string());
    }
    for option in &args.ssh_option {
        command.arg("-o").arg(option);
    }
    command.arg("--").arg(&remote.destination);
    command
}

/// A command line for the remote shell, each word quoted.
fn remote_words<S: AsRef<str>>(words: &[S]) -> String {
    words
        .iter()
        .map(|w| extcap::shell_quote(w.as_ref()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The remote's `--extcap-interfaces` answer for its mapping.
fn remote_listing(remote: &Remote, args: &RemoteArgs, mapping: &Path) -> anyhow::Result<String> {
    let mapping = mapping.to_string_lossy();
    let words = [
        args.remote_linkscope.as_str(),
        "extcap",
        "--mapping",
        &mapping,
        "--extcap-interfaces",
    ];
    let mut child = ssh(remote, args)
        .arg(remote_words(&words))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context("running ssh (Debian package openssh-client)")?;
    let stderr = child.stderr.take().context("ssh's standard error")?;
    let said = std::thread::spawn(move || keep_tail(stderr, STDERR_LIMIT));
    // What the remote can make us hold is bounded: a listing is a line per link.
    let mut listing = Vec::new();
    child
        .stdout
        .take()
        .context("ssh's standard output")?
        .take(LISTING_LIMIT + 1)
        .read_to_end(&mut listing)?;
    if listing.len() as u64 > LISTING_LIMIT {
        let _ = child.kill();
        let _ = child.wait();
        anyhow::bail!(
            "{}: the remote's interface list is over {LISTING_LIMIT} bytes",
            remote.destination
        );
    }
    let status = child.wait()?;
    let said = said.join().unwrap_or_default();
    if !status.success() {
        return Err(remote_failure(remote, args, status, &said));
    }
    Ok(String::from_utf8_lossy(&listing).into_owned())
}

/// Why a remote command failed, from ssh's exit status and standard error.
fn remote_failure(
    remote: &Remote,
    args: &RemoteArgs,
    status: std::process::ExitStatus,
    stderr: &[u8],
) -> anyhow::Error {
    let said = String::from_utf8_lossy(stderr).trim().replace('\n', "; ");
    let hint = match status.code() {
        Some(255) => " (ssh could not log in: check the key, the user and known_hosts; \
                      ssh runs with BatchMode=yes, so it never asks for a password)"
            .to_owned(),
        Some(127) => format!(
            " ({:?} is not on the remote's PATH: install linkscope there, or give \
             `extcap install --remote-linkscope PATH`)",
            args.remote_linkscope
        ),
        _ => String::new(),
    };
    anyhow::anyhow!("{} ({status}): {said}{hint}", remote.destination)
}

/// The remote shell's capture command: `linkscope splice … -w -` in the background, ended
/// when our side of the connection goes away (standard input reaches its end), so a link is
/// handed back even when no frame crosses it; the script exits with the splice's status.
fn remote_capture_command(args: &RemoteArgs, splice: &[String]) -> String {
    let mut words = vec![args.remote_linkscope.clone()];
    words.extend_from_slice(splice);
    let script = format!(
        "exec 3<&0; {} <&- 3<&- & p=$!; \
         (cat >/dev/null; kill -TERM $p) <&3 >/dev/null 2>&1 & \
         wait $p",
        remote_words(&words)
    );
    remote_words(&["sh", "-c", &script])
}

/// Reads `from` to its end, keeping at most the last `limit` bytes.
fn keep_tail(mut from: impl Read, limit: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buffer = [0u8; 4096];
    while let Ok(n) = from.read(&mut buffer) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buffer[..n]);
        if kept.len() > limit {
            kept.drain(..kept.len() - limit);
        }
    }
    kept
}

fn run_install(args: &InstallArgs) -> anyhow::Result<ExitCode> {
    let linkscope = std::env::current_exe().context("locating the linkscope binary")?;
    let (remote, mapping) = match &args.remote.remote {
        None => {
            crate::plan::load_links(&args.mapping)?;
            let mapping =
                std::fs::canonicalize(&args.mapping).map_err(|source| crate::Error::Io {
                    path: args.mapping.clone(),
                    source,
                })?;
            (None, mapping)
        }
        Some(spec) => {
            let remote = Remote::parse(spec, "--remote")?;
            // The remote answers now, or the install says why, not Wireshark later; its
            // interfaces go into the script (install again when the mapping changes).
            let listing = remote_listing(&remote, &args.remote, &args.mapping)?;
            (Some((remote, listing)), args.mapping.clone())
        }
    };
    let mut script_args = vec![
        "--mapping".to_owned(),
        mapping.to_string_lossy().into_owned(),
    ];
    if let Some(spec) = &args.remote.remote {
        script_args.extend(["--remote".to_owned(), spec.clone()]);
        script_args.extend([
            "--remote-linkscope".to_owned(),
            args.remote.remote_linkscope.clone(),
        ]);
        for option in &args.remote.ssh_option {
            script_args.extend(["--ssh-option".to_owned(), option.clone()]);
        }
    }
    if let Some((_, listing)) = &remote {
        script_args.extend(["--remote-listing".to_owned(), listing.clone()]);
    }
    let remote = remote.map(|(remote, _)| remote);
    let script = extcap::script(&linkscope, &script_args);
    let name = extcap::script_name(remote.as_ref());
    let dirs = match &args.dir {
        Some(dir) => vec![dir.clone()],
        None => personal_dirs()?,
    };
    let mut out = std::io::stdout().lock();
    for dir in dirs {
        let path = extcap::install(&dir, &name, &script)?;
        writeln!(out, "installed {}", path.display())?;
    }
    let whose = remote
        .as_ref()
        .map_or_else(String::new, |r| format!(" on {}", r.host));
    writeln!(
        out,
        "restart Wireshark (or run `tshark -D`): the links of {}{whose} appear as \
         linkscope-LINK{}",
        mapping.display(),
        remote
            .as_ref()
            .map_or_else(String::new, |r| format!("@{}", r.host))
    )?;
    Ok(ExitCode::SUCCESS)
}

/// Wireshark's personal extcap folder(s): as the installed tshark names it, else from the
/// installed Wireshark's version, else both folders Wireshark versions use.
fn personal_dirs() -> anyhow::Result<Vec<PathBuf>> {
    let folders = Command::new("tshark")
        .args(["-G", "folders"])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| extcap::personal_dir(&String::from_utf8_lossy(&o.stdout)));
    if let Some(dir) = folders {
        return Ok(vec![dir]);
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .context("HOME is not set: give --dir")?;
    let config_home = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
    Ok(extcap::install_dirs(
        &home,
        config_home.as_deref(),
        installed_wireshark(),
    ))
}

/// The version of the Wireshark installed here, from `wireshark --version`.
fn installed_wireshark() -> Option<(u32, u32)> {
    let output = Command::new("wireshark").arg("--version").output().ok()?;
    extcap::wireshark_version(&String::from_utf8_lossy(&output.stdout))
}
