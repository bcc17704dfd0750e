//! Reference rules: no file points at a document the repository does not have, and none cites
//! the private notes the project was started from.
//!
//! A reference is a relative link in Markdown (`[text](../docs/wiring.md#request-pin-2)`) or a
//! repository path written out anywhere else, in a comment, a string or prose
//! (`docs/quirks.md#lowercase-crc`, `profiles/scenarios/`). Each must name a file or directory
//! that exists, and an anchor must name a heading (or an `<a id>`) of the Markdown file it points
//! into. A path that follows another repository's name (`u9n/hanporten docs/svenska/...`) is that
//! repository's and is left alone.
//!
//! The private notes are the documents outside the repository the project was started from (a
//! fact sheet, a quirk list, firmware and style notes, and the documents it began with): users
//! do not have them, so their names, their section and quirk codes and their numbers must not
//! appear. The patterns below are assembled from pieces so that this file does not cite them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs;
use std::path::{Component, Path};
use std::sync::LazyLock;

use regex::Regex;

/// Text files the rules read, by extension (and `.ci/run`).
const TEXT: &[&str] =
    &["rs", "md", "toml", "txt", "py", "js", "mjs", "json", "html", "css", "sh", "yml", "yaml", "snap"];

/// The repository as the rules see it: every path that exists, and the text of the files read.
#[derive(Debug, Default)]
pub struct Tree {
    /// Files and directories, relative to the root, `/`-separated.
    exists: HashSet<String>,
    /// The text files to check, by relative path.
    texts: BTreeMap<String, String>,
}

impl Tree {
    /// Reads the repository under `root`, leaving out build output and dependencies.
    pub fn read(root: &Path) -> Tree {
        let mut tree = Tree::default();
        for path in super::files(root, &|_| true) {
            let Ok(rel) = path.strip_prefix(root) else { continue };
            let rel = rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/");
            tree.add_parents(&rel);
            // Read regular files only: a PTY link left by a run would block a read.
            let regular = fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
            if regular
                && is_text(&rel)
                && let Ok(text) = fs::read_to_string(&path)
            {
                tree.texts.insert(rel.clone(), text);
            }
            tree.exists.insert(rel);
        }
        tree
    }

    /// Records the directories above `rel` as existing.
    fn add_parents(&mut self, rel: &str) {
        let mut end = 0;
        while let Some(i) = rel[end..].find('/') {
            end += i;
            self.exists.insert(rel[..end].to_string());
            end += 1;
        }
    }

    /// A tree from in-memory files (for tests); their parent directories exist too.
    #[cfg(test)]
    pub fn from_files(files: &[(&str, &str)]) -> Tree {
        let mut tree = Tree::default();
        for (path, text) in files {
            tree.add_parents(path);
            tree.exists.insert(path.to_string());
            tree.texts.insert(path.to_string(), text.to_string());
        }
        tree
    }

    /// The text of a checked file, if it is one.
    pub fn text(&self, path: &str) -> Option<&str> {
        self.texts.get(path).map(String::as_str)
    }
}

fn is_text(rel: &str) -> bool {
    rel == ".ci/run" || Path::new(rel).extension().and_then(|e| e.to_str()).is_some_and(|e| TEXT.contains(&e))
}

/// Every broken or private reference in the tree, as `path:line: problem`.
pub fn check(tree: &Tree) -> Vec<String> {
    let mut anchors: HashMap<String, HashSet<String>> = HashMap::new();
    let mut problems = Vec::new();
    for (path, text) in &tree.texts {
        for (line, what) in private_references(text) {
            problems.push(format!(
                "{path}:{line}: cites {what}, which users do not have: write the public source (a spec \
                 section, an upstream issue or file) or link into docs/"
            ));
        }
        for r in file_references(path, text) {
            let Some(target) = r.target else {
                problems.push(format!("{path}:{}: `{}` points outside the repository", r.line, r.written));
                continue;
            };
            if !tree.exists.contains(&target) {
                problems.push(format!(
                    "{path}:{}: `{}` names {target}, which the repository does not have",
                    r.line, r.written
                ));
                continue;
            }
            let Some(anchor) = r.anchor else { continue };
            let Some(doc) = tree.text(&target).filter(|_| target.ends_with(".md")) else { continue };
            let known = anchors.entry(target.clone()).or_insert_with(|| headings(doc));
            if !known.contains(&anchor) {
                problems.push(format!("{path}:{}: `{}`: {target} has no heading #{anchor}", r.line, r.written));
            }
        }
    }
    problems
}

/// Names, codes and numbers of the private notes, each with the pattern that finds it.
static PRIVATE: LazyLock<Vec<(Regex, &'static str)>> = LazyLock::new(|| {
    [
        (concat!("(?i)dsmr", "-fac", "t[s]"), "the private DSMR fact sheet"),
        (concat!("(?i)peers", "-and-", "quirk[s]"), "the private quirk list"),
        (concat!("(?i)rig-firmware", "-not", "e[s]"), "the private rig firmware notes"),
        (concat!("(?i)engineering", "-sty", "l[e]"), "the private style notes"),
        (concat!("/wo", "rk/sha", "re[d]"), "the lead's directory of notes"),
        (r"\b[0-9]{3}_[0-9a-f]{16}\.tx[t]", "a starting document by file name"),
        (concat!("(?i)\\bse", "eds? 0[0-9]{2}\\b"), "a starting document by number"),
        (r"(?i)\bquirks? Q[0-9]{1,2}\b", "a private quirk code"),
        (
            r"\((?:[ABE][0-9]{1,2}|Q[0-9]{1,2})(?:, ?(?:[ABE][0-9]{1,2}|Q[0-9]{1,2}))*\)",
            "a private section or quirk code",
        ),
        (r"\bSPEC(?:50|422|404|407|30)\b", "a private source key"),
        (r"\bSE-H[1]\b", "a private source key"),
        (r"\b[Ss]ections? [A-E](?:[0-9]{1,2})?\b", "a section of the private fact sheet"),
        (r"\b(?:profile sheet|gap) [A-E][0-9]", "a section of the private fact sheet"),
    ]
    .into_iter()
    .map(|(re, what)| (Regex::new(re).expect("a valid pattern"), what))
    .collect()
});

/// `(line, what)` for each private reference in `text`.
pub fn private_references(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        for (re, what) in PRIVATE.iter() {
            if let Some(m) = re.find(line) {
                found.push((i + 1, format!("`{}` ({what})", m.as_str())));
            }
        }
    }
    found
}

/// One reference to a path in the repository.
#[derive(Debug, PartialEq)]
pub struct Reference {
    pub line: usize,
    /// As written.
    pub written: String,
    /// Relative to the root, `/`-separated; `None` when it climbs out of the repository.
    pub target: Option<String>,
    pub anchor: Option<String>,
}

/// A Markdown link or image target, or a reference definition's.
static LINK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)|^\s*\[[^\]]+\]:\s*(\S+)"#).unwrap());

/// A repository path written out: a top-level directory of the repository, then the rest.
static BARE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"((?:\.\./)*)((?:docs|profiles)/(?:[A-Za-z0-9_.\-/]*[A-Za-z0-9_/\-])?)(#[A-Za-z0-9_\-]+)?").unwrap()
});

/// Another repository's name, `owner/repo`, whose own paths may follow.
static OTHER_REPO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9][A-Za-z0-9\-]*/[A-Za-z0-9_.\-]+$").unwrap());

/// Inline code spans, which hold paths but no links.
static CODE_SPAN: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"`[^`]*`").unwrap());

/// Every reference to a repository path in `text`, the file at `path`.
pub fn file_references(path: &str, text: &str) -> Vec<Reference> {
    let markdown = path.ends_with(".md");
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    let mut refs = Vec::new();
    let mut fenced = false;
    let mut last_line = "";
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let previous_line = std::mem::replace(&mut last_line, line);
        if markdown && line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        let mut plain = std::borrow::Cow::Borrowed(line);
        if markdown && !fenced {
            // Link targets are checked here, and left out of the search for written-out paths.
            plain = LINK.replace_all(line, "]()");
            let prose = CODE_SPAN.replace_all(line, "");
            for c in LINK.captures_iter(&prose) {
                let written = c.get(1).or_else(|| c.get(2)).map_or("", |m| m.as_str());
                if written.contains("://") || written.starts_with("mailto:") {
                    continue;
                }
                let (file, anchor) = match written.split_once('#') {
                    Some((f, a)) => (f, Some(a.to_string())),
                    None => (written, None),
                };
                let target = if file.is_empty() { Some(path.to_string()) } else { resolve(dir, file) };
                refs.push(Reference { line: n, written: written.to_string(), target, anchor });
            }
        }
        for c in BARE.captures_iter(&plain) {
            let whole = c.get(0).expect("a match");
            let before = &plain[..whole.start()];
            // Part of a longer path or word (`src/docs/`, `my-profiles/`), or a URL.
            if before.ends_with(|ch: char| ch.is_ascii_alphanumeric() || "_-./:".contains(ch)) {
                continue;
            }
            // Another repository's path: `u9n/hanporten docs/...`, maybe across a line break.
            let quote = |ch: char| ch.is_whitespace() || "`'\"(#/".contains(ch);
            let mut previous = before.trim_end_matches(quote);
            if previous.is_empty() {
                previous = previous_line.trim_end_matches(quote);
            }
            let word = previous.rsplit(|ch: char| ch.is_whitespace() || "`'\"(".contains(ch)).next().unwrap_or("");
            if OTHER_REPO.is_match(word) && !word.starts_with("docs/") && !word.starts_with("profiles/") {
                continue;
            }
            // A written-out path starts at the root, where `../../profiles/iskra-am550.toml` in a crate
            // climbs to.
            let target = Some(c[2].trim_end_matches('/').to_string());
            let anchor = c.get(3).map(|m| m.as_str()[1..].to_string());
            refs.push(Reference { line: n, written: whole.as_str().to_string(), target, anchor });
        }
    }
    refs
}

/// `file` relative to `dir`, both relative to the root; `None` if it climbs out.
fn resolve(dir: &str, file: &str) -> Option<String> {
    let mut parts: Vec<&str> =
        if file.starts_with('/') { Vec::new() } else { dir.split('/').filter(|p| !p.is_empty()).collect() };
    for c in Path::new(file.trim_start_matches('/')).components() {
        match c {
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::Normal(p) => parts.push(p.to_str()?),
            _ => {}
        }
    }
    Some(parts.join("/"))
}

/// The anchors of a Markdown document: its headings as GitHub slugs them (duplicates get `-1`,
/// `-2`, ...), and explicit `<a id="...">` or `<a name="...">`.
pub fn headings(doc: &str) -> HashSet<String> {
    static EXPLICIT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r#"<a\s+(?:id|name)="([^"]+)""#).unwrap());
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut anchors = HashSet::new();
    let mut fenced = false;
    for line in doc.lines() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            continue;
        }
        if fenced {
            continue;
        }
        for c in EXPLICIT.captures_iter(line) {
            anchors.insert(c[1].to_string());
        }
        let hashes = line.len() - line.trim_start_matches('#').len();
        if (1..=6).contains(&hashes) && line[hashes..].starts_with(' ') {
            let base = slug(&line[hashes..]);
            let count = seen.entry(base.clone()).or_insert(0);
            anchors.insert(if *count == 0 { base } else { format!("{base}-{count}") });
            *count += 1;
        }
    }
    anchors
}

/// GitHub's anchor for a heading: the text of its links, lowercased, without punctuation other
/// than `-` and `_`, spaces turned into `-`.
pub fn slug(heading: &str) -> String {
    static LINK_TEXT: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\[([^\]]*)\]\([^)]*\)").unwrap());
    let text = LINK_TEXT.replace_all(heading.trim(), "$1");
    text.to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == '-' || *c == '_' || *c == ' ')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(files: &[(&str, &str)]) -> Vec<String> {
        check(&Tree::from_files(files))
    }

    #[test]
    fn headings_slug_as_github_does() {
        assert_eq!(slug(" Request (pin 2)"), "request-pin-2");
        assert_eq!(slug(" +5 V supply (pin 1)"), "5-v-supply-pin-1");
        assert_eq!(slug(" `iskra-am550`"), "iskra-am550");
        assert_eq!(slug(" Sweden: HAN port"), "sweden-han-port");
        assert_eq!(slug(" 7E1 read as 8N1"), "7e1-read-as-8n1");
        assert_eq!(slug(" See [the wiring](wiring.md)"), "see-the-wiring");
        let doc = "# T\n## Same\n## Same\n```\n## Not a heading\n```\n<a id=\"x-y\"></a>\n";
        let got = headings(doc);
        for a in ["t", "same", "same-1", "x-y"] {
            assert!(got.contains(a), "{a} in {got:?}");
        }
        assert!(!got.contains("not-a-heading"));
    }

    // The link tests use a `guide/` directory: sample paths under docs/ or profiles/ in this file
    // would be checked against the real repository.
    #[test]
    fn a_link_to_a_missing_file_or_heading_is_named_with_its_line() {
        let readme = "# R\n\nSee [wiring](guide/wiring.md#request-pin-2) and [gone](guide/gone.md).\n\
                      [bad anchor](guide/wiring.md#pin-7) [up](../outside.md) [web](https://x.org/a.md)\n";
        let wiring = "# Wiring\n## Request (pin 2)\n";
        let got = problems(&[("README.md", readme), ("guide/wiring.md", wiring)]);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0].starts_with("README.md:3: `guide/gone.md` names guide/gone.md"), "{got:#?}");
        assert!(
            got[1].starts_with("README.md:4: `guide/wiring.md#pin-7`: guide/wiring.md has no heading #pin-7"),
            "{got:#?}"
        );
        assert!(got[2].starts_with("README.md:4: `../outside.md` points outside"), "{got:#?}");
    }

    #[test]
    fn links_resolve_from_their_own_directory() {
        let got = problems(&[
            ("rig-firmware/README.md", "[w](../guide/wiring.md) [self](#top)\n# Top\n"),
            ("guide/wiring.md", "# W\n"),
        ]);
        assert!(got.is_empty(), "{got:#?}");
        let got = problems(&[("guide/a.md", "[b](b.md) [c](#nowhere)\n")]);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].contains("names guide/b.md"), "{got:#?}");
        assert!(got[1].contains("guide/a.md has no heading #nowhere"), "{got:#?}");
    }

    #[test]
    fn paths_in_code_comments_and_strings_must_exist() {
        let code = concat!(
            "// See docs/quirks.md#lowercase-crc and docs/quirks.md#",
            "nope.\n",
            "const P: &str = \"profiles/scenarios/\"; // and profiles/",
            "gone.toml\n",
            "let p = root.join(\"../../profiles/iskra-am550.toml\");\n",
            "// u9n/hanporten `docs/svenska/protokollet.md` is another repository's, ./profiles/mine.toml\n",
            "// the user's, and so is my-docs/x.md; a line break may fall after u9n/hanporten\n",
            "// docs/",
            "svenska/protokollet.md\n",
        );
        let got = problems(&[
            ("simulator/src/x.rs", code),
            ("docs/quirks.md", "# Q\n## Lowercase CRC\n"),
            ("profiles/scenarios/lf-only.toml", "# x\n"),
            ("profiles/iskra-am550.toml", "# x\n"),
        ]);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].starts_with("simulator/src/x.rs:1:") && got[0].contains("#nope"), "{got:#?}");
        assert!(
            got[1].starts_with("simulator/src/x.rs:2:") && got[1].contains(concat!("profiles/", "gone.toml")),
            "{got:#?}"
        );
    }

    #[test]
    fn fenced_code_holds_no_links_but_its_paths_count() {
        let md = concat!("```sh\n[x](nowhere.md)\np1sim emit -o docs/", "gone.md\n```\n");
        let got = problems(&[("README.md", md)]);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(got[0].starts_with("README.md:3:"), "{got:#?}");
    }

    #[test]
    fn private_notes_and_their_numbers_are_refused() {
        let cases = [
            concat!("// dsmr-", "facts.md A11: the line idles low"),
            concat!("\"peers-", "and-", "quirks.md Q1: gas not on channel 1\""),
            concat!("# the failed cable of se", "ed ", "002"),
            concat!("# a telegram in 004_8d51b494003fb61a", ".txt"),
            concat!("seen: \"buffer bugs (Q", "17)\""),
            concat!("(A", "11, Q18)"),
            concat!("// quirk ", "Q6"),
            concat!("as SPEC", "50 §5.7.1 has it"),
            concat!("Swedish HAN (SE-", "H1)"),
            concat!("in section ", "D and profile sheet B", "7"),
            concat!("see rig-firmware-", "notes.md §2.2"),
        ];
        for text in cases {
            let got = private_references(text);
            assert!(!got.is_empty(), "not refused: {text}");
            assert_eq!(got[0].0, 1);
        }
        let got = problems(&[("guide/x.toml", concat!("# ok\n# (Q", "17)\n"))]);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(got[0].starts_with("guide/x.toml:2: cites"), "{got:#?}");
    }

    #[test]
    fn public_sources_and_quadrants_pass() {
        for text in [
            "DSMR P1 Companion Standard 5.0.2 §5.7.1",
            "ndokter/dsmr_parser#91, PR #173",
            "reactive energy per quadrant Q1-Q4; import inductive is Q1",
            "--seed 2, seed 0 sends the profile's ids",
            "the D0 dialect, B/W picture, (0-0:96.7.19)",
        ] {
            assert!(private_references(text).is_empty(), "refused: {text}");
        }
    }

    #[test]
    fn the_conformance_suite_is_checked_like_everything_else() {
        let got = problems(&[("conformance/src/x.rs", concat!("// quirk ", "Q6, docs/", "gone.md\n"))]);
        assert_eq!(got.len(), 2, "a private code and a missing file: {got:#?}");
    }
}
