//! The verdict for people (the cause, what was seen, what to do) and as JSON (`--json`,
//! `schema_version` 1).

use std::fmt::Write;

use serde::Serialize;

use super::Diagnosis;
use super::cause::Finding;
use super::meter::MeterInfo;

/// The JSON's version: fields are only ever added within a version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Serialize)]
struct Json<'a> {
    schema_version: u32,
    #[serde(rename = "as")]
    read_as: String,
    bytes: u64,
    telegrams: u64,
    crc_ok: u64,
    causes: &'a [Finding],
    meter: &'a MeterInfo,
    notes: &'a [String],
}

/// `115200-8N1`: a setting as `--as` takes it.
pub fn setting(line: p1sim_core::spec::LineSettings) -> String {
    format!("{}-{}", line.baud, line.framing)
}

/// The verdict as one JSON object.
pub fn json(d: &Diagnosis) -> String {
    let j = Json {
        schema_version: SCHEMA_VERSION,
        read_as: setting(d.read_as),
        bytes: d.bytes,
        telegrams: d.telegrams,
        crc_ok: d.crc_ok,
        causes: &d.causes,
        meter: &d.meter,
        notes: &d.notes,
    };
    serde_json::to_string_pretty(&j).expect("plain data serializes")
}

/// The verdict for a terminal, `source` naming where the bytes came from.
pub fn text(d: &Diagnosis, source: &str) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{source} read at {}: {} bytes, {} telegram(s), {} with a valid CRC",
        setting(d.read_as),
        d.bytes,
        d.telegrams,
        d.crc_ok
    );
    for n in &d.notes {
        let _ = writeln!(s, "note: {n}");
    }
    for (i, f) in d.causes.iter().enumerate() {
        let _ = writeln!(s, "\n{}. {} (confidence {:.2})", i + 1, f.cause, f.confidence);
        let _ = writeln!(s, "   seen: {}", f.evidence);
        let _ = writeln!(s, "   fix:  {}", f.fix);
    }
    let m = &d.meter;
    if m.header.is_some() || m.profile.is_some() {
        let _ = writeln!(s, "\nmeter:");
        let mut field = |k: &str, v: Option<String>| {
            if let Some(v) = v {
                let _ = writeln!(s, "   {k:<15}{v}");
            }
        };
        field("header", m.header.as_ref().map(|h| format!("/{h}")));
        field("profile", m.profile.as_ref().map(|p| format!("{p} (by {})", m.profile_match.unwrap_or("guess"))));
        field("spec", m.spec.clone());
        field("line", m.line.clone());
        field("interval", m.interval_s.map(|i| format!("{i} s (from the {})", m.interval_from.unwrap_or("profile"))));
        field("CRC pass rate", m.crc_pass_rate.map(|r| format!("{:.1} %", r * 100.0)));
        field("Home Assistant", m.home_assistant.clone());
    }
    s
}
