//! `linkscope extcap`: the links of a mapping as Wireshark interfaces (the extcap protocol),
//! and `linkscope extcap install` to put them where Wireshark looks.
//!
//! Wireshark shows anything an extcap program prints on standard error as an error, so a
//! capture that ends normally (SIGTERM from Wireshark, the fifo closed) prints nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;

use crate::capture::{Output, Writer, extcap};
use crate::splice::recorder::Recorder;
use crate::splice::{CopyFilter, LinkConfig, Mode, Splice, SpliceConfig, copy};

use super::spliced::capture_layout;
use crate::plan::LinkNames;

/// The links of a mapping as Wireshark capture interfaces (extcap).
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    action: Option<Action>,
    /// The mapping.yaml whose links are offered as interfaces.
    #[arg(long, value_name = "FILE")]
    mapping: Option<PathBuf>,
    /// List the interfaces (one per link).
    #[arg(long)]
    extcap_interfaces: bool,
    /// Wireshark's version, sent with --extcap-interfaces; the answer does not depend on it.
    #[arg(long = "extcap-version", value_name = "VERSION")]
    _extcap_version: Option<String>,
    /// The interface asked about or captured: linkscope-LINK.
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
    /// A capture filter: not supported (use a display filter).
    #[arg(long, value_name = "FILTER")]
    extcap_capture_filter: Option<String>,
    /// Bytes kept of each frame (0: whole frames).
    #[arg(long, default_value_t = 0)]
    snaplen: u32,
    /// Sent by Wireshark when its own debug log is on; linkscope keeps no debug log.
    #[arg(long = "debug", hide = true)]
    _debug: bool,
    /// Sent by Wireshark with --debug; linkscope keeps no debug log.
    #[arg(long = "debug-file", value_name = "FILE", hide = true)]
    _debug_file: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// Install the extcap script for a mapping where Wireshark finds it.
    Install(InstallArgs),
}

#[derive(Debug, clap::Args)]
struct InstallArgs {
    /// The mapping.yaml whose links Wireshark will offer.
    #[arg(long, value_name = "FILE")]
    mapping: PathBuf,
    /// Install into DIR instead of Wireshark's personal extcap folder (chosen from the
    /// installed Wireshark's version: ~/.config/wireshark/extcap up to 4.0,
    /// ~/.local/lib/wireshark/extcap from 4.2 on; both when no Wireshark answers).
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if let Some(Action::Install(install)) = args.action {
        return run_install(&install);
    }
    let mapping = args
        .mapping
        .as_deref()
        .ok_or_else(|| crate::Error::Argument {
            field: "--mapping".into(),
            message: "the extcap interfaces are the links of a mapping: give --mapping FILE \
                  (`linkscope extcap install --mapping FILE` writes a script that does)"
                .into(),
        })?;
    let links = crate::plan::load_links(mapping)?;
    let mut out = std::io::stdout().lock();
    if args.extcap_interfaces {
        out.write_all(extcap::interfaces(&links).as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let Some(value) = args.extcap_interface.as_deref() else {
        return Err(crate::Error::Argument {
            field: "--extcap-interface".into(),
            message: "expected --extcap-interfaces, or --extcap-interface with \
                      --extcap-dlts, --extcap-config or --capture"
                .into(),
        }
        .into());
    };
    let link = extcap::find(&links, value)?;
    if args.extcap_dlts {
        out.write_all(extcap::dlts().as_bytes())?;
    } else if args.extcap_config {
        out.write_all(extcap::config().as_bytes())?;
    } else if args.capture {
        if args
            .extcap_capture_filter
            .as_deref()
            .is_some_and(|f| !f.is_empty())
        {
            return Err(crate::Error::Argument {
                field: "capture filter".into(),
                message: "linkscope captures every frame of a link; use a display filter".into(),
            }
            .into());
        }
        let fifo = args.fifo.as_deref().context("--capture needs --fifo")?;
        drop(out);
        capture(link, fifo, args.snaplen)?;
    } else {
        return Err(crate::Error::Argument {
            field: "--extcap-interface".into(),
            message: "expected --extcap-dlts, --extcap-config or --capture with it".into(),
        }
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Splices the link (steal mode) and writes its frames as pcapng to `fifo` until SIGTERM
/// (Wireshark stopping) or until the reader closes the fifo.
fn capture(link: &crate::plan::Link, fifo: &Path, snaplen: u32) -> anyhow::Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    let handler_flag = stop.clone();
    ctrlc::set_handler(move || handler_flag.store(true, Ordering::SeqCst))
        .context("installing the signal handler")?;
    let (interfaces, _) = capture_layout(&[LinkNames::planned(link)], snaplen);
    let comment = format!("linkscope extcap capture of {}", link.name);
    let writer = Writer::create(&Output::File(fifo.to_owned()), &comment, &interfaces)?;
    let (sender, receiver) = copy::channel(copy::DEFAULT_CAPACITY);
    let consumer = copy::spawn(receiver, Recorder::new(writer, None, None), stop.clone())
        .context("starting the capture thread")?;
    let config = SpliceConfig {
        links: vec![LinkConfig {
            name: link.name.clone(),
            a: link.a.local,
            b: link.b.local,
            mode: Mode::Steal,
        }],
        copy: CopyFilter::All,
        workers: 1,
    };
    let splice = Splice::start(&config, Some(sender), stop.clone())?;
    while !stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = splice.stop();
    let (recorder, outcome) = consumer
        .join()
        .map_err(|_| anyhow::anyhow!("the capture thread panicked"))?;
    outcome?;
    recorder.finish(&stats)?;
    Ok(())
}

fn run_install(args: &InstallArgs) -> anyhow::Result<ExitCode> {
    crate::plan::load_links(&args.mapping)?;
    let mapping = std::fs::canonicalize(&args.mapping).map_err(|source| crate::Error::Io {
        path: args.mapping.clone(),
        source,
    })?;
    let linkscope = std::env::current_exe().context("locating the linkscope binary")?;
    let dirs = match &args.dir {
        Some(dir) => vec![dir.clone()],
        None => {
            let home = std::env::var_os("HOME")
                .map(PathBuf::from)
                .context("HOME is not set: give --dir")?;
            let config_home = std::env::var_os("XDG_CONFIG_HOME").map(PathBuf::from);
            extcap::install_dirs(&home, config_home.as_deref(), installed_wireshark())
        }
    };
    let mut out = std::io::stdout().lock();
    for dir in dirs {
        let path = extcap::install(&dir, &linkscope, &mapping)?;
        writeln!(out, "installed {}", path.display())?;
    }
    writeln!(
        out,
        "restart Wireshark (or run `tshark -D`): the links of {} appear as linkscope-LINK",
        mapping.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The version of the Wireshark installed here, from `tshark --version` or
/// `wireshark --version`.
fn installed_wireshark() -> Option<(u32, u32)> {
    ["tshark", "wireshark"].into_iter().find_map(|program| {
        let output = Command::new(program).arg("--version").output().ok()?;
        extcap::wireshark_version(&String::from_utf8_lossy(&output.stdout))
    })
}
