//! A user's own cases: a directory of captured telegrams, each `NAME.txt` (the bytes, `NAME.bin`
//! also read) with `NAME.json` (the case's settings and what a correct decoder reports, in the
//! format `p1sim conformance --export` writes). `p1sim conformance --corpus DIR` runs them with
//! the suite, in their own class; `p1sim conformance corpus add` writes a pair from p1sim's
//! reference decoder's reading of a capture, for the user to review.

use std::path::{Path, PathBuf};

use p1sim_core::decode::{Decoder, Event};
use p1sim_core::fault::Expect;
use p1sim_core::input::Limit;
use p1sim_core::spec::{Framing, LineSettings, Spec};
use p1sim_core::telegram::{Checksum, Line, Telegram, Value};
use serde::Deserialize;

use crate::SetupError;
use crate::case::{Case, Class, ExpectedTelegram, Level};
use crate::schema::Reported;

/// Files of a corpus beyond this size are refused.
pub const MAX_FILE_BYTES: u64 = 4 << 20;
/// Cases read from one directory at most.
pub const MAX_CASES: usize = 10_000;

#[derive(Deserialize)]
struct CaseFile {
    #[serde(default)]
    description: Option<String>,
    spec: String,
    #[serde(default)]
    baud: Option<u32>,
    #[serde(default)]
    framing: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default)]
    auth_key: Option<String>,
    telegrams: Vec<TelegramFile>,
}

#[derive(Deserialize)]
struct TelegramFile {
    #[serde(default = "accept")]
    expect: String,
    #[serde(default)]
    level: Option<Level>,
    #[serde(default)]
    faults: Vec<String>,
    report: Reported,
}

fn accept() -> String {
    "accept".into()
}

/// Reads every case of `dir`, in name order: `corpus/NAME`.
pub fn load(dir: &Path) -> Result<Vec<Case>, SetupError> {
    let jsons = crate::json_files(dir, MAX_CASES, "--corpus")?;
    jsons.iter().map(|p| load_case(p)).collect()
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, SetupError> {
    p1sim_core::input::read_bounded(path, Limit::new("corpus case", MAX_FILE_BYTES))
        .map_err(|e| SetupError::new(format!("{}: cannot read: {e}", path.display())))
}

fn load_case(json: &Path) -> Result<Case, SetupError> {
    let name = json.file_stem().and_then(|s| s.to_str()).unwrap_or("case").to_string();
    let bad = |what: String| SetupError::new(format!("{}: {what}", json.display()));
    let text = String::from_utf8(read_bounded(json)?).map_err(|_| bad("not UTF-8 text".into()))?;
    let file: CaseFile = serde_json::from_str(&text).map_err(|e| bad(format!("not a case: {e}")))?;
    let bytes_path = ["txt", "bin"]
        .iter()
        .map(|x| json.with_extension(x))
        .find(|p| p.is_file())
        .ok_or_else(|| bad(format!("no {name}.txt (or {name}.bin) with the case's bytes beside it")))?;
    let input = read_bounded(&bytes_path)?;
    let spec: Spec = file.spec.parse().map_err(|e| bad(format!("spec {:?}: {e}", file.spec)))?;
    let mut line = spec.default_line();
    if let Some(b) = file.baud {
        line.baud = b;
    }
    if let Some(f) = &file.framing {
        line.framing = f.parse::<Framing>().map_err(|e| bad(format!("framing {f:?}: {e}")))?;
    }
    let hex_key = |field: &str, value: Option<&str>| match value.filter(|k| !k.is_empty()) {
        Some(k) => {
            p1sim_core::smarty::parse_key(k).map(Some).ok_or_else(|| bad(format!("{field}: expected 32 hex digits")))
        }
        None => Ok(None),
    };
    let key = hex_key("key", file.key.as_deref())?;
    let auth_key = hex_key("auth_key", file.auth_key.as_deref())?;
    if file.telegrams.is_empty() {
        return Err(bad("no telegrams: a case says what a decoder reports for at least one".into()));
    }
    let mut telegrams = Vec::with_capacity(file.telegrams.len());
    for (k, t) in file.telegrams.into_iter().enumerate() {
        let expect = match t.expect.as_str() {
            "accept" => Expect::Accept,
            "reject" => Expect::Reject,
            "any" => Expect::Unspecified,
            other => return Err(bad(format!("telegram {}: expect {other:?}: expected accept, reject or any", k + 1))),
        };
        telegrams.push(ExpectedTelegram {
            expect,
            level: t.level.unwrap_or(Level::Required),
            evidence: "corpus",
            model: model_of(&t.report),
            faults: t.faults,
        });
    }
    let description = file.description.unwrap_or_else(|| format!("captured telegrams of {}", bytes_path.display()));
    Ok(corpus_case(&name, description, spec, line, (key, auth_key), input, telegrams))
}

/// A case of the user's corpus: named `corpus/NAME`, its profile the capture's name.
fn corpus_case(
    name: &str,
    description: String,
    spec: Spec,
    line: LineSettings,
    (key, auth_key): (Option<[u8; 16]>, Option<[u8; 16]>),
    input: Vec<u8>,
    telegrams: Vec<ExpectedTelegram>,
) -> Case {
    Case {
        name: format!("corpus/{name}"),
        class: Class::Corpus,
        description,
        profile: name.to_string(),
        spec,
        line,
        key,
        auth_key,
        input,
        telegrams,
    }
}

/// The telegram a report describes, for judging: its objects as lines.
fn model_of(r: &Reported) -> Telegram {
    Telegram {
        header: r.header.clone().unwrap_or_default().trim_start_matches('/').to_string(),
        blank_line: true,
        lines: r
            .objects
            .iter()
            .map(|o| Line {
                obis: o.obis.trim().to_string(),
                values: o.values.iter().map(|v| Value { text: v.text(), unit: v.unit.clone() }).collect(),
                break_before: None,
            })
            .collect(),
        checksum: Checksum::Computed,
        end_marker: true,
        trailer: Vec::new(),
    }
}

/// A case from a capture's bytes, expecting what p1sim's reference decoder reads: every
/// telegram it accepts, accepted (required), as it reads it.
pub fn from_capture(
    name: &str,
    input: Vec<u8>,
    spec: Spec,
    line: LineSettings,
    keys: (Option<[u8; 16]>, Option<[u8; 16]>),
    description: &str,
) -> Case {
    let (key, auth_key) = keys;
    let mut d = Decoder::new();
    if let Some(k) = key {
        d = d.with_key(k);
    }
    if let Some(k) = auth_key {
        d = d.with_auth_key(k);
    }
    let mut telegrams = Vec::new();
    let mut on = |ev: Event<'_>| {
        if let Event::Telegram(f) = ev
            && f.is_valid()
        {
            telegrams.push(ExpectedTelegram {
                expect: Expect::Accept,
                level: Level::Required,
                evidence: "corpus",
                model: f.to_telegram(),
                faults: Vec::new(),
            });
        }
    };
    d.feed(&input, &mut on);
    d.finish(&mut on);
    corpus_case(name, description.to_string(), spec, line, keys, input, telegrams)
}

/// Writes a case as `DIR/NAME.txt` and `DIR/NAME.json`; refuses to overwrite unless `force`.
pub fn write(dir: &Path, name: &str, case: &Case, force: bool) -> Result<(PathBuf, PathBuf), SetupError> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)) || name.starts_with('.')
    {
        return Err(SetupError::new(format!(
            "--name {name:?}: use letters, digits, `-`, `_` and `.`, e.g. my-meter-2024-01"
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| SetupError::new(format!("cannot create {}: {e}", dir.display())))?;
    let txt = dir.join(format!("{name}.txt"));
    let json = dir.join(format!("{name}.json"));
    if !force && (txt.exists() || json.exists()) {
        return Err(SetupError::new(format!(
            "{} already has a case {name}: choose another --name, or --force",
            dir.display()
        )));
    }
    let mut doc = crate::export::case_json(case);
    doc["bytes"] = serde_json::Value::String(format!("{name}.txt"));
    let mut text = serde_json::to_string_pretty(&doc).expect("JSON values serialize");
    text.push('\n');
    std::fs::write(&txt, &case.input).map_err(|e| SetupError::new(format!("cannot write {}: {e}", txt.display())))?;
    std::fs::write(&json, text).map_err(|e| SetupError::new(format!("cannot write {}: {e}", json.display())))?;
    Ok((txt, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_written_case_loads_back_and_the_reference_decoder_passes_it() {
        let dir = std::env::temp_dir().join(format!("p1sim-corpus-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let suite = crate::suite::cases();
        let clean = suite.iter().find(|c| c.name == "clean/iskra-am550/clean/s1").unwrap();
        let case = from_capture("am550", clean.input.clone(), clean.spec, clean.line, (None, None), "three telegrams");
        assert_eq!(case.telegrams.len(), 3);
        write(&dir, "am550", &case, false).unwrap();
        assert!(write(&dir, "am550", &case, false).unwrap_err().message.contains("already has a case"));
        assert!(write(&dir, "../x", &case, false).is_err());
        let loaded = load(&dir).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].name, "corpus/am550");
        assert_eq!(loaded[0].class, Class::Corpus);
        assert_eq!(loaded[0].input, clean.input);
        assert!(crate::judge(&loaded[0], &crate::reference::decode(&loaded[0])).passed());
        // A decoder that misses a value fails the case.
        let mut wrong = crate::reference::decode(&loaded[0]);
        wrong[1].objects.retain(|o| o.obis != "1-0:1.8.1");
        assert!(!crate::judge(&loaded[0], &wrong).passed());
        std::fs::write(dir.join("broken.json"), "{").unwrap();
        assert!(load(&dir).unwrap_err().message.contains("broken.json"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
