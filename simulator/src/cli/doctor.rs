//! `p1sim doctor`: why a P1 cable or board gives garbage, from the bytes it reads.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, bail};
use p1sim_core::spec::LineSettings;

use super::Outcome;
use crate::bench::readback::RequestVia;
use crate::doctor::listen::{Options, Source, examine};
use crate::doctor::report;

/// Say why a P1 cable or board gives garbage, from the bytes it reads.
///
/// Reads what a P1 reader captures (a serial port, a TCP serial bridge, a file or standard input)
/// and names the likely causes, most likely first, each with the evidence and the fix: ok,
/// no-signal, inverted, wrong-baud, parity-as-data, wrong-framing, bit-errors, partial-telegrams,
/// encrypted, not-dsmr. It decodes the bytes at the setting they were read at and, where no
/// telegram comes out, runs p1sim's wire model (its interface boards and UART receiver) for
/// every wiring and setting to see which would deliver bytes like these.
///
/// A serial port without --as is probed at 115200-8N1, then 9600-7E1 and 115200-7E1, stopping at
/// the first setting that explains what arrives; a live source is listened to until one whole
/// telegram (or burst of garbage) has arrived, at most 11 s per setting.
///
/// Exit status: 0 when the capture is ok, 1 when a problem was found, 2 when the source cannot be
/// opened or read (the message says why and what to do).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim doctor /dev/ttyUSB0\n  \
    p1sim doctor /dev/ttyUSB0 --as 9600-7E1 --request rts\n  \
    p1sim doctor --file capture.bin --as 115200-8N1 --json\n  \
    cat /dev/ttyUSB0 | p1sim doctor - --as 115200-8N1\n  \
    p1sim doctor tcp://192.168.1.40:23 --as 115200-8N1\n  \
    p1sim emit --profile kamstrup-162 --count 3 --through direct-no-inverter --receiver 9600-7E1 | p1sim doctor - --as 9600-7E1")]
pub struct Args {
    /// A serial port (/dev/ttyUSB0), tcp://HOST:PORT (ser2net, an ESP bridge), or - for standard input.
    #[arg(value_name = "SOURCE")]
    source: Option<String>,
    /// A capture file: what `cat /dev/ttyUSB0 > capture.bin` or a terminal program logged.
    #[arg(long, value_name = "FILE")]
    file: Option<PathBuf>,
    /// The setting the bytes were read at, BAUD-FRAMING: e.g. 115200-8N1, 9600-7E1. Without it a
    /// serial port is probed, and other sources are taken as read at 115200-8N1.
    #[arg(long = "as", value_name = "BAUD-FRAMING", value_parser = parse_setting)]
    read_as: Option<LineSettings>,
    /// Raise this modem line of the serial adapter as the P1 Request (RJ12 pin 2), for cables wired so.
    #[arg(long, value_enum, value_name = "LINE")]
    request: Option<RequestVia>,
    /// The verdict as JSON: {"schema_version": 1, "as", "bytes", "telegrams", "crc_ok",
    /// "causes": [{"cause", "confidence", "evidence", "fix"}], "meter": {...}, "notes"}.
    #[arg(long)]
    json: bool,
    /// Decryption key of encrypted frames (Smarty, Austria's T210-D-r), 32 hex digits.
    #[arg(long, value_name = "HEX", value_parser = super::parse_key)]
    key: Option<[u8; 16]>,
    /// Listen to a live source for this many seconds instead of stopping at the first verdict
    /// (for error rates over a longer stretch).
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    listen: Option<u64>,
}

/// `115200-8N1`: a baud rate and a framing.
fn parse_setting(s: &str) -> Result<LineSettings, String> {
    const EXPECTED: &str = "expected BAUD-FRAMING, e.g. 115200-8N1 or 9600-7E1";
    let (baud, framing) = s.split_once('-').ok_or(EXPECTED)?;
    let baud: u32 = baud.parse().map_err(|_| format!("{EXPECTED}: {baud:?} is not a baud rate"))?;
    if !p1sim_core::wire::BAUD_RANGE.contains(&baud) {
        return Err(format!("{EXPECTED}: {baud} baud is outside 50-5000000"));
    }
    let framing = framing.parse().map_err(|e| format!("{EXPECTED}: {e}"))?;
    Ok(LineSettings { baud, framing })
}

pub fn run(args: Args) -> Result<Outcome> {
    let source = Source::parse(args.source.as_deref(), args.file.as_deref())?;
    if args.request.is_some() && !matches!(source, Source::Serial(_)) {
        bail!("--request raises a modem line of a serial port; {} has none", source.describe());
    }
    let opts = Options {
        read_as: args.read_as,
        request: args.request,
        listen: args.listen.map(Duration::from_secs),
        key: args.key,
    };
    let diagnosis = examine(&source, &opts)?;
    let out = if args.json { report::json(&diagnosis) } else { report::text(&diagnosis, &source.describe()) };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", out.trim_end())?;
    stdout.flush()?;
    Ok(if diagnosis.is_ok() { Outcome::Ok } else { Outcome::Problems })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_as_baud_and_framing() {
        assert_eq!(parse_setting("9600-7E1").unwrap().to_string(), "9600 7E1");
        assert_eq!(parse_setting("115200-8N1").unwrap().to_string(), "115200 8N1");
        for bad in ["115200", "fast-8N1", "115200-8X1", "0-8N1", "115200-8N1-inv"] {
            assert!(parse_setting(bad).unwrap_err().contains("BAUD-FRAMING"), "{bad}");
        }
    }
}
