//! Fuzzing of every file parser, as property tests with a fixed number of cases so that CI runs
//! them in seconds: profiles, fault scenarios, events files, meter state files and board files,
//! each from the
//! shipped or a freshly generated real file with random edits (values swapped for extreme ones,
//! lines deleted or repeated, bytes inserted, the file cut short), and from random bytes.
//!
//! Whatever a parser accepts is then used the way a run uses it (a meter built and stepped, a
//! telegram rendered and faulted) for a bounded number of steps. The properties: no panic, no
//! hang, a faulted telegram within the fault limits, and a board that passes on a bounded line
//! (every picosecond the meter drove comes out once). Bench test plans are fuzzed the same way
//! beside the bench (simulator/src/bench/plan.rs).

use p1sim_core::builtin;
use p1sim_core::fault::MAX_ADDED_BYTES;
use p1sim_core::fault::scenario::Scenario;
use p1sim_core::generator::Generator;
use p1sim_core::meter::{Meter, MeterState};
use p1sim_core::wire::board::Board;
use p1sim_core::wire::{Level, Run};
use proptest::prelude::*;

const START: i64 = 1_768_474_800;

/// Values that broke parsers of this kind elsewhere: non-finite and negative numbers, integer
/// edges, empty and long strings, wrong types, odd instants.
const EXTREMES: &[&str] = &[
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1",
    "99",
    "255",
    "65536",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "-9223372036854775808",
    "1e308",
    "0.5",
    "\"\"",
    "\"x\"",
    "\"random\"",
    "\"\\u001b[2J\"",
    "[]",
    "[[3, 99]]",
    "{}",
    "true",
    "2026-01-15T18:00:00Z",
    "\"9999-12-31T23:59:59Z\"",
    "\"1970-01-01T00:00:00Z\"",
    "\"2026-01-15T18:00:00\"",
];

/// One edit of a text file.
#[derive(Clone, Debug)]
enum Edit {
    /// The value after the first `=` on line `line` becomes `EXTREMES[value]`.
    Value {
        line: usize,
        value: usize,
    },
    /// The first quoted string on line `line` becomes `EXTREMES[value]`.
    Quoted {
        line: usize,
        value: usize,
    },
    DeleteLine(usize),
    RepeatLine(usize),
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Cut(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    let value = 0..EXTREMES.len();
    prop_oneof![
        4 => (any::<usize>(), value.clone()).prop_map(|(line, value)| Edit::Value { line, value }),
        2 => (any::<usize>(), value).prop_map(|(line, value)| Edit::Quoted { line, value }),
        1 => any::<usize>().prop_map(Edit::DeleteLine),
        1 => any::<usize>().prop_map(Edit::RepeatLine),
        1 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..16)).prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        1 => any::<usize>().prop_map(Edit::Cut),
    ]
}

/// Applies edits to a text; the result may not be UTF-8, in which case it is made so lossily.
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut tail_edits = Vec::new();
    for e in edits {
        let n = lines.len().max(1);
        match e {
            Edit::Value { line, value } => {
                if let Some(l) = lines.get_mut(line % n)
                    && let Some(eq) = l.find('=')
                {
                    l.replace_range(eq + 1.., &format!(" {}", EXTREMES[*value]));
                }
            }
            Edit::Quoted { line, value } => {
                if let Some(l) = lines.get_mut(line % n)
                    && let Some(a) = l.find('"')
                    && let Some(b) = l[a + 1..].find('"')
                {
                    l.replace_range(a..=a + 1 + b, EXTREMES[*value]);
                }
            }
            Edit::DeleteLine(i) => {
                if !lines.is_empty() {
                    lines.remove(i % n);
                }
            }
            Edit::RepeatLine(i) => {
                if let Some(l) = lines.get(i % n).cloned() {
                    lines.insert(i % n, l);
                }
            }
            other => tail_edits.push(other.clone()),
        }
    }
    let mut bytes = lines.join("\n").into_bytes();
    for e in tail_edits {
        match e {
            Edit::Insert { at, bytes: b } => {
                let at = at % (bytes.len() + 1);
                bytes.splice(at..at, b);
            }
            Edit::Cut(at) => bytes.truncate(at % (bytes.len() + 1)),
            _ => {}
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

fn shipped(list: &'static [(&'static str, &'static str)]) -> impl Strategy<Value = &'static str> {
    (0..list.len()).prop_map(move |i| list[i].1)
}

/// Uses a profile as `p1sim emit` does: a meter, three telegrams, one with every fault.
fn exercise_profile(profile: p1sim_core::profile::Profile) {
    let key = profile.is_encrypted().then_some([7u8; 16]);
    let Ok(mut g) = Generator::new(profile.clone(), profile.household.clone(), 1, START, key) else { return };
    let mut out = Vec::new();
    for _ in 0..3 {
        out.clear();
        g.next_into(&mut out);
    }
}

/// Applies a scenario's faults to a telegram: the result stays within what the faults may add.
fn exercise_scenario(s: &Scenario) {
    let profile = builtin::lookup("iskra-am550").unwrap();
    let mut g = Generator::new(profile.clone(), profile.household.clone(), 1, START, None).unwrap();
    g.advance();
    let faults = s.selected(1, 0, START);
    let f = g.faulted_current(&faults, 1, 0);
    let (_, model) = g.current_model();
    let budget = model.to_bytes().len() + faults.len() * (MAX_ADDED_BYTES + 2048);
    assert!(f.bytes.len() <= budget, "{} bytes from {} faults", f.bytes.len(), faults.len());
}

/// Drives a board with 400 bits of alternating runs at 115200 baud (one to three bits long):
/// it must neither panic nor lose or invent line time.
fn exercise_board(board: &Board) {
    const BIT_PS: u64 = 8_680_556;
    let mut sim = board.simulate(Level::Low);
    let (mut level, mut driven, mut out) = (Level::High, 0u64, 0u64);
    for i in 0..400u64 {
        let run = Run::new(level, BIT_PS * (1 + i % 3));
        driven += run.ps;
        sim.push(run, &mut |r| out += r.ps);
        level = level.flip();
    }
    sim.flush(&mut |r| out += r.ps);
    assert_eq!(out, driven, "a board must pass on the line's whole duration");
}

fn events_template() -> String {
    let mut t = String::new();
    for (i, body) in [
        "action = \"set-load\"\nwatts = 4200",
        "action = \"set-solar\"\nwatts = 3000",
        "action = \"start-charging\"\nwatts = 11000\nminutes = 90",
        "action = \"power-failure\"\nseconds = 600",
        "action = \"text-message\"\ntext = \"Onderhoud\"",
        "action = \"set-tariff\"\ntariff = 2",
    ]
    .iter()
    .enumerate()
    {
        t.push_str(&format!("[[events]]\nat = \"2026-01-15T11:0{i}:00Z\"\n{body}\n\n"));
    }
    t
}

/// A real state, as JSON, to mutate.
fn state_json(profile: &str) -> serde_json::Value {
    let p = builtin::lookup(profile).unwrap();
    let mut g = Generator::new(p.clone(), p.household.clone(), 3, START, None).unwrap();
    g.meter_mut().apply(p1sim_core::meter::Command::PowerFailure { seconds: 60 });
    g.advance();
    serde_json::to_value(g.meter().state()).unwrap()
}

/// Every leaf of a JSON value, as JSON pointers.
fn leaves(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => m.iter().for_each(|(k, v)| leaves(v, format!("{at}/{k}"), out)),
        serde_json::Value::Array(a) => a.iter().enumerate().for_each(|(i, v)| leaves(v, format!("{at}/{i}"), out)),
        _ => {}
    }
    out.push(at);
}

fn json_extreme() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::json;
    prop_oneof![
        Just(json!(null)),
        Just(json!(-1)),
        Just(json!(0)),
        Just(json!(99)),
        Just(json!(u32::MAX)),
        Just(json!(u64::MAX)),
        Just(json!(i64::MAX)),
        Just(json!(i64::MIN)),
        Just(json!(1e300)),
        Just(json!("")),
        Just(json!([])),
        Just(json!({})),
        Just(json!([[1, 2]])),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u32>().prop_map(|n| json!(n)),
    ]
}

/// The cases per property: `default` in CI (seconds), more with `P1SIM_FUZZ_CASES=100000` for a
/// long local run.
fn cases(default: u32) -> u32 {
    std::env::var("P1SIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(512), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn profiles(text in shipped(builtin::PROFILES), edits in proptest::collection::vec(edit(), 1..6)) {
        let text = mutate(text, &edits);
        if let Ok(p) = p1sim_core::profile::load::parse("fuzz", "fuzz.toml", &text) {
            exercise_profile(p);
        }
    }

    #[test]
    fn boards(text in shipped(builtin::BOARDS), edits in proptest::collection::vec(edit(), 1..6)) {
        let text = mutate(text, &edits);
        if let Ok(b) = p1sim_core::wire::board::file::parse("fuzz.toml", &text) {
            exercise_board(&b);
        }
    }

    #[test]
    fn scenarios(text in shipped(builtin::SCENARIOS), edits in proptest::collection::vec(edit(), 1..6)) {
        let text = mutate(text, &edits);
        if let Ok(s) = Scenario::parse("fuzz", "fuzz.toml", &text) {
            exercise_scenario(&s);
        }
    }

    #[test]
    fn events(edits in proptest::collection::vec(edit(), 1..8)) {
        let text = mutate(&events_template(), &edits);
        if let Ok(events) = p1sim_core::events::parse("fuzz.toml", &text) {
            let profile = builtin::lookup("kaifa-ma105").unwrap();
            let mut g = Generator::new(profile.clone(), profile.household.clone(), 1, START, None).unwrap();
            g.meter_mut().script(events);
            let mut out = Vec::new();
            for _ in 0..40 {
                out.clear();
                g.next_into(&mut out);
            }
        }
    }

    #[test]
    fn states(
        profile in prop_oneof![Just("iskra-am550"), Just("sagemcom-t211-be"), Just("kamstrup-162")],
        picks in proptest::collection::vec((any::<prop::sample::Index>(), json_extreme()), 1..5),
    ) {
        let mut v = state_json(profile);
        let mut paths = Vec::new();
        leaves(&v, String::new(), &mut paths);
        for (i, value) in picks {
            let path = i.get(&paths).clone();
            if let Some(slot) = v.pointer_mut(&path) {
                *slot = value;
            }
        }
        let Ok(state) = serde_json::from_value::<MeterState>(v) else { return Ok(()) };
        let p = builtin::lookup(profile).unwrap();
        if let Ok(meter) = Meter::resume(&p, p.household.clone(), state) {
            let now = meter.now();
            let mut g = Generator::from_meter(p, meter, None, now + 1).unwrap();
            let mut out = Vec::new();
            for _ in 0..3 {
                out.clear();
                g.next_into(&mut out);
            }
        }
    }

    #[test]
    fn random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let text = String::from_utf8_lossy(&bytes);
        let _ = p1sim_core::profile::load::parse("fuzz", "fuzz.toml", &text);
        let _ = Scenario::parse("fuzz", "fuzz.toml", &text);
        let _ = p1sim_core::events::parse("fuzz.toml", &text);
        let _ = serde_json::from_slice::<MeterState>(&bytes);
    }
}
