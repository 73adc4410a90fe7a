//! The sending end: paces test frames of each size to the receiver over one or more streams,
//! asks the receiver for its counts in-band (every interval and at the end of each size),
//! measures round trips from a reflector's echoes and the kernel's fragmentation counters,
//! and turns it all into one result per size.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver as Channel, RecvTimeoutError, Sender as ChannelSender};
use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bench::frame::{self, Frame, Header, Kind, Report};
use crate::bench::spec::Rate;
use crate::bench::{open_socket, wire_bytes};
use crate::clock::now_ns;
use crate::measure::snmp::{Family, FragCounters};
use crate::net::batch::{
    MAX_DATAGRAM, MAX_SEGMENTED, MAX_SEGMENTS, RecvBatch, SendBatch, SendOutcome,
    enable_receive_metadata, segmentation_refused,
};
use crate::{Error, Result};

/// How long to send each size.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    Duration(Duration),
    /// Frames per size, all streams together.
    Count(u64),
}

/// Everything the sender needs.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Address to bind (a planned NIC's local address, or port 0).
    pub local: SocketAddr,
    /// The receiver (sink or reflector).
    pub to: SocketAddr,
    /// Frame sizes, one test each, in order.
    pub sizes: Vec<usize>,
    pub rate: Rate,
    pub limit: Limit,
    /// Time to send uncounted frames before each size.
    pub warmup: Duration,
    /// Parallel flows, each with its own stream id and sending thread.
    pub streams: u16,
    /// Interval between in-band progress reports; `None` for none.
    pub interval: Option<Duration>,
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// Path MTU for the on-wire figures.
    pub path_mtu: u32,
    /// Wait after the last frame of a size before asking for the final counts.
    pub drain: Duration,
    /// Give up when the receiver has not answered a report request for this long.
    pub report_timeout: Duration,
    /// Hand the kernel runs of frames to cut into datagrams itself (UDP GSO) where the path
    /// allows; each frame is still its own datagram on the wire.
    pub segmented: bool,
}

/// Round-trip percentiles, microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Rtt {
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

impl Rtt {
    fn of(h: &Histogram<u64>) -> Option<Rtt> {
        if h.is_empty() {
            return None;
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        Some(Rtt {
            min: us(h.min()),
            p50: us(h.value_at_quantile(0.5)),
            p90: us(h.value_at_quantile(0.9)),
            p99: us(h.value_at_quantile(0.99)),
            p999: us(h.value_at_quantile(0.999)),
            max: us(h.max()),
        })
    }
}

/// Fragmentation seen by the kernels during one size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Fragments {
    /// Fragments the sender's kernel created (FragCreates delta).
    pub sender_frag_creates: u64,
    /// Fragments the receiver's kernel had to reassemble (ReasmReqds delta).
    pub receiver_reasm_reqds: u64,
}

/// What the receiver saw of the frames sent over a span of time: the figures a size and an
/// interval share (flattened into both in the JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Figures {
    pub sent: u64,
    pub received: u64,
    pub lost: u64,
    pub lost_pct: f64,
    /// Of the frames lost, those the receiving socket dropped for lack of buffer space: the
    /// receiving process, not the path, could not keep up.
    pub receiver_drops: u64,
    pub out_of_order: u64,
    pub duplicates: u64,
    pub pps: f64,
    /// Tunnel payload bits received per second (comparable with iperf3's figure).
    pub payload_bits_per_second: f64,
    /// With the outer Ethernet, IP and UDP headers and fragments' extra headers.
    pub wire_bits_per_second: f64,
    pub jitter_ms: f64,
    pub rtt_us: Option<Rtt>,
}

impl Figures {
    /// The figures of `sent` frames of which the receiver counted `counts` (received, out of
    /// order, duplicates, bytes, jitter) in `secs` seconds, each frame `wire_bytes` on the wire.
    fn new(sent: u64, counts: &Report, wire_bytes: u64, secs: f64, rtt: Option<Rtt>) -> Figures {
        let lost = sent.saturating_sub(counts.received);
        Figures {
            sent,
            received: counts.received,
            lost,
            lost_pct: percent(lost, sent),
            receiver_drops: counts.receiver_drops,
            out_of_order: counts.out_of_order,
            duplicates: counts.duplicates,
            pps: counts.received as f64 / secs,
            payload_bits_per_second: counts.bytes as f64 * 8.0 / secs,
            wire_bits_per_second: (counts.received * wire_bytes) as f64 * 8.0 / secs,
            jitter_ms: counts.jitter_ns / 1e6,
            rtt_us: rtt,
        }
    }
}

/// The result of one size: the `--json` contract.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SizeResult {
    pub size: usize,
    #[serde(flatten)]
    pub figures: Figures,
    pub fragments: Fragments,
}

/// One progress interval of one size (`--json-stream`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntervalResult {
    pub size: usize,
    pub start_s: f64,
    pub end_s: f64,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The whole run: the `--json` document.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunResult {
    pub version: u32,
    pub sizes: Vec<SizeResult>,
    pub duration_s: f64,
}

/// What the sender tells its caller while it runs.
#[derive(Debug)]
pub enum Event<'a> {
    Interval(&'a IntervalResult),
    Size(&'a SizeResult),
}

/// Round-trip histograms of the current test: total and since the last interval.
struct RttBook {
    test: u32,
    total: Histogram<u64>,
    interval: Histogram<u64>,
}

fn histogram() -> Histogram<u64> {
    // 1 ns to 100 s with 3 significant digits; the bounds are valid constants.
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

type Reports = (u32, u64, Report);

/// Reports of the current test kept until `ask` takes them.
const REPORTS_QUEUED: usize = 16;

/// Runs every size of `config` and returns the results; `on_event` sees each interval and
/// each finished size. Setting `stop` ends the current size early and skips the rest.
pub fn run(
    config: &SendConfig,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(Event),
) -> Result<RunResult> {
    let started = Instant::now();
    let socket = open_socket(config.local)?;
    let local = config.local;
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|source| Error::Socket {
            addr: local,
            op: "set read timeout",
            source,
        })?;
    enable_receive_metadata(&socket).map_err(|source| Error::Socket {
        addr: local,
        op: "enable receive timestamps",
        source,
    })?;
    let listener_socket = socket.try_clone().map_err(|source| Error::Socket {
        addr: local,
        op: "clone socket",
        source,
    })?;
    let book = Arc::new(Mutex::new(RttBook {
        test: 0,
        total: histogram(),
        interval: histogram(),
    }));
    let done = Arc::new(AtomicBool::new(false));
    // Reports wait here only while `ask` waits for one; anyone can send us report frames,
    // so the queue is short and what does not fit is dropped (`ask` asks again).
    let (report_tx, report_rx) = crossbeam_channel::bounded(REPORTS_QUEUED);
    let listener = {
        let (book, done) = (Arc::clone(&book), Arc::clone(&done));
        std::thread::Builder::new()
            .name("bench-send-rx".into())
            .spawn(move || listen(&listener_socket, &book, &done, &report_tx))
            .map_err(|source| Error::Socket {
                addr: local,
                op: "spawn receive thread",
                source,
            })?
    };
    let base = (now_ns() as u32) ^ std::process::id().rotate_left(16);
    let mut sizes = Vec::new();
    let mut outcome = Ok(());
    for (index, &size) in config.sizes.iter().enumerate() {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let test = base.wrapping_add(2 * index as u32);
        match run_size(
            config, &socket, size, test, &book, &report_rx, stop, on_event,
        ) {
            Ok(result) => {
                on_event(Event::Size(&result));
                sizes.push(result);
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
    }
    done.store(true, Ordering::Relaxed);
    let _ = listener.join();
    outcome?;
    Ok(RunResult {
        version: 1,
        sizes,
        duration_s: started.elapsed().as_secs_f64(),
    })
}

/// Receives echoes (round trips, from the kernel's receive timestamps) and reports until
/// `done`.
fn listen(
    socket: &UdpSocket,
    book: &Mutex<RttBook>,
    done: &AtomicBool,
    reports: &ChannelSender<Reports>,
) {
    let mut batch = RecvBatch::new(BURST, MAX_DATAGRAM);
    while !done.load(Ordering::Relaxed) {
        if batch.recv(socket).is_err() {
            continue;
        }
        for (bytes, meta) in batch.iter() {
            let arrived = if meta.timestamp_ns == 0 {
                now_ns()
            } else {
                meta.timestamp_ns
            };
            let Ok(frame) = Frame::new_checked(bytes) else {
                continue;
            };
            let kind = frame.kind();
            if kind == Kind::ECHO {
                let mut b = book.lock().unwrap_or_else(PoisonError::into_inner);
                if b.test == frame.test() {
                    let rtt = arrived.saturating_sub(frame.sent_ns()).max(1);
                    b.total.saturating_record(rtt);
                    b.interval.saturating_record(rtt);
                }
            } else if kind == Kind::REPORT
                && frame.test() == book.lock().unwrap_or_else(PoisonError::into_inner).test
                && let Ok(report) = Report::parse(frame.body())
            {
                let _ = reports.try_send((frame.test(), frame.sequence(), report));
            }
        }
    }
}

/// Asks for the report `request` of `test` until it arrives or the timeout passes; reports of
/// other requests that arrive meanwhile are dropped.
fn ask(
    config: &SendConfig,
    socket: &UdpSocket,
    header: &Header,
    request: u64,
    sent: u64,
    reports: &Channel<Reports>,
) -> Result<Report> {
    let bytes = frame::report_request(header, request, sent);
    let deadline = Instant::now() + config.report_timeout;
    loop {
        send_control(socket, &bytes, config.to, config.local)?;
        let retry = Instant::now() + Duration::from_millis(200);
        while Instant::now() < retry.min(deadline) {
            match reports.recv_deadline(retry.min(deadline)) {
                Ok((t, r, report)) if t == header.test && r == request => return Ok(report),
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
        }
        if Instant::now() >= deadline {
            return Err(Error::NoReport {
                peer: config.to,
                waited: config.report_timeout,
            });
        }
    }
}

fn send_control(socket: &UdpSocket, bytes: &[u8], to: SocketAddr, local: SocketAddr) -> Result<()> {
    match socket.send_to(bytes, to) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => Ok(()),
        Err(source) => Err(Error::Socket {
            addr: local,
            op: "send",
            source,
        }),
    }
}

#[allow(clippy::too_many_arguments)]
fn run_size(
    config: &SendConfig,
    socket: &UdpSocket,
    size: usize,
    test: u32,
    book: &Mutex<RttBook>,
    reports: &Channel<Reports>,
    stop: &AtomicBool,
    on_event: &mut dyn FnMut(Event),
) -> Result<SizeResult> {
    let family = Family::of(&config.to);
    let header = Header {
        dst: config.dst_mac,
        src: config.src_mac,
        kind: Kind::DATA,
        stream: 0,
        test,
        sequence: 0,
        sent_ns: 0,
    };
    if !config.warmup.is_zero() {
        let warm = Header {
            test: test.wrapping_add(1),
            ..header
        };
        send_streams(
            config,
            socket,
            &warm,
            size,
            Limit::Duration(config.warmup),
            stop,
            &mut |_| Ok(()),
        )?;
    }
    {
        // From here on, echoes and reports of this test count (and only theirs).
        let mut b = book.lock().unwrap_or_else(PoisonError::into_inner);
        b.test = test;
        b.total.reset();
        b.interval.reset();
    }
    // Request 0 opens the test at the receiver (its fragmentation baseline) and proves it
    // is there before we send anything counted.
    ask(config, socket, &header, 0, 0, reports)?;
    let frag_start = FragCounters::read(family)?;
    let wire = wire_bytes(size, config.path_mtu, family == Family::V6);
    let mut request = 0;
    let mut previous = (Instant::now(), Report::default());
    let start = previous.0;
    let (elapsed, sent) = send_streams(
        config,
        socket,
        &header,
        size,
        config.limit,
        stop,
        &mut |sent| {
            let Some(interval) = config.interval else {
                return Ok(());
            };
            if previous.0.elapsed() < interval {
                return Ok(());
            }
            request += 1;
            let at = Instant::now();
            let report = ask(config, socket, &header, request, sent, reports)?;
            let rtt = {
                let mut b = book.lock().unwrap_or_else(PoisonError::into_inner);
                let rtt = Rtt::of(&b.interval);
                b.interval.reset();
                rtt
            };
            let result = interval_result(size, wire, start, previous, (at, report), rtt);
            on_event(Event::Interval(&result));
            previous = (at, report);
            Ok(())
        },
    )?;
    std::thread::sleep(config.drain);
    let report = ask(config, socket, &header, request + 1, sent, reports)?;
    let frag = FragCounters::read(family)? - frag_start;
    let rtt = Rtt::of(&book.lock().unwrap_or_else(PoisonError::into_inner).total);
    let secs = elapsed.as_secs_f64().max(1e-9);
    Ok(SizeResult {
        size,
        figures: Figures::new(sent, &report, wire, secs, rtt),
        fragments: Fragments {
            sender_frag_creates: frag.frag_creates,
            receiver_reasm_reqds: report.fragments.reasm_reqds,
        },
    })
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 * 100.0 / whole as f64
    }
}

fn interval_result(
    size: usize,
    wire_bytes: u64,
    start: Instant,
    (t0, r0): (Instant, Report),
    (t1, r1): (Instant, Report),
    rtt: Option<Rtt>,
) -> IntervalResult {
    let secs = (t1 - t0).as_secs_f64().max(1e-9);
    let counts = Report {
        received: r1.received.saturating_sub(r0.received),
        out_of_order: r1.out_of_order.saturating_sub(r0.out_of_order),
        duplicates: r1.duplicates.saturating_sub(r0.duplicates),
        bytes: r1.bytes.saturating_sub(r0.bytes),
        receiver_drops: r1.receiver_drops.saturating_sub(r0.receiver_drops),
        ..r1
    };
    IntervalResult {
        size,
        start_s: (t0 - start).as_secs_f64(),
        end_s: (t1 - start).as_secs_f64(),
        figures: Figures::new(
            r1.sent.saturating_sub(r0.sent),
            &counts,
            wire_bytes,
            secs,
            rtt,
        ),
    }
}

/// Sends one size over all streams; `tick` runs on the calling thread about every 10 ms
/// with the frames sent so far. Returns the sending time and the frames sent.
fn send_streams(
    config: &SendConfig,
    socket: &UdpSocket,
    header: &Header,
    size: usize,
    limit: Limit,
    stop: &AtomicBool,
    tick: &mut dyn FnMut(u64) -> Result<()>,
) -> Result<(Duration, u64)> {
    let streams = u64::from(config.streams.max(1));
    let rate = config
        .rate
        .frames_per_second(size)
        .map(|r| r / streams as f64);
    let sent = AtomicU64::new(0);
    let running = AtomicUsize::new(streams as usize);
    // Set when an interval report fails: the size is over, the senders stop early.
    let failed = AtomicBool::new(false);
    let start = Instant::now();
    let deadline = match limit {
        Limit::Duration(d) => Some(start + d),
        Limit::Count(_) => None,
    };
    let outcome = std::thread::scope(|scope| -> Result<()> {
        let mut handles = Vec::new();
        for stream in 0..streams {
            let count = match limit {
                Limit::Count(n) => Some(n / streams + u64::from(stream < n % streams)),
                Limit::Duration(_) => None,
            };
            let header = Header {
                stream: stream as u16,
                ..*header
            };
            let (sent, running, stops) = (&sent, &running, [stop, &failed]);
            let to = config.to;
            let handle = std::thread::Builder::new()
                .name(format!("bench-send-{stream}"))
                .spawn_scoped(scope, move || {
                    let r = send_stream(
                        socket,
                        to,
                        &header,
                        size,
                        rate,
                        count,
                        deadline,
                        sent,
                        stops,
                        config.segmented,
                    );
                    running.fetch_sub(1, Ordering::Relaxed);
                    r
                })
                .map_err(|source| Error::Socket {
                    addr: config.local,
                    op: "spawn sending thread",
                    source,
                })?;
            handles.push(handle);
        }
        let mut result = Ok(());
        while running.load(Ordering::Relaxed) > 0 {
            std::thread::sleep(Duration::from_millis(10));
            if result.is_ok() {
                result = tick(sent.load(Ordering::Relaxed));
                failed.store(result.is_err(), Ordering::Relaxed);
            }
        }
        for h in handles {
            if let Ok(Err(source)) = h.join() {
                result = result.and(Err(Error::Socket {
                    addr: config.local,
                    op: "send",
                    source,
                }));
            }
        }
        result
    });
    outcome?;
    Ok((start.elapsed(), sent.load(Ordering::Relaxed)))
}

/// Frames per `sendmmsg` call and at most per pacing step (bounds the burst a late thread
/// sends to catch up).
const BURST: usize = 64;

/// Whole bursts refused in a row before the sender gives up (about a second of retries).
const REFUSED_BURSTS: u32 = 10_000;

#[allow(clippy::too_many_arguments)]
fn send_stream(
    socket: &UdpSocket,
    to: SocketAddr,
    header: &Header,
    size: usize,
    rate: Option<f64>,
    count: Option<u64>,
    deadline: Option<Instant>,
    sent: &AtomicU64,
    stops: [&AtomicBool; 2],
    mut segmented: bool,
) -> std::io::Result<()> {
    // One burst of frames back to back, as segmentation offload wants them.
    let mut frames = vec![0u8; size * BURST];
    for f in frames.chunks_exact_mut(size) {
        header.emit(f);
    }
    // Frames per segmented send; a single frame gains nothing from segmentation (and two
    // fit only when the size fits the u16 segment size).
    let run = MAX_SEGMENTS.min(MAX_SEGMENTED / size).min(BURST);
    segmented &= run > 1;
    let mut batch = SendBatch::new(BURST);
    let start = Instant::now();
    let mut seq = 0u64;
    let mut refused = 0;
    loop {
        let now = Instant::now();
        if stops.iter().any(|s| s.load(Ordering::Relaxed))
            || deadline.is_some_and(|d| now >= d)
            || count.is_some_and(|c| seq >= c)
        {
            return Ok(());
        }
        let mut due = match rate {
            Some(r) => ((now - start).as_secs_f64() * r) as u64 + 1,
            None => seq + BURST as u64,
        };
        if let Some(c) = count {
            due = due.min(c);
        }
        if due <= seq {
            let next = start + Duration::from_secs_f64((seq as f64) / rate.unwrap_or(f64::MAX));
            std::thread::sleep(
                next.saturating_duration_since(now)
                    .min(Duration::from_millis(1)),
            );
            continue;
        }
        let burst = (due - seq).min(BURST as u64) as usize;
        let bytes = &mut frames[..burst * size];
        for (i, buf) in bytes.chunks_exact_mut(size).enumerate() {
            let mut frame = Frame::new_checked(buf).map_err(std::io::Error::other)?;
            frame.set_sequence(seq + i as u64);
            frame.set_sent_ns(now_ns());
        }
        // Counted before sending, so a report request never carries fewer frames than the
        // receiver may already have; a refused frame is taken back out (the receiver sees a
        // gap that is not counted as loss).
        sent.fetch_add(burst as u64, Ordering::Relaxed);
        let outcome = if segmented && burst > 1 {
            match send_segmented(&mut batch, socket, to, bytes, size, run) {
                Some(outcome) => outcome,
                None => {
                    segmented = false;
                    send_each(&mut batch, socket, to, bytes, size)
                }
            }
        } else {
            send_each(&mut batch, socket, to, bytes, size)
        };
        sent.fetch_sub(outcome.failed as u64, Ordering::Relaxed);
        seq += burst as u64;
        if outcome.sent > 0 {
            refused = 0;
            continue;
        }
        match outcome.last_error {
            Some(kind) if refused >= REFUSED_BURSTS => return Err(kind.into()),
            _ => {
                refused += 1;
                std::thread::sleep(Duration::from_micros(100));
            }
        }
    }
}

/// Sends the frames of `bytes` (each `size` bytes) one datagram each; the outcome counts
/// frames.
fn send_each(
    batch: &mut SendBatch,
    socket: &UdpSocket,
    to: SocketAddr,
    bytes: &[u8],
    size: usize,
) -> SendOutcome {
    let slices: Vec<&[u8]> = bytes.chunks_exact(size).collect();
    batch.send(socket, Some(to), &slices)
}

/// Sends the frames of `bytes` (each `size` bytes) with segmentation offload, `run` frames
/// per buffer; the outcome counts frames. `None` when the path cannot segment: nothing was
/// sent.
fn send_segmented(
    batch: &mut SendBatch,
    socket: &UdpSocket,
    to: SocketAddr,
    bytes: &[u8],
    size: usize,
    run: usize,
) -> Option<SendOutcome> {
    let buffers: Vec<&[u8]> = bytes.chunks(size * run).collect();
    let frames = bytes.len() / size;
    let (taken, last_error) = match batch.send_segmented(socket, Some(to), &buffers, size as u16) {
        Ok(taken) => (taken, None),
        Err(e) if segmentation_refused(&e) => return None,
        Err(e) => (0, Some(e.kind())),
    };
    let sent = (taken * run).min(frames);
    Some(SendOutcome {
        sent,
        failed: frames - sent,
        failed_bytes: ((frames - sent) * size) as u64,
        last_error,
    })
}
