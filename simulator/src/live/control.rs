//! The control API of a live run: a small HTTP/JSON server on loopback to read the meter's values
//! and change its state while it runs (load, solar, EV, power failure, tariff, text message, the
//! Request line, one-off faults). Changes show in the next telegram.
//!
//! Bodies are parsed as JSON whatever the Content-Type, so `curl -d '{"watts": 1500}' URL` works
//! without `-H`. `?meter=N` picks a fleet meter (default 0).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use p1sim_core::meter::Command;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use super::meter::Control;
use super::pacer::{LineStats, RequestLine};
use super::pty::PtyStats;
use super::serial::SerialStats;
use super::tcp::Hub;

/// One output of one meter, as the status endpoint shows it.
#[derive(Debug, Clone)]
pub struct OutputInfo {
    pub meter: usize,
    pub kind: &'static str,
    /// Device path, link or address.
    pub name: String,
    pub line: Arc<LineStats>,
    pub detail: Detail,
}

#[derive(Debug, Clone)]
pub enum Detail {
    Pty(Arc<PtyStats>),
    Tcp(Arc<Hub>),
    Serial(Arc<SerialStats>),
    Rig(Arc<crate::rig::output::RigStats>),
}

/// What the handlers reach.
#[derive(Debug)]
pub struct Api {
    pub meters: Vec<mpsc::Sender<Control>>,
    pub request: Arc<RequestLine>,
    pub outputs: Vec<OutputInfo>,
    /// The tariff registers the meters book on (`/tariff` accepts 1 to this): 2, or 4 on meters
    /// that send 1.8.3 and 1.8.4.
    pub tariffs: u8,
}

type Shared = State<Arc<Api>>;

#[derive(Debug, Deserialize)]
struct Which {
    meter: Option<usize>,
}

/// Binds the API; refuses addresses that are not loopback, because it has no authentication.
pub async fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    if !addr.ip().is_loopback() {
        anyhow::bail!(
            "--control {addr}: the control API has no authentication and only listens on loopback; \
             use 127.0.0.1:PORT or [::1]:PORT (an SSH tunnel reaches it from elsewhere)"
        );
    }
    TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("--control {addr}: cannot listen: {e}"))
}

pub fn router(api: Arc<Api>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/readings", get(readings))
        .route("/status", get(status))
        .route("/request", get(request_get).post(request_set).put(request_set))
        .route("/load", post(load).put(load))
        .route("/solar", post(solar).put(solar))
        .route("/ev", post(ev))
        .route("/power-failure", post(power_failure))
        .route("/tariff", post(tariff).put(tariff))
        .route("/message", post(message).put(message))
        .route("/fault", post(fault))
        .fallback(not_found)
        .with_state(api)
}

pub async fn serve(listener: TcpListener, api: Arc<Api>) {
    if let Err(e) = axum::serve(listener, router(api)).await {
        eprintln!("p1sim run: control API stopped: {e}");
    }
}

/// An error reply: a status and a message, sent as `{"error": "..."}`.
#[derive(Debug)]
pub struct Rejection(StatusCode, String);

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

type Reply = Result<Response, Rejection>;

fn error(status: StatusCode, message: impl Into<String>) -> Rejection {
    Rejection(status, message.into())
}

fn ok(v: Value) -> Reply {
    Ok(axum::Json(v).into_response())
}

async fn not_found() -> Rejection {
    error(StatusCode::NOT_FOUND, "no such endpoint; GET / lists them")
}

async fn index() -> Reply {
    ok(json!({
        "endpoints": {
            "GET /readings": "the meter's current values",
            "GET /status": "outputs, clients, counters",
            "GET /request": "the Request line of the PTY and TCP outputs",
            "POST /request": "{\"raised\": true|false}",
            "POST /load": "{\"watts\": 1500} or {\"watts\": null} to follow the household model",
            "POST /solar": "{\"watts\": 3000} or {\"watts\": null}",
            "POST /ev": "{\"watts\": 11000, \"seconds\": 3600}",
            "POST /power-failure": "{\"seconds\": 300}",
            "POST /tariff": "{\"tariff\": 1|2|null} (3 and 4 on meters that send them)",
            "POST /message": "{\"text\": \"...\"} (at most 1024 characters; \"\" clears)",
            "POST /fault": "{\"kind\": \"wrong-crc\"}: one fault in the next telegram",
        },
        "select_a_fleet_meter": "?meter=N",
    }))
}

/// Parses a JSON body into `T`, with the expected form in the error.
fn body<T: DeserializeOwned>(bytes: &Bytes, expected: &str) -> Result<T, Rejection> {
    serde_json::from_slice(bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("{e}; expected a JSON body like {expected}")))
}

fn meter(api: &Api, which: &Which) -> Result<mpsc::Sender<Control>, Rejection> {
    let i = which.meter.unwrap_or(0);
    api.meters.get(i).cloned().ok_or_else(|| {
        error(StatusCode::NOT_FOUND, format!("no meter {i}; this run has meters 0 to {}", api.meters.len() - 1))
    })
}

async fn ask<T>(tx: mpsc::Sender<Control>, make: impl FnOnce(oneshot::Sender<T>) -> Control) -> Result<T, Rejection> {
    let (reply, rx) = oneshot::channel();
    let gone = || error(StatusCode::SERVICE_UNAVAILABLE, "the meter is shutting down");
    tx.send(make(reply)).await.map_err(|_| gone())?;
    rx.await.map_err(|_| gone())
}

async fn command(api: &Api, which: &Which, cmd: Command) -> Reply {
    let tx = meter(api, which)?;
    ok(ask(tx, |reply| Control::Apply(cmd, reply)).await?)
}

async fn readings(State(api): Shared, Query(which): Query<Which>) -> Reply {
    let tx = meter(&api, &which)?;
    ok(ask(tx, Control::Readings).await?)
}

async fn status(State(api): Shared, Query(which): Query<Which>) -> Reply {
    let i = which.meter.unwrap_or(0);
    if i >= api.meters.len() {
        return Err(error(StatusCode::NOT_FOUND, format!("no meter {i}")));
    }
    let outputs: Vec<Value> = api
        .outputs
        .iter()
        .filter(|o| o.meter == i)
        .map(|o| {
            let mut v = json!({ "kind": o.kind, "name": o.name, "line": o.line.to_json() });
            let detail = match &o.detail {
                Detail::Pty(s) => json!({
                    "discarded_unread_bytes": s.discarded_unread.load(Relaxed),
                    "lost_bytes": s.lost.load(Relaxed),
                }),
                Detail::Tcp(h) => h.to_json(),
                Detail::Serial(s) => json!({
                    "disconnects": s.disconnects.load(Relaxed),
                    "reconnects": s.reconnects.load(Relaxed),
                    "lost_telegrams": s.lost_telegrams.load(Relaxed),
                }),
                Detail::Rig(s) => s.to_json(),
            };
            if let (Some(v), Value::Object(d)) = (v.as_object_mut(), detail) {
                v.extend(d);
            }
            v
        })
        .collect();
    ok(json!({ "meter": i, "meters": api.meters.len(), "request": api.request.is_up(), "outputs": outputs }))
}

async fn request_get(State(api): Shared) -> Reply {
    ok(json!({ "raised": api.request.is_up() }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RequestBody {
    raised: bool,
}

async fn request_set(State(api): Shared, b: Bytes) -> Reply {
    let r: RequestBody = body(&b, r#"{"raised": false}"#)?;
    api.request.set(r.raised);
    ok(json!({ "ok": true, "raised": r.raised }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Watts {
    watts: Option<u32>,
}

async fn load(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    let w: Watts = body(&b, r#"{"watts": 1500} or {"watts": null}"#)?;
    command(&api, &which, Command::SetLoad(w.watts)).await
}

async fn solar(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    let w: Watts = body(&b, r#"{"watts": 3000} or {"watts": null}"#)?;
    command(&api, &which, Command::SetSolar(w.watts)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ev {
    watts: u32,
    seconds: u32,
}

async fn ev(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    let e: Ev = body(&b, r#"{"watts": 11000, "seconds": 3600}"#)?;
    command(&api, &which, Command::StartCharging { watts: e.watts, seconds: e.seconds }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Seconds {
    seconds: u32,
}

async fn power_failure(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    let s: Seconds = body(&b, r#"{"seconds": 300}"#)?;
    if s.seconds == 0 {
        return Err(error(StatusCode::BAD_REQUEST, "a power failure lasts at least 1 second"));
    }
    command(&api, &which, Command::PowerFailure { seconds: s.seconds }).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tariff {
    tariff: Option<u8>,
}

async fn tariff(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    let t: Tariff = body(&b, r#"{"tariff": 2} or {"tariff": null} to follow the schedule"#)?;
    if let Some(n) = t.tariff.filter(|n| !(1..=api.tariffs).contains(n)) {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("tariff {n}: this meter books on tariffs 1 to {}", api.tariffs),
        ));
    }
    command(&api, &which, Command::SetTariff(t.tariff)).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    text: String,
}

/// DSMR allows 1024 characters in `0-0:96.13.0` (2048 hex digits, dsmr-facts.md A9/A12).
const MAX_MESSAGE: usize = 1024;

async fn message(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    let m: Message = body(&b, r#"{"text": "Hello"}"#)?;
    if m.text.chars().count() > MAX_MESSAGE {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("the text has {} characters; a meter takes at most {MAX_MESSAGE}", m.text.chars().count()),
        ));
    }
    command(&api, &which, Command::TextMessage(m.text)).await
}

async fn fault(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    let spec: Value = body(&b, r#"{"kind": "wrong-crc"}"#)?;
    let tx = meter(&api, &which)?;
    match ask(tx, |reply| Control::Inject(spec, reply)).await? {
        Ok(v) => ok(v),
        Err(m) => Err(error(StatusCode::BAD_REQUEST, m)),
    }
}
