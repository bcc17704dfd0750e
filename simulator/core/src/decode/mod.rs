//! The reference decoder: bytes in any chunking, telegrams out.
//!
//! Push-based and sans-IO: [`Decoder::feed`] takes whatever arrived and calls back with each
//! complete telegram and each discarded span; [`Decoder::finish`] flushes at end of input.
//! It resyncs on `/`, skips garbage, checks the CRC where one is carried, joins the two-line
//! DSMR 2.2/3 gas record, and decrypts Smarty frames when given the key.
//!
//! A `/` inside a candidate does not blindly restart it: at the `!` every start is tried and the
//! one whose CRC verifies wins. That keeps a telegram cut short by Request followed by a fresh one
//! (docs/quirks.md#truncated-telegrams), and also a header that itself contains a `/` (Holley,
//! docs/quirks.md#slash-inside-a-telegram).
//!
//! Some Iskra MT382 send no `!` at all
//! (docs/quirks.md#telegrams-without-an-end-marker-iskra-mt382). A telegram without CRC is
//! therefore also complete when a `/` starts a new line after it, when the input ends, or when the
//! caller says the line fell silent ([`Decoder::silence`]), provided it is a whole telegram: a
//! DSMR-form identification, every line complete and parsed, every two-line gas record with its
//! value, and nothing that only CRC-carrying generations send. [`Frame::end`] says which of these
//! ended it.
//!
//! Encrypted frames are decrypted with the authentication key of the meter (Smarty's published
//! one unless told otherwise) and their tag checked; [`Decoder::without_tag_check`] skips the
//! tag for meters whose key is unknown, and then only a telegram with a valid CRC is accepted.
//!
//! Invariant: no input makes it panic, and memory is bounded by `max_len`.

pub mod json;
pub mod objects;

use alloc::string::String;
use alloc::vec::Vec;

use crate::crc::crc16;
use crate::obis::Obis;
use crate::smarty::{self, FrameError, FrameHeader};
use crate::telegram::{Checksum, Line, Telegram, Value};
use objects::{Body, Span, ValueSpan};

/// Telegrams longer than this are dropped as overflow. Real telegrams stay under 4 kB; the
/// limit only bounds memory on endless garbage without a `!`.
pub const DEFAULT_MAX_LEN: usize = 64 * 1024;

/// What ended a telegram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// Its `!` line, as every DSMR generation draws it.
    Marker,
    /// No `!`: the next telegram's `/` at the start of a line.
    NextHeader,
    /// No `!`: the end of the input.
    EndOfInput,
    /// No `!`: the line fell silent ([`Decoder::silence`]).
    Silence,
}

impl End {
    /// The name `decode --json` writes in its `end` field.
    pub fn name(self) -> &'static str {
        match self {
            End::Marker => "marker",
            End::NextHeader => "next-header",
            End::EndOfInput => "end-of-input",
            End::Silence => "silence",
        }
    }
}

/// How an encrypted frame's authentication was handled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tag {
    /// The GCM tag matched the authentication key.
    Verified,
    /// Decrypted without checking the tag ([`Decoder::without_tag_check`]): only the telegram's
    /// CRC vouches for it.
    Unchecked,
}

impl Tag {
    pub fn name(self) -> &'static str {
        match self {
            Tag::Verified => "verified",
            Tag::Unchecked => "unchecked",
        }
    }
}

/// Why bytes were thrown away.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Discard {
    /// Bytes outside any telegram other than CR, LF and NUL (line noise, 0xFF padding).
    Garbage,
    /// A telegram that started but never reached its `!`: cut off, or followed by a new `/`.
    Incomplete,
    /// Longer than the decoder's limit without an end.
    Overflow,
    /// An encrypted frame that could not be decrypted (wrong key, corrupted), or, without the tag
    /// check, whose telegram failed its CRC.
    Undecryptable(FrameError),
    /// A Smarty frame arrived but no key was given.
    NoKey,
}

#[derive(Debug)]
pub enum Event<'a> {
    Telegram(Frame<'a>),
    Discarded { reason: Discard, bytes: usize },
}

/// Counts over a decoder's lifetime.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub telegrams: u64,
    pub invalid: u64,
    pub incomplete: u64,
    pub garbage_bytes: u64,
    pub overflows: u64,
    pub undecryptable: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    /// Inside a candidate; `bang` is the position of `!` once seen, with the CRC digits so far.
    Telegram {
        bang: Option<usize>,
        digits: u8,
    },
    /// Collecting a general-glo-ciphering frame.
    Encrypted,
}

#[derive(Debug)]
pub struct Decoder {
    state: State,
    buf: Vec<u8>,
    /// Offsets of `/` after the first one in the current candidate.
    inner_starts: Vec<usize>,
    body: Body,
    plain: Vec<u8>,
    key: Option<[u8; 16]>,
    auth_key: [u8; 16],
    check_tag: bool,
    max_len: usize,
    stats: Stats,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self {
            state: State::Idle,
            buf: Vec::with_capacity(2048),
            inner_starts: Vec::new(),
            body: Body::default(),
            plain: Vec::new(),
            key: None,
            auth_key: smarty::AUTH_KEY,
            check_tag: true,
            max_len: DEFAULT_MAX_LEN,
            stats: Stats::default(),
        }
    }

    /// Decrypts encrypted frames with this key.
    pub fn with_key(mut self, key: [u8; 16]) -> Self {
        self.key = Some(key);
        self
    }

    /// Checks the tag of encrypted frames against this authentication key instead of Smarty's
    /// published one.
    pub fn with_auth_key(mut self, auth_key: [u8; 16]) -> Self {
        self.auth_key = auth_key;
        self
    }

    /// Decrypts encrypted frames without checking their tag, accepting a frame only when its
    /// telegram's CRC is valid. This gives up authentication: use it for meters whose
    /// authentication key is unknown.
    pub fn without_tag_check(mut self) -> Self {
        self.check_tag = false;
        self
    }

    pub fn with_max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len.max(16);
        self
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Feeds bytes; calls `on` for every telegram completed and every span discarded.
    pub fn feed(&mut self, input: &[u8], mut on: impl FnMut(Event<'_>)) {
        self.feed_dyn(input, &mut on);
    }

    // One event per telegram, so dynamic dispatch costs nothing measurable; it also lets the
    // decoder re-feed bytes to itself (a false Smarty start) without unbounded generics.
    fn feed_dyn(&mut self, input: &[u8], on: &mut dyn FnMut(Event<'_>)) {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Idle => i = self.idle(input, i, on),
                State::Telegram { bang: None, .. } => i = self.body_bytes(input, i, on),
                State::Telegram { bang: Some(bang), digits } => {
                    let c = input[i];
                    if digits < 4 && c.is_ascii_hexdigit() {
                        self.buf.push(c);
                        i += 1;
                        let digits = digits + 1;
                        self.state = State::Telegram { bang: Some(bang), digits };
                        if digits == 4 {
                            self.complete(bang, on);
                        }
                    } else {
                        // Anything else ends the checksum; CR LF or NUL is then skipped as idle.
                        self.complete(bang, on);
                    }
                }
                State::Encrypted => i = self.encrypted_bytes(input, i, on),
            }
        }
    }

    /// End of input: a telegram whose `!` arrived is complete, and so is a whole telegram without
    /// CRC that never sends one; anything else was cut off.
    pub fn finish(&mut self, mut on: impl FnMut(Event<'_>)) {
        let whole = matches!(self.state, State::Telegram { bang: None, .. })
            && self.end_without_marker(End::EndOfInput, &mut on);
        match self.state {
            State::Telegram { bang: Some(bang), .. } => self.complete(bang, &mut on),
            State::Telegram { bang: None, .. } | State::Encrypted if !whole => {
                self.stats.incomplete += 1;
                on(Event::Discarded { reason: Discard::Incomplete, bytes: self.buf.len() });
                self.reset();
            }
            _ => {}
        }
    }

    /// The line has been silent for as long as the caller waits between telegrams: a whole
    /// telegram without CRC and without `!` is complete. Anything else is left to wait for more.
    pub fn silence(&mut self, mut on: impl FnMut(Event<'_>)) {
        if matches!(self.state, State::Telegram { bang: None, .. }) {
            self.end_without_marker(End::Silence, &mut on);
        }
    }

    /// Reports the candidate as a telegram without `!` if, from its first start or a later `/`,
    /// it is a whole telegram (module docs); bytes before that start are discarded as cut off.
    fn end_without_marker(&mut self, end: End, on: &mut dyn FnMut(Event<'_>)) -> bool {
        let starts: Vec<usize> = core::iter::once(0).chain(self.inner_starts.iter().copied()).collect();
        let Some(start) = starts.into_iter().find(|&s| whole_without_marker(&self.buf[s..], &mut self.body)) else {
            return false;
        };
        if start > 0 {
            self.stats.incomplete += 1;
            on(Event::Discarded { reason: Discard::Incomplete, bytes: start });
        }
        let buf = core::mem::take(&mut self.buf);
        let raw = &buf[start..];
        // The frame ends with its last data line, without that line's CR LF.
        let text_end = raw.len() - if raw.ends_with(b"\r\n") { 2 } else { 1 };
        self.report(&raw[..text_end], text_end, None, end, on);
        self.buf = buf;
        self.reset();
        true
    }

    fn reset(&mut self) {
        self.state = State::Idle;
        self.buf.clear();
        self.inner_starts.clear();
    }

    fn idle(&mut self, input: &[u8], i: usize, on: &mut dyn FnMut(Event<'_>)) -> usize {
        let rest = &input[i..];
        let found = memchr::memchr2(b'/', smarty::TAG_GENERAL_GLO_CIPHERING, rest);
        let skipped = &rest[..found.unwrap_or(rest.len())];
        let garbage = skipped.iter().filter(|&&b| !matches!(b, b'\r' | b'\n' | 0)).count();
        if garbage > 0 {
            self.stats.garbage_bytes += garbage as u64;
            on(Event::Discarded { reason: Discard::Garbage, bytes: garbage });
        }
        let Some(k) = found else { return input.len() };
        self.buf.clear();
        self.inner_starts.clear();
        self.buf.push(rest[k]);
        self.state = if rest[k] == b'/' { State::Telegram { bang: None, digits: 0 } } else { State::Encrypted };
        i + k + 1
    }

    fn body_bytes(&mut self, input: &[u8], i: usize, on: &mut dyn FnMut(Event<'_>)) -> usize {
        let rest = &input[i..];
        let found = memchr::memchr2(b'!', b'/', rest);
        let before = found.unwrap_or(rest.len());
        if self.buf.len() + before + 1 > self.max_len {
            return self.overflow(i, before, on);
        }
        self.buf.extend_from_slice(&rest[..before]);
        let Some(k) = found else { return input.len() };
        if rest[k] == b'/' && self.buf.last() == Some(&b'\n') && self.end_without_marker(End::NextHeader, on) {
            // The telegram before ended without `!`; this `/` starts the next one.
            self.buf.push(b'/');
            self.state = State::Telegram { bang: None, digits: 0 };
            return i + k + 1;
        }
        self.buf.push(rest[k]);
        if rest[k] == b'!' {
            self.state = State::Telegram { bang: Some(self.buf.len() - 1), digits: 0 };
        } else {
            self.inner_starts.push(self.buf.len() - 1);
        }
        i + k + 1
    }

    /// The candidate would grow past `max_len`. If a later `/` started a fresh candidate, keep
    /// that one and drop what came before it; otherwise drop everything and wait for a new `/`.
    fn overflow(&mut self, i: usize, before: usize, on: &mut dyn FnMut(Event<'_>)) -> usize {
        if let Some(&restart) = self.inner_starts.last() {
            self.stats.overflows += 1;
            on(Event::Discarded { reason: Discard::Overflow, bytes: restart });
            self.buf.drain(..restart);
            self.inner_starts.clear();
            // The kept candidate may itself be too long; the next call checks again.
            return i;
        }
        self.stats.overflows += 1;
        on(Event::Discarded { reason: Discard::Overflow, bytes: self.buf.len() + before });
        self.reset();
        i + before
    }

    fn encrypted_bytes(&mut self, input: &[u8], i: usize, on: &mut dyn FnMut(Event<'_>)) -> usize {
        let need = match smarty::parse_header(&self.buf) {
            Ok(Some(h)) => h.frame_len,
            _ => smarty::HEADER_LEN,
        };
        let take = (need - self.buf.len().min(need)).min(input.len() - i);
        self.buf.extend_from_slice(&input[i..i + take]);
        // Validate what is there now, so the outcome does not depend on where chunks end.
        match smarty::parse_header(&self.buf) {
            Err(_) => {
                // Not a frame after all: the 0xDB was noise. Count it and rescan what followed.
                self.stats.garbage_bytes += 1;
                on(Event::Discarded { reason: Discard::Garbage, bytes: 1 });
                let rescan: Vec<u8> = self.buf[1..].to_vec();
                self.reset();
                self.feed_dyn(&rescan, on);
            }
            Ok(Some(h)) if self.buf.len() >= h.frame_len => self.complete_encrypted(on),
            Ok(_) => {}
        }
        i + take
    }

    fn complete_encrypted(&mut self, on: &mut dyn FnMut(Event<'_>)) {
        let Some(key) = self.key else {
            self.stats.undecryptable += 1;
            on(Event::Discarded { reason: Discard::NoKey, bytes: self.buf.len() });
            self.reset();
            return;
        };
        let frame_header = smarty::parse_header(&self.buf).ok().flatten();
        let frame_len = self.buf.len();
        let frame = core::mem::take(&mut self.buf);
        // Decrypt a copy: on failure the original bytes are needed to look for a later frame.
        let mut work = frame.clone();
        let result = if self.check_tag {
            smarty::decrypt_in_place(&key, &self.auth_key, &mut work).map(|p| p.to_vec())
        } else {
            smarty::decrypt_unchecked(&key, &mut work).map(|p| p.to_vec())
        };
        self.reset();
        match result {
            Ok(plain) => {
                // The plaintext is a complete telegram; decode it with the same framing rules.
                self.plain = plain;
                let plain = core::mem::take(&mut self.plain);
                self.decode_plaintext(&plain, frame_header, on);
                self.plain = plain;
            }
            Err(e) => {
                // A frame cut short swallows the start of the next one: look for another frame
                // header inside what was taken, and decode from there.
                let restart = (1..frame.len()).find(|&i| {
                    frame[i] == smarty::TAG_GENERAL_GLO_CIPHERING
                        && matches!(smarty::parse_header(&frame[i..]), Ok(Some(_)))
                });
                self.stats.undecryptable += 1;
                on(Event::Discarded { reason: Discard::Undecryptable(e), bytes: restart.unwrap_or(frame_len) });
                if let Some(i) = restart {
                    let rest = frame[i..].to_vec();
                    self.feed_dyn(&rest, on);
                }
            }
        }
    }

    fn decode_plaintext(&mut self, plain: &[u8], frame: Option<FrameHeader>, on: &mut dyn FnMut(Event<'_>)) {
        let mut inner = Decoder::new().with_max_len(self.max_len);
        let stats = &mut self.stats;
        let tag = if self.check_tag { Tag::Verified } else { Tag::Unchecked };
        let mut forward = |ev: Event<'_>| match ev {
            // Without the tag only a valid CRC says the key was right and the frame intact.
            Event::Telegram(f) if tag == Tag::Unchecked && f.crc_ok() != Some(true) => {
                stats.undecryptable += 1;
                on(Event::Discarded { reason: Discard::Undecryptable(FrameError::PlaintextCrc), bytes: f.raw.len() });
            }
            Event::Telegram(mut f) => {
                f.encrypted = frame;
                f.tag = Some(tag);
                on(Event::Telegram(f));
            }
            other => on(other),
        };
        inner.feed_dyn(plain, &mut forward);
        inner.finish(&mut forward);
        let s = inner.stats;
        stats.telegrams += s.telegrams;
        stats.invalid += s.invalid;
        stats.incomplete += s.incomplete;
        stats.garbage_bytes += s.garbage_bytes;
    }

    /// The candidate is `/ ... ! digits`; pick the start whose CRC verifies and report it.
    fn complete(&mut self, bang: usize, on: &mut dyn FnMut(Event<'_>)) {
        let crc_text = &self.buf[bang + 1..];
        let carried = parse_hex(crc_text);
        // Latest start first: CRC-16/ARC starts from 0, so a cut-off prefix whose own CRC happens
        // to be 0 leaves the CRC of everything after it unchanged, and both starts verify; the
        // later `/` is then the real one (one cut in 65536 would otherwise swallow a telegram).
        let starts = self.inner_starts.iter().copied().filter(|&s| s < bang).rev().chain(core::iter::once(0));
        let mut chosen = *self.inner_starts.iter().rfind(|&&s| s < bang).unwrap_or(&0);
        let mut computed = None;
        if let Some(carried) = carried {
            for s in starts {
                let c = crc16(&self.buf[s..=bang]);
                if c == carried {
                    chosen = s;
                    computed = Some(c);
                    break;
                }
            }
        }
        if chosen > 0 {
            self.stats.incomplete += 1;
            on(Event::Discarded { reason: Discard::Incomplete, bytes: chosen });
        }
        let buf = core::mem::take(&mut self.buf);
        let raw = &buf[chosen..];
        let bang = bang - chosen;
        let computed = computed.unwrap_or_else(|| crc16(&raw[..=bang]));
        self.report(raw, bang, carried.map(|c| (c, computed)), End::Marker, on);
        self.buf = buf;
        self.reset();
    }

    /// Parses `raw` (`/` to the last CRC digit, or to the last data line) whose body ends at
    /// `body_end` (the `!`, or the end), and reports it.
    fn report(
        &mut self,
        raw: &[u8],
        body_end: usize,
        crc: Option<(u16, u16)>,
        end: End,
        on: &mut dyn FnMut(Event<'_>),
    ) {
        let header_end = memchr::memchr(b'\n', &raw[..body_end]).unwrap_or(body_end);
        let header_text_end = if header_end > 0 && raw[header_end - 1] == b'\r' { header_end - 1 } else { header_end };
        self.body.parse(raw, (header_end + 1).min(body_end), body_end);
        let crc_span = (raw.len() > body_end + 1).then_some((body_end + 1) as u32..raw.len() as u32);
        let computed = match crc {
            Some((_, computed)) => computed,
            None if end == End::Marker => crc16(&raw[..=body_end]),
            None => crc16(raw),
        };
        let frame = Frame {
            raw,
            header: 1..header_text_end.max(1) as u32,
            crc: crc_span,
            crc_ok: crc.map(|(carried, computed)| carried == computed),
            computed_crc: computed,
            body: &self.body,
            encrypted: None,
            tag: None,
            end,
        };
        self.stats.telegrams += 1;
        if !frame.is_valid() {
            self.stats.invalid += 1;
        }
        on(Event::Telegram(frame));
    }
}

/// Whether `t` (from `/` to just before the next `/` or the end) is a whole telegram that ends
/// without `!`: see the module docs. Parses into `body` to find out.
fn whole_without_marker(t: &[u8], body: &mut Body) -> bool {
    if !t.ends_with(b"\n") || t.contains(&b'!') {
        return false;
    }
    let Some(header_end) = memchr::memchr(b'\n', t) else { return false };
    let header = t[1..header_end].strip_suffix(b"\r").unwrap_or(&t[1..header_end]);
    if !has_flag_identification(header) {
        return false;
    }
    body.parse(t, header_end + 1, t.len());
    let gas_record = |o: &objects::ObjectSpan| o.obis.is_some_and(|c| c.cde() == (24, 3, 0));
    body.bad_lines == 0
        && !body.objects.is_empty()
        && body.objects.iter().all(|o| o.obis.is_some_and(|c| !MODERN_MARKERS.contains(&c)))
        && body.objects.iter().filter(|o| gas_record(o)).all(|o| o.continued_at.is_some())
}

fn parse_hex(text: &[u8]) -> Option<u16> {
    if text.is_empty() || text.len() > 4 {
        return None;
    }
    let mut v: u16 = 0;
    for &b in text {
        v = v << 4 | (b as char).to_digit(16)? as u16;
    }
    Some(v)
}

/// A complete telegram as received, borrowed from the decoder until the callback returns.
#[derive(Debug)]
pub struct Frame<'a> {
    /// `/` through the last CRC digit.
    pub raw: &'a [u8],
    header: Span,
    crc: Option<Span>,
    crc_ok: Option<bool>,
    computed_crc: u16,
    body: &'a Body,
    /// Set when the telegram arrived inside an encrypted frame.
    pub encrypted: Option<FrameHeader>,
    /// For encrypted frames: whether the tag was checked.
    pub tag: Option<Tag>,
    end: End,
}

/// `XXXZ...`: a three-letter FLAG manufacturer id and the baud-rate digit (DSMR 3.0 §5.2).
fn has_flag_identification(header: &[u8]) -> bool {
    header.len() >= 4 && header[..3].iter().all(u8::is_ascii_alphabetic) && header[3].is_ascii_digit()
}

/// OBIS codes only DSMR 4 and later send: a telegram with one of these must carry a CRC.
const MODERN_MARKERS: [Obis; 3] = [Obis::new(1, 3, 0, 2, 8), Obis::new(0, 0, 1, 0, 0), Obis::new(0, 0, 96, 1, 4)];

impl<'a> Frame<'a> {
    /// The identification line without `/` (and without line end).
    pub fn header(&self) -> &'a [u8] {
        &self.raw[self.header.start as usize..self.header.end as usize]
    }

    /// What ended the telegram: its `!`, or for a meter that sends none, what came after it.
    pub fn end(&self) -> End {
        self.end
    }

    /// The text after `!`, if any.
    pub fn crc_text(&self) -> Option<&'a [u8]> {
        self.crc.as_ref().map(|r| &self.raw[r.start as usize..r.end as usize])
    }

    /// `Some(true)` when a carried CRC matches, `None` when no CRC was carried.
    pub fn crc_ok(&self) -> Option<bool> {
        self.crc_ok
    }

    /// The CRC-16/ARC of `/` through `!` as received (through the last line without a `!`).
    pub fn computed_crc(&self) -> u16 {
        self.computed_crc
    }

    /// Lines that were neither objects nor continuations, or had a corrupted OBIS code.
    pub fn bad_lines(&self) -> u32 {
        self.body.bad_lines
    }

    pub fn objects(&self) -> impl ExactSizeIterator<Item = ObjectRef<'a>> + '_ {
        let raw = self.raw;
        let values = &self.body.values;
        self.body.objects.iter().map(move |o| ObjectRef {
            raw,
            obis_text: &raw[o.obis_text.start as usize..o.obis_text.end as usize],
            obis: o.obis,
            values: &values[o.values.start as usize..o.values.end as usize],
            continued_at: o.continued_at,
        })
    }

    /// Whether a correct reader should accept the telegram: a carried CRC matches (or, with no
    /// CRC, nothing in it says it is DSMR 4 or later and the identification has the spec's
    /// `XXXZ` form, so a fragment after a stray `/` is not taken for a telegram), and every line
    /// parsed.
    pub fn is_valid(&self) -> bool {
        let checksum_ok = match self.crc_ok {
            Some(ok) => ok,
            None => {
                self.crc.is_none()
                    && has_flag_identification(self.header())
                    && !self.body.objects.iter().any(|o| o.obis.is_some_and(|c| MODERN_MARKERS.contains(&c)))
            }
        };
        checksum_ok && self.body.bad_lines == 0
    }

    /// Whether an empty line follows the header, as the spec draws it.
    pub fn has_blank_line(&self) -> bool {
        let after = &self.raw[(self.header.end as usize).min(self.raw.len())..];
        after.starts_with(b"\r\n\r\n") || after.starts_with(b"\n\n") || after.starts_with(b"\r\n\n")
    }

    /// The owned model of what was received (text decoded lossily as UTF-8). Rendering it gives
    /// back the received bytes for any well-formed telegram with CRLF line endings.
    pub fn to_telegram(&self) -> Telegram {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        Telegram {
            header: s(self.header()),
            blank_line: self.has_blank_line(),
            lines: self
                .objects()
                .map(|o| Line {
                    obis: s(o.obis_text),
                    values: o.values().map(|(t, u)| Value { text: s(t), unit: u.map(s) }).collect(),
                    break_before: o.continued_at.map(|i| i as usize),
                })
                .collect(),
            checksum: match self.crc_text() {
                Some(t) => Checksum::Text(s(t)),
                None => Checksum::None,
            },
            end_marker: self.end == End::Marker,
            trailer: Vec::new(),
        }
    }
}

/// One decoded object.
#[derive(Clone, Copy, Debug)]
pub struct ObjectRef<'a> {
    raw: &'a [u8],
    pub obis_text: &'a [u8],
    pub obis: Option<Obis>,
    values: &'a [ValueSpan],
    /// Index of the first value that arrived on a continuation line (DSMR 2.2/3 gas record).
    pub continued_at: Option<u32>,
}

impl<'a> ObjectRef<'a> {
    /// Each bracket's text and unit.
    pub fn values(&self) -> impl ExactSizeIterator<Item = (&'a [u8], Option<&'a [u8]>)> + '_ {
        let raw = self.raw;
        self.values.iter().map(move |v| {
            let text = &raw[v.text.start as usize..v.text.end as usize];
            (text, v.unit.as_ref().map(|u| &raw[u.start as usize..u.end as usize]))
        })
    }

    pub fn value_count(&self) -> usize {
        self.values.len()
    }
}

/// Decodes a complete buffer into owned telegrams with their validity; a convenience for tests.
pub fn decode_all(bytes: &[u8], key: Option<[u8; 16]>) -> Vec<(Telegram, bool)> {
    let mut d = Decoder::new();
    if let Some(k) = key {
        d = d.with_key(k);
    }
    let mut out = Vec::new();
    let mut push = |ev: Event<'_>| {
        if let Event::Telegram(f) = ev {
            out.push((f.to_telegram(), f.is_valid()));
        }
    };
    d.feed(bytes, &mut push);
    d.finish(&mut push);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A DSMR 2.2 telegram of an Iskra MT382 that sends no `!`: four objects, one the gas record.
    const NO_END: &[u8] = b"/ISk5\\2MT382-1003\r\n\r\n1-0:1.8.1(39837.604*kWh)\r\n0-0:96.13.0(test-/-test)\r\n\
0-1:24.3.0(250423090000)(00)(60)(1)(0-1:24.2.1)(m3)\r\n(13032.850)\r\n0-1:24.4.0(1)\r\n";

    /// (objects, valid, end) per telegram, and the discarded spans, for `input` fed in `chunk`s.
    fn run(input: &[u8], chunk: usize, silence_after: bool) -> (Vec<(usize, bool, End)>, Vec<Discard>) {
        let mut d = Decoder::new();
        let mut got = Vec::new();
        let mut dropped = Vec::new();
        let mut on = |ev: Event<'_>| match ev {
            Event::Telegram(f) => got.push((f.objects().len(), f.is_valid(), f.end())),
            Event::Discarded { reason, .. } => dropped.push(reason),
        };
        for c in input.chunks(chunk.max(1)) {
            d.feed(c, &mut on);
        }
        if silence_after {
            d.silence(&mut on);
        } else {
            d.finish(&mut on);
        }
        (got, dropped)
    }

    #[test]
    fn a_telegram_without_end_marker_ends_at_the_next_header_and_at_the_end() {
        let two = [NO_END, NO_END].concat();
        for chunk in [1, 7, two.len()] {
            let (got, dropped) = run(&two, chunk, false);
            assert_eq!(got, [(4, true, End::NextHeader), (4, true, End::EndOfInput)], "chunk {chunk}");
            assert!(dropped.is_empty(), "{dropped:?}");
        }
        let (got, _) = run(NO_END, 5, true);
        assert_eq!(got, [(4, true, End::Silence)]);
    }

    #[test]
    fn a_cut_off_telegram_is_still_not_a_telegram() {
        // A line cut mid-way, an unbalanced bracket, a gas record without its value line.
        let cut_line = &NO_END[..NO_END.len() - 6];
        let cut_record = &NO_END[..NO_END.iter().position(|&b| b == b'(').unwrap() + 60];
        for cut in [cut_line, cut_record, &b"/ISk5\\2MT382-1003\r\n\r\n1-0:1.8.1(3983\r\n"[..]] {
            let (got, dropped) = run(&[cut, NO_END].concat(), 3, false);
            assert_eq!(got, [(4, true, End::EndOfInput)], "{:?}", String::from_utf8_lossy(cut));
            assert_eq!(dropped, [Discard::Incomplete]);
        }
        // Silence does not end a cut-off telegram: it waits for more.
        assert_eq!(run(cut_line, 3, true).0, []);
    }

    #[test]
    fn telegrams_that_must_carry_a_crc_never_end_without_one() {
        let modern = b"/ISK5\\2M550T-1012\r\n\r\n1-3:0.2.8(50)\r\n1-0:1.8.1(001234.567*kWh)\r\n";
        let (got, dropped) = run(&[&modern[..], &modern[..]].concat(), 4, false);
        assert_eq!(got, []);
        assert_eq!(dropped, [Discard::Incomplete]);
    }

    #[test]
    fn the_tag_is_checked_with_the_meters_authentication_key() {
        let mut plain = b"/EST5\\253710000_A\r\n\r\n1-0:1.8.0(006545766*Wh)\r\n!".to_vec();
        let crc = crate::crc::crc_hex(crc16(&plain));
        plain.extend_from_slice(&crc);
        plain.extend_from_slice(b"\r\n");
        let (key, auth) = ([0xAA; 16], [0xBB; 16]);
        let mut frame = Vec::new();
        smarty::encrypt(&key, &auth, b"SAGAT001", 3, &plain, &mut frame).unwrap();
        let decode = |d: Decoder| {
            let mut d = d;
            let mut out = Vec::new();
            d.feed(&frame, |ev| match ev {
                Event::Telegram(f) => out.push(Ok(f.tag)),
                Event::Discarded { reason, .. } => out.push(Err(reason)),
            });
            out
        };
        assert_eq!(decode(Decoder::new().with_key(key)), [Err(Discard::Undecryptable(FrameError::BadTag))]);
        assert_eq!(decode(Decoder::new().with_key(key).with_auth_key(auth)), [Ok(Some(Tag::Verified))]);
        assert_eq!(decode(Decoder::new().with_key(key).without_tag_check()), [Ok(Some(Tag::Unchecked))]);
        let wrong = decode(Decoder::new().with_key([0x11; 16]).without_tag_check());
        assert_eq!(wrong, [Err(Discard::Undecryptable(FrameError::NotATelegram))]);
    }
}
