//! The profiles, fault scenarios and interface boards shipped in `profiles/`, compiled into the
//! binary so `--profile NAME` and `--board NAME` work from any directory. A path loads a user's
//! own file instead.

use std::path::Path;

use crate::profile::Profile;
use crate::profile::load::{ProfileError, load_file, parse};

/// (name, TOML text) of every shipped profile, sorted by name.
pub static PROFILES: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_profiles.rs"));

/// (name, TOML text) of every shipped fault scenario (`profiles/scenarios/`).
pub static SCENARIOS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_scenarios.rs"));

/// (name, TOML text) of every shipped interface board (`profiles/boards/`).
pub static BOARDS: &[(&str, &str)] = include!(concat!(env!("OUT_DIR"), "/builtin_boards.rs"));

/// Names of the shipped boards, sorted.
pub fn board_names() -> impl Iterator<Item = &'static str> {
    BOARDS.iter().map(|(n, _)| *n)
}

/// Loads a shipped board by name.
pub fn board(name: &str) -> Option<Result<crate::wire::board::Board, ProfileError>> {
    BOARDS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, text)| crate::wire::board::file::parse(&format!("profiles/boards/{n}.toml"), text))
}

/// Every shipped board, loaded.
pub fn boards() -> Result<Vec<crate::wire::board::Board>, ProfileError> {
    BOARDS.iter().map(|(n, text)| crate::wire::board::file::parse(&format!("profiles/boards/{n}.toml"), text)).collect()
}

/// Resolves `--faults`: a shipped scenario name, or a path to a scenario TOML file.
pub fn scenario(name_or_path: &str) -> Result<crate::fault::scenario::Scenario, LookupError> {
    use crate::fault::scenario::Scenario;
    if let Some((n, text)) = SCENARIOS.iter().find(|(n, _)| *n == name_or_path) {
        return Scenario::parse(n, &format!("profiles/scenarios/{n}.toml"), text).map_err(LookupError::Invalid);
    }
    let path = Path::new(name_or_path);
    if path.exists() {
        return Scenario::load(path).map_err(LookupError::Invalid);
    }
    let suggestion = SCENARIOS
        .iter()
        .map(|(n, _)| (edit_distance(name_or_path, n), *n))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, n)| n);
    Err(LookupError::Unknown { given: name_or_path.to_string(), suggestion, what: "scenario" })
}

/// Names of the shipped profiles.
pub fn names() -> impl Iterator<Item = &'static str> {
    PROFILES.iter().map(|(n, _)| *n)
}

/// Loads a shipped profile by name.
pub fn get(name: &str) -> Option<Result<Profile, ProfileError>> {
    PROFILES.iter().find(|(n, _)| *n == name).map(|(n, text)| parse(n, &format!("profiles/{n}.toml"), text))
}

/// Every shipped profile, loaded.
pub fn all() -> Result<Vec<Profile>, ProfileError> {
    PROFILES.iter().map(|(n, text)| parse(n, &format!("profiles/{n}.toml"), text)).collect()
}

/// Why `--profile` could not be resolved.
#[derive(Debug)]
pub enum LookupError {
    Invalid(ProfileError),
    Unknown { given: String, suggestion: Option<&'static str>, what: &'static str },
}

impl std::fmt::Display for LookupError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LookupError::Invalid(e) => write!(f, "{e}"),
            LookupError::Unknown { given, suggestion, what } => {
                write!(f, "no {what} named {given:?} and no such file")?;
                if let Some(s) = suggestion {
                    write!(f, "; did you mean {s:?}?")?;
                }
                match *what {
                    "profile" => write!(f, " (`p1sim profiles` lists them)"),
                    _ => write!(f, " (`p1sim faults` lists them)"),
                }
            }
        }
    }
}

impl std::error::Error for LookupError {}

/// Resolves `--profile`: a shipped name, or a path to a TOML file.
pub fn lookup(name_or_path: &str) -> Result<Profile, LookupError> {
    if let Some(p) = get(name_or_path) {
        return p.map_err(LookupError::Invalid);
    }
    let path = Path::new(name_or_path);
    if path.exists() {
        return load_file(path).map_err(LookupError::Invalid);
    }
    Err(LookupError::Unknown { given: name_or_path.to_string(), suggestion: closest(name_or_path), what: "profile" })
}

/// The shipped name with the smallest edit distance, if it is close enough to be a typo.
fn closest(given: &str) -> Option<&'static str> {
    names().map(|n| (edit_distance(given, n), n)).filter(|(d, _)| *d <= 3).min().map(|(_, n)| n)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb)).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_a_suggestion() {
        match lookup("iskra-am55") {
            Err(LookupError::Unknown { suggestion, .. }) => assert_eq!(suggestion, Some("iskra-am550")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn every_shipped_profile_survives_the_firmwares_postcard_encoding() {
        // The pocket meter gets its profile as postcard bytes (rig-firmware/build.rs), a format
        // without field names: every field must be written, none skipped.
        for p in all().unwrap() {
            let mut buf = vec![0u8; 64 * 1024];
            let bytes = postcard::to_slice(&p, &mut buf).unwrap();
            let back: Profile = postcard::from_bytes(bytes).unwrap_or_else(|e| panic!("{}: {e}", p.name));
            assert_eq!(back, p);
        }
    }

    #[test]
    fn every_shipped_scenario_loads() {
        assert!(SCENARIOS.len() >= 10);
        for (name, _) in SCENARIOS {
            let s = scenario(name).unwrap_or_else(|e| panic!("{e}"));
            assert!(!s.entries.is_empty() || s.wire.is_some(), "{name}: no faults");
        }
        match scenario("noisy-cabel") {
            Err(LookupError::Unknown { suggestion, .. }) => assert_eq!(suggestion, Some("noisy-cable")),
            other => panic!("{other:?}"),
        }
    }
}
