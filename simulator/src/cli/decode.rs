//! `p1sim decode`: the reference decoder on a file or standard input.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{Context, Result};
use p1sim_core::decode::{Decoder, Discard, End, Event, Frame, json};

use super::Outcome;

/// Decode telegrams from a file or standard input.
///
/// Bytes may arrive in any chunking; the decoder resyncs on `/`, skips garbage and incomplete
/// telegrams, checks the CRC where one is carried, joins the DSMR 2.2/3 two-line gas record and
/// decrypts encrypted frames given the key. A telegram without CRC whose meter sends no `!` (some
/// Iskra MT382) ends at the next telegram's `/`, at the end of the input or after --silence.
/// Exit status: 0 when every telegram is valid, 1 when any is not (bad CRC, corrupted line, cut
/// off) or when there was no valid telegram at all (empty input, the wrong baud rate or
/// framing), 2 on usage or IO errors. A summary goes to standard error.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim decode capture.txt\n  \
    p1sim emit --profile iskra-am550 --count 3 | p1sim decode --json\n  \
    p1sim decode smarty.bin --key 000102030405060708090A0B0C0D0E0F --json\n  \
    p1sim decode at.bin --key 000102030405060708090A0B0C0D0E0F --auth-key BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB\n  \
    p1sim decode lux.bin --key 000102030405060708090A0B0C0D0E0F --no-tag-check\n  \
    cat /dev/ttyUSB0 | p1sim decode - --silence 500")]
pub struct Args {
    /// Input file; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|-")]
    input: Option<PathBuf>,
    /// One JSON object per telegram: {"header", "crc", "crc_ok", "objects": [{"obis", "values": [{"value", "unit"}]}]}.
    #[arg(long)]
    json: bool,
    /// Decryption key of encrypted frames (Smarty, Austria), 32 hex digits.
    #[arg(long, value_name = "HEX", value_parser = super::parse_key)]
    key: Option<[u8; 16]>,
    /// The meter's authentication key, 32 hex digits (default: Smarty's published one).
    #[arg(long, value_name = "HEX", value_parser = super::parse_key, requires = "key", conflicts_with = "no_tag_check")]
    auth_key: Option<[u8; 16]>,
    /// Decrypt without checking the GCM tag, accepting a frame only when its telegram's CRC is
    /// valid. This gives up authentication; the output says `"tag": "unchecked"`.
    #[arg(long, requires = "key")]
    no_tag_check: bool,
    /// After this many milliseconds without a byte, a telegram that sends no `!` is complete
    /// (for live input; a file ends at its end).
    #[arg(long, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    silence: Option<u64>,
    /// Print only telegrams a correct reader accepts (CRC valid, every line parsed).
    #[arg(long)]
    valid_only: bool,
}

pub fn run(args: Args) -> Result<Outcome> {
    let (mut input, name): (Box<dyn Read + Send>, String) = match &args.input {
        None => (Box::new(io::stdin()), "standard input".into()),
        Some(p) if p.as_os_str() == "-" => (Box::new(io::stdin()), "standard input".into()),
        Some(p) => {
            (Box::new(File::open(p).with_context(|| format!("cannot open {}", p.display()))?), p.display().to_string())
        }
    };
    let mut decoder = Decoder::new();
    if let Some(k) = args.key {
        decoder = decoder.with_key(k);
    }
    if let Some(k) = args.auth_key {
        decoder = decoder.with_auth_key(k);
    }
    if args.no_tag_check {
        decoder = decoder.without_tag_check();
    }
    let mut out = BufWriter::new(io::stdout().lock());
    let mut printer = Printer {
        json: args.json,
        valid_only: args.valid_only,
        index: 0,
        valid: 0,
        problems: 0,
        line: Vec::new(),
        error: None,
    };
    match args.silence {
        None => loop {
            let mut chunk = vec![0u8; 64 * 1024];
            match read_chunk(&mut input, &mut chunk, &name)? {
                0 => break,
                n => decoder.feed(&chunk[..n], |ev| printer.event(ev, &mut out)),
            }
            printer.check()?;
        },
        Some(ms) => {
            // A reader thread hands chunks over, so a pause on the line can be noticed.
            let (tx, rx) = mpsc::sync_channel::<io::Result<Vec<u8>>>(4);
            std::thread::spawn(move || {
                loop {
                    let mut chunk = vec![0u8; 64 * 1024];
                    let r = read_chunk(&mut input, &mut chunk, "").map(|n| {
                        chunk.truncate(n);
                        chunk
                    });
                    let end = r.as_ref().map_or(true, Vec::is_empty);
                    let _ = tx.send(r.map_err(|e| io::Error::other(format!("{e:#}"))));
                    if end {
                        break;
                    }
                }
            });
            loop {
                match rx.recv_timeout(Duration::from_millis(ms)) {
                    Ok(Ok(chunk)) if chunk.is_empty() => break,
                    Ok(Ok(chunk)) => decoder.feed(&chunk, |ev| printer.event(ev, &mut out)),
                    Ok(Err(e)) => return Err(e).with_context(|| format!("cannot read {name}")),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        decoder.silence(|ev| printer.event(ev, &mut out));
                        out.flush()?;
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
                printer.check()?;
            }
        }
    }
    decoder.finish(|ev| printer.event(ev, &mut out));
    printer.check()?;
    out.flush()?;
    let stats = decoder.stats();
    eprintln!(
        "p1sim decode: {} valid telegram(s), {} invalid, {} byte(s) skipped outside telegrams",
        printer.valid,
        printer.index - printer.valid,
        stats.garbage_bytes
    );
    if printer.valid == 0 {
        eprintln!("{}", nothing_valid(&name, stats.garbage_bytes, printer.index));
        return Ok(Outcome::Problems);
    }
    Ok(if printer.problems > 0 { Outcome::Problems } else { Outcome::Ok })
}

/// Why a decode found no valid telegram, and where to look next: the doctor, on the same bytes.
fn nothing_valid(name: &str, skipped: u64, telegrams: u64) -> String {
    if skipped == 0 && telegrams == 0 {
        return format!(
            "p1sim decode: no valid telegram: {name} was empty. `p1sim doctor PORT` listens to the reader's port \
             and says what to check when nothing arrives"
        );
    }
    let doctor = if name == "standard input" {
        "the same bytes piped into `p1sim doctor - --as BAUD-FRAMING`".to_string()
    } else {
        format!("`p1sim doctor --file {name} --as BAUD-FRAMING`")
    };
    format!(
        "p1sim decode: no valid telegram in {name}. Bytes without a telegram usually mean the wrong \
         reader setting (115200 8N1 for DSMR 4/5, e-MUCS, Smarty and Swedish meters; 9600 7E1 for DSMR \
         2.2/3) or a cable that does not invert the signal (docs/wiring.md). {doctor}, with the setting \
         the bytes were read at, names the cause and the fix"
    )
}

/// Reads what is there; 0 at the end of the input.
fn read_chunk(input: &mut dyn Read, chunk: &mut [u8], name: &str) -> Result<usize> {
    loop {
        return match input.read(chunk) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A terminal whose other side hung up (a PTY the meter closed, an unplugged USB
            // serial adapter) reports EIO: for a decoder that is the end of its input.
            Err(e) if is_hang_up(&e) => Ok(0),
            Err(e) => Err(e).with_context(|| format!("cannot read {name}")),
        };
    }
}

#[cfg(unix)]
fn is_hang_up(e: &io::Error) -> bool {
    e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error())
}

/// A Windows COM port whose adapter was unplugged reports an ordinary error, worth showing.
#[cfg(not(unix))]
fn is_hang_up(_e: &io::Error) -> bool {
    false
}

/// Formats events as they come; IO errors are kept and raised after the callback.
struct Printer {
    json: bool,
    valid_only: bool,
    /// Telegrams seen, valid or not.
    index: u64,
    valid: u64,
    problems: u64,
    line: Vec<u8>,
    error: Option<io::Error>,
}

impl Printer {
    fn check(&mut self) -> Result<()> {
        match self.error.take() {
            Some(e) => Err(e.into()),
            None => Ok(()),
        }
    }

    fn event(&mut self, ev: Event<'_>, out: &mut impl Write) {
        if self.error.is_some() {
            return;
        }
        let result = match ev {
            Event::Telegram(f) => self.telegram(&f, out),
            Event::Discarded { reason, bytes } => {
                if reason != Discard::Garbage {
                    self.problems += 1;
                    eprintln!("p1sim: discarded {bytes} byte(s): {}", describe(reason));
                }
                Ok(())
            }
        };
        if let Err(e) = result {
            self.error = Some(e);
        }
    }

    fn telegram(&mut self, f: &Frame<'_>, out: &mut impl Write) -> io::Result<()> {
        self.index += 1;
        let valid = f.is_valid();
        self.valid += u64::from(valid);
        if !valid {
            self.problems += 1;
            eprintln!("p1sim: telegram {} is invalid: {}", self.index, why_invalid(f));
        }
        if self.valid_only && !valid {
            return Ok(());
        }
        if self.json {
            self.line.clear();
            json::write_frame(f, &mut self.line);
            self.line.push(b'\n');
            out.write_all(&self.line)?;
            // Each telegram as it is decoded: `cat /dev/ttyUSB0 | p1sim decode` shows every one.
            return out.flush();
        }
        let crc = match (f.crc_text(), f.crc_ok()) {
            (Some(t), Some(true)) => format!("CRC {} ok", printable(t)),
            (Some(t), _) => format!("CRC {} BAD (computed {:04X})", printable(t), f.computed_crc()),
            (None, _) => "no CRC".to_string(),
        };
        let encrypted = match f.tag {
            Some(p1sim_core::decode::Tag::Unchecked) => ", decrypted without the tag check",
            Some(_) => ", decrypted",
            None => "",
        };
        let end = match f.end() {
            End::Marker => String::new(),
            e => format!(", no `!` (ended by {})", e.name()),
        };
        writeln!(
            out,
            "telegram {}: /{}  {crc}{encrypted}{end}, {} objects",
            self.index,
            printable(f.header()),
            f.objects().len()
        )?;
        for o in f.objects() {
            let values: Vec<String> = o
                .values()
                .map(|(t, u)| match u {
                    Some(u) => format!("{} {}", printable(t), printable(u)),
                    None => printable(t),
                })
                .collect();
            writeln!(out, "  {:<12} {}", printable(o.obis_text), values.join(" | "))?;
        }
        out.flush()
    }
}

/// Bytes from the wire as text a terminal shows as it is: printable ASCII as is, everything else
/// (escape sequences, control characters, bytes above 0x7E) as `\xNN`, so that no telegram can
/// move the cursor, retitle the window or change the terminal's colours.
fn printable(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7F).contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02X}"));
        }
    }
    s
}

fn why_invalid(f: &Frame<'_>) -> String {
    match (f.crc_ok(), f.crc_text(), f.bad_lines()) {
        (Some(false), Some(t), _) => {
            format!("CRC {} does not match the computed {:04X}", printable(t), f.computed_crc())
        }
        (_, _, n) if n > 0 => format!("{n} corrupted line(s)"),
        _ => "no CRC, but it carries DSMR 4+ objects that require one".to_string(),
    }
}

fn describe(reason: Discard) -> String {
    match reason {
        Discard::Garbage => "garbage".into(),
        Discard::Incomplete => "an incomplete telegram (cut off before its `!`)".into(),
        Discard::Overflow => "a telegram longer than the 64 KiB limit".into(),
        Discard::Undecryptable(e @ p1sim_core::smarty::FrameError::BadTag) => format!(
            "an encrypted frame that could not be decrypted: {e} (a meter with its own authentication key needs \
             --auth-key, or --no-tag-check to rely on the telegram's CRC)"
        ),
        Discard::Undecryptable(e) => format!("an encrypted frame that could not be decrypted: {e}"),
        Discard::NoKey => "an encrypted frame, but no --key was given".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_from_the_wire_never_reach_the_terminal_raw() {
        assert_eq!(printable(b"ISK5\\2M550T"), "ISK5\\2M550T");
        assert_eq!(printable(b"\x1b]0;pwned\x07"), "\\x1B]0;pwned\\x07");
        assert_eq!(printable(b"a\rb\xffc"), "a\\x0Db\\xFFc");
    }
}
