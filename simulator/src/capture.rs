//! Reading a capture of a real meter: raw bytes from a port in any chunking, or a log with one
//! or more telegrams, LF-only lines included, optionally behind a log prefix on every line. What
//! comes out is the telegrams the capture holds, exactly as the meter sent them, for `p1sim
//! profiles learn`, `--replay` and `p1sim conformance corpus add`.

use std::borrow::Cow;
use std::path::Path;

use anyhow::{Context, Result, bail};
use p1sim_core::decode::{Decoder, Event};
use p1sim_core::format::LocalTime;
use p1sim_core::input::{Limit, read_bounded};
use p1sim_core::smarty;
use p1sim_core::telegram::{Checksum, Telegram};
use regex::Regex;

/// Captures beyond this are refused: a day of DSMR 5 telegrams is about 90 MB, and learning or
/// replaying needs far less.
pub const MAX_CAPTURE_BYTES: u64 = 64 << 20;

/// One telegram of a capture.
#[derive(Debug, Clone)]
pub struct Captured {
    /// The plaintext telegram, `/` through the CRLF after the CRC, as the meter sent it.
    pub bytes: Vec<u8>,
    /// The encrypted frame it came in, as captured (Smarty).
    pub frame: Option<Vec<u8>>,
    /// When the log says it arrived (Unix seconds), from the prefix's `time` group.
    pub logged_at: Option<f64>,
    /// The instant its message timestamp (`0-0:1.0.0`) names, by its S/W flag (Unix seconds).
    pub stamp: Option<i64>,
}

impl Captured {
    /// Takes a telegram read from a capture: its bytes, and its model only long enough to note
    /// the timestamp. A capture keeps bytes alone because a model is about ten times their size
    /// (a 64 MiB capture would otherwise take most of a gigabyte).
    fn new(bytes: Vec<u8>, frame: Option<Vec<u8>>, model: &Telegram, logged_at: Option<f64>) -> Captured {
        Captured { bytes, frame, logged_at, stamp: stamp_of(model) }
    }

    /// The owned model of the telegram, read again from its bytes.
    pub fn model(&self) -> Telegram {
        // The bytes were read as one valid telegram, so the decoder finds it again; the empty
        // fallback only keeps this free of a panic path.
        let empty = || Telegram::new(String::new(), Vec::new(), Checksum::None);
        p1sim_core::decode::decode_all(&self.bytes, None).into_iter().next().map_or_else(empty, |(t, _)| t)
    }
}

/// The instant a telegram's message timestamp (`0-0:1.0.0`) names.
pub fn stamp_of(model: &Telegram) -> Option<i64> {
    model.line("0-0:1.0.0").and_then(|l| l.values.first()).and_then(|v| instant(&v.text))
}

/// A TST's instant with the offset its flag says.
pub fn instant(text: &str) -> Option<i64> {
    LocalTime::parse_tst(text)?.unix_by_flag()
}

/// What a capture holds.
#[derive(Debug, Clone)]
pub struct Capture {
    /// Where it came from, for messages and the learned profile's comment.
    pub origin: String,
    pub telegrams: Vec<Captured>,
    /// Telegrams found but not taken: a CRC that does not match, a cut-off end.
    pub skipped: usize,
    /// Notes on what was done to read it (CRs restored, prefixes stripped).
    pub notes: Vec<String>,
    /// The authentication key its encrypted frames were checked with (Smarty's published one
    /// unless the meter has its own).
    pub auth_key: [u8; 16],
}

/// How to read a capture.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// A regular expression matched at the start of every line and removed (a log's timestamp
    /// and level); a named group `time` gives when the line was logged.
    pub strip_prefix: Option<String>,
    /// The Smarty key, for captures of encrypted frames.
    pub key: Option<[u8; 16]>,
    /// The meter's own authentication key, where it is not Smarty's published one.
    pub auth_key: Option<[u8; 16]>,
}

/// Reads and parses the capture in `path`.
pub fn read(path: &Path, opts: &ReadOptions) -> Result<Capture> {
    let limit = Limit::new("capture (cut it to the telegrams you need)", MAX_CAPTURE_BYTES);
    let bytes = read_bounded(path, limit).with_context(|| format!("cannot read the capture {}", path.display()))?;
    parse(&bytes, &path.display().to_string(), opts)
}

/// Parses capture bytes; `origin` names them in messages.
pub fn parse(bytes: &[u8], origin: &str, opts: &ReadOptions) -> Result<Capture> {
    if bytes.is_empty() {
        bail!("{origin}: the capture is empty");
    }
    let mut notes = Vec::new();
    if let Some(frames) = smarty_frames(bytes) {
        return encrypted(bytes, frames, origin, (opts.key, opts.auth_key), notes);
    }
    let (text, times) = match &opts.strip_prefix {
        Some(re) => {
            let re = Regex::new(re).with_context(|| format!("--strip-prefix {re:?} is not a regular expression"))?;
            let (t, times, n) = strip(bytes, &re, origin)?;
            notes.push(format!("a log prefix was stripped from {n} line(s)"));
            (Cow::Owned(t), times)
        }
        None => {
            refuse_prefixes(bytes, origin)?;
            (Cow::Borrowed(bytes), Vec::new())
        }
    };
    let text = if lf_only(&text) {
        notes.push("the capture's lines ended in LF only; the CR before each LF was restored".into());
        Cow::Owned(restore_cr(&text))
    } else {
        text
    };
    let mut telegrams = Vec::new();
    let mut skipped = 0;
    let mut d = Decoder::new();
    let mut on = |ev: Event<'_>| match ev {
        Event::Telegram(f) if f.is_valid() => {
            let model = f.to_telegram();
            let mut bytes = f.raw.to_vec();
            // `raw` ends at the CRC; a telegram without `!` ends with its last line's CR LF.
            if model.end_marker || !bytes.ends_with(b"\r\n") {
                bytes.extend_from_slice(b"\r\n");
            }
            telegrams.push((bytes, stamp_of(&model)));
        }
        Event::Telegram(_) => skipped += 1,
        Event::Discarded { reason: p1sim_core::decode::Discard::Incomplete, .. } => skipped += 1,
        Event::Discarded { .. } => {}
    };
    d.feed(&text, &mut on);
    d.finish(&mut on);
    // Where each telegram sits in the text, in order: the logged time of the line it starts on.
    let mut cursor = 0;
    let telegrams: Vec<Captured> = telegrams
        .into_iter()
        .map(|(bytes, stamp)| {
            let at = memchr::memmem::find(&text[cursor..], &bytes[..bytes.len() - 2]).map(|i| cursor + i);
            if let Some(a) = at {
                cursor = a + 1;
            }
            let logged_at = at.and_then(|o| times.iter().rev().find(|(line_start, _)| *line_start <= o)).map(|t| t.1);
            Captured { bytes, frame: None, logged_at, stamp }
        })
        .collect();
    if telegrams.is_empty() {
        bail!("{origin}: {}", why_nothing(&text, skipped));
    }
    Ok(Capture { origin: origin.to_string(), telegrams, skipped, notes, auth_key: smarty::AUTH_KEY })
}

/// Explains a capture without a telegram.
fn why_nothing(text: &[u8], skipped: usize) -> String {
    let printable = text.iter().filter(|b| b.is_ascii_graphic() || b.is_ascii_whitespace()).count();
    if printable * 10 < text.len() * 9 {
        return "no telegram found: this looks like binary data, not the text a P1 port sends (a capture of \
                encrypted Smarty frames starts with DB 08)"
            .into();
    }
    if skipped > 0 {
        return format!(
            "no complete telegram with a valid CRC: {skipped} telegram(s) were cut off or failed their CRC (a \
             capture must hold at least one whole telegram, `/` to the CRC after `!`)"
        );
    }
    "no telegram found: a telegram starts with `/` and its identification, and ends with `!` and the CRC".into()
}

/// The frames of a capture of Smarty frames, if it is one: `DB 08` headers end to end.
fn smarty_frames(bytes: &[u8]) -> Option<Vec<(usize, usize)>> {
    let start = bytes.iter().position(|&b| b == smarty::TAG_GENERAL_GLO_CIPHERING)?;
    if bytes[..start].contains(&b'/') {
        return None;
    }
    let mut frames = Vec::new();
    let mut i = start;
    while i < bytes.len() {
        match smarty::parse_header(&bytes[i..]) {
            Ok(Some(h)) if i + h.frame_len <= bytes.len() => {
                frames.push((i, i + h.frame_len));
                i += h.frame_len;
            }
            _ => match bytes[i + 1..].iter().position(|&b| b == smarty::TAG_GENERAL_GLO_CIPHERING) {
                Some(next) => i += 1 + next,
                None => break,
            },
        }
    }
    (!frames.is_empty()).then_some(frames)
}

fn encrypted(
    bytes: &[u8],
    frames: Vec<(usize, usize)>,
    origin: &str,
    keys: (Option<[u8; 16]>, Option<[u8; 16]>),
    mut notes: Vec<String>,
) -> Result<Capture> {
    let auth_key = keys.1.unwrap_or(smarty::AUTH_KEY);
    let Some(key) = keys.0 else {
        bail!(
            "{origin}: the capture holds {} encrypted Smarty frame(s); give the meter's key with --key (32 hex \
             digits, from the grid operator)",
            frames.len()
        );
    };
    let mut telegrams = Vec::new();
    let mut skipped = 0;
    for (a, b) in frames {
        let mut frame = bytes[a..b].to_vec();
        let plain = match smarty::decrypt_in_place(&key, &auth_key, &mut frame) {
            Ok(p) => p.to_vec(),
            Err(_) => {
                skipped += 1;
                continue;
            }
        };
        match p1sim_core::decode::decode_all(&plain, None).into_iter().next() {
            Some((model, true)) => telegrams.push(Captured::new(plain, Some(bytes[a..b].to_vec()), &model, None)),
            _ => skipped += 1,
        }
    }
    if telegrams.is_empty() {
        bail!(
            "{origin}: no frame decrypts with the keys given: check --key, and --auth-key if the meter has its own \
             authentication key"
        );
    }
    notes.push(format!("{} encrypted frame(s) decrypted", telegrams.len()));
    Ok(Capture { origin: origin.to_string(), telegrams, skipped, notes, auth_key })
}

/// Whether line ends are LF without CR throughout the telegram text.
fn lf_only(text: &[u8]) -> bool {
    let lf = text.iter().filter(|&&b| b == b'\n').count();
    lf > 0 && !text.windows(2).any(|w| w == b"\r\n")
}

fn restore_cr(text: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + text.len() / 20);
    for &b in text {
        if b == b'\n' {
            out.push(b'\r');
        }
        out.push(b);
    }
    out
}

/// Does a line look like telegram text from its first byte: a header, a data line, the end, a
/// continuation, or nothing?
fn telegram_line(line: &[u8]) -> bool {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match line.first() {
        None => true,
        Some(b'/' | b'!' | b'(') => true,
        Some(c) if c.is_ascii_digit() => obis_prefix(line),
        // Binary bytes, noise between telegrams: not a log prefix.
        Some(c) => !c.is_ascii_graphic(),
    }
}

/// `A-B:C.D.E` at the start of `line`.
fn obis_prefix(line: &[u8]) -> bool {
    p1sim_core::obis::Obis::parse(line.split(|&b| b == b'(').next().unwrap_or(line).trim_ascii()).is_some()
}

/// Refuses lines that carry something before their telegram text, naming the first one.
fn refuse_prefixes(bytes: &[u8], origin: &str) -> Result<()> {
    let data_line = Regex::new(r"\d+-\d+:\d+\.\d+\.\d+\(").expect("a valid pattern");
    for (n, line) in bytes.split(|&b| b == b'\n').enumerate() {
        if telegram_line(line) {
            continue;
        }
        let text = String::from_utf8_lossy(line);
        let at = text.find('/').or_else(|| data_line.find(&text).map(|m| m.start()));
        let Some(at) = at.filter(|a| *a > 0) else { continue };
        let prefix: String = text[..at].chars().take(60).collect();
        bail!(
            "{origin}:{}: the line starts with {prefix:?} before the telegram text; a capture from a log needs \
             --strip-prefix REGEX to remove it, e.g. --strip-prefix '{}'",
            n + 1,
            suggest_prefix(&prefix)
        );
    }
    Ok(())
}

/// A regular expression matching a prefix like the one found.
fn suggest_prefix(prefix: &str) -> String {
    let words = prefix.split_whitespace().count().max(1);
    format!("^(\\S+\\s+){{{words}}}")
}

/// When lines were logged: (offset of the line in the stripped text, Unix seconds).
type LoggedTimes = Vec<(usize, f64)>;

/// Strips the prefix from every line it matches at the start of; returns the text, the logged
/// times, and how many lines had a prefix.
fn strip(bytes: &[u8], re: &Regex, origin: &str) -> Result<(Vec<u8>, LoggedTimes, usize)> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut times = Vec::new();
    let mut n = 0;
    let lines: Vec<&[u8]> = bytes.split_inclusive(|&b| b == b'\n').collect();
    for (i, line) in lines.iter().enumerate() {
        let text = String::from_utf8_lossy(line);
        match re.captures(&text).filter(|c| c.get(0).is_some_and(|m| m.start() == 0)) {
            Some(c) => {
                n += 1;
                let cut = c.get(0).map_or(0, |m| m.end());
                if let Some(t) = c.name("time") {
                    let at = parse_log_time(t.as_str())
                        .with_context(|| format!("{origin}:{}: the time {:?} does not parse", i + 1, t.as_str()))?;
                    times.push((out.len(), at));
                }
                out.extend_from_slice(text[cut..].as_bytes());
            }
            None => out.extend_from_slice(line),
        }
    }
    if n == 0 {
        bail!("{origin}: --strip-prefix matches the start of no line");
    }
    Ok((out, times, n))
}

/// A log's timestamp as Unix seconds: RFC 3339, or `YYYY-MM-DD HH:MM:SS[.fff]` in UTC.
fn parse_log_time(s: &str) -> Result<f64> {
    if let Ok(t) = s.parse::<jiff::Timestamp>() {
        return Ok(t.as_nanosecond() as f64 / 1e9);
    }
    let dt: jiff::civil::DateTime = s.replacen(' ', "T", 1).replace(',', ".").parse().context("not a date and time")?;
    let t = dt.to_zoned(jiff::tz::TimeZone::UTC).context("out of range")?.timestamp();
    Ok(t.as_nanosecond() as f64 / 1e9)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KAIFA: &[u8] = b"/KFM5KAIFA-METER\r\n\r\n1-0:1.8.1(000671.578*kWh)\r\n1-0:1.7.0(00.318*kW)\r\n!1E1D\r\n";

    #[test]
    fn raw_bytes_in_any_chunking_and_lf_only_logs_read_the_same() {
        let raw = parse(&[&b"\xff\xffnoise"[..], KAIFA, KAIFA].concat(), "raw", &ReadOptions::default()).unwrap();
        assert_eq!(raw.telegrams.len(), 2);
        assert_eq!(raw.telegrams[0].bytes, KAIFA);
        let lf: Vec<u8> = KAIFA.iter().copied().filter(|&b| b != b'\r').collect();
        let log = parse(&lf, "log", &ReadOptions::default()).unwrap();
        assert_eq!(log.telegrams[0].bytes, KAIFA, "the CRs come back and the CRC verifies");
        assert!(log.notes[0].contains("LF only"));
    }

    #[test]
    fn prefixed_logs_are_refused_or_stripped() {
        let text = String::from_utf8_lossy(KAIFA);
        let logged: String = text
            .split_inclusive('\n')
            .enumerate()
            .map(|(i, l)| format!("2026-01-15 12:00:0{} DEBUG {l}", i % 10))
            .collect();
        let e = parse(logged.as_bytes(), "dsmr.log", &ReadOptions::default()).unwrap_err().to_string();
        assert!(e.contains("dsmr.log:1: the line starts with \"2026-01-15 12:00:00 DEBUG \""), "{e}");
        assert!(e.contains("--strip-prefix"), "{e}");
        let opts = ReadOptions { strip_prefix: Some(r"^(?P<time>\S+ \S+) DEBUG ".into()), ..ReadOptions::default() };
        let c = parse(logged.as_bytes(), "dsmr.log", &opts).unwrap();
        assert_eq!(c.telegrams[0].bytes, KAIFA);
        assert_eq!(c.telegrams[0].logged_at, Some(1_768_478_400.0));
    }

    #[test]
    fn bad_captures_get_clear_errors() {
        let opts = ReadOptions::default();
        assert!(parse(b"", "e", &opts).unwrap_err().to_string().contains("empty"));
        let binary: Vec<u8> = (0..=255u8).cycle().take(2000).collect();
        assert!(parse(&binary, "b", &opts).unwrap_err().to_string().contains("binary data"));
        let cut = &KAIFA[..40];
        let e = parse(cut, "c", &opts).unwrap_err().to_string();
        assert!(e.contains("cut off or failed their CRC"), "{e}");
        assert!(parse(b"hello world\n", "t", &opts).unwrap_err().to_string().contains("starts with `/`"));
        let mut frame = Vec::new();
        smarty::encrypt(&[7; 16], &smarty::AUTH_KEY, b"SAG10307", 3, KAIFA, &mut frame).unwrap();
        assert!(parse(&frame, "s", &opts).unwrap_err().to_string().contains("--key"));
        let c = parse(&frame, "s", &ReadOptions { key: Some([7; 16]), ..opts }).unwrap();
        assert_eq!(c.telegrams[0].bytes, KAIFA);
        assert_eq!(c.telegrams[0].frame.as_deref(), Some(&frame[..]));
    }
}
