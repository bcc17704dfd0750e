//! The line of the simulated rig when a virtual board is wired between its data output and its
//! capture input: the virtual twin of a board under test. Each telegram goes out as the
//! firmware puts it on the P1 pin (its own fault plan, inverted, open collector), through the
//! board model and into a UART receiver set as the rig's capture input, and comes back as the
//! captured characters with their receiver flags.
//!
//! It keeps the board and receiver state from one telegram to the next, and a clock of line
//! time that the captured timestamps count, as the firmware's microseconds since boot do.
//!
//! It measures, too: the firmware's measurement sequence (`p1sim_core::rig::sense`) runs
//! against the board model in place of the rig's ADC, load switch and edge timers, so a twin
//! reports the quantities a rig with sensors reports, at the same resolution.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use anyhow::{Result, format_err};
use p1sim_core::rig::sense::{
    self, FALL_LOOP_CYCLES, Input, RIG_CIRCUIT, RISE_LOOP_CYCLES, SenseHw, mv_to_adc, seconds_to_count,
};
use p1sim_core::rig::{
    CaptureConfig, Captured, FaultPlan, LineConfig, MeasureRequest, Measured, Quantity, Reading, flags,
};
use p1sim_core::spec::LineSettings;
use p1sim_core::wire::board::{Board, LineSense, METER_SINK_OHMS};
use p1sim_core::wire::{self, BitFault, LineEncoder, PS_PER_S, ReceiverConfig, RxChar, Vote};

use crate::wire::Downstream;

/// Idle between telegrams: about what the host's USB round trip and the bench's settling leave
/// on a real rig.
const GAP_PS: u64 = 2 * PS_PER_S / 1000;

/// A board under test on the simulated rig.
#[derive(Debug)]
pub struct Twin {
    board: Board,
    capture: CaptureConfig,
    down: Downstream,
    /// Line time of the last telegram's end, in picoseconds since the rig "booted".
    now_ps: u64,
}

impl Twin {
    /// The board, with the capture input set as `capture` and the line idle.
    pub fn new(board: Board, capture: CaptureConfig) -> Result<Twin> {
        let down = Downstream::new(Some(&board), receiver_of(&capture)?, false)?;
        Ok(Twin { board, capture, down, now_ps: 0 })
    }

    pub fn board(&self) -> &Board {
        &self.board
    }

    /// The capture input was set up anew: a receiver with the new settings.
    pub fn set_capture(&mut self, capture: CaptureConfig) -> Result<()> {
        let mut down = Downstream::new(Some(&self.board), receiver_of(&capture)?, false)?;
        // The new receiver starts where the old one stopped, with the line idle.
        down.push(wire::Run::new(wire::Level::Low, self.down.now()), &mut |_| {});
        self.down = down;
        self.capture = capture;
        Ok(())
    }

    /// Puts the first `send` bytes of `telegram` on the line with `plan` (a Request drop cuts a
    /// telegram short) and returns what the capture input received.
    pub fn transmit(
        &mut self,
        line: &LineConfig,
        plan: &FaultPlan,
        telegram: &[u8],
        send: usize,
    ) -> Result<Vec<Captured>> {
        let settings = LineSettings { baud: line.baud, framing: line.framing };
        let mut faults: Vec<BitFault> = plan.faults.iter().map(|f| BitFault::from(*f)).collect();
        wire::fault::sort_faults(&mut faults);
        let plan = wire::FaultPlan { faults, skew_ppm: plan.skew_ppm, gap: wire::BitSpan(plan.gap) };
        let mut enc = LineEncoder::new(settings, line.polarity, plan.as_ref())
            .map_err(|e| format_err!("the rig refuses the fault plan: {e}"))?;
        let mut got = Vec::new();
        let enabled = self.capture.enabled;
        let mut take = |c: RxChar| {
            if enabled {
                got.push(captured(c));
            }
        };
        let Twin { down, .. } = self;
        let mut stage = |r| down.push(r, &mut take);
        enc.idle(GAP_PS, &mut stage);
        enc.encode(&telegram[..send.min(telegram.len())], &mut stage);
        // Enough idle for the last character's stop bit to be sampled.
        let settle = 12 * PS_PER_S / u64::from(line.baud.max(1));
        enc.idle(settle, &mut stage);
        enc.flush(&mut stage);
        down.settle(&mut take);
        self.now_ps = self.down.now();
        Ok(got)
    }

    /// Microseconds of line time so far.
    pub fn now_us(&self) -> u64 {
        self.now_ps / 1_000_000
    }

    /// What a rig with sensors measures on this board, Request being `request_high`.
    pub fn measure(&self, request_high: bool, _request: MeasureRequest) -> Measured {
        let mut hw = ModelHw::new(&self.board, request_high);
        let mut readings = complete(sense::measure_line(&mut hw, PIO_CLOCK_HZ)).unwrap_or_default();
        let b = &self.board;
        for (quantity, value, resolution) in [
            (Quantity::SupplyAverage, b.supply_ma * 1000.0, SUPPLY_LSB_UA),
            (Quantity::SupplyPeak, b.supply_peak_ma * 1000.0, SUPPLY_LSB_UA),
            (Quantity::SupplyVoltage, 5_000.0, 4),
        ] {
            // Quantized as the current monitor reports it.
            let value = (value / f64::from(resolution)).round() as i32 * resolution as i32;
            let _ = readings.push(Reading { quantity, value: Some(value), resolution });
        }
        Measured { circuit: RIG_CIRCUIT, readings }
    }
}

/// The PIO clock of the rig's edge timers: the RP2040's 125 MHz system clock.
const PIO_CLOCK_HZ: u32 = 125_000_000;

/// The current monitor's step (the INA219 calibrated for 100 µA a count).
const SUPPLY_LSB_UA: u32 = 100;

/// The rig's sensors, modelled: the line's levels from the board model, Request at the level
/// the board drives it to, the board's output at its high level, and the edge times of the RC.
struct ModelHw<'a> {
    board: &'a Board,
    sense: LineSense,
    request_high: bool,
    released: bool,
    load: bool,
    armed: bool,
}

impl<'a> ModelHw<'a> {
    fn new(board: &'a Board, request_high: bool) -> Self {
        let sense = board.sense(&RIG_CIRCUIT.into());
        ModelHw { board, sense, request_high, released: false, load: false, armed: false }
    }
}

impl SenseHw for ModelHw<'_> {
    fn sink(&mut self) {
        self.released = false;
    }
    fn release(&mut self) {
        self.released = true;
    }
    fn set_load(&mut self, on: bool) {
        self.load = on;
    }
    fn arm_edges(&mut self) {
        self.armed = true;
    }
    fn rise_count(&mut self) -> Option<u32> {
        let rise = self.sense.rise_s.filter(|_| self.armed)?;
        Some(seconds_to_count(rise, RISE_LOOP_CYCLES, PIO_CLOCK_HZ))
    }
    fn fall_count(&mut self) -> Option<u32> {
        if !self.armed {
            return None;
        }
        // The meter's output sinks the line through its few ohms: from the released level to
        // the threshold in a few nanoseconds (none when it was never above it).
        let top = self.sense.open_volts;
        let threshold = f64::from(RIG_CIRCUIT.threshold_mv) / 1000.0;
        let tau = METER_SINK_OHMS * self.board.capacitance_f();
        let fall = if top > threshold { tau * (top / threshold).ln() } else { 0.0 };
        Some(seconds_to_count(fall, FALL_LOOP_CYCLES, PIO_CLOCK_HZ))
    }
    async fn adc(&mut self, input: Input) -> u16 {
        let volts = match input {
            Input::Line if !self.released => self.board.sunk_volts(),
            Input::Line if self.load => self.sense.loaded_volts,
            Input::Line => self.sense.open_volts,
            Input::Request if self.request_high => self.board.request_volts,
            Input::Request => 0.0,
            Input::Output => self.board.output_high_volts.unwrap_or(0.0),
        };
        mv_to_adc(volts * 1000.0)
    }
    async fn delay_us(&mut self, _: u32) {}
}

/// Runs a future that never waits (the model's hardware) to its end; `None` if it would wait.
fn complete<F: Future>(f: F) -> Option<F::Output> {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

/// The capture input as a receiver: its polarity says which level is idle (`Normal` is a TTL
/// input, idle high), as the firmware's GPIO input inverter does, and it votes each bit from
/// three samples 1/8 bit apart, as the firmware's PIO program samples.
fn receiver_of(c: &CaptureConfig) -> Result<ReceiverConfig> {
    Ok(ReceiverConfig {
        input: c.polarity,
        vote: Vote::Spread,
        ..ReceiverConfig::new(LineSettings { baud: c.baud, framing: c.framing })
    })
}

fn captured(c: RxChar) -> Captured {
    let mut f = 0;
    if c.framing_error {
        f |= flags::FRAMING;
    }
    if c.parity_error {
        f |= flags::PARITY;
    }
    if c.brk {
        f |= flags::BREAK;
    }
    Captured { byte: c.byte, flags: f, at_us: c.at / 1_000_000 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn twin(name: &str) -> Twin {
        Twin::new(Board::named(name).unwrap(), CaptureConfig::TTL).unwrap()
    }

    #[test]
    fn a_working_board_returns_the_telegram() {
        let mut t = twin("transistor-inverter-bc847");
        let got = t.transmit(&LineConfig::P1, &FaultPlan::default(), b"/ISK5\r\n!1234\r\n", 14).unwrap();
        assert_eq!(got.iter().map(|c| c.byte).collect::<Vec<_>>(), b"/ISK5\r\n!1234\r\n");
        assert!(got.iter().all(|c| c.flags == 0));
        // Timestamps count line time: characters 87 us apart at 115200.
        assert!((80..95).contains(&(got[1].at_us - got[0].at_us)), "{:?}", &got[..2]);
        // The next telegram comes later on the same clock, and a cut one stops where it was cut.
        let before = t.now_us();
        let cut = t.transmit(&LineConfig::P1, &FaultPlan::default(), b"/ISK5\r\n!1234\r\n", 5).unwrap();
        assert_eq!(cut.iter().map(|c| c.byte).collect::<Vec<_>>(), b"/ISK5");
        assert!(cut[0].at_us > before);
    }

    #[test]
    fn a_twin_measures_what_a_rig_with_sensors_would() {
        use p1sim_core::wire::board::PullUp;
        let mut board = Board::named("ftdi-inverted").unwrap();
        board.pull_up = Some(PullUp { volts: 5.0, ohms: 47_000.0 });
        board.supply_ma = 80.0;
        board.supply_peak_ma = 310.0;
        let m = Twin::new(board.clone(), CaptureConfig::TTL)
            .unwrap()
            .measure(true, MeasureRequest { supply_window_ms: 500 });
        let get = |q| m.get(q).and_then(|r| r.value).unwrap();
        let open = f64::from(get(Quantity::LineOpen)) / 1000.0;
        let loaded = f64::from(get(Quantity::LineLoaded)) / 1000.0;
        let sense = LineSense { open_volts: open, loaded_volts: loaded, rise_s: None };
        let ohms = sense.pull_up_ohms(&RIG_CIRCUIT.into()).unwrap();
        assert!((ohms - 47_000.0).abs() < 47_000.0 * 0.01, "read back through the ADC's steps: {ohms}");
        let rise = board.sense(&RIG_CIRCUIT.into()).rise_s.unwrap();
        assert!((f64::from(get(Quantity::Rise)) - rise * 1e9).abs() <= 16.0, "{} vs {rise}", get(Quantity::Rise));
        assert_eq!((get(Quantity::SupplyAverage), get(Quantity::SupplyPeak)), (80_000, 310_000));
        assert!((get(Quantity::Request) - 5_000).abs() <= 2);
        // Request low: the ADC reads nothing there.
        let low = Twin::new(board, CaptureConfig::TTL).unwrap().measure(false, MeasureRequest { supply_window_ms: 1 });
        assert_eq!(low.get(Quantity::Request).and_then(|r| r.value), Some(0));
    }

    #[test]
    fn the_plan_reaches_the_line() {
        let mut t = twin("ftdi-inverted");
        let plan = FaultPlan {
            faults: [p1sim_core::rig::Fault::Flip { char: 1, bit: 9 }].into_iter().collect(),
            ..FaultPlan::default()
        };
        let got = t.transmit(&LineConfig::P1, &plan, b"ABC", 3).unwrap();
        assert_eq!(got[1].flags, flags::FRAMING, "{got:?}");
    }

    #[test]
    fn a_board_without_an_inverter_gives_breaks_and_framing_errors() {
        let mut t = twin("direct-no-inverter");
        let got = t.transmit(&LineConfig::P1, &FaultPlan::default(), b"/ISK5\\2M550T-1012\r\n", 19).unwrap();
        // The idle P1 line is low, which an uninverted UART reads as a break, before the telegram
        // and again after it; in between, garbage with framing errors.
        assert!(got.first().is_some_and(|c| c.flags & flags::BREAK != 0), "{got:?}");
        assert!(got.last().is_some_and(|c| c.flags & flags::BREAK != 0), "{got:?}");
        assert!(got.iter().any(|c| c.flags & flags::FRAMING != 0), "{got:?}");
        assert!(!got.windows(5).any(|w| w.iter().map(|c| c.byte).eq(b"/ISK5".iter().copied())), "{got:?}");
    }
}
