//! The rig client: one connection to a p1sim rig over its CDC-ACM serial port, speaking the
//! protocol of `p1sim_core::rig` (COBS frames of postcard messages).
//!
//! [`Rig::connect`] opens the device, says Hello, checks the protocol version and configures the
//! line, the Request mode and the capture, all before it returns, so a wrong device, a wrong
//! firmware or a refused setting is an error at once. Then two threads keep the connection:
//!
//! ```text
//!  Rig::send / cancel ──commands──► supervisor thread ──frames──► rig
//!                                    ▲ Lost (reopen every `retry`, Hello, re-configure)
//!  events channel ◄── reader thread ─┴──────────────────────frames── rig
//! ```
//!
//! A rig unplugged mid-run is reported ([`RigEvent::Disconnected`]), reopened every
//! [`Settings::retry`], configured again and reported back ([`RigEvent::Reconnected`]);
//! telegrams handed over meanwhile are reported [`RigEvent::Unsent`] and the run goes on.

use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use p1sim_core::LineSettings;
use p1sim_core::rig::frame::{self, FrameError, FrameReader};
use p1sim_core::rig::{
    AbortReason, Buffer, CaptureConfig, Captured, ConfigError, DeviceMsg, Drive, ErrorCode, Fault, FaultPlan, HostMsg,
    LineConfig, MAX_BODY, MAX_CHUNK, MAX_FAULTS, MAX_FRAME, MEASURE_VERSION, MIN_PROTOCOL_VERSION, MeasureRequest,
    Measured, Mode, PROTOCOL_VERSION, PinMap, Polarity, RequestMode, SendChunk, Status, caps,
};
use p1sim_core::wire::{self, BitFault};

use super::transport::{Connector, Transport};

/// How the rig is to be set up, on connecting and after every reconnection.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Settings {
    pub line: LineConfig,
    pub request: RequestMode,
    pub capture: CaptureConfig,
    /// How often a lost rig is looked for.
    pub retry: Duration,
    /// How long the rig may take to answer Hello and the configuration.
    pub answer_timeout: Duration,
}

impl Settings {
    /// A meter's P1 port at `line` (inverted, open collector, 8 slots per bit) honouring Request,
    /// and a capture of the board's TTL output at the same rate and framing.
    pub fn p1(line: LineSettings) -> Settings {
        Settings {
            line: LineConfig { baud: line.baud, framing: line.framing, ..LineConfig::P1 },
            request: RequestMode::Honour,
            capture: CaptureConfig { baud: line.baud, framing: line.framing, ..CaptureConfig::TTL },
            retry: Duration::from_secs(1),
            answer_timeout: Duration::from_secs(2),
        }
    }
}

/// What the rig says about itself (its Hello).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Info {
    pub firmware: String,
    pub protocol: u8,
    pub mode: Mode,
    /// The compiled-in profile of a standalone (pocket meter) build.
    pub profile: String,
    pub pins: PinMap,
    pub capabilities: u32,
    pub max_chunk: u16,
    pub status: Status,
}

impl Info {
    /// The capability names, for display.
    pub fn capability_names(&self) -> Vec<&'static str> {
        [
            (caps::SEND, "send"),
            (caps::CAPTURE, "capture"),
            (caps::REQUEST, "request"),
            (caps::OPEN_DRAIN, "open-drain"),
            (caps::STANDALONE, "standalone"),
            (caps::SENSE_LINE, "sense-line"),
            (caps::SENSE_REQUEST, "sense-request"),
            (caps::SENSE_SUPPLY, "sense-supply"),
            (caps::SENSE_OUTPUT, "sense-output"),
        ]
        .into_iter()
        .filter(|(bit, _)| self.capabilities & bit != 0)
        .map(|(_, name)| name)
        .collect()
    }
}

/// Something the rig reported, or happened to the connection.
#[derive(Debug, Clone, PartialEq)]
pub enum RigEvent {
    /// The board raised or dropped Request (µs since the rig booted).
    Request {
        high: bool,
        at_us: u64,
    },
    /// Characters the capture input received, with receiver flags and timestamps.
    Captured(Vec<Captured>),
    SendComplete {
        id: u16,
        bytes: u32,
    },
    /// A telegram stopped early; `bytes` characters went out whole.
    SendAborted {
        id: u16,
        bytes: u32,
        reason: AbortReason,
    },
    /// A telegram was not handed to the rig: it was disconnected.
    Unsent {
        id: u16,
    },
    Overrun {
        buffer: Buffer,
        lost: u32,
    },
    /// The rig refused something.
    DeviceError {
        code: ErrorCode,
        arg: u32,
    },
    /// The settings in force after a configuration change.
    Status(Status),
    /// A frame from the rig that could not be read (corrupted on USB); reading goes on.
    Malformed(String),
    /// The device went away; it is looked for every [`Settings::retry`].
    Disconnected(String),
    /// The device is back and configured again.
    Reconnected(Info),
    /// The answer to [`Rig::measure`].
    Measured(Measured),
}

impl RigEvent {
    /// A line for logs and the terminal.
    pub fn describe(&self) -> String {
        match self {
            RigEvent::Request { high, at_us } => {
                format!("Request {} at {:.3} s", if *high { "raised" } else { "dropped" }, *at_us as f64 / 1e6)
            }
            RigEvent::Captured(c) => format!("captured {} bytes", c.len()),
            RigEvent::SendComplete { id, bytes } => format!("telegram {id} sent ({bytes} bytes)"),
            RigEvent::SendAborted { id, bytes, reason } => {
                let why = match reason {
                    AbortReason::RequestDropped => "Request dropped",
                    AbortReason::Cancelled => "cancelled",
                };
                format!("telegram {id} cut off after {bytes} bytes ({why})")
            }
            RigEvent::Unsent { id } => format!("telegram {id} not sent: the rig is disconnected"),
            RigEvent::Overrun { buffer, lost } => format!("overrun of {} ({lost} lost)", buffer_name(*buffer)),
            RigEvent::DeviceError { code, arg } => format!("the rig refused a message: {} ({arg})", code.describe()),
            RigEvent::Status(s) => format!("settings: {}", describe_status(s)),
            RigEvent::Malformed(e) => format!("unreadable frame from the rig: {e}"),
            RigEvent::Disconnected(e) => format!("rig disconnected: {e}; looking for it every second"),
            RigEvent::Reconnected(i) => format!("rig reconnected (firmware {})", i.firmware),
            RigEvent::Measured(m) => format!("measured {} quantities", m.readings.len()),
        }
    }
}

fn buffer_name(b: Buffer) -> &'static str {
    match b {
        Buffer::CaptureFifo => "the capture receiver's FIFO (characters lost on the line)",
        Buffer::CaptureQueue => "the capture queue (USB did not keep up)",
        Buffer::TxUnderrun => "the data output (the host did not keep up: a gap on the line)",
        Buffer::Events => "the event queue",
    }
}

/// `115200 8N1 inverted open-drain, 8 slots/bit`.
pub fn describe_line(l: &LineConfig) -> String {
    format!(
        "{} {}, {}, {}, {} slots per bit",
        l.baud,
        l.framing,
        match l.polarity {
            Polarity::Normal => "normal (idle high)",
            Polarity::Inverted => "inverted (idle low, as P1)",
        },
        match l.drive {
            Drive::PushPull => "push-pull",
            Drive::OpenDrain => "open drain",
        },
        l.oversampling
    )
}

pub fn describe_capture(c: &CaptureConfig) -> String {
    if !c.enabled {
        return "off".into();
    }
    let polarity = match c.polarity {
        Polarity::Normal => "idle high",
        Polarity::Inverted => "idle low",
    };
    format!("{} {}, {polarity}", c.baud, c.framing)
}

fn describe_status(s: &Status) -> String {
    format!(
        "line {}; capture {}; Request {} ({})",
        describe_line(&s.line),
        describe_capture(&s.capture),
        match s.request_mode {
            RequestMode::Honour => "honoured",
            RequestMode::Ignore => "ignored",
        },
        if s.request_high { "high" } else { "low" }
    )
}

/// A wire-model fault plan in the protocol's form: faults of one telegram, counted from its
/// first byte.
pub fn protocol_plan(plan: &wire::FaultPlan<Vec<BitFault>>) -> Result<FaultPlan> {
    let mut out = FaultPlan { skew_ppm: plan.skew_ppm, gap: plan.gap.0, ..FaultPlan::default() };
    for f in &plan.faults {
        let fault = Fault::from(*f);
        if out.faults.push(fault).is_err() {
            bail!(
                "the rig takes at most {MAX_FAULTS} bit faults per telegram and this plan has {}; split it over \
                 telegrams or drop some",
                plan.faults.len()
            );
        }
    }
    Ok(out)
}

/// What the supervisor thread is asked to do.
enum Cmd {
    Send {
        id: u16,
        data: Arc<[u8]>,
        plan: Box<FaultPlan>,
    },
    Cancel,
    /// New settings, now and after every reconnection.
    Configure(Box<Settings>),
    Measure(MeasureRequest),
    /// The reader of connection `generation` lost the device.
    Lost {
        generation: u64,
        reason: String,
    },
    Stop,
}

/// A connected rig. Dropping it closes the connection.
#[derive(Debug)]
pub struct Rig {
    name: String,
    tx: Sender<Cmd>,
    info: Arc<Mutex<Info>>,
    next_id: Arc<AtomicU16>,
    supervisor: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Cmd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Cmd::Send { id, data, .. } => write!(f, "Send({id}, {} bytes)", data.len()),
            Cmd::Cancel => f.write_str("Cancel"),
            Cmd::Configure(_) => f.write_str("Configure"),
            Cmd::Measure(_) => f.write_str("Measure"),
            Cmd::Lost { generation, .. } => write!(f, "Lost({generation})"),
            Cmd::Stop => f.write_str("Stop"),
        }
    }
}

/// A handle for sending telegrams from another thread.
#[derive(Debug, Clone)]
pub struct RigSender {
    tx: Sender<Cmd>,
    next_id: Arc<AtomicU16>,
}

impl RigSender {
    /// Hands a telegram to the rig, split into the protocol's chunks, with a bit-fault plan
    /// (`FaultPlan::default()` for none). Returns the id its events carry.
    pub fn send(&self, telegram: Arc<[u8]>, plan: FaultPlan) -> u16 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let _ = self.tx.send(Cmd::Send { id, data: telegram, plan: Box::new(plan) });
        id
    }

    /// Drops the telegram on the line and everything queued; the line goes idle.
    pub fn cancel(&self) {
        let _ = self.tx.send(Cmd::Cancel);
    }
}

impl Rig {
    /// Opens the rig, checks it is one and speaks this protocol, configures it, and starts the
    /// threads that keep the connection. Events arrive on the returned channel.
    pub fn connect(mut connector: Box<dyn Connector>, settings: Settings) -> Result<(Rig, Receiver<RigEvent>)> {
        let name = connector.name().to_string();
        let (events, rx_events) = mpsc::channel();
        let mut transport = connector.open()?;
        let info = handshake(transport.as_mut(), &name, Some(settings), settings.answer_timeout, &events)?;
        let info = Arc::new(Mutex::new(info));
        let (tx, rx) = mpsc::channel();
        let mut sup = Supervisor {
            name: name.clone(),
            connector,
            settings,
            events,
            tx: tx.clone(),
            rx,
            info: Arc::clone(&info),
            link: None,
            generation: 0,
        };
        sup.attach(transport).with_context(|| format!("rig {name}"))?;
        let supervisor = std::thread::Builder::new()
            .name("p1sim-rig".into())
            .spawn(move || sup.run())
            .context("cannot start the rig thread")?;
        Ok((Rig { name, tx, info, next_id: Arc::new(AtomicU16::new(1)), supervisor: Some(supervisor) }, rx_events))
    }

    /// Opens the rig, says Hello and returns its answer, changing nothing (`p1sim rig info`).
    pub fn probe(connector: &mut dyn Connector, timeout: Duration) -> Result<Info> {
        let name = connector.name().to_string();
        let mut transport = connector.open()?;
        let (events, _) = mpsc::channel();
        handshake(transport.as_mut(), &name, None, timeout, &events)
    }

    /// The device path.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What the rig said in its last Hello.
    pub fn info(&self) -> Info {
        self.info.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn sender(&self) -> RigSender {
        RigSender { tx: self.tx.clone(), next_id: Arc::clone(&self.next_id) }
    }

    /// See [`RigSender::send`].
    pub fn send(&self, telegram: Arc<[u8]>, plan: FaultPlan) -> u16 {
        self.sender().send(telegram, plan)
    }

    /// See [`RigSender::cancel`].
    pub fn cancel(&self) {
        self.sender().cancel();
    }

    /// Asks the rig to measure what its sensors can; the answer arrives as
    /// [`RigEvent::Measured`]. A rig whose firmware predates measurements, or that has no
    /// sensors, is an error that says what to do.
    pub fn measure(&self, request: MeasureRequest) -> Result<()> {
        let info = self.info();
        if info.protocol < MEASURE_VERSION {
            bail!(
                "the rig at {} runs firmware {} (rig protocol {}), which has no electrical measurements; update it: {}                  (everything else works with this firmware)",
                self.name,
                info.firmware,
                info.protocol,
                reflash_hint()
            );
        }
        if info.capabilities & caps::SENSORS == 0 {
            bail!(
                "the rig at {} has no sensors (a firmware built without the `sensors` feature, for a rig without the \
                 sense circuit of rig-firmware/README.md)",
                self.name
            );
        }
        let _ = self.tx.send(Cmd::Measure(request));
        Ok(())
    }

    /// Sets the line, the Request mode and the capture anew (and keeps them for reconnections).
    /// The rig answers each with a [`RigEvent::Status`], or a [`RigEvent::DeviceError`] with
    /// [`ErrorCode::Config`] when it refuses one.
    pub fn configure(&self, settings: Settings) {
        let _ = self.tx.send(Cmd::Configure(Box::new(settings)));
    }

    /// Closes the connection and waits for the threads.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.tx.send(Cmd::Stop);
        if let Some(t) = self.supervisor.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The open connection: the writing handle, and the reader thread with its stop flag.
struct Link {
    writer: Box<dyn Transport>,
    stop: Arc<AtomicBool>,
    reader: Option<JoinHandle<()>>,
}

impl Link {
    fn close(mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

struct Supervisor {
    name: String,
    connector: Box<dyn Connector>,
    settings: Settings,
    events: Sender<RigEvent>,
    tx: Sender<Cmd>,
    rx: Receiver<Cmd>,
    info: Arc<Mutex<Info>>,
    link: Option<Link>,
    generation: u64,
}

impl Supervisor {
    /// Starts a reader thread on a configured connection.
    fn attach(&mut self, transport: Box<dyn Transport>) -> Result<()> {
        let reader = transport.try_clone().context("cannot share the port between reading and writing")?;
        self.generation += 1;
        let stop = Arc::new(AtomicBool::new(false));
        let (generation, events, tx, flag) = (self.generation, self.events.clone(), self.tx.clone(), Arc::clone(&stop));
        let handle = std::thread::Builder::new()
            .name("p1sim-rig-reader".into())
            .spawn(move || read_loop(reader, generation, flag, events, tx))
            .context("cannot start the rig reader thread")?;
        self.link = Some(Link { writer: transport, stop, reader: Some(handle) });
        Ok(())
    }

    fn run(mut self) {
        loop {
            let cmd = if self.link.is_some() {
                match self.rx.recv() {
                    Ok(c) => c,
                    Err(_) => break,
                }
            } else {
                match self.rx.recv_timeout(self.settings.retry) {
                    Ok(c) => c,
                    Err(RecvTimeoutError::Timeout) => {
                        self.reconnect();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            };
            match cmd {
                Cmd::Stop => break,
                Cmd::Lost { generation, reason } => {
                    if generation == self.generation && self.link.is_some() {
                        self.lose(reason);
                    }
                }
                Cmd::Send { id, data, plan } => {
                    if self.link.is_none() {
                        let _ = self.events.send(RigEvent::Unsent { id });
                        continue;
                    }
                    let max = usize::from(self.info.lock().unwrap_or_else(|e| e.into_inner()).max_chunk);
                    if let Err(e) = self.write_telegram(id, &data, *plan, max) {
                        let _ = self.events.send(RigEvent::Unsent { id });
                        self.lose(e);
                    }
                }
                Cmd::Cancel => {
                    if let Err(e) = self.write(&HostMsg::Cancel) {
                        self.lose(e);
                    }
                }
                Cmd::Measure(request) => {
                    if let Err(e) = self.write(&HostMsg::Measure(request)) {
                        self.lose(e);
                    }
                }
                Cmd::Configure(settings) => {
                    self.settings = *settings;
                    for msg in [
                        HostMsg::ConfigureLine(settings.line),
                        HostMsg::SetRequestMode(settings.request),
                        HostMsg::ConfigureCapture(settings.capture),
                    ] {
                        if let Err(e) = self.write(&msg) {
                            self.lose(e);
                            break;
                        }
                    }
                }
            }
        }
        if let Some(link) = self.link.take() {
            link.close();
        }
    }

    fn write(&mut self, msg: &HostMsg<'_>) -> Result<(), String> {
        let version = self.info.lock().unwrap_or_else(|e| e.into_inner()).protocol;
        let Some(link) = self.link.as_mut() else { return Err("not connected".into()) };
        write_msg(link.writer.as_mut(), version, msg)
    }

    /// Splits a telegram into the protocol's chunks; the plan rides on the first.
    fn write_telegram(&mut self, id: u16, data: &[u8], plan: FaultPlan, max_chunk: usize) -> Result<(), String> {
        let size = max_chunk.clamp(1, MAX_CHUNK);
        let mut offset = 0;
        let mut plan = Some(plan);
        loop {
            let end = (offset + size).min(data.len());
            let chunk = SendChunk {
                id,
                offset: offset as u32,
                last: end == data.len(),
                plan: plan.take().unwrap_or_default(),
                data: &data[offset..end],
            };
            self.write(&HostMsg::Send(chunk))?;
            if end == data.len() {
                return Ok(());
            }
            offset = end;
        }
    }

    fn lose(&mut self, reason: String) {
        if let Some(link) = self.link.take() {
            link.close();
        }
        let _ = self.events.send(RigEvent::Disconnected(reason));
    }

    /// One attempt at getting the rig back.
    fn reconnect(&mut self) {
        let Ok(mut transport) = self.connector.open() else { return };
        let info = match handshake(
            transport.as_mut(),
            &self.name,
            Some(self.settings),
            self.settings.answer_timeout,
            &self.events,
        ) {
            Ok(info) => info,
            // Not answering yet (still booting), or refusing: try again next time.
            Err(_) => return,
        };
        if self.attach(transport).is_err() {
            return;
        }
        *self.info.lock().unwrap_or_else(|e| e.into_inner()) = info.clone();
        let _ = self.events.send(RigEvent::Reconnected(info));
    }
}

/// Frames `msg` in `version`: the rig's own (the lower of its and ours), learnt from its Hello.
fn write_msg(t: &mut dyn Transport, version: u8, msg: &HostMsg<'_>) -> Result<(), String> {
    let mut scratch = [0u8; MAX_BODY];
    let mut out = [0u8; MAX_FRAME];
    let n = frame::encode_versioned(version, msg, &mut scratch, &mut out)
        .map_err(|e| format!("cannot frame a message: {e}"))?;
    t.write_all(&out[..n]).map_err(|e| format!("write failed: {e}"))
}

/// The reader thread: frames in, events out, until the device goes or the link is closed.
fn read_loop(
    mut t: Box<dyn Transport>,
    generation: u64,
    stop: Arc<AtomicBool>,
    events: Sender<RigEvent>,
    tx: Sender<Cmd>,
) {
    let mut reader = Box::new(FrameReader::<MAX_FRAME>::new());
    let mut buf = [0u8; 1024];
    while !stop.load(Ordering::SeqCst) {
        let n = match t.read(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.send(Cmd::Lost { generation, reason: e.to_string() });
                return;
            }
        };
        let mut pos = 0;
        while pos < n {
            let (used, frame) = reader.push(&buf[pos..n]);
            pos += used;
            let event = match frame {
                None => continue,
                Some(Ok(body)) => match frame::decode_device(body) {
                    Ok(msg) => event_of(msg),
                    Err(e) => Some(RigEvent::Malformed(e.to_string())),
                },
                Some(Err(e)) => Some(RigEvent::Malformed(e.to_string())),
            };
            if let Some(e) = event
                && events.send(e).is_err()
            {
                // Nobody listens any more; the rig is being closed.
                return;
            }
        }
    }
}

fn event_of(msg: DeviceMsg<'_>) -> Option<RigEvent> {
    Some(match msg {
        // A Hello nobody asked for (another host said it): nothing to report.
        DeviceMsg::Hello(_) => return None,
        DeviceMsg::Status(s) => RigEvent::Status(s),
        DeviceMsg::RequestEdge { high, at_us } => RigEvent::Request { high, at_us },
        DeviceMsg::Captured(c) => RigEvent::Captured(c.to_vec()),
        DeviceMsg::SendComplete { id, bytes } => RigEvent::SendComplete { id, bytes },
        DeviceMsg::SendAborted { id, bytes, reason } => RigEvent::SendAborted { id, bytes, reason },
        DeviceMsg::Overrun { buffer, lost } => RigEvent::Overrun { buffer, lost },
        DeviceMsg::Error { code, arg } => RigEvent::DeviceError { code, arg },
        DeviceMsg::Measured(m) => RigEvent::Measured(m),
    })
}

/// The version to frame messages in once the rig's Hello is known.
fn hello_version(info: &Option<Info>) -> u8 {
    info.as_ref().map_or(MIN_PROTOCOL_VERSION, |i| i.protocol)
}

/// What to do about a rig of another protocol version: an older firmware is reflashed, a newer
/// one needs a newer p1sim (or the firmware this p1sim builds).
fn version_hint(rig: u8) -> String {
    if rig > PROTOCOL_VERSION {
        format!(
            "update p1sim to the release of that firmware, or {}",
            reflash_hint().replacen("build", "put this p1sim's firmware on the rig: build", 1)
        )
    } else {
        reflash_hint().to_string()
    }
}

/// How to get firmware that speaks this host's protocol onto the rig.
fn reflash_hint() -> &'static str {
    "build the matching firmware with `cargo xtask firmware` (it writes target/rig-firmware/p1sim-rig.uf2), hold \
     BOOTSEL on the Pico while plugging it in, and copy the UF2 onto the RPI-RP2 drive"
}

/// Says Hello, checks the answer, and (with `settings`) configures the rig; events that arrive
/// meanwhile are passed on.
fn handshake(
    t: &mut dyn Transport,
    name: &str,
    settings: Option<Settings>,
    timeout: Duration,
    events: &Sender<RigEvent>,
) -> Result<Info> {
    // A zero first ends whatever a previous session left half-written.
    t.write_all(&[0]).with_context(|| format!("cannot write to the rig at {name}"))?;
    // Hello in the oldest version this host reads: a rig of any version since answers it, and
    // says its own version in the answer.
    write_msg(t, MIN_PROTOCOL_VERSION, &HostMsg::Hello)
        .map_err(|e| anyhow!("cannot write to the rig at {name}: {e}"))?;
    let mut reader = Box::new(FrameReader::<MAX_FRAME>::new());
    let mut info: Option<Info> = None;
    let mut statuses = 0;
    let deadline = Instant::now() + timeout;
    let mut garbled = None;
    let mut buf = [0u8; 1024];
    loop {
        if Instant::now() >= deadline {
            return Err(match (&info, garbled) {
                (None, Some(e)) => anyhow!(
                    "{name} answered, but not in the p1sim rig protocol ({e}): is it a p1sim rig? Another serial \
                     device or Pico firmware gives this; to make it a rig, {}",
                    reflash_hint()
                ),
                (None, None) => anyhow!(
                    "{name} did not answer Hello within {:.1} s: is it a p1sim rig? A USB-serial adapter or other \
                     Pico firmware stays silent; to make it a rig, {}",
                    timeout.as_secs_f64(),
                    reflash_hint()
                ),
                (Some(_), _) => {
                    anyhow!("the rig at {name} did not confirm its configuration within {:.1} s", timeout.as_secs_f64())
                }
            });
        }
        let n = t.read(&mut buf).with_context(|| format!("the rig at {name} went away"))?;
        let mut pos = 0;
        while pos < n {
            let (used, frame) = reader.push(&buf[pos..n]);
            pos += used;
            let body = match frame {
                None => continue,
                Some(Ok(body)) => body,
                Some(Err(FrameError::Version(v))) => bail!(
                    "the rig at {name} runs firmware speaking rig protocol version {v}, and this p1sim {} speaks \
                     versions {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}: {}",
                    env!("CARGO_PKG_VERSION"),
                    version_hint(v)
                ),
                Some(Err(e)) => {
                    garbled = Some(e);
                    continue;
                }
            };
            let msg = match frame::decode_device(body) {
                Ok(m) => m,
                Err(e) => {
                    garbled = Some(e);
                    continue;
                }
            };
            match msg {
                DeviceMsg::Hello(h) if info.is_none() => {
                    if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&h.protocol) {
                        bail!(
                            "the rig at {name} (firmware {}) speaks rig protocol version {}, and this p1sim {} \
                             speaks versions {MIN_PROTOCOL_VERSION} to {PROTOCOL_VERSION}: {}",
                            h.firmware,
                            h.protocol,
                            env!("CARGO_PKG_VERSION"),
                            version_hint(h.protocol)
                        );
                    }
                    let hello = Info {
                        firmware: h.firmware.to_string(),
                        protocol: h.protocol.min(PROTOCOL_VERSION),
                        mode: h.mode,
                        profile: h.profile.to_string(),
                        pins: h.pins,
                        capabilities: h.capabilities,
                        max_chunk: h.max_chunk,
                        status: h.status,
                    };
                    let Some(settings) = settings else { return Ok(hello) };
                    info = Some(hello);
                    for msg in [
                        HostMsg::ConfigureLine(settings.line),
                        HostMsg::SetRequestMode(settings.request),
                        HostMsg::ConfigureCapture(settings.capture),
                    ] {
                        write_msg(t, hello_version(&info), &msg)
                            .map_err(|e| anyhow!("cannot configure the rig at {name}: {e}"))?;
                    }
                }
                DeviceMsg::Status(s) if info.is_some() => {
                    statuses += 1;
                    if let Some(i) = info.as_mut() {
                        i.status = s;
                    }
                    if statuses == 3 {
                        return info.ok_or_else(|| anyhow!("unreachable: no Hello"));
                    }
                }
                DeviceMsg::Error { code: ErrorCode::Config, arg } if info.is_some() => {
                    let why = ConfigError::from_code(arg).map_or("refused".to_string(), |e| e.to_string());
                    let Some(settings) = settings else { continue };
                    bail!(
                        "the rig at {name} refused the settings ({why}): line {}, capture {}",
                        describe_line(&settings.line),
                        describe_capture(&settings.capture)
                    );
                }
                other => {
                    if info.is_some()
                        && let Some(e) = event_of(other)
                    {
                        let _ = events.send(e);
                    }
                }
            }
        }
    }
}
