//! Interop: for every profile, dsmr_parser's own readers (PyPI dsmr-parser 1.11.2, the code Home
//! Assistant's DSMR integration connects with), set exactly as `p1sim run` tells users in its
//! banner, receive valid telegrams from the running meter: the serial reader on the
//! pseudo-terminal and the TCP reader on the socket, at once.
//!
//! The reader settings are read from the banner's `create_dsmr_reader(...)` and
//! `create_tcp_dsmr_reader(...)` lines, so a wrong hint fails here. A reader only calls back for
//! a telegram that passed its CRC check (where the dialect has one) and, for encrypted meters,
//! was decrypted with the keys the hint names.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use p1sim_core::builtin;
use support::{Running, python_with, temp_dir, wait_bounded};

const KEY: &str = "000102030405060708090A0B0C0D0E0F";

/// Runs the readers given as JSON in argv[1]; prints `GOT <reader> <objects>` per telegram and
/// exits when every reader has two, or fails after 60 s.
const READERS: &str = r#"
import asyncio, json, sys
from dsmr_parser.clients.protocol import create_dsmr_reader, create_tcp_dsmr_reader

readers = json.loads(sys.argv[1])

async def main():
    loop = asyncio.get_running_loop()
    counts = {r["name"]: 0 for r in readers}
    done = loop.create_future()
    transports = []
    def callback_for(name):
        def on_telegram(t):
            counts[name] += 1
            print("GOT", name, len(list(t.items())), flush=True)
            if all(c >= 2 for c in counts.values()) and not done.done():
                done.set_result(None)
        return on_telegram
    for r in readers:
        keys = {k: r[k] for k in ("encryption_key", "authentication_key") if k in r}
        if r["name"] == "serial":
            conn = create_dsmr_reader(r["port"], r["version"], callback_for("serial"), loop=loop, **keys)
        else:
            conn = create_tcp_dsmr_reader(r["host"], r["port"], r["version"], callback_for("tcp"), loop=loop, **keys)
        transport, _ = await conn
        transports.append(transport)
    try:
        await asyncio.wait_for(done, 60)
    finally:
        for t in transports:
            t.close()

asyncio.run(main())
"#;

/// The quoted arguments and `key='value'` pairs of a hint line's Python call.
fn call_args(line: &str) -> (Vec<String>, Vec<(String, String)>) {
    let inner = &line[line.find('(').unwrap() + 1..line.rfind(')').unwrap()];
    let mut positional = Vec::new();
    let mut named = Vec::new();
    for part in inner.split(", ") {
        match part.split_once('=') {
            Some((k, v)) => named.push((k.to_string(), v.trim_matches('\'').to_string())),
            None => positional.push(part.trim_matches('\'').to_string()),
        }
    }
    (positional, named)
}

fn reader_spec(banner: &[String], call: &str) -> serde_json::Value {
    let line = banner
        .iter()
        .find(|l| l.trim_start().starts_with("dsmr_parser") && l.contains(&format!(" {call}(")))
        .unwrap_or_else(|| panic!("no {call} hint in {banner:?}"));
    let (pos, named) = call_args(line);
    let mut spec = serde_json::Map::new();
    if call == "create_dsmr_reader" {
        spec.insert("name".into(), "serial".into());
        spec.insert("port".into(), pos[0].clone().into());
        spec.insert("version".into(), pos[1].clone().into());
    } else {
        spec.insert("name".into(), "tcp".into());
        spec.insert("host".into(), pos[0].clone().into());
        spec.insert("port".into(), pos[1].parse::<u16>().unwrap().into());
        spec.insert("version".into(), pos[2].clone().into());
    }
    for (k, v) in named {
        spec.insert(k, v.into());
    }
    spec.into()
}

#[test]
fn dsmr_parser_readers_set_as_the_banner_says_receive_every_profile() {
    let python = python_with("dsmr-parser", "1.11.2");
    let dir = temp_dir("hints");
    let mut failures = Vec::new();
    for profile in builtin::all().unwrap() {
        if !profile.end_marker {
            // dsmr_parser waits for a `!` that never comes: the banner must say so instead of
            // giving settings (simulator/tests/interop_profiles.rs shows it frames nothing).
            let run = Running::start(&["--profile", &profile.name, "--tcp", "127.0.0.1:0"]);
            assert!(
                run.banner.iter().any(|l| l.contains("dsmr_parser     cannot read this meter")),
                "{:?}",
                run.banner
            );
            assert!(!run.banner.iter().any(|l| l.contains("create_tcp_dsmr_reader")), "{:?}", run.banner);
            continue;
        }
        let link = dir.join(&profile.name);
        // About one telegram a second of wall time, whatever the meter's interval.
        let speed = profile.interval_s.to_string();
        let mut args = vec!["--profile", &profile.name, "--pty", link.to_str().unwrap(), "--tcp", "127.0.0.1:0"];
        args.extend(["--speed", &speed]);
        if profile.is_encrypted() {
            args.extend(["--key", KEY]);
        }
        let run = Running::start(&args);
        let readers = serde_json::Value::Array(vec![
            reader_spec(&run.banner, "create_dsmr_reader"),
            reader_spec(&run.banner, "create_tcp_dsmr_reader"),
        ]);
        let mut child = Command::new(&python)
            .args(["-c", READERS, &readers.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let status = wait_bounded(&mut child, Duration::from_secs(90));
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let got = |reader: &str| stdout.lines().filter(|l| l.starts_with(&format!("GOT {reader} "))).count();
        if !status.success() || got("serial") < 2 || got("tcp") < 2 {
            failures.push(format!(
                "{}: serial {} and tcp {} telegrams with {readers}\n{stdout}\n{}",
                profile.name,
                got("serial"),
                got("tcp"),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        // Every reader saw telegrams with content, not empty parses.
        assert!(stdout.lines().all(|l| l.split(' ').nth(2).is_some_and(|n| n != "0")), "{}: {stdout}", profile.name);
    }
    assert!(failures.is_empty(), "{} profile(s) not read as hinted:\n{}", failures.len(), failures.join("\n\n"));
}
