//! Embeds every `profiles/*.toml`, `profiles/scenarios/*.toml` and `profiles/boards/*.toml` of
//! the repository into the crate (see `src/builtin.rs`).

use std::fs;
use std::path::Path;

fn main() {
    let profiles = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles");
    embed(&profiles, "builtin_profiles.rs");
    embed(&profiles.join("scenarios"), "builtin_scenarios.rs");
    embed(&profiles.join("boards"), "builtin_boards.rs");
}

/// Writes `&[(name, include_str!(path)), ...]` for every TOML file in `dir`, sorted by name.
fn embed(dir: &Path, out_name: &str) {
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut entries: Vec<(String, String)> = Vec::new();
    if let Ok(read) = fs::read_dir(dir) {
        for e in read.flatten() {
            let path = e.path();
            if path.extension().is_some_and(|x| x == "toml") {
                println!("cargo:rerun-if-changed={}", path.display());
                let name = path.file_stem().unwrap().to_string_lossy().into_owned();
                entries.push((name, path.canonicalize().unwrap().display().to_string()));
            }
        }
    }
    entries.sort();
    let mut out = String::from("&[\n");
    for (name, path) in entries {
        out.push_str(&format!("    ({name:?}, include_str!({path:?})),\n"));
    }
    out.push(']');
    let out_dir = std::env::var("OUT_DIR").unwrap();
    fs::write(Path::new(&out_dir).join(out_name), out).unwrap();
}
