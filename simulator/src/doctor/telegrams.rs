//! The capture through the reference decoder at the setting it was read at: telegrams and
//! their CRCs, telegrams cut off, encrypted frames, and what the meter's telegrams say about
//! it (header, objects, version, timestamps).
//!
//! A capture of a live line starts and ends wherever the reader began and stopped: the bytes
//! before the first `/` are the tail of a telegram, and a telegram cut off by the end of the
//! capture was cut by the capture, not by the line. Neither counts as a cut-off telegram.

use p1sim_core::decode::{Decoder, Discard, End, Event, Frame};
use p1sim_core::smarty::{FrameError, FrameHeader};

/// The most telegrams whose timestamps are kept (a day of DSMR 5 telegrams is 86,400).
const MAX_TIMESTAMPS: usize = 4096;

/// What the decoder made of a capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Decoded {
    /// Telegrams decoded, valid or not.
    pub telegrams: u64,
    /// Telegrams a correct reader accepts.
    pub valid: u64,
    /// Telegrams whose CRC does not match.
    pub crc_failed: u64,
    /// Telegrams with corrupted lines (or no CRC where one is due) whose CRC, if any, matched.
    pub corrupted: u64,
    /// Lengths of telegrams cut off before their end, inside the capture.
    pub cut: Vec<usize>,
    /// A telegram was in progress when the capture ended.
    pub cut_by_end: bool,
    /// Telegrams longer than the decoder takes.
    pub overflows: u64,
    /// Encrypted frames that arrived without a key.
    pub no_key: u64,
    /// Encrypted frames the key did not open, and why.
    pub undecryptable: Vec<FrameError>,
    /// The first encrypted frame's header.
    pub frame: Option<FrameHeader>,
    /// Telegrams that arrived inside encrypted frames and were decrypted.
    pub decrypted: u64,
    /// Bytes outside telegrams and frames (not counting CR, LF and NUL between them).
    pub garbage: u64,
    /// Telegrams whose meter sends no `!` (ended by the next `/`, a silence or the end).
    pub without_end_marker: u64,
    /// The first valid telegram.
    pub first: Option<Seen>,
    /// The message timestamps (`0-0:1.0.0`) of valid telegrams, in order, as sent.
    pub timestamps: Vec<String>,
}

/// What one telegram shows of its meter.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Seen {
    /// The identification line without `/`, lossily as text.
    pub header: String,
    /// The OBIS codes of its lines, as written.
    pub obis: Vec<String>,
    /// The version object's value: `1-3:0.2.8` (DSMR 4+), or `0-0:96.1.4` (e-MUCS).
    pub version: Option<(String, String)>,
    /// Whether it carried a CRC.
    pub crc: bool,
    /// Whether it arrived in an encrypted frame.
    pub encrypted: bool,
}

impl Decoded {
    /// Telegrams that failed: a bad CRC or corrupted lines.
    pub fn failed(&self) -> u64 {
        self.crc_failed + self.corrupted
    }

    /// Encrypted frames seen, opened or not.
    pub fn frames(&self) -> u64 {
        self.no_key + self.undecryptable.len() as u64 + self.decrypted
    }

    /// Whether the decoder found P1 structure at all: telegrams, cut-off ones or frames.
    pub fn found_any(&self) -> bool {
        self.telegrams > 0 || !self.cut.is_empty() || self.frames() > 0
    }
}

/// Decodes a whole capture; `key` opens encrypted frames. Their authentication tag is not
/// checked (a meter may have its own authentication key, which the doctor is not given): a frame
/// counts as opened when the telegram inside passes its CRC.
pub fn decode(bytes: &[u8], key: Option<[u8; 16]>) -> Decoded {
    let mut decoder = Decoder::new();
    if let Some(k) = key {
        decoder = decoder.with_key(k).without_tag_check();
    }
    let mut d = Decoded::default();
    decoder.feed(bytes, |ev| d.event(ev, false));
    decoder.finish(|ev| d.event(ev, true));
    d.garbage = decoder.stats().garbage_bytes;
    d
}

impl Decoded {
    fn event(&mut self, ev: Event<'_>, at_end: bool) {
        match ev {
            Event::Telegram(f) => self.telegram(&f),
            Event::Discarded { reason: Discard::Incomplete, .. } if at_end => self.cut_by_end = true,
            Event::Discarded { reason: Discard::Incomplete, bytes } => self.cut.push(bytes),
            Event::Discarded { reason: Discard::Overflow, .. } => self.overflows += 1,
            Event::Discarded { reason: Discard::NoKey, .. } => self.no_key += 1,
            Event::Discarded { reason: Discard::Undecryptable(e), .. } => self.undecryptable.push(e),
            Event::Discarded { reason: Discard::Garbage, .. } => {}
        }
    }

    fn telegram(&mut self, f: &Frame<'_>) {
        self.telegrams += 1;
        if f.end() != End::Marker {
            self.without_end_marker += 1;
        }
        if let Some(h) = f.encrypted {
            self.decrypted += 1;
            self.frame.get_or_insert(h);
        }
        if !f.is_valid() {
            if f.crc_ok() == Some(false) {
                self.crc_failed += 1;
            } else {
                self.corrupted += 1;
            }
            return;
        }
        self.valid += 1;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        if let Some(tst) = f.objects().find(|o| o.obis_text == b"0-0:1.0.0")
            && self.timestamps.len() < MAX_TIMESTAMPS
            && let Some((value, _)) = tst.values().next()
        {
            self.timestamps.push(text(value));
        }
        if self.first.is_none() {
            let version = f
                .objects()
                .find(|o| o.obis_text == b"1-3:0.2.8" || o.obis_text == b"0-0:96.1.4")
                .and_then(|o| o.values().next().map(|(v, _)| (text(o.obis_text), text(v))));
            self.first = Some(Seen {
                header: text(f.header()),
                obis: f.objects().map(|o| text(o.obis_text)).collect(),
                version,
                crc: f.crc_text().is_some(),
                encrypted: f.encrypted.is_some(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &[u8] =
        b"/KFM5KAIFA-METER\r\n\r\n1-3:0.2.8(42)\r\n0-0:1.0.0(161113205757W)\r\n1-0:1.8.1(001581.123*kWh)\r\n!";

    fn telegram(tst: &str) -> Vec<u8> {
        let text = String::from_utf8_lossy(T).replace("161113205757W", tst);
        let crc = p1sim_core::crc::crc16(text.as_bytes());
        format!("{text}{crc:04X}\r\n").into_bytes()
    }

    #[test]
    fn the_captures_own_ends_are_not_cut_off_telegrams() {
        let whole = telegram("161113205757W");
        let mut capture = whole[40..].to_vec();
        capture.extend_from_slice(&whole);
        capture.extend_from_slice(&telegram("161113205807W"));
        capture.extend_from_slice(&whole[..30]);
        let d = decode(&capture, None);
        assert_eq!((d.telegrams, d.valid, d.failed()), (2, 2, 0));
        assert!(d.cut.is_empty() && d.cut_by_end);
        assert_eq!(d.timestamps, ["161113205757W", "161113205807W"]);
        let first = d.first.unwrap();
        assert_eq!(first.header, "KFM5KAIFA-METER");
        assert_eq!(first.version, Some(("1-3:0.2.8".into(), "42".into())));
        assert_eq!(first.obis, ["1-3:0.2.8", "0-0:1.0.0", "1-0:1.8.1"]);
        assert!(first.crc && !first.encrypted);
    }

    #[test]
    fn cut_off_and_damaged_telegrams_are_counted() {
        let whole = telegram("161113205757W");
        let mut capture = whole[..50].to_vec();
        capture.extend_from_slice(&whole);
        let mut damaged = whole.clone();
        damaged[25] = b'7';
        capture.extend_from_slice(&damaged);
        let d = decode(&capture, None);
        assert_eq!(d.cut, [50]);
        assert_eq!((d.telegrams, d.valid, d.crc_failed), (2, 1, 1));
        assert!(d.found_any() && !decode(b"garbage", None).found_any());
        assert_eq!(decode(b"garbage", None).garbage, 7);
    }
}
