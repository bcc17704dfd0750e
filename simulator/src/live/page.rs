//! The live page of `p1sim run --control`: one HTML page, a stylesheet and a script, embedded in
//! the binary (no build step, nothing fetched from elsewhere), and the event stream that feeds it.
//!
//! The page shows the meter, its live values in human units, a power chart, the last telegram
//! with the lines that changed, and a control for every control-API action. It talks only to its
//! own origin: one `EventSource` on `/events` for updates at each telegram, and `fetch` with
//! `Content-Type: application/json` for changes, so the API's guard (loopback, Host, Origin,
//! JSON) applies to it as to any script. It is served with a content security policy that allows
//! nothing from elsewhere and forbids framing, so another site cannot embed it to steal clicks.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream::{self, Stream};
use serde_json::{Value, json};

use super::control::{Reply, Shared, Which, error, status_json};

const INDEX: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/app.js");
const STYLE: &str = include_str!("page/style.css");

/// Event streams open at once (each a page in a browser tab); more are refused with 503.
pub const MAX_STREAMS: usize = 8;

/// Nothing from other origins, no inline script, no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                      img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    r
}

pub async fn index() -> Response {
    asset("text/html; charset=utf-8", INDEX)
}

pub async fn script() -> Response {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> Response {
    asset("text/css; charset=utf-8", STYLE)
}

/// The fault catalogue, for the page's fault picker.
pub async fn faults() -> Reply {
    let list: Vec<Value> = p1sim_core::fault::catalogue::CATALOGUE
        .iter()
        .map(|e| json!({ "kind": e.name, "description": e.description, "example": e.example }))
        .collect();
    Ok(axum::Json(json!({ "faults": list })).into_response())
}

/// Server-sent events for one meter: an `update` with the telegram, readings and status at every
/// telegram (and at once on connect), from the same state the API reads. A page that falls
/// behind skips to the latest telegram; nothing queues up.
pub async fn events(
    State(api): Shared,
    Query(which): Query<Which>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, super::control::Rejection> {
    let i = which.meter.unwrap_or(0);
    let Some(live) = api.snapshots.get(i) else {
        return Err(error(StatusCode::NOT_FOUND, format!("no meter {i}")));
    };
    let Ok(slot) = Arc::clone(&api.streams).try_acquire_owned() else {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{MAX_STREAMS} pages are open already; close one (each tab keeps one stream)"),
        ));
    };
    let mut rx = live.subscribe();
    // The latest telegram at once, if there is one; then each new one.
    rx.mark_changed();
    let api = Arc::clone(&api);
    let updates = stream::unfold((rx, api, slot), move |(mut rx, api, slot)| async move {
        rx.changed().await.ok()?;
        let snapshot = rx.borrow_and_update().clone();
        let data = json!({ "telegram": snapshot.as_deref(), "status": status_json(&api, i) });
        let event = Event::default().event("update").data(data.to_string());
        Some((Ok(event), (rx, api, slot)))
    });
    Ok(Sse::new(updates).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
