//! The host side of the wire model: a meter's bytes on a timed P1 line, through a virtual
//! interface board, into the reader's UART; and the VCD and SVG pictures of it.
//!
//! [`Pipeline`] chains the core's streaming stages (encoder, board, receiver) so a day of
//! telegrams passes through without being held in memory; with recording on it also keeps the
//! waveforms for `wave`. [`Through`] wraps a writer so `emit` can deliver what the UART got.

pub mod svg;
pub mod vcd;

use std::collections::VecDeque;
use std::io::{self, Write};

use anyhow::{Result, format_err};
use p1sim_core::spec::LineSettings;
use p1sim_core::wire::board::{Board, BoardSim};
use p1sim_core::wire::{
    BitFault, FaultPlan, Level, LineEncoder, PS_PER_S, Polarity, Receiver, ReceiverConfig, Run, RxChar,
};

/// Bytes the meter starts sending at a given time: one telegram, or a pre-rendered stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Burst {
    pub at_ps: u64,
    pub bytes: Vec<u8>,
}

/// Everything between the meter's output and the bytes a reader gets.
#[derive(Debug, Clone)]
pub struct Setup<'p> {
    /// The meter's line settings.
    pub line: LineSettings,
    pub plan: FaultPlan<&'p [BitFault]>,
    /// `None`: a perfect interface (pull-up and inverter) in front of the UART.
    pub board: Option<Board>,
    pub receiver: ReceiverConfig,
}

impl Setup<'_> {
    /// Whether the meter sends at all: it needs Request held high (a perfect interface does).
    pub fn meter_sends(&self) -> bool {
        self.board.as_ref().is_none_or(|b| b.drives_request())
    }
}

/// What the reader's UART flagged.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub chars: u64,
    pub framing: u64,
    pub parity: u64,
    pub breaks: u64,
}

impl Counts {
    fn add(&mut self, c: &RxChar) {
        self.chars += 1;
        self.framing += u64::from(c.framing_error);
        self.parity += u64::from(c.parity_error);
        self.breaks += u64::from(c.brk);
    }

    /// Characters with any flag.
    pub fn errors(&self) -> u64 {
        self.framing + self.parity + self.breaks
    }
}

/// The waveforms and characters of a recorded run.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// The meter's output transistor: low sinks, high is released (pulled up by the reader).
    pub meter: Vec<Run>,
    /// The UART's input pin, after the board (or the perfect interface).
    pub reader: Vec<Run>,
    /// Start time of every character the meter sent, with its byte.
    pub sent: Vec<(u64, u8)>,
    /// What the UART received.
    pub received: Vec<RxChar>,
}

/// The far side of the meter's output: the interface board (or a perfect one) and the reader's
/// UART, taking the meter's runs in time order. It keeps its state between telegrams, so whoever
/// drives it may use one transmitter for a whole stream (a [`Pipeline`]) or one per telegram
/// with that telegram's fault plan (the simulated rig).
#[derive(Debug)]
pub struct Downstream {
    board: Option<BoardSim>,
    rx: Receiver,
    rec: Option<Recording>,
    counts: Counts,
}

impl Downstream {
    /// The board and UART with the line idle (the P1 line idles in mark, which the meter holds
    /// by sinking); `record` keeps the waveforms and characters.
    pub fn new(board: Option<&Board>, receiver: ReceiverConfig, record: bool) -> Result<Downstream> {
        let rx = Receiver::new(receiver).map_err(|e| format_err!("--receiver {receiver}: {e}"))?;
        Ok(Downstream {
            board: board.map(|b| b.simulate(Level::Low)),
            rx,
            rec: record.then(Recording::default),
            counts: Counts::default(),
        })
    }

    /// Feeds the meter's output for the next `run.ps`; received characters go to `out`.
    pub fn push(&mut self, run: Run, out: &mut impl FnMut(RxChar)) {
        let Downstream { board, rx, rec, counts } = self;
        if let Some(r) = rec {
            r.meter.push(run);
        }
        match board {
            Some(b) => b.push(run, &mut |o| push_reader(rx, rec, counts, out, o)),
            // A perfect interface: pulled up and inverted, so the UART sees TTL polarity.
            None => push_reader(rx, rec, counts, out, Run::new(run.level.flip(), run.ps)),
        }
    }

    /// Passes on what the board holds back for merging, so every character the meter has sent
    /// so far reaches the UART; the line goes on from there.
    pub fn settle(&mut self, out: &mut impl FnMut(RxChar)) {
        let Downstream { board, rx, rec, counts } = self;
        if let Some(b) = board {
            b.flush(&mut |o| push_reader(rx, rec, counts, out, o));
        }
    }

    /// Ends the line: everything held back comes out, a character in progress is completed.
    pub fn finish(&mut self, out: &mut impl FnMut(RxChar)) {
        self.settle(out);
        let Downstream { rx, rec, counts, .. } = self;
        rx.finish(&mut |c| received(rec, counts, out, c));
    }

    /// The node voltage of the board's data line (the released or sunk level), if there is one.
    pub fn line_volts(&self) -> Option<f64> {
        self.board.as_ref().map(BoardSim::volts)
    }

    /// Picoseconds of line received so far.
    pub fn now(&self) -> u64 {
        self.rx.now()
    }

    pub fn counts(&self) -> Counts {
        self.counts
    }

    fn record_sent(&mut self, sent: impl IntoIterator<Item = (u64, u8)>) {
        if let Some(r) = &mut self.rec {
            r.sent.extend(sent);
        }
    }
}

/// Meter, line, board and UART, pushing runs from one to the next.
#[derive(Debug)]
pub struct Pipeline<'p> {
    setup: Setup<'p>,
    enc: LineEncoder<'p>,
    down: Downstream,
}

impl<'p> Pipeline<'p> {
    /// A pipeline at time 0 with the line idle; `record` keeps the waveforms.
    pub fn new(setup: Setup<'p>, record: bool) -> Result<Pipeline<'p>> {
        let enc = LineEncoder::new(setup.line, Polarity::Inverted, setup.plan)
            .map_err(|e| format_err!("the meter's line {}: {e}", setup.line))?;
        let down = Downstream::new(setup.board.as_ref(), setup.receiver, record)?;
        Ok(Pipeline { setup, enc, down })
    }

    pub fn setup(&self) -> &Setup<'p> {
        &self.setup
    }

    /// Picoseconds of line produced so far.
    pub fn now(&self) -> u64 {
        self.enc.now()
    }

    pub fn counts(&self) -> Counts {
        self.down.counts()
    }

    /// Idles until `at_ps` (or not at all if the line is busy until later), then sends `bytes`
    /// back to back, unless the meter is silent for want of Request. Received characters go to
    /// `out`.
    pub fn send_at(&mut self, at_ps: u64, bytes: &[u8], out: &mut impl FnMut(RxChar)) {
        let Pipeline { setup, enc, down } = self;
        let mut stage = |r: Run| down.push(r, out);
        enc.idle(at_ps.saturating_sub(enc.now()), &mut stage);
        if !setup.meter_sends() {
            return;
        }
        let record = down.rec.is_some();
        let mut sent = Vec::with_capacity(if record { bytes.len() } else { 0 });
        let mut stage = |r: Run| down.push(r, out);
        for &b in bytes {
            let t = enc.encode_byte(b, &mut stage);
            if record {
                sent.push((t, b));
            }
        }
        down.record_sent(sent);
    }

    /// Idles for `tail_ps` and flushes every stage, so all characters come out.
    pub fn finish(&mut self, tail_ps: u64, out: &mut impl FnMut(RxChar)) {
        let Pipeline { enc, down, .. } = self;
        let mut stage = |r: Run| down.push(r, out);
        enc.idle(tail_ps, &mut stage);
        enc.flush(&mut stage);
        down.finish(out);
    }

    /// The recording, if the pipeline was made with one.
    pub fn recording(&self) -> Option<&Recording> {
        self.down.rec.as_ref()
    }

    pub fn into_recording(self) -> Option<Recording> {
        self.down.rec
    }
}

fn push_reader(
    rx: &mut Receiver,
    rec: &mut Option<Recording>,
    counts: &mut Counts,
    out: &mut impl FnMut(RxChar),
    run: Run,
) {
    if let Some(r) = rec {
        r.reader.push(run);
    }
    rx.push(run, &mut |c| received(rec, counts, out, c));
}

fn received(rec: &mut Option<Recording>, counts: &mut Counts, out: &mut impl FnMut(RxChar), c: RxChar) {
    counts.add(&c);
    if let Some(r) = rec {
        r.received.push(c);
    }
    out(c);
}

/// Picoseconds of one character time at `line` (for idle between telegrams and tails).
pub fn char_ps(line: LineSettings) -> u64 {
    u64::from(line.framing.bits_per_char()) * PS_PER_S / u64::from(line.baud)
}

/// Bytes sent but not yet received after which [`Through`] gives up comparing (the delivery is
/// then not intact): far more than the pipeline's lag of a few characters.
const MAX_BACKLOG: usize = 1 << 16;

/// A writer that puts everything written to it on the line and writes what the reader's UART
/// delivers to `out`, as a Linux tty in raw mode delivers it (pyserial, cu): a break as a NUL
/// byte, characters with framing or parity errors as received or, for a receiver set up with
/// [`ErrorChars::Nul`](p1sim_core::wire::ErrorChars), as NUL.
///
/// Each `write` is sent as one burst, one telegram interval after the previous one (or right
/// after it, if the line was still busy), which is how `emit` writes telegrams.
#[derive(Debug)]
pub struct Through<'p, W: Write> {
    out: W,
    pipe: Pipeline<'p>,
    interval_ps: u64,
    next_at: u64,
    /// Bytes sent and not yet matched by a received one; `None` once they differed.
    pending: Option<VecDeque<u8>>,
    error: Option<io::Error>,
}

/// What the reader got, at the end of a [`Through`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub counts: Counts,
    /// Bytes the meter sent.
    pub sent: u64,
    /// The reader got exactly the bytes sent, without any flag.
    pub intact: bool,
    pub meter_sends: bool,
}

impl Report {
    /// One line for stderr.
    pub fn summary(&self) -> String {
        let c = self.counts;
        let mut s = format!(
            "p1sim: the reader's UART got {} characters for {} sent: {} framing errors, {} parity errors, {} breaks",
            c.chars, self.sent, c.framing, c.parity, c.breaks
        );
        if !self.meter_sends {
            s.push_str(" (the board leaves Request, pin 2, low: the meter never sends)");
        } else if self.intact {
            s.push_str(" (intact)");
        } else {
            s.push_str(" (not what the meter sent)");
        }
        s
    }
}

impl<'p, W: Write> Through<'p, W> {
    pub fn new(setup: Setup<'p>, interval_s: u32, out: W) -> Result<Through<'p, W>> {
        let first_at = 10 * char_ps(setup.line);
        let pipe = Pipeline::new(setup, false)?;
        Ok(Through {
            out,
            pipe,
            interval_ps: u64::from(interval_s.max(1)) * PS_PER_S,
            // A little idle first, so the receiver sees the line at rest before the first start bit.
            next_at: first_at,
            pending: Some(VecDeque::new()),
            error: None,
        })
    }

    fn deliver(
        rx: &ReceiverConfig,
        out: &mut W,
        pending: &mut Option<VecDeque<u8>>,
        error: &mut Option<io::Error>,
        c: RxChar,
    ) {
        if error.is_none()
            && let Err(e) = out.write_all(&[rx.delivered(&c)])
        {
            *error = Some(e);
        }
        if let Some(q) = pending
            && (!c.is_clean() || q.pop_front() != Some(c.byte))
        {
            *pending = None;
        }
    }

    /// Flushes the line and the writer; returns the writer and what the reader got.
    pub fn finish(mut self) -> io::Result<(W, Report)> {
        let Through { out, pipe, pending, error, .. } = &mut self;
        let rx = pipe.setup().receiver;
        pipe.finish(10 * char_ps(pipe.setup().line), &mut |c| Self::deliver(&rx, out, pending, error, c));
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        self.out.flush()?;
        let counts = self.pipe.counts();
        let meter_sends = self.pipe.setup().meter_sends();
        let sent = self.pipe.enc.chars();
        let intact = meter_sends && self.pending.as_ref().is_some_and(|q| q.is_empty()) && counts.errors() == 0;
        Ok((self.out, Report { counts, sent, intact, meter_sends }))
    }
}

impl<W: Write> Write for Through<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let Through { out, pipe, interval_ps, next_at, pending, error } = self;
        if let Some(q) = pending {
            if pipe.setup().meter_sends() {
                q.extend(buf);
            }
            // The reader lags the meter by a character or two; a backlog this long means bytes
            // are lost, and keeping them would only cost memory over a long emission.
            if q.len() > MAX_BACKLOG {
                *pending = None;
            }
        }
        let at = (*next_at).max(pipe.now());
        let rx = pipe.setup().receiver;
        pipe.send_at(at, buf, &mut |c| Self::deliver(&rx, out, pending, error, c));
        *next_at = at + *interval_ps;
        match error.take() {
            Some(e) => Err(e),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use p1sim_core::spec::Framing;

    const LINE: LineSettings = LineSettings { baud: 9600, framing: Framing::SEVEN_E1 };

    fn setup(board: Option<&str>, receiver: &str) -> Setup<'static> {
        Setup {
            line: LINE,
            plan: FaultPlan::CLEAN,
            board: board.map(|b| Board::named(b).unwrap()),
            receiver: receiver.parse().unwrap(),
        }
    }

    fn through(s: Setup<'_>, bursts: &[&[u8]]) -> (Vec<u8>, Report) {
        let mut t = Through::new(s, 10, Vec::new()).unwrap();
        for b in bursts {
            t.write_all(b).unwrap();
        }
        t.finish().unwrap()
    }

    #[test]
    fn a_good_board_delivers_every_burst() {
        let (got, report) = through(setup(Some("transistor-inverter"), "9600-7E1"), &[b"/KMP5\r\n", b"!\r\n"]);
        assert_eq!(got, b"/KMP5\r\n!\r\n");
        assert!(report.intact, "{}", report.summary());
        assert_eq!(report.sent, 10);
    }

    #[test]
    fn a_mismatched_uart_is_reported_as_not_intact() {
        // 7E1 read as 8N1: '/' (five ones, parity 1) arrives as 0xAF, without any flag.
        let (got, report) = through(setup(None, "9600-8N1"), &[b"/"]);
        assert_eq!(got, [0xAF]);
        assert_eq!(report.counts.errors(), 0);
        assert!(!report.intact);
        assert!(report.summary().contains("not what the meter sent"));
    }

    #[test]
    fn a_growing_cable_loses_a_few_telegrams_before_it_loses_them_all() {
        // The Raspberry Pi transistor inverter at 115200 8N1: its weak pull-up's slow edges and
        // the noise a long cable picks up damage characters with short space bits first, so the
        // share of telegrams that arrive whole falls over several metres, not at one length.
        let sweep: Vec<(u32, usize)> =
            [10, 40, 42, 43, 44, 46, 60].into_iter().map(|m| (m, whole_telegrams("iskra-am550", m))).collect();
        assert_eq!(sweep[0].1, CABLE_TELEGRAMS, "{sweep:?}");
        assert!(
            sweep.iter().filter(|(_, n)| (1..CABLE_TELEGRAMS).contains(n)).count() >= 2,
            "a zone of loss: {sweep:?}"
        );
        assert!(sweep.windows(2).all(|w| w[0].1 >= w[1].1), "fewer with every extra length: {sweep:?}");
        assert_eq!(sweep.last().unwrap().1, 0, "{sweep:?}");
    }

    #[test]
    fn a_9600_baud_meter_reaches_several_times_further_on_the_same_cable() {
        // Its bits last twelve times longer, so the same slow edge and the same noise cost it a
        // far smaller share of a bit: a DSMR 3 meter is whole on 100 m where 115200 gives up.
        assert_eq!(whole_telegrams("kamstrup-162", 100), CABLE_TELEGRAMS);
        assert_eq!(whole_telegrams("iskra-am550", 100), 0);
    }

    const CABLE_TELEGRAMS: usize = 20;

    /// How many of 20 telegrams of `profile` arrive whole through the Raspberry Pi transistor
    /// inverter on `cable` metres, read at the meter's own setting.
    fn whole_telegrams(profile: &str, cable: u32) -> usize {
        let p = p1sim_core::builtin::lookup(profile).unwrap();
        let mut g =
            p1sim_core::generator::Generator::new(p.clone(), p.household.clone(), 1, 1_768_474_800, None).unwrap();
        let telegrams: Vec<Vec<u8>> = (0..CABLE_TELEGRAMS)
            .map(|_| {
                g.step();
                let mut out = Vec::new();
                g.render_current(&mut out);
                out
            })
            .collect();
        let board = Board::named("transistor-inverter").unwrap();
        let s = Setup {
            line: p.line,
            plan: FaultPlan::CLEAN,
            board: Some(Board { cable_m: f64::from(cable), ..board }),
            receiver: format!("{}-{}", p.line.baud, p.line.framing).parse().unwrap(),
        };
        let bursts: Vec<&[u8]> = telegrams.iter().map(Vec::as_slice).collect();
        let (got, _) = through(s, &bursts);
        let mut valid = 0;
        let mut decoder = p1sim_core::decode::Decoder::new();
        decoder.feed(&got, |ev| {
            if let p1sim_core::decode::Event::Telegram(f) = ev {
                valid += usize::from(f.is_valid());
            }
        });
        valid
    }

    #[test]
    fn no_request_no_telegram() {
        let mut s = setup(Some("ftdi-inverted"), "9600-7E1");
        s.board = s.board.map(|b| Board { request: p1sim_core::wire::board::Request::Open, ..b });
        let (got, report) = through(s, &[b"/KMP5\r\n"]);
        assert_eq!(got, b"");
        assert!(!report.intact && !report.meter_sends);
        assert!(report.summary().contains("Request"));
    }

    #[test]
    fn recording_keeps_both_sides_of_the_board() {
        let mut p = Pipeline::new(setup(Some("rs232-adapter"), "9600-7E1"), true).unwrap();
        p.send_at(1_000_000_000, b"AB", &mut |_| {});
        p.finish(char_ps(LINE), &mut |_| {});
        let rec = p.into_recording().unwrap();
        assert_eq!(rec.sent.iter().map(|s| s.1).collect::<Vec<_>>(), b"AB");
        assert_eq!(rec.sent[0].0, 1_000_000_000);
        assert_eq!(rec.received.iter().map(|c| c.byte).collect::<Vec<_>>(), b"AB");
        assert_eq!(rec.meter[0], Run::new(Level::Low, 1_000_000_000), "P1 idles low");
        assert_eq!(rec.reader[0].level, Level::High, "the UART idles high");
    }
}
