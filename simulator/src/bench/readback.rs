//! Reading a board's output through the USB-UART it feeds (`bench --read PORT`), the way the
//! board's own user wires it, and driving the board's Request from that adapter's RTS or DTR
//! output (`--request-via`).
//!
//! A thread reads the port as it fills; bytes wait, timestamped, in a bounded queue for the
//! bench to take. A UART driver delivers no framing or parity flags through this path (Linux
//! hands a character with a framing error over as it was read, or as NUL), so bytes read back
//! this way carry none: the bench compares them with what was sent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::{Context, Result, format_err};
use p1sim_core::LineSettings;
use p1sim_core::rig::Captured;
use serialport::SerialPort;

use crate::live::serial::{open_port, set_line};

/// Bytes read but not yet taken, at most: a minute of 115200 baud.
const QUEUE: usize = 1 << 20;

/// The reader's modem output wired to the board's Request (RJ12 pin 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RequestVia {
    /// Request To Send.
    Rts,
    /// Data Terminal Ready.
    Dtr,
}

impl RequestVia {
    pub fn name(self) -> &'static str {
        match self {
            RequestVia::Rts => "RTS",
            RequestVia::Dtr => "DTR",
        }
    }
}

/// The command-line options a port reader's messages name: the one that gave the port, and the
/// one that drives Request from it.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub port: &'static str,
    pub request: &'static str,
}

impl Options {
    /// `p1sim bench --read PORT --request-via rts|dtr`.
    pub const BENCH: Options = Options { port: "--read", request: "--request-via" };
}

/// The board's output port, read on a thread.
#[derive(Debug)]
pub struct PortReader {
    path: String,
    control: Box<dyn SerialPort>,
    via: Option<RequestVia>,
    options: Options,
    bytes: Receiver<(u8, Instant)>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    lost: Arc<AtomicU64>,
    t0: Instant,
}

impl PortReader {
    /// Opens `path` at `line`; errors name the device and the fix.
    pub fn open(path: &str, line: LineSettings, via: Option<RequestVia>) -> Result<PortReader> {
        PortReader::open_with(path, line, via, Options::BENCH)
    }

    /// [`PortReader::open`] for a command whose options are named otherwise.
    pub fn open_with(path: &str, line: LineSettings, via: Option<RequestVia>, options: Options) -> Result<PortReader> {
        let port = open_port(path, line).context(options.port)?;
        let control = port.try_clone().with_context(|| format!("cannot share {path} between reading and control"))?;
        let (tx, bytes) = sync_channel(QUEUE);
        let stop = Arc::new(AtomicBool::new(false));
        let lost = Arc::new(AtomicU64::new(0));
        let (flag, dropped) = (Arc::clone(&stop), Arc::clone(&lost));
        let thread = std::thread::Builder::new()
            .name("p1sim-bench-read".into())
            .spawn(move || read_loop(port, tx, flag, dropped))
            .context("cannot start the reader thread")?;
        Ok(PortReader {
            path: path.to_string(),
            control,
            via,
            options,
            bytes,
            stop,
            thread: Some(thread),
            lost,
            t0: Instant::now(),
        })
    }

    /// Sets the port to another rate and framing (the legacy phase's 9600 7E1).
    pub fn reconfigure(&mut self, line: LineSettings) -> Result<()> {
        set_line(self.control.as_mut(), line)
            .map_err(|e| format_err!("cannot set {} to {line}: {e}; the adapter may not support it", self.path))
    }

    /// Asserts (`high`) or clears the modem line that drives Request.
    pub fn set_request(&mut self, high: bool) -> Result<()> {
        let Some(via) = self.via else { return Ok(()) };
        let done = match via {
            RequestVia::Rts => self.control.write_request_to_send(high),
            RequestVia::Dtr => self.control.write_data_terminal_ready(high),
        };
        done.map_err(|e| {
            format_err!(
                "cannot set {} of {} ({e}): the adapter (or a pseudo-terminal) has no such output; wire Request to \
                 the other modem line and give {option} {}, or tie it to +5 V and leave {option} out",
                via.name(),
                self.path,
                match via {
                    RequestVia::Rts => "dtr",
                    RequestVia::Dtr => "rts",
                },
                option = self.options.request,
            )
        })
    }

    /// Moves what has been read into `got`, timestamped from when the port was opened.
    pub fn take(&mut self, got: &mut Vec<Captured>) {
        while let Ok((byte, at)) = self.bytes.try_recv() {
            got.push(Captured { byte, flags: 0, at_us: at.duration_since(self.t0).as_micros() as u64 });
        }
    }

    /// Bytes the queue had no room for.
    pub fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }
}

impl Drop for PortReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn read_loop(
    mut port: Box<dyn SerialPort>,
    tx: SyncSender<(u8, Instant)>,
    stop: Arc<AtomicBool>,
    lost: Arc<AtomicU64>,
) {
    let mut buf = [0u8; 512];
    while !stop.load(Ordering::SeqCst) {
        match port.read(&mut buf) {
            // With a timeout set, nothing read is a quiet line (or a hang-up, which the next
            // read reports as an error).
            Ok(0) => std::thread::sleep(std::time::Duration::from_millis(5)),
            Ok(n) => {
                let at = Instant::now();
                for &b in &buf[..n] {
                    if let Err(TrySendError::Full(_)) = tx.try_send((b, at)) {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) => {}
            Err(_) => return,
        }
    }
}
