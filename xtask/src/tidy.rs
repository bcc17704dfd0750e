//! Repository rules that compilers and linters do not check.
//!
//! - every Rust source file opens with a `//!` line saying what it is for;
//! - no trailing whitespace in sources, profiles and docs;
//! - every profile and board model names the public facts it is based on (a comment header and
//!   `sources`); every plan and scenario opens with a comment saying what it is for.

use std::fs;
use std::path::{Path, PathBuf};

use crate::root;

pub fn check() -> Result<(), String> {
    let root = root();
    let mut problems = Vec::new();
    let skip = |p: &Path| {
        p.components().any(|c| {
            let c = c.as_os_str();
            c == "target" || c == "node_modules" || c == ".git" || c == "snapshots"
        })
    };
    for file in files(&root, &|p| !skip(p) && p.extension().is_some_and(|e| e == "rs")) {
        let text = fs::read_to_string(&file).unwrap_or_default();
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        let is_test = file.components().any(|c| c.as_os_str() == "tests" || c.as_os_str() == "benches");
        if !first.starts_with("//!") && !is_test {
            problems.push(format!("{}: the file must open with a `//!` line saying what it is for", rel(&root, &file)));
        }
        trailing_whitespace(&root, &file, &text, &mut problems);
    }
    for file in files(&root, &|p| {
        !skip(p) && p.extension().is_some_and(|e| e == "toml" || e == "md" || e == "py" || e == "js" || e == "mjs")
    }) {
        let text = fs::read_to_string(&file).unwrap_or_default();
        trailing_whitespace(&root, &file, &text, &mut problems);
    }
    for file in files(&root.join("profiles"), &|p| p.extension().is_some_and(|e| e == "toml")) {
        let text = fs::read_to_string(&file).unwrap_or_default();
        if !text.starts_with('#') {
            problems.push(format!(
                "{}: opens with a comment saying what it is (a meter, a board, a plan, a field problem) and what \
                 it is based on",
                rel(&root, &file)
            ));
        }
        let dir = file.parent().and_then(|d| d.file_name()).and_then(|d| d.to_str()).unwrap_or("");
        if !matches!(dir, "scenarios" | "plans") && !text.contains("sources = [") {
            problems.push(format!("{}: lists the public facts it is built from in `sources`", rel(&root, &file)));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{} problem(s):\n  {}", problems.len(), problems.join("\n  ")))
    }
}

fn trailing_whitespace(root: &Path, file: &Path, text: &str, problems: &mut Vec<String>) {
    for (i, line) in text.lines().enumerate() {
        if line.ends_with(' ') || line.ends_with('\t') {
            problems.push(format!("{}:{}: trailing whitespace", rel(root, file), i + 1));
        }
    }
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap_or(p).display().to_string()
}

/// Every file under `dir` accepted by `keep`, sorted.
pub fn files(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else { continue };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name();
            if p.is_dir() {
                if name != "target" && name != ".git" && name != "node_modules" {
                    stack.push(p);
                }
            } else if keep(&p) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}
