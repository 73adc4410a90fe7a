//! A deterministic impairing UDP relay for tests: clients send to [`Relay::addr`], the relay
//! forwards to a target, and returns the target's replies to the client that sent last.
//!
//! Impairments apply to the forward direction only, and only to the datagrams the
//! `selects` predicate picks (so control traffic passes untouched); they are counted by the
//! index of the selected datagram, starting at 0: `drop` drops index i when
//! `i % every == phase`, `duplicate` sends it twice, `reorder` holds it back and sends it
//! right after the next selected datagram (or after 100 ms without one). With distinct
//! phases of one period, each impairment hits exactly `count / period` datagrams.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Every `every`-th selected datagram, at offset `phase`.
#[derive(Debug, Clone, Copy)]
pub struct Every {
    pub every: u64,
    pub phase: u64,
}

impl Every {
    fn hits(self, index: u64) -> bool {
        index % self.every == self.phase
    }
}

/// What the relay does to selected datagrams.
#[derive(Debug, Clone, Copy, Default)]
pub struct Impairments {
    pub drop: Option<Every>,
    pub duplicate: Option<Every>,
    pub reorder: Option<Every>,
}

/// What the relay did.
#[derive(Debug, Default)]
pub struct Counts {
    pub selected: AtomicU64,
    pub dropped: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
}

/// A running relay; dropping it stops its threads.
pub struct Relay {
    addr: SocketAddr,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

type Selector = dyn Fn(&[u8]) -> bool + Send + Sync;

impl Relay {
    /// Starts a relay on a free loopback port forwarding to `target`.
    pub fn start(
        target: SocketAddr,
        impairments: Impairments,
        selects: impl Fn(&[u8]) -> bool + Send + Sync + 'static,
    ) -> std::io::Result<Relay> {
        let front = UdpSocket::bind("127.0.0.1:0")?;
        let back = UdpSocket::bind("127.0.0.1:0")?;
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(100)))?;
            // Best effort (capped by net.core.rmem_max): a busy test machine must not make
            // the relay lose datagrams it did not mean to drop.
            let _ = socket2::SockRef::from(s).set_recv_buffer_size(4 << 20);
        }
        let addr = front.local_addr()?;
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let client = Arc::new(std::sync::Mutex::new(None::<SocketAddr>));
        let selects: Arc<Selector> = Arc::new(selects);
        let forward = {
            let (front, back) = (front.try_clone()?, back.try_clone()?);
            let (counts, stop, client) = (counts.clone(), stop.clone(), client.clone());
            std::thread::spawn(move || {
                forward(
                    &front,
                    &back,
                    target,
                    impairments,
                    &*selects,
                    &counts,
                    &stop,
                    &client,
                )
            })
        };
        let reverse = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((len, _)) = back.recv_from(&mut buf) {
                        let to = *client.lock().unwrap();
                        if let Some(to) = to {
                            let _ = front.send_to(&buf[..len], to);
                        }
                    }
                }
            })
        };
        Ok(Relay {
            addr,
            counts,
            stop,
            threads: vec![forward, reverse],
        })
    }

    /// Where clients send.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// What the relay did so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn forward(
    front: &UdpSocket,
    back: &UdpSocket,
    target: SocketAddr,
    impairments: Impairments,
    selects: &Selector,
    counts: &Counts,
    stop: &AtomicBool,
    client: &std::sync::Mutex<Option<SocketAddr>>,
) {
    let mut buf = vec![0u8; 65536];
    let mut held: Option<Vec<u8>> = None;
    let mut index = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let (len, from) = match front.recv_from(&mut buf) {
            Ok(r) => r,
            Err(_) => {
                if let Some(h) = held.take() {
                    let _ = back.send_to(&h, target);
                }
                continue;
            }
        };
        *client.lock().unwrap() = Some(from);
        let datagram = &buf[..len];
        if !selects(datagram) {
            let _ = back.send_to(datagram, target);
            continue;
        }
        let i = index;
        index += 1;
        counts.selected.fetch_add(1, Ordering::Relaxed);
        if impairments.drop.is_some_and(|e| e.hits(i)) {
            counts.dropped.fetch_add(1, Ordering::Relaxed);
        } else if impairments.reorder.is_some_and(|e| e.hits(i)) {
            counts.reordered.fetch_add(1, Ordering::Relaxed);
            if let Some(h) = held.replace(datagram.to_vec()) {
                let _ = back.send_to(&h, target);
            }
            continue;
        } else {
            let _ = back.send_to(datagram, target);
            if impairments.duplicate.is_some_and(|e| e.hits(i)) {
                counts.duplicated.fetch_add(1, Ordering::Relaxed);
                let _ = back.send_to(datagram, target);
            }
        }
        if let Some(h) = held.take() {
            let _ = back.send_to(&h, target);
        }
    }
}
