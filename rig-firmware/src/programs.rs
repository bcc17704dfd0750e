//! The PIO programs: the raw slot-stream transmitter for the data line and the UART receiver
//! for the capture input.
//!
//! The transmitter knows nothing about characters. The CPU builds every slot (start, data,
//! parity, stop, glitches, breaks) and the state machine shifts one slot out every three PIO
//! cycles, counting slots down in Y so the CPU can tell exactly how far a telegram got when it
//! is cut off. The gated variant checks the Request pin before every slot and holds the line
//! idle while it is low: the output stops within one slot of Request dropping, whatever the
//! CPU is doing.

use embassy_rp::peripherals::PIO0;
use embassy_rp::pio::program::{
    Assembler, InSource, JmpCondition, MovDestination, MovOperation, MovSource, OutDestination, Program,
    SetDestination, WaitSource,
};
use embassy_rp::pio::{Common, LoadedProgram};

/// PIO cycles per slot in both transmitter variants; the clock divider accounts for it.
pub const TX_CYCLES_PER_SLOT: u32 = 3;

/// PIO cycles per bit in the receiver.
pub const RX_CYCLES_PER_BIT: u32 = 32;

/// How the transmitter drives its pin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TxShape {
    /// Toggle the pin direction (open drain) instead of its level.
    pub open_drain: bool,
    /// The value written to pins/pindirs for an idle (mark) slot.
    pub idle: bool,
    /// Check the Request pin (JMP_PIN) before every slot.
    pub gated: bool,
}

/// Assembles the transmitter for a shape. Gated (honour Request):
///
/// ```text
/// top:  jmp pin send        ; Request high?
///       set DEST, IDLE      ; no: hold the line idle
///       jmp top
/// send: out DEST, 1         ; one slot
///       jmp y-- top         ; count it (wrap)
/// ```
///
/// Ungated: `top: out DEST, 1 [1]` then `jmp y-- top`. Both take three PIO cycles per slot.
///
/// `jmp y--` falls through to the wrap when Y is zero, so both outcomes reach `top`; Y only
/// counts. Autopull (threshold 32, shifting right) feeds `out`; an empty FIFO stalls the `out`
/// with the last slot (always idle at a telegram's end) still on the pin.
pub fn tx_program(shape: TxShape) -> Program<32> {
    let dest = if shape.open_drain { OutDestination::PINDIRS } else { OutDestination::PINS };
    let set_dest = if shape.open_drain { SetDestination::PINDIRS } else { SetDestination::PINS };
    let mut a = Assembler::<32>::new();
    let mut top = a.label();
    a.bind(&mut top);
    if shape.gated {
        let mut send = a.label();
        a.jmp(JmpCondition::PinHigh, &mut send);
        a.set(set_dest, u8::from(shape.idle));
        a.jmp(JmpCondition::Always, &mut top);
        a.bind(&mut send);
        a.out(dest, 1);
    } else {
        a.out_with_delay(dest, 1, 1);
    }
    a.jmp(JmpCondition::YDecNonZero, &mut top);
    // Wraps from the last instruction to the first (`top`).
    a.assemble_program()
}

/// `set DEST, value` for the transmitter's pin, for forcing the line idle from the CPU.
pub fn set_instr(open_drain: bool, value: bool) -> u16 {
    let dest: u16 = if open_drain { 0b100 } else { 0b000 };
    0b111_00000_000_00000 | dest << 5 | u16::from(value)
}

/// `mov y, ~null`: Y = 0xFFFF_FFFF, the slot counter's start.
pub const MOV_Y_NOT_NULL: u16 = encode_mov(MovDestination::Y, MovOperation::Invert, MovSource::NULL);
/// `mov isr, y`: the slot counter into the ISR, to be pushed to the CPU.
pub const MOV_ISR_Y: u16 = encode_mov(MovDestination::ISR, MovOperation::None, MovSource::Y);
/// `push noblock`.
pub const PUSH_NOBLOCK: u16 = 0b100_00000_000_00000;

const fn encode_mov(dest: MovDestination, op: MovOperation, src: MovSource) -> u16 {
    0b101_00000_000_00000 | (dest as u16) << 5 | (op as u16) << 3 | src as u16
}

/// `set y, n` (n < 32).
pub const fn set_y_instr(n: u8) -> u16 {
    0b111_00000_010_00000 | (n & 0x1F) as u16
}

/// `jmp addr`.
pub const fn jmp_instr(addr: u8) -> u16 {
    (addr & 0x1F) as u16
}

/// The capture receiver, loaded once; its bit count and polarity are set per configuration.
pub struct CaptureProgram {
    pub loaded: LoadedProgram<'static, PIO0>,
}

impl CaptureProgram {
    /// ```text
    /// idle: wait 0 pin 0        ; falling edge: a start bit begins (Y: bits to vote after the
    ///                           ; start bit, minus one, set by the CPU with `set y, n`)
    ///       mov x, y [14]
    ///       jmp pin idle        ; mid start bit (cycle 16 of 32): high again is a glitch, resync
    ///       nop [4]
    /// bit:  nop [21]
    ///       in pins, 1 [3]      ; three samples at 12/32, 16/32 and 20/32 of every bit after the
    ///       in pins, 1 [3]      ; start bit, 1/8 bit apart as an 8x UART takes them; the CPU
    ///       in pins, 1          ; votes (p1sim_core::rig::vote_char); autopush hands the frame
    ///       jmp x-- bit         ; over (wrap source)
    /// ```
    /// At 32 PIO cycles per bit the start edge is seen within 1/32 bit. Data, parity and the
    /// first stop bit are sampled (a UART checks only the first), 30 samples at most, one word.
    /// With the samples 1/8 bit apart, a glitch of 1/16 bit changes one of them at most and is
    /// outvoted. After the stop bit's last sample the program is back at `wait` in two cycles
    /// (autopush needs no `push`), 0.69 bit into the stop bit: a transmitter up to 3.2 % fast,
    /// sending back to back, still has its next start edge found on time. The wire model's
    /// receiver with `Vote::Spread` samples the same points. A framing error does not stop the
    /// receiver: it waits for the next high-to-low edge, which is how UARTs resynchronise after a
    /// break.
    pub fn load(common: &mut Common<'static, PIO0>) -> CaptureProgram {
        let mut a = Assembler::<32>::new();
        let mut idle = a.label();
        let mut bit = a.label();
        let mut wrap_source = a.label();
        a.bind(&mut idle);
        a.wait(0, WaitSource::PIN, 0, false);
        a.mov_with_delay(MovDestination::X, MovOperation::None, MovSource::Y, 14);
        a.jmp(JmpCondition::PinHigh, &mut idle);
        a.nop_with_delay(4);
        a.bind(&mut bit);
        a.nop_with_delay(21);
        a.in_with_delay(InSource::PINS, 1, 3);
        a.in_with_delay(InSource::PINS, 1, 3);
        a.r#in(InSource::PINS, 1);
        a.jmp(JmpCondition::XDecNonZero, &mut bit);
        // The wrap source label sits after the instruction the wrap leaves from.
        a.bind(&mut wrap_source);
        let wrap_target = a.label_at_offset(0);
        let program = a.assemble_with_wrap(wrap_source, wrap_target);
        CaptureProgram { loaded: common.load_program(&program) }
    }
}

/// The edge timers (the `sensors` feature): two programs on PIO0 SM2 and SM3 at the full system
/// clock, each started by a word from the CPU. The rise timer releases the data line and counts
/// until the sense input (its `jmp pin`, GP6) reads high; the fall timer pulls the line low and
/// counts until it reads low. Each pushes X, counted down from all ones once per two-cycle loop
/// iteration, so the iterations are `!X`; a line that never crosses leaves the FIFO empty.
///
/// ```text
/// rise: pull block          fall: pull block
///       mov x, ~null              mov x, ~null
///       set pindirs, 0            set pindirs, 1
/// loop: jmp pin done        loop: jmp pin high
///       jmp x-- loop              jmp done
/// done: mov isr, x          high: jmp x-- loop
///       push noblock        done: mov isr, x
///                                 push noblock
/// ```
#[cfg(feature = "sensors")]
pub fn edge_timer(rise: bool) -> Program<32> {
    let mut a = Assembler::<32>::new();
    let mut top = a.label();
    let mut looping = a.label();
    let mut done = a.label();
    a.bind(&mut top);
    a.pull(false, true);
    a.mov(MovDestination::X, MovOperation::Invert, MovSource::NULL);
    a.set(SetDestination::PINDIRS, u8::from(!rise));
    a.bind(&mut looping);
    if rise {
        a.jmp(JmpCondition::PinHigh, &mut done);
        a.jmp(JmpCondition::XDecNonZero, &mut looping);
    } else {
        let mut high = a.label();
        a.jmp(JmpCondition::PinHigh, &mut high);
        a.jmp(JmpCondition::Always, &mut done);
        a.bind(&mut high);
        a.jmp(JmpCondition::XDecNonZero, &mut looping);
    }
    a.bind(&mut done);
    a.mov(MovDestination::ISR, MovOperation::None, MovSource::X);
    a.push(false, false);
    // Wraps back to `pull block`.
    let _ = top;
    a.assemble_program()
}
