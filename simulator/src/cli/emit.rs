//! `p1sim emit`: consecutive telegrams of a simulated meter, as bytes, without waiting.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::PathBuf;

use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::Outcome;
use crate::emit::{EmitPlan, End, Until, emit};
use crate::start::{DEFAULT_START, parse_duration, parse_start};
use crate::state::StateLock;

/// Write the telegrams a meter would send, exactly as they appear on the wire.
///
/// The simulated clock advances by the profile's interval from one telegram to the next, with
/// no sleeping. The same arguments always give byte-identical output.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim emit --profile iskra-am550 --count 3\n  \
    p1sim emit --profile sagemcom-t210d --start 2026-10-25T00:30:00Z --duration 2h -o dst.txt\n  \
    p1sim emit --profile kamstrup-162 --seed 7 --count 10 | p1sim decode --json\n  \
    p1sim emit --profile sagemcom-t210d-lu --key 000102030405060708090A0B0C0D0E0F -o smarty.bin\n  \
    p1sim emit --profile sagemcom-t210d-lu --key 000102030405060708090A0B0C0D0E0F --auth-key 5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A5A\n  \
    p1sim emit --profile sagemcom-t210d-lu --plaintext --count 2       # what a decrypting proxy passes on\n  \
    p1sim emit --profile iskra-mt382-no-end-marker --count 2            # telegrams without `!`\n  \
    p1sim emit --profile iskra-am550 --seed 7 --household equipment_id=E0044007382246019\n  \
    p1sim emit --profile ./my-meter.toml --count 1\n  \
    p1sim emit --profile iskra-am550 --household solar_kwp=5 --household ev=true --duration 1d -o day.txt\n  \
    p1sim emit --profile iskra-am550 --events evening.toml --duration 3h\n  \
    p1sim emit --profile iskra-am550 --count 60 --state meter.json   # run it twice: the meter continues\n  \
    p1sim emit --profile kamstrup-162 --through transistor-inverter      # what the reader's UART gets\n  \
    p1sim emit --profile kamstrup-162 --through direct-no-inverter       # the garbage of a cable without inverter\n  \
    p1sim emit --profile kamstrup-162 --receiver 9600-8N1                # 7E1 read as 8N1: parity in bit 7\n  \
    p1sim emit --profile iskra-am550 --through ftdi-inverted --receiver 115200-8N1 --skew 4.5\n  \
    p1sim emit --replay my-meter.txt --retime --faults crc-errors -o replayed.txt\n\n\
With --through, --receiver or a bit-level fault the telegrams go onto a simulated P1 line and the output is \
what the reader's UART delivers, as a Linux tty in raw mode does (flagged characters as received, a break as \
NUL); the counts of framing errors, parity errors and breaks go to stderr, and the exit code is 1 unless the \
reader got the telegrams intact.")]
pub struct Args {
    /// A shipped profile name (see `p1sim profiles`) or the path of a profile TOML file; with
    /// --replay, learned from the capture when not given.
    #[arg(long, short = 'p', value_name = "NAME|PATH", required_unless_present = "replay")]
    profile: Option<String>,
    #[command(flatten)]
    replay: super::run::ReplayArgs,
    /// Number of telegrams [default: 1; with --replay, the whole capture].
    #[arg(long, short = 'n', value_name = "N", conflicts_with = "duration")]
    count: Option<u64>,
    /// Simulated time to cover instead of a count, e.g. 90s, 3h, 2d or 1h30m.
    #[arg(long, value_name = "SPAN")]
    duration: Option<String>,
    /// Seed of the simulated household; the same seed gives the same meter.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Instant of the first telegram: RFC 3339, a local date or time of the meter (2026-01-15,
    /// 2026-01-15T07:00), or `now`; rounded up to the interval.
    #[arg(long, value_name = "TIME", default_value = DEFAULT_START)]
    start: String,
    /// Encryption key, 32 hex digits (needed by encrypted profiles: Smarty, Austria).
    #[arg(long, value_name = "HEX", value_parser = super::parse_key)]
    key: Option<[u8; 16]>,
    #[command(flatten)]
    encryption: super::EncryptionArgs,
    /// Write to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    output: Option<PathBuf>,
    /// Apply a fault scenario: a shipped name (see `p1sim faults`) or a scenario TOML file.
    #[arg(long, value_name = "NAME|FILE")]
    faults: Option<String>,
    /// Write one JSON line per faulted telegram (what was done, what a decoder should make of it).
    #[arg(long, value_name = "FILE", requires = "faults")]
    fault_log: Option<PathBuf>,
    /// Override a household parameter, e.g. solar_kwp=4.5, ev=true, annual_kwh=5000 (repeatable).
    #[arg(long = "household", value_name = "KEY=VALUE")]
    household: Vec<String>,
    /// Script the household: a TOML file of [[events]] (set-load, start-charging, power-failure, ...).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Resume the meter saved in this file (if it exists) and save it again at the end.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    #[command(flatten)]
    line: super::line::LineArgs,
}

pub fn run(args: Args) -> Result<Outcome> {
    let (mut profile, replay) = args.replay.resolve(args.profile.as_deref(), args.key, args.encryption.auth_key())?;
    if replay.is_some() {
        args.encryption.refuse_for_replay()?;
    }
    args.encryption.apply(&mut profile)?;
    super::refuse_needless_key(args.key, &profile)?;
    let start = parse_start(&args.start, profile.clock.zone.tz())?;
    let until = match (args.count, &args.duration) {
        (Some(n), _) => Until::Count(n),
        (None, Some(d)) => Until::Span(parse_duration(d)?),
        (None, None) if replay.is_some() => Until::Count(u64::MAX),
        (None, None) => Until::Count(1),
    };
    if replay.is_some() {
        if until == Until::Count(u64::MAX) && args.replay.is_looped() {
            bail!("--replay --loop never ends: give --count or --duration");
        }
        if args.state.is_some() || args.events.is_some() || !args.household.is_empty() {
            bail!("--replay sends recorded telegrams: --state, --events and --household do not apply");
        }
    }
    if until == Until::Count(0) {
        bail!("--count 0 emits nothing; give at least 1");
    }
    let faults = args.faults.as_deref().map(p1sim_core::builtin::scenario).transpose()?;
    let household = crate::household::apply_overrides(&profile.household, &args.household)?;
    let events = args.events.as_deref().map(p1sim_core::events::load).transpose()?.unwrap_or_default();
    // Held until the end: another run or emit on the same file is refused meanwhile.
    let lock = args.state.as_deref().map(StateLock::acquire).transpose()?;
    let resume = match &args.state {
        Some(path) => crate::state::load(path, &profile, args.seed)?,
        None => None,
    };
    // With a state to keep, Ctrl-C (or a closed terminal) stops after the telegram being written
    // and saves the state of what was written.
    let stop = lock
        .as_ref()
        .map(|_| {
            let grace = (Duration::from_secs(2), "p1sim emit: interrupted while writing; the state is not saved");
            crate::signals::flag_on_stop(Some(grace)).context("cannot watch for signals")
        })
        .transpose()?;
    let wire_plan = faults.as_ref().and_then(|s| s.wire.clone());
    let wire = wire_plan.as_ref();
    let plan =
        EmitPlan { household, profile, seed: args.seed, start, key: args.key, until, faults, events, resume, stop };
    if let Some(replay) = replay {
        return emit_replay(&args, plan, replay, wire);
    }
    let mut log = match &args.fault_log {
        Some(path) => {
            Some(BufWriter::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?))
        }
        None => None,
    };
    let mut log_error = None;
    let emission;
    let outcome;
    let on_fault = |rec: crate::emit::FaultRecord| {
        if let Some(w) = log.as_mut()
            && let Err(e) =
                serde_json::to_writer(&mut *w, &rec).map_err(io::Error::from).and_then(|_| w.write_all(b"\n"))
        {
            log_error.get_or_insert(e);
        }
    };
    let flushed = match &args.output {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = BufWriter::new(file);
            (emission, outcome) =
                super::line::emit_via(&args.line, wire, &plan.profile, &mut w, |mut w| emit(&plan, &mut w, on_fault))?;
            w.flush().with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut w = BufWriter::new(io::stdout().lock());
            (emission, outcome) =
                super::line::emit_via(&args.line, wire, &plan.profile, &mut w, |mut w| emit(&plan, &mut w, on_fault))?;
            w.flush().context("cannot write the telegrams")
        }
    };
    // Saved whatever happened to the output: the state is at or after every telegram written.
    if let Some(path) = &args.state {
        crate::state::save(path, &emission.state)?;
    }
    drop(lock);
    match emission.end {
        End::Done => {}
        End::Interrupted => {
            eprintln!(
                "p1sim emit: interrupted after {} telegram(s); the state is saved{}",
                emission.count,
                args.state.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default()
            );
            return Ok(Outcome::Interrupted);
        }
        End::WriteFailed(e) => return Err(e).context("cannot write the telegrams"),
        End::FrameCounterExhausted => bail!(
            "the Smarty frame counter is used up after {} telegram(s): another frame would reuse an AES-GCM \
             nonce under the same key. Start a new meter (another --state file) or change the key",
            emission.count
        ),
    }
    flushed?;
    if let Some(e) = log_error {
        return Err(e).context("cannot write the fault log");
    }
    if let (Some(w), Some(path)) = (log.as_mut(), &args.fault_log) {
        w.flush().with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(outcome)
}

/// Writes a capture's telegrams (`--replay`), with the scenario's faults, to the output.
fn emit_replay(
    args: &Args,
    plan: EmitPlan,
    mut replay: crate::replay::Replay,
    wire: Option<&p1sim_core::wire::FaultPlan<Vec<p1sim_core::wire::BitFault>>>,
) -> Result<Outcome> {
    let write = |w: &mut dyn Write| -> Result<u64> {
        let mut written = 0u64;
        let mut at = plan.start;
        while !replay.finished() {
            match plan.until {
                Until::Count(n) if written >= n => break,
                Until::Span(s) if at >= plan.start + s as i64 => break,
                _ => {}
            }
            if let Some(due) = replay.due(at) {
                let mut bytes = due.bytes;
                let faults = plan.faults.as_ref().map(|s| s.selected(plan.seed, written, at)).unwrap_or_default();
                if !faults.is_empty() {
                    if due.encrypted {
                        p1sim_core::fault::apply_to_bytes(&mut bytes, &faults, plan.seed, written, false);
                    } else {
                        bytes = p1sim_core::fault::apply(&due.model, &faults, plan.seed, written).bytes;
                    }
                }
                w.write_all(&bytes).context("cannot write the telegrams")?;
                written += 1;
            }
            at += 1;
        }
        Ok(written)
    };
    let outcome = match &args.output {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = BufWriter::new(file);
            let (_, outcome) = super::line::emit_via(&args.line, wire, &plan.profile, &mut w, write)?;
            w.flush().with_context(|| format!("cannot write {}", path.display()))?;
            outcome
        }
        None => {
            let mut w = BufWriter::new(io::stdout().lock());
            let (_, outcome) = super::line::emit_via(&args.line, wire, &plan.profile, &mut w, write)?;
            w.flush()?;
            outcome
        }
    };
    Ok(outcome)
}
