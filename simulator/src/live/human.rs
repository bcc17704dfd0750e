//! The meter's readings as JSON for scripts and the live page: the raw integer fields of
//! [`Readings`] (W, 0.1 V, mA, Wh) as they always were, and beside each the same value in the unit
//! a person reads (kW, V, A, kWh, m³), so the page and a script read the same numbers.

use p1sim_core::profile::{Medium, Profile};
use p1sim_core::readings::Readings;
use serde_json::{Value, json};

fn kilo(x: u64) -> f64 {
    x as f64 / 1000.0
}

/// `readings` as JSON with human units beside the raw fields.
pub fn readings_json(r: &Readings, profile: &Profile) -> Value {
    let mut v = serde_json::to_value(r).unwrap_or(Value::Null);
    let phases = usize::from(profile.phases.clamp(1, 3));
    if let Some(list) = v.get_mut("phases").and_then(Value::as_array_mut) {
        for (p, raw) in list.iter_mut().zip(&r.phases) {
            if let Value::Object(o) = p {
                o.insert("import_kw".into(), json!(kilo(u64::from(raw.import_w))));
                o.insert("export_kw".into(), json!(kilo(u64::from(raw.export_w))));
                o.insert("voltage_v".into(), json!(f64::from(raw.voltage_dv) / 10.0));
                o.insert("current_a".into(), json!(kilo(u64::from(raw.current_ma))));
            }
        }
        list.truncate(phases);
    }
    let reg = &r.registers;
    if let Some(Value::Object(o)) = v.get_mut("registers") {
        // The registers the meter books on: two, or four on meters that send 1.8.3 and 1.8.4.
        let tariffs = usize::from(profile.tariff_count().clamp(2, 4));
        o.insert("import_kwh".into(), json!(reg.import_wh.map(kilo)[..tariffs]));
        o.insert("export_kwh".into(), json!(reg.export_wh.map(kilo)[..tariffs]));
        o.insert("import_total_kwh".into(), json!(kilo(reg.import_wh.iter().sum())));
        o.insert("export_total_kwh".into(), json!(kilo(reg.export_wh.iter().sum())));
    }
    let net: i64 = r.phases.iter().take(phases).map(|p| i64::from(p.import_w) - i64::from(p.export_w)).sum();
    if let Value::Object(o) = &mut v {
        o.insert("power_import_kw".into(), json!(kilo(net.max(0) as u64)));
        o.insert("power_export_kw".into(), json!(kilo((-net).max(0) as u64)));
    }
    if let Some(list) = v.get_mut("mbus").and_then(Value::as_array_mut) {
        for (m, raw) in list.iter_mut().zip(&r.mbus) {
            let medium = profile.mbus_device(raw.channel).map(|d| d.medium);
            let (name, unit) = match medium {
                Some(Medium::Gas) => ("gas", "m3"),
                Some(Medium::Water) => ("water", "m3"),
                Some(Medium::Heat) => ("heat", "GJ"),
                Some(Medium::Ghost) | None => ("none", ""),
            };
            if let Value::Object(o) = m {
                o.insert("medium".into(), json!(name));
                o.insert("value".into(), json!(kilo(raw.milli)));
                o.insert("unit".into(), json!(unit));
            }
        }
    }
    if let Some(Value::Object(o)) = v.get_mut("demand") {
        o.insert("current_avg_kw".into(), json!(kilo(u64::from(r.demand.current_avg_w))));
        o.insert("month_max_kw".into(), json!(r.demand.month_max.map(|(_, w)| kilo(u64::from(w)))));
    }
    v
}

/// What the page shows about the meter itself.
pub fn profile_json(p: &Profile) -> Value {
    json!({
        "name": p.name,
        "description": p.description,
        "header": p.header,
        "spec": p.spec.name(),
        "country": p.country.code(),
        "line": p.line.to_string(),
        "interval_s": p.interval_s,
        "phases": p.phases,
        "encrypted": p.is_encrypted(),
        "has_demand": p.country == p1sim_core::Country::BE,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units_sit_beside_the_raw_fields() {
        let profile = p1sim_core::builtin::lookup("iskra-am550").unwrap();
        let mut r = Readings::default();
        r.phases[0].import_w = 2500;
        r.phases[0].voltage_dv = 2312;
        r.phases[0].current_ma = 10_870;
        r.registers.import_wh = [1_234_567, 10, 0, 0];
        r.mbus.push(p1sim_core::readings::MBusValue { channel: 2, milli: 4_321_123, captured: Default::default() });
        let v = readings_json(&r, &profile);
        assert_eq!(v["phases"][0]["import_w"], 2500);
        assert_eq!(v["phases"][0]["import_kw"], 2.5);
        assert_eq!(v["phases"][0]["voltage_v"], 231.2);
        assert_eq!(v["phases"][0]["current_a"], 10.87);
        assert_eq!(v["registers"]["import_kwh"][0], 1234.567);
        assert_eq!(v["power_import_kw"], 2.5);
        assert_eq!(v["mbus"][0]["value"], 4321.123);
        assert_eq!(v["mbus"][0]["unit"], "m3");
        assert_eq!(v["phases"].as_array().unwrap().len(), usize::from(profile.phases));
    }
}
