//! The decoders under test: p1sim's reference decoder run in-process, the adapters shipped in
//! `conformance/adapters/` (the dsmr_parser one embedded in the binary, so `--dut dsmr_parser`
//! works from any directory; the dsmr5 one a binary built beside p1sim; ESPHome's and Homey's
//! built from a source checkout, see [`checkout`]), or any command that speaks the decoder
//! interface.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::SetupError;
use crate::checkout::{self, Peer};
use crate::process::DecoderCommand;
use crate::python;

/// The dsmr_parser adapter (`conformance/adapters/dsmr_parser_adapter.py`).
pub const DSMR_PARSER_PY: &str = include_str!("../adapters/dsmr_parser_adapter.py");

/// The binary of the dsmr5 adapter crate (`conformance/adapters/dsmr5`).
pub const DSMR5_ADAPTER: &str = "p1sim-adapter-dsmr5";

/// The dsmr5 release the adapter is built against (crates.io `dsmr5`).
pub const DSMR5_VERSION: &str = "0.4.0";

/// The dsmr_parser release the adapter is written against (PyPI `dsmr-parser`).
pub const DSMR_PARSER_VERSION: &str = "1.11.2";

/// A decoder under test.
#[derive(Clone, Debug)]
pub enum Dut {
    /// p1sim's own decoder, called in-process (transports do not apply).
    Reference,
    /// A command started per case, or once with `--persistent`.
    Command {
        /// How reports name it: `dsmr_parser`, or the command text.
        name: String,
        /// The decoder's version when known.
        version: Option<String>,
        command: DecoderCommand,
    },
}

impl Dut {
    pub fn name(&self) -> &str {
        match self {
            Dut::Reference => "reference",
            Dut::Command { name, .. } => name,
        }
    }

    pub fn version(&self) -> Option<&str> {
        match self {
            Dut::Reference => Some(env!("CARGO_PKG_VERSION")),
            Dut::Command { version, .. } => version.as_deref(),
        }
    }

    /// How the decoder is run, for the compatibility matrix.
    pub fn note(&self) -> Option<String> {
        match self {
            Dut::Reference => Some("p1sim's own decoder, called in-process".into()),
            Dut::Command { name, .. } if name == "dsmr_parser" => Some(format!(
                "PyPI `dsmr-parser=={DSMR_PARSER_VERSION}` in a virtualenv, decoding as Home Assistant's DSMR \
                 integration does (`DSMRProtocol.data_received`), reporting the `Telegram` that `parse()` \
                 returns, through `conformance/adapters/dsmr_parser_adapter.py`"
            )),
            Dut::Command { name, .. } if name == "dsmr5" => Some(format!(
                "crates.io `dsmr5 {DSMR5_VERSION}`: its `Reader` over the byte stream, `to_telegram()` and \
                 `objects()`, through the adapter crate `conformance/adapters/dsmr5` (units are the ones its \
                 types stand for)"
            )),
            Dut::Command { name, .. } => Peer::from_dut(name).map(|p| p.note().to_string()),
        }
    }

    /// The decoder with its version, for headers: `dsmr_parser 1.11.2`.
    pub fn label(&self) -> String {
        match (self, self.version()) {
            (Dut::Reference, Some(v)) => format!("p1sim's reference decoder {v}"),
            (_, Some(v)) => format!("{} {v}", self.name()),
            (_, None) => self.name().to_string(),
        }
    }
}

/// Resolves `--dut`: `reference`, `dsmr_parser` (whose virtualenv is set up from PyPI on first
/// use), `dsmr5` (the adapter binary built beside `p1sim`), `esphome` and `node-dsmr-parser`
/// (built from the checkout `source`, or the one their environment variable names), or anything
/// else as a shell command. `p1sim` is the binary adapters may call back (exported to them as
/// `P1SIM`).
pub fn resolve(dut: &str, p1sim: Option<&Path>, source: Option<&Path>) -> Result<Dut, SetupError> {
    let env: Vec<_> = p1sim.map(|p| ("P1SIM".into(), p.as_os_str().to_owned())).into_iter().collect();
    let peer = Peer::from_dut(dut.trim());
    if let (Some(dir), None) = (source, peer) {
        return Err(SetupError::new(format!(
            "--source {} applies to the decoders built from a source checkout, `--dut esphome` and `--dut \
             node-dsmr-parser`, not to `--dut {}`",
            dir.display(),
            dut.trim()
        )));
    }
    if let Some(peer) = peer {
        let source = checkout::source(peer, source)?;
        let mut command = checkout::command(peer, &source, &python::cache_root())?;
        command.env.extend(env);
        let version = checkout::version(peer, &source);
        return Ok(Dut::Command { name: peer.column().into(), version, command });
    }
    match dut.trim() {
        "" => Err(SetupError::new(
            "--dut is empty: give `reference`, `dsmr_parser`, `dsmr5`, `esphome`, `node-dsmr-parser`, or a command \
             such as 'python3 my_adapter.py'",
        )),
        "dsmr5" => {
            let exe = dsmr5_adapter(p1sim)?;
            let mut command = DecoderCommand {
                display: exe.display().to_string(),
                argv: vec![exe.into_os_string()],
                env: Vec::new(),
            };
            command.env = env;
            Ok(Dut::Command { name: "dsmr5".into(), version: Some(DSMR5_VERSION.into()), command })
        }
        "reference" => Ok(Dut::Reference),
        "dsmr_parser" | "dsmr-parser" => {
            let mut command = dsmr_parser(&python::cache_dir())?;
            command.env = env;
            Ok(Dut::Command { name: "dsmr_parser".into(), version: Some(DSMR_PARSER_VERSION.into()), command })
        }
        other => {
            let mut command = DecoderCommand::shell(other);
            command.env = env;
            Ok(Dut::Command { name: other.to_string(), version: None, command })
        }
    }
}

/// The dsmr5 adapter binary: next to `p1sim` (both built by cargo into the same target
/// directory), or `P1SIM_DSMR5_ADAPTER`.
pub fn dsmr5_adapter(p1sim: Option<&Path>) -> Result<PathBuf, SetupError> {
    if let Some(p) = std::env::var_os("P1SIM_DSMR5_ADAPTER").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    let beside = p1sim.and_then(Path::parent).map(|d| d.join(DSMR5_ADAPTER));
    match beside {
        Some(exe) if exe.is_file() => Ok(exe),
        _ => Err(SetupError::new(format!(
            "the dsmr5 adapter is not built: run `cargo build -p {DSMR5_ADAPTER}` (with the same profile as \
             p1sim) in the p1sim repository, or point P1SIM_DSMR5_ADAPTER at the binary"
        ))),
    }
}

/// dsmr_parser's adapter in its virtualenv under `cache`: the interpreter and the embedded
/// script, written next to it.
pub fn dsmr_parser(cache: &Path) -> Result<DecoderCommand, SetupError> {
    let python = python::venv_with(cache, "dsmr-parser", DSMR_PARSER_VERSION)?;
    let venv = python.parent().and_then(Path::parent).unwrap_or(cache).to_path_buf();
    let script = write_adapter(&venv, "p1sim-adapter-dsmr_parser.py", DSMR_PARSER_PY)?;
    let check = Command::new(&python)
        .args(["-c", "import dsmr_parser.clients.telegram_buffer, dsmr_parser.parsers"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| SetupError::new(format!("cannot run {}: {e}", python.display())))?;
    if !check.status.success() {
        return Err(SetupError::new(format!(
            "dsmr_parser does not import in {}: {}; delete that directory to rebuild it",
            venv.display(),
            python::tail(&check.stderr)
        )));
    }
    Ok(DecoderCommand {
        display: format!("{} {}", python.display(), script.display()),
        argv: vec![python.into_os_string(), script.into_os_string()],
        env: Vec::new(),
    })
}

/// Writes an embedded adapter into `dir` unless it is there already with the same text. The
/// file is written aside and renamed, so a concurrent run never sees half a script.
pub fn write_adapter(dir: &Path, name: &str, text: &str) -> Result<PathBuf, SetupError> {
    let path = dir.join(name);
    if fs::read_to_string(&path).is_ok_and(|t| t == text) {
        return Ok(path);
    }
    let aside = dir.join(format!(".{name}.{}", std::process::id()));
    fs::write(&aside, text)
        .and_then(|()| fs::rename(&aside, &path))
        .map_err(|e| SetupError::new(format!("cannot write the adapter {}: {e}", path.display())))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_names_and_commands() {
        assert!(matches!(resolve("reference", None, None), Ok(Dut::Reference)));
        let Ok(Dut::Command { name, version, command }) = resolve("python3 my_adapter.py --fast", None, None) else {
            panic!("a command")
        };
        assert_eq!(name, "python3 my_adapter.py --fast");
        assert_eq!(version, None);
        assert_eq!(command.argv, ["sh", "-c", "python3 my_adapter.py --fast"]);
        assert!(resolve("  ", None, None).unwrap_err().to_string().contains("dsmr_parser"));
        let e = resolve("dsmr5", None, Some(Path::new("/src"))).unwrap_err().to_string();
        assert!(e.contains("--source /src applies to") && e.contains("--dut esphome"), "{e}");
    }

    #[test]
    fn adapters_are_written_once_and_the_pin_matches() {
        let dir = std::env::temp_dir().join(format!("p1sim-dut-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let a = write_adapter(&dir, "a.py", "print(1)\n").unwrap();
        assert_eq!(fs::read_to_string(&a).unwrap(), "print(1)\n");
        let b = write_adapter(&dir, "a.py", "print(2)\n").unwrap();
        assert_eq!(fs::read_to_string(&b).unwrap(), "print(2)\n");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 1, "nothing left aside");
        let _ = fs::remove_dir_all(&dir);
        // The adapter's docstring names the release it was written against.
        assert!(DSMR_PARSER_PY.contains(&format!("dsmr-parser=={DSMR_PARSER_VERSION}")));
    }
}
