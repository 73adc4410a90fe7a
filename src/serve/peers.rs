//! Other nodes' `serve` (`--peer URL`): their links join this node's page, and their
//! captures and control verbs pass through this node, so one page shows a whole cluster.
//!
//! Peers are asked with a blocking HTTP client (ureq) on the runtime's blocking threads,
//! each request bounded in time; a peer that does not answer is listed as unreachable and
//! its links disappear from the page until it answers again.

use std::io::Read;
use std::time::Duration;

use tokio::sync::mpsc;

use super::lab::ControlError;
use super::model::LabView;

/// How long one request to a peer may take (captures excepted: they stream).
const TIMEOUT: Duration = Duration::from_secs(2);

/// The largest `/api/links` answer taken from a peer.
const LIMIT: u64 = 64 << 20;

/// Chunks of a peer's capture buffered towards this node's client.
const CAPTURE_CHUNKS: usize = 64;

/// The peers of this node.
#[derive(Debug)]
pub struct Peers {
    urls: Vec<String>,
    token: Option<String>,
    agent: ureq::Agent,
    streaming: ureq::Agent,
}

impl Peers {
    /// Peers at `urls` (`http://HOST:PORT`), all asked with `token` when given.
    pub fn new(urls: Vec<String>, token: Option<String>) -> Peers {
        let agent = |timeout: Option<Duration>| -> ureq::Agent {
            ureq::Agent::config_builder()
                .timeout_global(timeout)
                .timeout_connect(Some(TIMEOUT))
                .http_status_as_error(false)
                .build()
                .into()
        };
        Peers {
            urls: urls
                .into_iter()
                .map(|u| u.trim_end_matches('/').to_owned())
                .collect(),
            token,
            agent: agent(Some(TIMEOUT)),
            streaming: agent(None),
        }
    }

    /// The peers' URLs.
    pub fn urls(&self) -> &[String] {
        &self.urls
    }

    fn url(&self, peer: usize) -> Result<&str, ControlError> {
        self.urls
            .get(peer)
            .map(String::as_str)
            .ok_or_else(|| ControlError::Peer(format!("no peer {peer}")))
    }

    fn authorize<B>(&self, request: ureq::RequestBuilder<B>) -> ureq::RequestBuilder<B> {
        match &self.token {
            Some(token) => request.header("Authorization", format!("Bearer {token}")),
            None => request,
        }
    }

    /// Each peer's links (blocking). A peer that fails is named in `unreachable`, with
    /// what went wrong.
    pub fn views(&self) -> (Vec<(usize, LabView)>, Vec<String>) {
        let mut views = Vec::new();
        let mut unreachable = Vec::new();
        for (index, url) in self.urls.iter().enumerate() {
            match self.fetch(url) {
                Ok(view) => views.push((index, view)),
                Err(reason) => unreachable.push(format!("{url} ({reason})")),
            }
        }
        (views, unreachable)
    }

    fn fetch(&self, url: &str) -> Result<LabView, String> {
        let mut response = self
            .authorize(self.agent.get(format!("{url}/api/links")))
            .call()
            .map_err(|e| e.to_string())?;
        if response.status() != 200 {
            return Err(format!("HTTP {}", response.status()));
        }
        let text = response
            .body_mut()
            .with_config()
            .limit(LIMIT)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        serde_json::from_str(&text).map_err(|e| format!("not a linkscope serve answer: {e}"))
    }

    /// Passes a control verb to a peer (blocking): its status and JSON answer.
    pub fn control(
        &self,
        peer: usize,
        link: &str,
        verb: &str,
        body: &[u8],
    ) -> Result<(u16, String), ControlError> {
        let url = format!("{}/api/links/{}/{verb}", self.url(peer)?, encode(link));
        let mut response = self
            .authorize(self.agent.post(url))
            .header("Content-Type", "application/json")
            .send(body)
            .map_err(|e| ControlError::Peer(e.to_string()))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| ControlError::Peer(e.to_string()))?;
        Ok((status, text))
    }

    /// Starts passing a peer's live capture through: its chunks arrive on the receiver
    /// until the peer ends it or the receiver is dropped.
    pub fn capture(
        &self,
        peer: usize,
        link: &str,
        duration: Option<f64>,
    ) -> Result<mpsc::Receiver<Vec<u8>>, ControlError> {
        let mut url = format!("{}/api/links/{}/pcapng", self.url(peer)?, encode(link));
        if let Some(seconds) = duration {
            url.push_str(&format!("?duration={seconds}"));
        }
        let response = self
            .authorize(self.streaming.get(url))
            .call()
            .map_err(|e| ControlError::Peer(e.to_string()))?;
        match response.status().as_u16() {
            200 => {}
            404 => return Err(ControlError::UnknownLink(link.to_owned())),
            status => return Err(ControlError::Peer(format!("HTTP {status}"))),
        }
        let (sender, receiver) = mpsc::channel(CAPTURE_CHUNKS);
        let mut body = response.into_body().into_reader();
        std::thread::Builder::new()
            .name("serve-peer-capture".into())
            .spawn(move || {
                let mut buffer = vec![0; 1 << 16];
                while let Ok(n) = body.read(&mut buffer) {
                    if n == 0 || sender.blocking_send(buffer[..n].to_vec()).is_err() {
                        break;
                    }
                }
            })
            .map_err(|e| ControlError::Peer(e.to_string()))?;
        Ok(receiver)
    }
}

/// A link name as one path segment (names hold digits, `:`, `-` and letters only; anything
/// else is percent-encoded).
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z' | b':' | b'-' | b'_' | b'.' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
