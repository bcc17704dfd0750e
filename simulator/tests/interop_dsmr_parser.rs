//! Interop: dsmr_parser from PyPI (the decoder behind Home Assistant's DSMR integration), pinned
//! to 1.11.2 in a virtualenv under target/py, reads `p1sim run --tcp` with its asyncio TCP
//! reader and parses telegrams of a Dutch DSMR 5 and a Belgian e-MUCS meter.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use support::{Running, python_with, wait_bounded};

/// Connects like Home Assistant does (`create_tcp_dsmr_reader`) and prints one line per parsed
/// telegram: its timestamp and tariff-1 import register.
const READER: &str = r#"
import asyncio, sys
from dsmr_parser.clients.protocol import create_tcp_dsmr_reader

host, port, version, want = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])

async def main():
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = 0
    def on_telegram(t):
        nonlocal count
        count += 1
        print("TELEGRAM", t.P1_MESSAGE_TIMESTAMP.value.isoformat(), t.ELECTRICITY_USED_TARIFF_1.value, flush=True)
        if count >= want and not done.done():
            done.set_result(None)
    transport, _ = await create_tcp_dsmr_reader(host, port, version, on_telegram, loop=loop)
    try:
        await asyncio.wait_for(done, 60)
    finally:
        transport.close()

asyncio.run(main())
"#;

fn dsmr_parser_reads(profile: &str, version: &str) {
    let python = python_with("dsmr-parser", "1.11.2");
    let run = Running::start(&["--profile", profile, "--tcp", "127.0.0.1:0"]);
    let addr: std::net::SocketAddr = run.field("tcp").parse().unwrap();
    let mut child = Command::new(&python)
        .args(["-c", READER, &addr.ip().to_string(), &addr.port().to_string(), version, "3"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let status = wait_bounded(&mut child, Duration::from_secs(90));
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(status.success(), "dsmr_parser failed on {profile}:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().filter(|l| l.starts_with("TELEGRAM ")).collect();
    assert!(lines.len() >= 3, "{profile}: {stdout}\n{stderr}");
    for line in &lines {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        let kwh: f64 = fields[2].parse().unwrap_or_else(|_| panic!("a register in kWh: {line}"));
        assert!(kwh > 0.0, "{line}");
    }
    // Telegrams of a 1 s meter: distinct, increasing timestamps.
    let stamps: Vec<&str> = lines.iter().map(|l| l.split(' ').nth(1).unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
}

#[test]
fn dsmr_parser_reads_a_dutch_dsmr5_meter_over_tcp() {
    dsmr_parser_reads("iskra-am550", "5");
}

#[test]
fn dsmr_parser_reads_a_belgian_meter_over_tcp() {
    dsmr_parser_reads("sagemcom-t211-be", "5B");
}
