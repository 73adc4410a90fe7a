//! `linkscope serve`: every link of a lab this node carries, live, for a browser and for
//! Prometheus.
//!
//! The engine splices the node's links as their VMs come and go ([`lab`]); every interval
//! the main loop samples them into a [`model::LabView`], joins the peers' views ([`peers`]),
//! and hands the result to the HTTP side ([`http`]: axum on a tokio runtime of its own
//! threads), which answers from that sample: the page, the JSON API, server-sent events and
//! `/metrics`. Live captures are the one thing the HTTP side takes straight from the copy
//! consumer, through a bounded queue per client.

pub mod http;
pub mod lab;
pub mod metrics;
pub mod model;
pub mod peers;
pub mod stp;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use self::lab::{Lab, LabConfig};
use self::model::LabView;
use self::peers::Peers;

/// How to serve a lab.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub mapping: PathBuf,
    pub listen: SocketAddr,
    /// Required of every request when set.
    pub token: Option<String>,
    pub peers: Vec<String>,
    pub peer_token: Option<String>,
    pub lab: LabConfig,
    /// Between two samples (and discovery passes).
    pub interval: Duration,
}

/// What `serve` tells its user while it runs.
#[derive(Debug)]
pub enum Event<'a> {
    /// Listening, with how many links of the mapping have an end here.
    Listening {
        url: String,
        links: usize,
    },
    Spliced(&'a str),
    HandedBack(&'a str),
    Failed(&'a str, &'a crate::Error),
}

/// Serves until `stop` is set, then hands every tunnel back.
pub fn run(
    config: &ServeConfig,
    stop: &AtomicBool,
    mut on_event: impl FnMut(Event<'_>),
) -> crate::Result<()> {
    let mapping = crate::plan::Mapping::load(&config.mapping)?;
    let lab = Arc::new(Lab::new(&mapping, &config.lab)?);
    let listener = std::net::TcpListener::bind(config.listen).map_err(|source| {
        let in_use = source.kind() == std::io::ErrorKind::AddrInUse;
        let not_here = source.kind() == std::io::ErrorKind::AddrNotAvailable;
        if in_use || not_here {
            crate::Error::Argument {
                field: "--listen".into(),
                message: format!(
                    "{}: {}",
                    config.listen,
                    if in_use {
                        "the port is in use"
                    } else {
                        "not an address of this host"
                    }
                ),
            }
        } else {
            crate::Error::Socket {
                addr: config.listen,
                op: "bind",
                source,
            }
        }
    })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| crate::Error::Socket {
            addr: config.listen,
            op: "set_nonblocking",
            source,
        })?;
    let listening = listener.local_addr().unwrap_or(config.listen);
    let peers = Arc::new(Peers::new(config.peers.clone(), config.peer_token.clone()));
    let (publish, view) = watch::channel(Arc::new(LabView::default()));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("serve-http")
        .enable_io()
        .enable_time()
        .build()
        .map_err(|source| crate::Error::Io {
            path: "tokio runtime".into(),
            source,
        })?;
    let router = http::router(http::Shared {
        lab: lab.clone(),
        peers: peers.clone(),
        view,
        token: config.token.as_deref().map(Arc::from),
    });
    let (shutdown, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
    let server = runtime.spawn(async move {
        let listener = tokio::net::TcpListener::from_std(listener)?;
        axum::serve(listener, router)
            .with_graceful_shutdown(async {
                let _ = shutdown_rx.await;
            })
            .await
    });
    on_event(Event::Listening {
        url: format!("http://{listening}"),
        links: lab.planned(),
    });
    let peer_views = Arc::new(std::sync::Mutex::new((Vec::new(), Vec::new())));
    let peer_thread = (!peers.urls().is_empty()).then(|| {
        let (peers, views) = (peers.clone(), peer_views.clone());
        let interval = config.interval;
        let stopping = Arc::new(AtomicBool::new(false));
        let flag = stopping.clone();
        let handle = std::thread::Builder::new()
            .name("serve-peers".into())
            .spawn(move || {
                while !flag.load(Ordering::SeqCst) {
                    let started = Instant::now();
                    let fetched = peers.views();
                    *views
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner) = fetched;
                    let rest = interval.saturating_sub(started.elapsed());
                    std::thread::park_timeout(rest);
                }
            });
        (stopping, handle)
    });
    let mut outcome = Ok(());
    while !stop.load(Ordering::SeqCst) {
        let started = Instant::now();
        match lab.discover() {
            Ok(discovery) => {
                for (name, spliced) in &discovery.changed {
                    on_event(if *spliced {
                        Event::Spliced(name)
                    } else {
                        Event::HandedBack(name)
                    });
                }
                for (name, error) in &discovery.failures {
                    on_event(Event::Failed(name, error));
                }
            }
            Err(e) => {
                outcome = Err(e);
                break;
            }
        }
        let mut view = lab.sample();
        {
            let guard = peer_views
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let (fetched, unreachable) = &*guard;
            for (index, peer) in fetched {
                for mut link in peer.links.iter().cloned() {
                    link.api = format!("/api/peers/{index}/links/{}", link.name);
                    view.links.push(link);
                }
            }
            view.unreachable = unreachable.clone();
        }
        let _ = publish.send(Arc::new(view));
        if server.is_finished() {
            break;
        }
        while started.elapsed() < config.interval && !stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(50).min(config.interval));
        }
    }
    lab.stop();
    let _ = shutdown.send(());
    if let Some((stopping, handle)) = peer_thread {
        stopping.store(true, Ordering::SeqCst);
        if let Ok(handle) = handle {
            handle.thread().unpark();
            let _ = handle.join();
        }
    }
    let served =
        runtime.block_on(async { tokio::time::timeout(Duration::from_secs(2), server).await });
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Ok(Ok(Err(source))) = served {
        return Err(crate::Error::Socket {
            addr: listening,
            op: "serve",
            source,
        });
    }
    outcome
}
