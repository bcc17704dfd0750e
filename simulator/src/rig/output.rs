//! The rig as an output of `p1sim run --rig DEV`: each telegram the meter renders goes to the
//! rig at its interval boundary, with the run's bit-level faults, and the rig puts it on a real
//! P1 line for the interface board under test; what the board makes of it comes back as
//! captured bytes (`--capture FILE`).
//!
//! The rig paces the bytes itself (its PIO sends at the line rate), so this output only decides
//! when a telegram starts, as the pacer does for the other lines (`live::pacer`): a telegram
//! that comes due while Request is low is withheld; when Request rises, the newest telegram
//! starts at once; one that comes due while the line is still busy waits, the newest winning;
//! a Request drop cuts the telegram on the line (the rig's PIO stops within a slot, and the rig
//! reports how many characters went out).
//!
//! Two threads: one takes telegrams from the meter and waits for their boundaries, one takes
//! the rig's events; both go through one lock on the line's state.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use p1sim_core::fault::scenario::Scenario;
use p1sim_core::profile::Profile;
use p1sim_core::rig::{AbortReason, FaultPlan, RequestMode, caps};
use serde_json::{Value, json};

use super::client::{Rig, RigEvent, RigSender, Settings, describe_line, protocol_plan};
use super::transport::Connector;
use crate::live::pacer::{LineStats, Msg, Outgoing};

/// What `--rig` asked for.
#[derive(Debug, Clone)]
pub struct RigPlan {
    pub device: String,
    pub request: RequestMode,
    /// Where the board's output goes, byte for byte.
    pub capture: Option<PathBuf>,
}

/// Counters of the rig output, for the control API's status and the summary at the end.
#[derive(Debug, Default)]
pub struct RigStats {
    pub connected: AtomicBool,
    pub disconnects: AtomicU64,
    pub reconnects: AtomicU64,
    /// Telegrams that came due while the rig was disconnected.
    pub unsent: AtomicU64,
    /// Bytes the capture input received from the board.
    pub captured: AtomicU64,
    /// Of those, characters with a framing or parity error or a break.
    pub capture_errors: AtomicU64,
    /// Overrun reports (capture FIFO or queue, TX underrun, events).
    pub overruns: AtomicU64,
    /// Messages the rig refused.
    pub device_errors: AtomicU64,
    /// Frames from the rig that could not be read.
    pub malformed: AtomicU64,
}

impl RigStats {
    /// Everything that went wrong: what a bench test checks is zero.
    pub fn errors(&self) -> u64 {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        g(&self.unsent) + g(&self.capture_errors) + g(&self.overruns) + g(&self.device_errors) + g(&self.malformed)
    }

    pub fn to_json(&self) -> Value {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "connected": self.connected.load(Ordering::Relaxed),
            "disconnects": g(&self.disconnects),
            "reconnects": g(&self.reconnects),
            "unsent_telegrams": g(&self.unsent),
            "captured_bytes": g(&self.captured),
            "capture_errors": g(&self.capture_errors),
            "overruns": g(&self.overruns),
            "device_errors": g(&self.device_errors),
            "malformed_frames": g(&self.malformed),
            "errors": self.errors(),
        })
    }
}

/// The line as this output sees it.
struct LineState {
    mode: RequestMode,
    up: bool,
    /// The newest telegram that came due: what a rising Request starts.
    latest: Option<Arc<Outgoing>>,
    /// The id of the telegram on the line.
    on_line: Option<u16>,
    /// Came due while the line was busy; the newest wins.
    pending: Option<Arc<Outgoing>>,
}

struct Shared {
    name: String,
    sender: RigSender,
    plan: FaultPlan,
    state: Mutex<LineState>,
    line: Arc<LineStats>,
    stats: Arc<RigStats>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, LineState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn start(&self, st: &mut LineState, t: Arc<Outgoing>) {
        let id = self.sender.send(Arc::clone(&t.bytes), self.plan.clone());
        st.on_line = Some(id);
        self.line.started.fetch_add(1, Ordering::Relaxed);
    }

    /// A telegram's boundary has come.
    fn due(&self, t: Arc<Outgoing>) {
        let mut st = self.lock();
        self.line.due.fetch_add(1, Ordering::Relaxed);
        st.latest = Some(Arc::clone(&t));
        if st.mode == RequestMode::Honour && !st.up {
            self.line.withheld.fetch_add(1, Ordering::Relaxed);
        } else if st.on_line.is_some() {
            if st.pending.replace(t).is_some() {
                self.line.skipped.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            self.start(&mut st, t);
        }
    }

    fn event(&self, e: RigEvent, capture: &mut Option<File>) {
        let mut st = self.lock();
        let relaxed = Ordering::Relaxed;
        match e {
            RigEvent::Request { high, .. } => {
                self.line.request.store(high, relaxed);
                if st.up == high {
                    return;
                }
                st.up = high;
                if !high {
                    // The rig cut the telegram on the line; nothing queued may follow it.
                    if st.pending.take().is_some() {
                        self.line.skipped.fetch_add(1, relaxed);
                    }
                    self.sender.cancel();
                } else if st.mode == RequestMode::Honour
                    && let Some(latest) = st.latest.clone()
                {
                    // As a meter does right after activation: the newest telegram, at once.
                    if st.on_line.is_some() {
                        st.pending = Some(latest);
                    } else {
                        self.start(&mut st, latest);
                    }
                }
            }
            RigEvent::SendComplete { id, bytes } => {
                self.line.bytes.fetch_add(u64::from(bytes), relaxed);
                if st.on_line == Some(id) {
                    st.on_line = None;
                    self.line.completed.fetch_add(1, relaxed);
                    if let Some(next) = st.pending.take() {
                        self.start(&mut st, next);
                    }
                }
            }
            RigEvent::SendAborted { id, bytes, reason } => {
                self.line.bytes.fetch_add(u64::from(bytes), relaxed);
                if reason == AbortReason::RequestDropped {
                    self.line.cut.fetch_add(1, relaxed);
                }
                if st.on_line == Some(id) {
                    st.on_line = None;
                    if let Some(next) = st.pending.take() {
                        self.start(&mut st, next);
                    }
                }
            }
            RigEvent::Unsent { id } => {
                self.stats.unsent.fetch_add(1, relaxed);
                if st.on_line == Some(id) {
                    st.on_line = None;
                }
            }
            RigEvent::Captured(chars) => {
                self.stats.captured.fetch_add(chars.len() as u64, relaxed);
                let flagged = chars.iter().filter(|c| c.flags != 0).count() as u64;
                self.stats.capture_errors.fetch_add(flagged, relaxed);
                if let Some(f) = capture.as_mut() {
                    let bytes: Vec<u8> = chars.iter().map(|c| c.byte).collect();
                    if let Err(err) = f.write_all(&bytes).and_then(|()| f.flush()) {
                        log::warn!("rig {}: cannot write the capture file ({err}); capture stops", self.name);
                        *capture = None;
                    }
                }
            }
            RigEvent::Status(s) => {
                st.up = s.request_high;
                self.line.request.store(s.request_high, relaxed);
            }
            // `run --rig` never asks for measurements.
            RigEvent::Measured(_) => {}
            RigEvent::Overrun { .. } => {
                self.stats.overruns.fetch_add(1, relaxed);
                log::warn!("rig {}: {}", self.name, e.describe());
            }
            RigEvent::DeviceError { .. } => {
                self.stats.device_errors.fetch_add(1, relaxed);
                log::warn!("rig {}: {}", self.name, e.describe());
            }
            RigEvent::Malformed(_) => {
                self.stats.malformed.fetch_add(1, relaxed);
                log::warn!("rig {}: {}", self.name, e.describe());
            }
            RigEvent::Disconnected(_) => {
                self.stats.connected.store(false, relaxed);
                self.stats.disconnects.fetch_add(1, relaxed);
                st.on_line = None;
                st.pending = None;
                log::warn!("rig {}: {}", self.name, e.describe());
            }
            RigEvent::Reconnected(ref info) => {
                self.stats.connected.store(true, relaxed);
                self.stats.reconnects.fetch_add(1, relaxed);
                st.up = info.status.request_high;
                self.line.request.store(st.up, relaxed);
                log::warn!("rig {}: {}", self.name, e.describe());
            }
        }
    }
}

/// A running rig output.
#[derive(Debug)]
pub struct RigOutput {
    name: String,
    described: String,
    tx: Sender<Msg>,
    rig: Option<Rig>,
    threads: Vec<JoinHandle<()>>,
    pub line: Arc<LineStats>,
    pub stats: Arc<RigStats>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").field("name", &self.name).finish_non_exhaustive()
    }
}

impl RigOutput {
    /// Connects to the rig on `plan.device` and starts feeding it.
    pub fn start(plan: &RigPlan, profile: &Profile, faults: Option<&Scenario>) -> Result<RigOutput> {
        RigOutput::start_with(crate::rig::transport::connector_for(&plan.device), plan, profile, faults)
    }

    /// [`RigOutput::start`] through any connector (tests use the simulated rig).
    pub fn start_with(
        connector: Box<dyn Connector>,
        plan: &RigPlan,
        profile: &Profile,
        faults: Option<&Scenario>,
    ) -> Result<RigOutput> {
        let name = connector.name().to_string();
        let wire_plan = match faults.and_then(|s| s.wire.as_ref()) {
            Some(p) => protocol_plan(p).context("--faults [wire] on the rig")?,
            None => FaultPlan::default(),
        };
        let capture = match &plan.capture {
            Some(path) => {
                Some(File::create(path).with_context(|| format!("--capture: cannot create {}", path.display()))?)
            }
            None => None,
        };
        let mut settings = Settings::p1(profile.line);
        settings.request = plan.request;
        let (rig, events) = Rig::connect(connector, settings)?;
        let info = rig.info();
        if info.capabilities & caps::SEND == 0 {
            bail!(
                "the rig at {name} runs the standalone pocket-meter firmware ({}), which makes its own telegrams; \
                 flash the host-driven build (`cargo xtask firmware`, target/rig-firmware/p1sim-rig.uf2) for --rig",
                if info.profile.is_empty() { "no profile".to_string() } else { info.profile.clone() }
            );
        }
        let stats = Arc::new(RigStats::default());
        stats.connected.store(true, Ordering::Relaxed);
        let line = Arc::new(LineStats::default());
        line.request.store(info.status.request_high, Ordering::Relaxed);
        let shared = Arc::new(Shared {
            name: name.clone(),
            sender: rig.sender(),
            plan: wire_plan,
            state: Mutex::new(LineState {
                mode: plan.request,
                up: info.status.request_high,
                latest: None,
                on_line: None,
                pending: None,
            }),
            line: Arc::clone(&line),
            stats: Arc::clone(&stats),
        });
        let (tx, rx) = mpsc::channel();
        let s = Arc::clone(&shared);
        let telegrams = std::thread::Builder::new()
            .name("p1sim-rig-out".into())
            .spawn(move || telegram_loop(rx, &s))
            .context("cannot start the rig output thread")?;
        let s = Arc::clone(&shared);
        let mut capture = capture;
        let event_thread = std::thread::Builder::new()
            .name("p1sim-rig-events".into())
            .spawn(move || {
                for e in events {
                    s.event(e, &mut capture);
                }
            })
            .context("cannot start the rig event thread")?;
        let described = format!(
            "rig: {name} (firmware {}, line {}, Request {}{})",
            info.firmware,
            describe_line(&info.status.line),
            match plan.request {
                RequestMode::Honour => "honoured",
                RequestMode::Ignore => "ignored",
            },
            plan.capture.as_ref().map(|p| format!(", board output to {}", p.display())).unwrap_or_default()
        );
        Ok(RigOutput { name, described, tx, rig: Some(rig), threads: vec![telegrams, event_thread], line, stats })
    }

    /// One line for the run's banner.
    pub fn describe(&self) -> &str {
        &self.described
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where the meter hands its telegrams, as it does to its pacers.
    pub fn sender(&self) -> Sender<Msg> {
        self.tx.clone()
    }

    /// Stops feeding the rig, closes it and returns a summary of the run.
    pub fn stop(mut self) -> String {
        let _ = self.tx.send(Msg::Stop);
        // Closing the rig ends its event channel, which ends the event thread.
        if let Some(rig) = self.rig.take() {
            rig.close();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        self.summary()
    }

    /// Telegrams, capture and errors so far.
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "rig {}: {} telegrams started, {} complete, {} cut by Request, {} withheld; {} bytes captured from the \
             board ({} with receiver errors); {} errors",
            self.name,
            g(&self.line.started),
            g(&self.line.completed),
            g(&self.line.cut),
            g(&self.line.withheld),
            g(&self.stats.captured),
            g(&self.stats.capture_errors),
            self.stats.errors()
        )
    }
}

fn telegram_loop(rx: Receiver<Msg>, shared: &Shared) {
    while let Ok(msg) = rx.recv() {
        match msg {
            Msg::Telegram(t) => {
                // The meter hands telegrams in shortly before their boundary.
                let wait = t.due.saturating_duration_since(Instant::now());
                if !wait.is_zero() {
                    std::thread::sleep(wait);
                }
                shared.due(t);
            }
            Msg::Wake => {}
            Msg::Stop => return,
        }
    }
}
