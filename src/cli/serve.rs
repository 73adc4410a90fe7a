//! `linkscope serve`: every link of a mapping this node carries, live in a browser and in
//! Prometheus.

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use crate::serve::lab::LabConfig;
use crate::serve::{self, Event, ServeConfig};

/// Splice every link of MAPPING with an end on this node; serve a live page, a JSON API and
/// Prometheus metrics.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The mapping.yaml the lab is planned from.
    #[arg(value_name = "MAPPING")]
    mapping: PathBuf,
    /// Where the HTTP server listens. Any address but loopback needs --token.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:9465")]
    listen: SocketAddr,
    /// A file holding the token every request must carry (Authorization: Bearer TOKEN, or
    /// open the page once with ?token=TOKEN). The file must not be readable by others.
    #[arg(long, value_name = "FILE")]
    token: Option<PathBuf>,
    /// Another node's serve (http://HOST:PORT), whose links join this page; repeatable.
    #[arg(long, value_name = "URL")]
    peer: Vec<String>,
    /// The token file the peers want (one for all of them).
    #[arg(long, value_name = "FILE", requires = "peer")]
    peer_token: Option<PathBuf>,
    /// This node's name on the page and in metric labels [default: the host name].
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Seconds between samples and discovery passes.
    #[arg(long, value_name = "SECONDS", default_value_t = 1.0)]
    interval: f64,
    /// Forwarding threads (0: one per core).
    #[arg(long, value_name = "N", default_value_t = 0)]
    workers: usize,
    /// The control socket `linkscope ctl` talks to [default: one per process under
    /// $XDG_RUNTIME_DIR or /run/linkscope].
    #[arg(long, value_name = "PATH")]
    control: Option<PathBuf>,
}

fn argument(field: &str, message: String) -> crate::Error {
    crate::Error::Argument {
        field: field.into(),
        message,
    }
}

/// Reads a token file: one line, not empty, readable by its owner only.
fn read_token(path: &Path, field: &str) -> crate::Result<String> {
    let meta = std::fs::metadata(path).map_err(|source| crate::Error::Io {
        path: path.to_owned(),
        source,
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(argument(
            field,
            format!(
                "{}: others may read it (mode {:o}); chmod 600 it",
                path.display(),
                meta.permissions().mode() & 0o777
            ),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|source| crate::Error::Io {
        path: path.to_owned(),
        source,
    })?;
    let token = text.trim();
    if token.is_empty() || token.contains(char::is_whitespace) || token.len() > 4096 {
        return Err(argument(
            field,
            format!("{}: expected one token on one line", path.display()),
        ));
    }
    Ok(token.to_owned())
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_owned())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

fn options(args: &Args) -> crate::Result<ServeConfig> {
    let token = args
        .token
        .as_deref()
        .map(|p| read_token(p, "--token"))
        .transpose()?;
    if token.is_none() && !args.listen.ip().is_loopback() {
        return Err(argument(
            "--listen",
            format!(
                "{} is not a loopback address: whoever reaches it could read every frame and \
                 cut any link, so it needs --token FILE",
                args.listen
            ),
        ));
    }
    if !(args.interval.is_finite() && (0.1..=3600.0).contains(&args.interval)) {
        return Err(argument(
            "--interval",
            format!("{}: expected 0.1 to 3600 seconds", args.interval),
        ));
    }
    for url in &args.peer {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| argument("--peer", format!("{url:?}: expected http://HOST:PORT")))?;
        if rest.trim_end_matches('/').is_empty() || rest.contains(char::is_whitespace) {
            return Err(argument(
                "--peer",
                format!("{url:?}: expected http://HOST:PORT"),
            ));
        }
    }
    Ok(ServeConfig {
        mapping: args.mapping.clone(),
        listen: args.listen,
        token,
        peers: args.peer.clone(),
        peer_token: args
            .peer_token
            .as_deref()
            .map(|p| read_token(p, "--peer-token"))
            .transpose()?,
        lab: LabConfig {
            node: args.node.clone().unwrap_or_else(host_name),
            workers: args.workers,
            control: args.control.clone(),
        },
        interval: Duration::from_secs_f64(args.interval),
    })
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let config = options(&args)?;
    let stop = super::stop::flag()?;
    let mut err = std::io::stderr().lock();
    serve::run(&config, &stop, |event| {
        let _ = match event {
            Event::Listening { url, links } => writeln!(
                err,
                "serving {links} link(s) of {} on {url} (node {})",
                config.mapping.display(),
                config.lab.node
            ),
            Event::Spliced(name) => writeln!(err, "spliced {name}"),
            Event::HandedBack(name) => writeln!(err, "handed back {name}: its VMs are gone"),
            Event::Failed(name, error) => writeln!(err, "cannot splice {name} yet: {error:#}"),
        };
    })?;
    Ok(ExitCode::SUCCESS)
}
