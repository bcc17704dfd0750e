//! Linker setup for the RP2040, and for the `standalone` (pocket-meter) build the profile it
//! sends, loaded here on the host with the core's `std` feature and stored as postcard bytes.
//!
//! `memory.x` is copied into OUT_DIR and that directory put on the linker search path, because
//! in a workspace the linker runs from the workspace root, not this crate's directory.
//! `link-rp.x` (from embassy-rp) places the second-stage bootloader at the start of flash.
//!
//! Pocket-meter settings, read from the environment at build time (`cargo xtask firmware
//! --profile NAME` sets them):
//! - `P1SIM_PROFILE`: a built-in profile name or a path to a profile TOML (default
//!   `iskra-am550`);
//! - `P1SIM_SEED`: the household seed (default 1);
//! - `P1SIM_KEY`: the 32-hex-digit key, required for encrypting (Smarty) profiles.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rustc-link-arg-bins=--nmagic");
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    println!("cargo:rustc-link-arg-bins=-Tlink-rp.x");

    for var in ["P1SIM_PROFILE", "P1SIM_SEED", "P1SIM_KEY"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    // A build script cannot return an error; this message is what cargo shows.
    if env::var_os("CARGO_FEATURE_STANDALONE").is_some()
        && let Err(e) = pocket_profile(&out)
    {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}

/// Writes `profile.bin` (postcard `Profile`), `seed.bin` (u64 LE) and `key.bin` (16 bytes or
/// empty) for the pocket meter.
fn pocket_profile(out: &std::path::Path) -> Result<(), String> {
    let name = env::var("P1SIM_PROFILE").unwrap_or_else(|_| "iskra-am550".into());
    if std::path::Path::new(&name).exists() {
        println!("cargo:rerun-if-changed={name}");
    }
    let profile = p1sim_core::builtin::lookup(&name).map_err(|e| {
        format!("P1SIM_PROFILE={name}: {e} (give a built-in profile name, see `p1sim profiles`, or a path to a profile TOML)")
    })?;
    let seed: u64 = match env::var("P1SIM_SEED") {
        Ok(s) => s.parse().map_err(|_| format!("P1SIM_SEED={s}: expected a whole number, e.g. 1"))?,
        Err(_) => 1,
    };
    let key: Vec<u8> = match env::var("P1SIM_KEY") {
        Ok(hex) => p1sim_core::smarty::parse_key(&hex)
            .ok_or_else(|| format!("P1SIM_KEY: expected the 16-byte key as 32 hex digits, got {hex:?}"))?
            .to_vec(),
        Err(_) if profile.is_encrypted() => {
            return Err(format!(
                "profile {name} encrypts its telegrams (Smarty): set P1SIM_KEY to the 32-hex-digit key (cargo xtask firmware --profile {name} --key HEX)"
            ));
        }
        Err(_) => Vec::new(),
    };
    let bytes = postcard::to_allocvec(&profile).map_err(|e| format!("cannot serialise profile {name}: {e}"))?;
    fs::write(out.join("profile.bin"), bytes).map_err(|e| e.to_string())?;
    fs::write(out.join("seed.bin"), seed.to_le_bytes()).map_err(|e| e.to_string())?;
    fs::write(out.join("key.bin"), key).map_err(|e| e.to_string())?;
    fs::write(out.join("profile_name.txt"), &profile.name).map_err(|e| e.to_string())?;
    Ok(())
}
