//! The meter model's limits: values from outside (state files, commands, profiles) that once
//! panicked, hung or wrapped are refused or clamped, and long outages cost no time.

use p1sim_core::builtin;
use p1sim_core::generator::Generator;
use p1sim_core::meter::{Command, MAX_DURATION_S, MAX_POWER_W, Meter};

const START: i64 = 1_768_474_800; // 2026-01-15T11:00:00Z

#[test]
fn a_year_long_power_failure_is_simulated_without_stepping_every_second() {
    let profile = builtin::lookup("iskra-am550").unwrap();
    let mut g = Generator::new(profile.clone(), profile.household.clone(), 1, START, None).unwrap();
    g.meter_mut().script(vec![(START + 5, Command::PowerFailure { seconds: MAX_DURATION_S })]);
    let mut before = Vec::new();
    for _ in 0..5 {
        g.advance();
    }
    let (_, model) = g.current_model();
    before.push(model);
    // The next telegram comes when the mains is back, a year later, and nothing was integrated
    // meanwhile.
    let at = g.advance();
    assert!(at >= START + 5 + i64::from(MAX_DURATION_S), "{at}");
    let registers = |g: &mut Generator| g.meter_mut().readings().registers;
    let after = registers(&mut g);
    let mut fresh = Generator::new(profile.clone(), profile.household.clone(), 1, START, None).unwrap();
    for _ in 0..5 {
        fresh.advance();
    }
    let at_failure = registers(&mut fresh);
    assert!(after.import_wh[0] + after.import_wh[1] <= at_failure.import_wh[0] + at_failure.import_wh[1] + 10);
    assert_eq!(g.meter().state().long_power_failures, fresh.meter().state().long_power_failures + 1);
}

#[test]
fn commands_beyond_the_limits_are_clamped() {
    let profile = builtin::lookup("iskra-am550").unwrap();
    let mut m = Meter::new(&profile, profile.household.clone(), 1, START);
    m.apply(Command::SetLoad(Some(u32::MAX)));
    m.apply(Command::StartCharging { watts: u32::MAX, seconds: u32::MAX });
    m.apply(Command::PowerFailure { seconds: u32::MAX });
    let s = m.state();
    assert_eq!(s.overrides.load_w, Some(MAX_POWER_W));
    assert_eq!(s.overrides.ev_until, Some((START + i64::from(MAX_DURATION_S), MAX_POWER_W)));
    assert_eq!(s.outage_until, Some(START + i64::from(MAX_DURATION_S)));
    // A failure during a failure extends it, never past a year from its start.
    m.apply(Command::PowerFailure { seconds: MAX_DURATION_S });
    assert_eq!(m.state().outage_until, Some(START + i64::from(MAX_DURATION_S)));
}

#[test]
fn states_that_panicked_or_hung_are_refused_by_field() {
    let profile = builtin::lookup("iskra-am550").unwrap();
    let good = Meter::new(&profile, profile.household.clone(), 1, START).state().clone();
    let refused = |edit: &dyn Fn(&mut p1sim_core::meter::MeterState)| {
        let mut s = good.clone();
        edit(&mut s);
        Meter::resume(&profile, profile.household.clone(), s).unwrap_err().field
    };
    assert_eq!(refused(&|s| s.mbus.clear()), "mbus");
    assert_eq!(refused(&|s| s.mbus[0].channel = 99), "mbus");
    assert_eq!(refused(&|s| s.overrides.tariff = Some(9)), "overrides.tariff");
    assert_eq!(refused(&|s| s.version = 3), "version");
    assert_eq!(refused(&|s| s.version = 0), "version");
    assert_eq!(
        refused(&|s| {
            s.outage_since = Some(START);
            s.outage_until = Some(i64::MAX);
        }),
        "outage_until"
    );
    assert_eq!(refused(&|s| s.overrides.load_w = Some(u32::MAX)), "overrides.load_w");
    assert_eq!(refused(&|s| s.now = i64::MAX), "now");
    assert!(Meter::resume(&profile, profile.household.clone(), good).is_ok());
}

#[test]
fn a_used_up_smarty_frame_counter_is_never_reused() {
    let profile = builtin::lookup("sagemcom-t210d-lu").unwrap();
    let key = Some([7u8; 16]);
    let mut g = Generator::new(profile.clone(), profile.household.clone(), 1, START, key).unwrap();
    let mut state = g.meter().state().clone();
    state.frame_counter = u32::MAX - 1;
    let meter = Meter::resume(&profile, profile.household.clone(), state).unwrap();
    g = Generator::from_meter(profile, meter, key, START + 10).unwrap();
    let mut out = Vec::new();
    assert_eq!(g.next_into(&mut out).frame_counter, Some(u32::MAX - 1));
    assert!(g.frame_counter_exhausted());
    out.clear();
    assert_eq!(g.next_into(&mut out).frame_counter, None, "no frame with a wrapped counter");
    assert!(out.is_empty());
}

#[test]
fn household_numbers_in_a_profile_must_be_finite_and_physical() {
    let text = builtin::PROFILES.iter().find(|(n, _)| *n == "iskra-am550").unwrap().1;
    for (key, value) in [("annual_kwh", "nan"), ("annual_kwh", "-5000.0"), ("solar_kwp", "inf"), ("latitude", "100.0")]
    {
        let with = format!("{text}\n[household]\n{key} = {value}\n");
        let e = p1sim_core::profile::load::parse("t", "t.toml", &with).unwrap_err();
        assert_eq!(e.key.as_deref(), Some(key), "{e}");
        assert_eq!(e.line, with.lines().count(), "{e}");
        assert!(e.message.contains("out of range"), "{e}");
    }
}
