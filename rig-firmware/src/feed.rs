//! The PIO0_IRQ_1 handler: it keeps the data state machine's TX FIFO topped up from the slot
//! ring the line task fills, and empties the capture state machine's RX FIFO into a ring of
//! timestamped characters for the capture task.
//!
//! Feeding words from an interrupt rather than from a task is what keeps a streamed telegram
//! gapless: the ring holds milliseconds of line time, and whatever the executor is busy with
//! (decoding a USB frame, encoding a capture batch) the FIFO is refilled within microseconds.
//! It also costs far less than a task wake-up per word: about a hundred cycles a word.

use embassy_rp::interrupt::typelevel::{Handler, Interrupt, PIO0_IRQ_1};
use embassy_rp::pac;
use embassy_sync::waitqueue::AtomicWaker;
use embassy_time::Instant;
use portable_atomic::{AtomicU32, Ordering};

use crate::ring::Ring;

/// Slot words waiting for the data state machine: 128 words are 4.4 ms at 115200 with 8 slots
/// per bit, far more than any executor stall.
pub const TX_WORDS: usize = 128;
pub static TX: Ring<u32, TX_WORDS> = Ring::new();
/// Woken when the TX ring has drained to half.
pub static TX_SPACE: AtomicWaker = AtomicWaker::new();

/// One word from the capture receiver and when the interrupt took it.
#[derive(Clone, Copy)]
pub struct RxWord {
    pub word: u32,
    pub at_us: u64,
}

/// Captured characters waiting for the capture task: 11 ms at 115200.
pub const RX_WORDS: usize = 128;
pub static RX: Ring<RxWord, RX_WORDS> = Ring::new();
/// Woken on the first character after the ring was empty and whenever a batch is ready.
pub static RX_READY: AtomicWaker = AtomicWaker::new();
/// Characters dropped because the RX ring was full.
pub static RX_LOST: AtomicU32 = AtomicU32::new(0);
/// How many queued characters make a batch worth waking the capture task for.
pub const RX_BATCH: usize = p1sim_core::rig::MAX_CAPTURED;

const SM0_TXNFULL: u32 = 1 << 4;
const SM1_RXNEMPTY: u32 = 1 << 1;
const TX_SM: usize = 0;
const RX_SM: usize = 1;

/// Atomic set and clear aliases of a peripheral register (RP2040 datasheet §2.1.2).
fn set_bits(reg: *mut u32, bits: u32) {
    // SAFETY: the set alias of a PIO register; writing it sets exactly `bits`.
    unsafe { ((reg as usize + 0x2000) as *mut u32).write_volatile(bits) }
}

fn clear_bits(reg: *mut u32, bits: u32) {
    // SAFETY: the clear alias of a PIO register; writing it clears exactly `bits`.
    unsafe { ((reg as usize + 0x3000) as *mut u32).write_volatile(bits) }
}

fn inte() -> *mut u32 {
    pac::PIO0.irqs(1).inte().as_ptr() as *mut u32
}

/// Enables the interrupt with capture on; the TX source is switched on by [`kick_tx`].
pub fn init() {
    set_bits(inte(), SM1_RXNEMPTY);
    // SAFETY: the handler below is bound to this interrupt (main.rs) and touches only the two
    // rings, their wakers and the FIFOs of SM0 and SM1.
    unsafe { PIO0_IRQ_1::enable() };
}

/// After pushing words to [`TX`]: lets the interrupt feed them.
pub fn kick_tx() {
    set_bits(inte(), SM0_TXNFULL);
}

/// Stops feeding the state machine (the ring keeps what it holds).
pub fn stop_tx() {
    clear_bits(inte(), SM0_TXNFULL);
}

pub struct FeedHandler;

impl Handler<PIO0_IRQ_1> for FeedHandler {
    unsafe fn on_interrupt() {
        let pio = pac::PIO0;
        let ints = pio.irqs(1).ints().read().0;
        // Wakers are woken only when a threshold is crossed: a woken task is polled again for
        // every wake, and a wake per word would cost more than the feeding itself.
        if ints & SM0_TXNFULL != 0 {
            let before = TX.len();
            while pio.fstat().read().txfull() & (1 << TX_SM) == 0 {
                match TX.pop() {
                    Some(w) => pio.txf(TX_SM).write_value(w),
                    None => break,
                }
            }
            let after = TX.len();
            if after == 0 {
                // Level-triggered: with nothing left to give, stop asking.
                stop_tx();
            }
            if (before > TX_WORDS / 2 && after <= TX_WORDS / 2) || (before > 0 && after == 0) {
                TX_SPACE.wake();
            }
        }
        if ints & SM1_RXNEMPTY != 0 {
            let at_us = Instant::now().as_micros();
            let before = RX.len();
            while pio.fstat().read().rxempty() & (1 << RX_SM) == 0 {
                let word = pio.rxf(RX_SM).read();
                if !RX.push(RxWord { word, at_us }) {
                    RX_LOST.fetch_add(1, Ordering::Relaxed);
                }
            }
            let after = RX.len();
            if before == 0 || (before < RX_BATCH && after >= RX_BATCH) {
                RX_READY.wake();
            }
        }
    }
}
