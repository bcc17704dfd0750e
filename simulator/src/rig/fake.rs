//! A simulated rig for testing the client, the CLI and `run --rig` without hardware: a thread
//! that speaks the device side of the protocol over an in-memory link, answers Hello and
//! configuration like the firmware, reassembles telegram chunks, and can loop a sent telegram
//! back as captured bytes, raise or drop Request, send garbage, and be unplugged and plugged in
//! again.
//!
//! With a board in its [`Behaviour`] it is the virtual twin of a board under test: every
//! telegram goes through the board model into the capture input ([`super::twin`]), Request
//! follows the board (tied high, left open, or driven by the reader through
//! [`FakeRig::set_request`]) and is honoured as the firmware honours it: telegrams wait while it
//! is low, and a drop cuts the telegram on the line.
//!
//! It checks what the firmware checks (chunk order, configuration ranges) and records what it
//! received, so tests can look at the frames the client wrote.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{Result, anyhow};
use p1sim_core::rig::frame::{self, FrameReader};
use p1sim_core::rig::{
    AbortReason, CaptureConfig, Captured, DeviceMsg, ErrorCode, FaultPlan, Hello, HostMsg, LineConfig, MAX_BODY,
    MAX_CAPTURED, MAX_CHUNK, MAX_FRAME, Mode, PROTOCOL_VERSION, PinMap, RequestMode, Status, caps,
};
use p1sim_core::wire::board::{Board, Request};

use super::transport::{Connector, MemoryEnd, MemoryLink, Transport};
use super::twin::Twin;

/// How the simulated rig behaves.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// The protocol version it speaks (its frames carry it too).
    pub protocol: u8,
    pub firmware: String,
    /// Answers nothing at all (a serial device that is not a rig).
    pub silent: bool,
    /// Sends every completed telegram back as captured bytes, as a board that passes the data
    /// through would.
    pub loopback: bool,
    pub max_chunk: u16,
    /// Reports a standalone (pocket meter) build of `iskra-am550`.
    pub standalone: bool,
    /// A board under test between the data output and the capture input (the virtual twin);
    /// takes the place of `loopback`.
    pub board: Option<Board>,
    /// A twin's telegrams take their line time, as on a real rig: the answers to a telegram come
    /// when its last character would have left the pin.
    pub paced: bool,
    /// The sensors a twin announces and measures with (`caps::SENSE_*`): all of them by default;
    /// fewer for a rig without its current monitor, say.
    pub sensors: u32,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            protocol: PROTOCOL_VERSION,
            firmware: "0.1.0-fake".into(),
            silent: false,
            loopback: false,
            max_chunk: MAX_CHUNK as u16,
            standalone: false,
            board: None,
            paced: false,
            sensors: caps::SENSORS,
        }
    }
}

/// One chunk as the simulated rig received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkSeen {
    pub id: u16,
    pub offset: u32,
    pub last: bool,
    pub plan: FaultPlan,
    pub len: usize,
}

/// What the simulated rig has seen and holds; shared with the test.
#[derive(Debug, Default)]
pub struct Seen {
    pub hellos: usize,
    pub lines: Vec<LineConfig>,
    pub modes: Vec<RequestMode>,
    pub captures: Vec<CaptureConfig>,
    pub chunks: Vec<ChunkSeen>,
    pub cancels: usize,
    pub measures: usize,
    /// Telegrams completed, by id, with their bytes.
    pub telegrams: Vec<(u16, Vec<u8>)>,
    /// Frames it could not read.
    pub refused: usize,
}

/// A rig on the bench: plug it in, pull it out, and reach it through [`FakeRig::connector`].
#[derive(Debug, Clone)]
pub struct FakeRig {
    inner: Arc<Bench>,
}

#[derive(Debug)]
struct Bench {
    behaviour: Behaviour,
    seen: Mutex<Seen>,
    plugged: Mutex<Option<(MemoryLink, JoinHandle<()>)>>,
    request_high: AtomicBool,
    status: Mutex<Status>,
    /// The virtual board, with telegrams waiting for Request.
    twin: Mutex<Option<TwinLine>>,
    /// Where the twin's board output also goes, as a USB-UART it feeds would deliver it.
    feed: Mutex<Option<Feed>>,
}

/// A writer that gets the twin board's output bytes.
struct Feed(Box<dyn std::io::Write + Send>);

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Feed")
    }
}

/// The twin's line: the board and what waits for Request.
#[derive(Debug)]
struct TwinLine {
    twin: Twin,
    /// Telegrams complete from the host, waiting for Request to rise.
    held: VecDeque<(u16, Vec<u8>, FaultPlan)>,
    /// Request drops after this many characters of the next telegram.
    drop_after: Option<u32>,
}

impl FakeRig {
    /// A rig, plugged in. With a board, Request starts as the board holds it: high when tied to
    /// +5 V, low when open or driven by a reader that has not raised it yet.
    pub fn new(behaviour: Behaviour) -> FakeRig {
        let request_high = behaviour.board.as_ref().is_none_or(|b| b.request == Request::Tied);
        let status = Status {
            line: LineConfig::P1,
            capture: CaptureConfig::TTL,
            request_mode: RequestMode::Honour,
            request_high,
        };
        let twin = behaviour.board.clone().map(|b| TwinLine {
            twin: Twin::new(b, CaptureConfig::TTL).expect("the default capture settings are valid"),
            held: VecDeque::new(),
            drop_after: None,
        });
        let rig = FakeRig {
            inner: Arc::new(Bench {
                behaviour,
                seen: Mutex::new(Seen::default()),
                plugged: Mutex::new(None),
                request_high: AtomicBool::new(request_high),
                status: Mutex::new(status),
                twin: Mutex::new(twin),
                feed: Mutex::new(None),
            }),
        };
        rig.plug();
        rig
    }

    /// Connects the USB cable: a fresh link with the device thread on its far end.
    pub fn plug(&self) {
        let mut plugged = self.inner.plugged.lock().unwrap_or_else(|e| e.into_inner());
        if plugged.is_some() {
            return;
        }
        let link = MemoryLink::new();
        let end = Box::new(link.device());
        let bench = Arc::clone(&self.inner);
        let thread = std::thread::spawn(move || bench.serve(end));
        *plugged = Some((link, thread));
    }

    /// Pulls the USB cable: both ends fail, the device thread ends.
    pub fn unplug(&self) {
        let taken = self.inner.plugged.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((link, thread)) = taken {
            link.unplug();
            let _ = thread.join();
        }
    }

    /// Serves the device side on another transport too (e.g. a pseudo-terminal's master, so
    /// the real binary can open the slave as the rig's serial port), until it fails.
    pub fn serve_on(&self, transport: Box<dyn Transport>) -> JoinHandle<()> {
        let bench = Arc::clone(&self.inner);
        std::thread::spawn(move || bench.serve(transport))
    }

    /// How the client finds it, under the name `name`.
    pub fn connector(&self, name: &str) -> Box<dyn Connector> {
        Box::new(FakeConnector { name: name.to_string(), bench: Arc::clone(&self.inner) })
    }

    /// What it has received so far.
    pub fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.inner.seen.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The board raises or drops Request: the rig reports the edge. On a twin, telegrams held
    /// for Request go out when it rises.
    pub fn set_request(&self, high: bool) {
        self.inner.request_high.store(high, Ordering::SeqCst);
        self.inner.status.lock().unwrap_or_else(|e| e.into_inner()).request_high = high;
        let at_us =
            self.inner.twin.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map_or(1_000, |t| t.twin.now_us());
        self.inner.send_event(&DeviceMsg::RequestEdge { high, at_us });
        if high {
            for answer in self.inner.release_held() {
                match (&answer, answer.as_msg()) {
                    (Answer::Wait(d), _) => std::thread::sleep(*d),
                    (_, Some(m)) => self.inner.send_event(&m),
                    (_, None) => {}
                }
            }
        }
    }

    /// On a twin whose reader drives Request: Request drops after `chars` characters of the
    /// next telegram, as a reader dropping it mid-telegram does.
    pub fn drop_request_after(&self, chars: u32) {
        if let Some(t) = self.inner.twin.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            t.drop_after = Some(chars);
        }
    }

    /// On a twin: the board's output bytes also go to `w`, as to the USB-UART a board feeds
    /// (without the receiver's flags, as a UART driver hands them over).
    pub fn feed_output(&self, w: Box<dyn std::io::Write + Send>) {
        *self.inner.feed.lock().unwrap_or_else(|e| e.into_inner()) = Some(Feed(w));
    }

    /// The board under test of a twin.
    pub fn board(&self) -> Option<Board> {
        self.inner.behaviour.board.clone()
    }

    /// Writes raw bytes to the host, e.g. a corrupted frame.
    pub fn send_raw(&self, bytes: &[u8]) {
        if let Some(mut end) = self.inner.host_bound() {
            let _ = Transport::write_all(&mut end, bytes);
        }
    }

    /// Sends one message to the host.
    pub fn send_message(&self, msg: &DeviceMsg<'_>) {
        self.inner.send_event(msg);
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let taken = self.plugged.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((link, thread)) = taken {
            link.unplug();
            let _ = thread.join();
        }
    }
}

struct FakeConnector {
    name: String,
    bench: Arc<Bench>,
}

impl Connector for FakeConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self) -> Result<Box<dyn Transport>> {
        let plugged = self.bench.plugged.lock().unwrap_or_else(|e| e.into_inner());
        match plugged.as_ref() {
            Some((link, _)) => Ok(Box::new(link.host())),
            None => Err(anyhow!("cannot open the rig at {}: no such device", self.name)),
        }
    }
}

impl Bench {
    /// The device's end of the current link, for writing to the host.
    fn host_bound(&self) -> Option<MemoryEnd> {
        self.plugged.lock().unwrap_or_else(|e| e.into_inner()).as_ref().map(|(l, _)| l.device())
    }

    fn send_event(&self, msg: &DeviceMsg<'_>) {
        if let Some(mut end) = self.host_bound() {
            let _ = write(&mut end, self.behaviour.protocol, msg);
        }
    }

    /// The device thread: frames in, answers out, until the cable is pulled.
    fn serve(self: Arc<Bench>, mut end: Box<dyn Transport>) {
        let mut reader = Box::new(FrameReader::<MAX_FRAME>::new());
        let mut buf = [0u8; 256];
        // The telegram being reassembled: id, bytes so far.
        let mut current: Option<(u16, Vec<u8>)> = None;
        loop {
            let n = match end.read(&mut buf) {
                Ok(n) => n,
                Err(_) => return,
            };
            let mut pos = 0;
            while pos < n {
                let (used, frame) = reader.push(&buf[pos..n]);
                pos += used;
                let Some(frame) = frame else { continue };
                let msg = frame.map_err(|e| e.code()).and_then(|body| frame::decode_host(body).map_err(|e| e.code()));
                let msg = match msg {
                    Ok(m) => m,
                    Err((code, arg)) => {
                        self.seen.lock().unwrap_or_else(|e| e.into_inner()).refused += 1;
                        if !self.behaviour.silent {
                            let _ = write(end.as_mut(), self.behaviour.protocol, &DeviceMsg::Error { code, arg });
                        }
                        continue;
                    }
                };
                if self.behaviour.silent {
                    continue;
                }
                for answer in self.answer(msg, &mut current) {
                    let sent = match (&answer, answer.as_msg()) {
                        (Answer::Wait(d), _) => {
                            std::thread::sleep(*d);
                            Ok(())
                        }
                        (_, Some(m)) => write(end.as_mut(), self.behaviour.protocol, &m),
                        (_, None) => Ok(()),
                    };
                    if sent.is_err() {
                        return;
                    }
                }
            }
        }
    }

    fn answer(&self, msg: HostMsg<'_>, current: &mut Option<(u16, Vec<u8>)>) -> Vec<Answer> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match msg {
            HostMsg::Hello => {
                seen.hellos += 1;
                vec![Answer::Hello {
                    status: *status,
                    firmware: self.behaviour.firmware.clone(),
                    protocol: self.behaviour.protocol,
                    max_chunk: self.behaviour.max_chunk,
                    standalone: self.behaviour.standalone,
                    sensors: if self.behaviour.board.is_some()
                        && self.behaviour.protocol >= p1sim_core::rig::MEASURE_VERSION
                    {
                        self.behaviour.sensors & caps::SENSORS
                    } else {
                        0
                    },
                }]
            }
            HostMsg::ConfigureLine(cfg) => match cfg.validate() {
                Ok(()) => {
                    seen.lines.push(cfg);
                    status.line = cfg;
                    vec![Answer::Msg(Box::new(DeviceMsg::Status(*status)))]
                }
                Err(e) => vec![Answer::Msg(Box::new(DeviceMsg::Error { code: ErrorCode::Config, arg: e.code() }))],
            },
            HostMsg::SetRequestMode(mode) => {
                seen.modes.push(mode);
                status.request_mode = mode;
                vec![Answer::Msg(Box::new(DeviceMsg::Status(*status)))]
            }
            HostMsg::ConfigureCapture(cfg) => match cfg.validate() {
                Ok(()) => {
                    if let Some(t) = self.twin.lock().unwrap_or_else(|e| e.into_inner()).as_mut()
                        && t.twin.set_capture(cfg).is_err()
                    {
                        return vec![Answer::Msg(Box::new(DeviceMsg::Error { code: ErrorCode::Config, arg: 0 }))];
                    }
                    seen.captures.push(cfg);
                    status.capture = cfg;
                    vec![Answer::Msg(Box::new(DeviceMsg::Status(*status)))]
                }
                Err(e) => vec![Answer::Msg(Box::new(DeviceMsg::Error { code: ErrorCode::Config, arg: e.code() }))],
            },
            HostMsg::Measure(request) => {
                seen.measures += 1;
                if self.behaviour.protocol < p1sim_core::rig::MEASURE_VERSION {
                    // A firmware of version 1 knows no such message.
                    return vec![Answer::Msg(Box::new(DeviceMsg::Error { code: ErrorCode::Message, arg: 0 }))];
                }
                let twin = self.twin.lock().unwrap_or_else(|e| e.into_inner());
                match twin.as_ref() {
                    Some(t) if self.behaviour.sensors & caps::SENSORS != 0 => {
                        let mut measured = t.twin.measure(self.request_high.load(Ordering::SeqCst), request);
                        measured.readings.retain(|r| self.behaviour.sensors & r.quantity.sensor() != 0);
                        vec![Answer::Msg(Box::new(DeviceMsg::Measured(measured)))]
                    }
                    _ => vec![Answer::Msg(Box::new(DeviceMsg::Error { code: ErrorCode::Unsupported, arg: 0 }))],
                }
            }
            HostMsg::Cancel => {
                seen.cancels += 1;
                *current = None;
                if let Some(t) = self.twin.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    t.held.clear();
                }
                Vec::new()
            }
            HostMsg::Send(chunk) => {
                seen.chunks.push(ChunkSeen {
                    id: chunk.id,
                    offset: chunk.offset,
                    last: chunk.last,
                    plan: chunk.plan.clone(),
                    len: chunk.data.len(),
                });
                match current {
                    Some((id, bytes)) if *id == chunk.id && bytes.len() as u32 == chunk.offset => {
                        bytes.extend_from_slice(chunk.data);
                    }
                    _ if chunk.offset == 0 => *current = Some((chunk.id, chunk.data.to_vec())),
                    _ => {
                        return vec![Answer::Msg(Box::new(DeviceMsg::Error {
                            code: ErrorCode::Sequence,
                            arg: chunk.offset,
                        }))];
                    }
                }
                if !chunk.last {
                    return Vec::new();
                }
                let Some((id, bytes)) = current.take() else { return Vec::new() };
                if let Some(t) = self.twin.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    t.held.push_back((id, bytes, chunk.plan.clone()));
                    return self.run_twin(t, &mut status, &mut seen);
                }
                let mut out = Vec::new();
                if self.behaviour.loopback {
                    for (i, part) in bytes.chunks(MAX_CAPTURED).enumerate() {
                        let chars = part
                            .iter()
                            .enumerate()
                            .map(|(j, &byte)| Captured { byte, flags: 0, at_us: ((i * MAX_CAPTURED + j) * 87) as u64 })
                            .collect();
                        out.push(Answer::Captured(chars));
                    }
                }
                out.push(Answer::Msg(Box::new(DeviceMsg::SendComplete { id, bytes: bytes.len() as u32 })));
                seen.telegrams.push((id, bytes));
                out
            }
        }
    }
}

impl Bench {
    /// Sends what waits for Request (on a twin whose Request just rose).
    fn release_held(&self) -> Vec<Answer> {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let mut status = self.status.lock().unwrap_or_else(|e| e.into_inner());
        match self.twin.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            Some(t) => self.run_twin(t, &mut status, &mut seen),
            None => Vec::new(),
        }
    }

    /// Puts held telegrams on the twin's line while Request allows, as the firmware does: a
    /// low Request holds them, a planned drop cuts the telegram on the line and holds the rest.
    fn run_twin(&self, t: &mut TwinLine, status: &mut Status, seen: &mut Seen) -> Vec<Answer> {
        let mut out = Vec::new();
        let honour = status.request_mode == RequestMode::Honour;
        while !honour || self.request_high.load(Ordering::SeqCst) {
            let Some((id, bytes, plan)) = t.held.pop_front() else { break };
            let cut = if honour { t.drop_after.take() } else { None };
            let send = cut.map_or(bytes.len(), |n| (n as usize).min(bytes.len()));
            if self.behaviour.paced {
                let bits = send as f64 * f64::from(status.line.framing.bits_per_char());
                out.push(Answer::Wait(std::time::Duration::from_secs_f64(bits / f64::from(status.line.baud))));
            }
            match t.twin.transmit(&status.line, &plan, &bytes, send) {
                Ok(got) => {
                    if let Some(Feed(w)) = self.feed.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                        let bytes: Vec<u8> = got.iter().map(|c| c.byte).collect();
                        let _ = w.write_all(&bytes).and_then(|()| w.flush());
                    }
                    out.extend(got.chunks(MAX_CAPTURED).map(|c| Answer::Captured(c.to_vec())));
                }
                Err(_) => {
                    out.push(Answer::Msg(Box::new(DeviceMsg::Error { code: ErrorCode::FaultPlan, arg: 0xFFFF })));
                    continue;
                }
            }
            if cut.is_some() {
                self.request_high.store(false, Ordering::SeqCst);
                status.request_high = false;
                let at_us = t.twin.now_us();
                out.push(Answer::Msg(Box::new(DeviceMsg::RequestEdge { high: false, at_us })));
            }
            if send < bytes.len() {
                let reason = AbortReason::RequestDropped;
                out.push(Answer::Msg(Box::new(DeviceMsg::SendAborted { id, bytes: send as u32, reason })));
            } else {
                out.push(Answer::Msg(Box::new(DeviceMsg::SendComplete { id, bytes: bytes.len() as u32 })));
                seen.telegrams.push((id, bytes));
            }
        }
        out
    }
}

/// An answer, owned so it outlives the locks taken to make it.
enum Answer {
    /// Pause before the answers that follow (a paced twin's line time).
    Wait(std::time::Duration),
    Hello {
        status: Status,
        firmware: String,
        protocol: u8,
        max_chunk: u16,
        standalone: bool,
        sensors: u32,
    },
    Captured(Vec<Captured>),
    Msg(Box<DeviceMsg<'static>>),
}

impl Answer {
    /// The message to write; `None` for a pause, which the sender sleeps through.
    fn as_msg(&self) -> Option<DeviceMsg<'_>> {
        Some(match self {
            Answer::Wait(_) => return None,
            Answer::Hello { status, firmware, protocol, max_chunk, standalone, sensors } => DeviceMsg::Hello(Hello {
                protocol: *protocol,
                firmware,
                mode: if *standalone { Mode::Standalone } else { Mode::HostDriven },
                profile: if *standalone { "iskra-am550" } else { "" },
                pins: PinMap { data: 0, request: 3, capture: 5, led: 25 },
                capabilities: caps::CAPTURE
                    | caps::REQUEST
                    | caps::OPEN_DRAIN
                    | if *standalone { caps::STANDALONE } else { caps::SEND }
                    | *sensors,
                max_chunk: *max_chunk,
                status: *status,
            }),
            // At most MAX_CAPTURED by construction (`chunks` above).
            Answer::Captured(c) => DeviceMsg::Captured(c.iter().copied().take(MAX_CAPTURED).collect()),
            Answer::Msg(m) => (**m).clone(),
        })
    }
}

fn write(end: &mut dyn Transport, version: u8, msg: &DeviceMsg<'_>) -> std::io::Result<()> {
    let mut scratch = [0u8; MAX_BODY];
    let mut out = [0u8; MAX_FRAME];
    let n = frame::encode_versioned(version, msg, &mut scratch, &mut out)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    end.write_all(&out[..n])
}
