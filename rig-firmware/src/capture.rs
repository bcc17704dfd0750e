//! The capture input: PIO0 SM1 receives what the board under test makes of the P1 signal,
//! the PIO interrupt (`feed`) timestamps each character as it leaves the FIFO, and this task
//! checks parity and stop bits and sends batches of characters with their receiver flags and
//! timestamps to the host.
//!
//! The receiver samples every bit after the start bit (data, parity, the first stop bit) three
//! times, 1/8 bit apart around its middle as an 8x UART does, and pushes the samples raw; this
//! task takes each bit's majority, so a glitch of up to 1/16 bit is outvoted, and a framing or parity error is
//! reported with the character rather than silently dropped, as embassy's 8N1 PIO UART would. Inverted inputs use the GPIO input inverter, so the program
//! always sees idle high.
//!
//! The task wakes about once a millisecond while characters arrive, not once per character: a
//! full batch goes out at once, a partial one when the line has been quiet for two character
//! times (at least 1 ms), so a telegram costs a few dozen frames and a lone character still
//! arrives promptly.

use core::future::poll_fn;
use core::task::Poll;

use embassy_futures::select::{Either, Either3, select, select3};
use embassy_rp::clocks::clk_sys_freq;
use embassy_rp::gpio::Pull;
use embassy_rp::pac;
use embassy_rp::peripherals::PIO0;
use embassy_rp::pio::{Config, FifoJoin, Pin, ShiftConfig, ShiftDirection, StateMachine};
use embassy_time::{Duration, Timer};
use fixed::FixedU32;
use fixed::types::extra::U8;
use heapless::Vec;
use p1sim_core::rig::{self, Buffer, CaptureConfig, ConfigError, DeviceMsg, MAX_CAPTURED, Polarity};

use portable_atomic::Ordering;

use crate::feed::{RX, RX_LOST, RX_READY};
use crate::programs::{CaptureProgram, RX_CYCLES_PER_BIT, jmp_instr, set_y_instr};
use crate::shared::{self, CAPTURE, PINS};

/// Refuses settings the receiver cannot sample.
pub fn check(cfg: &CaptureConfig) -> Result<(), ConfigError> {
    cfg.validate()?;
    clkdiv(cfg.baud).map(|_| ()).ok_or(ConfigError::Baud)
}

/// The clock divider for 32 PIO cycles per bit, if it is within the PIO's 1..=65536 range.
fn clkdiv(baud: u32) -> Option<FixedU32<U8>> {
    let rate = u64::from(baud) * u64::from(RX_CYCLES_PER_BIT);
    let div256 = (u64::from(clk_sys_freq()) * 256 + rate / 2) / rate;
    (256..=65536 * 256).contains(&div256).then(|| FixedU32::from_bits(div256 as u32))
}

#[embassy_executor::task]
pub async fn task(mut sm: StateMachine<'static, PIO0, 1>, mut pin: Pin<'static, PIO0>, program: CaptureProgram) {
    // An unconnected capture input reads idle instead of floating into false starts.
    pin.set_pull(Pull::Up);
    let mut cfg = shared::status().capture;
    apply(&mut sm, &pin, &program, &cfg);
    loop {
        // Nothing queued: sleep until the first character or new settings.
        if let Either::Second(new) = select(queued(1), CAPTURE.wait()).await {
            reconfigure(&mut sm, &pin, &program, &mut cfg, new);
            continue;
        }
        let quiet = Duration::from_micros((20_000_000 / u64::from(cfg.baud)).max(1_000));
        let mut seen = RX.len();
        loop {
            if RX.len() >= MAX_CAPTURED {
                flush(&mut sm, &cfg);
            }
            if RX.is_empty() {
                break;
            }
            match select3(queued(MAX_CAPTURED), Timer::after(quiet), CAPTURE.wait()).await {
                Either3::First(()) => {}
                Either3::Second(()) => {
                    let now = RX.len();
                    if now == seen {
                        flush(&mut sm, &cfg);
                    }
                    seen = RX.len();
                }
                Either3::Third(new) => {
                    reconfigure(&mut sm, &pin, &program, &mut cfg, new);
                    break;
                }
            }
        }
    }
}

/// Resolves once at least `n` characters are queued.
async fn queued(n: usize) {
    poll_fn(|cx| {
        RX_READY.register(cx.waker());
        if RX.len() >= n { Poll::Ready(()) } else { Poll::Pending }
    })
    .await
}

/// Sends what is queued (decoded with the settings it was received with), then applies `new`.
fn reconfigure(
    sm: &mut StateMachine<'static, PIO0, 1>,
    pin: &Pin<'static, PIO0>,
    program: &CaptureProgram,
    cfg: &mut CaptureConfig,
    new: CaptureConfig,
) {
    sm.set_enable(false);
    while !RX.is_empty() {
        flush(sm, cfg);
    }
    *cfg = new;
    apply(sm, pin, program, cfg);
}

/// Sends up to one batch of queued characters to the host, with any losses before it.
fn flush(sm: &mut StateMachine<'static, PIO0, 1>, cfg: &CaptureConfig) {
    if sm.rx().stalled() {
        // The interrupt did not empty the FIFO in time: the receiver missed a start bit.
        shared::emit(DeviceMsg::Overrun { buffer: Buffer::CaptureFifo, lost: 1 });
    }
    let lost = RX_LOST.swap(0, Ordering::Relaxed);
    if lost > 0 {
        shared::emit(DeviceMsg::Overrun { buffer: Buffer::CaptureQueue, lost });
    }
    let n = 3 * rig::voted_bits(cfg.framing);
    let mut batch: Vec<rig::Captured, MAX_CAPTURED> = Vec::new();
    while !batch.is_full() {
        let Some(rx) = RX.pop() else { break };
        let (byte, flags) = rig::vote_char(cfg.framing, rx.word >> (32 - n));
        // There is room: the loop stops when the batch is full.
        let _ = batch.push(rig::Captured { byte, flags, at_us: rx.at_us });
    }
    if batch.is_empty() {
        return;
    }
    let count = batch.len() as u32;
    if shared::EVENTS.try_send(DeviceMsg::Captured(batch)).is_err() {
        shared::emit(DeviceMsg::Overrun { buffer: Buffer::CaptureQueue, lost: count });
    }
}

/// (Re)starts the receiver for `cfg`, or leaves it stopped when capture is off.
fn apply(
    sm: &mut StateMachine<'static, PIO0, 1>,
    pin: &Pin<'static, PIO0>,
    program: &CaptureProgram,
    cfg: &CaptureConfig,
) {
    sm.set_enable(false);
    // The GPIO input inverter turns an idle-low input into the idle-high line the program
    // expects; it affects only what peripherals read from this pin.
    let inover = match cfg.polarity {
        Polarity::Normal => pac::io::vals::Inover::NORMAL,
        Polarity::Inverted => pac::io::vals::Inover::INVERT,
    };
    pac::IO_BANK0.gpio(usize::from(PINS.capture)).ctrl().modify(|w| w.set_inover(inover));
    if !cfg.enabled {
        return;
    }
    let Some(div) = clkdiv(cfg.baud) else { return };
    let mut c = Config::default();
    c.use_program(&program.loaded, &[]);
    c.set_in_pins(&[pin]);
    c.set_jmp_pin(pin);
    // Autopush after the frame's last sample: the word holds three samples of every bit after
    // the start bit (through the first stop bit) in its top bits, and no `push` instruction
    // stands between the stop bit and the next start edge.
    let n = (3 * rig::voted_bits(cfg.framing)) as u8;
    c.shift_in = ShiftConfig { threshold: n, direction: ShiftDirection::Right, auto_fill: true };
    // The receiver never reads its TX FIFO: all eight entries hold received characters, 700 us
    // of them at 115200, for when the feed interrupt is held off.
    c.fifo_join = FifoJoin::RxOnly;
    c.clock_divider = div;
    sm.set_config(&c);
    sm.clear_fifos();
    sm.restart();
    // SAFETY: the state machine is stopped; these set Y (bits to vote after the start bit,
    // minus one: at most 9) and jump to the program's first instruction.
    unsafe {
        sm.exec_instr(set_y_instr((rig::voted_bits(cfg.framing) - 1) as u8));
        sm.exec_instr(jmp_instr(program.loaded.origin));
    }
    let _ = sm.rx().stalled();
    sm.set_enable(true);
}
