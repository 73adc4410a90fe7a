//! The HTTP side of `serve`: axum on a tokio runtime of its own threads; the engine stays
//! synchronous and is only reached through [`Lab`].
//!
//! Routes: `/` (the page), `/api/lab` (this node and its peers), `/api/links` (this node),
//! `/api/links/{name}`, `/api/links/{name}/pcapng` (a live capture), POST
//! `/api/links/{name}/{impair|clear|down|up|flap}`, `/api/events` (server-sent events, one
//! `lab` event per interval), `/metrics`, and `/api/peers/{n}/links/{name}/…`, which passes
//! a peer's link capture and control verbs through.
//!
//! Threat model: whoever reaches the port can read every frame of every link (captures)
//! and cut or impair any link. So it listens on loopback unless told otherwise, and any
//! other address needs a token (`--token FILE`) that every request must carry (an
//! `Authorization: Bearer` header, or the `linkscope_token` cookie the page sets after it
//! was opened once with `?token=`). Control verbs are POST only and must say
//! `Content-Type: application/json`, which a cross-site form cannot send without CORS
//! consent (never given), and a request whose `Origin` is not this server is refused, so a
//! web page elsewhere cannot cut a link through the user's browser.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, Stream};
use serde::Deserialize;
use tokio::sync::watch;

use super::lab::{Control, ControlError, Lab};
use super::metrics;
use super::model::LabView;
use super::peers::Peers;

const PAGE: &str = include_str!("page/index.html");
const COOKIE: &str = "linkscope_token";

/// What every handler shares.
#[derive(Clone)]
pub struct Shared {
    pub lab: Arc<Lab>,
    pub peers: Arc<Peers>,
    /// The newest view of this node and its peers, renewed every interval.
    pub view: watch::Receiver<Arc<LabView>>,
    pub token: Option<Arc<str>>,
}

/// An error answered as JSON: `{"error": "..."}`.
struct ApiError(StatusCode, String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, axum::Json(serde_json::json!({ "error": self.1 }))).into_response()
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> ApiError {
        let status = match error {
            ControlError::UnknownLink(_) => StatusCode::NOT_FOUND,
            ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
            ControlError::NotSpliced(_) => StatusCode::CONFLICT,
            ControlError::Peer(_) => StatusCode::BAD_GATEWAY,
        };
        ApiError(status, error.to_string())
    }
}

/// The router with every route and the token check.
pub fn router(shared: Shared) -> Router {
    let api = Router::new()
        .route("/", get(page))
        .route("/api/lab", get(lab))
        .route("/api/links", get(links))
        .route("/api/links/{name}", get(link))
        .route("/api/links/{name}/pcapng", get(capture))
        .route("/api/links/{name}/{verb}", post(control))
        .route("/api/events", get(events))
        .route("/api/peers/{peer}/links/{name}/pcapng", get(peer_capture))
        .route("/api/peers/{peer}/links/{name}/{verb}", post(peer_control))
        .route("/metrics", get(prometheus))
        .fallback(|| async { ApiError(StatusCode::NOT_FOUND, "no such resource".into()) });
    api.layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

fn token_of(request: &Request) -> Option<String> {
    let headers = request.headers();
    if let Some(bearer) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim().to_owned());
    }
    let cookies = headers.get_all(header::COOKIE);
    for value in cookies.iter().filter_map(|v| v.to_str().ok()) {
        for pair in value.split(';') {
            if let Some(token) = pair
                .trim()
                .strip_prefix(COOKIE)
                .and_then(|r| r.strip_prefix('='))
            {
                return Some(token.to_owned());
            }
        }
    }
    query_token(request)
}

fn query_token(request: &Request) -> Option<String> {
    request.uri().query().and_then(|q| {
        q.split('&')
            .find_map(|pair| pair.strip_prefix("token="))
            .map(str::to_owned)
    })
}

/// Constant-time comparison, so the token cannot be guessed byte by byte from timings.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// The token check, and the cross-site checks of control verbs.
async fn guard(State(shared): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &shared.token {
        match token_of(&request) {
            Some(given) if same(&given, token) => {}
            _ => {
                return ApiError(
                    StatusCode::UNAUTHORIZED,
                    "this server needs its token: an Authorization: Bearer header, or open the \
                     page once with ?token="
                        .into(),
                )
                .into_response();
            }
        }
    }
    if request.method() == axum::http::Method::POST
        && let Err(error) = same_site(request.headers())
    {
        return error.into_response();
    }
    let set_cookie = query_token(&request).is_some();
    let mut response = next.run(request).await;
    if set_cookie && let Some(token) = &shared.token {
        let cookie = format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/");
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            response.headers_mut().insert(header::SET_COOKIE, value);
        }
    }
    response
}

fn same_site(headers: &HeaderMap) -> Result<(), ApiError> {
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(ApiError(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "control verbs take a JSON body (Content-Type: application/json)".into(),
        ));
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
        let from_here = host.is_some_and(|host| {
            origin
                .split_once("://")
                .is_some_and(|(_, authority)| authority == host)
        });
        if !from_here {
            return Err(ApiError(
                StatusCode::FORBIDDEN,
                format!("a control verb from another site ({origin}) is refused"),
            ));
        }
    }
    Ok(())
}

async fn page() -> Html<&'static str> {
    Html(PAGE)
}

async fn lab(State(shared): State<Shared>) -> axum::Json<LabView> {
    axum::Json((**shared.view.borrow()).clone())
}

async fn links(State(shared): State<Shared>) -> axum::Json<LabView> {
    axum::Json(shared.lab.local_view(&shared.view.borrow()))
}

async fn link(
    State(shared): State<Shared>,
    Path(name): Path<String>,
) -> Result<Response, ApiError> {
    let view = shared.view.borrow().clone();
    let link = view
        .links
        .iter()
        .find(|l| l.name == name && l.node == view.node)
        .ok_or(ControlError::UnknownLink(name))?;
    Ok(axum::Json(link).into_response())
}

#[derive(Debug, Deserialize)]
struct CaptureQuery {
    /// Seconds after which the capture ends; none: until the client goes away.
    duration: Option<f64>,
}

fn pcapng_response(body: Body, name: &str) -> Response {
    let file = name.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
    (
        [
            (
                header::CONTENT_TYPE,
                "application/vnd.tcpdump.pcapng".to_owned(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"linkscope-{file}.pcapng\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

async fn capture(
    State(shared): State<Shared>,
    Path(name): Path<String>,
    Query(query): Query<CaptureQuery>,
) -> Result<Response, ApiError> {
    let duration = match query.duration {
        Some(s) if !(s.is_finite() && s > 0.0) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("duration: {s} is not a positive number of seconds"),
            ));
        }
        Some(s) => Some(Duration::from_secs_f64(s)),
        None => None,
    };
    let client = shared.lab.capture(&name)?;
    let chunks = stream::unfold(
        (client, duration.map(|d| tokio::time::Instant::now() + d)),
        |(mut client, deadline)| async move {
            let next = match deadline {
                Some(deadline) => tokio::time::timeout_at(deadline, client.next())
                    .await
                    .ok()?,
                None => client.next().await,
            };
            next.map(|chunk| (Ok::<_, Infallible>(Bytes::from(chunk)), (client, deadline)))
        },
    );
    Ok(pcapng_response(Body::from_stream(chunks), &name))
}

async fn control(
    State(shared): State<Shared>,
    Path((name, verb)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let control = Control::parse(&verb, &body)?;
    let lab = shared.lab.clone();
    let outcome = tokio::task::spawn_blocking(move || lab.control(&name, &control))
        .await
        .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    outcome?;
    Ok(axum::Json(serde_json::json!({ "ok": true })).into_response())
}

async fn peer_capture(
    State(shared): State<Shared>,
    Path((peer, name)): Path<(usize, String)>,
    Query(query): Query<CaptureQuery>,
) -> Result<Response, ApiError> {
    let chunks = shared.peers.capture(peer, &name, query.duration)?;
    let body = stream::unfold(chunks, |mut chunks| async move {
        chunks
            .recv()
            .await
            .map(|chunk| (Ok::<_, Infallible>(Bytes::from(chunk)), chunks))
    });
    Ok(pcapng_response(Body::from_stream(body), &name))
}

async fn peer_control(
    State(shared): State<Shared>,
    Path((peer, name, verb)): Path<(usize, String, String)>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let peers = shared.peers.clone();
    let (status, text) =
        tokio::task::spawn_blocking(move || peers.control(peer, &name, &verb, &body))
            .await
            .map_err(|e| ApiError(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))??;
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    Ok((status, [(header::CONTENT_TYPE, "application/json")], text).into_response())
}

async fn events(
    State(shared): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let updates = stream::unfold(shared.view, |mut view| async move {
        view.changed().await.ok()?;
        let data = serde_json::to_string(&**view.borrow_and_update()).unwrap_or_default();
        Some((Ok(Event::default().event("lab").data(data)), view))
    });
    Sse::new(updates).keep_alive(KeepAlive::default())
}

async fn prometheus(State(shared): State<Shared>) -> Response {
    let text = metrics::encode(&shared.lab.local_view(&shared.view.borrow()));
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response()
}
