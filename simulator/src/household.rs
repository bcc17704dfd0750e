//! `--household KEY=VALUE`: overriding a profile's household parameters from the command line.

use anyhow::{Context, Result, bail};
use p1sim_core::household::HouseholdConfig;

/// Applies `key=value` overrides (TOML values: numbers, `true`/`false`, strings) to `base`.
/// Unknown keys are refused with the list of known ones.
pub fn apply_overrides(base: &HouseholdConfig, overrides: &[String]) -> Result<HouseholdConfig> {
    if overrides.is_empty() {
        return Ok(base.clone());
    }
    let mut table = toml::Table::try_from(base).context("cannot represent the household as TOML")?;
    for o in overrides {
        let Some((key, value)) = o.split_once('=') else {
            bail!("--household {o:?}: expected KEY=VALUE, e.g. --household solar_kwp=4.5");
        };
        let key = key.trim();
        let value = value.trim();
        // An id is text even when it is all digits.
        let parsed = if TEXT_KEYS.contains(&key) {
            toml::Value::String(value.to_string())
        } else {
            toml::from_str::<toml::Table>(&format!("v = {value}"))
                .ok()
                .and_then(|mut t| t.remove("v"))
                .unwrap_or_else(|| toml::Value::String(value.to_string()))
        };
        table.insert(key.to_string(), parsed);
    }
    let household: HouseholdConfig = toml::Value::Table(table).try_into().map_err(|e: toml::de::Error| {
        anyhow::anyhow!(
            "--household: {}; known keys: annual_kwh, solar_kwp, ev, ev_charger_kw, gas_m3_per_year, \
             water_m3_per_year, latitude, start_import_kwh, equipment_id",
            e.message().trim()
        )
    })?;
    household.check().map_err(|(key, message)| anyhow::anyhow!("--household {key}: {message}"))?;
    Ok(household)
}

/// Keys whose values are text, whatever they look like.
const TEXT_KEYS: [&str; 1] = ["equipment_id"];

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
        assert!(apply_overrides(&base, &["ev=maybe".into()]).is_err());
        assert!(apply_overrides(&base, &["ev".into()]).is_err());
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
