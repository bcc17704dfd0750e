//! Peer decoders that are on no package registry, built from a source checkout the user names
//! (`--dut esphome --source DIR`): ESPHome's C++ parser and Homey's TypeScript one. Their adapters
//! and build scripts (`conformance/adapters/esphome`, `conformance/adapters/node-dsmr-parser`)
//! are embedded in the binary, written under p1sim's cache and run there, so the names work from
//! any directory.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::SetupError;
use crate::dut::write_adapter;
use crate::process::DecoderCommand;
use crate::python;

/// A peer decoder built from a source checkout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Peer {
    /// esphome-libs/dsmr_parser, the parser of ESPHome's `dsmr` component (header-only C++20).
    Esphome,
    /// @athombv/dsmr-parser, the parser of the Homey Energy Dongle (TypeScript).
    NodeDsmrParser,
}

impl Peer {
    pub const ALL: [Peer; 2] = [Peer::Esphome, Peer::NodeDsmrParser];

    /// The peer a `--dut` name stands for: `esphome` or its column name, `node-dsmr-parser`.
    pub fn from_dut(name: &str) -> Option<Peer> {
        match name {
            "esphome" | "esphome-dsmr_parser" => Some(Peer::Esphome),
            "node-dsmr-parser" => Some(Peer::NodeDsmrParser),
            _ => None,
        }
    }

    /// The name of its column in `conformance/results/` and the matrix.
    pub fn column(self) -> &'static str {
        match self {
            Peer::Esphome => "esphome-dsmr_parser",
            Peer::NodeDsmrParser => "node-dsmr-parser",
        }
    }

    /// The environment variable that names the checkout when `--source` does not.
    pub fn source_var(self) -> &'static str {
        match self {
            Peer::Esphome => "ESPHOME_DSMR_SOURCE",
            Peer::NodeDsmrParser => "NODE_DSMR_PARSER",
        }
    }

    /// Where the source comes from.
    pub fn repository(self) -> &'static str {
        match self {
            Peer::Esphome => "https://github.com/esphome-libs/dsmr_parser",
            Peer::NodeDsmrParser => "https://github.com/athombv/node-dsmr-parser",
        }
    }

    /// The manifest in the checkout that carries the library's version.
    fn manifest(self) -> &'static str {
        match self {
            Peer::Esphome => "library.json",
            Peer::NodeDsmrParser => "package.json",
        }
    }

    /// How the decoder is run, for the compatibility matrix.
    pub fn note(self) -> &'static str {
        match self {
            Peer::Esphome => {
                "the parser of ESPHome's dsmr component, header-only C++20 compiled with g++ from a source \
                 checkout (it is on no registry CI reaches) by `conformance/adapters/esphome/build.sh`. \
                 PacketAccumulator with ESPHome's default max_telegram_length of 1500 bytes, CRC checked \
                 where the meter sends one (off for DSMR 2.2/3 and D0 push output, as an ESPHome user sets \
                 crc_check: false for such a meter), then DsmrParser::parse into every field ESPHome's \
                 sensors offer, as if all were configured (Belgium's peak-demand ones for e-MUCS meters only; \
                 a telegram one of them fails to parse is dropped whole, as ESPHome drops it), default M-Bus ids (gas 1, water 2); raw and averaged fields are \
                 not reported. Encrypted cases (Luxembourg Smarty, Austria's T210-D-r) not run: the library \
                 frames encrypted telegrams by inter-frame silence, which a byte stream does not carry"
            }
            Peer::NodeDsmrParser => {
                "the parser of the Homey Energy Dongle: not on the npm registry, so built from a source \
                 checkout with its own locked toolchain (npm ci, tsc) by \
                 `conformance/adapters/node-dsmr-parser/build.sh`. Its stream parsers \
                 (UnencryptedDSMRStreamParser, EncryptedDSMRStreamParser with the key) in 64-byte chunks; \
                 the structured result mapped back to OBIS codes by meaning (energy in Wh, power in W), \
                 crcValid as crc_ok. Its timestamps are the meter's wall-clock time without the S/W flag \
                 and are reported as such"
            }
        }
    }

    /// The embedded adapter and build script, as (file name, text).
    fn files(self) -> [(&'static str, &'static str); 2] {
        match self {
            Peer::Esphome => [
                ("adapter.cpp", include_str!("../adapters/esphome/adapter.cpp")),
                ("build.sh", include_str!("../adapters/esphome/build.sh")),
            ],
            Peer::NodeDsmrParser => [
                ("adapter.mjs", include_str!("../adapters/node-dsmr-parser/adapter.mjs")),
                ("build.sh", include_str!("../adapters/node-dsmr-parser/build.sh")),
            ],
        }
    }

    /// What to do when no checkout is given.
    fn how_to_get(self) -> String {
        format!(
            "--dut {} needs a source checkout of {}, which is on no package registry: `git clone {}`, then \
             give --source DIR or set {}=DIR (conformance/adapters/README.md has the commit its column was \
             recorded at)",
            self.dut_name(),
            self.repository().trim_start_matches("https://github.com/"),
            self.repository(),
            self.source_var()
        )
    }

    fn dut_name(self) -> &'static str {
        match self {
            Peer::Esphome => "esphome",
            Peer::NodeDsmrParser => "node-dsmr-parser",
        }
    }

    /// The cases the peer cannot be run on, as `--exclude` patterns: ESPHome's parser frames
    /// encrypted telegrams by inter-frame silence, which a byte stream does not carry.
    pub fn not_run(self) -> &'static [&'static str] {
        match self {
            Peer::Esphome => {
                &["*/sagemcom-t210d-lu/*", "*/sagemcom-t210d-lu-own-auth-key/*", "*/sagemcom-t210d-r-at/*"]
            }
            Peer::NodeDsmrParser => &[],
        }
    }
}

/// The checkout to build from: `--source`, else the peer's environment variable.
pub fn source(peer: Peer, given: Option<&Path>) -> Result<PathBuf, SetupError> {
    let from_env = || std::env::var_os(peer.source_var()).filter(|d| !d.is_empty()).map(PathBuf::from);
    given.map(Path::to_path_buf).or_else(from_env).ok_or_else(|| SetupError::new(peer.how_to_get()))
}

/// Builds the peer's adapter from the checkout `source` under `cache` (the embedded build script
/// does nothing when it is up to date) and returns the command that runs it.
pub fn command(peer: Peer, source: &Path, cache: &Path) -> Result<DecoderCommand, SetupError> {
    if !source.is_dir() {
        return Err(SetupError::new(format!(
            "--source {} is not a directory; {}",
            source.display(),
            peer.how_to_get()
        )));
    }
    let dir = cache.join(format!("adapter-{}", peer.column()));
    std::fs::create_dir_all(&dir)
        .map_err(|e| SetupError::new(format!("cannot create the adapter directory {}: {e}", dir.display())))?;
    let [(adapter, adapter_text), (script, script_text)] = peer.files();
    let adapter = write_adapter(&dir, adapter, adapter_text)?;
    let script = write_adapter(&dir, script, script_text)?;
    let mut build = Command::new("sh");
    build.arg(&script).arg("--source").arg(source);
    let binary = dir.join("p1sim-adapter-esphome");
    if peer == Peer::Esphome {
        build.arg("--output").arg(&binary);
    }
    let out = build
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| SetupError::new(format!("cannot run sh {}: {e}", script.display())))?;
    if !out.status.success() {
        return Err(SetupError::new(format!(
            "building the {} adapter from {} failed: {}",
            peer.column(),
            source.display(),
            python::tail(&out.stderr)
        )));
    }
    Ok(match peer {
        Peer::Esphome => DecoderCommand {
            display: binary.display().to_string(),
            argv: vec![binary.into_os_string()],
            env: Vec::new(),
        },
        Peer::NodeDsmrParser => {
            // build.sh prints the checkout's absolute path.
            let built = String::from_utf8_lossy(&out.stdout).trim().to_string();
            DecoderCommand {
                display: format!("{}={built} node {}", peer.source_var(), adapter.display()),
                argv: vec!["node".into(), adapter.into_os_string()],
                env: vec![(peer.source_var().into(), OsString::from(built))],
            }
        }
    })
}

/// The checkout's version for reports, `1.4.0 (a200271)`: the manifest's version and the git
/// commit, whichever are known.
pub fn version(peer: Peer, source: &Path) -> Option<String> {
    let manifest = [source.join(peer.manifest()), source.join("..").join(peer.manifest())]
        .into_iter()
        .find_map(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("version").and_then(|v| v.as_str()).map(str::to_string));
    let commit = Command::new("git")
        .arg("-C")
        .arg(source)
        .args(["rev-parse", "--short=7", "HEAD"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty());
    match (manifest, commit) {
        (Some(v), Some(c)) => Some(format!("{v} ({c})")),
        (v, c) => v.or(c),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_checkout_says_where_to_get_it() {
        for peer in Peer::ALL {
            let dir = std::env::temp_dir().join(format!("p1sim-no-checkout-{}", std::process::id()));
            let e = command(peer, &dir, &dir).unwrap_err().to_string();
            assert!(e.contains(&format!("git clone {}", peer.repository())), "{e}");
            assert!(e.contains(peer.source_var()), "{e}");
            assert!(!dir.exists(), "nothing is written for a missing checkout");
        }
        assert_eq!(Peer::from_dut("esphome"), Some(Peer::Esphome));
        assert_eq!(Peer::from_dut(Peer::NodeDsmrParser.column()), Some(Peer::NodeDsmrParser));
        assert_eq!(Peer::from_dut("dsmr_parser"), None);
    }
}
