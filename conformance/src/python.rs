//! Python virtualenvs with one pinned PyPI package, for decoders written in Python (dsmr_parser):
//! built once under a cache directory and reused, with a file lock so that concurrent runs and
//! test processes wait for the first build instead of building twice.
//!
//! The cache is `target/py` when p1sim runs inside its cargo workspace (shared by every
//! `CARGO_TARGET_DIR`), else `~/.cache/p1sim/py`; `P1SIM_PY_CACHE` overrides both. The
//! interpreter is `python3` from `PATH`, or `P1SIM_PYTHON`.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use crate::SetupError;

/// The directory virtualenvs are kept in (see the module docs).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("P1SIM_PY_CACHE").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    cache_root().join("py")
}

/// Where p1sim keeps what it builds for decoders under test: `target/` inside the p1sim
/// workspace, else `~/.cache/p1sim`.
pub fn cache_root() -> PathBuf {
    let from_cwd = std::env::current_dir().ok().and_then(|d| workspace_root(&d));
    let from_exe = || std::env::current_exe().ok().and_then(|e| workspace_root(&e));
    if let Some(root) = from_cwd.or_else(from_exe) {
        return root.join("target");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    cache.join("p1sim")
}

/// The p1sim workspace containing `start`, recognised by its conformance crate's manifest.
pub fn workspace_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find_map(|d| {
        let manifest = fs::read_to_string(d.join("conformance").join("Cargo.toml")).ok()?;
        (d.join("Cargo.toml").is_file() && manifest.contains("name = \"p1sim-conformance\"")).then(|| d.to_path_buf())
    })
}

/// The interpreter that creates virtualenvs.
fn base_python() -> String {
    std::env::var("P1SIM_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into())
}

/// A virtualenv `ROOT/NAME-VERSION` with `NAME==VERSION` installed from PyPI; returns its
/// interpreter. Idempotent: a finished venv carries a `.p1sim-ready` marker and is reused as is.
pub fn venv_with(root: &Path, package: &str, version: &str) -> Result<PathBuf, SetupError> {
    venv_from(&base_python(), root, package, version)
}

fn venv_from(base: &str, root: &Path, package: &str, version: &str) -> Result<PathBuf, SetupError> {
    fs::create_dir_all(root)
        .map_err(|e| SetupError::new(format!("cannot create the Python cache directory {}: {e}", root.display())))?;
    let venv = root.join(format!("{package}-{version}"));
    // A virtualenv keeps its interpreter in bin/ on Unix and in Scripts\ on Windows.
    let python = if cfg!(windows) { venv.join("Scripts").join("python.exe") } else { venv.join("bin").join("python") };
    let ready = venv.join(".p1sim-ready");
    let lock_path = root.join(format!(".{package}-{version}.lock"));
    let lock = File::create(&lock_path)
        .map_err(|e| SetupError::new(format!("cannot create the lock file {}: {e}", lock_path.display())))?;
    // Held until `lock` is dropped at the end of this function, or the process dies.
    lock.lock().map_err(|e| SetupError::new(format!("cannot lock {}: {e}", lock_path.display())))?;
    if ready.exists() && python.exists() {
        return Ok(python);
    }
    let _ = fs::remove_dir_all(&venv);
    let out = run(Command::new(base).args(["-m", "venv"]).arg(&venv)).map_err(|e| {
        SetupError::new(format!(
            "cannot run `{base}` ({e}): install Python 3 with its venv module (Debian/Ubuntu: \
             `apt-get install python3 python3-venv`), or point P1SIM_PYTHON at an interpreter"
        ))
    })?;
    if !out.status.success() {
        return Err(SetupError::new(format!(
            "`{base} -m venv {}` failed: {}; on Debian/Ubuntu install the venv module with \
             `apt-get install python3-venv`",
            venv.display(),
            tail(&out.stderr)
        )));
    }
    let spec = format!("{package}=={version}");
    let out = run(Command::new(&python).args([
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-input",
        &spec,
    ]))
    .map_err(|e| SetupError::new(format!("cannot run {} -m pip: {e}", python.display())))?;
    if !out.status.success() {
        return Err(SetupError::new(format!(
            "pip could not install {spec} into {}: {}; PyPI must be reachable (or set PIP_INDEX_URL \
             to a mirror)",
            venv.display(),
            tail(&out.stderr)
        )));
    }
    fs::write(&ready, b"").map_err(|e| SetupError::new(format!("cannot write {}: {e}", ready.display())))?;
    Ok(python)
}

fn run(cmd: &mut Command) -> std::io::Result<Output> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).output()
}

/// The last lines of a tool's error output, for messages.
pub(crate) fn tail(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let start = lines.len().saturating_sub(6);
    let joined = lines[start..].join(" | ");
    if joined.is_empty() { "no error output".into() } else { joined }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workspace_is_found_from_any_directory_inside_it() {
        let here = Path::new(env!("CARGO_MANIFEST_DIR"));
        let root = here.parent().unwrap();
        assert_eq!(workspace_root(&here.join("src")).as_deref(), Some(root));
        assert_eq!(workspace_root(root).as_deref(), Some(root));
        assert_eq!(workspace_root(Path::new("/")), None);
    }

    #[test]
    fn a_missing_interpreter_is_a_setup_error_that_says_what_to_install() {
        let dir = std::env::temp_dir().join(format!("p1sim-py-missing-{}", std::process::id()));
        let err = venv_from("p1sim-no-such-python-3", &dir, "dsmr-parser", "1.11.2").unwrap_err();
        assert!(err.to_string().contains("apt-get install python3 python3-venv"), "{err}");
        assert!(!dir.join("dsmr-parser-1.11.2").join(".p1sim-ready").exists());
        assert_eq!(tail(b"\nfirst\n\nsecond\n"), "first | second");
        let _ = fs::remove_dir_all(dir);
    }
}
