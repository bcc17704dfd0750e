//! Simulated time per wall time: one year of 1-second DSMR 5 telegrams (31.5 million) from the
//! full model (household, meter, render, CRC) into a discarding sink.
//! `cargo bench --bench year` (prints the figure; `-- --days N` for a shorter run).

use std::hint::black_box;
use std::time::Instant;

use p1sim_core::generator::Generator;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let days: i64 = args
        .iter()
        .position(|a| a == "--days")
        .and_then(|i| args.get(i + 1))
        .and_then(|d| d.parse().ok())
        .unwrap_or(365);
    let profile = p1sim_core::builtin::get("iskra-am550").unwrap().unwrap();
    let start = 1_767_225_600; // 2026-01-01 00:00 UTC
    let mut g = Generator::new(profile.clone(), profile.household.clone(), 1, start, None).unwrap();
    let mut buf = Vec::with_capacity(4096);
    let mut bytes = 0u64;
    let mut telegrams = 0u64;
    let t = Instant::now();
    while g.next_at() < start + days * 86_400 {
        buf.clear();
        g.next_into(&mut buf);
        bytes += buf.len() as u64;
        telegrams += 1;
        black_box(&buf);
    }
    let wall = t.elapsed().as_secs_f64();
    let simulated = (days * 86_400) as f64;
    println!(
        "year: {days} days of iskra-am550 (1 s): {telegrams} telegrams, {:.1} MB, {wall:.1} s wall, {:.0}x real time, {:.2} us per telegram",
        bytes as f64 / 1e6,
        simulated / wall,
        wall / telegrams as f64 * 1e6
    );
}
