//! Running a decoder under test as a child process, in its own process group so that a hang or
//! a crash is cleaned up together with every process it started (on Unix; see [`group`]), and
//! feeding it one case over standard input, a pseudo-terminal or TCP, or many cases over one
//! persistent stdin session.
//!
//! Nothing here waits without a deadline: every read of the decoder's output, every write of a
//! case and every wait for an exit gives up at the case's deadline (or when the run is
//! cancelled), kills the process group and reaps the decoder.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener};
use std::process::{ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::case::Case;

#[cfg(unix)]
#[path = "process/group_unix.rs"]
mod group;
#[cfg(not(unix))]
#[path = "process/group_windows.rs"]
mod group;
#[cfg(unix)]
mod pty;

use group::Proc;

/// How a case's bytes reach the decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// On standard input, which is then closed.
    Stdin,
    /// On a pseudo-terminal the decoder opens like a serial port (`P1SIM_PTY`).
    Pty,
    /// Over a TCP connection the decoder makes to `P1SIM_TCP`.
    Tcp,
}

impl Transport {
    pub const ALL: [Transport; 3] = [Transport::Stdin, Transport::Pty, Transport::Tcp];

    pub fn name(self) -> &'static str {
        match self {
            Transport::Stdin => "stdin",
            Transport::Pty => "pty",
            Transport::Tcp => "tcp",
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Transport::ALL
            .into_iter()
            .find(|t| t.name() == s)
            .ok_or_else(|| format!("unknown transport {s:?}: expected stdin, pty or tcp"))
    }
}

/// A decoder started as a command, once per case or once for a persistent session.
#[derive(Clone, Debug)]
pub struct DecoderCommand {
    /// Program and arguments; a user's `'COMMAND'` runs as `sh -c COMMAND` (`cmd /C` on Windows).
    pub argv: Vec<OsString>,
    /// Extra environment, e.g. `P1SIM`, the p1sim binary an adapter may call.
    pub env: Vec<(OsString, OsString)>,
    /// How to show the command in messages.
    pub display: String,
}

impl DecoderCommand {
    /// A shell command line, as given to `--dut`.
    pub fn shell(command: &str) -> DecoderCommand {
        #[cfg(unix)]
        let shell = ["sh", "-c"];
        #[cfg(not(unix))]
        let shell = ["cmd", "/C"];
        DecoderCommand {
            argv: vec![shell[0].into(), shell[1].into(), command.into()],
            env: Vec::new(),
            display: command.to_string(),
        }
    }
}

/// How a decoder's run on a case ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    /// The process exited (one-shot), or the persistent adapter answered `P1SIM-END`.
    Exited(Status),
    /// The case's deadline passed; the process group was killed.
    TimedOut,
    /// The run was interrupted; the process group was killed.
    Cancelled,
    /// The command could not be started at all.
    Unstartable(String),
}

/// An exit status in words that survive serialization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    Code(i32),
    Signal(i32),
}

impl Status {
    pub fn success(self) -> bool {
        self == Status::Code(0)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Status::Code(c) => write!(f, "exit status {c}"),
            Status::Signal(s) => {
                let name = match s {
                    4 => " (SIGILL)",
                    6 => " (SIGABRT)",
                    7 => " (SIGBUS)",
                    8 => " (SIGFPE)",
                    9 => " (SIGKILL)",
                    11 => " (SIGSEGV)",
                    13 => " (SIGPIPE)",
                    15 => " (SIGTERM)",
                    _ => "",
                };
                write!(f, "killed by signal {s}{name}")
            }
        }
    }
}

/// What the decoder did with one case.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub stdout: Vec<u8>,
    /// The end of what it wrote on standard error, for failure reports.
    pub stderr: String,
    pub end: End,
    /// What went wrong on the transport, if anything (it never opened the PTY, never connected).
    pub note: Option<String>,
}

impl Outcome {
    fn unstartable(cmd: &DecoderCommand, e: &io::Error) -> Outcome {
        Outcome {
            stdout: Vec::new(),
            stderr: String::new(),
            end: End::Unstartable(format!("cannot start `{}`: {e}", cmd.display)),
            note: None,
        }
    }
}

/// Output beyond this is dropped: a decoder printing without end cannot exhaust memory.
const MAX_STDOUT: usize = 16 << 20;
/// The tail of standard error kept for reports.
const STDERR_TAIL: usize = 4096;
/// After a decoder opened the PTY, how long the runner waits before writing: serial libraries
/// (pyserial among them) flush the input queue right after opening a port, and bytes written
/// before that flush would be lost.
pub const PTY_SETTLE: Duration = Duration::from_millis(50);

/// The decoder's command: its pipes and environment. A user's command starts with its program.
fn command(cmd: &DecoderCommand, env: &[(&str, String)], stdin: Stdio) -> io::Result<Command> {
    let (program, args) = cmd.argv.split_first().ok_or_else(|| io::Error::other("an empty command"))?;
    let mut c = Command::new(program);
    c.args(args).stdin(stdin).stdout(Stdio::piped()).stderr(Stdio::piped());
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    Ok(c)
}

impl Proc {
    /// Kills whatever is left of the decoder (on Unix its whole group: the decoder itself if it
    /// still runs, and anything it started) and reaps it.
    fn reap(&mut self) -> Status {
        if let Some(s) = self.reaped {
            return s;
        }
        self.kill_group();
        let s = self.child.wait().map(Status::of).unwrap_or(Status::Code(-1));
        self.reaped = Some(s);
        self.forget();
        s
    }

    /// Waits for the exit until `deadline`; `None` if it did not come (the caller kills).
    fn wait_exit(&mut self, deadline: Instant, cancel: &AtomicBool) -> Option<()> {
        let mut pause = Duration::from_micros(50);
        loop {
            if self.has_exited() {
                return Some(());
            }
            if Instant::now() >= deadline || cancel.load(Ordering::Relaxed) {
                return None;
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(5));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.reap();
    }
}

/// Reads a pipe to its end on a thread; the result arrives on the channel.
fn read_all(mut pipe: impl Read + Send + 'static, limit: usize) -> Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut out = Vec::new();
        let mut buf = [0u8; 16 * 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = limit.saturating_sub(out.len());
                    out.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(out);
    });
    rx
}

/// Keeps the last [`STDERR_TAIL`] bytes a pipe delivers in a shared buffer, until its end.
fn keep_tail(mut pipe: impl Read + Send + 'static) -> (Arc<Mutex<Vec<u8>>>, Receiver<()>) {
    let tail = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let shared = Arc::clone(&tail);
    thread::spawn(move || {
        let mut buf = [0u8; 4096];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let mut t = shared.lock().unwrap_or_else(|e| e.into_inner());
                    t.extend_from_slice(&buf[..n]);
                    if t.len() > 2 * STDERR_TAIL {
                        let cut = t.len() - STDERR_TAIL;
                        t.drain(..cut);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(());
    });
    (tail, rx)
}

fn take_tail(tail: &Mutex<Vec<u8>>) -> String {
    let mut t = tail.lock().unwrap_or_else(|e| e.into_inner());
    let start = t.len().saturating_sub(STDERR_TAIL);
    let text = String::from_utf8_lossy(&t[start..]).trim_end().to_string();
    t.clear();
    text
}

/// The environment every run of a case gets (see conformance/adapters/README.md).
fn case_env(case: &Case, transport: Transport) -> Vec<(&'static str, String)> {
    vec![
        ("P1SIM_CASE", case.name.clone()),
        ("P1SIM_SPEC", case.spec.to_string()),
        ("P1SIM_BAUD", case.line.baud.to_string()),
        ("P1SIM_FRAMING", case.line.framing.to_string()),
        ("P1SIM_KEY", key_hex(case.key)),
        ("P1SIM_AUTH_KEY", key_hex(case.auth_key)),
        ("P1SIM_TRANSPORT", transport.name().to_string()),
    ]
}

/// A key as 32 uppercase hex digits; no key is the empty string.
pub fn key_hex(key: Option<[u8; 16]>) -> String {
    key.map(|k| k.iter().map(|b| format!("{b:02X}")).collect()).unwrap_or_default()
}

/// Runs the decoder once on one case over `transport`.
pub fn run_once(
    cmd: &DecoderCommand,
    case: &Case,
    transport: Transport,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Outcome {
    let deadline = Instant::now() + timeout;
    match transport {
        Transport::Stdin => via_stdin(cmd, case, deadline, cancel),
        #[cfg(unix)]
        Transport::Pty => pty::via_pty(cmd, case, deadline, cancel),
        #[cfg(not(unix))]
        Transport::Pty => Outcome {
            stdout: Vec::new(),
            stderr: String::new(),
            end: End::Unstartable(
                "the PTY transport needs a Unix system (Linux or macOS); use --transport stdin or tcp".into(),
            ),
            note: None,
        },
        Transport::Tcp => via_tcp(cmd, case, deadline, cancel),
    }
}

/// The decoder's pipes while it runs.
#[derive(Debug)]
struct Running {
    proc: Proc,
    stdout: Receiver<Vec<u8>>,
    stderr: (Arc<Mutex<Vec<u8>>>, Receiver<()>),
}

impl Running {
    fn start(cmd: &DecoderCommand, env: &[(&str, String)], stdin: Stdio) -> io::Result<(Running, Option<ChildStdin>)> {
        let mut proc = Proc::spawn(cmd, env, stdin)?;
        let input = proc.child.stdin.take();
        let stdout = read_all(proc.child.stdout.take().expect("piped"), MAX_STDOUT);
        let stderr = keep_tail(proc.child.stderr.take().expect("piped"));
        Ok((Running { proc, stdout, stderr }, input))
    }

    /// Collects the output until the decoder has exited and closed its output, or the
    /// deadline; then kills what is left of the group and reaps the decoder.
    fn finish(mut self, deadline: Instant, cancel: &AtomicBool, note: Option<String>) -> Outcome {
        let mut stdout = None;
        let mut exited_at = None;
        let mut end = None;
        while stdout.is_none() {
            match self.stdout.recv_timeout(Duration::from_millis(20)) {
                Ok(out) => stdout = Some(out),
                Err(RecvTimeoutError::Disconnected) => stdout = Some(Vec::new()),
                Err(RecvTimeoutError::Timeout) => {
                    if cancel.load(Ordering::Relaxed) {
                        end = Some(End::Cancelled);
                        break;
                    }
                    if Instant::now() >= deadline {
                        end = Some(End::TimedOut);
                        break;
                    }
                    // The decoder is gone but something it started still holds its output open.
                    if self.proc.has_exited() {
                        let at = *exited_at.get_or_insert_with(Instant::now);
                        if at.elapsed() > Duration::from_millis(250) {
                            self.proc.kill_group();
                        }
                    }
                }
            }
        }
        let end = match end {
            Some(e) => e,
            None => match self.proc.wait_exit(deadline, cancel) {
                Some(()) => End::Exited(self.proc.reap()),
                None if cancel.load(Ordering::Relaxed) => End::Cancelled,
                None => End::TimedOut,
            },
        };
        self.proc.reap();
        // Killing the group closed the pipes; take what arrived.
        let stdout = stdout.or_else(|| self.stdout.recv_timeout(Duration::from_millis(500)).ok()).unwrap_or_default();
        let _ = self.stderr.1.recv_timeout(Duration::from_millis(200));
        Outcome { stdout, stderr: take_tail(&self.stderr.0), end, note }
    }
}

fn via_stdin(cmd: &DecoderCommand, case: &Case, deadline: Instant, cancel: &AtomicBool) -> Outcome {
    let (running, input) = match Running::start(cmd, &case_env(case, Transport::Stdin), Stdio::piped()) {
        Ok(r) => r,
        Err(e) => return Outcome::unstartable(cmd, &e),
    };
    if let Some(mut stdin) = input {
        let bytes = case.input.clone();
        // A decoder that stops reading must not block the runner: the write happens on its own
        // thread, which ends with EPIPE once the group is killed.
        thread::spawn(move || {
            let _ = stdin.write_all(&bytes);
        });
    }
    running.finish(deadline, cancel, None)
}

fn via_tcp(cmd: &DecoderCommand, case: &Case, deadline: Instant, cancel: &AtomicBool) -> Outcome {
    let listener = match TcpListener::bind("127.0.0.1:0").and_then(|l| l.set_nonblocking(true).map(|()| l)) {
        Ok(l) => l,
        Err(e) => return Outcome::unstartable(cmd, &io::Error::other(format!("cannot listen on 127.0.0.1: {e}"))),
    };
    let addr = match listener.local_addr() {
        Ok(a) => a.to_string(),
        Err(e) => return Outcome::unstartable(cmd, &e),
    };
    let mut env = case_env(case, Transport::Tcp);
    env.push(("P1SIM_TCP", addr.clone()));
    let (mut running, _) = match Running::start(cmd, &env, Stdio::null()) {
        Ok(r) => r,
        Err(e) => return Outcome::unstartable(cmd, &e),
    };
    let mut note = None;
    let mut conn = None;
    while conn.is_none() {
        match listener.accept() {
            Ok((s, _)) => conn = Some(s),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if running.proc.has_exited() {
                    note = Some(format!("the decoder exited without connecting to P1SIM_TCP={addr}"));
                    break;
                }
                if Instant::now() >= deadline || cancel.load(Ordering::Relaxed) {
                    note = Some(format!("the decoder never connected to P1SIM_TCP={addr}"));
                    break;
                }
                wait_for_connection(&listener, Duration::from_millis(5));
            }
            Err(e) => {
                note = Some(format!("accepting the decoder's connection failed: {e}"));
                break;
            }
        }
    }
    // Kept open until the decoder is done: closing it early would reset the connection.
    let mut kept = None;
    if let Some(mut s) = conn {
        let _ = s.set_nonblocking(false);
        let mut written = 0;
        while written < case.input.len() {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || cancel.load(Ordering::Relaxed) {
                break;
            }
            let _ = s.set_write_timeout(Some(left.min(Duration::from_millis(100))));
            match s.write(&case.input[written..]) {
                Ok(n) => written += n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => {
                    note = Some(format!("writing to the decoder's connection failed after {written} bytes: {e}"));
                    break;
                }
            }
        }
        let _ = s.shutdown(Shutdown::Write);
        kept = Some(s);
    }
    let out = running.finish(deadline, cancel, note);
    drop(kept);
    out
}

/// Waits up to `limit` for a connection to arrive on the non-blocking `listener`.
#[cfg(unix)]
fn wait_for_connection(listener: &TcpListener, limit: Duration) {
    use rustix::event::{PollFd, PollFlags};
    let mut fds = [PollFd::new(listener, PollFlags::IN)];
    let _ = rustix::event::poll(&mut fds, Some(&pty::timespec(limit)));
}

#[cfg(not(unix))]
fn wait_for_connection(_listener: &TcpListener, limit: Duration) {
    thread::sleep(limit);
}

/// One decoder process serving many cases over stdin (`--persistent`); restarted after a
/// timeout or a crash.
#[derive(Debug)]
pub struct Persistent {
    cmd: DecoderCommand,
    live: Option<Session>,
}

#[derive(Debug)]
struct Session {
    proc: Proc,
    input: Sender<Vec<u8>>,
    lines: Receiver<Vec<u8>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

/// Lines of a persistent adapter's output in flight between its reader thread and the runner:
/// the reader blocks (and so does the adapter, on its full pipe) rather than queue more.
const LINES_IN_FLIGHT: usize = 64;
/// The longest line kept from a persistent adapter; the rest of a longer line is dropped.
const MAX_LINE: usize = 1 << 20;

impl Persistent {
    pub fn new(cmd: DecoderCommand) -> Persistent {
        Persistent { cmd, live: None }
    }

    fn start(&self) -> io::Result<Session> {
        let env = [("P1SIM_TRANSPORT", "stdin".to_string()), ("P1SIM_PERSISTENT", "1".to_string())];
        let mut proc = Proc::spawn(&self.cmd, &env, Stdio::piped())?;
        let mut stdin = proc.child.stdin.take().expect("piped");
        let (input, feed) = mpsc::channel::<Vec<u8>>();
        // Writes happen on their own thread: an adapter that stops reading blocks only it.
        thread::spawn(move || {
            for chunk in feed {
                if stdin.write_all(&chunk).and_then(|()| stdin.flush()).is_err() {
                    break;
                }
            }
        });
        let mut stdout = io::BufReader::new(proc.child.stdout.take().expect("piped"));
        // Bounded: an adapter that prints without end fills this and then its own pipe, and
        // holds at most LINES_IN_FLIGHT lines of MAX_LINE bytes here.
        let (tx, lines) = mpsc::sync_channel(LINES_IN_FLIGHT);
        thread::spawn(move || {
            loop {
                let mut line = Vec::new();
                match read_line(&mut stdout, &mut line, MAX_LINE) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let (stderr, _) = keep_tail(proc.child.stderr.take().expect("piped"));
        Ok(Session { proc, input, lines, stderr })
    }

    /// Sends one case and collects the answer up to `P1SIM-END`.
    pub fn run(&mut self, case: &Case, timeout: Duration, cancel: &AtomicBool) -> Outcome {
        let deadline = Instant::now() + timeout;
        if self.live.is_none() {
            match self.start() {
                Ok(s) => self.live = Some(s),
                Err(e) => return Outcome::unstartable(&self.cmd, &e),
            }
        }
        let session = self.live.as_mut().expect("started");
        let or_dash = |k: String| if k.is_empty() { "-".to_string() } else { k };
        let mut message = format!(
            "P1SIM-CASE\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            case.name,
            case.input.len(),
            case.spec,
            case.line.baud,
            case.line.framing,
            or_dash(key_hex(case.key)),
            or_dash(key_hex(case.auth_key)),
        )
        .into_bytes();
        message.extend_from_slice(&case.input);
        let _ = session.input.send(message);
        let end_line = format!("P1SIM-END\t{}", case.name);
        let mut stdout = Vec::new();
        let mut note = None;
        let end = loop {
            // The deadline holds however fast the adapter talks: checked before every line.
            if cancel.load(Ordering::Relaxed) {
                break End::Cancelled;
            }
            if Instant::now() >= deadline {
                break End::TimedOut;
            }
            let left = deadline.saturating_duration_since(Instant::now()).min(Duration::from_millis(50));
            match session.lines.recv_timeout(left) {
                Ok(line) => {
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches(['\r', '\n']);
                    if text == end_line {
                        break End::Exited(Status::Code(0));
                    } else if text.starts_with("P1SIM-END") {
                        note = Some(format!("the adapter answered {text:?} to case {}", case.name));
                        break End::Exited(Status::Code(0));
                    }
                    if stdout.len() + line.len() <= MAX_STDOUT {
                        stdout.extend_from_slice(&line);
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Its output closed: it exited (or is about to); take the status.
                    let cancel_never = AtomicBool::new(false);
                    let _ = session.proc.wait_exit(Instant::now() + Duration::from_secs(2), &cancel_never);
                    note = Some("the persistent decoder stopped before answering P1SIM-END".into());
                    break End::Exited(session.proc.reap());
                }
                Err(RecvTimeoutError::Timeout) => {
                    if cancel.load(Ordering::Relaxed) {
                        break End::Cancelled;
                    }
                    if Instant::now() >= deadline {
                        break End::TimedOut;
                    }
                }
            }
        };
        let stderr = take_tail(&session.stderr);
        if !matches!(end, End::Exited(Status::Code(0))) || note.is_some() {
            // A decoder that timed out, crashed or lost track is restarted for the next case.
            if let Some(mut s) = self.live.take() {
                s.proc.reap();
            }
        }
        Outcome { stdout, stderr, end, note }
    }
}

/// Reads one line (through `\n`) of at most `limit` bytes; longer lines are cut.
fn read_line(r: &mut impl io::BufRead, line: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
    let mut total = 0;
    loop {
        let buf = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if buf.is_empty() {
            return Ok(total);
        }
        let (take, done) = match memchr_newline(buf) {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        let room = limit.saturating_sub(line.len());
        line.extend_from_slice(&buf[..take.min(room)]);
        r.consume(take);
        total += take;
        if done {
            return Ok(total);
        }
    }
}

fn memchr_newline(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}
