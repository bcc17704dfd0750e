//! Board files: a `[board]` TOML table describing an interface board, with errors that name the
//! file, line, column and key; and the `NAME|PATH[,OPTIONS]` specs of `--through` and `--board`.
//!
//! ```toml
//! [board]
//! name = "my-board"
//! summary = "BC847 inverter, 22k pull-up"
//! pull_up_ohms = 22000        # or "none"
//! pull_up_volts = 5.0
//! cable_m = 10
//! inversions = 1              # between the data line and the UART: 0, 1 or 2
//! request = "tied"            # "tied" to +5 V, "driven" by the reader, or "open"
//! request_volts = 5.0         # what it drives Request to
//! supply_ma = 80              # drawn from the port's +5 V, on average...
//! supply_peak_ma = 310        # ...and at its peak
//! output_high_volts = 3.3     # its TTL output's high level, or "none" (the reader is built in)
//! ```
//!
//! Keys left out take the values of a 5 V TTL-compatible Schmitt input on 2 m of cable: see
//! [`DEFAULTS`] and `docs/boards.md`.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use super::{Board, PullUp, Request, parse_ohms};
use crate::builtin;
use crate::profile::load::{ProfileError, from_toml};

/// What a board file's optional keys default to: a 5 V TTL-compatible Schmitt-trigger input
/// (1.6 V up, 1.2 V down), 15 pF of input capacitance, 2 m of cable, pull-up to +5 V, 1 mA from
/// the port's supply (what a passive board's pull-up draws). Request defaults to +5 V unless it
/// is left open; a board has no TTL output of its own unless it says so.
pub const DEFAULTS: Defaults = Defaults {
    pull_up_volts: 5.0,
    input_pf: 15.0,
    cable_m: 2.0,
    rising_volts: 1.6,
    falling_volts: 1.2,
    supply_ma: 1.0,
};

/// The values of [`DEFAULTS`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Defaults {
    pub pull_up_volts: f64,
    pub input_pf: f64,
    pub cable_m: f64,
    pub rising_volts: f64,
    pub falling_volts: f64,
    pub supply_ma: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    board: Section,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    name: Spanned<String>,
    #[serde(default)]
    summary: String,
    pull_up_ohms: Spanned<toml::Value>,
    pull_up_volts: Option<Spanned<f64>>,
    load_ohms: Option<Spanned<f64>>,
    clamp_volts: Option<Spanned<f64>>,
    input_pf: Option<Spanned<f64>>,
    cable_m: Option<Spanned<f64>>,
    rising_volts: Option<Spanned<f64>>,
    falling_volts: Option<Spanned<f64>>,
    inversions: Spanned<i64>,
    request: Spanned<String>,
    request_volts: Option<Spanned<f64>>,
    supply_ma: Option<Spanned<f64>>,
    supply_peak_ma: Option<Spanned<f64>>,
    output_high_volts: Option<Spanned<toml::Value>>,
    #[serde(default)]
    sources: Vec<String>,
}

/// Reads a board file.
pub fn load(path: &Path) -> Result<Board, ProfileError> {
    let text = ProfileError::read(path, "board file")?;
    parse(&path.display().to_string(), &text)
}

/// Parses board file text; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Board, ProfileError> {
    let raw: File = from_toml(file, text)?;
    let s = raw.board;
    let err = |span: std::ops::Range<usize>, key: &str, message: String| {
        ProfileError::at(file, text, span.start, Some(key), message)
    };
    let name = s.name.get_ref();
    if name.is_empty() || name.len() > 64 || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err(err(
            s.name.span(),
            "name",
            format!("{name:?}: give 1 to 64 letters, digits, '-' or '_', as `--board NAME` takes it"),
        ));
    }
    let ranged =
        |v: &Option<Spanned<f64>>, key: &str, range: std::ops::RangeInclusive<f64>, unit: &str, default: f64| match v {
            None => Ok(default),
            Some(v) if range.contains(v.get_ref()) => Ok(*v.get_ref()),
            Some(v) => Err(err(
                v.span(),
                key,
                format!("{} is outside {} to {} {unit}", v.get_ref(), range.start(), range.end()),
            )),
        };
    let pull_up_volts = ranged(&s.pull_up_volts, "pull_up_volts", 0.5..=30.0, "V", DEFAULTS.pull_up_volts)?;
    let pull_up = match s.pull_up_ohms.get_ref() {
        toml::Value::String(none) if none == "none" => None,
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        toml::Value::String(text) => Some(parse_ohms(text).ok_or_else(|| {
            err(s.pull_up_ohms.span(), "pull_up_ohms", format!("{text:?}: give ohms (4700, \"4.7k\") or \"none\""))
        })?),
        other => {
            return Err(err(
                s.pull_up_ohms.span(),
                "pull_up_ohms",
                format!("expected ohms (4700, \"4.7k\") or \"none\", found {}", other.type_str()),
            ));
        }
    };
    let pull_up = match pull_up {
        None => None,
        Some(ohms) if (1.0..=1e8).contains(&ohms) => Some(PullUp { volts: pull_up_volts, ohms }),
        Some(ohms) => {
            return Err(err(s.pull_up_ohms.span(), "pull_up_ohms", format!("{ohms} is outside 1 Ω to 100 MΩ")));
        }
    };
    if pull_up.is_none() && s.pull_up_volts.is_some() {
        let span = s.pull_up_volts.as_ref().map_or(0..0, |v| v.span());
        return Err(err(span, "pull_up_volts", "a board without a pull-up has no pull-up voltage".into()));
    }
    let optional = |v: &Option<Spanned<f64>>, key: &str, range: std::ops::RangeInclusive<f64>, unit: &str| {
        v.as_ref().map(|x| ranged(&Some(x.clone()), key, range, unit, 0.0)).transpose()
    };
    let load_ohms = optional(&s.load_ohms, "load_ohms", 1.0..=1e9, "Ω")?;
    let clamp_volts = optional(&s.clamp_volts, "clamp_volts", 0.1..=30.0, "V")?;
    let input_pf = ranged(&s.input_pf, "input_pf", 0.0..=1e6, "pF", DEFAULTS.input_pf)?;
    let cable_m = ranged(&s.cable_m, "cable_m", 0.0..=10_000.0, "m", DEFAULTS.cable_m)?;
    let rising_volts = ranged(&s.rising_volts, "rising_volts", 0.05..=30.0, "V", DEFAULTS.rising_volts)?;
    let falling_volts = ranged(&s.falling_volts, "falling_volts", 0.0..=30.0, "V", DEFAULTS.falling_volts)?;
    if falling_volts > rising_volts {
        let span = s.falling_volts.as_ref().or(s.rising_volts.as_ref()).map_or(0..0, |v| v.span());
        return Err(err(
            span,
            "falling_volts",
            format!(
                "{falling_volts} V is above rising_volts ({rising_volts} V): a stage switches low below where it switches high"
            ),
        ));
    }
    let inversions = match *s.inversions.get_ref() {
        i @ 0..=2 => i as u8,
        other => {
            return Err(err(
                s.inversions.span(),
                "inversions",
                format!("{other}: give 0 (none), 1 (one inverter, as a working board has) or 2"),
            ));
        }
    };
    let request = match s.request.get_ref().as_str() {
        "tied" => Request::Tied,
        "driven" => Request::Driven,
        "open" => Request::Open,
        other => {
            return Err(err(
                s.request.span(),
                "request",
                format!("{other:?}: give \"tied\" (to +5 V), \"driven\" (by the reader) or \"open\""),
            ));
        }
    };
    let tied_level = if request == Request::Open { 0.0 } else { DEFAULTS.pull_up_volts };
    let request_volts = ranged(&s.request_volts, "request_volts", 0.0..=30.0, "V", tied_level)?;
    let supply_ma = ranged(&s.supply_ma, "supply_ma", 0.0..=10_000.0, "mA", DEFAULTS.supply_ma)?;
    let supply_peak_ma = ranged(&s.supply_peak_ma, "supply_peak_ma", 0.0..=10_000.0, "mA", supply_ma)?;
    if supply_peak_ma < supply_ma {
        let span = s.supply_peak_ma.as_ref().map_or(0..0, |v| v.span());
        return Err(err(
            span,
            "supply_peak_ma",
            format!("{supply_peak_ma} mA is below the average supply_ma ({supply_ma} mA)"),
        ));
    }
    let output_high_volts = match s.output_high_volts.as_ref().map(|v| (v.span(), v.get_ref())) {
        None => None,
        Some((_, toml::Value::String(none))) if none == "none" => None,
        Some((span, v)) => {
            let volts = match v {
                toml::Value::Float(f) => *f,
                toml::Value::Integer(i) => *i as f64,
                _ => f64::NAN,
            };
            if !(0.5..=30.0).contains(&volts) {
                return Err(err(
                    span,
                    "output_high_volts",
                    format!("{v}: give the TTL high level in volts (3.3, 5.0) or \"none\" for a built-in reader"),
                ));
            }
            Some(volts)
        }
    };
    Ok(Board {
        name: name.clone(),
        summary: s.summary,
        sources: s.sources,
        pull_up,
        load_ohms,
        clamp_volts,
        input_pf,
        cable_m,
        rising_volts,
        falling_volts,
        inversions,
        request,
        request_volts,
        supply_ma,
        supply_peak_ma,
        output_high_volts,
    })
}

/// Why a board name, path or spec cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadBoard(pub String);

impl std::fmt::Display for BadBoard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadBoard {}

impl Board {
    /// A shipped board by name.
    pub fn named(name: &str) -> Option<Board> {
        builtin::board(name).and_then(Result::ok)
    }

    /// A shipped board by name, or a board file by path.
    pub fn lookup(name_or_path: &str) -> Result<Board, BadBoard> {
        if let Some(b) = builtin::board(name_or_path) {
            return b.map_err(|e| BadBoard(e.to_string()));
        }
        let path = Path::new(name_or_path);
        if path.exists() {
            return load(path).map_err(|e| BadBoard(e.to_string()));
        }
        let names: Vec<&str> = builtin::board_names().collect();
        Err(BadBoard(format!(
            "no board named {name_or_path:?} and no such file; choose one of {} (`p1sim boards` lists them), or give a board file",
            names.join(", ")
        )))
    }

    /// Parses `NAME|PATH[,cable=METRES][,pullup=OHMS|none][,request=on|off]`, e.g.
    /// `transistor-inverter,cable=30`, `ftdi-inverted,pullup=47k`, `./my-board.toml,cable=10`.
    pub fn parse_spec(spec: &str) -> Result<Board, BadBoard> {
        let mut parts = spec.split(',');
        let mut board = Board::lookup(parts.next().unwrap_or("").trim())?;
        for opt in parts {
            let (key, value) = opt.split_once('=').unwrap_or((opt, ""));
            let value = value.trim();
            match key.trim() {
                "cable" => {
                    let m = value
                        .strip_suffix('m')
                        .unwrap_or(value)
                        .parse::<f64>()
                        .ok()
                        .filter(|m| (0.0..=10_000.0).contains(m));
                    board.cable_m = m.ok_or_else(|| {
                        BadBoard(format!("cable={value}: give metres from 0 to 10000, e.g. cable=30"))
                    })?;
                }
                "pullup" if value == "none" => board.pull_up = None,
                "pullup" => {
                    let ohms = parse_ohms(value)
                        .ok_or_else(|| BadBoard(format!("pullup={value}: give ohms (e.g. 4700, 4.7k, 47k) or none")))?;
                    let volts = board.pull_up.map_or(DEFAULTS.pull_up_volts, |p| p.volts);
                    board.pull_up = Some(PullUp { volts, ohms });
                }
                "request" => {
                    board.request = match value {
                        "on" => Request::Driven,
                        "off" => Request::Open,
                        _ => return Err(BadBoard(format!("request={value}: give request=on or request=off"))),
                    }
                }
                other => {
                    return Err(BadBoard(format!(
                        "unknown board option {other:?} in {spec:?}; options are cable=METRES, pullup=OHMS|none, request=on|off"
                    )));
                }
            }
        }
        Ok(board)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str =
        "[board]\nname = \"weak\"\npull_up_ohms = 22000\ncable_m = 10\ninversions = 1\nrequest = \"tied\"\n";

    #[test]
    fn every_shipped_board_loads_and_is_named_by_its_file() {
        let mut n = 0;
        for (stem, text) in builtin::BOARDS {
            let b = parse(&format!("profiles/boards/{stem}.toml"), text).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(b.name, *stem, "a board's name is its file name");
            assert!(!b.summary.is_empty() && !b.sources.is_empty(), "{stem}: summary and sources");
            assert!(b.rising_volts > b.falling_volts, "{stem}: hysteresis");
            assert!(!b.name.contains([' ', ',', '=']), "{stem}");
            assert_eq!(Board::parse_spec(stem).unwrap(), b);
            n += 1;
        }
        assert_eq!(n, 8);
    }

    #[test]
    fn left_out_keys_take_the_documented_defaults() {
        let b = parse("weak.toml", MINIMAL).unwrap();
        assert_eq!(b.pull_up, Some(PullUp { volts: 5.0, ohms: 22_000.0 }));
        assert_eq!((b.cable_m, b.input_pf, b.rising_volts, b.falling_volts), (10.0, 15.0, 1.6, 1.2));
        assert_eq!((b.load_ohms, b.clamp_volts, b.inversions, b.request), (None, None, 1, Request::Tied));
        assert_eq!((b.request_volts, b.supply_ma, b.supply_peak_ma, b.output_high_volts), (5.0, 1.0, 1.0, None));
        let open = parse("o.toml", &MINIMAL.replace("\"tied\"", "\"open\"")).unwrap();
        assert_eq!(open.request_volts, 0.0);
        let esp =
            parse("esp.toml", &format!("{MINIMAL}supply_ma = 80\nsupply_peak_ma = 310\noutput_high_volts = 3.3\n"))
                .unwrap();
        assert_eq!((esp.supply_ma, esp.supply_peak_ma, esp.output_high_volts), (80.0, 310.0, Some(3.3)));
        let text = MINIMAL.replace("22000", "\"4.7k\"");
        assert_eq!(parse("k.toml", &text).unwrap().pull_up.unwrap().ohms, 4_700.0);
        let text = MINIMAL.replace("22000", "\"none\"");
        assert_eq!(parse("none.toml", &text).unwrap().pull_up, None);
    }

    #[test]
    fn errors_name_the_file_line_column_and_key() {
        let bad = |from: &str, to: &str| parse("my-board.toml", &MINIMAL.replace(from, to)).unwrap_err().to_string();
        let e = bad("inversions = 1", "inversions = 3");
        assert_eq!(
            e,
            "my-board.toml:5:14: key `inversions`: 3: give 0 (none), 1 (one inverter, as a working board has) or 2"
        );
        let e = bad("request = \"tied\"", "request = \"high\"");
        assert!(e.starts_with("my-board.toml:6:11: key `request`: \"high\""), "{e}");
        let e = bad("cable_m = 10", "cable_m = -1");
        assert!(e.starts_with("my-board.toml:4:11: key `cable_m`: -1 is outside 0 to 10000 m"), "{e}");
        let e = bad("22000", "\"strong\"");
        assert!(e.contains("key `pull_up_ohms`") && e.contains("\"none\""), "{e}");
        let e = bad("cable_m = 10", "cable = 10");
        assert!(e.starts_with("my-board.toml:4:1: key `cable`: unknown field `cable`"), "{e}");
        let e = bad("name = \"weak\"", "name = \"my board\"");
        assert!(e.contains("key `name`"), "{e}");
        let e =
            parse("x.toml", &format!("{MINIMAL}rising_volts = 1.0\nfalling_volts = 2.0\n")).unwrap_err().to_string();
        assert!(e.contains("key `falling_volts`") && e.contains("above rising_volts"), "{e}");
        let e = parse("x.toml", &format!("{MINIMAL}supply_ma = 80\nsupply_peak_ma = 10\n")).unwrap_err().to_string();
        assert!(e.contains("key `supply_peak_ma`") && e.contains("below the average"), "{e}");
        let e = parse("x.toml", &format!("{MINIMAL}output_high_volts = \"high\"\n")).unwrap_err().to_string();
        assert!(e.contains("key `output_high_volts`") && e.contains("\"none\""), "{e}");
        let e = parse("x.toml", "[board]\nname = \"x\"\n").unwrap_err().to_string();
        assert!(e.starts_with("x.toml:1:1:") && e.contains("missing field"), "{e}");
    }

    #[test]
    fn specs_adjust_a_board_and_errors_list_the_choices() {
        let b = Board::parse_spec("transistor-inverter,cable=30m,pullup=4.7k,request=off").unwrap();
        assert_eq!(b.cable_m, 30.0);
        assert_eq!(b.pull_up, Some(PullUp { volts: 3.3, ohms: 4_700.0 }));
        assert!(!b.drives_request());
        assert_eq!(Board::parse_spec("ftdi-inverted,pullup=none").unwrap().pull_up, None);
        let e = Board::parse_spec("ftdi").unwrap_err().to_string();
        assert!(e.contains("ftdi-inverted") && e.contains("rs232-adapter") && e.contains("p1sim boards"), "{e}");
        assert!(Board::parse_spec("ftdi-inverted,cable=-1").unwrap_err().to_string().contains("metres"));
        assert!(Board::parse_spec("ftdi-inverted,colour=red").unwrap_err().to_string().contains("pullup="));
    }

    #[test]
    fn a_spec_may_name_a_board_file() {
        let dir = std::env::temp_dir().join(format!("p1sim-board-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("weak.toml");
        std::fs::write(&path, MINIMAL).unwrap();
        let b = Board::parse_spec(&format!("{},cable=1", path.display())).unwrap();
        assert_eq!((b.name.as_str(), b.cable_m), ("weak", 1.0));
        std::fs::write(&path, MINIMAL.replace("inversions = 1", "inversions = \"one\"")).unwrap();
        let e = Board::parse_spec(&path.display().to_string()).unwrap_err().to_string();
        assert!(e.contains("weak.toml:5:") && e.contains("inversions"), "{e}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
