//! Interop: dsmr_parser from PyPI (the decoder behind Home Assistant's DSMR integration), pinned
//! to 1.11.2 in a virtualenv under target/py, reads `p1sim run --tcp` with its asyncio TCP
//! reader and parses telegrams of a Dutch DSMR 5 and a Belgian e-MUCS meter.

mod support;

use support::{Running, dsmr_parser_reads_tcp};

fn dsmr_parser_reads(profile: &str, version: &str) {
    let run = Running::start(&["--profile", profile, "--tcp", "127.0.0.1:0"]);
    let addr: std::net::SocketAddr = run.field("tcp").parse().unwrap();
    let reads = dsmr_parser_reads_tcp(addr, version, 3);
    for read in &reads {
        assert!(read.tariff1_kwh > 0.0, "{read:?}");
    }
    // Telegrams of a 1 s meter: distinct, increasing timestamps.
    let stamps: Vec<&str> = reads.iter().map(|r| r.timestamp.as_str()).collect();
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
