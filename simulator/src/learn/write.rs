//! The learned profile as a TOML file a person can read and edit: the same layout as the shipped
//! profiles, an opening comment on where it came from and which objects are kept as fixed text,
//! and a `[start]` table with the meter's state as captured.

use std::fmt::Write;

use p1sim_core::format::LocalTime;
use p1sim_core::profile::{EmptyLog, Kind, LogOrder, Medium, Num, Profile, StartState};
use p1sim_core::spec::Country;

use super::infer::Inferred;
use crate::capture::Capture;

/// A TOML string: basic, with escapes (so a header's backslash survives).
fn s(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

fn tst(t: &LocalTime) -> String {
    let mut v = Vec::new();
    t.write_tst(&mut v);
    String::from_utf8_lossy(&v).into_owned()
}

/// Thousandths as a decimal: 1234567 is `1234.567`.
fn kilo(v: u64) -> String {
    format!("{}.{:03}", v / 1000, v % 1000)
}

pub fn toml(inf: &Inferred, capture: &Capture) -> String {
    let p = &inf.profile;
    let mut o = String::new();
    let _ = writeln!(o, "# /{}: learned by `p1sim profiles learn` from {}.", p.header, capture.origin);
    let _ = writeln!(o, "#");
    match &inf.captured_at {
        Some(t) => {
            let _ =
                writeln!(o, "# The first telegram (timestamp {t}) is reproduced byte for byte by this profile with");
        }
        None => {
            let _ = writeln!(o, "# The first telegram is reproduced byte for byte by this profile with");
        }
    }
    let _ = writeln!(o, "# the values in [start]; a run starts from them and the simulated household takes over.");
    for n in &inf.notes {
        let _ = writeln!(o, "# - {n}");
    }
    if !inf.fixed.is_empty() {
        let _ = writeln!(o, "#");
        let _ = writeln!(o, "# Kept as the captured text (the same in every telegram):");
        for f in &inf.fixed {
            let _ = writeln!(o, "#   {} {}  ({})", f.obis, f.text.replace('\n', " "), f.why);
        }
    }
    let _ = writeln!(o, "#");
    let _ = writeln!(o, "# Edit freely: `format` is integer.decimal digits as written (\"6.3\" is 001234.567), `unit`");
    let _ = writeln!(o, "# the meter's own spelling; `p1sim emit --profile THIS.toml` shows the result.");
    let _ = writeln!(o);
    meter(&mut o, p);
    log(&mut o, p);
    if let Some(e) = &p.encryption {
        let _ = writeln!(o, "[encryption]");
        let title = &e.system_title;
        let text = if title.iter().all(|b| b.is_ascii_graphic()) {
            String::from_utf8_lossy(title).into_owned()
        } else {
            title.iter().map(|b| format!("{b:02X}")).collect()
        };
        let _ = writeln!(o, "system_title = {}", s(&text));
        if e.auth_key != p1sim_core::smarty::AUTH_KEY {
            let hex: String = e.auth_key.iter().map(|b| format!("{b:02X}")).collect();
            let _ = writeln!(o, "auth_key = {}", s(&hex));
        }
        let _ = writeln!(o);
    }
    household(&mut o, p);
    if let Some(st) = &p.start {
        start(&mut o, st, p);
    }
    for d in &p.mbus {
        let _ = writeln!(o, "[[mbus]]");
        let _ = writeln!(o, "channel = {}", d.channel);
        let medium = match d.medium {
            Medium::Gas => "gas",
            Medium::Water => "water",
            Medium::Heat => "heat",
            Medium::Ghost => "ghost",
        };
        let _ = writeln!(o, "medium = {}", s(medium));
        let _ = writeln!(o, "device_type = {}", d.device_type);
        if d.raw_id {
            let _ = writeln!(o, "raw_id = {}", s(&d.id));
        } else {
            let _ = writeln!(o, "id = {}", s(&d.id));
        }
        if let Some((t, v)) = &d.placeholder {
            let _ = writeln!(o, "# No device answers on this channel: the meter writes a placeholder reading.");
            let _ = writeln!(o, "placeholder = [{}, {}]", s(t), s(v));
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "[telegram]");
    let _ = writeln!(o, "objects = [");
    for obj in &p.objects {
        let f = p.obis_f.map(|f| format!("*{f}")).unwrap_or_default();
        let _ = writeln!(o, "  {{ obis = \"{}{f}\"{} }},", obj.obis, fields(&obj.kind));
    }
    let _ = writeln!(o, "]");
    o
}

fn meter(o: &mut String, p: &Profile) {
    let _ = writeln!(o, "[meter]");
    let _ = writeln!(o, "description = {}", s(&p.description));
    let _ = writeln!(o, "country = {}", s(p.country.code()));
    let _ = writeln!(o, "spec = {}", s(p.spec.name()));
    let _ = writeln!(o, "header = {}", s(&p.header));
    let _ = writeln!(o, "phases = {}", p.phases);
    let _ = writeln!(o, "interval_s = {}", p.interval_s);
    let _ = writeln!(o, "# A capture does not show the line: {}, the spec's; change it if your meter differs.", p.line);
    let _ = writeln!(o, "baud = {}", p.line.baud);
    let _ = writeln!(o, "framing = {}", s(&p.line.framing.to_string()));
    let default_zone = p.country.zone();
    if p.clock.zone != default_zone {
        let _ = writeln!(o, "timezone = {}", s(p.clock.zone.iana()));
    }
    if p.clock.summer_time != (p.country != Country::SE) {
        let _ = writeln!(o, "summer_time = {}", p.clock.summer_time);
    }
    if !p.blank_line {
        let _ = writeln!(o, "blank_line = false");
    }
    if p.crc != p.spec.has_crc() {
        let _ = writeln!(o, "crc = {}", p.crc);
    }
    if !p.crc_padded {
        let _ = writeln!(o, "# The CRC without leading zeros, as this meter writes it.");
        let _ = writeln!(o, "crc_padded = false");
    }
    if !p.end_marker {
        let _ = writeln!(o, "# No `!` line: the next telegram (or the pause before it) ends each one.");
        let _ = writeln!(o, "end_marker = false");
    }
    if !p.derive_identity {
        let _ = writeln!(o, "# The ids as captured (equipment, M-Bus, system title), not drawn from the seed.");
        let _ = writeln!(o, "identity = \"fixed\"");
    }
    let sources: Vec<String> = p.sources.iter().map(|x| s(x)).collect();
    let _ = writeln!(o, "sources = [{}]", sources.join(", "));
    let _ = writeln!(o);
}

fn log(o: &mut String, p: &Profile) {
    if !p.objects.iter().any(|x| matches!(x.kind, Kind::FailureLog { .. })) {
        return;
    }
    let f = &p.failure_log;
    let _ = writeln!(o, "[failure_log]");
    let order = match f.order {
        LogOrder::NewestFirst => "newest-first",
        LogOrder::OldestFirst => "oldest-first",
    };
    let _ = writeln!(o, "order = {}", s(order));
    if let Some(d) = &f.dummy {
        let _ = writeln!(o, "dummy = {}", s(d));
    }
    if f.max_entries != 10 {
        let _ = writeln!(o, "max_entries = {}", f.max_entries);
    }
    if f.empty == EmptyLog::EmptyBrackets {
        let _ = writeln!(o, "empty = \"empty-brackets\"");
    }
    let _ = writeln!(o);
}

fn household(o: &mut String, p: &Profile) {
    let h = &p.household;
    let _ = writeln!(
        o,
        "# The household p1sim simulates behind the meter from the start on: a typical home in {};",
        p.country
    );
    let _ = writeln!(o, "# make it yours (solar_kwp, ev, annual_kwh, ...).");
    let _ = writeln!(o, "[household]");
    let _ = writeln!(o, "annual_kwh = {:.1}", h.annual_kwh);
    let _ = writeln!(o, "solar_kwp = {:.1}", h.solar_kwp);
    let _ = writeln!(o, "ev = {}", h.ev);
    let _ = writeln!(o, "gas_m3_per_year = {:.1}", h.gas_m3_per_year);
    let _ = writeln!(o, "water_m3_per_year = {:.1}", h.water_m3_per_year);
    let _ = writeln!(o, "latitude = {:.1}", h.latitude);
    if let Some(wh) = p.start.as_ref().and_then(|s| s.import_wh) {
        let _ = writeln!(o, "# The import registers' total as captured; [start] import_kwh splits it per tariff.");
        let _ = writeln!(o, "start_import_kwh = {}", kilo(wh[0] + wh[1]));
    }
    let _ = writeln!(o);
}

fn start(o: &mut String, st: &StartState, p: &Profile) {
    let _ = writeln!(o, "# The meter as captured: registers (kWh, kvarh), counters, the failure log, M-Bus readings");
    let _ = writeln!(o, "# and messages. A run begins with these and counts on from them.");
    let _ = writeln!(o, "[start]");
    // As many registers as the meter has tariffs (at least two), or one total.
    let tariffs = usize::from(p.tariff_count().max(2)).min(4);
    let pair = |v: [u64; 4]| {
        if p.has_tariffs() {
            format!("[{}]", v[..tariffs].iter().map(|x| kilo(*x)).collect::<Vec<_>>().join(", "))
        } else {
            format!("[{}]", kilo(v.iter().sum()))
        }
    };
    let four = |v: [u64; 4]| format!("[{}]", v.iter().map(|x| kilo(*x)).collect::<Vec<_>>().join(", "));
    if let Some(v) = st.import_wh {
        let _ = writeln!(o, "import_kwh = {}", pair(v));
    }
    if let Some(v) = st.export_wh {
        let _ = writeln!(o, "export_kwh = {}", pair(v));
    }
    if let Some(v) = st.q_import_varh {
        let _ = writeln!(o, "reactive_import_kvarh = {}", kilo(v));
    }
    if let Some(v) = st.q_export_varh {
        let _ = writeln!(o, "reactive_export_kvarh = {}", kilo(v));
    }
    if let Some(v) = st.q_import_tariff_varh {
        let _ = writeln!(o, "reactive_import_tariff_kvarh = {}", pair(v));
    }
    if let Some(v) = st.q_export_tariff_varh {
        let _ = writeln!(o, "reactive_export_tariff_kvarh = {}", pair(v));
    }
    if let Some(v) = st.q_quadrant_varh {
        let _ = writeln!(o, "quadrant_kvarh = {}", four(v));
    }
    if let Some(t) = st.tariff {
        let _ = writeln!(o, "tariff = {t}");
    }
    if let Some(n) = st.power_failures {
        let _ = writeln!(o, "power_failures = {n}");
    }
    if let Some(n) = st.long_power_failures {
        let _ = writeln!(o, "long_power_failures = {n}");
    }
    if let Some(log) = &st.failure_log {
        let entries: Vec<String> =
            log.iter().map(|e| format!("{{ end = \"{}\", seconds = {} }}", tst(&e.end), e.duration_s)).collect();
        let _ = writeln!(o, "# Most recent first.");
        let _ = writeln!(o, "failure_log = [{}]", entries.join(", "));
    }
    let phases = |v: [u32; 3]| {
        let n = usize::from(p.phases.clamp(1, 3));
        v[..n].iter().map(u32::to_string).collect::<Vec<_>>().join(", ")
    };
    if let Some(v) = st.sags {
        let _ = writeln!(o, "sags = [{}]", phases(v));
    }
    if let Some(v) = st.swells {
        let _ = writeln!(o, "swells = [{}]", phases(v));
    }
    if let Some(t) = &st.text_message {
        let _ = writeln!(o, "text_message = {}", s(t));
    }
    if let Some(t) = &st.text_code {
        let _ = writeln!(o, "text_code = {}", s(t));
    }
    if !st.mbus.is_empty() {
        let entries: Vec<String> = st
            .mbus
            .iter()
            .map(|m| {
                format!(
                    "{{ channel = {}, reading = {}, captured = \"{}\" }}",
                    m.channel,
                    kilo(m.milli),
                    tst(&m.captured)
                )
            })
            .collect();
        let _ = writeln!(o, "mbus = [{}]", entries.join(", "));
    }
    if let Some((t, w)) = st.month_max {
        let _ = writeln!(o, "peak = {{ at = \"{}\", kw = {} }}", tst(&t), kilo(u64::from(w)));
    }
    if let Some(h) = &st.demand_history {
        let entries: Vec<String> = h
            .iter()
            .map(|m| {
                let at = m.peak_time.map_or_else(|| "632525252525W".to_string(), |t| tst(&t));
                format!("{{ month = \"{}\", at = \"{at}\", kw = {} }}", tst(&m.period_end), kilo(u64::from(m.peak_w)))
            })
            .collect();
        let _ = writeln!(o, "peak_history = [{}]", entries.join(", "));
    }
    if let Some(fc) = st.frame_counter {
        let _ = writeln!(o, "frame_counter = {fc}");
    }
    let _ = writeln!(o);
}

fn num(n: &Num) -> String {
    match &n.unit {
        Some(u) => format!(", format = \"{}\", unit = {}", n.format, s(u)),
        None => format!(", format = \"{}\"", n.format),
    }
}

/// The keys after `obis` in an object's inline table.
fn fields(kind: &Kind) -> String {
    match kind {
        Kind::Text(t) => format!(", text = {}", s(t)),
        Kind::Hex(t) => format!(", hex = {}", s(t)),
        Kind::Raw(t) => format!(", raw = {}", s(t)),
        Kind::Clock | Kind::TextMessage | Kind::TextCode | Kind::MBusId { .. } => String::new(),
        Kind::Energy { num: n, .. }
        | Kind::Power { num: n, .. }
        | Kind::Voltage { num: n, .. }
        | Kind::Current { num: n, .. }
        | Kind::FailureLog { num: n }
        | Kind::Demand { num: n }
        | Kind::DemandMax { num: n, value_first: false }
        | Kind::DemandHistory { num: n }
        | Kind::Frequency { num: n }
        | Kind::MBusReading { num: n, .. } => num(n),
        Kind::Tariff { format }
        | Kind::Failures { format, .. }
        | Kind::Sags { format, .. }
        | Kind::Swells { format, .. }
        | Kind::MBusType { format, .. } => format!(", format = \"{format}\""),
        Kind::DemandMax { num: n, value_first: true } => format!("{}, form = \"value-first\"", num(n)),
        Kind::Billing { num: n } => format!("{}, form = \"billing\"", num(n)),
        Kind::PowerFactor { format, .. } => format!(", format = \"{format}\""),
        Kind::MBusLegacy { num: n, status, period, capture, .. } => {
            format!("{}, status = {}, period = {}, capture = \"{capture}\"", num(n), s(status), s(period))
        }
    }
}
