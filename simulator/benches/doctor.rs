//! Time to a verdict of `p1sim doctor`.
//!
//! - `file`: 1 MB captures (a clean line, and each failing wiring or setting) made with the wire
//!   model, diagnosed by the release binary (`doctor --file F --as S --json`: a fresh process,
//!   which builds the wire model for its reader setting when no telegram decodes) and in process
//!   with the model already built; against `p1sim decode F` on the same file.
//! - `live`: `p1sim run` as the meter on a PTY and `p1sim doctor PTY` probing from 115200 8N1:
//!   a DSMR 5 meter (1 s), a DSMR 4 meter (10 s), and a DSMR 3 meter (10 s) seen by an 8N1 reader,
//!   which the doctor probes through all three settings.
//!
//! `cargo bench -p p1sim --bench doctor [-- file | live]`. Figures go to BENCHMARKS.md by hand;
//! nothing here asserts timing.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use p1sim::doctor::{Capture, diagnose};
use p1sim::wire::{Setup, Through};
use p1sim_core::generator::Generator;
use p1sim_core::wire::{FaultPlan, ReceiverConfig};

const MB: usize = 1 << 20;
const RUNS: usize = 5;

fn p1sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_p1sim"))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

/// About `size` bytes of what a reader at `rx` gets from `profile` through `board`.
fn capture(profile: &str, board: Option<&str>, rx: &str, size: usize) -> Vec<u8> {
    let p = p1sim_core::builtin::get(profile).unwrap().unwrap();
    let rx: ReceiverConfig = rx.parse().unwrap();
    let board = board.map(|b| p1sim_core::builtin::board(b).unwrap().unwrap());
    let mut g = Generator::new(p.clone(), p.household.clone(), 3, 1_780_000_000, None).unwrap();
    let setup = Setup { line: p.line, plan: FaultPlan::CLEAN, board, receiver: rx };
    let out = Shared::default();
    let mut through = Through::new(setup, p.interval_s, out.clone()).unwrap();
    let mut telegram = Vec::new();
    // What arrives per telegram varies with the fault: check the output's size as it grows.
    let mut sent = 0;
    loop {
        telegram.clear();
        g.next_into(&mut telegram);
        through.write_all(&telegram).unwrap();
        sent += 1;
        if sent % 16 == 0 && out.0.borrow().len() >= size {
            break;
        }
    }
    through.finish().unwrap();
    let mut bytes = out.0.take();
    bytes.truncate(size);
    bytes
}

/// A buffer the wire model writes into and the caller watches grow.
#[derive(Clone, Default)]
struct Shared(std::rc::Rc<std::cell::RefCell<Vec<u8>>>);

impl Write for Shared {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.borrow_mut().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn file_bench(dir: &Path) {
    let cases: [(&str, &str, Option<&str>, &str, &str); 5] = [
        ("ok", "iskra-am550", Some("transistor-inverter"), "115200-8N1", "115200-8N1"),
        ("inverted", "iskra-am550", Some("ftdi-not-inverted"), "115200-8N1-nul", "115200-8N1"),
        ("wrong-baud", "kamstrup-162", None, "115200-8N1", "115200-8N1"),
        ("parity-as-data", "kamstrup-162", None, "9600-8N1", "9600-8N1"),
        ("not-dsmr", "", None, "", "115200-8N1"),
    ];
    println!(
        "| capture (1 MiB) | first cause | `doctor --file` (fresh process) | diagnose() in process, model built | `decode` (fresh process) |"
    );
    println!("| --- | --- | --- | --- | --- |");
    for (want, profile, board, rx, read_as) in cases {
        let bytes = if profile.is_empty() { random(MB) } else { capture(profile, board, rx, MB) };
        let file = dir.join(format!("{want}.bin"));
        std::fs::write(&file, &bytes).unwrap();
        let mut cold = Vec::new();
        let mut first = String::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            let out = p1sim().args(["doctor", "--file"]).arg(&file).args(["--as", read_as, "--json"]).output().unwrap();
            cold.push(t.elapsed());
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            first = v["causes"][0]["cause"].as_str().unwrap_or("?").to_string();
        }
        let capture = Capture { bytes: bytes.clone(), read_as: Some(read_as.parse_setting()), ..Capture::default() };
        diagnose(&capture, None).unwrap();
        let warm = median(
            (0..RUNS)
                .map(|_| {
                    let t = Instant::now();
                    diagnose(&capture, None).unwrap();
                    t.elapsed()
                })
                .collect(),
        );
        let decode = median(
            (0..RUNS)
                .map(|_| {
                    let t = Instant::now();
                    p1sim().arg("decode").arg(&file).stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
                    t.elapsed()
                })
                .collect(),
        );
        println!(
            "| {want}: {} | {first} | {} | {} | {} |",
            if profile.is_empty() { "random bytes".to_string() } else { format!("`{profile}` {board:?} at {rx}") },
            ms(median(cold)),
            ms(warm),
            ms(decode)
        );
    }
}

trait ParseSetting {
    fn parse_setting(&self) -> p1sim_core::spec::LineSettings;
}

impl ParseSetting for &str {
    fn parse_setting(&self) -> p1sim_core::spec::LineSettings {
        let (baud, framing) = self.split_once('-').unwrap();
        p1sim_core::spec::LineSettings { baud: baud.parse().unwrap(), framing: framing.parse().unwrap() }
    }
}

fn random(n: usize) -> Vec<u8> {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// A child that is killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn live_bench(dir: &Path) {
    let cases: [(&str, &[&str]); 3] = [
        ("`iskra-am550` (DSMR 5, 1 s)", &["--profile", "iskra-am550"]),
        ("`kaifa-ma304` (DSMR 4.2, 10 s)", &["--profile", "kaifa-ma304"]),
        ("`kamstrup-162` (DSMR 3, 10 s) seen by an 8N1 reader", &["--profile", "kamstrup-162", "--as-seen-by", "8N1"]),
    ];
    println!("| meter on the PTY | verdict | settings tried | time to verdict (each run) |");
    println!("| --- | --- | --- | --- |");
    for (n, (label, args)) in cases.into_iter().enumerate() {
        let link: PathBuf = dir.join(format!("meter-{n}"));
        let mut child = p1sim()
            .arg("run")
            .args(args)
            .arg("--pty")
            .arg(&link)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let _run = Guard(child);
        let mut lines = BufReader::new(out).lines();
        for line in lines.by_ref() {
            if line.unwrap().contains("Ctrl-C") {
                break;
            }
        }
        // Keep the banner's pipe drained.
        std::thread::spawn(move || for _ in lines {});
        let mut times = Vec::new();
        let mut verdict = String::new();
        let mut tried = String::new();
        for _ in 0..3 {
            let t = Instant::now();
            let out = p1sim().arg("doctor").arg(&link).arg("--json").output().unwrap();
            times.push(t.elapsed());
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)
                .unwrap_or_else(|e| panic!("{label}: {e}: {}", String::from_utf8_lossy(&out.stderr)));
            verdict =
                format!("{} at {}", v["causes"][0]["cause"].as_str().unwrap_or("?"), v["as"].as_str().unwrap_or("?"));
            tried = v["notes"]
                .as_array()
                .and_then(|n| n.iter().filter_map(|x| x.as_str()).find(|x| x.starts_with("probed")))
                .map_or("1".into(), |p| (p.matches(';').count() + 1).to_string());
        }
        let each: Vec<String> = times.iter().map(|t| format!("{:.2} s", t.as_secs_f64())).collect();
        println!("| {label} | {verdict} | {tried} | {} |", each.join(", "));
        let _ = std::io::stdout().flush();
    }
}

fn main() {
    let which: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let dir = std::env::temp_dir().join(format!("p1sim-bench-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    if which.is_empty() || which.iter().any(|w| w == "file") {
        file_bench(&dir);
    }
    if which.is_empty() || which.iter().any(|w| w == "live") {
        live_bench(&dir);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
