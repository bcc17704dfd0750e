//! `p1sim conformance --export DIR`: every case as files a decoder project can vendor into its
//! own test framework, the way node-dsmr-parser keeps telegram/JSON pairs: `NAME.bin` (the bytes
//! exactly as the runner sends them) and `NAME.json` (the case's settings and, per telegram,
//! the expectation and what a correct decoder reports), with a README of the format.

use std::fmt::Write;
use std::path::Path;

use p1sim_core::fault::Expect;

use crate::SetupError;
use crate::case::Case;
use crate::process::key_hex;
use crate::schema::expected_report;

/// The version of the exported JSON's layout.
pub const EXPORT_SCHEMA_VERSION: u32 = 1;

/// The JSON document of one case.
pub fn case_json(case: &Case) -> serde_json::Value {
    let telegrams: Vec<serde_json::Value> = case
        .telegrams
        .iter()
        .map(|t| {
            let expect = match t.expect {
                Expect::Accept | Expect::AcceptLenient => "accept",
                Expect::Reject => "reject",
                Expect::Unspecified => "any",
            };
            serde_json::json!({
                "expect": expect,
                "level": t.level.name(),
                "evidence": format!("conformance/EVIDENCE.md#{}", t.evidence),
                "faults": t.faults,
                "report": expected_report(&t.model),
            })
        })
        .collect();
    serde_json::json!({
        "schema_version": EXPORT_SCHEMA_VERSION,
        "p1sim_version": env!("CARGO_PKG_VERSION"),
        "name": case.name,
        "class": case.class.name(),
        "description": case.description,
        "spec": case.spec.to_string(),
        "baud": case.line.baud,
        "framing": case.line.framing.to_string(),
        "key": (!key_hex(case.key).is_empty()).then(|| key_hex(case.key)),
        "auth_key": (!key_hex(case.auth_key).is_empty()).then(|| key_hex(case.auth_key)),
        "bytes": format!("{}.bin", case.name.rsplit('/').next().unwrap_or(&case.name)),
        "telegrams": telegrams,
    })
}

/// Writes `cases` under `dir` (created if needed), one directory level per `/` of a case name,
/// and `dir/README.md`. Returns the number of cases written.
pub fn write(dir: &Path, cases: &[Case]) -> Result<usize, SetupError> {
    let fail =
        |what: &str, path: &Path, e: std::io::Error| SetupError::new(format!("cannot {what} {}: {e}", path.display()));
    if dir.exists() && !dir.is_dir() {
        return Err(SetupError::new(format!("--export {}: exists and is not a directory", dir.display())));
    }
    std::fs::create_dir_all(dir).map_err(|e| fail("create", dir, e))?;
    for case in cases {
        let base = dir.join(&case.name);
        if let Some(parent) = base.parent() {
            std::fs::create_dir_all(parent).map_err(|e| fail("create", parent, e))?;
        }
        let bin = base.with_extension("bin");
        std::fs::write(&bin, &case.input).map_err(|e| fail("write", &bin, e))?;
        let json = base.with_extension("json");
        let mut text = serde_json::to_string_pretty(&case_json(case)).expect("JSON values serialize");
        text.push('\n');
        std::fs::write(&json, text).map_err(|e| fail("write", &json, e))?;
    }
    let readme = dir.join("README.md");
    std::fs::write(&readme, readme_text(cases.len())).map_err(|e| fail("write", &readme, e))?;
    Ok(cases.len())
}

fn readme_text(n: usize) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# p1sim conformance cases ({n} cases, p1sim {})", env!("CARGO_PKG_VERSION"));
    s.push_str(
        r#"
Exported with `p1sim conformance --export DIR`. Each case is a pair:

- `NAME.bin`: the bytes a decoder is given, exactly as the runner sends them (a short stream,
  usually three telegrams with damage or a quirk on the middle one; Smarty cases are binary
  AES-GCM frames);
- `NAME.json`: the case's settings and its expectations.

Case names are `class/profile/variant/seed`, so the files sit in one directory per class and
profile. Regenerate them with the same p1sim version to update; the names are stable.

## NAME.json

```json
{
  "schema_version": 1,
  "name": "crc-check/iskra-am550/wrong-crc/s1",
  "class": "crc-check",
  "description": "the middle telegram carries a wrong CRC",
  "spec": "DSMR 5.0",            // DSMR 2.2 ... 5.0, e-MUCS, SE-HAN, Smarty, D0, E.ON HU, Steiermark, Iskra IE
  "baud": 115200, "framing": "8N1",
  "key": null,                    // the decryption key as 32 hex digits for encrypted cases
  "auth_key": null,               // the meter's own authentication key, where it is not Smarty's published one
  "bytes": "s1.bin",
  "telegrams": [
    {"expect": "accept",          // accept, reject, or any (damage no CRC can show)
     "level": "required",         // required, recommended, or either (accept or reject)
     "evidence": "conformance/EVIDENCE.md#telegram-format",
     "faults": [],                // what was done to this telegram, in words
     "report": {"header": "ISK5\\2M550T-1012", "objects": [
        {"obis": "1-0:1.8.1", "values": [{"value": "001234.567", "unit": "kWh"}]}]}}
  ]
}
```

`report` is what a correct decoder reports for the telegram, in the output schema of the
conformance runner (conformance/adapters/README.md in the p1sim repository): values as the meter
wrote them. For a rejected telegram it is what the decoder must not report.

## Checking a decoder against the files

A decoder passes a case when, fed `NAME.bin` whole:

- it reports every `accept` telegram of level `required` (and, to be robust, `recommended`), in
  order, and no `reject` telegram of those levels;
- a telegram of level `either` may be reported or not;
- whatever it reports matches `report`: numbers compare as decimals (`001234.567` = 1234.567),
  after scaling units (kWh/Wh, kW/W, kvarh/varh, kvar/var, m3/dm3); units compare without regard
  to case and may be left out except on energy and power registers (`1-0:C.8.x`, `1-0:C.7.0`);
  timestamps compare as instants (`260115120000W` = `2026-01-15T11:00:00Z`), and placeholders
  (`632525252525W`, `000101010000W`, `700101010000W`) may be null; the core objects (timestamp,
  energy registers, total power, M-Bus readings) must be there unless they hold only a
  placeholder, the others may be left out;
- nothing else is reported.

`p1sim conformance --dut 'YOUR ADAPTER'` applies exactly these rules and explains each failure.
"#,
    );
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::suite::cases;

    #[test]
    fn every_case_exports_as_bytes_and_json() {
        let dir = std::env::temp_dir().join(format!("p1sim-export-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let picked: Vec<Case> = cases().into_iter().filter(|c| c.name.contains("/iskra-am550/")).collect();
        assert_eq!(write(&dir, &picked).unwrap(), picked.len());
        for c in &picked {
            assert_eq!(std::fs::read(dir.join(format!("{}.bin", c.name))).unwrap(), c.input);
            let j: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{}.json", c.name))).unwrap()).unwrap();
            assert_eq!(j["name"], c.name);
            assert_eq!(j["telegrams"].as_array().unwrap().len(), c.telegrams.len());
            let report: crate::schema::Reported = serde_json::from_value(j["telegrams"][0]["report"].clone()).unwrap();
            assert!(crate::schema::compare_telegram(&c.telegrams[0].model, &report).is_empty());
        }
        assert!(std::fs::read_to_string(dir.join("README.md")).unwrap().contains("NAME.json"));
        std::fs::write(dir.join("file"), b"x").unwrap();
        assert!(write(&dir.join("file"), &picked).unwrap_err().message.contains("not a directory"));
        let _ = std::fs::remove_dir_all(&dir);
    }
}
