//! `p1sim run`: a live meter (or a fleet) on a pseudo-terminal, TCP or a serial port, at the
//! meter's own pace, until Ctrl-C.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use p1sim_core::Framing;
use p1sim_core::generator::Generator;

use super::Outcome;
use crate::capture::{self, ReadOptions};
use crate::live::activity::Verbosity;
use crate::live::pacer::Pace;
use crate::live::serial::RequestPin;
use crate::live::{FleetPhase, Plan};
use crate::replay::{self, Replay, Timing};
use crate::start::parse_start;
use p1sim_core::profile::Profile;

/// Emulate a meter live: telegrams on each interval boundary, bytes at the line rate.
///
/// Point Home Assistant, dsmr_parser, ESPHome, dsmr-reader or your own firmware at it as if a
/// meter were plugged in. Without an output option it creates a pseudo-terminal linked at
/// ./p1-meter. Several outputs can run at once; all send the same telegrams.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim run --profile iskra-am550                      # PTY at ./p1-meter\n  \
    p1sim run --profile sagemcom-t211-be --tcp 127.0.0.1:2001 --control 127.0.0.1:8337\n  \
    p1sim run --profile kamstrup-162 --pty /tmp/p1 --as-seen-by 8N1   # a wrongly set reader\n  \
    p1sim run --profile iskra-am550 --serial /dev/ttyUSB0 --request cts\n  \
    p1sim run --profile iskra-am550 --state meter.json   # counters survive restarts\n  \
    p1sim run --profile iskra-am550 --fleet 1000 --tcp 127.0.0.1:20000\n  \
    p1sim run --profile iskra-am550 --rig /dev/ttyACM0 --capture board.bin\n  \
    p1sim run --replay my-meter.txt --tcp 2001 --loop            # a capture, again and again\n  \
    p1sim run --replay evening.log --strip-prefix '^(?P<time>\\S+ \\S+) ' --timing recorded --retime")]
pub struct Args {
    /// A shipped profile name (see `p1sim profiles`) or the path of a profile TOML file; with
    /// --replay, learned from the capture when not given.
    #[arg(long, short = 'p', value_name = "NAME|PATH", required_unless_present = "replay")]
    profile: Option<String>,
    #[command(flatten)]
    replay: ReplayArgs,
    /// Create a pseudo-terminal and a symlink to it.
    #[arg(long, value_name = "LINK", num_args = 0..=1, default_missing_value = "./p1-meter")]
    pty: Option<PathBuf>,
    /// Serve raw TCP clients on this address (PORT alone means 127.0.0.1:PORT; port 0 picks one).
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    tcp: Option<SocketAddr>,
    /// Send on a serial port, with the profile's baud rate and framing.
    #[arg(long, value_name = "DEV")]
    serial: Option<String>,
    /// The serial port input wired to the P1 Request line: send only while it is asserted.
    #[arg(long, value_enum, default_value_t = RequestPin::None, requires = "serial")]
    request: RequestPin,
    /// Seed of the simulated household (fleet meter i gets seed S+i).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run the simulated clock this many times faster (line pacing stays physical unless --pace burst).
    #[arg(long, value_name = "X", default_value_t = 1.0, value_parser = parse_speed)]
    speed: f64,
    /// `line`: bytes at the line rate; `burst`: each telegram in one write at its start.
    /// Default: line, and burst with --fleet (a backend under test does not care about byte timing).
    #[arg(long, value_enum)]
    pace: Option<PaceArg>,
    /// With --pace line, write at most every this many milliseconds (default 1; 10 with --fleet).
    #[arg(long, value_name = "MS")]
    tick_ms: Option<u64>,
    /// Save the meter's state here at every telegram and resume from it on the next run.
    #[arg(long, value_name = "FILE")]
    state: Option<PathBuf>,
    /// Encryption key, 32 hex digits (needed by encrypted profiles: Smarty, Austria).
    #[arg(long, value_name = "HEX", value_parser = super::parse_key)]
    key: Option<[u8; 16]>,
    #[command(flatten)]
    encryption: super::EncryptionArgs,
    /// First simulated instant: RFC 3339, or a local date or time of the meter (2026-01-15);
    /// default: now, so telegrams carry the wall-clock time.
    #[arg(long, value_name = "TIME", default_value = "now")]
    start: String,
    /// On PTY and TCP: the framing of the reader (e.g. 8N1 to show what a reader wrongly set to
    /// 8N1 gets from a 7E1 meter). Default: the profile's, as a correctly set reader sees it.
    #[arg(long, value_name = "FRAMING", value_parser = parse_framing)]
    as_seen_by: Option<Framing>,
    /// Most TCP clients at once (per meter). When all places are taken, a newcomer replaces the
    /// client that has been stuck longest (its queue full, missing telegrams); if every client
    /// keeps up, the newcomer is closed on connect. A client whose queue stays full for three
    /// intervals (at least 2 s) is disconnected, and one that closes its side is let go at once.
    /// /status counts each case.
    #[arg(long, value_name = "N", default_value_t = 64)]
    max_clients: usize,
    /// Telegrams a TCP client may have waiting; a client further behind misses whole telegrams.
    #[arg(long, value_name = "N", default_value_t = 4)]
    client_queue: usize,
    /// Serve the HTTP/JSON control API here (loopback only), e.g. 127.0.0.1:8337.
    #[arg(long, value_name = "ADDR", value_parser = parse_addr)]
    control: Option<SocketAddr>,
    /// Start with the PTY/TCP Request line dropped (raise it through the control API).
    #[arg(long)]
    request_low: bool,
    /// Print the activity log (a line per telegram, clients, Request, control commands) even
    /// when standard output is not a terminal.
    #[arg(short, long, conflicts_with = "quiet")]
    verbose: bool,
    /// No activity log: only the banner and warnings.
    #[arg(short, long)]
    quiet: bool,
    /// Run N meters, meter i on TCP port PORT+i with seed S+i.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "tcp")]
    fleet: usize,
    /// How fleet meters are placed within the interval.
    #[arg(long, value_enum, default_value_t = FleetPhase::Spread)]
    fleet_phase: FleetPhase,
    /// Override a household parameter, e.g. solar_kwp=4.5, ev=true (repeatable).
    #[arg(long = "household", value_name = "KEY=VALUE")]
    household: Vec<String>,
    /// Script the household: a TOML file of [[events]] (set-load, start-charging, power-failure, ...).
    #[arg(long, value_name = "FILE")]
    events: Option<PathBuf>,
    /// Apply a fault scenario to the telegrams: a shipped name (see `p1sim faults`) or a TOML file.
    #[arg(long, value_name = "FILE|NAME")]
    faults: Option<String>,
    /// Send the telegrams through the RP2040 rig on this serial device (a real inverted, open
    /// collector P1 line for an interface board; the scenario's [wire] bit faults apply).
    #[arg(long, value_name = "DEV")]
    rig: Option<String>,
    /// Whether the rig obeys the board's Request line.
    #[arg(long, value_enum, default_value_t = RigRequest::Honour, requires = "rig")]
    rig_request: RigRequest,
    /// Write the bytes the board under test delivered to the rig's capture input to FILE.
    #[arg(long, value_name = "FILE", requires = "rig")]
    capture: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum RigRequest {
    /// Send only while the board holds Request high, as a meter does.
    Honour,
    /// Send whatever Request does (boards that never raise it).
    Ignore,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum PaceArg {
    Line,
    Burst,
}

/// `PORT` (on 127.0.0.1), `IP:PORT`, or `HOST:PORT` with a host name (`localhost:2001`),
/// resolved once, IPv4 first.
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(addr) = text.parse() {
        return Ok(addr);
    }
    let expected = "expected HOST:PORT such as 127.0.0.1:2001 or localhost:2001, or a port";
    if !text.rsplit_once(':').is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok()) {
        return Err(format!("{text:?}: {expected}"));
    }
    let found: Vec<SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(text)
        .map_err(|e| format!("{text:?}: cannot resolve the host name ({e}); {expected}"))?
        .collect();
    found
        .iter()
        .find(|a| a.is_ipv4())
        .or(found.first())
        .copied()
        .ok_or_else(|| format!("{text:?}: the host name has no address; {expected}"))
}

/// The slowest `--speed`: a 10 s meter then sends every 10,000 s (under 3 hours).
const MIN_SPEED: f64 = 0.001;
const MAX_SPEED: f64 = 1_000_000.0;

fn parse_speed(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(x) if x.is_finite() && (MIN_SPEED..=MAX_SPEED).contains(&x) => Ok(x),
        _ => Err(format!("{text:?}: expected a factor from {MIN_SPEED} to {MAX_SPEED}, e.g. 1, 10 or 0.5")),
    }
}

fn parse_framing(text: &str) -> Result<Framing, String> {
    text.parse::<Framing>().map_err(|e| e.to_string())
}

pub fn run(args: Args) -> Result<Outcome> {
    let (mut profile, replay) = args.replay.resolve(args.profile.as_deref(), args.key, args.encryption.auth_key())?;
    if replay.is_some() {
        if args.fleet > 1 || args.state.is_some() {
            bail!("--replay sends one recorded meter: drop --fleet and --state");
        }
        args.encryption.refuse_for_replay()?;
    }
    args.encryption.apply(&mut profile)?;
    super::refuse_needless_key(args.key, &profile)?;
    profile.household = crate::household::apply_overrides(&profile.household, &args.household)?;
    let events = args.events.as_deref().map(p1sim_core::events::load).transpose()?.unwrap_or_default();
    let start = if args.start == "now" { None } else { Some(parse_start(&args.start, profile.clock.zone.tz())?) };
    if args.fleet == 0 {
        bail!("--fleet 0 runs nothing; give at least 1");
    }
    if args.fleet > 1 && profile.household.equipment_id.is_some() {
        bail!(
            "--household equipment_id gives every fleet meter the same id; drop it (fleet meters derive theirs from their seeds)"
        );
    }
    if args.max_clients == 0 {
        bail!("--max-clients 0 would refuse every client; give at least 1");
    }
    let tick = Duration::from_millis(args.tick_ms.unwrap_or(if args.fleet > 1 { 10 } else { 1 }).max(1));
    let pace = match args.pace.unwrap_or(if args.fleet > 1 { PaceArg::Burst } else { PaceArg::Line }) {
        PaceArg::Line => Pace::Line { tick },
        PaceArg::Burst => Pace::Burst,
    };
    let any_output = args.pty.is_some() || args.tcp.is_some() || args.serial.is_some() || args.rig.is_some();
    if args.rig.is_some() && args.fleet > 1 {
        bail!("--rig drives one rig with one meter; drop --fleet");
    }
    let rig = args.rig.map(|device| crate::rig::output::RigPlan {
        device,
        request: match args.rig_request {
            RigRequest::Honour => p1sim_core::rig::RequestMode::Honour,
            RigRequest::Ignore => p1sim_core::rig::RequestMode::Ignore,
        },
        capture: args.capture,
    });
    let faults = args.faults.as_deref().map(p1sim_core::builtin::scenario).transpose()?;
    let plan = Plan {
        seed: args.seed,
        key: args.key,
        start,
        speed: args.speed,
        pace,
        as_seen_by: args.as_seen_by,
        pty: if any_output { args.pty.map(Some) } else { Some(Some(PathBuf::from("./p1-meter"))) },
        tcp: args.tcp,
        serial: args.serial.map(|d| (d, args.request)),
        rig,
        control: args.control,
        state: args.state,
        max_clients: args.max_clients,
        client_queue: args.client_queue,
        fleet: args.fleet,
        fleet_phase: args.fleet_phase,
        faults,
        events,
        request: !args.request_low,
        verbosity: Verbosity::from_flags(args.quiet, args.verbose),
        profile,
        replay,
    };
    crate::live::activity::init(plan.verbosity);
    warn_if_line_too_slow(&plan);
    crate::live::run(plan).context("p1sim run")?;
    Ok(Outcome::Ok)
}

/// At high `--speed` a telegram can outlast the interval; the line then skips telegrams.
fn warn_if_line_too_slow(plan: &Plan) {
    if plan.pace == Pace::Burst {
        return;
    }
    // Measure a real telegram of this meter rather than guessing its size.
    let start = plan.start.unwrap_or(1_767_225_600);
    let Ok(mut g) = Generator::new(plan.profile.clone(), plan.profile.household.clone(), plan.seed, start, plan.key)
    else {
        return;
    };
    let mut bytes = Vec::new();
    g.next_into(&mut bytes);
    let wall_interval = f64::from(plan.profile.interval_s) / plan.speed;
    let telegram_s = bytes.len() as f64 * plan.profile.line.char_time_ns() as f64 / 1e9;
    if telegram_s > wall_interval {
        eprintln!(
            "p1sim run: note: at --speed {} an interval lasts {:.3} s, shorter than a {} B telegram at {} \
             ({:.3} s); the line will skip telegrams. Use --pace burst to send every one.",
            plan.speed,
            wall_interval,
            bytes.len(),
            plan.profile.line,
            telegram_s
        );
    }
}

/// `--replay CAPTURE` and how: shared by `run` and `emit`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReplayArgs {
    /// Send the telegrams of this capture (raw port bytes or a log) instead of a simulated
    /// meter's; faults, Request and the control API apply as usual.
    #[arg(long, value_name = "CAPTURE")]
    replay: Option<PathBuf>,
    /// `interval`: one telegram per interval; `recorded`: with the gaps they were recorded with.
    #[arg(long, value_enum, default_value_t = Timing::Interval, requires = "replay")]
    timing: Timing,
    /// Start the capture over after its last telegram.
    #[arg(long = "loop", requires = "replay")]
    looped: bool,
    /// Rewrite each telegram's timestamps to the simulated clock and recompute its CRC.
    #[arg(long, requires = "replay")]
    retime: bool,
    /// The capture's log prefix, as for `p1sim profiles learn`.
    #[arg(long, value_name = "REGEX", requires = "replay")]
    strip_prefix: Option<String>,
}

impl ReplayArgs {
    pub fn is_looped(&self) -> bool {
        self.looped
    }

    /// The profile to run (given, or learned from the capture) and the replay, if any.
    pub fn resolve(
        &self,
        profile: Option<&str>,
        key: Option<[u8; 16]>,
        auth_key: Option<[u8; 16]>,
    ) -> Result<(Profile, Option<Replay>)> {
        let Some(path) = &self.replay else {
            let name = profile.ok_or_else(|| anyhow::anyhow!("give --profile (or --replay CAPTURE)"))?;
            return Ok((p1sim_core::builtin::lookup(name)?, None));
        };
        let opts = ReadOptions { strip_prefix: self.strip_prefix.clone(), key, auth_key };
        let capture = capture::read(path, &opts)?;
        let mut profile = match profile {
            Some(name) => p1sim_core::builtin::lookup(name)?,
            None => {
                crate::learn::learn(&capture, "replay")
                    .with_context(|| {
                        format!("cannot tell the meter's line and interval from {}: give --profile", path.display())
                    })?
                    .profile
            }
        };
        if self.timing == Timing::Recorded {
            // Boundaries every second: a telegram goes out at the first one after its recorded time.
            profile.interval_s = 1;
        }
        let opts = replay::Options { timing: self.timing, looped: self.looped, retime: self.retime };
        let replay = Replay::new(capture, profile.interval_s, profile.clock, opts, key)?;
        Ok((profile, Some(replay)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_take_a_port_an_ip_or_a_host_name() {
        assert_eq!(parse_addr("2001").unwrap(), "127.0.0.1:2001".parse().unwrap());
        assert_eq!(parse_addr("0.0.0.0:2001").unwrap(), "0.0.0.0:2001".parse().unwrap());
        assert_eq!(parse_addr("localhost:2001").unwrap(), "127.0.0.1:2001".parse().unwrap());
        let err = parse_addr("localhost").unwrap_err();
        assert!(err.contains("expected HOST:PORT"), "{err}");
        assert!(parse_addr(":2001").is_err());
    }
}
