//! The host-rig protocol: the messages the `p1sim` host and the RP2040 rig firmware exchange
//! over USB CDC-ACM, defined once here so both sides compile the same types.
//!
//! Every message travels as one frame (see [`frame`]): a version byte, the message in postcard,
//! a CRC-32C, all COBS-encoded and ended by a zero byte. The code is `no_std` and allocation-free
//! so the firmware uses it as is; variable-length parts are either borrowed from the frame
//! buffer (telegram bytes, strings) or bounded `heapless` vectors (fault plans, captured bytes).
//!
//! Conversation: the host sends [`HostMsg`]s; the rig answers configuration messages with
//! [`DeviceMsg::Status`], and reports what happens on the line as events: Request edges,
//! captured bytes, send completions and aborts, buffer overruns and errors. A frame that cannot
//! be read never stops the rig: it answers with [`DeviceMsg::Error`] and goes on with the next.
//!
//! Versions: version 2 added [`HostMsg::Measure`] and [`DeviceMsg::Measured`] (the electrical
//! measurements of a rig with sensors) after the variants of version 1, which encode as they
//! did. So both sides read frames of any version from [`MIN_PROTOCOL_VERSION`] up: a host says
//! Hello in version 1, learns the rig's version from the answer, and frames everything after in
//! the lower of the two; a rig answers in the version the host framed its last message in.

pub mod frame;
pub mod pins;
pub mod sense;

use heapless::Vec;
use serde::{Deserialize, Serialize};

use crate::spec::{Framing, Parity};

/// Bumped on any change to the messages; the first byte of every frame.
pub const PROTOCOL_VERSION: u8 = 2;

/// The oldest version whose frames this side still reads: a later version only appends
/// messages, so every message of an older version encodes the same.
pub const MIN_PROTOCOL_VERSION: u8 = 1;

/// The first version with measurements ([`HostMsg::Measure`]).
pub const MEASURE_VERSION: u8 = 2;

/// Most telegram bytes one [`SendChunk`] carries. Telegrams are under 4 kB (about 3.3 kB at most),
/// so a whole telegram is a handful of chunks; the host client splits and the rig reassembles
/// nothing (it streams each chunk onto the line as it comes).
pub const MAX_CHUNK: usize = 512;

/// Most faults in one plan.
pub const MAX_FAULTS: usize = 16;

/// Most captured characters in one [`DeviceMsg::Captured`].
pub const MAX_CAPTURED: usize = 32;

/// Largest message body (version byte + postcard + CRC) either side accepts.
pub const MAX_BODY: usize = 1024;

/// Largest encoded frame, delimiter included: COBS adds one byte per 254 and the zero ends it.
pub const MAX_FRAME: usize = MAX_BODY + MAX_BODY / 254 + 2;

/// Capability bits in [`Hello::capabilities`].
pub mod caps {
    /// Telegrams from the host, with bit-fault plans.
    pub const SEND: u32 = 1 << 0;
    /// Capture of the board's output through a PIO UART receiver.
    pub const CAPTURE: u32 = 1 << 1;
    /// Request line sensing, honoured or ignored on request.
    pub const REQUEST: u32 = 1 << 2;
    /// Open-drain drive (pin direction toggled) besides push-pull.
    pub const OPEN_DRAIN: u32 = 1 << 3;
    /// Telegrams generated on the rig from a compiled-in profile (the pocket meter).
    pub const STANDALONE: u32 = 1 << 4;
    /// The data line's sense input: its released level with and without a known load, and the
    /// times of its edges.
    pub const SENSE_LINE: u32 = 1 << 5;
    /// The Request line's voltage.
    pub const SENSE_REQUEST: u32 = 1 << 6;
    /// The board's supply current (and voltage), from a current monitor on +5 V.
    pub const SENSE_SUPPLY: u32 = 1 << 7;
    /// The board's TTL output level at the capture input.
    pub const SENSE_OUTPUT: u32 = 1 << 8;
    /// Every sensor bit.
    pub const SENSORS: u32 = SENSE_LINE | SENSE_REQUEST | SENSE_SUPPLY | SENSE_OUTPUT;
}

/// Electrical sense of the line at the pin: the wire model's own (`Normal`: mark high, a TTL
/// UART; `Inverted`: mark low, the P1 data line as the meter drives it, docs/wiring.md#data-pin-5).
pub use crate::wire::Polarity;

/// How the data pin drives its level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Drive {
    PushPull,
    /// Low is driven, high is released (pin direction toggled): the meter's open collector.
    OpenDrain,
}

/// Whether the rig obeys the Request line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RequestMode {
    /// Send only while Request is high, stop mid-telegram when it drops, start the next
    /// telegram after it rises (DSMR 5.0.2 §5.7.1).
    Honour,
    /// Send regardless of the Request line (boards that never raise it).
    Ignore,
}

/// The data output: rate, framing, electrical form and the PIO oversampling factor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct LineConfig {
    pub baud: u32,
    pub framing: Framing,
    pub polarity: Polarity,
    pub drive: Drive,
    /// Slots per bit: glitches and skew are placed at 1/oversampling of a bit.
    pub oversampling: u8,
}

impl LineConfig {
    /// The P1 port of a DSMR 4/5, e-MUCS, Swedish or Smarty meter: 115200 8N1, inverted,
    /// open collector, 8 slots per bit.
    pub const P1: LineConfig = LineConfig {
        baud: 115_200,
        framing: Framing::EIGHT_N1,
        polarity: Polarity::Inverted,
        drive: Drive::OpenDrain,
        oversampling: 8,
    };

    /// Checks what any rig must refuse; the firmware adds its own clock limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_line(self.baud, self.framing)?;
        if !(MIN_OVERSAMPLING..=MAX_OVERSAMPLING).contains(&self.oversampling) {
            return Err(ConfigError::Oversampling);
        }
        Ok(())
    }
}

/// Slowest and fastest rates the protocol admits.
pub const MIN_BAUD: u32 = 300;
pub const MAX_BAUD: u32 = 1_000_000;
pub const MIN_OVERSAMPLING: u8 = 1;
pub const MAX_OVERSAMPLING: u8 = 16;

fn check_line(baud: u32, framing: Framing) -> Result<(), ConfigError> {
    if !(MIN_BAUD..=MAX_BAUD).contains(&baud) {
        return Err(ConfigError::Baud);
    }
    if !(5..=8).contains(&framing.data_bits) || !(1..=2).contains(&framing.stop_bits) {
        return Err(ConfigError::Framing);
    }
    Ok(())
}

/// The capture input: a UART receiver for the board's TTL output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CaptureConfig {
    pub enabled: bool,
    pub baud: u32,
    pub framing: Framing,
    pub polarity: Polarity,
}

impl CaptureConfig {
    /// What a board turns P1 into: TTL 115200 8N1, idle high.
    pub const TTL: CaptureConfig =
        CaptureConfig { enabled: true, baud: 115_200, framing: Framing::EIGHT_N1, polarity: Polarity::Normal };

    pub fn validate(&self) -> Result<(), ConfigError> {
        check_line(self.baud, self.framing)
    }
}

/// Why a configuration was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConfigError {
    /// Outside [`MIN_BAUD`]..=[`MAX_BAUD`], or beyond what the rig's clock divider can make.
    Baud,
    /// Data bits outside 5..=8 or stop bits outside 1..=2.
    Framing,
    /// Outside [`MIN_OVERSAMPLING`]..=[`MAX_OVERSAMPLING`], or too fast for the PIO clock.
    Oversampling,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            ConfigError::Baud => "baud rate out of range (300..=1000000 and what the rig's PIO clock can divide)",
            ConfigError::Framing => "framing out of range (5-8 data bits, N/E/O parity, 1-2 stop bits)",
            ConfigError::Oversampling => "oversampling out of range (1..=16 slots per bit, within the PIO clock)",
        })
    }
}

/// One planned deviation from a clean character stream, as the wire model's `BitFault` has it
/// (`wire::fault`), in a form postcard can carry. Characters count from the first byte of the
/// telegram; bits count within one character frame: 0 is the start bit, then the data bits LSB
/// first, then parity (if any), then the stop bit(s). Offsets and lengths are in 1/256 bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Fault {
    /// Inverts bit `bit` of character `char` (start, data, parity or stop).
    Flip { char: u32, bit: u8 },
    /// Forces the line to mark (`mark`) or space for `width`, `at` after `char`'s start edge.
    Glitch { char: u32, at: u32, width: u32, mark: bool },
    /// Extra idle of `length` after character `after`.
    Idle { after: u32, length: u32 },
    /// Space (a break) for `length` after character `after`, then one bit of mark.
    Break { after: u32, length: u32 },
}

impl Fault {
    /// The character the fault belongs to; plans list faults in this order.
    pub const fn char(&self) -> u32 {
        match *self {
            Fault::Flip { char, .. } | Fault::Glitch { char, .. } => char,
            Fault::Idle { after, .. } | Fault::Break { after, .. } => after,
        }
    }
}

impl From<Fault> for crate::wire::BitFault {
    fn from(f: Fault) -> Self {
        use crate::wire::{BitFault, BitSpan, Symbol};
        match f {
            Fault::Flip { char, bit } => BitFault::Flip { char, bit },
            Fault::Glitch { char, at, width, mark } => BitFault::Glitch {
                char,
                at: BitSpan(at),
                width: BitSpan(width),
                level: if mark { Symbol::Mark } else { Symbol::Space },
            },
            Fault::Idle { after, length } => BitFault::Idle { after, length: BitSpan(length) },
            Fault::Break { after, length } => BitFault::Break { after, length: BitSpan(length) },
        }
    }
}

impl From<crate::wire::BitFault> for Fault {
    fn from(f: crate::wire::BitFault) -> Self {
        use crate::wire::{BitFault, Symbol};
        match f {
            BitFault::Flip { char, bit } => Fault::Flip { char, bit },
            BitFault::Glitch { char, at, width, level } => {
                Fault::Glitch { char, at: at.0, width: width.0, mark: level == Symbol::Mark }
            }
            BitFault::Idle { after, length } => Fault::Idle { after, length: length.0 },
            BitFault::Break { after, length } => Fault::Break { after, length: length.0 },
        }
    }
}

/// Everything that should go wrong with one telegram.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct FaultPlan {
    /// Transmitter clock error in parts per million (+ = faster than nominal, shorter bits).
    pub skew_ppm: i32,
    /// Extra idle after every character, in 1/256 bit.
    pub gap: u32,
    /// In character order.
    pub faults: Vec<Fault, MAX_FAULTS>,
}

impl FaultPlan {
    pub fn is_clean(&self) -> bool {
        self.skew_ppm == 0 && self.gap == 0 && self.faults.is_empty()
    }
}

/// Part of a telegram to put on the line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendChunk<'a> {
    /// Chosen by the host; events about this telegram carry it.
    pub id: u16,
    /// Where `data` starts in the telegram; 0 opens a new telegram.
    pub offset: u32,
    /// Whether this chunk ends the telegram.
    pub last: bool,
    /// The plan for the whole telegram; only read from the chunk at offset 0.
    pub plan: FaultPlan,
    #[serde(borrow)]
    pub data: &'a [u8],
}

/// What [`HostMsg::Measure`] asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MeasureRequest {
    /// How long to sample the supply current for its average and peak, in milliseconds.
    pub supply_window_ms: u16,
}

impl MeasureRequest {
    /// The longest supply window a rig samples.
    pub const MAX_WINDOW_MS: u16 = 5_000;
}

/// A quantity a rig with sensors measures.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Quantity {
    /// The data line released by the rig, with only its sense input on it (mV).
    LineOpen,
    /// The data line released, with the rig's known load switched in as well (mV).
    LineLoaded,
    /// From the rig releasing the data line to it crossing the sense threshold (ns).
    Rise,
    /// From the rig pulling the data line low to it falling below the sense threshold (ns).
    Fall,
    /// The Request line (mV).
    Request,
    /// The board's TTL output while the line idles (its high level, mV).
    OutputHigh,
    /// The board's supply current from +5 V, averaged over the window (µA).
    SupplyAverage,
    /// The highest supply current sampled in the window (µA).
    SupplyPeak,
    /// The +5 V supply at the board (mV).
    SupplyVoltage,
}

impl Quantity {
    /// The capability bit of the sensor that measures it.
    pub const fn sensor(self) -> u32 {
        match self {
            Quantity::LineOpen | Quantity::LineLoaded | Quantity::Rise | Quantity::Fall => caps::SENSE_LINE,
            Quantity::Request => caps::SENSE_REQUEST,
            Quantity::OutputHigh => caps::SENSE_OUTPUT,
            Quantity::SupplyAverage | Quantity::SupplyPeak | Quantity::SupplyVoltage => caps::SENSE_SUPPLY,
        }
    }

    /// Its name in reports: `line-open`, `supply-peak`, ...
    pub const fn name(self) -> &'static str {
        match self {
            Quantity::LineOpen => "line-open",
            Quantity::LineLoaded => "line-loaded",
            Quantity::Rise => "rise",
            Quantity::Fall => "fall",
            Quantity::Request => "request",
            Quantity::OutputHigh => "output-high",
            Quantity::SupplyAverage => "supply-average",
            Quantity::SupplyPeak => "supply-peak",
            Quantity::SupplyVoltage => "supply-voltage",
        }
    }

    /// What it is, in words.
    pub const fn describe(self) -> &'static str {
        match self {
            Quantity::LineOpen => "data line released",
            Quantity::LineLoaded => "with the known load",
            Quantity::Rise => "rise to the threshold",
            Quantity::Fall => "fall below the threshold",
            Quantity::Request => "Request",
            Quantity::OutputHigh => "board output, high",
            Quantity::SupplyAverage => "supply current, average",
            Quantity::SupplyPeak => "supply current, peak",
            Quantity::SupplyVoltage => "supply voltage",
        }
    }

    /// The unit of its readings.
    pub const fn unit(self) -> &'static str {
        match self {
            Quantity::LineOpen
            | Quantity::LineLoaded
            | Quantity::Request
            | Quantity::OutputHigh
            | Quantity::SupplyVoltage => "mV",
            Quantity::Rise | Quantity::Fall => "ns",
            Quantity::SupplyAverage | Quantity::SupplyPeak => "µA",
        }
    }
}

/// One measured quantity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Reading {
    pub quantity: Quantity,
    /// In the quantity's unit; `None` when it could not be measured (an edge that never
    /// crossed the threshold within the rig's wait).
    pub value: Option<i32>,
    /// The smallest difference the sensor tells apart, in the same unit.
    pub resolution: u32,
}

/// The rig's data-line sense circuit as built: what turns two levels into a pull-up resistance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Circuit {
    /// The sense input's own load on the line (its divider), in ohms.
    pub sense_input_ohms: u32,
    /// The known load the rig switches in, in ohms.
    pub known_load_ohms: u32,
    /// The line voltage at which the sense input's GPIO reads high, in millivolts.
    pub threshold_mv: u16,
}

/// Most readings in one [`Measured`].
pub const MAX_READINGS: usize = 12;

/// The answer to [`HostMsg::Measure`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Measured {
    pub circuit: Circuit,
    /// The quantities the rig's sensors measured; a quantity without a sensor is absent.
    pub readings: Vec<Reading, MAX_READINGS>,
}

impl Measured {
    /// The reading of a quantity, if the rig measured it.
    pub fn get(&self, q: Quantity) -> Option<Reading> {
        self.readings.iter().find(|r| r.quantity == q).copied()
    }
}

/// Host to rig.
// No allocator on the rig: messages travel by value through fixed-size queues, so the big
// variants stay inline rather than boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostMsg<'a> {
    /// Asks for [`DeviceMsg::Hello`].
    Hello,
    ConfigureLine(LineConfig),
    SetRequestMode(RequestMode),
    ConfigureCapture(CaptureConfig),
    #[serde(borrow)]
    Send(SendChunk<'a>),
    /// Drops the telegram on the line and everything queued, returning the line to idle.
    Cancel,
    /// Measures what the rig's sensors can, with the line idle (version 2); the answer is
    /// [`DeviceMsg::Measured`]. A telegram on the line is cancelled first.
    Measure(MeasureRequest),
}

/// Which GPIO does what, as the firmware was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PinMap {
    pub data: u8,
    pub request: u8,
    pub capture: u8,
    pub led: u8,
}

/// Whether the rig takes its telegrams from the host or makes them itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Mode {
    HostDriven,
    Standalone,
}

/// The rig's identity and current settings; the answer to [`HostMsg::Hello`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello<'a> {
    pub protocol: u8,
    pub firmware: &'a str,
    pub mode: Mode,
    /// The compiled-in profile's name (standalone builds), empty otherwise.
    pub profile: &'a str,
    pub pins: PinMap,
    /// [`caps`] bits.
    pub capabilities: u32,
    pub max_chunk: u16,
    pub status: Status,
}

/// The settings in force; sent after every configuration change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Status {
    pub line: LineConfig,
    pub capture: CaptureConfig,
    pub request_mode: RequestMode,
    pub request_high: bool,
}

/// Receiver flags of a captured character.
pub mod flags {
    /// A stop bit was space.
    pub const FRAMING: u8 = 1 << 0;
    pub const PARITY: u8 = 1 << 1;
    /// Start, data, parity and stop all space: the line was held low for a character or longer.
    pub const BREAK: u8 = 1 << 2;
}

/// One character the capture input received.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Captured {
    pub byte: u8,
    /// [`flags`] bits.
    pub flags: u8,
    /// Microseconds since the rig booted, when the rig took the character from its receiver
    /// (within a few tens of microseconds of the stop bit's middle).
    pub at_us: u64,
}

/// Why a telegram left the line unfinished.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AbortReason {
    RequestDropped,
    Cancelled,
}

/// A buffer that overflowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Buffer {
    /// The capture receiver's FIFO stalled: characters were lost on the line.
    CaptureFifo,
    /// Captured characters arrived faster than USB took them.
    CaptureQueue,
    /// The data output ran dry mid-telegram (the host did not keep up): a gap on the line.
    TxUnderrun,
    /// Events arrived faster than USB took them.
    Events,
}

/// Why the rig refused a frame or a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ErrorCode {
    /// Not valid COBS.
    Cobs,
    /// Longer than [`MAX_FRAME`].
    Oversize,
    /// CRC mismatch.
    Crc,
    /// Another protocol version; `arg` is the version byte received.
    Version,
    /// The body is not a message of this version.
    Message,
    /// A configuration was refused; `arg` is the [`ConfigError`] as a number.
    Config,
    /// A chunk did not continue the telegram being received; `arg` is the offset expected.
    Sequence,
    /// The message is not available in this build (e.g. sending in a standalone build).
    Unsupported,
    /// A fault plan the wire model refuses (out of order, a flip past the frame, a glitch
    /// under one slot, too much skew); `arg` is the fault's index, or 0xFFFF for the plan.
    FaultPlan,
    /// A sensor did not answer (`arg`: the [`Quantity`] as a number).
    Sensor,
}

/// Rig to host.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeviceMsg<'a> {
    #[serde(borrow)]
    Hello(Hello<'a>),
    Status(Status),
    RequestEdge {
        high: bool,
        at_us: u64,
    },
    Captured(Vec<Captured, MAX_CAPTURED>),
    /// Every byte of telegram `id` went out; `bytes` counts them.
    SendComplete {
        id: u16,
        bytes: u32,
    },
    /// Telegram `id` stopped early; `bytes` complete characters had gone out.
    SendAborted {
        id: u16,
        bytes: u32,
        reason: AbortReason,
    },
    Overrun {
        buffer: Buffer,
        lost: u32,
    },
    Error {
        code: ErrorCode,
        arg: u32,
    },
    /// The answer to [`HostMsg::Measure`] (version 2).
    Measured(Measured),
}

impl ConfigError {
    pub const fn code(self) -> u32 {
        self as u32
    }

    pub const fn from_code(code: u32) -> Option<ConfigError> {
        match code {
            0 => Some(ConfigError::Baud),
            1 => Some(ConfigError::Framing),
            2 => Some(ConfigError::Oversampling),
            _ => None,
        }
    }
}

impl ErrorCode {
    /// What went wrong, in words a user can act on.
    pub const fn describe(self) -> &'static str {
        match self {
            ErrorCode::Cobs => "a frame was not valid COBS (bytes lost or corrupted on USB)",
            ErrorCode::Oversize => "a frame was longer than the rig accepts",
            ErrorCode::Crc => "a frame failed its CRC (corrupted on USB)",
            ErrorCode::Version => {
                "the host speaks another protocol version: flash the firmware that matches this p1sim (cargo xtask firmware)"
            }
            ErrorCode::Message => "a frame held no message of this protocol version",
            ErrorCode::Config => "a configuration was refused",
            ErrorCode::Sequence => "a telegram chunk did not continue the telegram being sent",
            ErrorCode::Unsupported => "this firmware build does not support the request",
            ErrorCode::FaultPlan => {
                "the fault plan was refused (check it with the wire model: order, bit indices, glitch widths, skew)"
            }
            ErrorCode::Sensor => "a sensor of the rig did not answer (check the current monitor's I2C wiring)",
        }
    }
}

/// Parity bit of `data` (its low `bits` bits) for a framing; `None` when it has no parity.
pub fn parity_bit(framing: Framing, data: u8) -> Option<bool> {
    let mask = if framing.data_bits >= 8 { 0xFF } else { (1u8 << framing.data_bits) - 1 };
    let odd_ones = (data & mask).count_ones() % 2 == 1;
    match framing.parity {
        Parity::None => None,
        Parity::Even => Some(odd_ones),
        Parity::Odd => Some(!odd_ones),
    }
}

/// Decodes one character's samples (start bit excluded) as a UART receiver does: `samples`
/// holds `bits_after_start(framing)` bits, the first data bit in bit 0. Returns the data and
/// the [`flags`]. Used by the firmware's capture and by tests that decode pin levels.
pub fn decode_char(framing: Framing, samples: u32) -> (u8, u8) {
    let data_bits = u32::from(framing.data_bits.clamp(5, 8));
    let data = (samples & ((1 << data_bits) - 1)) as u8;
    let mut pos = data_bits;
    let mut f = 0;
    if let Some(expected) = parity_bit(framing, data) {
        if (samples >> pos) & 1 != u32::from(expected) {
            f |= flags::PARITY;
        }
        pos += 1;
    }
    for i in 0..u32::from(framing.stop_bits.clamp(1, 2)) {
        if (samples >> (pos + i)) & 1 == 0 {
            f |= flags::FRAMING;
        }
    }
    let total = bits_after_start(framing);
    if samples & ((1u32 << total) - 1) == 0 {
        f |= flags::BREAK;
    }
    (data, f)
}

/// Data, parity and stop bits: what a receiver samples after the start bit.
pub const fn bits_after_start(framing: Framing) -> u32 {
    framing.bits_per_char() - 1
}

/// The bits the rig's capture receiver samples after the start bit: data, parity and the first
/// stop bit (a UART checks only the first), three samples each.
pub const fn voted_bits(framing: Framing) -> u32 {
    framing.data_bits as u32 + if matches!(framing.parity, Parity::None) { 0 } else { 1 } + 1
}

/// Decodes a character the rig's capture receiver sampled three times a bit, at 6/16, 8/16 and
/// 10/16 of each bit (the wire model's [`crate::wire::receiver::Vote::Spread`]): `samples` holds
/// `3 * voted_bits(framing)` samples in time order from bit 0. Each bit is the majority of its
/// three; then as [`decode_char`].
pub fn vote_char(framing: Framing, samples: u32) -> (u8, u8) {
    let n = voted_bits(framing);
    let mut bits = 0u32;
    for i in 0..n {
        let three = (samples >> (3 * i)) & 0b111;
        if three.count_ones() >= 2 {
            bits |= 1 << i;
        }
    }
    decode_char(Framing { stop_bits: 1, ..framing }, bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parity_follows_the_framing() {
        assert_eq!(parity_bit(Framing::EIGHT_N1, 0x41), None);
        // 'A' = 0x41 has two ones in its 7 data bits: even parity bit 0.
        assert_eq!(parity_bit(Framing::SEVEN_E1, b'A'), Some(false));
        assert_eq!(parity_bit(Framing::SEVEN_E1, b'C'), Some(true));
        let odd = Framing { parity: Parity::Odd, ..Framing::SEVEN_E1 };
        assert_eq!(parity_bit(odd, b'A'), Some(true));
        // The eighth bit is not data in 7E1 and must not count.
        assert_eq!(parity_bit(Framing::SEVEN_E1, 0x80 | b'A'), Some(false));
    }

    #[test]
    fn a_clean_character_decodes_without_flags() {
        // 7E1 'C' (0x43, three ones): data, parity 1, stop 1.
        let samples = 0x43 | 1 << 7 | 1 << 8;
        assert_eq!(decode_char(Framing::SEVEN_E1, samples), (0x43, 0));
        assert_eq!(decode_char(Framing::EIGHT_N1, 0x1_00 | 0xA5), (0xA5, 0));
    }

    #[test]
    fn receiver_flags_name_what_is_wrong() {
        assert_eq!(decode_char(Framing::EIGHT_N1, 0xA5), (0xA5, flags::FRAMING));
        assert_eq!(decode_char(Framing::SEVEN_E1, 0x43 | 1 << 8), (0x43, flags::PARITY));
        assert_eq!(decode_char(Framing::EIGHT_N1, 0), (0, flags::FRAMING | flags::BREAK));
        let two_stop = Framing { stop_bits: 2, ..Framing::EIGHT_N1 };
        assert_eq!(decode_char(two_stop, 0x1_00 | 0x55), (0x55, flags::FRAMING));
    }

    #[test]
    fn three_samples_a_bit_outvote_a_glitch() {
        // 'A' in 8N1: 0x41 then the stop bit, each bit sampled three times.
        let triple =
            |bits: u32, n: u32| (0..n).fold(0u32, |w, i| w | (if bits >> i & 1 == 1 { 0b111 } else { 0 }) << (3 * i));
        let clean = triple(0x41 | 1 << 8, 9);
        assert_eq!(voted_bits(Framing::EIGHT_N1), 9);
        assert_eq!(vote_char(Framing::EIGHT_N1, clean), (0x41, 0));
        // One sample of bit 1 (data bit 1, a 0) hit by a glitch: still 0x41.
        assert_eq!(vote_char(Framing::EIGHT_N1, clean | 1 << 4), (0x41, 0));
        // Two of three: the bit flips.
        assert_eq!(vote_char(Framing::EIGHT_N1, clean | 0b011 << 3), (0x43, 0));
        // 7E1 'C' (three ones, parity 1), the stop bit voted down: a framing error.
        assert_eq!(voted_bits(Framing::SEVEN_E1), 9);
        let c = triple(0x43 | 1 << 7, 9) | 0b001 << 24;
        assert_eq!(vote_char(Framing::SEVEN_E1, c), (0x43, flags::FRAMING));
        // Every sample space: a break.
        assert_eq!(vote_char(Framing::EIGHT_N1, 0), (0, flags::FRAMING | flags::BREAK));
        // 8E2 samples 10 bits: only the first stop bit is checked.
        let two = Framing { parity: Parity::Even, stop_bits: 2, ..Framing::EIGHT_N1 };
        assert_eq!(voted_bits(two), 10);
    }

    #[test]
    fn validation_refuses_what_no_rig_can_do() {
        assert_eq!(LineConfig::P1.validate(), Ok(()));
        assert_eq!(LineConfig { baud: 10, ..LineConfig::P1 }.validate(), Err(ConfigError::Baud));
        assert_eq!(LineConfig { oversampling: 0, ..LineConfig::P1 }.validate(), Err(ConfigError::Oversampling));
        let nine = Framing { data_bits: 9, ..Framing::EIGHT_N1 };
        assert_eq!(LineConfig { framing: nine, ..LineConfig::P1 }.validate(), Err(ConfigError::Framing));
        assert_eq!(CaptureConfig::TTL.validate(), Ok(()));
        for e in [ConfigError::Baud, ConfigError::Framing, ConfigError::Oversampling] {
            assert_eq!(ConfigError::from_code(e.code()), Some(e));
        }
    }
}
