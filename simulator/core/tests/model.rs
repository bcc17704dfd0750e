//! The household behind the meter behaves like a real home: properties over many seeds, and
//! snapshots across a DST change and a month end.

use p1sim_core::builtin;
use p1sim_core::format::LocalTime;
use p1sim_core::generator::Generator;
use p1sim_core::household::HouseholdConfig;
use p1sim_core::meter::{Command, Meter};
use p1sim_core::profile::{Direction, Energy, PowerKind, PowerQuantity, Profile, Register};
use p1sim_core::readings::Readings;
use proptest::prelude::*;

fn profile(name: &str) -> Profile {
    builtin::get(name).unwrap().unwrap()
}

fn total(dir: Direction) -> PowerQuantity {
    PowerQuantity { direction: dir, kind: PowerKind::Active, phase: None }
}

fn register_sum(r: &Readings, dir: Direction) -> u64 {
    r.registers.get(Register { direction: dir, energy: Energy::Active, tariff: None })
}

/// Unix seconds of the last Sunday of a month at 01:00 UTC: when EU clocks change (written out
/// independently of the time-zone library the meter uses).
fn eu_switch(year: i32, month: u8) -> i64 {
    let days_in = if month == 3 || month == 10 { 31 } else { unreachable!() };
    let last = p1sim_core::clock::days_from_civil(year, month, days_in);
    let weekday = (last + 3).rem_euclid(7); // 0 = Monday
    (last - (weekday + 1) % 7) * 86_400 + 3600
}

fn eu_summer(unix: i64, year: i32) -> bool {
    (eu_switch(year, 3)..eu_switch(year, 10)).contains(&unix)
}

fn seconds_of(t: &LocalTime) -> u32 {
    u32::from(t.hour) * 3600 + u32::from(t.minute) * 60 + u32::from(t.second)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    /// Registers never decrease, and the phases add up to the totals, for every profile.
    #[test]
    fn registers_rise_and_phases_add_up(seed in any::<u64>(), start in 1_600_000_000i64..1_900_000_000) {
        for p in builtin::all().unwrap() {
            let household = HouseholdConfig { solar_kwp: 4.0, ev: true, ..p.household.clone() };
            let mut m = Meter::new(&p, household, seed, start);
            let mut prev = m.readings().registers;
            for step in 1..=16 {
                m.advance_to(start + step * 1800);
                let powered = m.is_powered();
                let r = m.readings();
                let now = r.registers;
                for (a, b) in [(prev.import_wh, now.import_wh), (prev.export_wh, now.export_wh)] {
                    prop_assert!(a[0] <= b[0] && a[1] <= b[1], "{}: register went back", p.name);
                }
                prop_assert!(prev.q_import_varh <= now.q_import_varh && prev.q_export_varh <= now.q_export_varh);
                prev = now;
                let net: i64 = r.phases.iter().map(|ph| i64::from(ph.import_w) - i64::from(ph.export_w)).sum();
                prop_assert_eq!(r.power(total(Direction::Import)) as i64 - r.power(total(Direction::Export)) as i64, net);
                for ph in &r.phases[..usize::from(p.phases)] {
                    if powered {
                        prop_assert!((2000..=2600).contains(&ph.voltage_dv), "{}: {} dV", p.name, ph.voltage_dv);
                    }
                    // Current follows apparent power over voltage (within the 1 W / 1 mA rounding).
                    let s = ((i64::from(ph.import_w) - i64::from(ph.export_w)).pow(2) as f64
                        + (i64::from(ph.q_import_var) - i64::from(ph.q_export_var)).pow(2) as f64).sqrt();
                    let expected_ma = s / (f64::from(ph.voltage_dv) / 10.0) * 1000.0;
                    prop_assert!((f64::from(ph.current_ma) - expected_ma).abs() < 25.0 + expected_ma * 0.01);
                }
            }
        }
    }
}

/// Over a whole day the registers move by exactly the integrated power, within one Wh.
#[test]
fn a_days_registers_equal_the_integrated_power() {
    for (name, seed) in [("iskra-am550", 3), ("sagemcom-t211-se", 4), ("sagemcom-s211-be", 5)] {
        let p = profile(name);
        let household = HouseholdConfig { solar_kwp: 5.0, ev: true, ..p.household.clone() };
        let start = 1_781_481_600; // 2026-06-15 00:00 UTC: a summer day with export.
        let mut m = Meter::new(&p, household, seed, start);
        let r0 = m.readings().clone();
        // Watt-seconds per direction and tariff register, summed from the instantaneous power.
        let mut ws = [[0u64; 2]; 2];
        for s in start..start + 86_400 {
            m.advance_to(s);
            let r = m.readings();
            let t = usize::from(r.tariff - 1);
            ws[0][t] += r.power(total(Direction::Import));
            ws[1][t] += r.power(total(Direction::Export));
        }
        m.advance_to(start + 86_400);
        let r1 = m.readings().clone();
        for (d, dir) in [Direction::Import, Direction::Export].into_iter().enumerate() {
            for (t, &watt_seconds) in ws[d].iter().enumerate() {
                let reg = |r: &Readings| if d == 0 { r.registers.import_wh[t] } else { r.registers.export_wh[t] };
                let delta = reg(&r1) - reg(&r0);
                let integrated = watt_seconds as f64 / 3600.0;
                assert!(
                    (delta as f64 - integrated).abs() < 1.0,
                    "{name} {dir:?} tariff {}: the register moved {delta} Wh, the power integrates to {integrated:.3} Wh",
                    t + 1
                );
            }
            assert!(
                register_sum(&r1, dir) > register_sum(&r0, dir),
                "{name} {dir:?}: a summer day with solar both imports and exports"
            );
        }
    }
}

/// The S/W flag is the zone's DST state for every telegram across both switches, 2024-2031.
#[test]
fn summer_flag_follows_the_eu_rule_to_the_second() {
    let p = profile("sagemcom-t210d");
    for year in 2024..=2031 {
        for switch in [eu_switch(year, 3), eu_switch(year, 10)] {
            let mut g = Generator::new(p.clone(), p.household.clone(), 1, switch - 5, None).unwrap();
            let mut prev: Option<LocalTime> = None;
            for _ in 0..10 {
                let at = g.advance();
                let t = g.meter_mut().readings().time;
                assert_eq!(t.dst, eu_summer(at, year), "{year} at {at}");
                if let Some(prev) = prev {
                    // Local time jumps by exactly the offset change at the switch.
                    let step = (seconds_of(&t) as i64 - seconds_of(&prev) as i64).rem_euclid(86_400);
                    let expected = if at == switch { if t.dst { 3601 } else { 86_400 - 3599 } } else { 1 };
                    assert_eq!(step, expected, "{year} at {at}");
                }
                prev = Some(t);
            }
        }
    }
}

#[test]
fn swedish_meters_send_w_all_year_but_kamstrup_follows_summer_time() {
    let july = 1_783_000_000; // 2026-07-02
    for name in ["sagemcom-t211-se", "landis-gyr-e360-se", "kaifa-ma304h4e-se", "itron-a300-se"] {
        let p = profile(name);
        let mut m = Meter::new(&p, p.household.clone(), 1, july);
        assert!(!m.readings().time.dst, "{name}");
    }
    let p = profile("kamstrup-omnipower-se");
    let mut m = Meter::new(&p, p.household.clone(), 1, july);
    assert!(m.readings().time.dst);
}

/// The tariff indicator and the register being booked follow the country's schedule.
#[test]
fn tariffs_switch_on_the_schedule() {
    // Tuesday 2026-11-24, local winter time (UTC+1): NL low until 07:00, BE night until 07:00.
    let day = 1_795_474_800; // 2026-11-24 00:00 local (CET)
    for (name, early, daytime) in [("iskra-am550", 1u8, 2u8), ("sagemcom-t211-be", 2, 1)] {
        let p = profile(name);
        let mut m = Meter::new(&p, p.household.clone(), 9, day);
        for (hour, want) in [(3, early), (6, early), (7, daytime), (12, daytime), (21, daytime), (23, early)] {
            m.advance_to(day + hour * 3600);
            let before = m.readings().registers;
            m.advance_to(day + hour * 3600 + 1800);
            let r = m.readings();
            assert_eq!(r.tariff, want, "{name} at {hour}:30");
            // Over the half hour only the active tariff's import register moved.
            let other = usize::from(2 - want);
            assert_eq!(before.import_wh[other], r.registers.import_wh[other], "{name} at {hour}:30");
        }
    }
}

/// Gas readings change only at capture instants, which sit on the spec's cadence.
#[test]
fn gas_changes_only_at_capture_times() {
    for (name, cadence) in
        [("iskra-am550", 300u32), ("kaifa-ma304", 3600), ("kamstrup-162", 3600), ("sagemcom-s211-be", 300)]
    {
        let p = profile(name);
        let channel = p.mbus.iter().find(|d| d.placeholder.is_none()).unwrap().channel;
        let mut g = Generator::new(p.clone(), p.household.clone(), 2, 1_768_500_000, None).unwrap();
        let mut prev = None;
        let mut changes = 0;
        for _ in 0..(3 * 3600 / p.interval_s) {
            g.advance();
            let r = g.meter_mut().readings();
            let v = *r.mbus_value(channel).unwrap();
            assert_eq!(seconds_of(&v.captured) % cadence, 0, "{name}: capture at {:?}", v.captured);
            if let Some(prev) = prev {
                let p: p1sim_core::readings::MBusValue = prev;
                if p.milli != v.milli {
                    assert_ne!(p.captured, v.captured, "{name}: the value changed without a new capture");
                    changes += 1;
                }
            }
            prev = Some(v);
        }
        assert!(changes >= 2, "{name}: a January afternoon burns gas");
    }
}

/// A scripted long outage: no telegrams meanwhile, then the counters and the log show it.
#[test]
fn power_failures_silence_the_meter_and_are_logged() {
    let p = profile("sagemcom-t210d");
    let start = 1_768_500_000;
    let mut g = Generator::new(p.clone(), p.household.clone(), 2, start, None).unwrap();
    g.meter_mut().script(vec![
        (start + 10, Command::PowerFailure { seconds: 600 }),
        (start + 1000, Command::PowerFailure { seconds: 20 }),
    ]);
    let before = g.meter_mut().readings().clone();
    let mut ats = Vec::new();
    for _ in 0..1100 {
        ats.push(g.advance());
    }
    assert!(ats.windows(2).any(|w| w[1] - w[0] == 601), "a 600 s gap in the telegrams");
    assert!(ats.windows(2).any(|w| w[1] - w[0] == 21), "a 20 s gap in the telegrams");
    let after = g.meter_mut().readings().clone();
    assert_eq!(after.long_power_failures, before.long_power_failures + 1);
    assert_eq!(after.power_failures, before.power_failures + 1);
    let entry = after.failure_log[0];
    assert_eq!(entry.duration_s, 600);
    assert_eq!(seconds_of(&entry.end), seconds_of(&g.meter_mut().local(start + 610)));
    assert_eq!(after.failure_log[1..], before.failure_log[..after.failure_log.len() - 1]);
}

/// Belgian peak demand: the month's maximum resets and enters the history at the month end.
#[test]
fn belgian_peaks_roll_over_at_the_month_end() {
    let p = profile("sagemcom-s211-be");
    // 2026-01-31 22:00 UTC = 23:00 in Brussels; midnight starts February.
    let start = 1_769_896_800;
    let mut m = Meter::new(&p, p.household.clone(), 4, start);
    m.apply(Command::SetLoad(Some(7000)));
    m.advance_to(start + 1800);
    let before = m.readings().demand.clone();
    assert_eq!(before.month_max.unwrap().1, 7000, "a 7 kW quarter hour is January's peak");
    m.advance_to(start + 3600 + 60);
    let after = m.readings().demand.clone();
    let closed = after.history.last().unwrap();
    assert_eq!((closed.period_end.month, closed.period_end.day, closed.period_end.hour), (2, 1, 0));
    assert_eq!(closed.peak_w, 7000);
    assert_eq!(after.month_max.map(|(t, _)| t.month), None, "February has no completed quarter yet");
    assert!(after.history.len() <= 13);
}

/// Telegrams around an instant, for the snapshots: `count` telegrams starting at `start`.
fn run_text(name: &str, start: i64, count: usize) -> String {
    let p = profile(name);
    let mut g = Generator::new(p.clone(), p.household.clone(), 7, start, None).unwrap();
    let mut out = Vec::new();
    for _ in 0..count {
        g.next_into(&mut out);
    }
    String::from_utf8(out).unwrap().replace("\r\n", "\n")
}

#[test]
fn snapshot_across_the_autumn_dst_change() {
    // 2026-10-25 01:00:00 UTC: 03:00 CEST becomes 02:00 CET.
    insta::assert_snapshot!("iskra-am550_dst", run_text("iskra-am550", 1_792_890_000 - 2, 4));
    insta::assert_snapshot!("sagemcom-t211-be_dst", run_text("sagemcom-t211-be", 1_792_890_000 - 2, 4));
}

#[test]
fn snapshot_across_a_month_end() {
    // 2026-01-31 23:00:00 UTC is midnight in Amsterdam and Brussels.
    insta::assert_snapshot!("iskra-am550_month_end", run_text("iskra-am550", 1_769_900_400 - 2, 4));
    insta::assert_snapshot!("sagemcom-t211-be_month_end", run_text("sagemcom-t211-be", 1_769_900_400 - 2, 4));
}
