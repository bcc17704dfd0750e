//! One live meter as a tokio task: it steps its generator from boundary to boundary on the
//! simulated clock, applies control commands, saves its state and hands each telegram to the
//! pacers ahead of its due time.
//!
//! The telegram for boundary `t` is rendered `lead` before `t` (at most 50 ms, a quarter of the
//! interval at high speed), so rendering, faults and the write-ahead state save never delay the
//! first byte; a command that arrives within that window shows in the telegram after.

use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use p1sim_core::decode::DEFAULT_MAX_LEN;
use p1sim_core::generator::Generator;
use p1sim_core::meter::Command;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot, watch};

use super::clock::SimClock;
use super::pacer::{Msg, Outgoing};
use super::state::StateFile;
use super::transform::Transform;

/// What the control API asks of a meter.
#[derive(Debug)]
pub enum Control {
    /// Applies a command; it shows in the next telegram.
    Apply(Command, oneshot::Sender<Value>),
    /// The current readings as JSON.
    Readings(oneshot::Sender<Value>),
    /// Hands a one-off change for the next telegram to the transform stage.
    Inject(Value, oneshot::Sender<Result<Value, String>>),
    /// Saves the state and ends the task.
    Shutdown(oneshot::Sender<()>),
}

/// Everything a meter task runs with.
pub struct MeterTask {
    pub index: usize,
    pub generator: Generator,
    pub clock: SimClock,
    /// Offset of this meter's boundaries from the clock's (fleet meters are spread over the interval).
    pub phase: Duration,
    pub pacers: Vec<Sender<Msg>>,
    pub state: Option<StateFile>,
    pub transform: Option<Box<dyn Transform>>,
    pub rx: mpsc::Receiver<Control>,
    /// The latest telegram and readings, for the live page's event streams; filled only while
    /// a page listens.
    pub live: Arc<watch::Sender<Option<Arc<Value>>>>,
    /// The activity log's telegram lines.
    pub activity: Option<Arc<super::activity::Activity>>,
}

impl std::fmt::Debug for MeterTask {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeterTask").field("index", &self.index).finish_non_exhaustive()
    }
}

/// Longest time a telegram is rendered ahead of its boundary.
const MAX_LEAD: Duration = Duration::from_millis(50);

/// Why a meter task ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// Told to stop (Ctrl-C, SIGTERM, the control API).
    Stopped,
    /// Its stream is over: a replay sent its last telegram.
    Finished,
}

impl MeterTask {
    pub async fn run(mut self) -> Ended {
        let interval = self.clock.wall_interval(self.generator.profile().interval_s);
        let lead = MAX_LEAD.min(interval / 4);
        let mut seq = 0u64;
        let mut buf = Vec::with_capacity(4096);
        let (mut exhausted_said, mut oversize_said) = (false, false);
        loop {
            let at = self.generator.next_at();
            let due = self.clock.deadline(at) + self.phase;
            let wake = due.checked_sub(lead).unwrap_or(due);
            let sleep = tokio::time::sleep_until(wake.into());
            tokio::pin!(sleep);
            loop {
                tokio::select! {
                    () = &mut sleep => break,
                    msg = self.rx.recv() => match msg {
                        None => return Ended::Stopped,
                        Some(Control::Shutdown(ack)) => {
                            self.save().await;
                            let _ = ack.send(());
                            return Ended::Stopped;
                        }
                        Some(c) => self.serve(c),
                    },
                }
            }
            // A finished stream ends a boundary after its last telegram: by then the lines have
            // sent it (a telegram is shorter than the interval).
            if self.transform.as_ref().is_some_and(|t| t.finished()) {
                return Ended::Finished;
            }
            // One boundary at a time: with no mains there is no telegram, and the meter stays in
            // step with the clock meanwhile.
            let Some(at) = self.generator.step() else { continue };
            if self.generator.frame_counter_exhausted() {
                if !exhausted_said {
                    exhausted_said = true;
                    eprintln!(
                        "p1sim run: meter {}: the Smarty frame counter is used up (4294967295 frames); the meter \
                         stops sending rather than reuse an AES-GCM nonce. Start a new meter (another --state \
                         file) or change the key",
                        self.index
                    );
                }
                continue;
            }
            buf.clear();
            let frame_counter = self.generator.render_current(&mut buf);
            let emitted = p1sim_core::generator::Emitted { at, frame_counter };
            let faults = match self.transform.as_mut() {
                Some(t) => t.apply(&mut self.generator, seq, emitted.at, &mut buf),
                None => Vec::new(),
            };
            // A replay has nothing due at this boundary.
            if buf.is_empty() {
                continue;
            }
            if buf.len() > DEFAULT_MAX_LEN && !oversize_said {
                oversize_said = true;
                eprintln!(
                    "p1sim run: meter {}: a telegram of {} bytes is over the 64 KiB a decoder buffers (p1sim's \
                     own included); readers will drop it",
                    self.index,
                    buf.len()
                );
            }
            // Write-ahead: on disk before the first byte leaves. A telegram whose state is not on
            // disk is never sent: after a crash its registers would go back.
            if !self.save().await {
                if let Some(f) = &self.state {
                    f.stats.withheld.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                continue;
            }
            let out = Arc::new(Outgoing { meter: self.index, seq, at: emitted.at, due, bytes: Arc::from(&buf[..]) });
            for p in &self.pacers {
                let _ = p.send(Msg::Telegram(Arc::clone(&out)));
            }
            if let Some(a) = &self.activity {
                a.telegram(self.index, seq, emitted.at, buf.len(), &faults);
            }
            if self.live.receiver_count() > 0 {
                let snapshot = self.snapshot(seq, &buf);
                self.live.send_replace(Some(Arc::new(snapshot)));
            }
            seq += 1;
            if due.checked_add(interval).is_some_and(|late| late < Instant::now()) {
                // Far behind (a suspended laptop, a long catch-up): rejoin the clock instead of
                // sending the missed telegrams back to back.
                let now_s = self.clock.sim_now_s();
                if now_s > self.generator.next_at() {
                    self.generator.skip_to(now_s);
                }
            }
        }
    }

    fn serve(&mut self, c: Control) {
        match c {
            Control::Apply(cmd, reply) => {
                self.generator.meter_mut().apply(cmd);
                let _ = reply.send(json!({ "ok": true, "meter": self.index, "shows_in": "the next telegram" }));
            }
            Control::Readings(reply) => {
                let _ = reply.send(self.readings());
            }
            Control::Inject(spec, reply) => {
                let r = match self.transform.as_mut() {
                    Some(t) => t.inject(spec),
                    None => Err("this run has no transform stage".to_string()),
                };
                let _ = reply.send(r);
            }
            Control::Shutdown(_) => {}
        }
    }

    /// The telegram just handed to the lines (its text; the plaintext for Smarty) with the
    /// readings it carries.
    fn snapshot(&mut self, seq: u64, sent: &[u8]) -> Value {
        let encrypted = self.generator.profile().is_encrypted();
        let text = String::from_utf8_lossy(if encrypted { self.generator.last_plaintext() } else { sent }).into_owned();
        let mut v = self.readings();
        if let Value::Object(o) = &mut v {
            o.insert("seq".into(), json!(seq));
            o.insert("telegram".into(), json!(text));
            o.insert("encrypted".into(), json!(encrypted));
            o.insert("sent_bytes".into(), json!(sent.len()));
        }
        v
    }

    fn readings(&mut self) -> Value {
        let name = self.generator.profile().name.clone();
        let interval = self.generator.profile().interval_s;
        let next_at = self.generator.next_at();
        let meter = self.generator.meter_mut();
        let now = meter.now();
        let state = meter.state();
        let (powered, frame_counter, overrides) =
            (meter.is_powered(), state.frame_counter, serde_json::to_value(&state.overrides).unwrap_or(Value::Null));
        let raw = meter.readings().clone();
        let readings = super::human::readings_json(&raw, self.generator.profile());
        json!({
            "meter": self.index,
            "profile": name,
            "interval_s": interval,
            "at": now,
            "at_rfc3339": jiff::Timestamp::from_second(now).map(|t| t.to_string()).unwrap_or_default(),
            "next_at": next_at,
            "powered": powered,
            "frame_counter": frame_counter,
            "overrides": overrides,
            "readings": readings,
        })
    }

    /// Saves the state, if this run keeps one; false when that failed (the file logs it).
    async fn save(&self) -> bool {
        let Some(file) = &self.state else { return true };
        let state = self.generator.meter().state().clone();
        let file = file.clone();
        matches!(tokio::task::spawn_blocking(move || file.save(&state)).await, Ok(Ok(())))
    }
}
