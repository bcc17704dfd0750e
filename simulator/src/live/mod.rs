//! Live outputs (`p1sim run`): a simulated meter, or a fleet of them, sending at the meter's own
//! pace to a pseudo-terminal, TCP clients or a serial port, controlled over HTTP while it runs.
//!
//! ```text
//!  meter task (tokio) ──render ahead, faults, save state──► pacer thread ──► PTY sink
//!   ▲ commands, readings                                     (deadlines,  ├─► TCP hub ─► client tasks
//!   └──────────── control API (axum, loopback)               Request)    └─► serial sink (own thread)
//! ```
//!
//! Telegram generation stays in `p1sim-core`; everything here is IO and timing. A meter task
//! renders each telegram shortly before its interval boundary and hands it to the pacers, which
//! start it on the boundary and clock its bytes out at the line rate (see [`pacer`]).

pub mod activity;
pub mod clock;
pub mod control;
pub mod framing;
pub mod hints;
pub mod human;
pub mod meter;
pub mod pacer;
pub mod page;
#[cfg(unix)]
pub mod pty;
pub mod serial;
pub mod state;
pub mod tcp;
pub mod transform;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use p1sim_core::Framing;
use p1sim_core::fault::scenario::Scenario;
use p1sim_core::generator::{Generator, GeneratorError};
use p1sim_core::meter::{Meter, MeterState};
use p1sim_core::profile::Profile;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};

use self::activity::Activity;
use self::clock::{SimClock, unix_now_ns};
use self::control::{Api, Detail, OutputInfo};
use self::framing::ByteMap;
use self::meter::{Control, Ended, MeterTask};
use self::pacer::{LineSpec, LineStats, Pace, Pacer, RequestInput, RequestLine};
#[cfg(unix)]
use self::pty::Pty;
use self::serial::{RequestPin, SerialSink};
use self::state::StateFile;
use self::tcp::Hub;
use self::transform::{FaultStage, ReplayStage, Transform};
use crate::signals::StopSignals;

const NS: i128 = 1_000_000_000;

/// How a fleet's meters are placed within the interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FleetPhase {
    /// Meter i starts i/N of an interval after the boundary, as independent meters whose clocks
    /// are not in step do; the load on the backend is even.
    Spread,
    /// Every meter starts on the boundary: the worst case for a backend.
    Aligned,
}

/// Everything `p1sim run` was asked to do.
#[derive(Debug, Clone)]
pub struct Plan {
    pub profile: Profile,
    pub seed: u64,
    pub key: Option<[u8; 16]>,
    /// The first simulated instant (Unix seconds); `None` for the wall clock.
    pub start: Option<i64>,
    pub speed: f64,
    pub pace: Pace,
    /// The framing of the reader on PTY and TCP outputs (default: the profile's).
    pub as_seen_by: Option<Framing>,
    /// A PTY, with the link to make to it.
    pub pty: Option<Option<PathBuf>>,
    pub tcp: Option<SocketAddr>,
    pub serial: Option<(String, RequestPin)>,
    /// The RP2040 rig (`--rig`).
    pub rig: Option<crate::rig::output::RigPlan>,
    pub control: Option<SocketAddr>,
    pub state: Option<PathBuf>,
    pub max_clients: usize,
    pub client_queue: usize,
    /// Number of meters; 1 unless `--fleet`.
    pub fleet: usize,
    pub fleet_phase: FleetPhase,
    pub faults: Option<Scenario>,
    /// Scripted household events (`--events`), applied by every meter at their instants.
    pub events: Vec<(i64, p1sim_core::meter::Command)>,
    /// Whether the PTY/TCP Request line starts raised.
    pub request: bool,
    /// Send these recorded telegrams instead of the meter's own (`--replay`).
    pub replay: Option<crate::replay::Replay>,
    /// How much the run says while it runs.
    pub verbosity: activity::Verbosity,
}

/// Runs until SIGINT or SIGTERM.
pub fn run(plan: Plan) -> Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("p1sim-run")
        .build()
        .context("cannot start the async runtime")?;
    let result = rt.block_on(async move { if plan.fleet > 1 { fleet(plan).await } else { single(plan).await } });
    // Client tasks blocked on stalled sockets must not hold the exit up.
    rt.shutdown_timeout(Duration::from_secs(1));
    result
}

/// The first telegram's boundary at or after `t`.
fn boundary_at_or_after(t: i64, interval: i64) -> i64 {
    t + (interval - t.rem_euclid(interval)) % interval
}

/// The clock and the meter of a run, resumed from `saved` when given.
fn start_meter(plan: &Plan, saved: Option<MeterState>) -> Result<(SimClock, Generator, String)> {
    let profile = plan.profile.clone();
    if profile.is_encrypted() && plan.key.is_none() {
        bail!(GeneratorError::KeyRequired);
    }
    let interval = i64::from(profile.interval_s.max(1));
    let mut origin_ns = plan.start.map_or_else(unix_now_ns, |s| i128::from(s) * NS);
    let mut note = String::new();
    if let Some(st) = &saved {
        // Never back: the run continues after the last saved instant, even if that is ahead of
        // the wall clock (an earlier run at --speed) or of --start.
        let after = i128::from(st.now + 1) * NS;
        if after > origin_ns {
            origin_ns = after;
            note = " (continuing after the saved instant, which is later than the start)".to_string();
        }
    }
    let clock = SimClock::starting_at(origin_ns, plan.speed);
    let first_s = origin_ns.div_euclid(NS) as i64 + i64::from(origin_ns.rem_euclid(NS) != 0);
    let generator = match saved {
        Some(st) => {
            let resumed_at = st.now;
            let fc = st.frame_counter;
            let meter = Meter::resume(&profile, profile.household.clone(), st)?;
            let next = boundary_at_or_after(first_s, interval);
            if next - resumed_at > 86_400 {
                eprintln!(
                    "p1sim run: catching up {:.1} simulated days since the saved state; this takes a moment",
                    (next - resumed_at) as f64 / 86_400.0
                );
            }
            note = format!("resumed from {} (frame counter {fc}){note}", rfc3339(resumed_at));
            Generator::from_meter(profile, meter, plan.key, next)?
        }
        None => {
            note = "new".to_string();
            Generator::new(profile.clone(), profile.household.clone(), plan.seed, first_s, plan.key)?
        }
    };
    let mut generator = generator;
    generator.meter_mut().script(plan.events.clone());
    Ok((clock, generator, note))
}

/// The most bytes a fault may add on this run's lines (see [`transform::line_budget`]).
fn fault_budget(plan: &Plan) -> usize {
    let paced = matches!(plan.pace, Pace::Line { .. }) || plan.serial.is_some() || plan.rig.is_some();
    transform::line_budget(paced.then(|| plan.profile.line.char_time_ns()), plan.profile.interval_s)
}

fn rfc3339(t: i64) -> String {
    jiff::Timestamp::from_second(t).map(|t| t.to_string()).unwrap_or_else(|_| t.to_string())
}

async fn bind_tcp(addr: SocketAddr) -> Result<TcpListener> {
    TcpListener::bind(addr).await.with_context(|| {
        format!(
            "--tcp {addr}: cannot listen (is the port in use? `ss -ltnp` shows who has it; port 0 picks a free one)"
        )
    })
}

async fn single(plan: Plan) -> Result<()> {
    let profile = plan.profile.clone();
    let state_file = plan.state.as_ref().map(|p| StateFile::open(p, &profile, plan.seed)).transpose()?;
    let saved = match &state_file {
        Some(f) => f.load()?,
        None => None,
    };
    let (clock, generator, state_note) = start_meter(&plan, saved)?;
    let equipment_id = generator.meter().identity().and_then(|i| i.primary()).map(String::from);
    if let Some(f) = &state_file {
        // Fail now, not at the first telegram, when the state cannot be written at all.
        f.save(generator.meter().state())?;
    }

    let request = RequestLine::new(plan.request);
    let char_ns = profile.line.char_time_ns();
    let reader = plan.as_seen_by.unwrap_or(profile.line.framing);
    let map = ByteMap::between(profile.line.framing, reader);
    let mut lines = Vec::new();
    let mut outputs = Vec::new();
    let mut report = Vec::new();
    #[cfg_attr(not(unix), allow(unused_mut))]
    let mut pty_path: Option<PathBuf> = None;
    let mut tcp_addr = None;
    let mut pacers = Vec::new();

    #[cfg(not(unix))]
    if plan.pty.is_some() {
        bail!(
            "a PTY output needs a Unix system (Linux or macOS); on this system serve the meter with \
             --tcp HOST:PORT or send it to a real port with --serial PORT"
        );
    }
    #[cfg(unix)]
    if let Some(link) = &plan.pty {
        let pty = Pty::open(link.as_deref(), profile.line.baud)?;
        let shown = match pty.link() {
            Some(l) => format!("pty: {} (link {})", pty.path().display(), l.display()),
            None => format!("pty: {}", pty.path().display()),
        };
        report.push(shown);
        pty_path = Some(pty.link().map(absolute).unwrap_or_else(|| pty.path().to_path_buf()));
        let stats = Arc::new(LineStats::default());
        outputs.push(OutputInfo {
            meter: 0,
            kind: "pty",
            name: pty.path().display().to_string(),
            line: Arc::clone(&stats),
            detail: Detail::Pty(Arc::clone(&pty.stats)),
        });
        let request = RequestInput::Shared(Arc::clone(&request));
        lines.push(LineSpec {
            meter: 0,
            sink: Box::new(pty.into_sink()),
            char_ns,
            map,
            pace: plan.pace,
            request,
            stats,
        });
    }
    if let Some(addr) = plan.tcp {
        let listener = bind_tcp(addr).await?;
        let local = listener.local_addr()?;
        report.push(format!("tcp: {local}"));
        tcp_addr = Some(local);
        let hub = Hub::new(plan.client_queue, plan.max_clients, clock.wall_interval(profile.interval_s));
        tokio::spawn(Arc::clone(&hub).serve(listener, false));
        let stats = Arc::new(LineStats::default());
        outputs.push(OutputInfo {
            meter: 0,
            kind: "tcp",
            name: local.to_string(),
            line: Arc::clone(&stats),
            detail: Detail::Tcp(Arc::clone(&hub)),
        });
        let request = RequestInput::Shared(Arc::clone(&request));
        lines.push(LineSpec { meter: 0, sink: Box::new(hub.sink()), char_ns, map, pace: plan.pace, request, stats });
    }
    if let Some((dev, pin)) = &plan.serial {
        let sink = SerialSink::open(dev, profile.line, *pin)?;
        let wiring = match pin {
            RequestPin::None => "Request from the control API".to_string(),
            p => format!("Request on {p:?}").to_uppercase().replace("REQUEST ON", "Request on"),
        };
        report.push(format!("serial: {dev} ({}, {wiring})", profile.line));
        let stats = Arc::new(LineStats::default());
        outputs.push(OutputInfo {
            meter: 0,
            kind: "serial",
            name: dev.clone(),
            line: Arc::clone(&stats),
            detail: Detail::Serial(Arc::clone(&sink.stats)),
        });
        let request = match pin {
            RequestPin::None => RequestInput::Shared(Arc::clone(&request)),
            _ => RequestInput::FromSink,
        };
        // The UART frames the bytes itself (real 7E1), so nothing is mapped. Its own thread keeps
        // a slow USB device from delaying the other outputs.
        let spec = LineSpec {
            meter: 0,
            sink: Box::new(sink),
            char_ns,
            map: ByteMap::Identity,
            pace: plan.pace,
            request,
            stats,
        };
        pacers.push(Pacer::start("p1sim-serial", vec![spec])?);
    }
    if !lines.is_empty() {
        pacers.push(Pacer::start("p1sim-pacer", lines)?);
    }
    // The rig paces its own line; it takes the meter's telegrams as a pacer does.
    let rig = match &plan.rig {
        Some(r) => Some(crate::rig::output::RigOutput::start(r, &profile, plan.faults.as_ref())?),
        None => None,
    };
    let mut senders: Vec<_> = pacers.iter().map(Pacer::sender).collect();
    if let Some(r) = &rig {
        report.push(r.describe().to_string());
        senders.push(r.sender());
        outputs.push(OutputInfo {
            meter: 0,
            kind: "rig",
            name: r.name().to_string(),
            line: Arc::clone(&r.line),
            detail: Detail::Rig(Arc::clone(&r.stats)),
        });
    }

    let stage = FaultStage::new(plan.faults.clone(), plan.seed, fault_budget(&plan)).map_err(anyhow::Error::msg)?;
    let live = Arc::new(tokio::sync::watch::Sender::new(None));
    let (tx, rx) = mpsc::channel(64);
    let transform: Box<dyn Transform> = match plan.replay.clone() {
        Some(r) => {
            report.push(format!("replay: {} recorded telegram(s) in place of the meter's own", r.len()));
            Box::new(ReplayStage::new(r, stage))
        }
        None => Box::new(stage),
    };
    let task = MeterTask {
        index: 0,
        generator,
        clock,
        phase: Duration::ZERO,
        pacers: senders,
        state: state_file.clone(),
        transform: Some(transform),
        rx,
        live: Arc::clone(&live),
        activity: Some(Activity::new(outputs.clone(), Arc::clone(&request), true)),
    };
    let meter_task = tokio::spawn(task.run());
    let tariffs = profile.tariff_count().max(2);
    let mut api = Api::new(vec![tx], request, outputs, vec![live], human::profile_json(&profile), tariffs);
    api.state = state_file.clone();
    let api = Arc::new(api);
    let mut control_addr = None;
    if let Some(addr) = plan.control {
        let listener = control::bind(addr).await?;
        control_addr = Some(listener.local_addr()?);
        report.push(format!(
            "control: http://{}/ (the live page: open it in a browser; the JSON API is listed at /api)",
            listener.local_addr()?
        ));
        tokio::spawn(control::serve(listener, Arc::clone(&api)));
    }
    if let Some(f) = &state_file {
        report.push(format!("state: {} ({state_note})", f.path().display()));
    }
    if let Some(id) = equipment_id {
        report.push(format!("equipment id: {id} (derived from the seed; --household equipment_id=... fixes it)"));
    }
    report.extend(faults_line(&plan));
    if pty_path.is_some() || tcp_addr.is_some() {
        report.push(request_line(plan.request, control_addr));
    }

    let mut out = String::new();
    out.push_str(&format!(
        "p1sim run: {} ({} {}), {}, a telegram every {} s{}, seed {}\n",
        profile.name,
        profile.spec,
        profile.country,
        profile.line,
        profile.interval_s,
        if plan.speed == 1.0 { String::new() } else { format!(" of simulated time at {}x speed", plan.speed) },
        plan.seed
    ));
    for r in &report {
        out.push_str(&format!("  {r}\n"));
    }
    out.push_str(&hints::connect(&profile, reader, pty_path.as_deref(), tcp_addr, plan.key));
    out.push_str("\nCtrl-C stops the meter.\n");
    // Watched from before the banner: a signal sent as soon as it shows must not meet the default
    // action, which would end the process without saving the state or removing the link.
    let signals = StopSignals::watch().context("cannot watch for stop signals")?;
    print_now(&out);

    wait_for_stop(signals, meter_task).await?;
    shutdown(&api, pacers).await;
    if let Some(r) = rig {
        let summary = tokio::task::spawn_blocking(move || r.stop()).await.unwrap_or_default();
        eprintln!("p1sim run: {summary}");
    }
    Ok(())
}

/// The banner's line for the fault scenario, if the run has one.
fn faults_line(plan: &Plan) -> Option<String> {
    let scenario = plan.faults.as_ref()?;
    let mut names: Vec<&str> = scenario.entries.iter().map(|e| e.fault.name()).collect();
    names.dedup();
    let wire = if scenario.wire.is_some() { " and bit-level [wire] faults" } else { "" };
    Some(format!("faults: {} ({}{wire})", scenario.name, names.join(", ")))
}

/// The banner's line for the PTY/TCP Request line: raised, or held low and how to raise it.
fn request_line(raised: bool, control: Option<SocketAddr>) -> String {
    if raised {
        "Request: raised (the control API's POST /request drops it; output stops at once)".to_string()
    } else {
        let how = match control {
            Some(addr) => format!("curl --json '{{\"raised\": true}}' http://{addr}/request"),
            None => "run with --control to raise it, or without --request-low".to_string(),
        };
        format!("Request: LOW (--request-low): nothing is sent until it is raised: {how}")
    }
}

#[cfg(unix)]
fn absolute(p: &std::path::Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

fn print_now(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let _ = stdout.write_all(text.as_bytes());
    let _ = stdout.flush();
}

/// Waits for a stop signal, or for a replay to finish; a meter task that ends by itself
/// otherwise is an error.
async fn wait_for_stop(mut signals: StopSignals, meter_task: tokio::task::JoinHandle<Ended>) -> Result<()> {
    tokio::select! {
        name = signals.next() => {
            // A closed SSH session: stop as on Ctrl-C, saving the state and removing the PTY link.
            if StopSignals::is_hang_up(name) {
                eprintln!("p1sim run: hang-up ({name}): stopping");
            }
        }
        r = meter_task => match r {
            Ok(Ended::Finished) => eprintln!("p1sim run: the replay is over"),
            r => bail!("the meter stopped unexpectedly: {r:?}"),
        },
    }
    Ok(())
}

/// Saves every meter's state, then stops the pacers (closing the PTY and removing its link).
async fn shutdown(api: &Api, pacers: Vec<Pacer>) {
    let acks: Vec<_> = api
        .meters
        .iter()
        .map(|tx| {
            let (ack, done) = oneshot::channel();
            let sent = tx.try_send(Control::Shutdown(ack)).is_ok();
            (sent, done)
        })
        .collect();
    for (sent, done) in acks {
        if sent {
            let _ = tokio::time::timeout(Duration::from_secs(10), done).await;
        }
    }
    let _ = tokio::task::spawn_blocking(move || pacers.into_iter().for_each(Pacer::stop)).await;
    eprintln!("p1sim run: stopped");
}

/// Makes room for `needed` open files, raising the soft limit (and the hard one where allowed).
#[cfg(unix)]
fn ensure_open_files(needed: u64) -> Result<()> {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let lim = getrlimit(Resource::Nofile);
    if lim.current.is_some_and(|c| c >= needed) || lim.current.is_none() {
        return Ok(());
    }
    let maximum = lim.maximum.map(|m| m.max(needed));
    if setrlimit(Resource::Nofile, Rlimit { current: Some(needed), maximum }).is_ok() {
        return Ok(());
    }
    if lim.maximum.is_none_or(|m| m >= needed) {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(needed), maximum: lim.maximum });
        return Ok(());
    }
    bail!(
        "--fleet needs about {needed} open files (a listener and a client per meter), and the limit is {}; raise it \
         (`ulimit -n {needed}`, LimitNOFILE= for a systemd service) or run fewer meters",
        lim.maximum.unwrap_or(0)
    )
}

/// Windows has no per-process open-file limit of this kind: sockets are bounded by memory.
#[cfg(not(unix))]
fn ensure_open_files(_needed: u64) -> Result<()> {
    Ok(())
}

async fn fleet(plan: Plan) -> Result<()> {
    let n = plan.fleet;
    let Some(base) = plan.tcp else {
        bail!("--fleet serves each meter on its own TCP port: give --tcp HOST:PORT (meter i listens on PORT+i)");
    };
    if plan.pty.is_some() || plan.serial.is_some() || plan.rig.is_some() {
        bail!("--fleet serves TCP only: one port per meter; drop --pty, --serial and --rig");
    }
    if plan.state.is_some() {
        bail!("--fleet does not keep --state (a state file holds one meter); run single meters with --state");
    }
    if base.port() == 0 || usize::from(base.port()) + n - 1 > usize::from(u16::MAX) {
        bail!(
            "--fleet {n} --tcp {base}: give a base port such that PORT..PORT+{} are valid ports, e.g. 127.0.0.1:20000",
            n - 1
        );
    }
    ensure_open_files(2 * n as u64 + 64)?;
    let profile = plan.profile.clone();
    let (clock, _, _) = start_meter(&plan, None)?;
    let first_s = clock.sim_origin_ns().div_euclid(NS) as i64 + 1;
    let interval = clock.wall_interval(profile.interval_s);
    let char_ns = profile.line.char_time_ns();
    let reader = plan.as_seen_by.unwrap_or(profile.line.framing);
    let map = ByteMap::between(profile.line.framing, reader);
    let request = RequestLine::new(plan.request);
    let mut lines = Vec::with_capacity(n);
    let mut outputs = Vec::with_capacity(n);
    let mut hubs = Vec::with_capacity(n);
    for i in 0..n {
        let addr = SocketAddr::new(base.ip(), base.port() + i as u16);
        let listener = bind_tcp(addr).await.with_context(|| format!("fleet meter {i}"))?;
        let hub = Hub::new(plan.client_queue, plan.max_clients, interval);
        hubs.push((Arc::clone(&hub), listener));
        let stats = Arc::new(LineStats::default());
        outputs.push(OutputInfo {
            meter: i,
            kind: "tcp",
            name: addr.to_string(),
            line: Arc::clone(&stats),
            detail: Detail::Tcp(Arc::clone(&hub)),
        });
        let request = RequestInput::Shared(Arc::clone(&request));
        lines.push(LineSpec { meter: i, sink: Box::new(hub.sink()), char_ns, map, pace: plan.pace, request, stats });
    }
    for (hub, listener) in hubs {
        tokio::spawn(hub.serve(listener, true));
    }
    let pacer = Pacer::start("p1sim-fleet-pacer", lines)?;
    let mut meters = Vec::with_capacity(n);
    let mut lives = Vec::with_capacity(n);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let seed = plan.seed.wrapping_add(i as u64);
        let mut generator = Generator::new(profile.clone(), profile.household.clone(), seed, first_s, plan.key)?;
        generator.meter_mut().script(plan.events.clone());
        let phase = match plan.fleet_phase {
            FleetPhase::Spread => interval.mul_f64(i as f64 / n as f64),
            FleetPhase::Aligned => Duration::ZERO,
        };
        let (tx, rx) = mpsc::channel(16);
        meters.push(tx);
        let live = Arc::new(tokio::sync::watch::Sender::new(None));
        lives.push(Arc::clone(&live));
        tasks.spawn(
            MeterTask {
                index: i,
                generator,
                clock,
                phase,
                pacers: vec![pacer.sender()],
                state: None,
                transform: Some(Box::new(
                    FaultStage::new(plan.faults.clone(), seed, fault_budget(&plan)).map_err(anyhow::Error::msg)?,
                )),
                rx,
                live,
                activity: Some(Activity::new(
                    outputs.clone(),
                    Arc::clone(&request),
                    plan.verbosity == activity::Verbosity::Verbose,
                )),
            }
            .run(),
        );
    }
    let tariffs = profile.tariff_count().max(2);
    let api = Arc::new(Api::new(meters, request, outputs, lives, human::profile_json(&profile), tariffs));
    let mut report = vec![format!(
        "fleet: {n} meters on tcp {}..{} (meter i on port {}+i, seed {}+i), {:?} over the interval",
        SocketAddr::new(base.ip(), base.port()),
        base.port() + (n - 1) as u16,
        base.port(),
        plan.seed,
        plan.fleet_phase
    )];
    report.extend(faults_line(&plan));
    let mut control_addr = None;
    if let Some(addr) = plan.control {
        let listener = control::bind(addr).await?;
        control_addr = Some(listener.local_addr()?);
        report.push(format!(
            "control: http://{}/ (the live page, with a meter selector; the JSON API is listed at /api, add ?meter=N)",
            listener.local_addr()?
        ));
        tokio::spawn(control::serve(listener, Arc::clone(&api)));
    }
    report.push(request_line(plan.request, control_addr));
    let signals = StopSignals::watch().context("cannot watch for stop signals")?;
    print_now(&format!(
        "p1sim run: {} ({} {}), {}, a telegram every {} s, {} meters\n  {}\n\nCtrl-C stops the fleet.\n",
        profile.name,
        profile.spec,
        profile.country,
        profile.line,
        profile.interval_s,
        n,
        report.join("\n  ")
    ));
    let watcher = tokio::spawn(async move {
        // Any meter task ending on its own is a bug worth stopping for.
        let _ = tasks.join_next().await;
        Ended::Stopped
    });
    wait_for_stop(signals, watcher).await?;
    shutdown(&api, vec![pacer]).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        assert_eq!(boundary_at_or_after(100, 10), 100);
        assert_eq!(boundary_at_or_after(101, 10), 110);
        assert_eq!(boundary_at_or_after(-5, 10), 0);
        assert_eq!(boundary_at_or_after(7, 1), 7);
    }
}
