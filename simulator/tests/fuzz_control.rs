//! Fuzzing of the control API's JSON, as property tests with a fixed number of cases: random
//! JSON values and valid bodies with values swapped for extreme ones, at every command endpoint
//! and `/fault`. Whatever is accepted is applied to a meter, which then runs for a minute of
//! simulated time and renders its telegram; an accepted fault is applied to a telegram. The
//! properties: no panic, no hang, and nothing the limits do not allow (power, durations, the
//! bytes a fault adds).

use p1sim::live::control::command_from;
use p1sim::live::transform::{FaultStage, line_budget};
use p1sim_core::builtin;
use p1sim_core::generator::Generator;
use p1sim_core::meter::{Command, MAX_DURATION_S, MAX_POWER_W};
use proptest::prelude::*;
use serde_json::{Value, json};

const START: i64 = 1_768_474_800;
const ENDPOINTS: &[&str] = &["load", "solar", "ev", "power-failure", "tariff", "message"];

fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<f64>().prop_map(|f| json!(f)),
        Just(json!(u32::MAX)),
        Just(json!(-1)),
        Just(json!(0)),
        "[a-z-]{0,12}".prop_map(Value::String),
        Just(json!("x".repeat(5000))),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map(
                prop_oneof![
                    Just("watts".to_string()),
                    Just("seconds".to_string()),
                    Just("tariff".to_string()),
                    Just("text".to_string()),
                    Just("kind".to_string()),
                    Just("bytes".to_string()),
                    Just("chars".to_string()),
                    Just("ber".to_string()),
                    Just("positions".to_string()),
                    Just("at".to_string()),
                    "[a-z]{1,6}".prop_map(String::from),
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Valid bodies of every endpoint and every fault kind, to mutate.
fn templates() -> Vec<Value> {
    let mut t = vec![
        json!({"watts": 1500}),
        json!({"watts": null}),
        json!({"watts": 11000, "seconds": 3600}),
        json!({"seconds": 300}),
        json!({"tariff": 2}),
        json!({"text": "Hello"}),
        json!({"kind": "garbage-before", "bytes": 16}),
        json!({"kind": "oversize", "chars": 1024}),
        json!({"kind": "bit-flip", "ber": 0.001, "positions": [[3, 1]]}),
        json!({"kind": "truncate", "at": "random"}),
        json!({"kind": "ff-padding", "bytes": 64}),
        json!({"kind": "drop-line", "line": 3}),
        json!({"kind": "placeholder", "value": "ghost-mbus"}),
    ];
    for e in p1sim_core::fault::catalogue::CATALOGUE {
        t.push(json!({ "kind": e.name }));
    }
    t
}

fn mutated() -> impl Strategy<Value = Value> {
    let n = templates().len();
    (0..n, proptest::collection::vec((any::<prop::sample::Index>(), scalar()), 0..3)).prop_map(|(i, edits)| {
        let mut v = templates()[i].clone();
        if let Value::Object(m) = &mut v {
            let keys: Vec<String> = m.keys().cloned().collect();
            for (k, value) in edits {
                if !keys.is_empty() {
                    m.insert(k.get(&keys).clone(), value);
                }
            }
        }
        v
    })
}

fn exercise(cmd: Command) {
    match &cmd {
        Command::SetLoad(w) | Command::SetSolar(w) => assert!(w.is_none_or(|w| w <= MAX_POWER_W)),
        Command::StartCharging { watts, seconds } => assert!(*watts <= MAX_POWER_W && *seconds <= MAX_DURATION_S),
        Command::PowerFailure { seconds } => assert!((1..=MAX_DURATION_S).contains(seconds)),
        Command::TextMessage(t) => assert!(t.chars().count() <= 1024),
        Command::SetTariff(t) => assert!(t.is_none_or(|t| (1..=2).contains(&t))),
    }
    let profile = builtin::lookup("sagemcom-t211-be").unwrap();
    let mut g = Generator::new(profile.clone(), profile.household.clone(), 1, START, None).unwrap();
    g.meter_mut().apply(cmd);
    let mut out = Vec::new();
    for _ in 0..60 {
        out.clear();
        g.next_into(&mut out);
    }
}

fn exercise_fault(spec: Value) {
    let profile = builtin::lookup("iskra-am550").unwrap();
    let budget = line_budget(Some(profile.line.char_time_ns()), profile.interval_s);
    let stage = FaultStage::new(None, 1, budget).unwrap();
    if let Ok(fault) = stage.parse(spec) {
        assert!(fault.added_bytes() <= budget);
        let mut g = Generator::new(profile.clone(), profile.household.clone(), 1, START, None).unwrap();
        g.advance();
        let (_, model) = g.current_model();
        let f = g.faulted_current(std::slice::from_ref(&fault), 1, 0);
        assert!(f.bytes.len() <= model.to_bytes().len() + budget + 2048, "{fault:?}: {} bytes", f.bytes.len());
    }
}

/// The cases per property: `default` in CI (seconds), more with `P1SIM_FUZZ_CASES=100000` for a
/// long local run.
fn cases(default: u32) -> u32 {
    std::env::var("P1SIM_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(384), failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn command_bodies(endpoint in 0..ENDPOINTS.len(), body in prop_oneof![any_json(), mutated()]) {
        if let Ok(cmd) = command_from(ENDPOINTS[endpoint], body.to_string().as_bytes()) {
            exercise(cmd);
        }
    }

    #[test]
    fn raw_bodies(endpoint in 0..ENDPOINTS.len(), bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(cmd) = command_from(ENDPOINTS[endpoint], &bytes) {
            exercise(cmd);
        }
    }

    #[test]
    fn faults(spec in prop_oneof![any_json(), mutated()]) {
        exercise_fault(spec);
    }
}
