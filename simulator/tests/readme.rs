//! The README as a newcomer follows it: every command of the job recipes runs as written, the
//! profile example fails with the error the README shows, and the lists it gives are complete.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use support::temp_dir;

fn readme() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md")).unwrap()
}

fn repo() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The shell commands in the ```sh blocks between the recipe markers, comments removed.
fn recipe_commands(text: &str) -> Vec<String> {
    let start = text.find("<!-- recipes").expect("the recipe markers");
    let end = text.find("<!-- /recipes -->").expect("the end marker");
    let mut commands = Vec::new();
    let mut in_block = false;
    for line in text[start..end].lines() {
        match line.trim() {
            "```sh" => in_block = true,
            "```" => in_block = false,
            l if in_block && !l.is_empty() => {
                commands.push(l.split(" #").next().unwrap().trim().to_string());
            }
            _ => {}
        }
    }
    commands
}

/// Runs a README command with the built `p1sim` in place of the one on PATH, from the
/// repository root. A command that serves until stopped (`p1sim run`) passes when it prints its
/// banner; the others must exit as the README says (a FAIL verdict exits 1 by design).
fn run_as_written(command: &str) -> Result<(), String> {
    let words: Vec<&str> = command.split_whitespace().map(|w| w.trim_matches('\'')).collect();
    assert_eq!(words[0], "p1sim", "{command}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_p1sim"))
        .args(&words[1..])
        .current_dir(repo())
        .env("P1SIM", env!("CARGO_BIN_EXE_p1sim"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{command}: {e}"))?;
    if words[1] == "run" {
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let started =
            std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(20)).ok()).any(|l| l.starts_with("Ctrl-C stops"));
        // Stopped as Ctrl-C stops it, so it removes its PTY link.
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        support::wait_bounded(&mut child, Duration::from_secs(10));
        let out = child.wait_with_output().unwrap();
        return if started {
            Ok(())
        } else {
            Err(format!("{command}: no start banner; stderr:\n{}", String::from_utf8_lossy(&out.stderr)))
        };
    }
    let out = child.wait_with_output().unwrap();
    // A FAIL verdict, and the doctor's finding on a garbage capture, exit 1 by design.
    let expected_failure = command.contains("direct-no-inverter") || command.contains("garbage");
    match (out.status.code(), expected_failure) {
        (Some(0), false) | (Some(1), true) => Ok(()),
        (code, _) => Err(format!(
            "{command}: exit {code:?}; stdout:\n{}\nstderr:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )),
    }
}

#[test]
fn every_recipe_command_runs_as_written() {
    let commands = recipe_commands(&readme());
    assert!(commands.len() >= 5, "three jobs with their commands: {commands:?}");
    let failed: Vec<String> = commands.iter().filter_map(|c| run_as_written(c).err()).collect();
    assert!(failed.is_empty(), "{}", failed.join("\n\n"));
}

#[test]
fn the_profile_example_fails_with_the_error_the_readme_shows() {
    let text = readme();
    let section = &text[text.find("### Writing a profile").unwrap()..];
    let block = &section[section.find("```toml\n").unwrap() + 8..];
    let example = &block[..block.find("```").unwrap()];
    let shown = section
        .lines()
        .find(|l| l.starts_with("p1sim: error: my-meter.toml:"))
        .expect("the README shows the error")
        .to_string();
    let dir = temp_dir("readme-profile");
    std::fs::write(dir.join("my-meter.toml"), example).unwrap();
    let good = Command::new(env!("CARGO_BIN_EXE_p1sim"))
        .args(["emit", "--profile", "my-meter.toml", "--count", "1"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(good.status.success(), "the example as shown works: {}", String::from_utf8_lossy(&good.stderr));
    std::fs::write(dir.join("my-meter.toml"), example.replacen("format = \"6.3\"", "format = \"6.x\"", 1)).unwrap();
    let bad = Command::new(env!("CARGO_BIN_EXE_p1sim"))
        .args(["emit", "--profile", "my-meter.toml", "--count", "1"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&bad.stderr).trim(), shown);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_shipped_scenario_is_listed() {
    let text = readme();
    let mut missing = Vec::new();
    for entry in std::fs::read_dir(repo().join("profiles/scenarios")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if !text.contains(&format!("`{name}`")) {
            missing.push(name);
        }
    }
    assert!(missing.is_empty(), "scenarios the README does not list: {missing:?}");
}
