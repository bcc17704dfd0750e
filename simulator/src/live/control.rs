//! The control API of a live run: a small HTTP/JSON server on loopback to read the meter's values
//! and change its state while it runs (load, solar, EV, power failure, tariff, text message, the
//! Request line, one-off faults). Changes show in the next telegram.
//!
//! It has no login, so it defends itself against the two things that can reach a loopback port
//! from outside the user's own scripts:
//! - web pages in the user's browser: a POST must carry `Content-Type: application/json`, which a
//!   page can only send to another origin after a CORS preflight this server never grants, and a
//!   request with an `Origin` other than the server's own is refused;
//! - DNS rebinding (a hostile name that resolves to 127.0.0.1): the `Host` header must be the
//!   bound address or `localhost` with its port.
//!
//! Every connection, request and value is bounded: at most [`MAX_CONNECTIONS`] connections, the
//! headers within [`HEADER_TIMEOUT`], a body of at most [`MAX_BODY`] bytes within
//! [`BODY_TIMEOUT`], watts, seconds and fault sizes within the meter's limits.
//! `?meter=N` picks a fleet meter (default 0).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use p1sim_core::meter::{Command, MAX_DURATION_S, MAX_POWER_W};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use super::meter::Control;
use super::pacer::{LineStats, RequestLine};
use super::page;
#[cfg(unix)]
use super::pty::PtyStats;
use super::serial::SerialStats;
use super::state::StateFile;
use super::tcp::Hub;

/// Connections served at once; more are closed on accept (and counted).
pub const MAX_CONNECTIONS: usize = 32;
/// Time a connection has to send a request's headers, and the longest an idle keep-alive
/// connection is kept.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a request has to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest request body: the longest valid one is a 1024-character text message.
pub const MAX_BODY: usize = 16 * 1024;
/// The largest request head (request line and headers).
const MAX_HEAD: usize = 16 * 1024;

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
    #[cfg(unix)]
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
    /// The state file of a single meter run with `--state`.
    pub state: Option<StateFile>,
    pub http: HttpStats,
    /// Per meter, the latest telegram and readings, for the page's event streams.
    pub snapshots: Vec<Arc<watch::Sender<Option<Arc<Value>>>>>,
    /// The profile, as the page shows it.
    pub profile: Value,
    /// Event streams open at once, at most [`page::MAX_STREAMS`].
    pub streams: Arc<Semaphore>,
    /// The tariff registers the meters book on (`/tariff` accepts 1 to this): 2, or 4 on meters
    /// that send 1.8.3 and 1.8.4.
    pub tariffs: u8,
}

impl Api {
    pub fn new(
        meters: Vec<mpsc::Sender<Control>>,
        request: Arc<RequestLine>,
        outputs: Vec<OutputInfo>,
        snapshots: Vec<Arc<watch::Sender<Option<Arc<Value>>>>>,
        profile: Value,
        tariffs: u8,
    ) -> Api {
        Api {
            meters,
            request,
            outputs,
            state: None,
            http: HttpStats::default(),
            snapshots,
            profile,
            streams: Arc::new(Semaphore::new(page::MAX_STREAMS)),
            tariffs,
        }
    }
}

/// Counters of the HTTP server itself.
#[derive(Debug, Default)]
pub struct HttpStats {
    /// Connections closed on accept because [`MAX_CONNECTIONS`] were open.
    pub refused_connections: AtomicU64,
    /// Requests refused for their Host, Origin, Content-Type or body.
    pub rejected_requests: AtomicU64,
    /// Connections open now.
    pub open: AtomicU64,
}

pub type Shared = State<Arc<Api>>;

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

/// The addresses a request may name in `Host` (and, as `http://HOST`, in `Origin`).
#[derive(Debug, Clone)]
pub struct Guard {
    hosts: Vec<String>,
    api: Arc<Api>,
}

impl Guard {
    /// For a server bound to `addr`: `127.0.0.1:PORT` (or `[::1]:PORT`) and `localhost:PORT`.
    pub fn for_address(addr: SocketAddr, api: Arc<Api>) -> Guard {
        let port = addr.port();
        let mut hosts = vec![addr.to_string(), format!("localhost:{port}")];
        if port == 80 {
            hosts.push(match addr {
                SocketAddr::V4(a) => a.ip().to_string(),
                SocketAddr::V6(a) => format!("[{}]", a.ip()),
            });
            hosts.push("localhost".into());
        }
        Guard { hosts, api }
    }

    /// Whether a request may reach the handlers: its Host, its Origin and, for a change, its
    /// Content-Type. The error says what to send instead.
    pub fn check(&self, method: &Method, headers: &HeaderMap) -> Result<(), Rejection> {
        let text = |name: header::HeaderName| headers.get(name).map(|v| v.to_str().unwrap_or("(not text)"));
        let host = text(header::HOST).unwrap_or("");
        if !self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err(error(
                StatusCode::FORBIDDEN,
                format!(
                    "Host {host:?} is not this server; the control API answers only to {} (this refuses DNS rebinding)",
                    self.hosts.join(" or ")
                ),
            ));
        }
        if let Some(origin) = text(header::ORIGIN) {
            let own =
                origin.strip_prefix("http://").is_some_and(|o| self.hosts.iter().any(|h| h.eq_ignore_ascii_case(o)));
            if !own {
                return Err(error(
                    StatusCode::FORBIDDEN,
                    format!("Origin {origin:?} may not use the control API; only pages it serves itself may"),
                ));
            }
        }
        if *method == Method::POST || *method == Method::PUT {
            let json = text(header::CONTENT_TYPE)
                .and_then(|c| c.split(';').next())
                .is_some_and(|c| c.trim().eq_ignore_ascii_case("application/json"));
            if !json {
                return Err(error(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "send the body as JSON with Content-Type: application/json (curl --json '{...}' URL)",
                ));
            }
        }
        Ok(())
    }
}

/// Refuses requests the [`Guard`] does not let through, and reads bodies within their limits.
async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    let reject = |r: Rejection| {
        g.api.http.rejected_requests.fetch_add(1, Relaxed);
        r.into_response()
    };
    if let Err(r) = g.check(req.method(), req.headers()) {
        return reject(r);
    }
    let (parts, body) = req.into_parts();
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return reject(error(StatusCode::PAYLOAD_TOO_LARGE, format!("a body has at most {MAX_BODY} bytes")));
        }
        Err(_) => {
            return reject(error(
                StatusCode::REQUEST_TIMEOUT,
                format!("the body did not arrive within {} s", BODY_TIMEOUT.as_secs()),
            ));
        }
    };
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

fn routes(api: Arc<Api>) -> Router {
    Router::new()
        .route("/", get(page::index))
        .route("/app.js", get(page::script))
        .route("/style.css", get(page::style))
        .route("/events", get(page::events))
        .route("/api", get(index))
        .route("/api/faults", get(page::faults))
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

/// Serves the API on a bound listener until the run ends: at most [`MAX_CONNECTIONS`] at once,
/// each with [`HEADER_TIMEOUT`] to send its headers (idle keep-alive connections included).
pub async fn serve(listener: TcpListener, api: Arc<Api>) {
    let Ok(local) = listener.local_addr() else { return };
    let app = routes(Arc::clone(&api))
        .layer(middleware::from_fn_with_state(Guard::for_address(local, Arc::clone(&api)), guard));
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                eprintln!("p1sim run: control API: cannot accept a connection: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            api.http.refused_connections.fetch_add(1, Relaxed);
            drop(stream);
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let api = Arc::clone(&api);
        tokio::spawn(async move {
            api.http.open.fetch_add(1, Relaxed);
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            let _ = conn.await;
            api.http.open.fetch_sub(1, Relaxed);
            drop(slot);
        });
    }
}

/// An error reply: a status and a message, sent as `{"error": "..."}`.
#[derive(Debug)]
pub struct Rejection(pub StatusCode, pub String);

/// `?meter=N`.
#[derive(Debug, Deserialize)]
pub struct Which {
    pub meter: Option<usize>,
}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        (self.0, axum::Json(json!({ "error": self.1 }))).into_response()
    }
}

pub type Reply = Result<Response, Rejection>;

pub fn error(status: StatusCode, message: impl Into<String>) -> Rejection {
    Rejection(status, message.into())
}

fn ok(v: Value) -> Reply {
    Ok(axum::Json(v).into_response())
}

async fn not_found() -> Rejection {
    error(StatusCode::NOT_FOUND, "no such endpoint; GET /api lists them")
}

async fn index() -> Reply {
    ok(json!({
        "endpoints": {
            "GET /": "the live page (HTML) for a browser",
            "GET /events": "server-sent events: the telegram, readings and status at every telegram",
            "GET /api/faults": "the fault catalogue",
            "GET /readings": "the meter's current values (raw integers, and human units beside them)",
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
fn body<T: DeserializeOwned>(bytes: &[u8], expected: &str) -> Result<T, Rejection> {
    serde_json::from_slice(bytes)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("{e}; expected a JSON body like {expected}")))
}

pub fn meter(api: &Api, which: &Which) -> Result<mpsc::Sender<Control>, Rejection> {
    let i = which.meter.unwrap_or(0);
    api.meters.get(i).cloned().ok_or_else(|| {
        error(StatusCode::NOT_FOUND, format!("no meter {i}; this run has meters 0 to {}", api.meters.len() - 1))
    })
}

pub async fn ask<T>(
    tx: mpsc::Sender<Control>,
    make: impl FnOnce(oneshot::Sender<T>) -> Control,
) -> Result<T, Rejection> {
    let (reply, rx) = oneshot::channel();
    let gone = || error(StatusCode::SERVICE_UNAVAILABLE, "the meter is shutting down");
    tx.send(make(reply)).await.map_err(|_| gone())?;
    rx.await.map_err(|_| gone())
}

async fn command(api: &Api, which: &Which, cmd: Command) -> Reply {
    let tx = meter(api, which)?;
    let said = describe_command(&cmd);
    let reply = ask(tx, |reply| Control::Apply(cmd, reply)).await?;
    log::info!("control: {}{said}", meter_prefix(api, which));
    ok(reply)
}

/// "meter N: " in a fleet, nothing for a single meter.
fn meter_prefix(api: &Api, which: &Which) -> String {
    if api.meters.len() > 1 { format!("meter {}: ", which.meter.unwrap_or(0)) } else { String::new() }
}

/// A command as the activity log tells it.
fn describe_command(cmd: &Command) -> String {
    let watts = |w: &Option<u32>| w.map_or("back to the household model".to_string(), |w| format!("{w} W"));
    match cmd {
        Command::SetLoad(w) => format!("household load {}", watts(w)),
        Command::SetSolar(w) => format!("solar {}", watts(w)),
        Command::StartCharging { watts, seconds } => format!("charging a car at {watts} W for {seconds} s"),
        Command::PowerFailure { seconds } => format!("power failure for {seconds} s: no telegrams until it ends"),
        Command::TextMessage(t) => format!("text message {:?}", t.chars().take(60).collect::<String>()),
        Command::SetTariff(Some(t)) => format!("tariff {t} forced"),
        Command::SetTariff(None) => "tariff back to the schedule".to_string(),
    }
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
    ok(status_json(&api, i))
}

/// `/status` of meter `i` (which must exist).
pub fn status_json(api: &Api, i: usize) -> Value {
    let outputs: Vec<Value> = api
        .outputs
        .iter()
        .filter(|o| o.meter == i)
        .map(|o| {
            let mut v = json!({ "kind": o.kind, "name": o.name, "line": o.line.to_json() });
            let detail = match &o.detail {
                #[cfg(unix)]
                Detail::Pty(s) => json!({
                    "discarded_unread_bytes": s.discarded_unread.load(Relaxed),
                    "discarded_telegrams": s.discarded_telegrams.load(Relaxed),
                    "lost_bytes": s.lost.load(Relaxed),
                    "settings_restored": s.settings_restored.load(Relaxed),
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
    let http = &api.http;
    json!({
        "meter": i,
        "meters": api.meters.len(),
        "request": api.request.is_up(),
        "outputs": outputs,
        "state": api.state.as_ref().map(|f| f.stats.to_json(f.path())),
        "control": {
            "open_connections": http.open.load(Relaxed),
            "connection_limit": MAX_CONNECTIONS,
            "refused_connections": http.refused_connections.load(Relaxed),
            "rejected_requests": http.rejected_requests.load(Relaxed),
        },
        "profile": api.profile,
    })
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
    if api.request.is_up() != r.raised {
        log::info!(
            "control: Request {}",
            if r.raised { "raised: a fresh telegram starts" } else { "dropped: output stops at once" }
        );
    }
    api.request.set(r.raised);
    ok(json!({ "ok": true, "raised": r.raised }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Watts {
    watts: Option<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Ev {
    watts: u32,
    seconds: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Seconds {
    seconds: u32,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Tariff {
    tariff: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Message {
    text: String,
}

/// DSMR allows 1024 characters in `0-0:96.13.0` (2048 hex digits; DSMR 5.0.2 P1 Companion
/// Standard, table 6-1).
const MAX_MESSAGE: usize = 1024;

fn bad(message: String) -> Rejection {
    error(StatusCode::BAD_REQUEST, message)
}

fn power(w: u32) -> Result<u32, Rejection> {
    if w > MAX_POWER_W {
        return Err(bad(format!("{w} W is more than a household connection carries; at most {MAX_POWER_W} W")));
    }
    Ok(w)
}

fn duration(what: &str, s: u32) -> Result<u32, Rejection> {
    if s == 0 || s > MAX_DURATION_S {
        return Err(bad(format!("{what} lasts 1 to {MAX_DURATION_S} seconds (a year), not {s}")));
    }
    Ok(s)
}

/// The meter command a POST body to `endpoint` (`load`, `solar`, `ev`, `power-failure`,
/// `tariff`, `message`) asks for, with every value checked against the meter's limits.
pub fn command_from(endpoint: &str, b: &[u8]) -> Result<Command, Rejection> {
    Ok(match endpoint {
        "load" => {
            Command::SetLoad(body::<Watts>(b, r#"{"watts": 1500} or {"watts": null}"#)?.watts.map(power).transpose()?)
        }
        "solar" => {
            Command::SetSolar(body::<Watts>(b, r#"{"watts": 3000} or {"watts": null}"#)?.watts.map(power).transpose()?)
        }
        "ev" => {
            let e: Ev = body(b, r#"{"watts": 11000, "seconds": 3600}"#)?;
            Command::StartCharging { watts: power(e.watts)?, seconds: duration("a charging session", e.seconds)? }
        }
        "power-failure" => {
            let s: Seconds = body(b, r#"{"seconds": 300}"#)?;
            Command::PowerFailure { seconds: duration("a power failure", s.seconds)? }
        }
        "tariff" => {
            let t: Tariff = body(b, r#"{"tariff": 2} or {"tariff": null} to follow the schedule"#)?;
            if let Some(n) = t.tariff.filter(|n| !(1..=p1sim_core::tariff::MAX_TARIFFS).contains(n)) {
                return Err(bad(format!("tariff {n}: meters have tariffs 1 to {}", p1sim_core::tariff::MAX_TARIFFS)));
            }
            Command::SetTariff(t.tariff)
        }
        "message" => {
            let m: Message = body(b, r#"{"text": "Hello"}"#)?;
            let n = m.text.chars().count();
            if n > MAX_MESSAGE || m.text.contains(['\r', '\n']) {
                return Err(bad(format!(
                    "the text has {n} characters; a meter takes one line of at most {MAX_MESSAGE}"
                )));
            }
            Command::TextMessage(m.text)
        }
        other => return Err(error(StatusCode::NOT_FOUND, format!("no command endpoint /{other}"))),
    })
}

async fn load(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    command(&api, &which, command_from("load", &b)?).await
}

async fn solar(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    command(&api, &which, command_from("solar", &b)?).await
}

async fn ev(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    command(&api, &which, command_from("ev", &b)?).await
}

async fn power_failure(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    command(&api, &which, command_from("power-failure", &b)?).await
}

async fn tariff(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    let command_asked = command_from("tariff", &b)?;
    if let Command::SetTariff(Some(n)) = command_asked
        && n > api.tariffs
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            format!("tariff {n}: this meter books on tariffs 1 to {}", api.tariffs),
        ));
    }
    command(&api, &which, command_asked).await
}

async fn message(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    command(&api, &which, command_from("message", &b)?).await
}

async fn fault(State(api): Shared, Query(which): Query<Which>, b: Bytes) -> Reply {
    let spec: Value = body(&b, r#"{"kind": "wrong-crc"}"#)?;
    let tx = meter(&api, &which)?;
    let kind = spec.get("kind").and_then(Value::as_str).unwrap_or("?").chars().take(40).collect::<String>();
    match ask(tx, |reply| Control::Inject(spec, reply)).await? {
        Ok(v) => {
            log::info!("control: {}fault {kind} queued for the next telegram", meter_prefix(&api, &which));
            ok(v)
        }
        Err(m) => Err(error(StatusCode::BAD_REQUEST, m)),
    }
}
