//! The command line: argument definitions, dispatch, and the exit-code contract.
//!
//! Exit codes: 0 success; 1 the command ran but found a problem (an invalid telegram, a failed
//! conformance case); 2 usage, input or IO errors; 130 stopped cleanly by a signal (`emit
//! --state`). A closed pipe (`p1sim emit | head`, `p1sim profiles --json | head`) ends quietly
//! with 0.

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod bench;
mod boards;
mod conformance;
mod decode;
mod doctor;
mod emit;
mod faults;
mod line;
mod profiles;
mod rig;
mod run;
mod wave;

/// Outcome of a command that ran to completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    /// Ran, and found something wrong (exit code 1).
    Problems,
    /// Stopped early by Ctrl-C or another signal, cleanly (exit code 130, as shells expect).
    Interrupted,
}

#[derive(Debug, Parser)]
#[command(
    name = "p1sim",
    version,
    about = "Smart-meter simulator and test rig for the P1 port (DSMR, e-MUCS, Swedish HAN, Smarty)",
    long_about = "p1sim generates telegrams that are byte-for-byte what a real meter of a given make sends, \
                  decodes them, emulates a meter live on a pseudo-terminal, TCP or a serial port, puts them on a \
                  simulated or real (RP2040 rig) P1 line with faults down to the bit, and checks decoders \
                  against a golden conformance suite.",
    after_help = "Examples:\n  \
                  p1sim profiles\n  \
                  p1sim emit --profile iskra-am550 --count 3\n  \
                  p1sim emit --profile kamstrup-162 --count 2 -o kamstrup.txt\n  \
                  p1sim run --profile iskra-am550 --tcp 127.0.0.1:2001\n  \
                  p1sim wave --profile kamstrup-162 --through transistor-inverter --vcd kamstrup.vcd\n  \
                  p1sim decode kamstrup.txt --json\n  \
                  p1sim doctor /dev/ttyUSB0\n  \
                  p1sim conformance --dut dsmr_parser\n  \
                  p1sim rig info /dev/ttyACM0\n  \
                  p1sim bench --board transistor-inverter-bc847"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Profiles(profiles::Args),
    Emit(emit::Args),
    Decode(decode::Args),
    Doctor(doctor::Args),
    Faults(faults::Args),
    Run(run::Args),
    Wave(wave::Args),
    Conformance(conformance::Args),
    Rig(rig::Args),
    Bench(bench::Args),
    Boards(boards::Args),
}

/// Runs the command line and maps the result onto an exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(Outcome::Ok) => ExitCode::SUCCESS,
        Ok(Outcome::Problems) => ExitCode::from(1),
        Ok(Outcome::Interrupted) => ExitCode::from(130),
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(io::stderr(), "p1sim: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Profiles(a) => profiles::run(a),
        Command::Emit(a) => emit::run(a),
        Command::Decode(a) => decode::run(a),
        Command::Doctor(a) => doctor::run(a),
        Command::Faults(a) => faults::run(a),
        Command::Run(a) => run::run(a),
        Command::Wave(a) => wave::run(a),
        Command::Conformance(a) => conformance::run(a),
        Command::Rig(a) => rig::run(a),
        Command::Bench(a) => bench::run(a),
        Command::Boards(a) => boards::run(a),
    }
}

/// Rust ignores SIGPIPE, so a reader closing the pipe shows up as an EPIPE write error; a
/// generator piped into `head` has simply done its job.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>().is_some_and(|io| io.kind() == io::ErrorKind::BrokenPipe)
            // serde_json keeps the IO error inside its own and does not list it as a source.
            || c.downcast_ref::<serde_json::Error>().is_some_and(|j| j.io_error_kind() == Some(io::ErrorKind::BrokenPipe))
    })
}

/// `--auth-key` and `--plaintext` of `emit` and `run`: the meter's authentication key, or its
/// telegrams sent unencrypted, as a decrypting proxy hands them on.
#[derive(Debug, Clone, Copy, clap::Args)]
pub(crate) struct EncryptionArgs {
    /// Authentication key of encrypted meters, 32 hex digits (default: the profile's; Smarty's
    /// is the published one).
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    auth_key: Option<[u8; 16]>,
    /// Send an encrypted meter's telegrams unencrypted, as a decrypting proxy passes them on to
    /// readers (Home Assistant's `5L` for Smarty).
    #[arg(long, conflicts_with = "auth_key")]
    plaintext: bool,
}

/// How to read a capture: shared by `profiles learn` and `conformance corpus add`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct CaptureArgs {
    /// A regular expression matching the log prefix at the start of each line, removed before
    /// reading; a named group `time` (RFC 3339 or `YYYY-MM-DD HH:MM:SS`) gives when it was logged.
    #[arg(long, value_name = "REGEX")]
    pub strip_prefix: Option<String>,
    /// The Smarty key, for a capture of encrypted frames (32 hex digits).
    #[arg(long, value_name = "HEX", value_parser = parse_key)]
    pub key: Option<[u8; 16]>,
    /// The meter's own authentication key (32 hex digits), where it is not Smarty's published one.
    #[arg(long, value_name = "HEX", value_parser = parse_key, requires = "key")]
    pub auth_key: Option<[u8; 16]>,
}

impl CaptureArgs {
    pub(crate) fn options(&self) -> crate::capture::ReadOptions {
        crate::capture::ReadOptions { strip_prefix: self.strip_prefix.clone(), key: self.key, auth_key: self.auth_key }
    }
}

impl EncryptionArgs {
    /// The meter's own authentication key, if given.
    pub(crate) fn auth_key(&self) -> Option<[u8; 16]> {
        self.auth_key
    }

    /// Refuses `--plaintext` for `--replay`, which sends the captured frames as recorded.
    pub(crate) fn refuse_for_replay(&self) -> anyhow::Result<()> {
        if self.plaintext {
            anyhow::bail!("--replay sends the captured frames as recorded: drop --plaintext");
        }
        Ok(())
    }

    /// Applies the options to the profile the meter is built from.
    pub(crate) fn apply(&self, profile: &mut p1sim_core::profile::Profile) -> anyhow::Result<()> {
        if (self.plaintext || self.auth_key.is_some()) && profile.encryption.is_none() {
            anyhow::bail!(
                "{}: profile {} sends no encrypted frames",
                if self.plaintext { "--plaintext" } else { "--auth-key" },
                profile.name
            );
        }
        if self.plaintext {
            profile.encryption = None;
        }
        if let (Some(k), Some(e)) = (self.auth_key, profile.encryption.as_mut()) {
            e.auth_key = k;
        }
        Ok(())
    }
}

/// Refuses `--key` for a meter that encrypts nothing, rather than ignore it silently.
pub(crate) fn refuse_needless_key(key: Option<[u8; 16]>, profile: &p1sim_core::profile::Profile) -> anyhow::Result<()> {
    if key.is_some() && profile.encryption.is_none() {
        anyhow::bail!(
            "--key: profile {} sends no encrypted frames{}; leave --key out",
            profile.name,
            if profile.name.ends_with("-plaintext") {
                ""
            } else {
                " (with --plaintext, neither does an encrypted one)"
            }
        );
    }
    Ok(())
}

/// Parses `--key`.
pub(crate) fn parse_key(hex: &str) -> Result<[u8; 16], String> {
    p1sim_core::smarty::parse_key(hex)
        .ok_or_else(|| "expected the 16-byte key as 32 hex digits, e.g. 000102030405060708090A0B0C0D0E0F".to_string())
}
