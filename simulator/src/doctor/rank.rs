//! Weighing the explanations of a capture into causes, most likely first.
//!
//! Where the decoder finds P1 telegrams at the setting the bytes were read at, the line is
//! right and the telegrams say the rest (CRC failures, cut-offs, encrypted frames). Where it
//! finds none, the bytes are held against the wire model: HDLC frames name another protocol;
//! telegrams that decode once bit 7 is dropped, and that the model turns back into exactly the
//! bytes captured, are a 7E1 meter read as 8N1; otherwise every candidate's predicted byte
//! distribution is compared with the capture's ([`Observation::distance`]), the candidates are
//! weighted by how close they come (fewer faults win ties), and each cause gets the weight of
//! the candidates that stand for it, scaled by how well the best one fits. A capture no
//! candidate comes near is not P1 at all.

use p1sim_core::spec::{Framing, LineSettings};
use p1sim_core::wire::{ErrorChars, FaultPlan, ReceiverConfig};

use super::cause::{Cause, Finding, sort};
use super::hdlc::Hdlc;
use super::observe::{Observation, percent, show_commonest};
use super::predict::{Model, Prediction, Verdict};
use super::telegrams::Decoded;
use crate::advice;

/// How sharply closer candidates win, in units of distance: candidates this much farther than
/// the best weigh 1/e as much.
const SHARPNESS: f64 = 0.03;
/// The distance one more fault costs a candidate, so that the simplest explanation wins a tie.
const PER_FAULT: f64 = 0.03;
/// Above this distance the best candidate explains nothing; below `NOT_P1_FROM` no doubt is
/// cast on the line being P1.
const NOT_P1_FROM: f64 = 0.35;
const NOT_P1_SPAN: f64 = 0.4;
/// Bytes of a capture replayed through the wire model to check a 7E1 meter read as 8N1.
const REPLAYED: usize = 64 << 10;
/// The share of printable ASCII above which bytes are text: a telegram is all text, and bit
/// errors at a rate of 1 % leave 90 % of it so; random bytes are 37 % text.
const MOSTLY_TEXT: f64 = 0.6;
/// At most this many NULs and nothing else are a line held low: the break it reads as.
const HELD_LOW_NULS: u64 = 4;

/// A candidate's verdict and how close its nearest prediction comes.
#[derive(Debug, Clone)]
pub struct Match<'m> {
    pub verdict: &'m Verdict,
    pub distance: f64,
    pub prediction: &'m Prediction,
}

impl Match<'_> {
    fn score(&self) -> f64 {
        self.distance + PER_FAULT * self.verdict.faults() as f64
    }
}

/// The nearest prediction of every verdict the model has, nearest (by score) first. Candidates
/// that deliver nothing are left out: a capture with bytes is not theirs.
pub fn matches<'m>(o: &Observation, model: &'m Model) -> Vec<Match<'m>> {
    let mut best: Vec<Match<'m>> = Vec::new();
    for p in &model.predictions {
        if p.verdict.0 == [Cause::NoSignal] {
            continue;
        }
        let distance = o.distance(&p.histogram);
        match best.iter_mut().find(|m| *m.verdict == p.verdict) {
            Some(m) if distance < m.distance => *m = Match { verdict: &p.verdict, distance, prediction: p },
            Some(_) => {}
            None => best.push(Match { verdict: &p.verdict, distance, prediction: p }),
        }
    }
    best.sort_by(|a, b| a.score().total_cmp(&b.score()));
    best
}

/// Everything the ranking looks at.
#[derive(Debug)]
pub struct Evidence<'a> {
    pub bytes: &'a [u8],
    pub reader: LineSettings,
    pub observation: &'a Observation,
    /// Decoded as read.
    pub decoded: &'a Decoded,
    /// Decoded with bit 7 dropped.
    pub masked: &'a Decoded,
    pub hdlc: Hdlc,
}

/// What the ranking concludes.
#[derive(Debug, Clone)]
pub struct Ranked {
    pub findings: Vec<Finding>,
    /// The decode the meter is identified from, and the line it was sent at, if any.
    pub telegrams_from: Option<(TelegramsFrom, LineSettings)>,
}

/// Which decode holds the meter's telegrams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TelegramsFrom {
    AsRead,
    Masked,
}

/// Ranks the causes of a capture.
pub fn rank(e: &Evidence<'_>) -> Ranked {
    let o = e.observation;
    if o.bytes == 0 {
        return alone(no_signal("nothing at all arrived".into()));
    }
    if o.only_nul() && o.nul <= HELD_LOW_NULS {
        return alone(no_signal(format!(
            "only {} NUL byte(s) arrived and nothing else: the break a line held low reads as, then silence",
            o.nul
        )));
    }
    // Telegrams in text: in a long stretch of random bytes the decoder finds a `/` ... `!` now
    // and then, even one that passes, but those bytes are not mostly text.
    let text = o.share(o.text) >= MOSTLY_TEXT;
    if (text && (e.decoded.valid > 0 || o.obis_lines >= 2)) || e.decoded.frames() > 0 {
        return Ranked { findings: telegram_findings(e), telegrams_from: Some((TelegramsFrom::AsRead, e.reader)) };
    }
    if e.hdlc.found() {
        return alone(Finding::new(Cause::NotDsmr, 0.97, hdlc_evidence(&e.hdlc, o), HDLC_FIX));
    }
    if let Some(f) = parity_as_data(e) {
        let meter = LineSettings { baud: e.reader.baud, framing: Framing::SEVEN_E1 };
        return Ranked { findings: vec![f], telegrams_from: Some((TelegramsFrom::Masked, meter)) };
    }
    Ranked { findings: line_findings(e), telegrams_from: None }
}

fn alone(f: Finding) -> Ranked {
    Ranked { findings: vec![f], telegrams_from: None }
}

fn no_signal(evidence: String) -> Finding {
    Finding::new(Cause::NoSignal, 0.95, evidence, NO_SIGNAL_FIX)
}

/// The telegrams decode at the reader's setting: what is wrong with them, if anything.
fn telegram_findings(e: &Evidence<'_>) -> Vec<Finding> {
    let d = e.decoded;
    let mut v = Vec::new();
    let complete = d.valid + d.failed();
    if d.no_key > 0 {
        let title = d.frame.map_or(String::new(), |h| {
            format!(" from system title {}", h.system_title.iter().map(|b| format!("{b:02X}")).collect::<String>())
        });
        v.push(Finding::new(
            Cause::Encrypted,
            if complete == 0 { 0.97 } else { 0.6 },
            format!(
                "{} encrypted frame(s){title} (DLMS general-glo-ciphering: 0xDB, the system title, a frame counter, \
                 AES-GCM ciphertext) and no key to open them",
                d.no_key
            ),
            "The meter encrypts its telegrams (Luxembourg's Smarty, Austria's Sagemcom T210-D-r). Give its 16-byte \
             decryption key, from the grid operator, as 32 hex digits: `p1sim doctor ... --key HEX`; the reader \
             needs it too (Home Assistant's DSMR integration: the \"MSn\" version and the key)",
        ));
    }
    if !d.undecryptable.is_empty() {
        let opened = d.decrypted;
        v.push(Finding::new(
            Cause::Encrypted,
            0.9 * d.undecryptable.len() as f64 / (d.undecryptable.len() as u64 + opened) as f64,
            format!(
                "{} of {} encrypted frame(s) would not open: {}",
                d.undecryptable.len(),
                d.undecryptable.len() as u64 + opened,
                d.undecryptable[0]
            ),
            "Check the key: it is the meter's own 16-byte decryption key (32 hex digits) from the grid operator. A \
             meter with its own authentication key needs that as well; `p1sim decode --no-tag-check` decodes \
             without it and relies on the CRC",
        ));
    }
    if d.failed() > 0 {
        let rate = d.failed() as f64 / complete as f64;
        let mut evidence = format!(
            "{} of {} telegrams failed: {} with a CRC that does not match, {} with corrupted lines; a telegram error \
             rate of {}",
            d.failed(),
            complete,
            d.crc_failed,
            d.corrupted,
            percent(rate)
        );
        if d.garbage > 0 {
            evidence.push_str(&format!(", and {} stray byte(s) between telegrams", d.garbage));
        }
        v.push(Finding::new(Cause::BitErrors, 0.6 + 0.35 * (rate * 10.0).min(1.0), evidence, advice::BIT_ERRORS));
    }
    if !d.cut.is_empty() {
        let total = complete + d.cut.len() as u64;
        let rate = d.cut.len() as f64 / total as f64;
        let all_same = d.cut.len() >= 2 && d.cut.iter().all(|&n| n == d.cut[0]);
        let (evidence, fix) = if all_same {
            (
                format!(
                    "{} of {} telegrams stop after exactly {} bytes each and the next one starts: a reader that keeps \
                     only the first {} bytes of a telegram",
                    d.cut.len(),
                    total,
                    d.cut[0],
                    d.cut[0]
                ),
                format!(
                    "Give the reader a buffer larger than the meter's longest telegram (real ones reach 3.3 kB with a \
                     full text message; ESPHome: rx_buffer_size 1700 or more and max_telegram_length); the meter \
                     sends {} bytes and more",
                    d.cut[0]
                ),
            )
        } else {
            let mut lengths: Vec<String> = d.cut.iter().take(5).map(|n| n.to_string()).collect();
            if d.cut.len() > 5 {
                lengths.push("...".into());
            }
            (
                format!(
                    "{} of {} telegrams stop part-way (after {} bytes) and a fresh one starts with `/`: the meter \
                     stopped mid-telegram",
                    d.cut.len(),
                    total,
                    lengths.join(", ")
                ),
                "A meter stops at once when Request (RJ12 pin 2) drops. Hold it high for the whole telegram: tie it \
                 to +5 V (pin 1), or keep the GPIO or the adapter's RTS/DTR that drives it raised while reading; \
                 a reader that toggles Request gets a cut telegram each time"
                    .to_string(),
            )
        };
        let mut confidence = 0.6 + 0.35 * (rate * 10.0).min(1.0);
        if !all_same && d.failed() > 0 {
            // Cut-offs of all lengths beside CRC failures are what noise does: a flipped bit
            // turns a byte into a `/` that starts a fresh telegram, or spoils the `!`.
            confidence *= 0.8;
        }
        v.push(Finding::new(Cause::PartialTelegrams, confidence, evidence, fix));
    }
    if d.telegrams == 0 && d.cut.is_empty() && d.frames() == 0 {
        // P1 data lines, but never a whole telegram.
        v.push(Finding::new(
            Cause::PartialTelegrams,
            0.6,
            format!(
                "{} P1 data lines (`A-B:C.D.E(...)`) but no telegram from its `/` to its `!`: the reader gets pieces",
                e.observation.obis_lines
            ),
            "The reader loses the start or the end of every telegram: check its buffer size and that it reads \
             continuously; then look for noise on the line",
        ));
        v.push(Finding::new(
            Cause::BitErrors,
            0.4,
            "the `/` and `!` that frame a telegram never arrive intact",
            advice::BIT_ERRORS,
        ));
    }
    if v.is_empty() {
        let mut evidence = format!("{} valid telegram(s), every CRC right", d.valid);
        if d.crc_failed == 0 && d.valid > 0 && !d.first.as_ref().is_some_and(|s| s.crc) {
            evidence = format!("{} valid telegram(s) (this meter sends no CRC)", d.valid);
        }
        if d.decrypted > 0 {
            evidence.push_str(", decrypted with the key given");
        }
        if d.without_end_marker > 0 {
            evidence.push_str("; the meter sends no `!`: each telegram ends at the next `/`");
        }
        let mut fix = "Nothing to fix on the wire".to_string();
        if e.reader.framing == Framing::SEVEN_E1 && d.first.as_ref().is_some_and(|s| s.crc) {
            fix.push_str(
                ". The meter sends 8N1 (DSMR 4 and later); at 7E1 the reader gets the right bytes only because bit 7 \
                 of ASCII is 0, and a driver that checks parity would turn every other character into NUL: set 8N1",
            );
        }
        v.push(Finding::new(Cause::Ok, if d.garbage > d.valid * 64 { 0.8 } else { 0.98 }, evidence, fix));
    }
    sort(&mut v);
    v
}

/// A 7E1 meter read as 8N1: bit 7 carries the parity of the other seven bits, telegrams decode
/// once it is dropped, and the wire model, fed those telegrams as a 7E1 meter, delivers what was
/// captured.
fn parity_as_data(e: &Evidence<'_>) -> Option<Finding> {
    let o = e.observation;
    let parity_share = o.share(o.parity_in_bit7) / o.share(o.bytes - o.nul).max(f64::MIN_POSITIVE);
    if e.reader.framing != Framing::EIGHT_N1 || e.masked.valid == 0 || parity_share < 0.9 {
        return None;
    }
    // The start of the capture is evidence enough, and replaying a megabyte would take longer
    // than the rest of the diagnosis.
    let held = &e.bytes[..e.bytes.len().min(REPLAYED)];
    let masked: Vec<u8> = held.iter().map(|b| b & 0x7F).collect();
    let meter = LineSettings { baud: e.reader.baud, framing: Framing::SEVEN_E1 };
    let predicted = replay(&masked, meter, e.reader)?;
    let same = predicted.iter().zip(held).filter(|(a, b)| a == b).count();
    let agreement = same as f64 / held.len() as f64;
    Some(Finding::new(
        Cause::ParityAsData,
        0.5 + 0.48 * agreement,
        format!(
            "{} of {} bytes have bit 7 set, and in {} of them all bit 7 is the even parity of the low seven bits; with \
             bit 7 dropped, {} telegram(s) decode, and a 7E1 meter sending them to a reader at {} delivers {} of the \
             {} bytes replayed exactly",
            o.high,
            o.bytes - o.nul,
            percent(parity_share),
            e.masked.valid,
            e.reader,
            percent(agreement),
            held.len()
        ),
        format!(
            "The meter sends 7E1 (DSMR 2.2 and 3.0 meters do: 9600 baud, 7 data bits, even parity, 1 stop bit). Set \
             the reader to {} 7E1 (`screen PORT {},cs7,parenb,-parodd,-cstopb`; Home Assistant's DSMR version 2.2); \
             where the UART cannot do 7E1 (a software serial port), mask bit 7 of every byte (byte & 0x7F)",
            e.reader.baud, e.reader.baud
        ),
    ))
}

/// What a reader at `reader` gets when a meter at `meter` sends `bytes` through a working
/// interface.
fn replay(bytes: &[u8], meter: LineSettings, reader: LineSettings) -> Option<Vec<u8>> {
    let setup =
        crate::wire::Setup { line: meter, plan: FaultPlan::CLEAN, board: None, receiver: ReceiverConfig::new(reader) };
    let mut through = crate::wire::Through::new(setup, 1, Vec::with_capacity(bytes.len())).ok()?;
    std::io::Write::write_all(&mut through, bytes).ok()?;
    Some(through.finish().ok()?.0)
}

/// No telegrams at the reader's setting: the wire model's candidates, weighed.
fn line_findings(e: &Evidence<'_>) -> Vec<Finding> {
    let o = e.observation;
    // Built only here: a capture that decodes never needs the model.
    let Ok(model) = super::predict::model(e.reader) else { return vec![not_p1(o, 0.5, None)] };
    let ms = matches(o, &model);
    let Some(best) = ms.first() else { return vec![not_p1(o, 1.0, None)] };
    let weights: Vec<f64> = ms.iter().map(|m| (-(m.score() - best.score()) / SHARPNESS).exp()).collect();
    let total: f64 = weights.iter().sum();
    // A short capture is far from any distribution by chance alone: only what lies beyond that
    // counts against the candidates.
    let beyond_chance = (best.distance - sampling_noise(o.bytes, &best.prediction.histogram)).max(0.0);
    let fit = 1.0 - beyond_chance;
    let mut v = Vec::new();
    for cause in Cause::ALL {
        let share: f64 =
            ms.iter().zip(&weights).filter(|(m, _)| m.verdict.0.contains(&cause)).map(|(_, w)| w / total).sum();
        if share < 0.01 {
            continue;
        }
        let Some(m) = ms.iter().find(|m| m.verdict.0.contains(&cause)) else { continue };
        v.push(line_finding(cause, share * fit, m, &model, e));
    }
    let doubt = ((beyond_chance - NOT_P1_FROM) / NOT_P1_SPAN).clamp(0.0, 0.95);
    // The clean candidate nearest means text that is no telegram.
    let clean = best.verdict.0.is_empty();
    if doubt > 0.0 || clean {
        v.push(not_p1(o, if clean { fit.max(doubt) } else { doubt }, Some(best)));
    }
    v.retain(|f| f.cause != Cause::Ok);
    if v.is_empty() {
        v.push(not_p1(o, 0.5, Some(best)));
    }
    sort(&mut v);
    v
}

/// The distance between `n` bytes drawn from `predicted` and `predicted` itself, expected by
/// chance: each share's sampling error is about `sqrt(p / n)` and a normal deviation's mean
/// magnitude is `sqrt(2 / pi)` of it (for a few hundred bytes this is 0.2-0.3).
fn sampling_noise(n: u64, predicted: &[u32; 256]) -> f64 {
    let total: f64 = predicted.iter().map(|&c| f64::from(c)).sum();
    if n == 0 || total == 0.0 {
        return 0.0;
    }
    let spread: f64 = predicted.iter().map(|&c| (f64::from(c) / total * (1.0 - f64::from(c) / total)).sqrt()).sum();
    0.5 * (2.0 / std::f64::consts::PI).sqrt() * spread / (n as f64).sqrt()
}

/// One cause from the candidate that stands for it best.
fn line_finding(cause: Cause, confidence: f64, m: &Match<'_>, model: &Model, e: &Evidence<'_>) -> Finding {
    let o = e.observation;
    let p = m.prediction;
    let wiring = &model.wirings[p.wiring];
    let delivery = match p.errors {
        ErrorChars::Nul => "hands characters with framing errors over as NUL (FTDI-style)",
        ErrorChars::AsRead => "hands characters with framing errors over as read (CH341-style)",
    };
    let model = format!(
        "the wire model's nearest candidate, a {} meter through {} into a reader at {}{} that {delivery}, \
         delivers bytes that match these to {}",
        p.meter,
        wiring.describe(),
        e.reader,
        if wiring.reader_inverts { " with an inverting input" } else { "" },
        percent(1.0 - m.distance)
    );
    let seen = format!(
        "{} bytes: {} NUL in {} runs, {} with bit 7 set; commonest {}",
        o.bytes,
        o.nul,
        o.nul_runs,
        o.high,
        show_commonest(o, 4)
    );
    match cause {
        Cause::Inverted => Finding::new(
            cause,
            confidence,
            format!(
                "{seen}: the signal reaches the UART upside down; the idle line reads as a break (NUL) and the \
                 UART starts its characters on the wrong edges, so the text turns into bytes with bit 7 set or \
                 framing errors; {model}"
            ),
            format!(
                "{}. A counterfeit FT232RL may report FT_Prog's \"Invert RXD\" as programmed and then ignore it: \
                 replug the adapter and read the setting back",
                advice::INVERTED
            ),
        ),
        Cause::WrongBaud => Finding::new(
            cause,
            confidence,
            format!(
                "{seen}: a meter sending at {} read at {} baud ({}); {model}",
                p.meter.baud,
                e.reader.baud,
                if p.meter.baud < e.reader.baud {
                    "every run of zero bits spans several of the reader's characters: NULs and breaks"
                } else {
                    "several of the meter's characters pass in one of the reader's: few bytes, all garbage"
                }
            ),
            format!(
                "Set the reader to {} baud, {} (DSMR 2.2 and 3.0 meters send 9600 7E1; DSMR 4 and 5, e-MUCS, \
                 Smarty and Swedish meters 115200 8N1)",
                p.meter.baud, p.meter.framing
            ),
        ),
        Cause::ParityAsData => Finding::new(
            cause,
            confidence,
            format!("{seen}: a 7E1 meter read as 8N1 puts its parity bit in bit 7; {model}"),
            format!("Set the reader to {} 7E1, or mask bit 7 of every byte (byte & 0x7F)", e.reader.baud),
        ),
        Cause::WrongFraming => Finding::new(
            cause,
            confidence,
            format!(
                "{seen}: an 8N1 meter read at {}: every character with an odd number of 1 bits fails the parity \
                 check and arrives as NUL; {model}",
                e.reader
            ),
            format!("Set the reader to {} 8N1", e.reader.baud),
        ),
        _ => Finding::new(cause, confidence, format!("{seen}; {model}"), advice::BIT_ERRORS),
    }
}

/// Serial data no candidate explains.
fn not_p1(o: &Observation, confidence: f64, nearest: Option<&Match<'_>>) -> Finding {
    let mut evidence = format!(
        "{} bytes, {} of them printable text, {} with bit 7 set, no `/` ... `!` telegram and no HDLC frame",
        o.bytes,
        percent(o.share(o.text)),
        percent(o.share(o.high))
    );
    if let Some(m) = nearest {
        let causes: Vec<&str> = m.verdict.0.iter().map(|c| c.code()).collect();
        evidence.push_str(&format!(
            "; the nearest wiring and setting the wire model knows ({}) matches only {} of the byte distribution",
            if causes.is_empty() { "a working cable at the right setting".to_string() } else { causes.join(" and ") },
            percent(1.0 - m.distance)
        ));
    }
    Finding::new(
        Cause::NotDsmr,
        confidence,
        evidence,
        "This is serial data, but not a P1 meter's: check that the port is the one the P1 cable is on, and that \
         the device on the other end is the meter (or a bridge passing the meter's bytes on unchanged)",
    )
}

fn hdlc_evidence(h: &Hdlc, o: &Observation) -> String {
    format!(
        "{} HDLC frames (flag 0x7E, frame format type 0xA, {} with a valid check sequence; {} carrying a DLMS/COSEM \
         data-notification) in {} bytes: the meter speaks DLMS/COSEM over HDLC, as Norwegian HAN meters and Aidon \
         and Kamstrup HAN meters set to it do, not DSMR's text telegrams",
        h.frames, h.valid, h.notifications, o.bytes
    )
}

const HDLC_FIX: &str = "Nothing is wrong with the cable: the bytes arrive intact. Use a reader that decodes DLMS/COSEM \
                        in HDLC frames (an AMS/HAN reader); DSMR readers such as dsmr_parser and ESPHome's dsmr \
                        component do not. Some meters can be switched to DSMR-style ASCII by the grid operator";

const NO_SIGNAL_FIX: &str = "Check, in this order: 1. Request: RJ12 pin 2 must be at +5 V while the reader reads (tie \
                             it to pin 1, or raise it from the reader; with a cable that wires it to the adapter's \
                             RTS or DTR, `--request rts|dtr`); 2. the pull-up: the data line (pin 5) is an open \
                             collector that only pulls low, so it needs 1-10 kΩ (4.7 kΩ is usual) to +5 V or the \
                             reader's supply ahead of the inverter; 3. the cable: a crossed phone cable (the usual \
                             kind for telephones) mirrors the pins, so data ground (pin 3) and data (pin 5) land on \
                             the wrong wires; use a straight one; 4. power: DSMR 2.2 and 3.0 meters have no +5 V on \
                             pin 1, so a board powered from it stays dark there";

/// The findings of a capture that only says "no signal", for sources that listened.
pub fn silence(listened: &str) -> Finding {
    no_signal(format!("nothing at all arrived in {listened}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::{hdlc, telegrams};

    const N81: LineSettings = LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 };

    fn rank_bytes(bytes: &[u8], reader: LineSettings) -> Vec<Finding> {
        let o = Observation::of(bytes);
        let decoded = telegrams::decode(bytes, None);
        let masked: Vec<u8> = bytes.iter().map(|b| b & 0x7F).collect();
        let masked = telegrams::decode(&masked, None);
        rank(&Evidence { bytes, reader, observation: &o, decoded: &decoded, masked: &masked, hdlc: hdlc::scan(bytes) })
            .findings
    }

    #[test]
    fn nothing_or_a_lone_break_is_no_signal() {
        assert_eq!(rank_bytes(&[], N81)[0].cause, Cause::NoSignal);
        assert_eq!(rank_bytes(&[0], N81)[0].cause, Cause::NoSignal);
        assert!(rank_bytes(&[0], N81)[0].evidence.contains("break"));
    }

    #[test]
    fn random_bytes_are_not_p1() {
        let mut x = 0x1234_5678u32;
        let bytes: Vec<u8> = (0..1 << 20)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        let f = rank_bytes(&bytes, N81);
        assert_eq!(f[0].cause, Cause::NotDsmr, "{f:#?}");
    }

    #[test]
    fn plain_text_is_not_p1() {
        let text = include_bytes!("../../../README.md");
        let f = rank_bytes(&text[..4000], N81);
        assert_eq!(f[0].cause, Cause::NotDsmr, "{f:#?}");
    }
}
