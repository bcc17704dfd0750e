//! `--household KEY=VALUE`: overriding a profile's household parameters from the command line.

use anyhow::{Context, Result, bail};
use p1sim_core::household::HouseholdConfig;

/// Applies `key=value` overrides to `base`. Each key takes its own kind of value; a key or value
/// that does not fit is refused with the key, what it expects and an example.
pub fn apply_overrides(base: &HouseholdConfig, overrides: &[String]) -> Result<HouseholdConfig> {
    if overrides.is_empty() {
        return Ok(base.clone());
    }
    let mut table = toml::Table::try_from(base).context("cannot represent the household as TOML")?;
    for o in overrides {
        let Some((key, value)) = o.split_once('=') else {
            bail!("--household {o:?}: expected KEY=VALUE, e.g. --household solar_kwp=4.5");
        };
        let (key, value) = (key.trim(), value.trim());
        let Some(&(_, kind, example)) = KEYS.iter().find(|(k, _, _)| *k == key) else {
            let known: Vec<&str> = KEYS.iter().map(|(k, _, _)| *k).collect();
            bail!("--household {key}={value}: unknown key `{key}`; known keys: {}", known.join(", "));
        };
        let parsed = match kind {
            // Infinite and NaN values parse, for `check` to refuse with the key's range.
            Kind::Number(unit) => match value.parse::<f64>() {
                Ok(x) => toml::Value::Float(x),
                Err(_) => bail!("--household {key}={value}: expected a number ({unit}), e.g. {key}={example}"),
            },
            Kind::Switch => match value {
                "true" | "yes" | "on" => toml::Value::Boolean(true),
                "false" | "no" | "off" => toml::Value::Boolean(false),
                _ => bail!("--household {key}={value}: expected true or false, e.g. {key}={example}"),
            },
            // An id is text even when it is all digits.
            Kind::Text => toml::Value::String(value.to_string()),
        };
        table.insert(key.to_string(), parsed);
    }
    let household: HouseholdConfig = toml::Value::Table(table)
        .try_into()
        .map_err(|e: toml::de::Error| anyhow::anyhow!("--household: {}", e.message().trim()))?;
    household.check().map_err(|(key, message)| anyhow::anyhow!("--household {key}: {message}"))?;
    Ok(household)
}

/// What a key's value is.
#[derive(Clone, Copy)]
enum Kind {
    /// A number, in this unit.
    Number(&'static str),
    Switch,
    Text,
}

/// The keys of `--household`, with an example value each.
const KEYS: [(&str, Kind, &str); 9] = [
    ("annual_kwh", Kind::Number("kWh a year"), "3500"),
    ("solar_kwp", Kind::Number("kWp of panels"), "4.5"),
    ("ev", Kind::Switch, "true"),
    ("ev_charger_kw", Kind::Number("kW"), "11"),
    ("gas_m3_per_year", Kind::Number("m3 a year"), "1100"),
    ("water_m3_per_year", Kind::Number("m3 a year"), "55"),
    ("latitude", Kind::Number("degrees north"), "52.1"),
    ("start_import_kwh", Kind::Number("kWh on the register at the start"), "12000"),
    ("equipment_id", Kind::Text, "E0044000000000119"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_numbers_and_booleans() {
        let base = HouseholdConfig::default();
        let h =
            apply_overrides(&base, &["solar_kwp=4.5".into(), "ev=true".into(), "annual_kwh = 5000".into()]).unwrap();
        assert_eq!((h.solar_kwp, h.ev, h.annual_kwh), (4.5, true, 5000.0));
        assert_eq!(h.gas_m3_per_year, base.gas_m3_per_year);
    }

    #[test]
    fn an_equipment_id_is_text_even_when_it_is_digits() {
        let h = apply_overrides(&HouseholdConfig::default(), &["equipment_id=0272031312565".into()]).unwrap();
        assert_eq!(h.equipment_id.as_deref(), Some("0272031312565"));
        assert!(apply_overrides(&HouseholdConfig::default(), &["equipment_id=a(b".into()]).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        let base = HouseholdConfig::default();
        let e = apply_overrides(&base, &["solar=4".into()]).unwrap_err().to_string();
        assert!(e.contains("solar") && e.contains("known keys"), "{e}");
        let e = apply_overrides(&base, &["ev=maybe".into()]).unwrap_err().to_string();
        assert_eq!(e, "--household ev=maybe: expected true or false, e.g. ev=true");
        assert!(apply_overrides(&base, &["ev".into()]).is_err());
        let e = apply_overrides(&base, &["annual_kwh=abc".into()]).unwrap_err().to_string();
        assert_eq!(e, "--household annual_kwh=abc: expected a number (kWh a year), e.g. annual_kwh=3500");
    }

    #[test]
    fn numbers_must_be_finite_and_physical() {
        let base = HouseholdConfig::default();
        for bad in ["annual_kwh=nan", "annual_kwh=inf", "annual_kwh=-5000", "solar_kwp=-1", "latitude=91"] {
            let e = apply_overrides(&base, &[bad.into()]).unwrap_err().to_string();
            let key = bad.split('=').next().unwrap();
            assert!(e.contains(key) && e.contains("out of range"), "{bad}: {e}");
        }
        assert!(apply_overrides(&base, &["annual_kwh=0".into()]).is_ok());
    }
}
