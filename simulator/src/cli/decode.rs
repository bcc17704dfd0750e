//! `p1sim decode`: the reference decoder on a file or standard input.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::PathBuf;

use anyhow::{Context, Result};
use p1sim_core::decode::{Decoder, Discard, Event, Frame, json};

use super::Outcome;

/// Decode telegrams from a file or standard input.
///
/// Bytes may arrive in any chunking; the decoder resyncs on `/`, skips garbage and incomplete
/// telegrams, checks the CRC where one is carried, joins the DSMR 2.2/3 two-line gas record and
/// decrypts Smarty frames given the key. Exit status: 0 when every telegram is valid, 1 when any
/// is not (bad CRC, corrupted line, cut off), 2 on usage or IO errors.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim decode capture.txt\n  \
    p1sim emit --profile iskra-am550 --count 3 | p1sim decode --json\n  \
    p1sim decode smarty.bin --key 000102030405060708090A0B0C0D0E0F --json\n  \
    cat /dev/ttyUSB0 | p1sim decode -")]
pub struct Args {
    /// Input file; `-` or nothing reads standard input.
    #[arg(value_name = "FILE|-")]
    input: Option<PathBuf>,
    /// One JSON object per telegram: {"header", "crc", "crc_ok", "objects": [{"obis", "values": [{"value", "unit"}]}]}.
    #[arg(long)]
    json: bool,
    /// Smarty decryption key, 32 hex digits.
    #[arg(long, value_name = "HEX", value_parser = super::parse_key)]
    key: Option<[u8; 16]>,
    /// Print only telegrams a correct reader accepts (CRC valid, every line parsed).
    #[arg(long)]
    valid_only: bool,
}

pub fn run(args: Args) -> Result<Outcome> {
    let (mut input, name): (Box<dyn Read>, String) = match &args.input {
        None => (Box::new(io::stdin().lock()), "standard input".into()),
        Some(p) if p.as_os_str() == "-" => (Box::new(io::stdin().lock()), "standard input".into()),
        Some(p) => {
            (Box::new(File::open(p).with_context(|| format!("cannot open {}", p.display()))?), p.display().to_string())
        }
    };
    let mut decoder = Decoder::new();
    if let Some(k) = args.key {
        decoder = decoder.with_key(k);
    }
    let mut out = BufWriter::new(io::stdout().lock());
    let mut printer =
        Printer { json: args.json, valid_only: args.valid_only, index: 0, problems: 0, line: Vec::new(), error: None };
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match input.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // A terminal whose other side hung up (a PTY the meter closed, an unplugged USB
            // serial adapter) reports EIO: for a decoder that is the end of its input.
            Err(e) if e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) => break,
            Err(e) => return Err(e).with_context(|| format!("cannot read {name}")),
        };
        decoder.feed(&chunk[..n], |ev| printer.event(ev, &mut out));
        printer.check()?;
    }
    decoder.finish(|ev| printer.event(ev, &mut out));
    printer.check()?;
    out.flush()?;
    let stats = decoder.stats();
    if stats.garbage_bytes > 0 {
        eprintln!("p1sim: skipped {} garbage byte(s) outside telegrams", stats.garbage_bytes);
    }
    Ok(if printer.problems > 0 { Outcome::Problems } else { Outcome::Ok })
}

/// Formats events as they come; IO errors are kept and raised after the callback.
struct Printer {
    json: bool,
    valid_only: bool,
    index: u64,
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
        let encrypted = if f.encrypted.is_some() { ", decrypted" } else { "" };
        writeln!(
            out,
            "telegram {}: /{}  {crc}{encrypted}, {} objects",
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
        Discard::Undecryptable(e) => format!("a Smarty frame that could not be decrypted: {e}"),
        Discard::NoKey => "a Smarty frame, but no --key was given".into(),
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
