//! The line pacer: puts telegrams on their lines at the meter's pace, on a dedicated thread with
//! absolute deadlines.
//!
//! A meter starts each telegram on its interval boundary and the bytes follow at the line rate:
//! byte `i` has left the line `(i + 1)` character times after the start (a UART hands a byte over
//! after its stop bit). The pacer writes, at most every `tick`, all bytes whose time has come, so
//! a 1 kB telegram at 115200 baud takes about 87 ms however the writes are grouped, and a late
//! wake-up only groups more bytes into one write; it never shifts the ones after it.
//!
//! The timing runs on its own OS thread rather than on tokio timers: tokio's timer wheel has a
//! 1 ms resolution and would round every start up to the next millisecond, where a thread sleeping
//! on a futex wakes within tens of microseconds. Everything slow (rendering, saving state,
//! sockets) happens elsewhere: the meter tasks hand finished telegrams in ahead of time, and sinks
//! only queue or write without blocking.
//!
//! The Request line gates each line: when it drops, the telegram in progress stops at once (DSMR
//! 5.0.2 §5.7.1, "Data transfer will stop immediately"; docs/wiring.md#request-pin-2); when it
//! rises, the line starts the meter's latest telegram from its first byte straight away, as DSMR
//! meters transmit "immediately following the activation".

use std::cmp::Ordering;
use std::collections::{BinaryHeap, HashMap};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering as Atomic};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::framing::ByteMap;

/// One telegram as the meter hands it to its lines.
#[derive(Debug)]
pub struct Outgoing {
    /// Index of the meter (0 unless a fleet runs).
    pub meter: usize,
    /// Counts the meter's telegrams in this run from 0.
    pub seq: u64,
    /// The simulated instant it was generated for (Unix seconds).
    pub at: i64,
    /// When its first bit goes out: the interval boundary, on the monotonic clock.
    pub due: Instant,
    /// The bytes as the meter sends them (after any fault), before line framing.
    pub bytes: Arc<[u8]>,
}

/// How bytes are timed onto a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// At the line rate, written in groups at most every `tick`.
    Line { tick: Duration },
    /// The whole telegram in one write at its start.
    Burst,
}

/// Where a line's bytes go. Called on the pacer thread: implementations must not block for long.
pub trait Sink: Send {
    /// A telegram starts on the line; `bytes` are what the reader receives (after framing).
    fn begin(&mut self, telegram: &Outgoing, bytes: &Arc<[u8]>);
    /// `range` of `bytes` has left the line.
    fn write(&mut self, bytes: &Arc<[u8]>, range: Range<usize>);
    /// The telegram ended: completely, or cut off because Request dropped.
    fn end(&mut self, complete: bool);
    /// How often [`Sink::poll`] wants to be called, if at all.
    fn poll_interval(&self) -> Option<Duration> {
        None
    }
    /// Housekeeping (reconnecting a port); returns the Request level when the port itself has it
    /// (a CTS or DSR input).
    fn poll(&mut self, _now: Instant) -> Option<bool> {
        None
    }
}

/// The Request line of outputs without modem lines (pseudo-terminal, TCP), raised and dropped
/// through the control API.
#[derive(Debug)]
pub struct RequestLine {
    up: AtomicBool,
    pacers: Mutex<Vec<Sender<Msg>>>,
}

impl RequestLine {
    pub fn new(up: bool) -> Arc<RequestLine> {
        Arc::new(RequestLine { up: AtomicBool::new(up), pacers: Mutex::new(Vec::new()) })
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Atomic::SeqCst)
    }

    /// Raises or drops the line; every pacer with a line behind it reacts at once.
    pub fn set(&self, up: bool) {
        self.up.store(up, Atomic::SeqCst);
        let pacers = self.pacers.lock().unwrap_or_else(|e| e.into_inner());
        for p in pacers.iter() {
            let _ = p.send(Msg::Wake);
        }
    }

    fn subscribe(&self, tx: Sender<Msg>) {
        self.pacers.lock().unwrap_or_else(|e| e.into_inner()).push(tx);
    }
}

/// Where a line's Request level comes from.
#[derive(Debug, Clone)]
pub enum RequestInput {
    /// Always raised.
    Always,
    /// The control API's line.
    Shared(Arc<RequestLine>),
    /// The sink's own port (CTS or DSR), read by [`Sink::poll`].
    FromSink,
}

/// Counters of one line, read by the control API.
#[derive(Debug, Default)]
pub struct LineStats {
    /// Telegrams that came due.
    pub due: AtomicU64,
    /// Telegrams started on the line.
    pub started: AtomicU64,
    /// Telegrams sent to the last byte.
    pub completed: AtomicU64,
    /// Telegrams cut off because Request dropped.
    pub cut: AtomicU64,
    /// Telegrams not sent because the line was still busy with an earlier one (`--speed` beyond
    /// what the line rate carries).
    pub skipped: AtomicU64,
    /// Telegrams that came due while Request was low.
    pub withheld: AtomicU64,
    /// Bytes put on the line.
    pub bytes: AtomicU64,
    /// Whether Request is raised on this line now.
    pub request: AtomicBool,
}

impl LineStats {
    pub fn to_json(&self) -> serde_json::Value {
        let g = |a: &AtomicU64| a.load(Atomic::Relaxed);
        serde_json::json!({
            "request": self.request.load(Atomic::Relaxed),
            "due": g(&self.due),
            "started": g(&self.started),
            "completed": g(&self.completed),
            "cut_by_request": g(&self.cut),
            "skipped_line_busy": g(&self.skipped),
            "withheld_request_low": g(&self.withheld),
            "bytes": g(&self.bytes),
        })
    }
}

/// Everything about one line: which meter feeds it, where it goes and how it is timed.
pub struct LineSpec {
    pub meter: usize,
    pub sink: Box<dyn Sink>,
    /// Nanoseconds per character (`LineSettings::char_time_ns`).
    pub char_ns: u64,
    pub map: ByteMap,
    pub pace: Pace,
    pub request: RequestInput,
    pub stats: Arc<LineStats>,
}

impl std::fmt::Debug for LineSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LineSpec").field("meter", &self.meter).field("pace", &self.pace).finish_non_exhaustive()
    }
}

/// What the pacer thread is told.
#[derive(Debug)]
pub enum Msg {
    /// A telegram to put on every line of its meter at its `due` instant.
    Telegram(Arc<Outgoing>),
    /// A shared Request line changed.
    Wake,
    Stop,
}

/// A running pacer thread and the way to reach it.
#[derive(Debug)]
pub struct Pacer {
    tx: Sender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl Pacer {
    /// Starts a pacer thread for these lines.
    pub fn start(name: &str, lines: Vec<LineSpec>) -> std::io::Result<Pacer> {
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        let mut core = Core { slots: Vec::new(), by_meter: HashMap::new(), heap: BinaryHeap::new(), order: 0 };
        for spec in lines {
            if let RequestInput::Shared(r) = &spec.request {
                r.subscribe(tx.clone());
            }
            core.add(spec, now);
        }
        let thread = std::thread::Builder::new().name(name.to_string()).spawn(move || core.run(rx))?;
        Ok(Pacer { tx, thread: Some(thread) })
    }

    pub fn sender(&self) -> Sender<Msg> {
        self.tx.clone()
    }

    /// Stops the thread (dropping the sinks: a pseudo-terminal closes) and waits for it.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

struct Slot {
    sink: Box<dyn Sink>,
    char_ns: u64,
    map: ByteMap,
    pace: Pace,
    request: RequestInput,
    up: bool,
    sending: Option<Sending>,
    /// A telegram that came due while the line was busy; the newest one wins.
    pending: Option<Arc<Outgoing>>,
    /// The newest telegram that came due: what a rising Request starts.
    latest: Option<Arc<Outgoing>>,
    /// Bumped whenever a telegram starts or stops, so stale chunk events are ignored.
    generation: u64,
    poll_every: Option<Duration>,
    stats: Arc<LineStats>,
}

struct Sending {
    bytes: Arc<[u8]>,
    start: Instant,
    sent: usize,
}

enum Kind {
    Due(Arc<Outgoing>),
    Chunk(u64),
    Poll,
}

struct Event {
    at: Instant,
    order: u64,
    line: usize,
    kind: Kind,
}

// A min-heap on (at, order): BinaryHeap is a max-heap, so the comparison is reversed.
impl Ord for Event {
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at, other.order).cmp(&(self.at, self.order))
    }
}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.order) == (other.at, other.order)
    }
}
impl Eq for Event {}

struct Core {
    slots: Vec<Slot>,
    by_meter: HashMap<usize, Vec<usize>>,
    heap: BinaryHeap<Event>,
    order: u64,
}

/// How long before a telegram start the pacer stops sleeping and spins.
const SPIN_AHEAD: Duration = Duration::from_millis(3);
/// Pacers with more lines than this (fleets) never spin.
const SPIN_MAX_LINES: usize = 8;

fn chars(n: usize, char_ns: u64) -> Duration {
    Duration::from_nanos(n as u64 * char_ns)
}

impl Core {
    fn add(&mut self, spec: LineSpec, now: Instant) {
        let i = self.slots.len();
        let poll_every = spec.sink.poll_interval();
        let mut slot = Slot {
            sink: spec.sink,
            char_ns: spec.char_ns.max(1),
            map: spec.map,
            pace: spec.pace,
            request: spec.request,
            up: true,
            sending: None,
            pending: None,
            latest: None,
            generation: 0,
            poll_every,
            stats: spec.stats,
        };
        slot.up = match &slot.request {
            RequestInput::Always => true,
            RequestInput::Shared(r) => r.is_up(),
            RequestInput::FromSink => slot.sink.poll(now).unwrap_or(false),
        };
        slot.stats.request.store(slot.up, Atomic::Relaxed);
        self.slots.push(slot);
        self.by_meter.entry(spec.meter).or_default().push(i);
        if let Some(every) = poll_every {
            self.push(now + every, i, Kind::Poll);
        }
    }

    fn push(&mut self, at: Instant, line: usize, kind: Kind) {
        self.order += 1;
        self.heap.push(Event { at, order: self.order, line, kind });
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        // The default 50 us timer slack is most of the jitter budget; ask for 1 us (Linux only).
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = rustix::thread::set_current_timer_slack(std::num::NonZeroU64::new(1_000));
        loop {
            while self.heap.peek().is_some_and(|e| e.at <= Instant::now()) {
                if let Some(ev) = self.heap.pop() {
                    self.handle(ev);
                }
            }
            let msg = match self.heap.peek() {
                Some(e) if self.slots.len() <= SPIN_MAX_LINES && matches!(e.kind, Kind::Due(_)) => {
                    // A telegram start: wake early and spin the last stretch, so the start does
                    // not wait for the scheduler's next tick on a busy machine. A few lines only:
                    // it costs SPIN_AHEAD of CPU per telegram.
                    let at = e.at;
                    match rx.recv_timeout(at.saturating_duration_since(Instant::now() + SPIN_AHEAD)) {
                        Err(RecvTimeoutError::Timeout) => loop {
                            match rx.try_recv() {
                                Ok(m) => break Ok(m),
                                Err(mpsc::TryRecvError::Disconnected) => break Err(RecvTimeoutError::Disconnected),
                                Err(mpsc::TryRecvError::Empty) if Instant::now() >= at => {
                                    break Err(RecvTimeoutError::Timeout);
                                }
                                Err(mpsc::TryRecvError::Empty) => std::hint::spin_loop(),
                            }
                        },
                        other => other,
                    }
                }
                Some(e) => rx.recv_timeout(e.at.saturating_duration_since(Instant::now())),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match msg {
                Ok(Msg::Telegram(t)) => {
                    let lines = self.by_meter.get(&t.meter).cloned().unwrap_or_default();
                    for line in lines {
                        self.push(t.due, line, Kind::Due(Arc::clone(&t)));
                    }
                }
                Ok(Msg::Wake) => {
                    let now = Instant::now();
                    for i in 0..self.slots.len() {
                        if let RequestInput::Shared(r) = &self.slots[i].request {
                            let up = r.is_up();
                            self.set_request(i, up, now);
                        }
                    }
                }
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
        // Whatever is on the line when the run stops is cut off, as when a meter loses power.
        for slot in &mut self.slots {
            if slot.sending.take().is_some() {
                slot.sink.end(false);
            }
        }
    }

    fn handle(&mut self, ev: Event) {
        let i = ev.line;
        match ev.kind {
            Kind::Due(t) => {
                let slot = &mut self.slots[i];
                slot.stats.due.fetch_add(1, Atomic::Relaxed);
                slot.latest = Some(Arc::clone(&t));
                if !slot.up {
                    slot.stats.withheld.fetch_add(1, Atomic::Relaxed);
                } else if slot.sending.is_some() {
                    if slot.pending.replace(t).is_some() {
                        slot.stats.skipped.fetch_add(1, Atomic::Relaxed);
                    }
                } else {
                    self.start(i, t, ev.at);
                }
            }
            Kind::Chunk(generation) => {
                if self.slots[i].generation == generation {
                    self.chunk(i, ev.at, generation);
                }
            }
            Kind::Poll => {
                let now = Instant::now();
                let slot = &mut self.slots[i];
                let level = slot.sink.poll(now);
                if let (RequestInput::FromSink, Some(up)) = (&slot.request, level) {
                    self.set_request(i, up, now);
                }
                if let Some(every) = self.slots[i].poll_every {
                    let next = (ev.at + every).max(now);
                    self.push(next, i, Kind::Poll);
                }
            }
        }
    }

    /// Starts `t` on line `i` with its first bit at `start`.
    fn start(&mut self, i: usize, t: Arc<Outgoing>, start: Instant) {
        let slot = &mut self.slots[i];
        let bytes: Arc<[u8]> =
            if slot.map.is_identity() { Arc::clone(&t.bytes) } else { slot.map.apply(&t.bytes).into() };
        slot.sink.begin(&t, &bytes);
        slot.stats.started.fetch_add(1, Atomic::Relaxed);
        slot.generation += 1;
        let generation = slot.generation;
        let first = match slot.pace {
            Pace::Burst => start,
            Pace::Line { .. } => start + chars(1, slot.char_ns),
        };
        slot.sending = Some(Sending { bytes, start, sent: 0 });
        self.push(first, i, Kind::Chunk(generation));
    }

    fn chunk(&mut self, i: usize, scheduled: Instant, generation: u64) {
        let now = Instant::now();
        let slot = &mut self.slots[i];
        let Some(s) = slot.sending.as_mut() else { return };
        let n = s.bytes.len();
        let k = match slot.pace {
            Pace::Burst => n,
            Pace::Line { .. } => {
                let elapsed = now.saturating_duration_since(s.start).as_nanos();
                n.min((elapsed / u128::from(slot.char_ns)) as usize)
            }
        };
        if k > s.sent {
            slot.sink.write(&s.bytes, s.sent..k);
            slot.stats.bytes.fetch_add((k - s.sent) as u64, Atomic::Relaxed);
            s.sent = k;
        }
        if s.sent >= n {
            slot.sending = None;
            slot.sink.end(true);
            slot.stats.completed.fetch_add(1, Atomic::Relaxed);
            if let Some(p) = slot.pending.take() {
                self.start(i, p, now);
            }
            return;
        }
        let tick = match slot.pace {
            Pace::Line { tick } => tick,
            Pace::Burst => Duration::ZERO,
        };
        let next_byte = s.start + chars(s.sent + 1, slot.char_ns);
        let last_byte = s.start + chars(n, slot.char_ns);
        let next = next_byte.max(scheduled + tick).min(last_byte);
        self.push(next, i, Kind::Chunk(generation));
    }

    fn set_request(&mut self, i: usize, up: bool, now: Instant) {
        let slot = &mut self.slots[i];
        if slot.up == up {
            return;
        }
        slot.up = up;
        slot.stats.request.store(up, Atomic::Relaxed);
        if !up {
            slot.generation += 1;
            if slot.sending.take().is_some() {
                slot.sink.end(false);
                slot.stats.cut.fetch_add(1, Atomic::Relaxed);
            }
            if slot.pending.take().is_some() {
                slot.stats.skipped.fetch_add(1, Atomic::Relaxed);
            }
        } else if let Some(latest) = slot.latest.clone() {
            self.start(i, latest, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what the pacer did, for checking order and content (never timing).
    #[derive(Default)]
    struct Log {
        events: Vec<String>,
        bytes: Vec<u8>,
    }

    struct Recorder(Arc<Mutex<Log>>);

    impl Sink for Recorder {
        fn begin(&mut self, t: &Outgoing, _bytes: &Arc<[u8]>) {
            self.0.lock().unwrap().events.push(format!("begin {}", t.seq));
        }
        fn write(&mut self, bytes: &Arc<[u8]>, range: Range<usize>) {
            self.0.lock().unwrap().bytes.extend_from_slice(&bytes[range]);
        }
        fn end(&mut self, complete: bool) {
            self.0.lock().unwrap().events.push(format!("end {complete}"));
        }
    }

    fn outgoing(seq: u64, due: Instant, text: &[u8]) -> Arc<Outgoing> {
        Arc::new(Outgoing { meter: 0, seq, at: seq as i64, due, bytes: text.into() })
    }

    fn wait_for(log: &Arc<Mutex<Log>>, events: usize) {
        // Bounded: the pacer has seconds to do what takes it microseconds.
        for _ in 0..500 {
            if log.lock().unwrap().events.len() >= events {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn telegrams_arrive_whole_and_in_order_with_framing_applied() {
        let log = Arc::new(Mutex::new(Log::default()));
        let stats = Arc::new(LineStats::default());
        let spec = LineSpec {
            meter: 0,
            sink: Box::new(Recorder(Arc::clone(&log))),
            // 1 us per character: fast enough for a unit test, still paced.
            char_ns: 1_000,
            map: ByteMap::ParityInBit7 { odd: false },
            pace: Pace::Line { tick: Duration::from_micros(100) },
            request: RequestInput::Always,
            stats: Arc::clone(&stats),
        };
        let pacer = Pacer::start("test-pacer", vec![spec]).unwrap();
        let now = Instant::now();
        pacer.sender().send(Msg::Telegram(outgoing(0, now, b"/AB!"))).unwrap();
        pacer.sender().send(Msg::Telegram(outgoing(1, now + Duration::from_millis(20), b"/CD!"))).unwrap();
        wait_for(&log, 4);
        pacer.stop();
        let log = log.lock().unwrap();
        assert_eq!(log.events, ["begin 0", "end true", "begin 1", "end true"]);
        let expected: Vec<u8> = b"/AB!/CD!".iter().map(|&b| ByteMap::ParityInBit7 { odd: false }.byte(b)).collect();
        assert_eq!(log.bytes, expected);
        assert_eq!(stats.completed.load(Atomic::Relaxed), 2);
    }

    #[test]
    fn dropping_request_cuts_the_telegram_and_raising_it_restarts_the_latest() {
        let log = Arc::new(Mutex::new(Log::default()));
        let request = RequestLine::new(true);
        let stats = Arc::new(LineStats::default());
        let spec = LineSpec {
            meter: 0,
            sink: Box::new(Recorder(Arc::clone(&log))),
            // 10 ms per character: a 100-byte telegram lasts a second.
            char_ns: 10_000_000,
            map: ByteMap::Identity,
            pace: Pace::Line { tick: Duration::from_millis(1) },
            request: RequestInput::Shared(Arc::clone(&request)),
            stats: Arc::clone(&stats),
        };
        let pacer = Pacer::start("test-pacer", vec![spec]).unwrap();
        let text = [b'x'; 100];
        pacer.sender().send(Msg::Telegram(outgoing(7, Instant::now(), &text))).unwrap();
        wait_for(&log, 1);
        request.set(false);
        wait_for(&log, 2);
        let cut_at = log.lock().unwrap().bytes.len();
        request.set(true);
        wait_for(&log, 3);
        request.set(false);
        wait_for(&log, 4);
        pacer.stop();
        let log = log.lock().unwrap();
        assert_eq!(log.events, ["begin 7", "end false", "begin 7", "end false"]);
        assert!(cut_at < text.len(), "the first telegram was cut off");
        assert_eq!(stats.cut.load(Atomic::Relaxed), 2);
        assert_eq!(stats.completed.load(Atomic::Relaxed), 0);
    }

    #[test]
    fn a_busy_line_keeps_only_the_newest_pending_telegram() {
        let log = Arc::new(Mutex::new(Log::default()));
        let stats = Arc::new(LineStats::default());
        let spec = LineSpec {
            meter: 0,
            sink: Box::new(Recorder(Arc::clone(&log))),
            char_ns: 1_000_000,
            map: ByteMap::Identity,
            pace: Pace::Line { tick: Duration::from_millis(1) },
            request: RequestInput::Always,
            stats: Arc::clone(&stats),
        };
        let pacer = Pacer::start("test-pacer", vec![spec]).unwrap();
        let now = Instant::now();
        // Three telegrams of 20 ms each, all due within the first one.
        for seq in 0..3 {
            pacer
                .sender()
                .send(Msg::Telegram(outgoing(seq, now + Duration::from_micros(seq * 100), &[b'y'; 20])))
                .unwrap();
        }
        wait_for(&log, 4);
        pacer.stop();
        let log = log.lock().unwrap();
        assert_eq!(log.events, ["begin 0", "end true", "begin 2", "end true"]);
        assert_eq!(stats.skipped.load(Atomic::Relaxed), 1);
    }
}
