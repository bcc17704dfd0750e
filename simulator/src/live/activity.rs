//! The activity log of `p1sim run`: a line per telegram (its size, where it went, the faults
//! applied, Request) and per event (clients, Request changes, control commands), on a terminal.
//!
//! Components log through the `log` facade; this module is its one sink. Informational lines go
//! to standard output, time-stamped, when it is a terminal or with `-v`, and not at all with
//! `-q`; warnings always go to standard error, so a run behind a pipe stays quiet but not mute.

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use log::{Level, LevelFilter, Log, Metadata, Record};

use super::control::{Detail, OutputInfo};
use super::pacer::RequestLine;

/// How much `p1sim run` says while it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verbosity {
    /// Warnings only (`-q`).
    Quiet,
    /// The activity log when standard output is a terminal.
    Normal,
    /// The activity log wherever standard output goes (`-v`).
    Verbose,
}

impl Verbosity {
    pub fn from_flags(quiet: bool, verbose: bool) -> Verbosity {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Normal,
        }
    }

    /// Whether the activity lines are printed.
    pub fn logs_activity(self) -> bool {
        match self {
            Verbosity::Quiet => false,
            Verbosity::Normal => std::io::stdout().is_terminal(),
            Verbosity::Verbose => true,
        }
    }
}

/// Lines waiting for the writer thread; beyond them, lines are dropped and counted.
const QUEUED_LINES: usize = 256;

/// Installs the sink (once per process; a second call keeps the first).
pub fn init(verbosity: Verbosity) {
    let level = if verbosity.logs_activity() { LevelFilter::Info } else { LevelFilter::Warn };
    let (tx, rx) = mpsc::sync_channel::<String>(QUEUED_LINES);
    let printer = Printer { lines: tx, dropped: Arc::new(AtomicU64::new(0)) };
    let dropped = Arc::clone(&printer.dropped);
    if log::set_boxed_logger(Box::new(printer)).is_ok() {
        log::set_max_level(level);
        // A reader that stops reading standard output (a paused pager) must not stall the
        // meter: lines go through a bounded queue to this thread, and are dropped when it is full.
        let _ = std::thread::Builder::new().name("p1sim-log".into()).spawn(move || {
            for line in rx {
                let mut out = std::io::stdout().lock();
                let lost = dropped.swap(0, Ordering::Relaxed);
                if lost > 0 {
                    let _ = writeln!(out, "          ({lost} log lines dropped: standard output was not read)");
                }
                let _ = writeln!(out, "{line}");
                let _ = out.flush();
            }
        });
    }
}

struct Printer {
    lines: mpsc::SyncSender<String>,
    dropped: Arc<AtomicU64>,
}

impl Log for Printer {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        metadata.level() <= log::max_level()
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        if record.level() <= Level::Warn {
            eprintln!("p1sim run: {}", record.args());
            return;
        }
        let line = format!("{}  {}", jiff::Zoned::now().strftime("%H:%M:%S"), record.args());
        if self.lines.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn flush(&self) {}
}

/// What the telegram lines show: a run's outputs and its Request line.
#[derive(Debug)]
pub struct Activity {
    outputs: Vec<OutputInfo>,
    request: Arc<RequestLine>,
    /// Whether each telegram gets a line (a fleet's meters would flood the terminal: with
    /// `-v` only).
    per_telegram: bool,
}

impl Activity {
    pub fn new(outputs: Vec<OutputInfo>, request: Arc<RequestLine>, per_telegram: bool) -> Arc<Activity> {
        Arc::new(Activity { outputs, request, per_telegram })
    }

    /// The line for telegram `seq` of meter `meter`, for simulated instant `at`, as handed to
    /// the outputs.
    pub fn telegram(&self, meter: usize, seq: u64, at: i64, bytes: usize, faults: &[&str]) {
        if !self.per_telegram || !log::log_enabled!(Level::Info) {
            return;
        }
        let outputs: Vec<String> = self.outputs.iter().filter(|o| o.meter == meter).map(describe).collect();
        let time = jiff::Timestamp::from_second(at).map(|t| t.to_string()).unwrap_or_default();
        let faults = if faults.is_empty() { String::new() } else { format!("; faults: {}", faults.join(", ")) };
        let request = if self.request.is_up() {
            String::new()
        } else {
            "; held: Request is low, nothing is sent (POST /request {\"raised\": true} raises it)".to_string()
        };
        let meter = if self.outputs.iter().any(|o| o.meter > 0) { format!("meter {meter} ") } else { String::new() };
        log::info!(
            "{meter}telegram {} ({time}), {bytes} bytes to {}{faults}{request}",
            seq + 1,
            if outputs.is_empty() { "no output".to_string() } else { outputs.join(", ") }
        );
    }
}

fn describe(o: &OutputInfo) -> String {
    match &o.detail {
        Detail::Tcp(hub) => {
            let n = hub.connected();
            format!("tcp {} ({n} client{})", o.name, if n == 1 { "" } else { "s" })
        }
        _ => format!("{} {}", o.kind, o.name),
    }
}
