//! Shared helpers for integration tests: the p1sim binary as a child process that is always
//! killed, telegram collection with the reference decoder, a tiny HTTP client, and a Python
//! virtualenv with a pinned PyPI package for interop tests.
#![allow(dead_code)]

pub mod rig_pty;

use std::fs;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use p1sim_core::decode::{Decoder, Event};

/// The p1sim binary under test.
pub fn p1sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_p1sim"))
}

/// A fresh directory for one test.
pub fn temp_dir(name: &str) -> TempDir {
    let dir = std::env::temp_dir().join(format!("p1sim-it-{}-{name}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    TempDir(dir)
}

/// A test's scratch directory: removed when the test passes, kept for a look when it fails.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl std::ops::Deref for TempDir {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl AsRef<std::path::Path> for TempDir {
    fn as_ref(&self) -> &std::path::Path {
        &self.0
    }
}

impl AsRef<std::ffi::OsStr> for TempDir {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.0.as_os_str()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}

/// A running `p1sim run`; killed when dropped, so no test leaves a process behind.
pub struct Running {
    child: Option<Child>,
    /// The lines printed on start, up to "Ctrl-C stops".
    pub banner: Vec<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
    /// Standard output after the banner, line by line.
    stdout: mpsc::Receiver<String>,
}

impl Running {
    /// Starts `p1sim run ARGS` and waits (at most 30 s) for its start banner.
    pub fn start(args: &[&str]) -> Running {
        let mut cmd = p1sim();
        cmd.arg("run").args(args);
        Running::start_command(cmd, args)
    }

    /// Starts `p1sim run ARGS` with at most `files` open file descriptors (`ulimit -n`).
    pub fn start_with_open_files(files: u32, args: &[&str]) -> Running {
        let mut cmd = Command::new("sh");
        cmd.args(["-c", &format!("ulimit -n {files} && exec \"$0\" run \"$@\""), env!("CARGO_BIN_EXE_p1sim")])
            .args(args);
        Running::start_command(cmd, args)
    }

    fn start_command(mut cmd: Command, args: &[&str]) -> Running {
        let mut child =
            cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("cannot start p1sim");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let (tx, rx) = mpsc::channel();
        // Standard output is read to its end (the activity log follows the banner), so the run
        // never waits on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line);
            }
        });
        let mut running = Running { child: Some(child), banner: Vec::new(), stderr: Some(stderr), stdout: rx };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match running.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) => {
                    let done = line.starts_with("Ctrl-C stops");
                    running.banner.push(line);
                    if done {
                        return running;
                    }
                }
                Err(_) => {
                    let err = running.stop_and_stderr();
                    panic!("p1sim run {args:?} printed no start banner; stdout {:?}; stderr:\n{err}", running.banner);
                }
            }
        }
    }

    /// The next line of standard output after the banner that contains `text`, waiting at most
    /// `limit`; `None` if none came.
    pub fn output_line(&self, text: &str, limit: Duration) -> Option<String> {
        let deadline = Instant::now() + limit;
        loop {
            match self.stdout.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains(text) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// The value after `key:` in the banner, e.g. `tcp:` gives `127.0.0.1:40123`.
    pub fn field(&self, key: &str) -> String {
        let prefix = format!("{key}:");
        self.banner
            .iter()
            .find_map(|l| l.trim().strip_prefix(&prefix).map(|v| v.trim().split(' ').next().unwrap_or("").to_string()))
            .unwrap_or_else(|| panic!("no {key:?} in {:?}", self.banner))
    }

    /// The control API address.
    pub fn control(&self) -> String {
        self.field("control").trim_start_matches("http://").trim_end_matches('/').to_string()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Sends a signal by name (`TERM`, `KILL`) and waits for the exit.
    pub fn signal(&mut self, sig: &str) -> ExitStatus {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args([format!("-{sig}"), pid]).status();
        let mut child = self.child.take().expect("still running");
        wait_bounded(&mut child, Duration::from_secs(20))
    }

    /// Kills the child and returns what it wrote to stderr.
    pub fn stop_and_stderr(&mut self) -> String {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    }

    /// Stderr after the process ended (call after [`Running::signal`]).
    pub fn stderr(&mut self) -> String {
        self.stderr.take().map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Waits for a child at most `limit`, then kills it.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = child.try_wait() {
            return s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            return child.wait().expect("wait");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Runs p1sim with `args` to completion (at most 30 s): exit code and stderr.
pub fn p1sim_fails(args: &[&str]) -> (i32, String) {
    let mut child =
        p1sim().args(args).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let mut err = String::new();
    let mut pipe = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let _ = pipe.read_to_string(&mut err);
        err
    });
    let status = wait_bounded(&mut child, Duration::from_secs(30));
    (status.code().unwrap_or(-1), reader.join().unwrap_or_default())
}

/// One telegram received: its bytes and whether the reference decoder accepts it.
#[derive(Debug, Clone)]
pub struct Received {
    pub raw: Vec<u8>,
    pub valid: bool,
    pub frame_counter: Option<u32>,
}

impl Received {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.raw).into_owned()
    }

    /// The first value of an OBIS code, e.g. `0-0:1.0.0` gives `260115120000W`.
    pub fn value(&self, obis: &str) -> Option<String> {
        let text = self.text();
        let line = text.lines().find(|l| l.starts_with(obis) && l[obis.len()..].starts_with('('))?;
        let rest = &line[obis.len() + 1..];
        Some(rest[..rest.find(')')?].to_string())
    }

    /// A register value in Wh (`000123.456*kWh` gives 123456).
    pub fn wh(&self, obis: &str) -> u64 {
        let v = self.value(obis).unwrap_or_else(|| panic!("no {obis} in {}", self.text()));
        let number = v.split('*').next().unwrap();
        (number.parse::<f64>().unwrap() * 1000.0).round() as u64
    }
}

/// Reads from `r` until `n` telegrams arrived, `limit` passed, or the stream ended. The reader's
/// own read timeout must be set so a read returns now and then.
pub fn collect(r: &mut dyn Read, n: usize, limit: Duration, key: Option<[u8; 16]>) -> (Vec<Received>, Vec<u8>) {
    let mut d = Decoder::new();
    if let Some(k) = key {
        d = d.with_key(k);
    }
    let mut got = Vec::new();
    let mut all = Vec::new();
    let deadline = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while got.len() < n && Instant::now() < deadline {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                all.extend_from_slice(&buf[..k]);
                d.feed(&buf[..k], |ev| {
                    if let Event::Telegram(f) = ev {
                        got.push(Received {
                            raw: f.raw.to_vec(),
                            valid: f.is_valid(),
                            frame_counter: f.encrypted.map(|h| h.frame_counter),
                        });
                    }
                });
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => break,
        }
    }
    (got, all)
}

/// A minimal HTTP/1.1 client for the control API, as a script uses it (a JSON body goes with
/// `Content-Type: application/json`): returns the status and the JSON body.
pub fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let headers = if body.is_some() { "Content-Type: application/json\r\n" } else { "" };
    raw_http(addr, method, path, headers, body.unwrap_or(""))
}

/// One request with the given extra header lines (each ending in CRLF) and a `Host` of `addr`
/// unless the headers name one.
pub fn raw_http(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, serde_json::Value) {
    let (status, text) = raw_http_text(addr, method, path, headers, body);
    (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
}

/// [`raw_http`] with the body as text.
pub fn raw_http_text(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap_or_else(|e| panic!("cannot reach the control API at {addr}: {e}"));
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let host = if headers.to_ascii_lowercase().contains("host:") { String::new() } else { format!("Host: {addr}\r\n") };
    let req = format!(
        "{method} {path} HTTP/1.1\r\n{host}{headers}Connection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp).into_owned();
    let status: u16 = resp.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = resp.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (status, body)
}

/// The workspace's `target/` directory (shared by every CARGO_TARGET_DIR, so a venv is built once).
pub fn workspace_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("simulator/ is in the workspace").join("target")
}

/// A virtualenv under `target/py/NAME-VERSION` with `NAME==VERSION` installed from PyPI; its
/// Python interpreter. Built once and file-locked by the conformance crate's `python` module
/// (the same code `p1sim conformance --dut dsmr_parser` uses), so tests and runs share it.
pub fn python_with(package: &str, version: &str) -> PathBuf {
    p1sim_conformance::python::venv_with(&workspace_target().join("py"), package, version)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// Connects to a p1sim TCP output like Home Assistant does (`create_tcp_dsmr_reader`) and prints
/// one line per parsed telegram: its timestamp, tariff-1 import register and equipment id.
const DSMR_PARSER_TCP_READER: &str = r#"
import asyncio, sys
from dsmr_parser.clients.protocol import create_tcp_dsmr_reader

host, port, version, want = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

def text(t, name, attr):
    obj = getattr(t, name, None)
    value = getattr(obj, "value", None) if obj is not None else None
    return "-" if value is None else (value.isoformat() if attr else str(value))

async def main():
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = 0
    def on_telegram(t):
        nonlocal count
        count += 1
        print("TELEGRAM", text(t, "P1_MESSAGE_TIMESTAMP", True), text(t, "ELECTRICITY_USED_TARIFF_1", False),
              text(t, "EQUIPMENT_IDENTIFIER", False), flush=True)
        if count >= want and not done.done():
            done.set_result(None)
    transport, _ = await create_tcp_dsmr_reader(host, port, version, on_telegram, loop=loop)
    try:
        await asyncio.wait_for(done, 60)
    finally:
        transport.close()

asyncio.run(main())
"#;

/// One telegram as dsmr_parser read it: timestamp (ISO 8601), tariff-1 import register (kWh) and
/// equipment id, each `-` when the telegram has no such object.
#[derive(Debug)]
pub struct DsmrParserRead {
    pub timestamp: String,
    pub tariff1_kwh: f64,
    pub equipment: String,
}

/// The first `want` telegrams dsmr_parser 1.11.2 (from PyPI) reads from `addr` with its asyncio
/// TCP reader for DSMR `version` ("5", "5B", ...); panics with its output when it fails.
pub fn dsmr_parser_reads_tcp(addr: std::net::SocketAddr, version: &str, want: usize) -> Vec<DsmrParserRead> {
    let python = python_with("dsmr-parser", "1.11.2");
    let mut child = Command::new(&python)
        .args(["-c", DSMR_PARSER_TCP_READER, &addr.ip().to_string(), &addr.port().to_string(), version])
        .arg(want.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(90));
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "dsmr_parser failed on {addr}:\n{stdout}\n{stderr}");
    let reads: Vec<DsmrParserRead> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("TELEGRAM "))
        .map(|l| {
            let f: Vec<&str> = l.split(' ').collect();
            assert_eq!(f.len(), 3, "{l}");
            DsmrParserRead {
                timestamp: f[0].to_string(),
                tariff1_kwh: f[1].parse().unwrap_or_else(|_| panic!("a register in kWh: {l}")),
                equipment: f[2].to_string(),
            }
        })
        .collect();
    assert_eq!(reads.len(), want, "{stdout}\n{stderr}");
    reads
}
