//! The lab `serve` carries: every planned link with an end on this node, spliced through one
//! engine while its VMs are up, measured, and captured on demand.
//!
//! A discovery pass (every interval, one reading of the kernel's UDP table) splices a link
//! as soon as a VM socket is bound on an address of it that this node receives on, and hands
//! the tunnel back (removes the link) once no VM socket is left there, so a VM started or
//! stopped later is picked up. The copy consumer thread feeds each link's meter and layer-2
//! view and the capture clients; the HTTP side only reads snapshots ([`Lab::sample`]).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::capture::{Interface, Packet, Stream};
use crate::control::{self, ControlConfig, CtlError, Links, Request};
use crate::direction::Direction;
use crate::engine::{LinkId, LinkStats};
use crate::impair::{DirectedSpec, ImpairConfig, Live};
use crate::measure::fragment::{Budget, Outer};
use crate::measure::l2::View;
use crate::measure::meter::{Config, Meter, SpliceCounters};
use crate::measure::report;
use crate::net::{tunnel, udp_table};
use crate::plan::{self, Mapping};
use crate::splice::copy::{self, Consumer, CopyFilter, CopyRecord, Next};
use crate::splice::{LinkConfig, Mode, Splice, SpliceConfig};

use super::model::{
    CaptureFigures, DirectionFigures, EndView, LabView, LinkState, LinkView, NeighbourView, PerEnd,
    RTT_BUCKETS_MS, RttView,
};
use super::stp;

/// Frames one capture client may have queued (in chunks of one consumer drain each) before
/// its frames are dropped for it alone.
const CLIENT_CHUNKS: usize = 256;

/// The body of `POST /api/links/{name}/{verb}`.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    /// `impair`: one `[DIR:]SPEC`.
    spec: Option<String>,
    /// `impair`: several `[DIR:]SPEC`.
    specs: Option<Vec<String>>,
    /// `flap`: `DOWN_S,UP_S[,COUNT]`.
    flap: Option<String>,
}

/// A control verb on a link: what `linkscope ctl` sends to the control socket.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    verb: String,
    body: Vec<String>,
    flap: Option<(f64, f64, Option<u32>)>,
}

impl Control {
    /// The verb of `POST /api/links/{name}/{verb}` (impair, clear, down, up, flap) with its
    /// JSON body (`{"spec": "delay=10ms"}`, `{"specs": [...]}`, `{"flap": "2,5,3"}`, or
    /// nothing).
    pub fn parse(verb: &str, body: &[u8]) -> Result<Control, ControlError> {
        let body: Body = if body.iter().all(u8::is_ascii_whitespace) {
            Body::default()
        } else {
            serde_json::from_slice(body)
                .map_err(|e| ControlError::Invalid(format!("the body: {e}")))?
        };
        let mut control = Control {
            verb: verb.to_owned(),
            body: Vec::new(),
            flap: None,
        };
        match verb {
            "impair" => {
                control.body = body.specs.unwrap_or_default();
                control.body.extend(body.spec);
                if control.body.is_empty() {
                    return Err(ControlError::Invalid(
                        "impair needs {\"spec\": \"[DIR:]SPEC\"}".into(),
                    ));
                }
                for spec in &control.body {
                    DirectedSpec::parse(spec, "spec")
                        .map_err(|e| ControlError::Invalid(e.to_string()))?;
                }
            }
            "flap" => {
                let text = body.flap.ok_or_else(|| {
                    ControlError::Invalid("flap needs {\"flap\": \"DOWN_S,UP_S[,COUNT]\"}".into())
                })?;
                control.flap = Some(
                    control::parse_flap(&text).map_err(|e| ControlError::Invalid(e.to_string()))?,
                );
            }
            "clear" | "down" | "up" => {}
            other => {
                return Err(ControlError::Invalid(format!(
                    "{other:?} is not a control verb (impair, clear, down, up, flap)"
                )));
            }
        }
        Ok(control)
    }

    fn request(&self, link: &str) -> Request {
        let link = link.to_owned();
        match (self.verb.as_str(), self.flap) {
            ("impair", _) => Request::Impair {
                link,
                specs: self.body.clone(),
            },
            ("clear", _) => Request::Clear { link },
            ("down", _) => Request::Down { link },
            ("flap", Some((down_s, up_s, count))) => Request::Flap {
                link,
                down_s,
                up_s,
                count,
            },
            _ => Request::Up { link },
        }
    }
}

/// Why a request about a link failed.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("no link {0:?} on this node")]
    UnknownLink(String),
    #[error("{0}")]
    Invalid(String),
    #[error("link {0:?} is not spliced now (are its VMs running?)")]
    NotSpliced(String),
    #[error("peer: {0}")]
    Peer(String),
}

/// A planned link with an end on this node.
#[derive(Debug, Clone)]
struct Planned {
    link: plan::Link,
    a: EndView,
    b: EndView,
    config: LinkConfig,
    budget: Budget,
    /// The addresses VM sockets bind on this node for this link (where frames arrive here).
    receiving: Vec<SocketAddr>,
}

/// One spliced link's measurements, fed on the copy consumer thread.
struct Track {
    meter: Meter,
    view: View,
    /// When it was spliced, for the report's averages.
    started: Instant,
}

/// What the copy consumer and the sampler share.
#[derive(Default)]
struct Tracks {
    by_id: HashMap<usize, Track>,
}

/// A live capture client of one link.
struct Client {
    link: usize,
    stream: Stream,
    chunks: tokio::sync::mpsc::Sender<Vec<u8>>,
    /// Frames handed to this client.
    frames: u64,
    /// Frames of this client dropped because it did not read fast enough.
    dropped: u64,
    /// Frames in the pending chunk.
    pending: u64,
}

/// A reader of one live capture: the pcapng section header first, then blocks as they come.
pub struct CaptureClient {
    chunks: tokio::sync::mpsc::Receiver<Vec<u8>>,
}

impl CaptureClient {
    /// The next chunk of the capture, or `None` once the link is gone or the server stops.
    pub async fn next(&mut self) -> Option<Vec<u8>> {
        self.chunks.recv().await
    }
}

/// The previous sample's counters, for rates.
#[derive(Debug, Clone, Copy)]
struct Previous {
    at: Instant,
    frames: u64,
    bytes: u64,
}

/// The copy consumer thread, joined on stop.
type ConsumerThread = std::thread::JoinHandle<(LabConsumer, crate::Result<()>)>;

/// Everything `serve` carries on this node.
pub struct Lab {
    node: String,
    /// The impairment stages of every link and the control socket that changes them.
    impair: Live,
    planned: Vec<Planned>,
    /// `None` once stopped.
    splice: Mutex<Option<Splice>>,
    /// Planned index → engine link, for the links spliced now.
    spliced: Mutex<BTreeMap<usize, LinkId>>,
    tracks: Arc<Mutex<Tracks>>,
    clients: Arc<Mutex<Vec<Client>>>,
    previous: Mutex<HashMap<(usize, Direction), Previous>>,
    consumer: Mutex<Option<ConsumerThread>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How `serve` runs its lab.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub node: String,
    /// The control socket (`linkscope ctl`), default one per process.
    pub control: Option<std::path::PathBuf>,
    /// Forwarding threads; 0: one per core.
    pub workers: usize,
}

impl Lab {
    /// The links of `mapping` with an end on this node, none spliced yet: call
    /// [`Lab::discover`] to splice those whose VMs run.
    pub fn new(mapping: &Mapping, config: &LabConfig) -> crate::Result<Lab> {
        let links = plan::resolve_links(mapping)?;
        let d = &mapping.defaults;
        let host_of =
            |vm: u32| -> IpAddr { d.udp_ip_by_vm.get(&vm).unwrap_or(&d.udp_default_ip).addr };
        let mut local_hosts: HashMap<IpAddr, bool> = HashMap::new();
        let mut is_here = |ip: IpAddr| {
            *local_hosts
                .entry(ip)
                .or_insert_with(|| tunnel::is_local(ip))
        };
        let mut planned = Vec::new();
        for link in links {
            let (host_a, host_b) = (host_of(link.a.vm), host_of(link.b.vm));
            let (here_a, here_b) = (is_here(host_a), is_here(host_b));
            if !here_a && !here_b {
                continue;
            }
            let end = |e: &plan::Endpoint, host: IpAddr| EndView {
                name: format!("vm{}:eth{}", e.vm, e.eth),
                vm: e.vm,
                eth: e.eth,
                nic: None,
                mac: e.mac.clone(),
                host: host.to_string(),
                local: e.local.to_string(),
            };
            let mut receiving = Vec::new();
            if here_a {
                receiving.push(link.a.local);
            }
            if here_b {
                receiving.push(link.b.local);
            }
            let peer = if here_a { link.b.local } else { link.a.local };
            let budget = Budget {
                host_mtu: link.host_mtu,
                path_mtu: crate::measure::pmtu::route_path_mtu(peer).unwrap_or(1500),
                outer: if peer.is_ipv6() {
                    Outer::Ipv6
                } else {
                    Outer::Ipv4
                },
            };
            planned.push(Planned {
                a: end(&link.a, host_a),
                b: end(&link.b, host_b),
                config: LinkConfig {
                    name: link.name.clone(),
                    a: link.a.local,
                    b: link.b.local,
                    mode: Mode::Steal,
                },
                budget,
                receiving,
                link,
            });
        }
        let tracks = Arc::new(Mutex::new(Tracks::default()));
        let clients = Arc::new(Mutex::new(Vec::new()));
        let (copies, receiver) = copy::channel(copy::DEFAULT_CAPACITY);
        let stop = Arc::new(AtomicBool::new(false));
        let consumer = copy::spawn(
            receiver,
            LabConsumer {
                tracks: tracks.clone(),
                clients: clients.clone(),
            },
            stop.clone(),
        )
        .map_err(|source| crate::Error::Io {
            path: "copy consumer thread".into(),
            source,
        })?;
        let impair = Live::start(ImpairConfig {
            control: ControlConfig {
                path: config.control.clone(),
                qmp: HashMap::new(),
            },
            ..ImpairConfig::default()
        })?;
        let splice = Splice::start_with_stages(
            &SpliceConfig {
                links: Vec::new(),
                copy: CopyFilter::All,
                workers: config.workers,
            },
            Some(copies),
            stop,
            Some(impair.stages()),
        )?;
        Ok(Lab {
            node: config.node.clone(),
            impair,
            planned,
            splice: Mutex::new(Some(splice)),
            spliced: Mutex::new(BTreeMap::new()),
            tracks,
            clients,
            previous: Mutex::new(HashMap::new()),
            consumer: Mutex::new(Some(consumer)),
        })
    }

    /// The node's name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// How many planned links have an end on this node.
    pub fn planned(&self) -> usize {
        self.planned.len()
    }

    /// Splices the links whose VM sockets are bound now and removes those whose VMs are gone.
    /// Returns the links that changed, as `(name, spliced)`; a link that cannot be spliced is
    /// reported in `failures` and tried again on the next pass.
    pub fn discover(&self) -> crate::Result<Discovery> {
        let table = udp_table::Table::read().map_err(|source| crate::Error::Io {
            path: "/proc/net/udp".into(),
            source,
        })?;
        let mut discovery = Discovery::default();
        let mut spliced = lock(&self.spliced);
        for (index, planned) in self.planned.iter().enumerate() {
            let up = planned
                .receiving
                .iter()
                .any(|&addr| table.is_bound_unconnected(addr));
            match (up, spliced.get(&index).copied()) {
                (true, None) => {
                    let added = lock(&self.splice)
                        .as_mut()
                        .map(|splice| splice.add_link(&planned.config));
                    match added.unwrap_or_else(|| Err(stopped())) {
                        Ok(id) => {
                            lock(&self.tracks).by_id.insert(
                                id.0,
                                Track {
                                    meter: Meter::new(Config::new(planned.budget)),
                                    view: View::new(),
                                    started: Instant::now(),
                                },
                            );
                            spliced.insert(index, id);
                            discovery.changed.push((planned.link.name.clone(), true));
                        }
                        Err(e) => discovery.failures.push((planned.link.name.clone(), e)),
                    }
                }
                (false, Some(id)) => {
                    if let Some(splice) = lock(&self.splice).as_mut() {
                        let _ = splice.remove_link(id);
                    }
                    lock(&self.tracks).by_id.remove(&id.0);
                    spliced.remove(&index);
                    lock(&self.clients).retain(|c| c.link != id.0);
                    discovery.changed.push((planned.link.name.clone(), false));
                }
                _ => {}
            }
        }
        Ok(discovery)
    }

    fn find(&self, name: &str) -> Result<usize, ControlError> {
        self.planned
            .iter()
            .position(|p| p.link.name == name)
            .ok_or_else(|| ControlError::UnknownLink(name.to_owned()))
    }

    fn spliced_id(&self, name: &str) -> Result<LinkId, ControlError> {
        let index = self.find(name)?;
        lock(&self.spliced)
            .get(&index)
            .copied()
            .ok_or_else(|| ControlError::NotSpliced(name.to_owned()))
    }

    /// Runs a control verb on a link through the control socket (as `linkscope ctl` does, so
    /// a running flap ends and flaps keep their schedule there). Without a control socket
    /// (a default one that could not be opened), the verbs but `flap` go straight to the
    /// link's impairment stages.
    pub fn control(&self, name: &str, control: &Control) -> Result<(), ControlError> {
        self.spliced_id(name)?;
        let request = control.request(name);
        let path = match self.impair.control() {
            Ok(path) => path,
            Err(e) => return self.control_directly(name, &request, e),
        };
        control::send(path, &request)
            .map(|_| ())
            .map_err(|e| match e {
                CtlError::UnknownLink { link, .. } => ControlError::NotSpliced(link),
                CtlError::Refused(message) => ControlError::Invalid(message),
                other => ControlError::Peer(other.to_string()),
            })
    }

    fn control_directly(
        &self,
        name: &str,
        request: &Request,
        why: &crate::Error,
    ) -> Result<(), ControlError> {
        let registry = self.impair.registry();
        let known = match request {
            Request::Impair { specs, .. } => {
                let specs = specs
                    .iter()
                    .map(|s| DirectedSpec::parse(s, "spec"))
                    .collect::<crate::Result<Vec<_>>>()
                    .map_err(|e| ControlError::Invalid(e.to_string()))?;
                registry.impair(name, &specs)
            }
            Request::Clear { .. } => registry.clear(name),
            Request::Down { .. } => registry.set_down(name, true),
            Request::Up { .. } => registry.set_down(name, false),
            Request::Flap { .. } | Request::Show { .. } => {
                return Err(ControlError::Invalid(format!(
                    "flap runs in the control socket, which is not open: {why}"
                )));
            }
        };
        if known {
            Ok(())
        } else {
            Err(ControlError::NotSpliced(name.to_owned()))
        }
    }

    /// Starts a live capture of a link: a pcapng section with its two ends as interfaces.
    pub fn capture(&self, name: &str) -> Result<CaptureClient, ControlError> {
        let index = self.find(name)?;
        let id = self.spliced_id(name)?;
        let planned = &self.planned[index];
        let interfaces = [("A", &planned.a, &planned.b), ("B", &planned.b, &planned.a)].map(
            |(label, end, peer)| Interface {
                name: end.name.clone(),
                description: format!("{} ⇄ {} on link {}", end.name, peer.name, planned.link.name),
                comment: format!(
                    "end {label}, {} binds {}; served by linkscope on {}",
                    end.mac, end.local, self.node
                ),
                ..Interface::default()
            },
        );
        let comment = format!("linkscope serve of {} on {}", planned.link.name, self.node);
        let stream = Stream::start(&comment, &interfaces)
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let (sender, receiver) = tokio::sync::mpsc::channel(CLIENT_CHUNKS);
        let mut client = Client {
            link: id.0,
            stream,
            chunks: sender,
            frames: 0,
            dropped: 0,
            pending: 0,
        };
        client.send();
        lock(&self.clients).push(client);
        Ok(CaptureClient { chunks: receiver })
    }

    /// This node's links as of now; rates over the time since the previous sample.
    pub fn sample(&self) -> LabView {
        let stats: HashMap<usize, LinkStats> = lock(&self.splice)
            .as_ref()
            .map(Splice::stats)
            .unwrap_or_default()
            .into_iter()
            .map(|s| (s.id.0, s))
            .collect();
        let spliced = lock(&self.spliced).clone();
        let mut captures: HashMap<usize, Vec<CaptureFigures>> = HashMap::new();
        for client in lock(&self.clients).iter() {
            captures
                .entry(client.link)
                .or_default()
                .push(CaptureFigures {
                    frames: client.frames,
                    dropped: client.dropped,
                });
        }
        let now = Instant::now();
        let now_ns = crate::clock::now_ns();
        let mut previous = lock(&self.previous);
        let mut tracks = lock(&self.tracks);
        let mut links = Vec::with_capacity(self.planned.len());
        for (index, planned) in self.planned.iter().enumerate() {
            let id = spliced.get(&index).copied();
            let state = id.and_then(|_| self.impair.registry().state(&planned.link.name));
            let track = id.and_then(|id| tracks.by_id.get_mut(&id.0));
            let link_stats = id.and_then(|id| stats.get(&id.0));
            let mut directions = BTreeMap::new();
            if let Some(s) = link_stats {
                for direction in Direction::BOTH {
                    let Some(d) = s.direction(direction) else {
                        continue;
                    };
                    let key = (index, direction);
                    let (pps, bps) = match previous.get(&key) {
                        Some(p) if d.frames() >= p.frames => {
                            let secs = now.duration_since(p.at).as_secs_f64().max(1e-3);
                            (
                                (d.frames() - p.frames) as f64 / secs,
                                (d.bytes() - p.bytes) as f64 * 8.0 / secs,
                            )
                        }
                        _ => (0.0, 0.0),
                    };
                    previous.insert(
                        key,
                        Previous {
                            at: now,
                            frames: d.frames(),
                            bytes: d.bytes(),
                        },
                    );
                    let dropped = BTreeMap::from([
                        ("foreign_source".to_owned(), d.foreign_source()),
                        ("zero_length".to_owned(), d.zero_length()),
                        ("truncated".to_owned(), d.truncated()),
                        ("send_error".to_owned(), d.send_error()),
                        ("kernel_rx_overflow".to_owned(), d.kernel_rx_overflow()),
                        ("stage".to_owned(), d.stage_dropped()),
                    ]);
                    let fragmented = track.as_ref().map_or(0, |t| t.meter.fragmented(direction));
                    let impaired = state
                        .as_ref()
                        .and_then(|s| {
                            s.directions
                                .iter()
                                .find(|d| d.direction == direction.label())
                        })
                        .map(|d| impaired(&d.counters))
                        .unwrap_or_default();
                    directions.insert(
                        direction.label().to_owned(),
                        DirectionFigures {
                            impaired,
                            frames: d.frames(),
                            bytes: d.bytes(),
                            copy_dropped: d.copy_dropped(),
                            pps,
                            bps,
                            dropped,
                            fragmented,
                        },
                    );
                }
            } else {
                previous.retain(|(i, _), _| *i != index);
            }
            let l2 = track.as_ref().map(|t| {
                serde_json::json!({
                    "a>b": t.view.direction(Direction::AToB),
                    "b>a": t.view.direction(Direction::BToA),
                })
            });
            let report = track.as_ref().and_then(|t| {
                let s = link_stats?;
                let names = plan::LinkNames::planned(&planned.link);
                let counters = Direction::BOTH.map(|d| {
                    let d = s.direction(d).copied().unwrap_or_default();
                    SpliceCounters {
                        dropped: report::Dropped {
                            kernel_rx_overflow: d.kernel_rx_overflow(),
                            send_error: d.send_error(),
                            foreign_source: d.foreign_source(),
                            zero_length: d.zero_length(),
                            truncated: d.truncated(),
                        },
                        capture_dropped: d.copy_dropped(),
                    }
                });
                let seconds = now.duration_since(t.started).as_secs_f64();
                serde_json::to_value(t.meter.report(&names, counters, seconds)).ok()
            });
            let (rtt_ms, neighbour, mismatch) = match track {
                Some(track) => {
                    track.meter.expire(now_ns);
                    let rtt = track.meter.rtt_histogram(&RTT_BUCKETS_MS);
                    let neighbour = PerEnd {
                        a: neighbour(&track.view, Direction::AToB),
                        b: neighbour(&track.view, Direction::BToA),
                    };
                    let mismatch = PerEnd {
                        a: lldp_mismatch(&track.view, Direction::AToB, &planned.a),
                        b: lldp_mismatch(&track.view, Direction::BToA, &planned.b),
                    };
                    let rtt = (rtt.count > 0).then_some(RttView {
                        count: rtt.count,
                        p50: rtt.p50,
                        p99: rtt.p99,
                        buckets: rtt.buckets,
                        sum_ms: rtt.sum_ms,
                    });
                    (rtt, neighbour, mismatch)
                }
                None => (None, PerEnd::default(), PerEnd::default()),
            };
            links.push(LinkView {
                name: planned.link.name.clone(),
                node: self.node.clone(),
                api: format!("/api/links/{}", planned.link.name),
                state: if id.is_some() {
                    LinkState::Spliced
                } else {
                    LinkState::Waiting
                },
                down: state
                    .as_ref()
                    .is_some_and(|s| s.directions.iter().any(|d| d.down)),
                impairment: state.as_ref().and_then(impairment),
                a: planned.a.clone(),
                b: planned.b.clone(),
                host_mtu: planned.link.host_mtu,
                directions,
                rtt_ms,
                neighbour,
                lldp_mismatch: mismatch,
                stp_role: PerEnd::default(),
                l2,
                captures: id.and_then(|id| captures.remove(&id.0)).unwrap_or_default(),
                report,
            });
        }
        let views: Vec<Option<&View>> = self
            .planned
            .iter()
            .enumerate()
            .map(|(index, _)| {
                spliced
                    .get(&index)
                    .and_then(|id| tracks.by_id.get(&id.0))
                    .map(|t| &t.view)
            })
            .collect();
        stp::mark_roles(&mut links, &views, now_ns);
        LabView {
            node: self.node.clone(),
            links,
            unreachable: Vec::new(),
        }
    }

    /// The links `view` has of this node (without its peers'), as peers ask for them.
    pub fn local_view(&self, view: &LabView) -> LabView {
        LabView {
            node: self.node.clone(),
            links: view
                .links
                .iter()
                .filter(|l| l.node == self.node && !l.api.starts_with("/api/peers/"))
                .cloned()
                .collect(),
            unreachable: Vec::new(),
        }
    }

    /// Stops forwarding: every tunnel goes back to its VMs, capture clients see their end,
    /// and the copy consumer thread finishes what it was handed.
    pub fn stop(&self) {
        lock(&self.spliced).clear();
        if let Some(splice) = lock(&self.splice).take() {
            splice.stop();
        }
        lock(&self.clients).clear();
        if let Some(consumer) = lock(&self.consumer).take() {
            let _ = consumer.join();
        }
    }
}

/// The impairment in force, as `a>b: SPEC; b>a: SPEC` (a cut shows as `down`); `None`
/// when there is none.
fn impairment(state: &control::LinkState) -> Option<String> {
    let parts: Vec<String> = state
        .directions
        .iter()
        .filter_map(|d| {
            let spec = match (d.down, d.spec.is_empty()) {
                (true, true) => "down".to_owned(),
                (true, false) => format!("down {}", d.spec),
                (false, false) => d.spec.clone(),
                (false, true) => return None,
            };
            Some(format!("{}: {spec}", d.direction))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// What an impairment did to one direction, by action.
fn impaired(c: &crate::impair::Counters) -> BTreeMap<String, u64> {
    BTreeMap::from([
        ("dropped_loss".to_owned(), c.dropped_loss),
        ("dropped_down".to_owned(), c.dropped_down),
        ("dropped_mtu".to_owned(), c.dropped_mtu),
        ("queue_drops".to_owned(), c.queue_drops),
        ("delayed".to_owned(), c.delayed),
        ("duplicated".to_owned(), c.duplicated),
        ("reordered".to_owned(), c.reordered),
        ("corrupted".to_owned(), c.corrupted),
    ])
}

fn stopped() -> crate::Error {
    crate::Error::Argument {
        field: "serve".into(),
        message: "the lab has stopped".into(),
    }
}

/// What a discovery pass did.
#[derive(Debug, Default)]
pub struct Discovery {
    /// Links spliced (true) or handed back (false).
    pub changed: Vec<(String, bool)>,
    /// Links that could not be spliced, and why.
    pub failures: Vec<(String, crate::Error)>,
}

/// The LLDP identity the end sending in `direction` announces.
fn neighbour(view: &View, direction: Direction) -> Option<NeighbourView> {
    let lldp = view.direction(direction).lldp()?;
    let n = &lldp.state;
    Some(NeighbourView {
        chassis: n.chassis_id.as_ref().map(|id| id.value.clone()),
        port: n.port_id.as_ref().map(|id| id.value.clone()),
        system_name: n.system_name.clone(),
    })
}

/// Whether the LLDP identity sent in `direction` differs from the plan's sending end: its
/// port ID when it is a MAC address (lldpd's default), else its chassis ID when that is a MAC;
/// `None` when no LLDPDU was seen or neither ID is a MAC.
fn lldp_mismatch(view: &View, direction: Direction, planned: &EndView) -> Option<bool> {
    let lldp = view.direction(direction).lldp()?;
    let n = &lldp.state;
    let mac = |id: &Option<crate::measure::l2::Id>| {
        id.as_ref()
            .filter(|id| id.subtype == "mac")
            .map(|id| id.value.to_ascii_lowercase())
    };
    let planned_mac = planned.mac.to_ascii_lowercase();
    mac(&n.port_id)
        .or_else(|| mac(&n.chassis_id))
        .map(|seen| seen != planned_mac)
}

/// Feeds every copied frame to its link's meter and view, and to the link's capture clients.
struct LabConsumer {
    tracks: Arc<Mutex<Tracks>>,
    clients: Arc<Mutex<Vec<Client>>>,
}

impl Consumer for LabConsumer {
    fn record(&mut self, record: &CopyRecord<'_>) -> crate::Result<Next> {
        if let Some(track) = lock(&self.tracks).by_id.get_mut(&record.link) {
            track
                .meter
                .record(record.direction, record.timestamp_ns, record.data);
            if let Some(latency) = record.added_latency_ns() {
                track.meter.record_added_latency(record.direction, latency);
            }
            track
                .view
                .record(record.direction, record.timestamp_ns, record.data);
        }
        let mut clients = lock(&self.clients);
        for client in clients.iter_mut().filter(|c| c.link == record.link) {
            let interface = match record.direction {
                Direction::AToB => 0,
                Direction::BToA => 1,
            };
            if client
                .stream
                .packet(&Packet {
                    interface,
                    timestamp_ns: record.timestamp_ns,
                    data: record.data,
                    outbound: true,
                })
                .is_ok()
            {
                client.pending += 1;
            }
        }
        Ok(Next::Continue)
    }

    fn flush(&mut self) -> crate::Result<()> {
        lock(&self.clients).retain_mut(Client::send);
        Ok(())
    }
}

impl Client {
    /// Hands what is pending to the client without waiting; false once the client is gone.
    /// A client that has not taken its earlier chunks loses this one, counted for it alone.
    fn send(&mut self) -> bool {
        let chunk = self.stream.take();
        if chunk.is_empty() {
            return !self.chunks.is_closed();
        }
        match self.chunks.try_send(chunk) {
            Ok(()) => self.frames += self.pending,
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => self.dropped += self.pending,
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => return false,
        }
        self.pending = 0;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::lldp::{self, PortIdSubtype};

    fn lldpdu(chassis: [u8; 6], port: (PortIdSubtype, &[u8])) -> Vec<u8> {
        let repr = lldp::Repr::station(chassis, port, 120, None);
        let mut frame = vec![0x01, 0x80, 0xc2, 0, 0, 0x0e];
        frame.extend_from_slice(&chassis);
        frame.extend_from_slice(&[0x88, 0xcc]);
        repr.emit(&mut frame).unwrap();
        frame
    }

    fn end(mac: &str) -> EndView {
        EndView {
            name: "vm100:eth1".into(),
            vm: 100,
            eth: 1,
            nic: None,
            mac: mac.into(),
            host: "h".into(),
            local: String::new(),
        }
    }

    #[test]
    fn the_lldp_identity_is_checked_by_port_mac_then_chassis_mac() {
        let planned = end("BE:24:99:00:64:01");
        let mine = [0xbe, 0x24, 0x99, 0, 0x64, 1];
        let other = [2, 0, 0, 0, 0, 0x99];
        let check = |frame: Vec<u8>| {
            let mut view = View::new();
            view.record(Direction::AToB, 1, &frame);
            lldp_mismatch(&view, Direction::AToB, &planned)
        };
        assert_eq!(lldp_mismatch(&View::new(), Direction::AToB, &planned), None);
        assert_eq!(
            check(lldpdu(other, (PortIdSubtype::MAC_ADDRESS, &mine))),
            Some(false)
        );
        assert_eq!(
            check(lldpdu(mine, (PortIdSubtype::MAC_ADDRESS, &other))),
            Some(true)
        );
        assert_eq!(
            check(lldpdu(mine, (PortIdSubtype::INTERFACE_NAME, b"eth1"))),
            Some(false)
        );
        assert_eq!(
            check(lldpdu(other, (PortIdSubtype::INTERFACE_NAME, b"eth1"))),
            Some(true)
        );
    }

    #[test]
    fn control_bodies_are_checked_before_they_reach_the_link() {
        assert!(Control::parse("down", b"").is_ok());
        assert!(Control::parse("up", b"{}").is_ok());
        let impair = Control::parse("impair", br#"{"spec": "a>b:delay=10ms"}"#).unwrap();
        assert_eq!(
            impair.request("100:1-102:1"),
            Request::Impair {
                link: "100:1-102:1".into(),
                specs: vec!["a>b:delay=10ms".into()]
            }
        );
        let flap = Control::parse("flap", br#"{"flap": "2,5,3"}"#).unwrap();
        assert!(matches!(
            flap.request("x"),
            Request::Flap { down_s, up_s, count: Some(3), .. } if down_s == 2.0 && up_s == 5.0
        ));
        for (verb, body) in [
            ("impair", &b"{}"[..]),
            ("impair", br#"{"spec": "delay=ten"}"#),
            ("flap", br#"{"flap": "2"}"#),
            ("down", b"{not json"),
            ("down", br#"{"surprise": 1}"#),
            ("explode", b""),
        ] {
            assert!(
                matches!(Control::parse(verb, body), Err(ControlError::Invalid(_))),
                "{verb} {}",
                String::from_utf8_lossy(body)
            );
        }
    }
}
