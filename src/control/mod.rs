//! The control socket of a running splice or relay, and the client `linkscope ctl` uses.
//!
//! A Unix stream socket, mode 0600, one JSON request line and one JSON response line per
//! connection. The server runs on its own thread and never touches a forwarding path
//! itself: it calls [`Links`], which hands each change to the engine as a command. A peer
//! whose user id (`SO_PEERCRED`) is not ours is refused; the client refuses a socket file
//! another user owns. Requests are bounded ([`MAX_REQUEST`] bytes, a read timeout).
//!
//! `down`, `up` and `flap` also pull the cable in the guests through QMP (`set_link`) when
//! the link's ends have a [`QmpTarget`].

pub mod qmp;

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use serde::{Deserialize, Serialize};

use crate::impair::{Counters, DirectedSpec};
use crate::net::sys;
use crate::{Error, Result};

/// The longest request line the server reads.
pub const MAX_REQUEST: u64 = 64 * 1024;

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// A request to the control socket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    /// Replace the impairment of the directions each `[DIR:]SPEC` names.
    Impair { link: String, specs: Vec<String> },
    /// Remove every impairment (and the cable pull) of the link.
    Clear { link: String },
    /// Pull the cable: everything dropped both ways.
    Down { link: String },
    /// Plug it back.
    Up { link: String },
    /// Down for `down_s`, up for `up_s`, `count` times (until the next command if none).
    Flap {
        link: String,
        down_s: f64,
        up_s: f64,
        count: Option<u32>,
    },
    /// The state of one link, or of every link.
    Show { link: Option<String> },
}

impl Request {
    fn link(&self) -> Option<&str> {
        match self {
            Request::Impair { link, .. }
            | Request::Clear { link }
            | Request::Down { link }
            | Request::Up { link }
            | Request::Flap { link, .. } => Some(link),
            Request::Show { link } => link.as_deref(),
        }
    }
}

/// One direction of a link as the control socket shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DirectionState {
    /// `a>b` or `b>a`.
    pub direction: String,
    /// The SPEC in force, canonical (empty when none).
    pub spec: String,
    /// True while the cable is pulled.
    pub down: bool,
    /// Frames waiting in the delay line.
    pub held: u64,
    /// What the impairment did.
    pub counters: Counters,
}

/// One link as the control socket shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkState {
    pub name: String,
    /// True while a `flap` runs.
    #[serde(default)]
    pub flapping: bool,
    pub directions: Vec<DirectionState>,
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// True when the error is that the link is not served here.
    #[serde(default)]
    pub unknown_link: bool,
    #[serde(default)]
    pub links: Vec<LinkState>,
}

impl Response {
    fn error(message: String) -> Response {
        Response {
            ok: false,
            error: Some(message),
            unknown_link: false,
            links: Vec::new(),
        }
    }
}

/// What the control server changes: the engine's links, by name.
pub trait Links: Send + Sync + 'static {
    /// The names of the links served, in order.
    fn names(&self) -> Vec<String>;
    /// Replaces the impairment of the directions each spec names; false if no such link.
    fn impair(&self, link: &str, specs: &[DirectedSpec]) -> bool;
    /// Removes every impairment and the cable pull; false if no such link.
    fn clear(&self, link: &str) -> bool;
    /// Pulls or plugs back the cable; false if no such link.
    fn set_down(&self, link: &str, down: bool) -> bool;
    /// The link's state; `None` if no such link.
    fn state(&self, link: &str) -> Option<LinkState>;
}

/// A VM NIC whose cable `down`/`up`/`flap` also pull through QMP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QmpTarget {
    /// The VM's QMP socket.
    pub socket: PathBuf,
    /// The NIC's MAC, to find its netdev id in `info network`.
    pub mac: String,
}

/// The control socket's settings.
#[derive(Debug, Clone, Default)]
pub struct ControlConfig {
    /// Where to listen; [`default_path`] when `None`.
    pub path: Option<PathBuf>,
    /// QMP targets per link name.
    pub qmp: HashMap<String, Vec<QmpTarget>>,
}

/// The directory of default control sockets: `$XDG_RUNTIME_DIR/linkscope`, else
/// `/run/linkscope`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir).join("linkscope"),
        _ => PathBuf::from("/run/linkscope"),
    }
}

/// This process's default control socket: `<default_dir>/<pid>.sock`.
pub fn default_path() -> PathBuf {
    default_dir().join(format!("{}.sock", std::process::id()))
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_owned(),
        source,
    }
}

/// A running control server; dropping it stops the thread and removes the socket.
pub struct Server {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds the socket (mode 0600; a stale socket file is replaced, a live one refused) and
    /// serves `links` on a thread of its own.
    pub fn start(config: ControlConfig, links: Arc<dyn Links>) -> Result<Server> {
        let path = config.path.clone().unwrap_or_else(default_path);
        if config.path.is_none() {
            let dir = default_dir();
            std::fs::create_dir_all(&dir).map_err(io_error(&dir))?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io_error(&dir))?;
        }
        let listener = bind(&path)?;
        let stop = Arc::new(AtomicBool::new(false));
        let state = ServerState {
            links,
            qmp: config.qmp,
            flaps: Mutex::new(HashMap::new()),
        };
        let thread = std::thread::Builder::new()
            .name("control".into())
            .spawn({
                let stop = Arc::clone(&stop);
                move || serve(&listener, &state, &stop)
            })
            .map_err(io_error(&path))?;
        Ok(Server {
            path,
            stop,
            thread: Some(thread),
        })
    }

    /// Where it listens.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept.
        let _ = UnixStream::connect(&self.path);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

fn bind(path: &Path) -> Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(Error::Argument {
                field: "--control".into(),
                message: format!("{}: exists and is not a socket", path.display()),
            });
        }
        if UnixStream::connect(path).is_ok() {
            return Err(Error::Argument {
                field: "--control".into(),
                message: format!("{}: another process serves it", path.display()),
            });
        }
        std::fs::remove_file(path).map_err(io_error(path))?;
    }
    let listener = UnixListener::bind(path).map_err(io_error(path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io_error(path))?;
    Ok(listener)
}

struct ServerState {
    links: Arc<dyn Links>,
    qmp: HashMap<String, Vec<QmpTarget>>,
    /// A running flap per link: dropping the sender stops it.
    flaps: Mutex<HashMap<String, Sender<()>>>,
}

fn serve(listener: &UnixListener, state: &ServerState, stop: &AtomicBool) {
    let own_uid = sys::effective_uid();
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = stream else { continue };
        // The request is read (bounded) before the peer check so that a refused client
        // gets its answer instead of a broken pipe.
        let request = read_request(&stream);
        let response = match sys::peer_uid(stream.as_fd()) {
            Ok(uid) if uid == own_uid => match request {
                Ok(request) => state.handle(request),
                Err(message) => Response::error(message),
            },
            Ok(uid) => Response::error(format!(
                "refused: this control socket belongs to uid {own_uid}, you are uid {uid}"
            )),
            Err(e) => Response::error(format!("cannot check who you are: {e}")),
        };
        let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
        let _ = writeln!(
            stream,
            "{}",
            serde_json::to_string(&response).expect("a response serialises")
        );
    }
    // Stop every flap.
    state
        .flaps
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
}

fn read_request(stream: &UnixStream) -> std::result::Result<Request, String> {
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    BufReader::new(stream)
        .take(MAX_REQUEST)
        .read_line(&mut line)
        .map_err(|e| format!("reading the request: {e}"))?;
    if !line.ends_with('\n') {
        return Err(format!(
            "a request is one JSON line of at most {MAX_REQUEST} bytes"
        ));
    }
    serde_json::from_str(&line).map_err(|e| format!("bad request: {e}"))
}

impl ServerState {
    fn handle(&self, request: Request) -> Response {
        if let Some(link) = request.link() {
            if self.links.state(link).is_none() {
                return Response {
                    unknown_link: true,
                    ..Response::error(format!(
                        "unknown link {link:?}; this process serves {}",
                        self.links.names().join(", ")
                    ))
                };
            }
            if !matches!(request, Request::Show { .. }) {
                // Any change ends a running flap.
                self.flaps
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .remove(link);
            }
        }
        let result = match &request {
            Request::Impair { link, specs } => {
                let parsed: Result<Vec<DirectedSpec>> = specs
                    .iter()
                    .map(|s| DirectedSpec::parse(s, "impair"))
                    .collect();
                parsed.map(|specs| {
                    self.links.impair(link, &specs);
                })
            }
            Request::Clear { link } => {
                self.links.clear(link);
                self.pull(link, false);
                Ok(())
            }
            Request::Down { link } => {
                self.links.set_down(link, true);
                self.pull(link, true);
                Ok(())
            }
            Request::Up { link } => {
                self.links.set_down(link, false);
                self.pull(link, false);
                Ok(())
            }
            Request::Flap {
                link,
                down_s,
                up_s,
                count,
            } => self.flap(link, *down_s, *up_s, *count),
            Request::Show { .. } => Ok(()),
        };
        if let Err(e) = result {
            return Response::error(e.to_string());
        }
        let names = match request.link() {
            Some(link) => vec![link.to_owned()],
            None => self.links.names(),
        };
        let flaps = self.flaps.lock().unwrap_or_else(PoisonError::into_inner);
        let links = names
            .iter()
            .filter_map(|name| {
                let mut state = self.links.state(name)?;
                state.flapping = flaps.contains_key(name);
                Some(state)
            })
            .collect();
        Response {
            ok: true,
            error: None,
            unknown_link: false,
            links,
        }
    }

    /// Runs QMP `set_link` for the link's ends that have a target. Failures are reported on
    /// stderr: the link itself changed already.
    fn pull(&self, link: &str, down: bool) {
        for target in self.qmp.get(link).into_iter().flatten() {
            if let Err(e) = qmp_set_link(target, !down) {
                eprintln!("linkscope: {link}: {e}");
            }
        }
    }

    fn flap(&self, link: &str, down_s: f64, up_s: f64, count: Option<u32>) -> Result<()> {
        let bad = |message: &str| Error::Argument {
            field: "flap".into(),
            message: message.into(),
        };
        if !(down_s > 0.0 && up_s > 0.0 && down_s.is_finite() && up_s.is_finite()) {
            return Err(bad("DOWN_S and UP_S must be positive seconds"));
        }
        if count == Some(0) {
            return Err(bad("COUNT must be at least 1"));
        }
        let (cancel, cancelled) = crossbeam_channel::bounded::<()>(0);
        let links = Arc::clone(&self.links);
        let targets = self.qmp.get(link).cloned().unwrap_or_default();
        let name = link.to_owned();
        let edge = move |down: bool| {
            links.set_down(&name, down);
            for target in &targets {
                if let Err(e) = qmp_set_link(target, !down) {
                    eprintln!("linkscope: {name}: {e}");
                }
            }
        };
        let schedule = Flap {
            down: Duration::from_secs_f64(down_s),
            up: Duration::from_secs_f64(up_s),
            count,
        };
        std::thread::Builder::new()
            .name(format!("flap-{link}"))
            .spawn(move || schedule.run(&cancelled, edge))
            .map_err(|e| bad(&format!("cannot start the flap: {e}")))?;
        self.flaps
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(link.to_owned(), cancel);
        Ok(())
    }
}

fn qmp_set_link(target: &QmpTarget, up: bool) -> std::result::Result<(), qmp::QmpError> {
    let mut qmp = qmp::Qmp::connect(&target.socket)?;
    let name = qmp.netdev_of_mac(&target.mac)?;
    qmp.set_link(&name, up)
}

/// A flap's schedule: edges at fixed offsets from its start, so sleeps do not add up.
struct Flap {
    down: Duration,
    up: Duration,
    count: Option<u32>,
}

impl Flap {
    fn run(&self, cancelled: &Receiver<()>, mut edge: impl FnMut(bool)) {
        let start = Instant::now();
        let period = self.down + self.up;
        let mut cycle: u32 = 0;
        while self.count.is_none_or(|n| cycle < n) {
            let begin = start + period * cycle;
            for (down, at) in [(true, begin), (false, begin + self.down)] {
                match cancelled.recv_deadline(at) {
                    Err(RecvTimeoutError::Timeout) => edge(down),
                    // Cancelled: the command that cancelled it sets the state.
                    _ => return,
                }
            }
            cycle += 1;
        }
    }
}

/// Parses `DOWN_S,UP_S[,COUNT]`.
pub fn parse_flap(text: &str) -> Result<(f64, f64, Option<u32>)> {
    let bad = || Error::Argument {
        field: "flap".into(),
        message: format!("{text:?}: expected DOWN_S,UP_S[,COUNT], e.g. 2,5,3"),
    };
    let parts: Vec<&str> = text.split(',').map(str::trim).collect();
    if !(2..=3).contains(&parts.len()) {
        return Err(bad());
    }
    let seconds = |s: &str| {
        s.parse::<f64>()
            .ok()
            .filter(|v| *v > 0.0 && v.is_finite())
            .ok_or_else(bad)
    };
    let count = match parts.get(2) {
        Some(c) => Some(c.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(bad)?),
        None => None,
    };
    Ok((seconds(parts[0])?, seconds(parts[1])?, count))
}

/// Why `ctl` could not get an answer. All are the user's to fix (exit status 2) except
/// [`CtlError::Io`].
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    #[error("no running splice or relay: no control socket in {}", dir.display())]
    NoServer { dir: PathBuf },
    #[error("{}: no process listens there", path.display())]
    NotListening { path: PathBuf },
    #[error("unknown link {link:?}: {message}")]
    UnknownLink { link: String, message: String },
    #[error("link {link:?} is served by several processes ({}): give --control", paths.join(", "))]
    Ambiguous { link: String, paths: Vec<String> },
    #[error("{}: refused: the socket belongs to uid {owner}, you are uid {you}", path.display())]
    NotOwner { path: PathBuf, owner: u32, you: u32 },
    #[error("{0}")]
    Refused(String),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl CtlError {
    /// True for errors of the user's making (exit status 2).
    pub fn is_input(&self) -> bool {
        !matches!(self, CtlError::Io { .. })
    }
}

/// Sends `request` to the socket at `path` after checking that we own it.
pub fn send(path: &Path, request: &Request) -> std::result::Result<Response, CtlError> {
    let io = |source: io::Error| CtlError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => CtlError::NotListening {
            path: path.to_owned(),
        },
        _ => io(e),
    })?;
    let you = sys::effective_uid();
    if meta.uid() != you {
        return Err(CtlError::NotOwner {
            path: path.to_owned(),
            owner: meta.uid(),
            you,
        });
    }
    let mut stream = UnixStream::connect(path).map_err(|e| match e.kind() {
        io::ErrorKind::ConnectionRefused | io::ErrorKind::NotFound => CtlError::NotListening {
            path: path.to_owned(),
        },
        _ => io(e),
    })?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    writeln!(
        stream,
        "{}",
        serde_json::to_string(request).expect("a request serialises")
    )
    .map_err(io)?;
    let mut line = String::new();
    BufReader::new(&stream)
        .take(16 << 20)
        .read_line(&mut line)
        .map_err(io)?;
    let response: Response = serde_json::from_str(&line).map_err(|e| {
        io(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("bad answer: {e}"),
        ))
    })?;
    if response.ok {
        return Ok(response);
    }
    let message = response.error.unwrap_or_default();
    Err(match (response.unknown_link, request.link()) {
        (true, Some(link)) => CtlError::UnknownLink {
            link: link.to_owned(),
            message,
        },
        _ => CtlError::Refused(message),
    })
}

/// Sends `request` to the process serving its link: the socket at `path` when given, else
/// the one live socket in [`default_dir`] that knows the link.
pub fn send_to_link(
    path: Option<&Path>,
    request: &Request,
) -> std::result::Result<Response, CtlError> {
    if let Some(path) = path {
        return send(path, request);
    }
    let dir = default_dir();
    let mut sockets: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "sock"))
                .collect()
        })
        .unwrap_or_default();
    sockets.sort();
    let mut serving = Vec::new();
    let mut unknown = None;
    for socket in sockets {
        let probe = Request::Show {
            link: request.link().map(str::to_owned),
        };
        match send(&socket, &probe) {
            Ok(_) => serving.push(socket),
            Err(e @ CtlError::UnknownLink { .. }) => unknown = Some(e),
            Err(CtlError::NotListening { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    match serving.as_slice() {
        [] => Err(unknown.unwrap_or(CtlError::NoServer { dir })),
        [one] => send(one, request),
        many => Err(CtlError::Ambiguous {
            link: request.link().unwrap_or_default().to_owned(),
            paths: many.iter().map(|p| p.display().to_string()).collect(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flap_arguments_parse() {
        assert_eq!(parse_flap("2,5,3").unwrap(), (2.0, 5.0, Some(3)));
        assert_eq!(parse_flap("0.5,1").unwrap(), (0.5, 1.0, None));
        for bad in ["2", "2,0", "a,1", "1,1,0", "1,1,1,1", "-1,1"] {
            assert!(parse_flap(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_flap_makes_its_edges_at_fixed_offsets_and_stops_when_cancelled() {
        let (cancel, cancelled) = crossbeam_channel::bounded::<()>(0);
        let flap = Flap {
            down: Duration::from_millis(30),
            up: Duration::from_millis(20),
            count: Some(2),
        };
        let start = Instant::now();
        let mut edges = Vec::new();
        flap.run(&cancelled, |down| edges.push((down, start.elapsed())));
        let kinds: Vec<bool> = edges.iter().map(|e| e.0).collect();
        assert_eq!(kinds, [true, false, true, false]);
        // Each edge happens no earlier than its offset (0, 30, 50, 80 ms).
        for ((_, at), offset) in edges.iter().zip([0, 30, 50, 80]) {
            assert!(*at >= Duration::from_millis(offset), "{edges:?}");
        }
        drop(cancel);
        let endless = Flap {
            down: Duration::from_millis(10),
            up: Duration::from_millis(10),
            count: None,
        };
        let mut n = 0;
        endless.run(&cancelled, |_| n += 1);
        assert_eq!(n, 0, "a cancelled flap makes no edge");
    }

    #[test]
    fn requests_round_trip_as_json_lines() {
        let request = Request::Flap {
            link: "100:1-102:1".into(),
            down_s: 2.0,
            up_s: 5.0,
            count: Some(3),
        };
        let text = serde_json::to_string(&request).unwrap();
        assert!(text.contains(r#""op":"flap""#), "{text}");
        assert_eq!(serde_json::from_str::<Request>(&text).unwrap(), request);
    }
}
