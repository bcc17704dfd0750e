//! Benchmarks of `p1sim run` as a reader sees it: telegram start jitter against the ideal
//! interval boundary on a PTY and on TCP, pacing accuracy (telegram duration against the line
//! rate), and fleet capacity (many meters at 1 s with their start jitter).
//!
//! `cargo bench -p p1sim --bench live [-- single SECONDS | pacing SECONDS | fleet N burst|line SECONDS TICK_MS]`. Figures go
//! to BENCHMARKS.md by hand; nothing here asserts timing.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpStream;
use std::os::unix::fs::OpenOptionsExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn unix_ns() -> i128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as i128
}

/// A child that is killed when dropped.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `p1sim run ARGS` and returns it with its start banner.
fn start(args: &[&str]) -> (Guard, Vec<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_p1sim"))
        .arg("run")
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("p1sim");
    let out = child.stdout.take().unwrap();
    let mut banner = Vec::new();
    for line in BufReader::new(out).lines() {
        let line = line.unwrap();
        let done = line.starts_with("Ctrl-C stops");
        banner.push(line);
        if done {
            break;
        }
    }
    (Guard(child), banner)
}

fn field(banner: &[String], key: &str) -> String {
    let prefix = format!("{key}:");
    banner
        .iter()
        .find_map(|l| l.trim().strip_prefix(&prefix).map(|v| v.trim().split(' ').next().unwrap().to_string()))
        .unwrap()
}

/// One telegram as received: arrival of its first and last byte (Unix ns) and its length.
#[derive(Debug, Clone, Copy)]
struct Arrival {
    first: i128,
    last: i128,
    len: usize,
}

/// Reads a stream and splits it into telegrams at `/`; a telegram ends with the LF after `!`.
fn arrivals(mut r: impl Read, until: Instant) -> Vec<Arrival> {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let mut cur: Option<Arrival> = None;
    let mut after_bang = false;
    while Instant::now() < until {
        let n = match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(_) => continue,
        };
        let now = unix_ns();
        for &b in &buf[..n] {
            if b == b'/' {
                cur = Some(Arrival { first: now, last: now, len: 0 });
                after_bang = false;
            }
            if let Some(a) = cur.as_mut() {
                a.len += 1;
                a.last = now;
                if b == b'!' {
                    after_bang = true;
                }
                if after_bang && b == b'\n' {
                    out.push(*a);
                    cur = None;
                }
            }
        }
    }
    out
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Jitter of each first byte against the whole second (plus one character time: a byte is
/// received after its stop bit), in microseconds.
fn jitter_us(a: &[Arrival], offset_ns: i128) -> Vec<f64> {
    a.iter()
        .map(|x| {
            let t = x.first - offset_ns;
            let nearest = (t + 500_000_000).div_euclid(1_000_000_000) * 1_000_000_000;
            (t - nearest) as f64 / 1000.0
        })
        .collect()
}

fn report_jitter(name: &str, a: &[Arrival], char_ns: i128) {
    // The first telegram may have been joined mid-way; skip it.
    let a = if a.len() > 1 { &a[1..] } else { a };
    let mut j = jitter_us(a, char_ns);
    let (p50, p99, max) = (percentile(&mut j, 0.5), percentile(&mut j, 0.99), percentile(&mut j, 1.0));
    println!("{name}: {} telegrams, start jitter p50 {p50:.0} us, p99 {p99:.0} us, max {max:.0} us", a.len());
}

fn report_pacing(name: &str, a: &[Arrival], char_ns: f64) {
    let a = if a.len() > 1 { &a[1..] } else { a };
    let mut err: Vec<f64> = a
        .iter()
        .map(|x| {
            let expected = (x.len as f64 - 1.0) * char_ns;
            ((x.last - x.first) as f64 - expected) / expected * 100.0
        })
        .collect();
    let mean_len = a.iter().map(|x| x.len).sum::<usize>() as f64 / a.len().max(1) as f64;
    let mean_ms = a.iter().map(|x| (x.last - x.first) as f64 / 1e6).sum::<f64>() / a.len().max(1) as f64;
    let (p50, p99) = (percentile(&mut err, 0.5), percentile(&mut err, 0.99));
    let worst = err.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    println!(
        "{name}: {} telegrams of {mean_len:.0} B lasting {mean_ms:.2} ms on average; duration error p50 {p50:+.3} %, \
         p99 {p99:+.3} %, worst |{worst:.3}| %",
        a.len()
    );
}

fn open_pty(path: &str) -> std::fs::File {
    // O_NOCTTY: a benchmark must not adopt the PTY as its controlling terminal.
    OpenOptions::new().read(true).custom_flags(rustix::fs::OFlags::NOCTTY.bits() as i32).open(path).unwrap()
}

/// One 1 s meter on a PTY and TCP at once, at wall-clock pace.
fn single(seconds: u64) {
    let dir = std::env::temp_dir().join(format!("p1sim-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("meter");
    let (_guard, banner) = start(&["--profile", "iskra-am550", "--pty", link.to_str().unwrap(), "--tcp", "0"]);
    let tcp = field(&banner, "tcp");
    let until = Instant::now() + Duration::from_secs(seconds);
    let pty = open_pty(link.to_str().unwrap());
    // Raw mode is already set by p1sim on its side of the PTY.
    let pty_reader = std::thread::spawn(move || arrivals(pty, until));
    let sock = TcpStream::connect(&tcp).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(500))).unwrap();
    let _ = sock.set_nodelay(true);
    let tcp_reader = std::thread::spawn(move || arrivals(sock, until));
    let (p, t) = (pty_reader.join().unwrap(), tcp_reader.join().unwrap());
    let char_ns = 86_805;
    report_jitter("single meter, PTY, 115200 8N1", &p, char_ns);
    report_jitter("single meter, TCP, 115200 8N1", &t, char_ns);
    report_pacing("pacing iskra-am550 on PTY (115200, 86.8 us per char)", &p, char_ns as f64);
    report_pacing("pacing iskra-am550 on TCP (115200, 86.8 us per char)", &t, char_ns as f64);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A 9600 7E1 meter at 10x speed: one telegram a second, each lasting about half a second.
fn pacing(seconds: u64) {
    let dir = std::env::temp_dir().join(format!("p1sim-bench-pacing-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let link = dir.join("meter");
    let (_guard, _) = start(&["--profile", "kamstrup-162", "--pty", link.to_str().unwrap(), "--speed", "10"]);
    let until = Instant::now() + Duration::from_secs(seconds);
    let p = arrivals(open_pty(link.to_str().unwrap()), until);
    report_pacing("pacing kamstrup-162 on PTY (9600 7E1, 1041.7 us per char)", &p, 1_041_666.0);
    let _ = std::fs::remove_dir_all(&dir);
}

fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
}

/// N meters at 1 s, spread over the second, one TCP client each.
fn fleet(n: usize, pace: &str, seconds: u64, tick_ms: u64) {
    use rustix::process::{Resource, Rlimit, setrlimit};
    let _ =
        setrlimit(Resource::Nofile, Rlimit { current: Some(4 * n as u64 + 1024), maximum: Some(4 * n as u64 + 1024) });
    let base = 20_000u16;
    let (guard, _) = start(&[
        "--profile",
        "iskra-am550",
        "--fleet",
        &n.to_string(),
        "--tcp",
        &format!("127.0.0.1:{base}"),
        "--pace",
        pace,
        "--tick-ms",
        &tick_ms.to_string(),
    ]);
    let pid = guard.0.id();
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let results: Arc<Mutex<Vec<f64>>> = Arc::new(Mutex::new(Vec::new()));
    let counted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let char_ns: i128 = if pace == "burst" { 0 } else { 86_805 };
    let (ticks_before, ticks_after, wall) = rt.block_on(async {
        use tokio::io::AsyncReadExt;
        let mut tasks = Vec::new();
        let warmup = Duration::from_secs(3);
        let connected_at = Instant::now();
        for i in 0..n {
            let results = Arc::clone(&results);
            let counted = Arc::clone(&counted);
            let mut tries = 0;
            let mut s = loop {
                match tokio::net::TcpStream::connect(("127.0.0.1", base + i as u16)).await {
                    Ok(s) => break s,
                    Err(e) if tries > 3000 => panic!("cannot connect to meter {i}: {e}"),
                    Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                }
                tries += 1;
            };
            let phase = 1_000_000_000i128 * i as i128 / n as i128;
            tasks.push(tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut local = Vec::new();
                let start = Instant::now();
                loop {
                    let k = match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(k) => k,
                    };
                    if buf[..k].contains(&b'/') && start.elapsed() > warmup {
                        let t = unix_ns() - phase - char_ns;
                        let nearest = (t + 500_000_000).div_euclid(1_000_000_000) * 1_000_000_000;
                        local.push((t - nearest) as f64 / 1000.0);
                        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    if start.elapsed() > warmup + Duration::from_secs(seconds) {
                        break;
                    }
                }
                results.lock().unwrap().extend(local);
            }));
        }
        eprintln!("connected {n} clients in {:.1} s", connected_at.elapsed().as_secs_f64());
        tokio::time::sleep(warmup).await;
        let t0 = (cpu_ticks(pid), Instant::now());
        for t in tasks {
            let _ = t.await;
        }
        (t0.0, cpu_ticks(pid), t0.1.elapsed())
    });
    let mut j = results.lock().unwrap().clone();
    let got = j.len();
    let (p50, p99, max) = (percentile(&mut j, 0.5), percentile(&mut j, 0.99), percentile(&mut j, 1.0));
    let hz = 100.0; // USER_HZ on Linux
    let cores = (ticks_after - ticks_before) as f64 / hz / wall.as_secs_f64();
    println!(
        "fleet {n} meters at 1 s, --pace {pace} --tick-ms {tick_ms}: {got} telegrams in {:.0} s ({:.0}/s expected {n}/s), start jitter \
         p50 {p50:.0} us, p99 {p99:.0} us, max {max:.0} us; p1sim used {cores:.2} cores",
        wall.as_secs_f64(),
        got as f64 / wall.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; everything else is ours.
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    match args.first().map(String::as_str) {
        Some("single") => single(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(60)),
        Some("pacing") => pacing(args.get(1).and_then(|s| s.parse().ok()).unwrap_or(30)),
        Some("fleet") => fleet(
            args.get(1).and_then(|s| s.parse().ok()).unwrap_or(10_000),
            args.get(2).map(String::as_str).unwrap_or("burst"),
            args.get(3).and_then(|s| s.parse().ok()).unwrap_or(20),
            args.get(4).and_then(|s| s.parse().ok()).unwrap_or(10),
        ),
        _ => {
            single(30);
            pacing(20);
            fleet(1000, "line", 10, 10);
        }
    }
}
