//! From what the phases saw to the likely cause of a failure, its evidence and the fix, in a
//! board builder's words. The causes are tried in the order a failure of one hides the others:
//! a board that never raises Request shows nothing else; a line that delivers nothing cannot
//! show inversion; an inverted line fails every timing test.

use serde::Serialize;

use super::measure::show;
use crate::advice;

/// Why a board failed, as a code the record carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    Ok,
    /// A missing or extra inversion: the UART sees the P1 polarity.
    Inverted,
    /// Nothing at all arrives while Request is high: the open-collector line is never pulled up.
    NoPullUp,
    RequestNotRaised,
    /// Fails at 115200 but not at 9600, or the timing window is too narrow: a weak pull-up or a
    /// long cable.
    SlowEdges,
    /// The framing is right, but bytes are lost or damaged now and then.
    BitErrors,
    /// The line toggles, but nothing reaches the reader.
    NoOutput,
    /// The pull-up lets more current into the meter's output than the port allows.
    PullUpTooStrong,
    /// The board's output goes on after the meter stops.
    OutputNotGated,
    /// Request is driven outside the 4.0-5.5 V the port asks for.
    RequestLevel,
    /// The board draws more from the port's +5 V than it gives.
    SupplyCurrent,
    /// The board's TTL output does not suit the reader's logic family.
    OutputLevel,
}

impl Cause {
    pub fn code(self) -> &'static str {
        match self {
            Cause::Ok => "ok",
            Cause::Inverted => "inverted",
            Cause::NoPullUp => "no-pull-up",
            Cause::RequestNotRaised => "request-not-raised",
            Cause::SlowEdges => "slow-edges",
            Cause::BitErrors => "bit-errors",
            Cause::NoOutput => "no-output",
            Cause::PullUpTooStrong => "pull-up-too-strong",
            Cause::OutputNotGated => "output-not-gated",
            Cause::RequestLevel => "request-level",
            Cause::SupplyCurrent => "supply-current",
            Cause::OutputLevel => "output-level",
        }
    }
}

/// The cause named for a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnosis {
    pub cause: Cause,
    pub evidence: String,
    pub fix: String,
    /// The phase whose result shows it.
    pub phase: Option<String>,
}

/// What a data-carrying phase saw.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineFacts {
    pub phase: String,
    /// "115200 8N1".
    pub line: String,
    pub telegrams: u64,
    pub lost: u64,
    pub bytes_sent: u64,
    pub chars_got: u64,
    pub byte_errors: u64,
    pub framing: u64,
    pub parity: u64,
    pub breaks: u64,
    pub passed: bool,
}

/// Everything the diagnosis may use, filled in by the phases that ran.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The Request phase: whether Request was high when the bench needed it.
    pub request_raised: Option<bool>,
    pub request_phase: Option<String>,
    /// Request drops the rig saw while telegrams were being read.
    pub request_drops: u64,
    /// The readback is a USB-UART: nothing arriving there may be its wiring.
    pub readback_port: bool,
    pub data: Option<LineFacts>,
    pub legacy: Option<LineFacts>,
    /// The clean window of the bit-rate sweep (`None`: not even nominal is clean) against ±limit.
    pub timing: Option<Seen<Limited<Option<Window>>>>,
    /// Bytes damaged by glitches.
    pub integrity: Option<Seen<u64>>,
    /// Characters that came out after the meter stopped.
    pub gating: Option<Seen<u64>>,
    /// The data line's pull-up.
    pub pull_up: Option<PullUpFacts>,
    /// The rise to the sense threshold in bits, if it gets there, against its limit.
    pub rise: Option<Seen<Limited<Option<f64>>>>,
    /// The longest cable the board passes on, in metres, against its limit.
    pub cable: Option<Seen<Limited<f64>>>,
    /// The Request level in volts, against the lowest allowed.
    pub request_level: Option<Seen<Limited<f64>>>,
    /// The supply current.
    pub supply: Option<Seen<SupplyFacts>>,
    /// The board's output high level in volts, against the reader's supply.
    pub output_level: Option<Seen<Limited<f64>>>,
}

/// What the supply phase saw, with its limits.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SupplyFacts {
    pub average_ma: f64,
    pub peak_ma: f64,
    pub max_average_ma: f64,
    pub max_peak_ma: f64,
}

/// The bit-rate offsets, in percent, between which a board receives cleanly.
pub type Window = (f64, f64);

/// What one phase found, with its name and whether it passed.
#[derive(Debug, Clone, PartialEq)]
pub struct Seen<T> {
    pub phase: String,
    pub passed: bool,
    pub value: T,
}

/// A value and the limit it was held against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limited<T> {
    pub value: T,
    pub limit: f64,
}

/// What the pull-up phase saw.
#[derive(Debug, Clone, PartialEq)]
pub struct PullUpFacts {
    pub phase: String,
    pub present: bool,
    pub open_volts: f64,
    pub ohms: Option<f64>,
    pub min_ohms: f64,
    pub max_ohms: f64,
    pub passed: bool,
}

/// Names the most likely cause from the facts; `all_passed` is the run's outcome.
pub fn diagnose(f: &Facts, all_passed: bool) -> Diagnosis {
    let d = |cause, phase: &str, evidence: String, fix: &str| Diagnosis {
        cause,
        evidence,
        fix: fix.to_string(),
        phase: (!phase.is_empty()).then(|| phase.to_string()),
    };
    if f.request_raised == Some(false) {
        let phase = f.request_phase.clone().unwrap_or_default();
        return d(
            Cause::RequestNotRaised,
            &phase,
            "Request (RJ12 pin 2) stayed low while the bench waited for it: a meter sends nothing until it is high"
                .into(),
            advice::REQUEST,
        );
    }
    if f.request_drops > 0 {
        return d(
            Cause::RequestNotRaised,
            f.request_phase.as_deref().unwrap_or(""),
            format!(
                "Request dropped {} times while telegrams were being read: the meter stops mid-telegram each time",
                f.request_drops
            ),
            "Hold Request (RJ12 pin 2) high for as long as the reader reads: tie it to +5 V, or keep the GPIO or RTS \
             that drives it asserted",
        );
    }
    if let Some(data) = &f.data
        && !data.passed
    {
        if data.chars_got == 0 {
            let pulled_up = f.pull_up.as_ref().map(|p| p.present);
            if f.readback_port || pulled_up == Some(true) {
                return d(
                    Cause::NoOutput,
                    &data.phase,
                    format!(
                        "{} bytes went out on the data line{} and nothing reached the reader",
                        data.bytes_sent,
                        if pulled_up == Some(true) { ", which is pulled up and toggling," } else { "" }
                    ),
                    "The board's output does not reach the reader: check the wire from the board's TX/RX output \
                     to the reader's RX (not its TX), the reader's ground, and that the reader's port is the one \
                     given to --read",
                );
            }
            return d(
                Cause::NoPullUp,
                &data.phase,
                format!(
                    "{} bytes went out on the data line with Request high, and nothing at all arrived{}",
                    data.bytes_sent,
                    if pulled_up == Some(false) { "; the released line does not rise" } else { "" }
                ),
                advice::NO_PULL_UP,
            );
        }
        if data.breaks > 0 && data.lost * 2 >= data.telegrams {
            return d(
                Cause::Inverted,
                &data.phase,
                format!(
                    "{} of {} telegrams lost; {} characters read as breaks (the idle line reads low) and {} had \
                     framing errors: the UART sees the signal upside down",
                    data.lost, data.telegrams, data.breaks, data.framing
                ),
                advice::INVERTED,
            );
        }
    }
    if let Some(Seen { phase, passed: false, value: Limited { value: volts, limit } }) = &f.request_level {
        let evidence = if volts < limit {
            format!(
                "Request (RJ12 pin 2) rises to only {} V under a meter's load; the port asks for 4.0 to 5.5 V, and some \
                 meters give nothing below (the Landis+Gyr E360 is reported to need the full 5 V)",
                show(*volts)
            )
        } else {
            format!("Request (RJ12 pin 2) is driven to {} V, above the 5.5 V the port takes", show(*volts))
        };
        return d(
            Cause::RequestLevel,
            phase,
            evidence,
            "Drive Request from +5 V: tie pin 2 to pin 1, or let the reader's GPIO switch pin 1's +5 V onto pin 2 \
             through a transistor; a 3.3 V GPIO straight on pin 2 is not enough, and Request must not go above 5.5 V",
        );
    }
    if let Some(Seen { phase, passed: false, value: s }) = &f.supply {
        return d(
            Cause::SupplyCurrent,
            phase,
            format!(
                "the board draws {} mA on average and {} mA at its peak from the port's +5 V (pin 1); the plan allows {} \
                 and {} mA: a DSMR 5 or Smarty port gives 250 mA and trips from about 260 mA, a DSMR 4 port gives 100 mA",
                show(s.average_ma),
                show(s.peak_ma),
                show(s.max_average_ma),
                show(s.max_peak_ma)
            ),
            "Power the board from USB or its own supply, or draw less: lower the Wi-Fi transmit power, let the radio \
             sleep, and add a bulk capacitor with a soft start so the start-up current does not trip the port",
        );
    }
    if let Some(Seen { phase, passed: false, value: Limited { value: volts, limit: reader } }) = &f.output_level {
        let evidence = if volts > reader {
            format!(
                "the board's TTL output idles at {} V, above what a {} V reader's input takes: it can damage a Raspberry \
                 Pi's or an ESP's pin",
                show(*volts),
                show(*reader)
            )
        } else {
            format!(
                "the board's TTL output idles at only {} V, too low for a {} V reader to read as high",
                show(*volts),
                show(*reader)
            )
        };
        return d(
            Cause::OutputLevel,
            phase,
            evidence,
            "Pull the output stage up to the reader's own supply (3.3 V for a Raspberry Pi or an ESP, 5 V for a 5 V \
             adapter), not to the port's +5 V",
        );
    }
    if let Some(p) = &f.pull_up
        && !p.passed
        && p.present
        && let Some(ohms) = p.ohms
    {
        if ohms < p.min_ohms {
            return d(
                Cause::PullUpTooStrong,
                &p.phase,
                format!(
                    "the data line's pull-up measures {} Ω, below the {} Ω that keeps the current into the meter's \
                     output under 5 mA at 5 V",
                    show(ohms),
                    show(p.min_ohms)
                ),
                "Use a pull-up of 1-10 kΩ (4.7 kΩ is usual) on RJ12 pin 5",
            );
        }
        if ohms > p.max_ohms {
            return d(
                Cause::SlowEdges,
                &p.phase,
                format!(
                    "the data line's pull-up measures {} Ω, above {} Ω: the line rises too slowly for 115200 baud \
                     (the released line reaches {} V)",
                    show(ohms),
                    show(p.max_ohms),
                    show(p.open_volts)
                ),
                "Fit a stronger pull-up on RJ12 pin 5: 4.7 kΩ to +5 V is usual (1-10 kΩ)",
            );
        }
    }
    let fast_failed = f.data.as_ref().is_some_and(|d| !d.passed);
    let slow_passed = f.legacy.as_ref().is_some_and(|d| d.passed);
    if fast_failed && slow_passed {
        let (fast, slow) = (f.data.as_ref().expect("checked"), f.legacy.as_ref().expect("checked"));
        return d(
            Cause::SlowEdges,
            &fast.phase,
            format!(
                "{} of {} telegrams lost at {} ({} byte errors), none of {} at {}: bits shrink at the higher rate",
                fast.lost, fast.telegrams, fast.line, fast.byte_errors, slow.telegrams, slow.line
            ),
            SLOW_FIX,
        );
    }
    if let Some(Seen { phase, passed: false, value: Limited { value: window, limit } }) = &f.timing
        && !fast_failed
    {
        let evidence = match window {
            Some((lo, hi)) => format!(
                "the board receives cleanly only from {}% to {}% of the nominal bit rate; it must from -{}% to +{}%",
                show(*lo),
                show(*hi),
                show(*limit),
                show(*limit)
            ),
            None => "the board does not receive cleanly even at the nominal bit rate".to_string(),
        };
        return d(Cause::SlowEdges, phase, evidence, SLOW_FIX);
    }
    if let Some(Seen { phase, passed: false, value: Limited { value: Some(bits), limit } }) = &f.rise {
        return d(
            Cause::SlowEdges,
            phase,
            format!(
                "the released data line takes {} bits to cross 2.4 V; at most {} bits are allowed",
                show(*bits),
                show(*limit)
            ),
            SLOW_FIX,
        );
    }
    if let Some(Seen { phase, passed: false, value: Limited { value: metres, limit } }) = &f.cable
        && !fast_failed
    {
        return d(
            Cause::SlowEdges,
            phase,
            format!("the board passes only up to {} m of cable; it should up to {} m", show(*metres), show(*limit)),
            SLOW_FIX,
        );
    }
    if let Some(data) = &f.data
        && !data.passed
    {
        return d(
            Cause::BitErrors,
            &data.phase,
            format!(
                "{} of {} telegrams lost at {}: {} byte errors, {} framing and {} parity errors in {} bytes",
                data.lost, data.telegrams, data.line, data.byte_errors, data.framing, data.parity, data.bytes_sent
            ),
            BIT_ERROR_FIX,
        );
    }
    if let Some(Seen { phase, passed: false, value: errors }) = &f.integrity {
        return d(
            Cause::BitErrors,
            phase,
            format!("{errors} bytes damaged by glitches a UART's majority vote should reject"),
            BIT_ERROR_FIX,
        );
    }
    if let Some(Seen { phase, passed: false, value: extra }) = &f.gating {
        return d(
            Cause::OutputNotGated,
            phase,
            format!("{extra} characters came out after the meter stopped mid-telegram"),
            "The board must pass the line through, not buffer it: when the meter stops (Request dropped), its \
             output has to stop within one character. Check the firmware of a board with a microcontroller",
        );
    }
    if all_passed {
        return d(Cause::Ok, "", "every phase passed".into(), "nothing to fix");
    }
    d(
        Cause::BitErrors,
        "",
        "a phase failed without a pattern the bench knows; see the failing measurements".into(),
        BIT_ERROR_FIX,
    )
}

const SLOW_FIX: &str = "The data line rises too slowly: use a stronger pull-up on RJ12 pin 5 (4.7 kΩ to +5 V; 1-10 \
                        kΩ) and a shorter cable (a few metres), or a board whose input switches lower (a transistor \
                        stage switches at about 0.6 V)";

const BIT_ERROR_FIX: &str = advice::BIT_ERRORS;

#[cfg(test)]
mod tests {
    use super::*;

    fn line(passed: bool) -> LineFacts {
        LineFacts { phase: "data".into(), line: "115200 8N1".into(), telegrams: 10, passed, ..LineFacts::default() }
    }

    #[test]
    fn causes_in_the_order_one_hides_the_next() {
        let mut f = Facts { request_raised: Some(false), data: Some(line(false)), ..Facts::default() };
        assert_eq!(diagnose(&f, false).cause, Cause::RequestNotRaised);
        f.request_raised = Some(true);
        f.data = Some(LineFacts { bytes_sent: 5000, ..line(false) });
        let d = diagnose(&f, false);
        assert_eq!(d.cause, Cause::NoPullUp);
        assert!(d.fix.contains("pin 5") && d.evidence.contains("5000 bytes"), "{d:?}");
        f.readback_port = true;
        assert_eq!(diagnose(&f, false).cause, Cause::NoOutput);
        f.readback_port = false;
        f.data = Some(LineFacts { chars_got: 900, breaks: 10, lost: 10, framing: 300, ..line(false) });
        assert_eq!(diagnose(&f, false).cause, Cause::Inverted);
        f.data = Some(LineFacts { chars_got: 900, lost: 10, byte_errors: 40, ..line(false) });
        f.legacy = Some(LineFacts { phase: "legacy".into(), passed: true, ..line(true) });
        assert_eq!(diagnose(&f, false).cause, Cause::SlowEdges);
        f.legacy = None;
        assert_eq!(diagnose(&f, false).cause, Cause::BitErrors);
        let ok = Facts { request_raised: Some(true), data: Some(line(true)), ..Facts::default() };
        assert_eq!(diagnose(&ok, true).cause, Cause::Ok);
        let timing =
            Seen { phase: "timing".into(), passed: false, value: Limited { value: Some((-1.0, 1.5)), limit: 2.5 } };
        let narrow = Facts { timing: Some(timing), ..ok.clone() };
        let d = diagnose(&narrow, false);
        assert_eq!((d.cause, d.phase.as_deref()), (Cause::SlowEdges, Some("timing")));
        assert!(d.evidence.contains("-1% to 1.5%"), "{}", d.evidence);
    }

    #[test]
    fn the_electrical_causes_name_their_values() {
        let ok = Facts { request_raised: Some(true), data: Some(line(true)), ..Facts::default() };
        let low = Facts {
            request_level: Some(Seen {
                phase: "request-level".into(),
                passed: false,
                value: Limited { value: 3.3, limit: 4.0 },
            }),
            ..ok.clone()
        };
        let d = diagnose(&low, false);
        assert_eq!(d.cause, Cause::RequestLevel);
        assert!(d.evidence.contains("only 3.3 V") && d.fix.contains("pin 1"), "{d:?}");
        let hungry = Facts {
            supply: Some(Seen {
                phase: "supply".into(),
                passed: false,
                value: SupplyFacts { average_ma: 300.0, peak_ma: 420.0, max_average_ma: 250.0, max_peak_ma: 260.0 },
            }),
            ..ok.clone()
        };
        let d = diagnose(&hungry, false);
        assert_eq!(d.cause, Cause::SupplyCurrent);
        assert!(d.evidence.contains("300 mA on average") && d.evidence.contains("420 mA"), "{d:?}");
        let five = Facts {
            output_level: Some(Seen {
                phase: "output-level".into(),
                passed: false,
                value: Limited { value: 5.0, limit: 3.3 },
            }),
            ..ok
        };
        assert_eq!(diagnose(&five, false).cause, Cause::OutputLevel);
    }

    #[test]
    fn a_weak_pull_up_is_named_with_its_value() {
        let f = Facts {
            pull_up: Some(PullUpFacts {
                phase: "pull-up".into(),
                present: true,
                open_volts: 4.3,
                ohms: Some(47_000.0),
                min_ohms: 1000.0,
                max_ohms: 10_000.0,
                passed: false,
            }),
            ..Facts::default()
        };
        let d = diagnose(&f, false);
        assert_eq!(d.cause, Cause::SlowEdges);
        assert!(d.evidence.contains("47000 Ω") && d.fix.contains("4.7 kΩ"), "{d:?}");
    }
}
