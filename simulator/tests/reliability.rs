//! What p1sim promises when it is attacked or starved, end to end with the real binary: the
//! control API refuses what a web page or a DNS rebinding could send, and every size is bounded;
//! registers never go back across kill -9, even while saves fail; TCP readers cannot be locked
//! out; hostile files and flags end in an error that names them; decode streams.
//!
//! Waits are upper bounds, never timing checks.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Received, Running, collect, http, p1sim, p1sim_fails, raw_http, temp_dir};

fn tcp(addr: &str) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    s
}

#[test]
fn the_control_api_refuses_other_origins_foreign_hosts_and_non_json_bodies() {
    let run = Running::start(&["--profile", "iskra-am550", "--tcp", "0", "--control", "127.0.0.1:0", "--speed", "5"]);
    let api = run.control();
    let port = api.rsplit(':').next().unwrap().to_string();
    let json = "Content-Type: application/json\r\n";
    // A page's simple cross-origin POST: text/plain, no preflight.
    let (code, body) = raw_http(&api, "POST", "/load", "Content-Type: text/plain\r\n", r#"{"watts": 9000}"#);
    assert_eq!(code, 415, "{body}");
    assert!(body["error"].as_str().unwrap().contains("application/json"), "{body}");
    let (code, _) = raw_http(&api, "POST", "/load", "", r#"{"watts": 9000}"#);
    assert_eq!(code, 415, "no Content-Type at all");
    // Another origin, even with the right type (a preflight would have been refused anyway).
    let (code, body) =
        raw_http(&api, "POST", "/load", &format!("{json}Origin: http://evil.example\r\n"), r#"{"watts": 9000}"#);
    assert_eq!(code, 403, "{body}");
    let (code, _) = raw_http(&api, "GET", "/readings", "Origin: null\r\n", "");
    assert_eq!(code, 403);
    // DNS rebinding: the browser names the attacker's host.
    let (code, body) = raw_http(&api, "GET", "/readings", &format!("Host: rebind.example:{port}\r\n"), "");
    assert_eq!(code, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("rebinding"), "{body}");
    let (code, _) = raw_http(&api, "GET", "/readings", "Host: 127.0.0.1:1\r\n", "");
    assert_eq!(code, 403, "the right address with another port is another server");
    // The server's own origin and localhost are fine.
    let own = format!("{json}Origin: http://{api}\r\n");
    let (code, body) = raw_http(&api, "POST", "/load", &own, r#"{"watts": 1234}"#);
    assert_eq!(code, 200, "{body}");
    let (code, _) = raw_http(&api, "GET", "/readings", &format!("Host: localhost:{port}\r\n"), "");
    assert_eq!(code, 200);
    let (_, readings) = http(&api, "GET", "/readings", None);
    assert_eq!(readings["overrides"]["load_w"], 1234, "none of the refused requests changed the load");
    let (_, status) = http(&api, "GET", "/status", None);
    assert!(status["control"]["rejected_requests"].as_u64().unwrap() >= 6, "{status}");
}

#[test]
fn sizes_in_api_calls_are_bounded_and_the_meter_keeps_running() {
    let run = Running::start(&["--profile", "iskra-am550", "--tcp", "0", "--control", "127.0.0.1:0", "--speed", "5"]);
    let api = run.control();
    for (path, body, needle) in [
        ("/fault", r#"{"kind": "garbage-before", "bytes": 1000000000000}"#, "bytes"),
        ("/fault", r#"{"kind": "oversize", "chars": 100000000}"#, "chars"),
        ("/fault", r#"{"kind": "garbage-after", "bytes": 20000}"#, "one interval"),
        ("/fault", r#"{"kind": "bit-flip", "ber": 2}"#, "ber"),
        ("/fault", r#"{"kind": "wrong-crc", "bites": 3}"#, "bites"),
        ("/load", r#"{"watts": 4294967295}"#, "99999"),
        ("/power-failure", r#"{"seconds": 4294967295}"#, "a year"),
        ("/ev", r#"{"watts": 11000, "seconds": 0}"#, "1 to"),
    ] {
        let (code, reply) = http(&api, "POST", path, Some(body));
        assert_eq!(code, 400, "{path} {body}: {reply}");
        assert!(reply["error"].as_str().unwrap().contains(needle), "{path} {body}: {reply}");
    }
    let (code, _) = http(&api, "POST", "/message", Some(&format!(r#"{{"text": "{}"}}"#, "x".repeat(20_000))));
    assert_eq!(code, 413, "a body over the limit");
    // One-off faults queue up to a limit; past it they are refused until the next telegram.
    for _ in 0..40 {
        let (code, reply) = http(&api, "POST", "/fault", Some(r#"{"kind": "garbage-before", "bytes": 100}"#));
        match code {
            200 => assert!(reply["queued"].as_u64().unwrap() <= 16, "{reply}"),
            _ => assert!(reply["error"].as_str().unwrap().contains("already wait"), "{reply}"),
        }
    }
    let mut s = tcp(&run.field("tcp"));
    let (got, _) = collect(&mut s, 3, Duration::from_secs(20), None);
    assert_eq!(got.len(), 3, "the meter still sends");
}

#[test]
fn slow_and_idle_connections_cannot_hold_the_control_api() {
    let run = Running::start(&["--profile", "iskra-am550", "--tcp", "0", "--control", "127.0.0.1:0"]);
    let api = run.control();
    // A slowloris: connections that send half a request and nothing more.
    let mut idle: Vec<TcpStream> = (0..32)
        .map(|_| {
            let mut s = TcpStream::connect(&api).unwrap();
            let _ = s.write_all(b"GET /readings HTTP/1.1\r\nHost: ");
            s
        })
        .collect();
    // One more is closed at once.
    let mut extra = TcpStream::connect(&api).unwrap();
    extra.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = extra.write_all(format!("GET /status HTTP/1.1\r\nHost: {api}\r\n\r\n").as_bytes());
    let mut buf = [0u8; 64];
    assert!(matches!(extra.read(&mut buf), Ok(0) | Err(_)), "refused while the limit is reached");
    // The header timeout frees them; the API answers again.
    for s in &mut idle {
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let mut rest = Vec::new();
        let _ = s.read_to_end(&mut rest);
    }
    let (code, status) = http(&api, "GET", "/status", None);
    assert_eq!(code, 200);
    assert!(status["control"]["refused_connections"].as_u64().unwrap() >= 1, "{status}");
}

/// Register values of a telegram in Wh, in a fixed order.
fn registers(t: &Received) -> [u64; 4] {
    ["1-0:1.8.1", "1-0:1.8.2", "1-0:2.8.1", "1-0:2.8.2"].map(|o| t.wh(o))
}

fn status_of(api: &str) -> serde_json::Value {
    http(api, "GET", "/status", None).1
}

#[test]
fn registers_never_go_back_across_kill_9_while_saves_fail() {
    let dir = temp_dir("kill9-campaign");
    let sub = dir.join("state");
    std::fs::create_dir_all(&sub).unwrap();
    let state = sub.join("meter.json");
    let state_arg = state.to_str().unwrap().to_string();
    let args = [
        "--profile",
        "iskra-am550",
        "--tcp",
        "0",
        "--control",
        "127.0.0.1:0",
        "--speed",
        "20",
        "--pace",
        "burst",
        "--state",
        &state_arg,
    ];
    let mut seen: Vec<Received> = Vec::new();
    let (mut withheld, mut rounds_with_failures) = (0u64, 0);
    for round in 0..6 {
        let mut run = if round % 3 == 2 { Running::start_with_open_files(48, &args) } else { Running::start(&args) };
        let api = run.control();
        let mut s = tcp(&run.field("tcp"));
        let (got, _) = collect(&mut s, 5, Duration::from_secs(20), None);
        assert!(got.len() >= 5, "round {round}");
        seen.extend(got);
        match round % 3 {
            // The state's directory disappears (an unmounted disk): every save fails.
            1 => {
                let away = dir.join("state-away");
                std::fs::rename(&sub, &away).unwrap();
                let (during, _) = collect(&mut s, 20, Duration::from_millis(700), None);
                let st = status_of(&api);
                seen.extend(during);
                std::fs::rename(&away, &sub).unwrap();
                assert!(st["state"]["failed_saves"].as_u64().unwrap() > 0, "{st}");
                assert!(st["state"]["failing"].as_bool().unwrap(), "{st}");
                withheld += st["state"]["withheld_telegrams"].as_u64().unwrap();
                rounds_with_failures += 1;
            }
            // No file descriptors left: readers take every one the process may open.
            2 => {
                let addr = run.field("tcp");
                let hogs: Vec<TcpStream> = (0..60).filter_map(|_| TcpStream::connect(&addr).ok()).collect();
                let (during, _) = collect(&mut s, 20, Duration::from_millis(700), None);
                seen.extend(during);
                drop(hogs);
                let deadline = Instant::now() + Duration::from_secs(10);
                let st = loop {
                    let st = status_of(&api);
                    if !st["state"]["failing"].as_bool().unwrap_or(true) || Instant::now() > deadline {
                        break st;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                };
                assert!(st["state"]["failed_saves"].as_u64().unwrap() > 0, "fd exhaustion failed saves: {st}");
                withheld += st["state"]["withheld_telegrams"].as_u64().unwrap();
                rounds_with_failures += 1;
            }
            _ => {}
        }
        let (after, _) = collect(&mut s, 3, Duration::from_secs(20), None);
        assert!(after.len() >= 3, "round {round}: sending resumes once saves work again");
        seen.extend(after);
        // Killed at an arbitrary point, failures or not.
        run.signal("KILL");
    }
    assert_eq!(rounds_with_failures, 4);
    assert!(withheld > 0, "telegrams were withheld while saves failed");
    for w in seen.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        assert!(a.valid && b.valid);
        let (ra, rb) = (registers(a), registers(b));
        for i in 0..4 {
            assert!(rb[i] >= ra[i], "a register went back:\n{}\n{}", a.text(), b.text());
        }
        assert!(b.value("0-0:1.0.0") != a.value("0-0:1.0.0"), "no telegram twice");
    }
}

#[test]
fn a_second_run_on_the_same_state_file_is_refused_with_the_pid() {
    let dir = temp_dir("state-lock");
    let state = dir.join("meter.json");
    let run = Running::start(&["--profile", "iskra-am550", "--tcp", "0", "--state", state.to_str().unwrap()]);
    let (code, err) =
        p1sim_fails(&["run", "--profile", "iskra-am550", "--tcp", "0", "--state", state.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("PID {}", run.pid())), "{err}");
    let (code, err) =
        p1sim_fails(&["emit", "--profile", "iskra-am550", "--count", "1", "--state", state.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("in use"), "{err}");
}

#[test]
fn a_hang_up_stops_the_run_cleanly_and_removes_the_link() {
    let dir = temp_dir("sighup");
    let link = dir.join("meter");
    let mut run = Running::start(&["--profile", "iskra-am550", "--pty", link.to_str().unwrap()]);
    assert!(std::fs::symlink_metadata(&link).is_ok());
    let status = run.signal("HUP");
    assert!(status.success(), "{status:?}: {}", run.stderr());
    assert!(std::fs::symlink_metadata(&link).is_err(), "the link is gone");
}

#[test]
fn stalled_and_closed_tcp_clients_cannot_lock_a_reader_out() {
    let run = Running::start(&[
        "--profile",
        "iskra-am550",
        "--tcp",
        "0",
        "--control",
        "127.0.0.1:0",
        "--speed",
        "20",
        "--pace",
        "burst",
        "--max-clients",
        "4",
    ]);
    let (addr, api) = (run.field("tcp"), run.control());
    // 64 quick connect/close pairs: each is let go at once.
    for _ in 0..64 {
        drop(TcpStream::connect(&addr).unwrap());
    }
    let mut reader = tcp(&addr);
    let (got, _) = collect(&mut reader, 2, Duration::from_secs(20), None);
    assert_eq!(got.len(), 2, "a reader after 64 closed clients gets telegrams");
    drop(reader);
    // Four clients that never read fill the places; a real reader still gets in, and the
    // stalled ones are disconnected.
    let stalled: Vec<TcpStream> = (0..4).map(|_| TcpStream::connect(&addr).unwrap()).collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut got = Vec::new();
    while got.len() < 3 && Instant::now() < deadline {
        let mut reader = tcp(&addr);
        got = collect(&mut reader, 3, Duration::from_secs(3), None).0;
    }
    assert_eq!(got.len(), 3, "a reader got in past four stalled clients");
    let (_, status) = http(&api, "GET", "/status", None);
    let out = &status["outputs"][0];
    let evicted = out["evicted_stalled"].as_u64().unwrap() + out["evicted_for_room"].as_u64().unwrap();
    assert!(evicted >= 1, "{status}");
    drop(stalled);
}

#[test]
fn hostile_files_and_flags_end_in_errors_that_name_them() {
    let dir = temp_dir("hostile-files");
    let p = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let emit = |extra: &[&str]| {
        let mut args = vec!["emit", "--profile", "iskra-am550", "--count", "2"];
        args.extend_from_slice(extra);
        p1sim_fails(&args)
    };
    let faults = p(
        "faults.toml",
        "[[fault]]\nkind = \"wrong-crc\"\n\n[[fault]]\nkind = \"garbage-before\"\nbytes = 1000000000000\n",
    );
    let (code, err) = emit(&["--faults", &faults]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&format!("{faults}:6:1: key `bytes`")), "{err}");
    let (code, err) = emit(&["--state", "/dev/zero"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not a regular file"), "{err}");
    let big_state = p("big.json", &" ".repeat(17 << 20));
    let (code, err) = emit(&["--state", &big_state]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("16 MiB limit for a state file"), "{err}");
    for (flag, what) in [("--events", "events file"), ("--faults", "scenario")] {
        let (code, err) = emit(&[flag, "/dev/zero"]);
        assert_eq!(code, 2, "{flag}: {err}");
        assert!(err.contains(&format!("16 MiB limit for a {what}")), "{flag}: {err}");
    }
    let (code, err) = p1sim_fails(&["emit", "--profile", "/dev/zero"]);
    assert_eq!(code, 2);
    assert!(err.contains("16 MiB limit for a profile"), "{err}");
    let events = p(
        "events.toml",
        "[[events]]\nat = \"2026-01-15T12:00:00Z\"\naction = \"power-failure\"\nseconds = 4294967295\n",
    );
    let (code, err) = emit(&["--events", &events]);
    assert_eq!(code, 2);
    assert!(err.contains(&format!("{events}:4:1: key `seconds`")), "{err}");
    let (code, err) = emit(&["--household", "annual_kwh=nan"]);
    assert_eq!(code, 2);
    assert!(err.contains("annual_kwh") && err.contains("out of range"), "{err}");
    // A state whose outage never ends, or whose M-Bus list is empty.
    let state = dir.join("meter.json");
    let (code, _) = emit(&["--state", state.to_str().unwrap()]);
    assert_eq!(code, 0);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
    v["outage_until"] = serde_json::json!(i64::MAX);
    v["outage_since"] = v["now"].clone();
    std::fs::write(&state, v.to_string()).unwrap();
    let (code, err) = emit(&["--state", state.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("field `outage_until`"), "{err}");
    for (flags, needle) in
        [(&["--duration", "0s"][..], "at least 1s"), (&["--duration", "99999999999999999999d"][..], "100 years")]
    {
        let mut args = vec!["emit", "--profile", "iskra-am550"];
        args.extend_from_slice(flags);
        let (code, err) = p1sim_fails(&args);
        assert_eq!(code, 2, "{flags:?}: {err}");
        assert!(err.contains(needle), "{flags:?}: {err}");
    }
    let (code, err) = p1sim_fails(&["run", "--profile", "iskra-am550", "--speed", "1e-20"]);
    assert_eq!(code, 2);
    assert!(err.contains("0.001"), "{err}");
}

#[test]
fn decode_prints_each_telegram_as_it_arrives() {
    let telegrams = p1sim().args(["emit", "--profile", "iskra-am550", "--count", "2"]).output().unwrap().stdout;
    let second = telegrams.iter().skip(1).position(|&b| b == b'/').unwrap() + 1;
    for json in [false, true] {
        let mut child = p1sim()
            .arg("decode")
            .args(if json { &["--json"][..] } else { &[][..] })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // The first telegram and the start of the next, which ends the first; the pipe stays open.
        stdin.write_all(&telegrams[..second + 1]).unwrap();
        stdin.flush().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            let n = stdout.read(&mut buf).unwrap_or(0);
            let _ = tx.send(buf[..n].to_vec());
        });
        let first = rx.recv_timeout(Duration::from_secs(20)).expect("output before the input ends");
        assert!(!first.is_empty(), "json={json}");
        drop(stdin);
        support::wait_bounded(&mut child, Duration::from_secs(10));
    }
}

#[test]
fn a_closed_pipe_ends_profiles_json_quietly() {
    let mut child = p1sim().args(["profiles", "--json"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 1];
    stdout.read_exact(&mut first).unwrap();
    drop(stdout);
    let status = support::wait_bounded(&mut child, Duration::from_secs(20));
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(status.success(), "{status:?}: {err}");
    assert!(!err.contains("Broken pipe"), "{err}");
}

#[test]
fn an_interrupted_emit_saves_the_state_of_what_it_wrote() {
    let dir = temp_dir("emit-sigint");
    let state = dir.join("meter.json");
    let mut child = p1sim()
        .args(["emit", "--profile", "iskra-am550", "--duration", "3650d", "--state", state.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while seen.len() < 1 << 20 {
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0);
        seen.extend_from_slice(&buf[..n]);
    }
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    // Keep reading so the writer is never stuck on a full pipe.
    let reader = std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = out.read_to_end(&mut rest);
        rest
    });
    let status = support::wait_bounded(&mut child, Duration::from_secs(20));
    seen.extend(reader.join().unwrap());
    assert_eq!(status.code(), Some(130), "{status:?}");
    // The next emit continues after the last telegram written.
    let next = p1sim()
        .args(["emit", "--profile", "iskra-am550", "--count", "1", "--state", state.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(next.status.success(), "{}", String::from_utf8_lossy(&next.stderr));
    let last_written = String::from_utf8_lossy(&seen);
    let last_tst = last_written.rsplit("0-0:1.0.0(").next().unwrap()[..12].to_string();
    let next_text = String::from_utf8_lossy(&next.stdout);
    let next_tst = next_text.split("0-0:1.0.0(").nth(1).unwrap()[..12].to_string();
    assert!(next_tst > last_tst, "continues after {last_tst}, got {next_tst}");
}

#[test]
fn a_killed_conformance_runner_leaves_no_decoder_behind() {
    let dir = temp_dir("runner-kill9");
    let pids = dir.join("pids");
    let adapter = format!("echo $$ >> {}; exec sleep 300", pids.display());
    let mut child = p1sim()
        .args(["conformance", "--dut", &adapter, "--timeout", "120", "--jobs", "2"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&pids).map_or(0, |t| t.lines().count()) < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    // The runner hands a decoder to its watchdog just after starting it, while the adapter is
    // already writing its pid: on a loaded machine the kill could fall in between.
    std::thread::sleep(Duration::from_millis(500));
    let _ = child.kill();
    let _ = child.wait();
    let decoders: Vec<String> = std::fs::read_to_string(&pids).unwrap().lines().map(String::from).collect();
    assert!(decoders.len() >= 2, "{decoders:?}");
    let alive = |pid: &str| Path::new(&format!("/proc/{pid}")).exists() && !zombie(pid);
    let deadline = Instant::now() + Duration::from_secs(20);
    while decoders.iter().any(|p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!decoders.iter().any(|p| alive(p)), "decoders outlived the runner: {decoders:?}");
}

fn zombie(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| r.trim_start().starts_with('Z')))
}

#[test]
fn a_persistent_adapter_that_never_ends_is_cut_off_with_bounded_memory() {
    // Prints forever without P1SIM-END: the case times out, memory stays bounded.
    let mut child = p1sim()
        .args([
            "conformance",
            "--dut",
            "yes '{\"objects\": []}'",
            "--persistent",
            "--timeout",
            "2",
            "--filter",
            "clean/iskra-am550/clean/*",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut peak_kb = 0u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Ok(Some(s)) = child.try_wait() {
            break s;
        }
        assert!(Instant::now() < deadline, "the runner did not finish");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        if let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
        {
            peak_kb = peak_kb.max(kb);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(1), "the cases fail");
    assert!(peak_kb < 200 * 1024, "peak RSS {peak_kb} kB");
}

#[test]
fn a_reader_keeping_up_on_the_pty_gets_whole_telegrams_at_high_speed() {
    let dir = temp_dir("pty-speed");
    let link = dir.join("meter");
    let run = Running::start(&[
        "--profile",
        "iskra-am550",
        "--pty",
        link.to_str().unwrap(),
        "--control",
        "127.0.0.1:0",
        "--speed",
        "10",
    ]);
    let mut port = serialport::new(link.to_str().unwrap(), 115_200).timeout(Duration::from_millis(200)).open().unwrap();
    let (got, _) = collect(&mut port, 30, Duration::from_secs(30), None);
    assert!(got.len() >= 30);
    let (_, status) = http(&run.control(), "GET", "/status", None);
    // Only what came before the reader opened the port may have been discarded.
    assert!(status["outputs"][0]["discarded_telegrams"].as_u64().unwrap() <= 2, "{status}");
    assert!(
        got.iter().all(|t| t.valid),
        "no telegram lost its tail: {:?}",
        got.iter().filter(|t| !t.valid).map(Received::text).collect::<Vec<_>>()
    );
}

#[test]
fn a_telegram_over_the_decoder_limit_is_emitted_with_a_warning() {
    let dir = temp_dir("oversize-warning");
    let faults = dir.join("huge.toml");
    std::fs::write(
        &faults,
        "[[fault]]\nkind = \"garbage-before\"\nbytes = 32768\n\n[[fault]]\nkind = \"garbage-after\"\nbytes = 32768\n",
    )
    .unwrap();
    let out = p1sim()
        .args(["emit", "--profile", "iskra-am550", "--count", "2", "--faults", faults.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("telegram 1 is") && err.contains("over the 64 KiB"), "{err}");
}
