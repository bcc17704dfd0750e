//! The causes the doctor names: their codes (the JSON's `cause`), the order in which causes that
//! explain a capture equally well are named, and what one finding carries.

use serde::Serialize;

/// Why a reader gets what it gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// Nothing arrives at all.
    NoSignal,
    /// The signal reaches the UART upside down: no inverter, or two.
    Inverted,
    /// The meter sends at another baud rate than the reader's.
    WrongBaud,
    /// A 7E1 meter read as 8N1: the even-parity bit arrives in bit 7.
    ParityAsData,
    /// An 8N1 meter read with parity checking: a character with an odd number of 1 bits fails
    /// the check, and the driver hands it over as NUL.
    WrongFraming,
    /// Encrypted frames (Smarty, Austria's T210-D-r) and no key, or the wrong one.
    Encrypted,
    /// Telegrams cut off before their end.
    PartialTelegrams,
    /// Framing is right, but telegrams fail their CRC or carry corrupted lines.
    BitErrors,
    /// Serial data, but not P1 telegrams.
    NotDsmr,
    /// Valid telegrams.
    Ok,
}

impl Cause {
    /// The code the JSON carries.
    pub const fn code(self) -> &'static str {
        match self {
            Cause::Ok => "ok",
            Cause::NoSignal => "no-signal",
            Cause::Inverted => "inverted",
            Cause::WrongBaud => "wrong-baud",
            Cause::ParityAsData => "parity-as-data",
            Cause::WrongFraming => "wrong-framing",
            Cause::BitErrors => "bit-errors",
            Cause::PartialTelegrams => "partial-telegrams",
            Cause::Encrypted => "encrypted",
            Cause::NotDsmr => "not-dsmr",
        }
    }

    /// Every cause, in the order the doctor names causes it is equally sure of: the wiring
    /// before the reader's settings (a setting cannot be judged through a wrong wiring), the
    /// line before the telegrams.
    pub const ALL: [Cause; 10] = [
        Cause::NoSignal,
        Cause::Inverted,
        Cause::WrongBaud,
        Cause::ParityAsData,
        Cause::WrongFraming,
        Cause::Encrypted,
        Cause::PartialTelegrams,
        Cause::BitErrors,
        Cause::NotDsmr,
        Cause::Ok,
    ];
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

/// One cause named for a capture, with how sure the doctor is, what it saw and what to do.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub cause: Cause,
    /// 0.0 to 1.0.
    pub confidence: f64,
    pub evidence: String,
    pub fix: String,
}

impl Finding {
    pub fn new(cause: Cause, confidence: f64, evidence: impl Into<String>, fix: impl Into<String>) -> Finding {
        Finding { cause, confidence: round2(confidence.clamp(0.0, 1.0)), evidence: evidence.into(), fix: fix.into() }
    }
}

/// Confidences are estimates: two decimals say all they can.
fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Orders findings most likely first; equal confidences in [`Cause::ALL`] order. A cause named
/// twice keeps its most confident finding.
pub fn sort(findings: &mut Vec<Finding>) {
    findings.sort_by(|a, b| b.confidence.total_cmp(&a.confidence).then(a.cause.cmp(&b.cause)));
    let mut seen = Vec::new();
    findings.retain(|f| {
        let first = !seen.contains(&f.cause);
        seen.push(f.cause);
        first
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_the_documented_ones() {
        let codes: Vec<&str> = Cause::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            codes,
            [
                "no-signal",
                "inverted",
                "wrong-baud",
                "parity-as-data",
                "wrong-framing",
                "encrypted",
                "partial-telegrams",
                "bit-errors",
                "not-dsmr",
                "ok"
            ]
        );
        assert_eq!(serde_json::to_string(&Cause::ParityAsData).unwrap(), "\"parity-as-data\"");
        // ALL is in the enum's order, which `sort` relies on for ties.
        assert!(Cause::ALL.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn sorting_puts_the_surest_first_and_the_wiring_first_on_ties() {
        let f = |cause, confidence| Finding::new(cause, confidence, "", "");
        let mut v =
            vec![f(Cause::WrongBaud, 0.8), f(Cause::BitErrors, 0.9), f(Cause::Inverted, 0.8), f(Cause::WrongBaud, 0.1)];
        sort(&mut v);
        let order: Vec<Cause> = v.iter().map(|f| f.cause).collect();
        assert_eq!(order, [Cause::BitErrors, Cause::Inverted, Cause::WrongBaud]);
        assert_eq!(Finding::new(Cause::Ok, 1.7, "", "").confidence, 1.0);
        assert_eq!(Finding::new(Cause::Ok, 0.123_456, "", "").confidence, 0.12);
    }
}
