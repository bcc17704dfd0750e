//! The board under test as the bench drives it: a rig (on USB, or the in-memory rig with a
//! virtual board: the twin), the path the board's output comes back on (the rig's capture
//! input, or a USB-UART the board feeds), and whoever can drive Request (the reader's modem
//! line, or the twin's simulated reader).
//!
//! Every phase talks to a [`Station`] only, so a plan runs the same way against hardware and
//! against the twin.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use p1sim_core::LineSettings;
use p1sim_core::rig::{
    AbortReason, CaptureConfig, Captured, ErrorCode, FaultPlan, LineConfig, MAX_OVERSAMPLING, MEASURE_VERSION,
    MeasureRequest, Measured, Quantity, RequestMode, caps,
};
use p1sim_core::wire::board::{Board, LineSense};

use crate::rig::fake::{Behaviour, FakeRig};
use crate::rig::transport::{Connector, connector_for};
use crate::rig::{Rig, RigEvent, Settings};

use super::readback::{PortReader, RequestVia};

/// What is under test, for the record.
#[derive(Debug, Clone, PartialEq)]
pub enum Dut {
    /// A real board on a rig.
    Rig { device: String, firmware: String },
    /// The virtual twin of a board.
    Twin { board: Board },
}

/// Where the board's output comes back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readback {
    /// The rig's capture input.
    Capture,
    /// A USB-UART the board feeds, at this path.
    Port(String),
}

/// How a station is put together, from the command line.
#[derive(Debug, Clone)]
pub struct Options {
    pub readback: Readback,
    /// The reader's modem line that drives the board's Request (with a `Port` readback).
    pub request_via: Option<RequestVia>,
    /// Every wait is this many times longer (for slow rigs such as the emulator).
    pub patience: f64,
}

impl Default for Options {
    fn default() -> Self {
        Options { readback: Readback::Capture, request_via: None, patience: 1.0 }
    }
}

/// One telegram through the board: what the rig put on the line and what came back.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    /// Characters that went out whole.
    pub sent: usize,
    /// Request dropped mid-telegram, cutting it after `sent` characters.
    pub cut: bool,
    /// What the reader received, with receiver flags where the readback gives them.
    pub got: Vec<Captured>,
    /// Request edges seen meanwhile (`true` = raised).
    pub request_edges: Vec<bool>,
}

/// The board under test, ready for phases.
#[derive(Debug)]
pub struct Station {
    dut: Dut,
    rig: Rig,
    events: Receiver<RigEvent>,
    settings: Settings,
    readback: Readback,
    port: Option<PortReader>,
    request_via: Option<RequestVia>,
    /// The in-memory rig of a twin: its simulated reader drives Request.
    twin: Option<FakeRig>,
    request_high: bool,
    /// Quiet time after a telegram before its output counts as complete.
    lag: Duration,
    patience: f64,
    /// Captured characters the rig reported lost (its capture FIFO or USB queue overflowed).
    pub capture_lost: u64,
    /// The rig's measurements of this board, taken once per run.
    measured: Option<Measured>,
}

impl Station {
    /// A real rig at `device` (a serial device, or `tcp://HOST:PORT`).
    pub fn rig(device: &str, options: Options) -> Result<Station> {
        Station::rig_with(connector_for(device), options)
    }

    /// A rig reached through `connector` (a real one, or a simulated rig paced like one).
    pub fn rig_with(connector: Box<dyn Connector>, options: Options) -> Result<Station> {
        let device = connector.name().to_string();
        let settings = settings_for(P1_LINE, 8);
        let (rig, events) = Rig::connect(connector, settings)?;
        let info = rig.info();
        let dut = Dut::Rig { device, firmware: info.firmware.clone() };
        Station::assemble(dut, rig, events, settings, None, options)
    }

    /// The virtual twin of `board`: the in-memory rig with the board model between its data
    /// output and its capture input.
    pub fn twin(board: Board, options: Options) -> Result<Station> {
        if options.readback != Readback::Capture {
            bail!("a virtual twin is read back through the simulated rig's capture input; --read is for real boards");
        }
        let fake = FakeRig::new(Behaviour { board: Some(board.clone()), ..Behaviour::default() });
        let settings = settings_for(P1_LINE, 8);
        let (rig, events) = Rig::connect(fake.connector("virtual rig"), settings)?;
        Station::assemble(Dut::Twin { board }, rig, events, settings, Some(fake), options)
    }

    fn assemble(
        dut: Dut,
        rig: Rig,
        events: Receiver<RigEvent>,
        settings: Settings,
        twin: Option<FakeRig>,
        options: Options,
    ) -> Result<Station> {
        let request_high = rig.info().status.request_high;
        let port = match &options.readback {
            Readback::Capture => None,
            Readback::Port(path) => Some(PortReader::open(path, P1_LINE, options.request_via)?),
        };
        if options.request_via.is_some() && port.is_none() {
            bail!("--request-via drives Request from the reader's modem line, so it needs --read PORT");
        }
        let lag = if twin.is_some() { Duration::ZERO } else { Duration::from_millis(5) };
        let patience = options.patience.clamp(1.0, 1000.0);
        let mut station = Station {
            dut,
            rig,
            events,
            settings,
            readback: options.readback,
            port,
            request_via: options.request_via,
            twin,
            request_high,
            lag,
            patience,
            capture_lost: 0,
            measured: None,
        };
        // The reader's Request line starts low: the first phase decides when it rises.
        if station.can_drive_request() {
            station.drive_request(false)?;
        }
        Ok(station)
    }

    pub fn dut(&self) -> &Dut {
        &self.dut
    }

    /// The rig's firmware version, or "virtual" for a twin.
    pub fn firmware(&self) -> String {
        match &self.dut {
            Dut::Rig { firmware, .. } => firmware.clone(),
            Dut::Twin { .. } => "virtual".into(),
        }
    }

    pub fn readback(&self) -> &Readback {
        &self.readback
    }

    /// The reader's modem line that drives Request, if one does.
    pub fn request_via(&self) -> Option<RequestVia> {
        self.request_via
    }

    /// The board model of a twin.
    pub fn twin_board(&self) -> Option<&Board> {
        match &self.dut {
            Dut::Twin { board } => Some(board),
            Dut::Rig { .. } => None,
        }
    }

    /// Starts a new board's run: measurements are taken afresh.
    pub fn begin_run(&mut self) {
        self.measured = None;
        self.capture_lost = 0;
    }

    /// The rig's electrical measurements of the board, taken once per run with the line idle
    /// (a twin's come from its model through the same protocol), with the supply sampled for
    /// `window_ms`; `Err` says why there are none (no sensors, or a firmware that predates
    /// them).
    pub fn measured(&mut self, window_ms: u16) -> Result<std::result::Result<Measured, String>> {
        if let Some(m) = &self.measured {
            return Ok(Ok(m.clone()));
        }
        let info = self.rig.info();
        if info.protocol < MEASURE_VERSION {
            return Ok(Err(format!(
                "the rig's firmware {} predates electrical measurements (rig protocol {}): update it with `cargo xtask \
                 firmware` and flash it",
                info.firmware, info.protocol
            )));
        }
        if info.capabilities & caps::SENSORS == 0 {
            return Ok(Err("this rig has no sensors; one built with the sense circuit of rig-firmware/README.md \
                           measures this, and so does the virtual twin"
                .into()));
        }
        let window_ms = window_ms.min(MeasureRequest::MAX_WINDOW_MS);
        // Request as the board holds it while reading, so its level is read under load.
        if self.can_drive_request() {
            self.drive_request(true)?;
            self.wait_request(true, Duration::from_millis(500));
        }
        self.rig.measure(MeasureRequest { supply_window_ms: window_ms })?;
        let within = self.patient(Duration::from_millis(u64::from(window_ms)) + Duration::from_secs(3));
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("the rig did not answer the measurement within {:.1} s", within.as_secs_f64());
            }
            match self.events.recv_timeout(left) {
                Ok(RigEvent::Measured(m)) => {
                    self.measured = Some(m.clone());
                    return Ok(Ok(m));
                }
                Ok(RigEvent::DeviceError { code, arg }) => {
                    bail!("the rig could not measure: {} ({arg})", code.describe())
                }
                Ok(other) => self.note(&other, &mut Vec::new(), &mut Vec::new()),
                Err(_) => {}
            }
        }
    }

    /// The line settings in force.
    pub fn line(&self) -> LineSettings {
        LineSettings { baud: self.settings.line.baud, framing: self.settings.line.framing }
    }

    /// A wait of `d` stretched by the station's patience.
    pub fn patient(&self, d: Duration) -> Duration {
        d.mul_f64(self.patience)
    }

    /// Whether the bench can raise and drop Request: the reader's modem line drives it, or the
    /// twin's simulated reader does on a board whose reader drives it.
    pub fn can_drive_request(&self) -> bool {
        self.request_via.is_some()
            || self.twin_board().is_some_and(|b| b.request == p1sim_core::wire::board::Request::Driven)
    }

    /// Raises or drops Request through whatever drives it.
    pub fn drive_request(&mut self, high: bool) -> Result<()> {
        if let (Some(port), Some(_)) = (&mut self.port, self.request_via) {
            return port.set_request(high);
        }
        match &self.twin {
            Some(fake) if self.can_drive_request() => {
                fake.set_request(high);
                Ok(())
            }
            _ => bail!("nothing the bench controls drives this board's Request line"),
        }
    }

    /// Whether the rig last saw Request high.
    pub fn request_high(&mut self) -> bool {
        self.poll(Duration::ZERO, &mut Vec::new(), &mut Vec::new());
        self.request_high
    }

    /// Waits up to `within` for Request to be `high`; true when it is.
    pub fn wait_request(&mut self, high: bool, within: Duration) -> bool {
        let end = Instant::now() + self.patient(within);
        loop {
            if self.is_request(high) {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.poll(left.min(Duration::from_millis(10)), &mut Vec::new(), &mut Vec::new());
        }
    }

    fn is_request(&mut self, want: bool) -> bool {
        self.poll(Duration::ZERO, &mut Vec::new(), &mut Vec::new());
        self.request_high == want
    }

    /// Sets the line and the capture input to `line` (P1 polarity, open drain, `oversampling`
    /// slots per bit), and the readback port likewise, honouring Request.
    pub fn configure(&mut self, line: LineSettings, oversampling: u8) -> Result<()> {
        let settings = settings_for(line, oversampling.min(MAX_OVERSAMPLING));
        if settings == self.settings {
            return Ok(());
        }
        self.rig.configure(settings);
        let end = Instant::now() + self.patient(Duration::from_secs(2));
        let mut statuses = 0;
        while statuses < 3 {
            let left = end.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(RigEvent::Status(s)) => {
                    statuses += 1;
                    self.request_high = s.request_high;
                }
                Ok(RigEvent::DeviceError { code: ErrorCode::Config, .. }) => {
                    bail!("the rig refused the settings {line} with {oversampling} slots per bit")
                }
                Ok(other) => self.note(&other, &mut Vec::new(), &mut Vec::new()),
                Err(_) => bail!(
                    "the rig did not confirm the settings {line} within {:.1} s",
                    self.patient(Duration::from_secs(2)).as_secs_f64()
                ),
            }
        }
        if let Some(port) = &mut self.port {
            port.reconfigure(line)?;
        }
        self.settings = settings;
        Ok(())
    }

    /// Sends one telegram with `plan` and collects what the board delivers. With
    /// `drop_request_after`, Request drops after that many characters (the bench must drive
    /// Request).
    pub fn exchange(&mut self, telegram: &[u8], plan: FaultPlan, drop_request_after: Option<u32>) -> Result<Exchange> {
        // Output still arriving from before is not this telegram's.
        self.poll(Duration::ZERO, &mut Vec::new(), &mut Vec::new());
        let line_time = self.char_time().mul_f64(telegram.len() as f64 * 1.2);
        let mut drop_at = None;
        if let Some(chars) = drop_request_after {
            if let Some(fake) = &self.twin {
                fake.drop_request_after(chars);
            } else {
                drop_at = Some(Instant::now() + self.char_time().mul_f64(f64::from(chars) + 0.5));
            }
        }
        let id = self.rig.send(Arc::from(telegram), plan);
        self.await_telegram(id, self.patient(line_time + Duration::from_secs(2)), drop_at)
    }

    /// Waits for telegram `id` to finish, dropping Request at `drop_at`, and collects the
    /// board's output until it settles.
    fn await_telegram(&mut self, id: u16, within: Duration, mut drop_at: Option<Instant>) -> Result<Exchange> {
        let deadline = Instant::now() + within;
        let mut ex = Exchange::default();
        loop {
            if let Some(at) = drop_at
                && Instant::now() >= at
            {
                self.drive_request(false)?;
                drop_at = None;
            }
            let now = Instant::now();
            if now >= deadline {
                bail!(
                    "the rig did not finish a telegram within {:.1} s{}",
                    within.as_secs_f64(),
                    if self.request_high { "" } else { " (Request is low: the meter waits for it)" }
                );
            }
            let wait =
                drop_at.map_or(deadline - now, |at| at.saturating_duration_since(now)).min(Duration::from_millis(20));
            match self.events.recv_timeout(wait) {
                Ok(RigEvent::SendComplete { id: i, bytes }) if i == id => {
                    ex.sent = bytes as usize;
                    break;
                }
                Ok(RigEvent::SendAborted { id: i, bytes, reason }) if i == id => {
                    ex.sent = bytes as usize;
                    ex.cut = reason == AbortReason::RequestDropped;
                    break;
                }
                Ok(RigEvent::Unsent { id: i }) if i == id => {
                    bail!("the rig went away while the telegram was being sent")
                }
                Ok(RigEvent::DeviceError { code, arg }) => {
                    bail!("the rig refused the telegram: {} ({arg})", code.describe())
                }
                Ok(other) => self.note(&other, &mut ex.got, &mut ex.request_edges),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => bail!("the rig connection closed"),
            }
            self.take_port(&mut ex.got);
        }
        self.settle(&mut ex.got, &mut ex.request_edges);
        Ok(ex)
    }

    /// Collects output until the readback has been quiet for the station's lag.
    fn settle(&mut self, got: &mut Vec<Captured>, edges: &mut Vec<bool>) {
        let lag = self.patient(self.lag + self.char_time() * 4);
        let limit = Instant::now() + self.patient(Duration::from_millis(500));
        let mut before = got.len();
        let mut quiet_since = Instant::now();
        loop {
            self.poll(if self.lag.is_zero() { Duration::ZERO } else { Duration::from_millis(1) }, got, edges);
            let now = Instant::now();
            if got.len() != before {
                before = got.len();
                quiet_since = now;
            }
            if now.duration_since(quiet_since) >= lag || now >= limit || (self.lag.is_zero() && got.len() == before) {
                return;
            }
        }
    }

    /// Listens for `d` without sending: what the board delivers on its own.
    pub fn listen(&mut self, d: Duration) -> (Vec<Captured>, Vec<bool>) {
        let end = Instant::now() + self.patient(d);
        let (mut got, mut edges) = (Vec::new(), Vec::new());
        loop {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (got, edges);
            }
            self.poll(left.min(Duration::from_millis(10)), &mut got, &mut edges);
        }
    }

    /// Queues a telegram without waiting for it (it waits on the rig for Request).
    pub fn queue(&mut self, telegram: &[u8]) -> u16 {
        self.rig.send(Arc::from(telegram), FaultPlan::default())
    }

    /// Waits for telegram `id` to finish and its output to settle.
    pub fn finish(&mut self, id: u16, within: Duration) -> Result<Exchange> {
        self.await_telegram(id, self.patient(within), None)
    }

    /// Drops whatever the rig still holds.
    pub fn cancel(&mut self) {
        self.rig.cancel();
    }

    /// One character time at the current line settings.
    pub fn char_time(&self) -> Duration {
        let line = self.line();
        Duration::from_secs_f64(f64::from(line.framing.bits_per_char()) / f64::from(line.baud))
    }

    /// Takes events for up to `wait`, filing captured output and Request edges.
    fn poll(&mut self, wait: Duration, got: &mut Vec<Captured>, edges: &mut Vec<bool>) {
        let mut wait = wait;
        while let Ok(e) = self.events.recv_timeout(wait) {
            self.note(&e, got, edges);
            wait = Duration::ZERO;
        }
        self.take_port(got);
    }

    fn take_port(&mut self, got: &mut Vec<Captured>) {
        if let Some(port) = &mut self.port {
            port.take(got);
        }
    }

    fn note(&mut self, e: &RigEvent, got: &mut Vec<Captured>, edges: &mut Vec<bool>) {
        match e {
            RigEvent::Captured(c) if self.readback == Readback::Capture => got.extend_from_slice(c),
            RigEvent::Request { high, .. } => {
                self.request_high = *high;
                edges.push(*high);
            }
            RigEvent::Status(s) => self.request_high = s.request_high,
            RigEvent::Overrun { lost, .. } => self.capture_lost += u64::from(*lost),
            _ => {}
        }
    }
}

/// A P1 line at `line` with `oversampling` slots per bit, a TTL capture at the same rate, and
/// Request honoured.
fn settings_for(line: LineSettings, oversampling: u8) -> Settings {
    let mut s = Settings::p1(line);
    s.line = LineConfig { oversampling, ..s.line };
    s.capture = CaptureConfig { baud: line.baud, framing: line.framing, ..CaptureConfig::TTL };
    s.request = RequestMode::Honour;
    s
}

/// The data line as the rig's sense input read it, in volts and seconds.
pub fn line_sense(m: &Measured) -> Option<LineSense> {
    let mv = |q| m.get(q).and_then(|r| r.value).map(|v| f64::from(v) / 1000.0);
    Some(LineSense {
        open_volts: mv(Quantity::LineOpen)?,
        loaded_volts: mv(Quantity::LineLoaded)?,
        rise_s: m.get(Quantity::Rise).and_then(|r| r.value).map(|ns| f64::from(ns) / 1e9),
    })
}

/// The DSMR 4/5 P1 line: 115200 8N1.
pub const P1_LINE: LineSettings = LineSettings { baud: 115_200, framing: p1sim_core::Framing::EIGHT_N1 };
