//! Measurements with limits, as OpenHTF has them: a name, a value with units, low and high
//! limits, an optional marginal band inside them, and an outcome; and the outcomes of phases
//! and runs.

use serde::Serialize;

/// How a measurement came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum MeasOutcome {
    Pass,
    Fail,
    /// Not measured (the station cannot, or the phase stopped first); never fails a phase.
    Unset,
}

/// How a phase, or a whole run, came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Outcome {
    Pass,
    /// Not run: the plan or the station rules it out (the note says why).
    Skip,
    Fail,
    /// The phase could not be carried out (the rig went away, a setting was refused).
    Error,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Pass => "PASS",
            Outcome::Skip => "SKIP",
            Outcome::Fail => "FAIL",
            Outcome::Error => "ERROR",
        }
    }
}

/// A measured value: a number or a yes/no, or nothing when it could not be measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Value {
    Number(f64),
    Flag(bool),
    None,
}

/// One measurement of a phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Measurement {
    pub name: String,
    pub value: Value,
    pub units: Option<&'static str>,
    pub low: Option<f64>,
    pub high: Option<f64>,
    /// Inside the limits but this close to them: the measurement passes, marked marginal.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marginal_low: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marginal_high: Option<f64>,
    /// What a yes/no measurement must be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<bool>,
    pub outcome: MeasOutcome,
    pub marginal: bool,
    /// Why it was not measured, or what it means.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

impl Measurement {
    /// A number with no limits: recorded, always passes.
    pub fn info(name: &str, value: f64, units: Option<&'static str>) -> Measurement {
        Measurement {
            name: name.to_string(),
            value: Value::Number(value),
            units,
            low: None,
            high: None,
            marginal_low: None,
            marginal_high: None,
            expected: None,
            outcome: MeasOutcome::Pass,
            marginal: false,
            note: None,
        }
        .judged()
    }

    /// A number that must lie within `low..=high` (either may be open).
    pub fn limited(
        name: &str,
        value: f64,
        units: Option<&'static str>,
        low: Option<f64>,
        high: Option<f64>,
    ) -> Measurement {
        Measurement { low, high, ..Measurement::info(name, value, units) }.judged()
    }

    /// A yes/no that must be `expected`.
    pub fn flag(name: &str, value: bool, expected: bool) -> Measurement {
        Measurement { value: Value::Flag(value), expected: Some(expected), ..Measurement::info(name, 0.0, None) }
            .judged()
    }

    /// Not measured, and why.
    pub fn unset(name: &str, units: Option<&'static str>, why: impl Into<String>) -> Measurement {
        Measurement {
            value: Value::None,
            note: Some(why.into()),
            outcome: MeasOutcome::Unset,
            ..Measurement::info(name, 0.0, units)
        }
    }

    /// A marginal band inside the limits.
    pub fn marginal(mut self, low: Option<f64>, high: Option<f64>) -> Measurement {
        self.marginal_low = low;
        self.marginal_high = high;
        self.judged()
    }

    pub fn with_note(mut self, note: impl Into<String>) -> Measurement {
        self.note = Some(note.into());
        self
    }

    /// The number, if it is one.
    pub fn number(&self) -> Option<f64> {
        match self.value {
            Value::Number(v) => Some(v),
            _ => None,
        }
    }

    fn judged(mut self) -> Measurement {
        if let Value::Number(v) = self.value {
            self.value = Value::Number(significant(v, 9));
        }
        let (outcome, marginal) = match self.value {
            Value::None => (MeasOutcome::Unset, false),
            Value::Flag(v) => {
                (if self.expected.is_none_or(|e| e == v) { MeasOutcome::Pass } else { MeasOutcome::Fail }, false)
            }
            Value::Number(v) => {
                let inside = !v.is_nan() && self.low.is_none_or(|l| v >= l) && self.high.is_none_or(|h| v <= h);
                let near = self.marginal_low.is_some_and(|l| v < l) || self.marginal_high.is_some_and(|h| v > h);
                if inside { (MeasOutcome::Pass, near) } else { (MeasOutcome::Fail, false) }
            }
        };
        self.outcome = outcome;
        self.marginal = marginal;
        self
    }

    /// The limits as a validator reads, e.g. `-2.5 <= x`, `x <= 0`, `x == true`.
    pub fn limits_text(&self) -> String {
        match (self.expected, self.low, self.high) {
            (Some(e), _, _) => format!("x == {e}"),
            (None, Some(l), Some(h)) => format!("{} <= x <= {}", show(l), show(h)),
            (None, Some(l), None) => format!("x >= {}", show(l)),
            (None, None, Some(h)) => format!("x <= {}", show(h)),
            (None, None, None) => "recorded".into(),
        }
    }

    /// The value as text, with its units.
    pub fn value_text(&self) -> String {
        match self.value {
            Value::Number(v) => match self.units {
                Some(u) => format!("{} {u}", show(v)),
                None => show(v),
            },
            Value::Flag(b) => (if b { "yes" } else { "no" }).to_string(),
            Value::None => "not measured".into(),
        }
    }
}

/// `v` to `digits` significant digits: what a record keeps of a computed value (21999.999999999993
/// Ω is 22000 Ω).
pub fn significant(v: f64, digits: i32) -> f64 {
    if v == 0.0 || !v.is_finite() {
        return v;
    }
    let scale = 10f64.powi(digits - 1 - v.abs().log10().floor() as i32);
    (v * scale).round() / scale
}

/// A number as short as it can be written without losing what matters.
pub fn show(v: f64) -> String {
    if v.is_nan() {
        return "none".into();
    }
    if v == 0.0 || v.is_infinite() {
        return format!("{v}");
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        return format!("{v:.2e}");
    }
    let s = if a >= 100.0 { format!("{v:.1}") } else { format!("{v:.3}") };
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// The outcome of a phase from its measurements: FAIL if any failed.
pub fn phase_outcome(measurements: &[Measurement]) -> Outcome {
    if measurements.iter().any(|m| m.outcome == MeasOutcome::Fail) { Outcome::Fail } else { Outcome::Pass }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_decide_and_marginal_bands_mark() {
        let m = Measurement::limited("window-low", -3.0, Some("%"), None, Some(-2.5)).marginal(None, Some(-3.5));
        assert_eq!((m.outcome, m.marginal), (MeasOutcome::Pass, true));
        let m = Measurement::limited("window-low", -5.0, Some("%"), None, Some(-2.5)).marginal(None, Some(-3.5));
        assert_eq!((m.outcome, m.marginal), (MeasOutcome::Pass, false));
        let m = Measurement::limited("window-low", -2.0, Some("%"), None, Some(-2.5));
        assert_eq!(m.outcome, MeasOutcome::Fail);
        assert_eq!(Measurement::limited("x", f64::NAN, None, Some(0.0), None).outcome, MeasOutcome::Fail);
        assert_eq!(Measurement::flag("raised", false, true).outcome, MeasOutcome::Fail);
        assert_eq!(Measurement::flag("raised", true, true).outcome, MeasOutcome::Pass);
        assert_eq!(Measurement::unset("ohms", Some("Ω"), "clamped").outcome, MeasOutcome::Unset);
        assert_eq!(Measurement::info("bits", 10.0, None).outcome, MeasOutcome::Pass);
    }

    #[test]
    fn text_reads_like_a_test_report() {
        let m = Measurement::limited("ber", 1.3e-6, None, None, Some(1e-5));
        assert_eq!((m.value_text(), m.limits_text()), ("1.30e-6".into(), "x <= 1.00e-5".into()));
        let m = Measurement::limited("ohms", 4700.0, Some("Ω"), Some(1000.0), Some(10000.0));
        assert_eq!((m.value_text(), m.limits_text()), ("4700 Ω".into(), "1000 <= x <= 10000".into()));
        assert_eq!(show(-2.5), "-2.5");
        assert_eq!(show(0.12345678), "0.123");
        assert_eq!(show(4.6584), "4.658");
        assert_eq!(show(22000.4), "22000.4");
        assert_eq!(show(f64::NAN), "none");
        assert_eq!(significant(21999.999999999993, 9), 22000.0);
        assert_eq!(significant(1.2345678e-6, 3), 1.23e-6);
        let m = Measurement::flag("raised", true, true);
        assert_eq!((m.value_text(), m.limits_text()), ("yes".into(), "x == true".into()));
    }

    #[test]
    fn a_failed_measurement_fails_its_phase_an_unset_one_does_not() {
        let pass = Measurement::info("a", 1.0, None);
        let unset = Measurement::unset("b", None, "no sensor");
        let fail = Measurement::limited("c", 1.0, None, None, Some(0.0));
        assert_eq!(phase_outcome(&[pass.clone(), unset.clone()]), Outcome::Pass);
        assert_eq!(phase_outcome(&[pass, unset, fail]), Outcome::Fail);
    }
}
