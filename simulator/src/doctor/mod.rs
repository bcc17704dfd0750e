//! `p1sim doctor`: from the bytes a P1 reader captured to why its cable or board gives garbage,
//! with the evidence and the fix.
//!
//! The wire model knows what each wiring mistake and each wrong reader setting does to a
//! meter's bytes; the doctor runs it the other way. It decodes the capture at the setting it was
//! read at; where telegrams come out, they tell what is wrong with them. Where none do, every
//! candidate (a meter line, an interface board, an inverting or plain reader input, the two ways
//! drivers deliver flagged characters) is run through the wire model with the shipped
//! profiles' telegrams, and the candidates whose output looks most like the capture name the
//! causes.
//!
//! ```text
//!  source (file, stdin, TCP, serial) ──► listen ──► Capture ──► diagnose ──► Diagnosis ──► report
//!                                                      │
//!        observe (counts) · telegrams (decoder) · hdlc · predict (wire model) ──► rank ──► meter
//! ```
//!
//! - [`cause`]: the cause codes and findings; [`rank`]: weighing explanations into them.
//! - [`observe`]: the capture's counts; [`telegrams`]: the decoder's view; [`hdlc`]: DLMS/COSEM
//!   frames; [`predict`]: the wire model's candidates; [`meter`]: which meter it is.
//! - [`listen`]: reading a capture from a source, bounded in bytes and time, probing settings
//!   on a serial port; [`report`]: the verdict for people and as JSON.
//!
//! Everything but [`listen`] is pure: it takes bytes and gives a verdict.

pub mod cause;
pub mod hdlc;
pub mod listen;
pub mod meter;
pub mod observe;
pub mod predict;
pub mod rank;
pub mod report;
pub mod telegrams;

use std::time::Duration;

use anyhow::Result;
use p1sim_core::spec::LineSettings;

use cause::{Cause, Finding};
use meter::MeterInfo;
use rank::{Evidence, TelegramsFrom};

/// Bytes the doctor looks at, at most: about 24 minutes of a 115200 baud line, far more than a
/// verdict needs. A longer file is read up to here, and the report says so.
pub const MAX_CAPTURE: u64 = 16 << 20;

/// When a chunk of a live capture arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Offset of the chunk's first byte in the capture.
    pub offset: usize,
    /// Milliseconds since listening began.
    pub at_ms: u64,
}

/// What a reader captured, and how.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    pub bytes: Vec<u8>,
    /// The reader's setting the bytes were read at.
    pub read_as: Option<LineSettings>,
    /// When the chunks came in, for a live source.
    pub arrivals: Vec<Arrival>,
    /// How long a live source was listened to.
    pub listened: Option<Duration>,
    /// What the report should say about how the capture was taken (assumed setting, a cut).
    pub notes: Vec<String>,
}

/// The doctor's verdict on one capture.
#[derive(Debug, Clone)]
pub struct Diagnosis {
    pub read_as: LineSettings,
    pub bytes: u64,
    /// Complete telegrams decoded (with bit 7 dropped, for a 7E1 meter read as 8N1).
    pub telegrams: u64,
    /// Of those, telegrams a correct reader accepts.
    pub crc_ok: u64,
    /// Most likely first.
    pub causes: Vec<Finding>,
    pub meter: MeterInfo,
    pub notes: Vec<String>,
}

impl Diagnosis {
    /// The most likely cause.
    pub fn first(&self) -> Cause {
        self.causes.first().map_or(Cause::NotDsmr, |f| f.cause)
    }

    /// Whether the capture is a clean one.
    pub fn is_ok(&self) -> bool {
        self.first() == Cause::Ok
    }
}

/// 115200 8N1, what the doctor assumes a capture was read at when nobody says.
pub const DEFAULT_READ_AS: LineSettings = LineSettings { baud: 115_200, framing: p1sim_core::spec::Framing::EIGHT_N1 };

/// Diagnoses a capture; `key` opens encrypted frames.
pub fn diagnose(capture: &Capture, key: Option<[u8; 16]>) -> Result<Diagnosis> {
    let reader = capture.read_as.unwrap_or(DEFAULT_READ_AS);
    let bytes = &capture.bytes;
    let observation = observe::Observation::of(bytes);
    let decoded = telegrams::decode(bytes, key);
    let masked_bytes: Vec<u8> = bytes.iter().map(|b| b & 0x7F).collect();
    let masked = telegrams::decode(&masked_bytes, key);
    let evidence = Evidence {
        bytes,
        reader,
        observation: &observation,
        decoded: &decoded,
        masked: &masked,
        hdlc: hdlc::scan(bytes),
    };
    let mut ranked = rank::rank(&evidence);
    if bytes.is_empty()
        && let Some(listened) = capture.listened
    {
        ranked.findings = vec![quiet(listened)];
    }
    let arrivals = interval_of_arrivals(&capture.arrivals);
    let (telegrams, crc_ok, meter) = match ranked.telegrams_from {
        Some((TelegramsFrom::AsRead, line)) => {
            (decoded.valid + decoded.failed(), decoded.valid, meter::identify(&decoded, line, arrivals))
        }
        Some((TelegramsFrom::Masked, line)) => {
            (masked.valid + masked.failed(), masked.valid, meter::identify(&masked, line, arrivals))
        }
        None => (0, 0, MeterInfo::default()),
    };
    Ok(Diagnosis {
        read_as: reader,
        bytes: bytes.len() as u64,
        telegrams,
        crc_ok,
        causes: ranked.findings,
        meter,
        notes: capture.notes.clone(),
    })
}

/// The longest a meter waits between telegrams (DSMR 2.2-4 and Smarty: 10 s), and a 9600 baud
/// telegram's time on the line: listening this long hears at least one whole telegram.
pub const LONGEST_INTERVAL: Duration = Duration::from_secs(11);

/// A live source that stayed silent for `listened`.
fn quiet(listened: Duration) -> Finding {
    let secs = listened.as_secs_f64();
    let mut f = rank::silence(&format!("{secs:.1} s of listening"));
    if listened < LONGEST_INTERVAL {
        f.confidence = (0.95 * secs / LONGEST_INTERVAL.as_secs_f64()).clamp(0.3, 0.95);
        f.confidence = (f.confidence * 100.0).round() / 100.0;
        f.evidence.push_str(&format!(
            " (a DSMR 4 meter sends every 10 s; listen at least {} s to be sure)",
            LONGEST_INTERVAL.as_secs()
        ));
    }
    f
}

/// A pause this long between chunks separates two telegrams: far longer than any gap inside a
/// telegram (a USB-UART hands bytes over every few milliseconds), shorter than the 1 s between
/// DSMR 5 telegrams.
const BURST_GAP_MS: u64 = 250;

/// Seconds between the starts of bursts of chunks, the commonest rounded step.
pub fn interval_of_arrivals(arrivals: &[Arrival]) -> Option<u32> {
    let mut starts = Vec::new();
    let mut last: Option<u64> = None;
    for a in arrivals {
        if last.is_none_or(|t| a.at_ms >= t + BURST_GAP_MS) {
            starts.push(a.at_ms);
        }
        last = Some(a.at_ms);
    }
    let mut steps: Vec<u32> =
        starts.windows(2).map(|w| ((w[1] - w[0] + 500) / 1000) as u32).filter(|&s| s >= 1).collect();
    steps.sort_unstable();
    let mut best: Option<(usize, u32)> = None;
    for run in steps.chunk_by(|a, b| a == b) {
        if best.is_none_or(|(n, _)| run.len() > n) {
            best = Some((run.len(), run[0]));
        }
    }
    best.map(|(_, s)| s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bursts_of_chunks_give_the_interval() {
        let a = |offset, at_ms| Arrival { offset, at_ms };
        // Telegrams every 10 s, each arriving in three chunks 5 ms apart.
        let arrivals: Vec<Arrival> =
            (0..4).flat_map(|k| (0..3).map(move |c| a(k * 300 + c * 100, 10_000 * k as u64 + 5 * c as u64))).collect();
        assert_eq!(interval_of_arrivals(&arrivals), Some(10));
        assert_eq!(interval_of_arrivals(&arrivals[..3]), None);
    }

    #[test]
    fn a_short_silence_is_reported_with_less_certainty() {
        let short = quiet(Duration::from_secs(2));
        let long = quiet(Duration::from_secs(12));
        assert_eq!((short.cause, long.cause), (Cause::NoSignal, Cause::NoSignal));
        assert!(short.confidence < long.confidence && short.evidence.contains("listen at least 11 s"));
    }
}
