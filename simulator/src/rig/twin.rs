//! The line of the simulated rig when a virtual board is wired between its data output and its
//! capture input: the virtual twin of a board under test. Each telegram goes out as the
//! firmware puts it on the P1 pin (its own fault plan, inverted, open collector), through the
//! board model and into a UART receiver set as the rig's capture input, and comes back as the
//! captured characters with their receiver flags.
//!
//! It keeps the board and receiver state from one telegram to the next, and a clock of line
//! time that the captured timestamps count, as the firmware's microseconds since boot do.

use anyhow::{Result, format_err};
use p1sim_core::rig::{CaptureConfig, Captured, FaultPlan, LineConfig, flags};
use p1sim_core::spec::LineSettings;
use p1sim_core::wire::board::Board;
use p1sim_core::wire::{self, BitFault, LineEncoder, PS_PER_S, ReceiverConfig, RxChar};

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
}

/// The capture input as a receiver: its polarity says which level is idle (`Normal` is a TTL
/// input, idle high), as the firmware's GPIO input inverter does.
fn receiver_of(c: &CaptureConfig) -> Result<ReceiverConfig> {
    Ok(ReceiverConfig { line: LineSettings { baud: c.baud, framing: c.framing }, input: c.polarity, phase: 0 })
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
