//! Repository rules that compilers and linters do not check.
//!
//! - every Rust source file opens with a `//!` line saying what it is for;
//! - no trailing whitespace in sources, profiles and docs;
//! - every profile and board model names the public facts it is based on (a comment header and
//!   `sources`); every plan and scenario opens with a comment saying what it is for;
//! - every meter profile has its section in docs/meters.md and its comment points there; every
//!   scenario's comment points at the field problem it reproduces in docs/quirks.md;
//! - no reference to a file or heading the repository does not have, and no citation of the
//!   private notes the project was started from ([`references`]).

mod references;

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
        let comment: String = text.lines().take_while(|l| l.starts_with('#')).collect::<Vec<_>>().join("\n");
        if dir == "scenarios" && !comment.contains("docs/quirks.md#") {
            problems.push(format!(
                "{}: the opening comment points at the field problem it reproduces (docs/quirks.md#...)",
                rel(&root, &file)
            ));
        }
    }
    problems.extend(meters_documented(&root));
    let tree = references::Tree::read(&root);
    problems.extend(references::check(&tree));
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("{} problem(s):\n  {}", problems.len(), problems.join("\n  ")))
    }
}

/// Every meter profile (`profiles/*.toml`) has a `` ### `name` `` section in docs/meters.md, and
/// its opening comment links there, so the facts behind it are one click away.
fn meters_documented(root: &Path) -> Vec<String> {
    let meters = fs::read_to_string(root.join("docs/meters.md")).unwrap_or_default();
    let mut problems = Vec::new();
    for file in files(&root.join("profiles"), &|p| p.extension().is_some_and(|e| e == "toml")) {
        if file.parent() != Some(&root.join("profiles")) {
            continue;
        }
        let Some(name) = file.file_stem().and_then(|s| s.to_str()) else { continue };
        if !meters.lines().any(|l| l == format!("### `{name}`")) {
            problems.push(format!("{}: docs/meters.md has no section \"### `{name}`\" for it", rel(root, &file)));
        }
        let text = fs::read_to_string(&file).unwrap_or_default();
        let link = format!("docs/meters.md#{name}");
        if !text.lines().take_while(|l| l.starts_with('#')).any(|l| l.contains(&link)) {
            problems.push(format!("{}: the opening comment links {link}", rel(root, &file)));
        }
    }
    problems
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
