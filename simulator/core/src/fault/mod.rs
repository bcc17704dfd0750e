//! The byte-level fault catalogue: what real P1 links and real meters do to telegrams, on demand.
//!
//! A fault is applied between rendering and any output, in the shape of smoltcp's fault
//! injector: model faults edit the owned [`Telegram`] (drop a line, lowercase the units, set a
//! placeholder), the telegram is rendered, then byte faults edit the bytes (flip bits, truncate,
//! pad). Every fault is seeded and records what it did, and the combined record says what a
//! correct decoder must make of the result, so tests and the conformance runner know the expected
//! outcome without running a decoder.
//!
//! Faults that model a meter's own behaviour (lowercase units, a placeholder clock) recompute the
//! CRC, as the meter would; faults that model damage in transit (bit flips, dropped lines) keep
//! the CRC the meter sent. Each fault's `crc` parameter can override that.

pub mod catalogue;
#[cfg(feature = "std")]
pub mod scenario;

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::crc::{crc_hex, crc16};
use crate::noise::Draws;
use crate::telegram::{Checksum, Line, Telegram, Value};

/// Whether a fault leaves the CRC as the meter computed it or recomputes it after the change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CrcMode {
    /// The fault's usual choice: recompute for meter behaviour, keep for transit damage.
    #[default]
    Auto,
    /// The meter made the change: the CRC covers it.
    Recompute,
    /// The change happened after the meter: the CRC is the original one.
    Keep,
}

/// Where a truncation or insertion happens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum Position {
    /// A byte offset from the start of the telegram.
    At(usize),
    /// `"random"`: a seeded position inside the telegram.
    Random(RandomWord),
}

/// The literal word `random`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RandomWord {
    Random,
}

/// Placeholder values seen on real meters (docs/quirks.md#placeholder-timestamps,
/// docs/quirks.md#ghost-m-bus-channel).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Placeholder {
    /// `0-0:1.0.0(000101010000W)`: a new L+G meter whose clock was never set.
    ClockNotSet,
    /// `632525252525W` in M-Bus timestamps: Fluvius and Smarty "no value".
    NoData,
    /// An extra M-Bus channel 1 with no device, as Iskra AM550 sends: `0-1:96.1.0()`,
    /// `0-1:24.2.1(700101010000W)(00000000)`, with the real devices moved up one channel.
    GhostMbus,
}

/// One fault of the catalogue with its parameters.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Fault {
    /// The CRC digits are replaced by a wrong value.
    WrongCrc,
    /// The CRC is written in lowercase hex (some DIY simulators use `%04x`).
    LowercaseCrc,
    /// Leading zeros of the CRC are dropped (`!B9F`, NWA Warmtelink).
    UnpaddedCrc,
    /// Nothing after the `!`.
    MissingCrc,
    /// The telegram stops after `at` bytes (or at a random point, as when Request drops).
    Truncate { at: Position },
    /// Random bytes (never `/`) before the telegram.
    GarbageBefore {
        #[serde(default = "default_garbage")]
        bytes: usize,
    },
    /// Random bytes (never `/`) after the telegram, before the next one.
    GarbageAfter {
        #[serde(default = "default_garbage")]
        bytes: usize,
    },
    /// A `/` inside a data line.
    SlashInside {
        #[serde(default)]
        crc: CrcMode,
    },
    /// A NUL byte after the CRC (accepted by dsmr_parser since 2017).
    NulAfterCrc,
    /// 0xFF bytes after the telegram (EasyMeter via a COM-1 gateway).
    FfPadding {
        #[serde(default = "default_padding")]
        bytes: usize,
    },
    /// Data lines disappear.
    DropLine {
        /// 0-based index among data lines; a random line when absent.
        line: Option<usize>,
        #[serde(default)]
        crc: CrcMode,
    },
    /// A data line is sent twice.
    DuplicateLine {
        line: Option<usize>,
        #[serde(default)]
        crc: CrcMode,
    },
    /// Lines end in LF instead of CRLF.
    LfOnly {
        #[serde(default)]
        crc: CrcMode,
    },
    /// A long text message in `0-0:96.13.0` (2048 hex digits for 1024 characters).
    Oversize {
        #[serde(default = "default_text_chars")]
        chars: usize,
    },
    /// Bit flips at a bit-error rate, or at exact (byte, bit) positions.
    BitFlip {
        #[serde(default)]
        ber: f64,
        #[serde(default)]
        positions: Vec<(usize, u8)>,
    },
    /// A placeholder value as real meters send them.
    Placeholder { value: Placeholder },
    /// Units in lowercase (`kwh`, `kw`, `v`, `a`).
    LowercaseUnits,
    /// A space between the OBIS code and its first bracket.
    SpaceAfterObis,
}

/// The most bytes one fault may add to a telegram: half the decoder's 64 KiB telegram limit
/// ([`crate::decode::DEFAULT_MAX_LEN`]), so a telegram of a few KiB with its fault still fits.
pub const MAX_ADDED_BYTES: usize = crate::decode::DEFAULT_MAX_LEN / 2;
/// The longest `oversize` text message: its hex encoding takes two bytes a character.
pub const MAX_OVERSIZE_CHARS: usize = MAX_ADDED_BYTES / 2;
/// The most exact positions one `bit-flip` lists.
pub const MAX_FLIP_POSITIONS: usize = 4096;
/// The highest bit-error rate: at 0.5 every bit is a coin toss, random bytes.
pub const MAX_BER: f64 = 0.5;

fn default_garbage() -> usize {
    16
}
fn default_padding() -> usize {
    64
}
fn default_text_chars() -> usize {
    1024
}

/// What a correct decoder must do with a telegram after the faults.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expect {
    /// Accept it and report exactly the (faulted) model's objects.
    Accept,
    /// Accept it: it deviates from the spec the way real meters do, and robust decoders cope.
    AcceptLenient,
    /// The damage cannot be detected (no CRC on DSMR 2.2/3): either outcome is correct.
    Unspecified,
    /// Reject it (or never report it as valid).
    Reject,
}

/// What one fault did to one telegram.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Applied {
    pub kind: String,
    pub detail: String,
    pub expect: Expect,
}

/// A telegram after faults: the bytes to send, the model a decoder should report, and the record.
#[derive(Clone, Debug, PartialEq)]
pub struct Faulted {
    pub bytes: Vec<u8>,
    pub model: Telegram,
    pub applied: Vec<Applied>,
}

impl Faulted {
    /// The combined expectation: the strictest of the applied faults' (`Accept` when none).
    pub fn expect(&self) -> Expect {
        self.applied.iter().map(|a| a.expect).max().unwrap_or(Expect::Accept)
    }
}

impl Fault {
    /// The catalogue name (`wrong-crc`, `bit-flip`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Fault::WrongCrc => "wrong-crc",
            Fault::LowercaseCrc => "lowercase-crc",
            Fault::UnpaddedCrc => "unpadded-crc",
            Fault::MissingCrc => "missing-crc",
            Fault::Truncate { .. } => "truncate",
            Fault::GarbageBefore { .. } => "garbage-before",
            Fault::GarbageAfter { .. } => "garbage-after",
            Fault::SlashInside { .. } => "slash-inside",
            Fault::NulAfterCrc => "nul-after-crc",
            Fault::FfPadding { .. } => "ff-padding",
            Fault::DropLine { .. } => "drop-line",
            Fault::DuplicateLine { .. } => "duplicate-line",
            Fault::LfOnly { .. } => "lf-only",
            Fault::Oversize { .. } => "oversize",
            Fault::BitFlip { .. } => "bit-flip",
            Fault::Placeholder { .. } => "placeholder",
            Fault::LowercaseUnits => "lowercase-units",
            Fault::SpaceAfterObis => "space-after-obis",
        }
    }

    /// Checks the parameters against their limits; on failure, the key at fault and why.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        let bytes = |key: &'static str, n: usize| {
            if n > MAX_ADDED_BYTES {
                Err((
                    key,
                    format!(
                        "{n} bytes is over the limit of {MAX_ADDED_BYTES} a fault may add (half the 64 KiB a decoder buffers)"
                    ),
                ))
            } else {
                Ok(())
            }
        };
        match self {
            Fault::GarbageBefore { bytes: n } | Fault::GarbageAfter { bytes: n } | Fault::FfPadding { bytes: n } => {
                bytes("bytes", *n)
            }
            Fault::Oversize { chars } if *chars > MAX_OVERSIZE_CHARS => Err((
                "chars",
                format!(
                    "{chars} characters is over the limit of {MAX_OVERSIZE_CHARS} (sent as {} hex digits; a real meter takes 1024)",
                    2 * MAX_OVERSIZE_CHARS
                ),
            )),
            Fault::BitFlip { ber, positions } => {
                if !(ber.is_finite() && (0.0..=MAX_BER).contains(ber)) {
                    return Err(("ber", format!("a bit-error rate is a number from 0 to {MAX_BER}, not {ber}")));
                }
                if positions.len() > MAX_FLIP_POSITIONS {
                    return Err((
                        "positions",
                        format!("{} positions; a bit-flip lists at most {MAX_FLIP_POSITIONS}", positions.len()),
                    ));
                }
                match positions.iter().find(|(_, bit)| *bit > 7) {
                    Some((byte, bit)) => Err((
                        "positions",
                        format!("[{byte}, {bit}]: a byte has bits 0 to 7 (0 is the least significant)"),
                    )),
                    None => Ok(()),
                }
            }
            _ => Ok(()),
        }
    }

    /// The most bytes the fault adds to a telegram (what it costs on the line).
    pub fn added_bytes(&self) -> usize {
        match self {
            Fault::GarbageBefore { bytes } | Fault::GarbageAfter { bytes } | Fault::FfPadding { bytes } => *bytes,
            Fault::Oversize { chars } => 2 * chars + 16,
            Fault::DuplicateLine { .. } => 1024,
            Fault::NulAfterCrc | Fault::SlashInside { .. } | Fault::SpaceAfterObis => 1,
            Fault::Placeholder { value: Placeholder::GhostMbus } => 96,
            _ => 0,
        }
    }

    /// Whether the fault models damage after the meter, so the CRC stays the meter's.
    fn keeps_crc(&self) -> bool {
        match self {
            Fault::DropLine { crc, .. } | Fault::DuplicateLine { crc, .. } => crc_choice(*crc, false),
            Fault::SlashInside { crc } => crc_choice(*crc, true),
            Fault::LfOnly { crc } => crc_choice(*crc, true),
            _ => false,
        }
    }

    /// Damage that happens on the line, after the meter: on an encrypted profile it hits the
    /// frame, not the plaintext.
    pub fn on_wire(&self) -> bool {
        matches!(
            self,
            Fault::Truncate { .. }
                | Fault::GarbageBefore { .. }
                | Fault::GarbageAfter { .. }
                | Fault::BitFlip { .. }
                | Fault::FfPadding { .. }
        )
    }

    /// Model faults edit the telegram before it is rendered; the rest edit bytes after.
    fn is_model_fault(&self) -> bool {
        matches!(
            self,
            Fault::SlashInside { .. }
                | Fault::DropLine { .. }
                | Fault::DuplicateLine { .. }
                | Fault::Oversize { .. }
                | Fault::Placeholder { .. }
                | Fault::LowercaseUnits
                | Fault::SpaceAfterObis
        )
    }
}

/// Applies `faults` in order to one telegram. `seed` and `index` (the telegram's number) key
/// every random choice, so the same inputs give the same bytes.
///
/// Order of work: model faults the meter itself makes (the CRC covers them); then the CRC the
/// meter would send is fixed; then model faults that happen in transit (the CRC stays the
/// meter's); then rendering, LF-only line endings, and the byte faults in their listed order.
pub fn apply(telegram: &Telegram, faults: &[Fault], seed: u64, index: u64) -> Faulted {
    let legacy = telegram.checksum == Checksum::None;
    let mut model = telegram.clone();
    let mut applied = Vec::new();
    let draws = |i: usize| Draws::new(seed, 0xFA17_0000 + i as u64, index as i64);
    let model_faults: Vec<(usize, &Fault)> = faults.iter().enumerate().filter(|(_, f)| f.is_model_fault()).collect();
    for &(i, f) in model_faults.iter().filter(|(_, f)| !f.keeps_crc()) {
        applied.push(apply_model(f, &mut model, &mut draws(i), legacy));
    }
    let transit: Vec<_> = model_faults.iter().filter(|(_, f)| f.keeps_crc()).collect();
    if !transit.is_empty() && !legacy {
        let meter_crc = crc16(bang_span(&model.to_bytes()));
        model.checksum = Checksum::Text(String::from_utf8_lossy(&crc_hex(meter_crc)).into_owned());
    }
    for &&(i, f) in &transit {
        applied.push(apply_model(f, &mut model, &mut draws(i), legacy));
    }
    let mut bytes = model.to_bytes();
    for (i, f) in faults.iter().enumerate().filter(|(_, f)| matches!(f, Fault::LfOnly { .. })) {
        applied.push(apply_bytes(f, &mut bytes, &mut draws(i), legacy));
    }
    for (i, f) in faults.iter().enumerate().filter(|(_, f)| !f.is_model_fault() && !matches!(f, Fault::LfOnly { .. })) {
        applied.push(apply_bytes(f, &mut bytes, &mut draws(i), legacy));
    }
    Faulted { bytes, model, applied }
}

/// Applies byte faults (model faults are ignored) to bytes that are already rendered, such as an
/// encrypted frame. `legacy` says the bytes carry no CRC.
pub fn apply_to_bytes(bytes: &mut Vec<u8>, faults: &[Fault], seed: u64, index: u64, legacy: bool) -> Vec<Applied> {
    faults
        .iter()
        .enumerate()
        .filter(|(_, f)| !f.is_model_fault())
        .map(|(i, f)| apply_bytes(f, bytes, &mut Draws::new(seed, 0xFA17_8000 + i as u64, index as i64), legacy))
        .collect()
}

/// `/` through `!` of a rendered telegram.
fn bang_span(bytes: &[u8]) -> &[u8] {
    match bytes.iter().rposition(|&b| b == b'!') {
        Some(i) => &bytes[..=i],
        None => bytes,
    }
}

fn crc_choice(mode: CrcMode, meter_side: bool) -> bool {
    match mode {
        CrcMode::Auto => !meter_side,
        CrcMode::Recompute => false,
        CrcMode::Keep => true,
    }
}

fn accept_or_reject(keep: bool, legacy: bool, lenient: bool) -> Expect {
    match (keep, legacy) {
        (true, false) => Expect::Reject,
        (true, true) => Expect::Unspecified,
        (false, _) if lenient => Expect::AcceptLenient,
        (false, _) => Expect::Accept,
    }
}

fn apply_model(f: &Fault, t: &mut Telegram, d: &mut Draws, legacy: bool) -> Applied {
    let rec = |detail: String, expect: Expect| Applied { kind: f.name().to_string(), detail, expect };
    let pick = |d: &mut Draws, n: usize, want: Option<usize>| {
        want.map(|w| w.min(n.saturating_sub(1))).unwrap_or_else(|| d.int(0, n as i64) as usize)
    };
    match f {
        Fault::DropLine { line, .. } | Fault::DuplicateLine { line, .. } => {
            if t.lines.is_empty() {
                return rec("no data lines".into(), Expect::Accept);
            }
            let i = pick(d, t.lines.len(), *line);
            let keep = f.keeps_crc();
            let detail = if matches!(f, Fault::DropLine { .. }) {
                let l = t.lines.remove(i);
                format!("dropped line {i} ({})", l.obis)
            } else {
                let l = t.lines[i].clone();
                let d = format!("duplicated line {i} ({})", l.obis);
                t.lines.insert(i, l);
                d
            };
            rec(detail, accept_or_reject(keep, legacy, true))
        }
        Fault::SlashInside { .. } => {
            let candidates: Vec<usize> =
                (0..t.lines.len()).filter(|&i| t.lines[i].values.iter().any(|v| !v.text.is_empty())).collect();
            if candidates.is_empty() {
                return rec("no value to put a `/` in".into(), Expect::Accept);
            }
            let li = candidates[d.int(0, candidates.len() as i64) as usize];
            let line = &mut t.lines[li];
            let vi = line.values.iter().position(|v| !v.text.is_empty()).unwrap_or(0);
            let text = &mut line.values[vi].text;
            let at = d.int(0, text.len() as i64 + 1) as usize;
            text.insert(at, '/');
            let keep = f.keeps_crc();
            // Without a CRC nothing tells an inner `/` from the start of the next telegram.
            let expect = if legacy { Expect::Unspecified } else { accept_or_reject(keep, legacy, true) };
            rec(format!("`/` at offset {at} of {}", line.obis), expect)
        }
        Fault::Oversize { chars } => {
            let text: String = (0..*chars).map(|i| char::from(b'0' + (i % 10) as u8)).collect();
            let hex: String = text.bytes().map(|b| format!("{b:02X}")).collect();
            match t.lines.iter_mut().find(|l| l.obis == "0-0:96.13.0") {
                Some(l) => l.values = alloc::vec![Value::new(hex, None)],
                None => t.lines.push(Line {
                    obis: "0-0:96.13.0".into(),
                    values: alloc::vec![Value::new(hex, None)],
                    break_before: None,
                }),
            }
            rec(format!("text message of {chars} characters"), Expect::Accept)
        }
        Fault::Placeholder { value } => apply_placeholder(*value, t, f),
        Fault::LowercaseUnits => {
            let mut n = 0;
            for v in t.lines.iter_mut().flat_map(|l| l.values.iter_mut()) {
                if let Some(u) = v.unit.as_mut() {
                    let lower = u.to_lowercase();
                    if lower != *u {
                        *u = lower;
                        n += 1;
                    }
                }
            }
            rec(format!("{n} unit(s) lowercased"), if n > 0 { Expect::AcceptLenient } else { Expect::Accept })
        }
        Fault::SpaceAfterObis => {
            let i = d.int(0, t.lines.len().max(1) as i64) as usize;
            match t.lines.get_mut(i) {
                Some(l) => {
                    l.obis.push(' ');
                    rec(format!("space after {}", l.obis.trim_end()), Expect::AcceptLenient)
                }
                None => rec("no data lines".into(), Expect::Accept),
            }
        }
        _ => rec("not a model fault".into(), Expect::Accept),
    }
}

fn apply_placeholder(p: Placeholder, t: &mut Telegram, f: &Fault) -> Applied {
    let rec = |detail: &str| Applied { kind: f.name().to_string(), detail: detail.to_string(), expect: Expect::Accept };
    match p {
        Placeholder::ClockNotSet => {
            let mut n = 0;
            for l in &mut t.lines {
                if l.obis == "0-0:1.0.0" {
                    l.values[0].text = "000101010000W".into();
                    n += 1;
                }
                if l.obis.ends_with(":24.2.1") && l.values.len() == 2 {
                    l.values[0].text = "000101010000W".into();
                    n += 1;
                }
            }
            rec(if n > 0 { "clock not set: 000101010000W" } else { "no timestamp to replace" })
        }
        Placeholder::NoData => {
            let mut n = 0;
            for l in t.lines.iter_mut().filter(|l| l.obis.contains(":24.2.")) {
                if let Some(v) = l.values.first_mut() {
                    v.text = "632525252525W".into();
                    n += 1;
                }
            }
            rec(if n > 0 { "M-Bus timestamps 632525252525W" } else { "no M-Bus reading to replace" })
        }
        Placeholder::GhostMbus => {
            // Move every M-Bus channel up by one and put an empty device on channel 1.
            let mut max = 0u8;
            for l in &mut t.lines {
                if let Some(ch) = mbus_channel(&l.obis) {
                    max = max.max(ch + 1);
                    let bumped = format!("0-{}:{}", ch + 1, &l.obis[4..]);
                    l.obis = bumped;
                    for v in &mut l.values {
                        if let Some(ch) = mbus_channel(&v.text) {
                            v.text = format!("0-{}:{}", ch + 1, &v.text[4..]);
                        }
                    }
                }
            }
            let first = t.lines.iter().position(|l| mbus_channel(&l.obis).is_some()).unwrap_or(t.lines.len());
            if max > 5 {
                return rec("no room for another M-Bus channel");
            }
            let ghost = [
                Line { obis: "0-1:24.1.0".into(), values: alloc::vec![Value::new("003", None)], break_before: None },
                Line { obis: "0-1:96.1.0".into(), values: alloc::vec![Value::new("", None)], break_before: None },
                Line {
                    obis: "0-1:24.2.1".into(),
                    values: alloc::vec![Value::new("700101010000W", None), Value::new("00000000", None)],
                    break_before: None,
                },
            ];
            for (k, l) in ghost.into_iter().enumerate() {
                t.lines.insert(first + k, l);
            }
            rec("ghost M-Bus device on channel 1, real devices moved up one channel")
        }
    }
}

/// The channel of an `0-n:` M-Bus OBIS text, n in 1..=4.
fn mbus_channel(obis: &str) -> Option<u8> {
    let b = obis.as_bytes();
    (b.len() > 4 && b[0] == b'0' && b[1] == b'-' && (b'1'..=b'4').contains(&b[2]) && b[3] == b':').then(|| b[2] - b'0')
}

fn apply_bytes(f: &Fault, bytes: &mut Vec<u8>, d: &mut Draws, legacy: bool) -> Applied {
    let rec = |detail: String, expect: Expect| Applied { kind: f.name().to_string(), detail, expect };
    let bang = bytes.iter().rposition(|&b| b == b'!');
    let crc_range = bang.map(|b| {
        let end = bytes[b + 1..].iter().position(|c| !c.is_ascii_hexdigit()).map_or(bytes.len(), |e| b + 1 + e);
        b + 1..end
    });
    match f {
        Fault::WrongCrc => match crc_range {
            Some(r) if !r.is_empty() => {
                let current =
                    u16::from_str_radix(core::str::from_utf8(&bytes[r.clone()]).unwrap_or("0"), 16).unwrap_or(0);
                let wrong = current ^ (d.int(1, 0x1_0000) as u16).max(1);
                let text = crc_hex(wrong);
                bytes.splice(r, text);
                rec(format!("CRC {current:04X} replaced by {wrong:04X}"), Expect::Reject)
            }
            _ => rec("no CRC to corrupt".into(), if legacy { Expect::Accept } else { Expect::Reject }),
        },
        Fault::LowercaseCrc => match crc_range {
            Some(r) => {
                let changed = bytes[r.clone()].iter().any(|b| b.is_ascii_uppercase());
                bytes[r].make_ascii_lowercase();
                rec(
                    if changed { "CRC in lowercase hex".into() } else { "CRC has no letters".into() },
                    if changed { Expect::AcceptLenient } else { Expect::Accept },
                )
            }
            None => rec("no CRC".into(), Expect::Accept),
        },
        Fault::UnpaddedCrc => match crc_range {
            Some(r) => {
                let zeros = bytes[r.clone()].iter().take_while(|&&b| b == b'0').count().min(r.len().saturating_sub(1));
                bytes.drain(r.start..r.start + zeros);
                rec(
                    format!("{zeros} leading zero(s) dropped"),
                    if zeros > 0 { Expect::AcceptLenient } else { Expect::Accept },
                )
            }
            None => rec("no CRC".into(), Expect::Accept),
        },
        Fault::MissingCrc => match crc_range {
            Some(r) if !r.is_empty() => {
                bytes.drain(r);
                rec("CRC removed".into(), Expect::Reject)
            }
            _ => rec("no CRC to remove".into(), Expect::Accept),
        },
        Fault::Truncate { at } => {
            let n = match at {
                Position::At(n) => *n,
                Position::Random(_) => d.int(1, bytes.len().max(2) as i64 - 1) as usize,
            };
            if n >= bytes.len() {
                return rec(format!("truncation at {n} is past the end"), Expect::Accept);
            }
            // A cut after the `!` line only removes what follows the telegram (a gateway's
            // trailer); one between the CRC and its CR LF leaves the telegram whole but its last
            // line unended, which strict framers (dsmr_parser's) wait on.
            let crc_end = crc_range.as_ref().map(|r| r.end);
            let line_end = crc_end.map(|e| e + usize::from(bytes[e..].starts_with(b"\r\n")) * 2);
            bytes.truncate(n);
            if line_end.is_some_and(|e| n >= e) {
                return rec(format!("cut after {n} bytes, after the telegram's end"), Expect::Accept);
            }
            if crc_end.is_some_and(|e| n >= e) {
                return rec(
                    format!("cut after {n} bytes, before the CR LF ending its `!` line"),
                    Expect::AcceptLenient,
                );
            }
            if legacy && ends_whole_lines(bytes) {
                // Without CRC, a cut at a line end looks exactly like the telegram of a meter
                // that sends no `!` (some Iskra MT382): either reading is right.
                return rec(format!("cut after {n} bytes, at a line end"), Expect::Unspecified);
            }
            rec(format!("cut after {n} bytes"), Expect::Reject)
        }
        Fault::GarbageBefore { bytes: n } | Fault::GarbageAfter { bytes: n } => {
            let junk: Vec<u8> = (0..*n).map(|_| garbage_byte(d)).collect();
            let detail = format!(
                "{n} garbage byte(s) {}",
                if matches!(f, Fault::GarbageBefore { .. }) { "before" } else { "after" }
            );
            if matches!(f, Fault::GarbageBefore { .. }) {
                bytes.splice(0..0, junk);
            } else {
                bytes.extend_from_slice(&junk);
            }
            rec(detail, Expect::Accept)
        }
        Fault::NulAfterCrc => match crc_range {
            Some(r) => {
                bytes.insert(r.end, 0);
                rec("NUL after the CRC".into(), Expect::AcceptLenient)
            }
            None => rec("no `!`".into(), Expect::Accept),
        },
        Fault::FfPadding { bytes: n } => {
            bytes.extend(core::iter::repeat_n(0xFF, *n));
            rec(format!("{n} bytes of 0xFF padding"), Expect::Accept)
        }
        Fault::LfOnly { .. } => {
            let keep = f.keeps_crc();
            let old = crc_range.clone().map(|r| bytes[r].to_vec());
            let mut out = Vec::with_capacity(bytes.len());
            let mut i = 0;
            while i < bytes.len() {
                if bytes[i] == b'\r' && bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                    continue;
                }
                out.push(bytes[i]);
                i += 1;
            }
            if !keep && !legacy {
                // The meter computed its CRC over what it sent: the LF-only text.
                if let Some(b) = out.iter().rposition(|&c| c == b'!') {
                    let end = out[b + 1..].iter().position(|c| !c.is_ascii_hexdigit()).map_or(out.len(), |e| b + 1 + e);
                    let crc = crc_hex(crc16(&out[..=b]));
                    out.splice(b + 1..end, crc);
                }
            } else if let (Some(old), Some(b)) = (old, out.iter().rposition(|&c| c == b'!')) {
                let end = out[b + 1..].iter().position(|c| !c.is_ascii_hexdigit()).map_or(out.len(), |e| b + 1 + e);
                out.splice(b + 1..end, old);
            }
            *bytes = out;
            rec("LF line endings".into(), accept_or_reject(keep, legacy, true))
        }
        Fault::BitFlip { ber, positions } => {
            let mut flips = Vec::new();
            for &(byte, bit) in positions {
                if byte < bytes.len() && bit < 8 {
                    bytes[byte] ^= 1 << bit;
                    flips.push((byte, bit));
                }
            }
            if *ber > 0.0 {
                // Geometric gaps between errors: one draw per flip, not per bit.
                let total_bits = bytes.len() * 8;
                let mut pos = 0usize;
                loop {
                    let u = d.unit().max(1e-300);
                    let gap = (libm::log(u) / libm::log(1.0 - ber.min(0.5))) as usize;
                    pos = pos.saturating_add(gap);
                    if pos >= total_bits {
                        break;
                    }
                    bytes[pos / 8] ^= 1 << (pos % 8);
                    flips.push((pos / 8, (pos % 8) as u8));
                    pos += 1;
                }
            }
            let expect = if flips.is_empty() {
                Expect::Accept
            } else if legacy {
                Expect::Unspecified
            } else if crc_verifies(bytes) {
                // The CRC missed the damage (possible with several flips): undetectable.
                Expect::Unspecified
            } else {
                Expect::Reject
            };
            rec(format!("{} bit(s) flipped {:?}", flips.len(), &flips[..flips.len().min(8)]), expect)
        }
        _ => rec("not a byte fault".into(), Expect::Accept),
    }
}

/// Whether a telegram cut short still ends with whole data lines: after the identification, at a
/// line end, and not between a two-line gas record's lines (whose value line is then missing).
fn ends_whole_lines(bytes: &[u8]) -> bool {
    let text = bytes.strip_suffix(b"\r\n").or_else(|| bytes.strip_suffix(b"\n"));
    let Some(text) = text else { return false };
    let mut lines = text.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let header = lines.next().unwrap_or_default();
    let data: Vec<&[u8]> = lines.filter(|l| !l.is_empty()).collect();
    let gas_header = |l: &[u8]| l.windows(8).any(|w| w == b":24.3.0(");
    header.starts_with(b"/") && !text.contains(&b'!') && data.last().is_some_and(|l| !gas_header(l))
}

/// Whether bytes still form one telegram whose CRC verifies.
fn crc_verifies(bytes: &[u8]) -> bool {
    let Some(start) = bytes.iter().position(|&b| b == b'/') else { return false };
    let Some(bang) = bytes.iter().rposition(|&b| b == b'!') else { return false };
    if bang < start || bytes[start + 1..bang].contains(&b'/') {
        return false;
    }
    let digits: Vec<u8> = bytes[bang + 1..].iter().copied().take_while(u8::is_ascii_hexdigit).collect();
    let text = core::str::from_utf8(&digits).unwrap_or("");
    u16::from_str_radix(text, 16).is_ok_and(|c| !text.is_empty() && text.len() <= 4 && c == crc16(&bytes[start..=bang]))
}

/// A random byte that cannot start a frame.
fn garbage_byte(d: &mut Draws) -> u8 {
    loop {
        let b = d.next_u64() as u8;
        if b != b'/' && b != crate::smarty::TAG_GENERAL_GLO_CIPHERING {
            return b;
        }
    }
}

#[cfg(test)]
mod tests;
