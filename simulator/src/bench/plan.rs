//! Test plans: a `[plan]` table and the `[[phase]]` list the bench runs in order, loaded from
//! TOML with errors that name the file, line, column and key. The built-in `standard` plan is
//! `profiles/plans/standard.toml`, compiled in.

use std::path::Path;

use p1sim_core::builtin;
use p1sim_core::profile::Profile;
use p1sim_core::profile::load::{ProfileError, from_toml};
use serde::Deserialize;
use toml::Spanned;

/// The built-in plan's text.
pub const STANDARD: &str = include_str!("../../../profiles/plans/standard.toml");

/// Most phases one plan may list, and most bytes a phase may send: a plan is read from a file
/// the user gives, so its work is bounded (10 MB is over 14 minutes of line time at 115200).
pub const MAX_PHASES: usize = 64;
pub const MAX_BYTES: u64 = 10_000_000;

/// A test plan.
#[derive(Debug, Clone)]
pub struct Plan {
    pub name: String,
    pub description: String,
    /// Telegram sources of the data-carrying phases, sent round robin.
    pub profiles: Vec<Profile>,
    /// Those of the legacy (DSMR 2.2/3, 9600 7E1) phase.
    pub legacy_profiles: Vec<Profile>,
    /// The board is meant for DSMR 2.2/3 meters as well: the legacy phase runs.
    pub legacy: bool,
    pub seed: u64,
    pub phases: Vec<Phase>,
}

/// One phase of a plan: its name in reports and what it does.
#[derive(Debug, Clone, PartialEq)]
pub struct Phase {
    pub name: String,
    pub kind: Kind,
}

/// The phase kinds and their parameters.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Kind {
    /// Does the board raise Request, hold it, and follow the reader's modem line?
    Request {
        #[serde(default = "default_settle_ms")]
        settle_ms: u64,
        #[serde(default = "default_hold_ms")]
        hold_ms: u64,
    },
    /// Telegrams back to back at the meters' own rate (115200 8N1).
    Data {
        bytes: u64,
        #[serde(default)]
        max_byte_errors: u64,
        /// The bound the bit error rate must stay under at 95 % confidence; recorded only when
        /// absent (a small byte budget cannot bound it tightly).
        max_ber: Option<f64>,
    },
    /// DSMR 2.2/3 telegrams at 9600 7E1, when the plan says the board serves such meters.
    Legacy {
        bytes: u64,
        #[serde(default)]
        max_byte_errors: u64,
    },
    /// The meter's bit rate swept around nominal: the window of clean reception.
    Timing { from_percent: f64, to_percent: f64, step_percent: f64, limit_percent: f64, marginal_percent: Option<f64> },
    /// Glitches of a given width on the line: `glitches` in each of `telegrams` telegrams (at
    /// most the 16 faults a rig takes per telegram).
    Integrity { telegrams: u32, glitches: u32, glitch_bits: f64 },
    /// Request dropped mid-telegram (or the meter stopping): output stops, a fresh telegram
    /// follows.
    Gating {
        #[serde(default = "default_cut")]
        cut_fraction: f64,
    },
    /// The data line's pull-up: present, its level and its resistance.
    PullUp { min_volts: f64, max_volts: f64, min_ohms: f64, max_ohms: f64 },
    /// From the meter's release to the line crossing the sense threshold.
    RiseTime { max_bits: f64, marginal_bits: Option<f64> },
    /// The longest cable the board passes on (virtual twin only).
    Cable { min_m: f64, marginal_m: Option<f64> },
    /// The level the board drives Request to, under a meter's load.
    RequestLevel { min_volts: f64, max_volts: f64 },
    /// The current the board draws from the port's +5 V, on average and at its peak.
    Supply {
        max_average_ma: f64,
        max_peak_ma: f64,
        #[serde(default = "default_window_ms")]
        window_ms: u16,
    },
    /// The high level of the board's TTL output against the reader's logic family.
    OutputLevel { reader_volts: f64 },
}

fn default_settle_ms() -> u64 {
    200
}
fn default_hold_ms() -> u64 {
    300
}
fn default_cut() -> f64 {
    0.33
}
fn default_window_ms() -> u16 {
    500
}

impl Kind {
    /// The `kind` spelling, the phase's default name.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Request { .. } => "request",
            Kind::Data { .. } => "data",
            Kind::Legacy { .. } => "legacy",
            Kind::Timing { .. } => "timing",
            Kind::Integrity { .. } => "integrity",
            Kind::Gating { .. } => "gating",
            Kind::PullUp { .. } => "pull-up",
            Kind::RiseTime { .. } => "rise-time",
            Kind::Cable { .. } => "cable",
            Kind::RequestLevel { .. } => "request-level",
            Kind::Supply { .. } => "supply",
            Kind::OutputLevel { .. } => "output-level",
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    plan: Header,
    #[serde(default)]
    phase: Vec<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    profiles: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    legacy_profiles: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    legacy: bool,
    #[serde(default = "default_seed")]
    seed: u64,
}

/// The meter whose telegrams a plan without `profiles` sends: a DSMR 5 three-phase meter.
const DEFAULT_PROFILE: &str = "iskra-am550";

fn default_seed() -> u64 {
    1
}

impl Plan {
    /// The built-in standard plan.
    pub fn standard() -> Plan {
        Plan::parse("profiles/plans/standard.toml", STANDARD).expect("the built-in plan is valid")
    }

    /// Reads a plan file.
    pub fn load(path: &Path) -> Result<Plan, ProfileError> {
        let text = ProfileError::read(path, "test plan")?;
        Plan::parse(&path.display().to_string(), &text)
    }

    /// Parses plan text; `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Plan, ProfileError> {
        let raw: File = from_toml(file, text)?;
        let err = |offset: usize, key: &str, message: String| ProfileError::at(file, text, offset, Some(key), message);
        let profiles_of = |list: &Spanned<Vec<String>>, key: &str| -> Result<Vec<Profile>, ProfileError> {
            if list.get_ref().is_empty() || list.get_ref().len() > 32 {
                return Err(err(list.span().start, key, "list 1 to 32 profiles (names or paths)".into()));
            }
            list.get_ref()
                .iter()
                .map(|n| builtin::lookup(n).map_err(|e| err(list.span().start, key, e.to_string())))
                .collect()
        };
        let profiles = match &raw.plan.profiles {
            Some(list) => profiles_of(list, "profiles")?,
            None => vec![builtin::lookup(DEFAULT_PROFILE).expect("a shipped profile")],
        };
        let legacy_profiles = match &raw.plan.legacy_profiles {
            Some(list) => profiles_of(list, "legacy_profiles")?,
            None => vec![builtin::lookup("kamstrup-162").expect("a shipped profile")],
        };
        if raw.phase.len() > MAX_PHASES {
            return Err(err(raw.phase[MAX_PHASES].span().start, "phase", format!("more than {MAX_PHASES} phases")));
        }
        let mut phases = Vec::with_capacity(raw.phase.len());
        for table in &raw.phase {
            let at = table.span().start;
            let mut t = table.get_ref().clone();
            let name = match t.remove("name") {
                None => None,
                Some(toml::Value::String(n)) if !n.is_empty() && n.len() <= 64 => Some(n),
                Some(_) => return Err(err(at, "name", "a phase name is a string of 1 to 64 characters".into())),
            };
            fill_from_standard(&mut t);
            let kind: Kind = toml::Value::Table(t.clone()).try_into().map_err(|e: toml::de::Error| {
                let message = e.message().trim().to_string();
                let key = message
                    .strip_prefix("unknown field `")
                    .and_then(|r| r.split('`').next())
                    .map(str::to_string)
                    .or_else(|| key_of_bad_value(&t, &message))
                    .unwrap_or_else(|| "kind".to_string());
                let offset = key_offset(text, table.span(), &key).unwrap_or(at);
                err(offset, &key, format!("phase {}: {message}", phases.len() + 1))
            })?;
            check(&kind).map_err(|(key, m)| {
                err(key_offset(text, table.span(), key).unwrap_or(at), key, format!("phase {}: {m}", phases.len() + 1))
            })?;
            let name = name.unwrap_or_else(|| kind.name().to_string());
            if phases.iter().any(|p: &Phase| p.name == name) {
                return Err(err(at, "name", format!("two phases are called {name:?}; give one a `name`")));
            }
            phases.push(Phase { name, kind });
        }
        if phases.is_empty() {
            return Err(err(0, "phase", "the plan has no [[phase]]".into()));
        }
        Ok(Plan {
            name: raw.plan.name,
            description: raw.plan.description,
            profiles,
            legacy_profiles,
            legacy: raw.plan.legacy,
            seed: raw.plan.seed,
            phases,
        })
    }
}

/// Fills the keys a phase leaves out with the standard plan's values for its kind, so a plan
/// names only what it changes. A value tied to another key is taken only along with the
/// standard's value of that key: a marginal band with its limit (a limit of the plan's own with
/// the standard's band could put the band on the wrong side), and the bit error rate bound with
/// the byte count that can prove it.
fn fill_from_standard(phase: &mut toml::Table) {
    const TIED: [(&str, &str); 4] = [
        ("marginal_percent", "limit_percent"),
        ("marginal_bits", "max_bits"),
        ("marginal_m", "min_m"),
        ("max_ber", "bytes"),
    ];
    static STANDARD_PHASES: std::sync::OnceLock<Vec<toml::Table>> = std::sync::OnceLock::new();
    let standard = STANDARD_PHASES.get_or_init(|| {
        let file: toml::Table = toml::from_str(STANDARD).expect("the built-in plan is TOML");
        match file.get("phase") {
            Some(toml::Value::Array(phases)) => phases.iter().filter_map(|p| p.as_table().cloned()).collect(),
            _ => Vec::new(),
        }
    });
    let Some(kind) = phase.get("kind").cloned() else { return };
    let Some(defaults) = standard.iter().find(|p| p.get("kind") == Some(&kind)) else { return };
    let own: Vec<String> = phase.keys().cloned().collect();
    for (key, value) in defaults {
        let tied_to_the_plans_own = TIED.iter().any(|(tied, to)| tied == key && own.iter().any(|k| k == to));
        if !phase.contains_key(key) && !tied_to_the_plans_own {
            phase.insert(key.clone(), value.clone());
        }
    }
}

/// The key whose value serde's "invalid value: integer `-1`, expected u64" names: the one whose
/// value is written that way.
fn key_of_bad_value(table: &toml::Table, message: &str) -> Option<String> {
    let shown = message.split('`').nth(1)?;
    table.iter().find(|(_, v)| v.to_string().trim_matches('"') == shown).map(|(k, _)| k.clone())
}

/// Where `key = ` starts in the `[[phase]]` table whose header is at `header` (a table's span
/// covers its header only; its keys run to the next header).
fn key_offset(text: &str, header: std::ops::Range<usize>, key: &str) -> Option<usize> {
    let mut pos = header.end;
    for line in text.get(header.end..)?.split_inclusive('\n') {
        let body = line.trim_start();
        if body.starts_with('[') {
            return None;
        }
        if body.strip_prefix(key).is_some_and(|r| r.trim_start().starts_with('=')) {
            return Some(pos + (line.len() - body.len()));
        }
        pos += line.len();
    }
    None
}

/// Ranges every parameter must be in; the key and what is wrong.
fn check(kind: &Kind) -> Result<(), (&'static str, String)> {
    let within = |key: &'static str, v: f64, lo: f64, hi: f64| {
        if v.is_finite() && (lo..=hi).contains(&v) {
            Ok(())
        } else {
            Err((key, format!("{key} = {v} is outside {lo} to {hi}")))
        }
    };
    match *kind {
        Kind::Request { settle_ms, hold_ms } => {
            within("settle_ms", settle_ms as f64, 1.0, 60_000.0)?;
            within("hold_ms", hold_ms as f64, 0.0, 600_000.0)
        }
        Kind::Data { bytes, max_byte_errors, max_ber } => {
            within("bytes", bytes as f64, 1.0, MAX_BYTES as f64)?;
            within("max_byte_errors", max_byte_errors as f64, 0.0, MAX_BYTES as f64)?;
            max_ber.map_or(Ok(()), |b| within("max_ber", b, 0.0, 1.0))
        }
        Kind::Legacy { bytes, max_byte_errors } => {
            within("bytes", bytes as f64, 1.0, MAX_BYTES as f64)?;
            within("max_byte_errors", max_byte_errors as f64, 0.0, MAX_BYTES as f64)
        }
        Kind::Timing { from_percent, to_percent, step_percent, limit_percent, marginal_percent } => {
            within("from_percent", from_percent, -20.0, 0.0)?;
            within("to_percent", to_percent, 0.0, 20.0)?;
            within("step_percent", step_percent, 0.05, 10.0)?;
            within("limit_percent", limit_percent, 0.0, 20.0)?;
            if let Some(m) = marginal_percent {
                within("marginal_percent", m, limit_percent, 20.0)?;
            }
            if (to_percent - from_percent) / step_percent > 400.0 {
                return Err(("step_percent", "the sweep takes more than 400 steps; widen step_percent".into()));
            }
            Ok(())
        }
        Kind::Integrity { telegrams, glitches, glitch_bits } => {
            within("telegrams", f64::from(telegrams), 1.0, 1000.0)?;
            within("glitches", f64::from(glitches), 1.0, p1sim_core::rig::MAX_FAULTS as f64)?;
            within("glitch_bits", glitch_bits, 1.0 / 16.0, 1.0)
        }
        Kind::Gating { cut_fraction } => within("cut_fraction", cut_fraction, 0.05, 0.95),
        Kind::PullUp { min_volts, max_volts, min_ohms, max_ohms } => {
            within("min_volts", min_volts, 0.0, 30.0)?;
            within("max_volts", max_volts, min_volts, 30.0)?;
            within("min_ohms", min_ohms, 0.0, 1e8)?;
            within("max_ohms", max_ohms, min_ohms, 1e8)
        }
        Kind::RiseTime { max_bits, marginal_bits } => {
            within("max_bits", max_bits, 0.0, 10.0)?;
            marginal_bits.map_or(Ok(()), |m| within("marginal_bits", m, 0.0, max_bits))
        }
        Kind::Cable { min_m, marginal_m } => {
            within("min_m", min_m, 0.0, 1000.0)?;
            marginal_m.map_or(Ok(()), |m| within("marginal_m", m, min_m, 1000.0))
        }
        Kind::RequestLevel { min_volts, max_volts } => {
            within("min_volts", min_volts, 0.0, 30.0)?;
            within("max_volts", max_volts, min_volts, 30.0)
        }
        Kind::Supply { max_average_ma, max_peak_ma, window_ms } => {
            within("max_average_ma", max_average_ma, 0.0, 10_000.0)?;
            within("max_peak_ma", max_peak_ma, max_average_ma, 10_000.0)?;
            within("window_ms", f64::from(window_ms), 1.0, f64::from(p1sim_core::rig::MeasureRequest::MAX_WINDOW_MS))
        }
        Kind::OutputLevel { reader_volts } => within("reader_volts", reader_volts, 1.0, 12.0),
    }
}

impl Plan {
    /// How long the rig samples the supply current: the plan's supply phase's window, or half a
    /// second.
    pub fn supply_window_ms(&self) -> u16 {
        self.phases
            .iter()
            .find_map(|p| match p.kind {
                Kind::Supply { window_ms, .. } => Some(window_ms),
                _ => None,
            })
            .unwrap_or_else(default_window_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_plan_has_every_phase() {
        let p = Plan::standard();
        let names: Vec<&str> = p.phases.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "request",
                "data",
                "legacy",
                "timing",
                "integrity",
                "gating",
                "pull-up",
                "rise-time",
                "request-level",
                "supply",
                "output-level",
                "cable"
            ]
        );
        assert_eq!(p.supply_window_ms(), 500);
        assert_eq!(p.profiles.len(), 4);
        assert!(!p.legacy);
        assert_eq!(
            p.legacy_profiles.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["kamstrup-162", "iskra-mt382"]
        );
    }

    const SMALL: &str =
        "[plan]\nname = \"quick\"\nprofiles = [\"iskra-am550\"]\n\n[[phase]]\nkind = \"data\"\nbytes = 5000\n";

    #[test]
    fn a_small_plan_takes_defaults() {
        let p = Plan::parse("quick.toml", SMALL).unwrap();
        assert_eq!(
            p.phases,
            [Phase { name: "data".into(), kind: Kind::Data { bytes: 5000, max_byte_errors: 0, max_ber: None } }]
        );
        assert_eq!((p.seed, p.legacy_profiles[0].name.as_str()), (1, "kamstrup-162"));
    }

    #[test]
    fn errors_name_the_file_line_and_key() {
        let e = |text: &str| Plan::parse("plan.toml", text).unwrap_err().to_string();
        let got = e(&SMALL.replace("bytes = 5000", "bytes = 0"));
        assert_eq!(got, "plan.toml:7:1: key `bytes`: phase 1: bytes = 0 is outside 1 to 10000000");
        let got = e(&SMALL.replace("bytes = 5000", "bytes = 5000\nbauds = 3"));
        assert!(got.starts_with("plan.toml:8:1: key `bauds`: phase 1: unknown field `bauds`"), "{got}");
        let got = e(&SMALL.replace("bytes = 5000", "bytes = -1"));
        assert!(got.starts_with("plan.toml:7:1: key `bytes`: phase 1: invalid value"), "{got}");
        let got = e(&SMALL.replace("kind = \"data\"", "kind = \"speed\""));
        assert!(got.contains("key `kind`") && got.contains("unknown variant `speed`"), "{got}");
        let got = e(&SMALL.replace("iskra-am550", "iskra-am55"));
        assert!(got.starts_with("plan.toml:3:12: key `profiles`: no profile named \"iskra-am55\""), "{got}");
        let got = e(&format!("{SMALL}\n[[phase]]\nkind = \"data\"\nbytes = 1\n"));
        assert!(got.contains("two phases are called \"data\""), "{got}");
        let got = e("[plan]\nname = \"x\"\nprofiles = [\"iskra-am550\"]\n");
        assert!(got.contains("no [[phase]]"), "{got}");
        let got = e(&SMALL.replace("[plan]", "[plan]\nspeed = 1"));
        assert!(got.starts_with("plan.toml:2:1: key `speed`"), "{got}");
    }

    #[test]
    fn keys_left_out_take_the_standard_plans_values() {
        let p = Plan::parse(
            "mine.toml",
            "[plan]\nname = \"mine\"\n[[phase]]\nkind = \"supply\"\nmax_average_ma = 100\nmax_peak_ma = 100\n\
             [[phase]]\nkind = \"timing\"\nlimit_percent = 4.0\n[[phase]]\nkind = \"pull-up\"\n[[phase]]\nkind = \"data\"\n",
        )
        .unwrap();
        let kinds: Vec<&Kind> = p.phases.iter().map(|p| &p.kind).collect();
        assert_eq!(*kinds[0], Kind::Supply { max_average_ma: 100.0, max_peak_ma: 100.0, window_ms: 500 });
        // The plan's own limit with no band of its own: the standard's band (3 %) would sit inside it.
        assert_eq!(
            *kinds[1],
            Kind::Timing {
                from_percent: -6.0,
                to_percent: 6.0,
                step_percent: 0.5,
                limit_percent: 4.0,
                marginal_percent: None
            }
        );
        assert_eq!(*kinds[2], Kind::PullUp { min_volts: 0.6, max_volts: 5.5, min_ohms: 900.0, max_ohms: 11000.0 });
        assert_eq!(*kinds[3], Kind::Data { bytes: 210_000, max_byte_errors: 0, max_ber: Some(1e-5) });
        assert_eq!(p.profiles[0].name, "iskra-am550", "a plan without profiles sends a DSMR 5 meter's telegrams");
    }

    /// Values that broke parsers of this kind: non-finite, negative, integer edges, wrong types.
    const EXTREMES: &[&str] =
        &["nan", "inf", "-1", "0", "1e308", "18446744073709551615", "4294967296", "\"\"", "[]", "{}", "true", "0.0001"];

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config { cases: 256, failure_persistence: None, ..Default::default() })]

        /// A plan with any value swapped for an extreme one, or any line dropped or repeated, is
        /// taken with every parameter in its range or refused at a line of the file; never a panic.
        #[test]
        fn any_edit_of_the_standard_plan_is_taken_in_range_or_refused_where_it_is(
            edits in proptest::collection::vec((0usize..200, 0usize..EXTREMES.len(), 0u8..3), 1..5)
        ) {
            let mut lines: Vec<String> = STANDARD.lines().map(str::to_string).collect();
            for (line, value, how) in edits {
                let at = line % lines.len();
                match how {
                    0 => if let Some((key, _)) = lines[at].split_once('=') {
                        lines[at] = format!("{key}= {}", EXTREMES[value]);
                    },
                    1 => { lines.remove(at); }
                    _ => { let l = lines[at].clone(); lines.insert(at, l); }
                }
                if lines.is_empty() { break; }
            }
            let text = lines.join("\n");
            match Plan::parse("fuzz.toml", &text) {
                Ok(plan) => {
                    proptest::prop_assert!(!plan.phases.is_empty() && plan.phases.len() <= MAX_PHASES);
                    for p in &plan.phases {
                        proptest::prop_assert!(check(&p.kind).is_ok(), "{:?}", p.kind);
                    }
                }
                Err(e) => {
                    let line = e.line;
                    proptest::prop_assert!(line >= 1 && line <= text.lines().count().max(1) + 1, "{e}");
                }
            }
        }
    }
}
