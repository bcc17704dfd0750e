//! How long `p1sim bench` takes with the standard plan: against the virtual twin of each working
//! board (the in-memory rig and the board model, as CI runs it), and against the simulated rig
//! paced at the line rate, which stands for a real rig: every telegram takes its time on the
//! line at 115200 baud, and the bench waits for the board's output to settle after it, as with
//! hardware.
//!
//! `cargo bench -p p1sim --bench bench_station` (release build); figures in BENCHMARKS.md.

use std::time::Instant;

use p1sim::bench::plan::Plan;
use p1sim::bench::station::{Options, Station};
use p1sim::bench::{Progress, RunInfo};
use p1sim::rig::fake::{Behaviour, FakeRig};
use p1sim_core::wire::board::Board;

const RUNS: usize = 5;

fn info() -> RunInfo {
    RunInfo { serial_number: "bench".into(), station_id: "bench".into() }
}

fn main() {
    let plan = Plan::standard();
    println!("standard plan, {} phases", plan.phases.len());
    println!("\nvirtual twin (median of {RUNS} runs):");
    for name in ["transistor-inverter", "transistor-inverter-bc847", "ftdi-inverted", "rs232-adapter"] {
        let board = Board::named(name).expect("a shipped board");
        let mut times = Vec::with_capacity(RUNS);
        let mut bound = 0.0;
        let mut outcome = "";
        for _ in 0..RUNS {
            let mut st = Station::twin(board.clone(), Options::default()).expect("a twin");
            let t0 = Instant::now();
            let r = p1sim::bench::run(&mut st, &plan, &info(), &mut |_| {});
            times.push(t0.elapsed().as_secs_f64());
            // Every phase runs whatever the verdict (the Pi inverter fails request-level: its
            // 3.3 V GPIO on Request), so the time is the whole plan's either way.
            assert_eq!(r.phases.len(), plan.phases.len(), "{name}");
            outcome = r.outcome.label();
            bound = data_bound(&r);
        }
        times.sort_by(f64::total_cmp);
        println!("  {name:<26} {:>6.3} s   {outcome:<5} bit error rate bound {bound:.2e}", times[RUNS / 2]);
    }
    println!("\nsimulated rig paced at the line rate (one run):");
    let board = Board::named("transistor-inverter-bc847").expect("a shipped board");
    let fake = FakeRig::new(Behaviour { board: Some(board), paced: true, ..Behaviour::default() });
    let mut st = Station::rig_with(fake.connector("paced rig"), Options::default()).expect("the paced rig");
    let t0 = Instant::now();
    let mut phases = Vec::new();
    let r = p1sim::bench::run(&mut st, &plan, &info(), &mut |p| {
        if let Progress::Done { phase, .. } = p {
            phases.push((phase.name.clone(), phase.outcome.label(), phase.duration_s));
        }
    });
    let total = t0.elapsed().as_secs_f64();
    for (name, outcome, s) in phases {
        println!("  {name:<12} {outcome:<5} {s:>6.2} s");
    }
    println!("  total        {:<5} {total:>6.2} s   bit error rate bound {:.2e}", r.outcome.label(), data_bound(&r));
}

fn data_bound(r: &p1sim::bench::record::Record) -> f64 {
    r.phases
        .iter()
        .find(|p| p.name == "data")
        .and_then(|p| p.measurements.iter().find(|m| m.name == "ber-upper-95"))
        .and_then(|m| m.number())
        .unwrap_or(f64::NAN)
}
