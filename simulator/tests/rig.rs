//! `p1sim rig info` and `p1sim run --rig` as a user runs them, against the simulated rig of
//! `p1sim::rig::fake` speaking on the master side of a pseudo-terminal: the binary opens the
//! slave as it opens the Pico's /dev/ttyACM0. Missing and silent devices give errors that name
//! the device and the fix.

mod support;

use std::time::{Duration, Instant};

use p1sim::rig::fake::Behaviour;
use p1sim_core::decode::{Decoder, Event};
use support::rig_pty::{pty, rig_on_pty};
use support::{Running, p1sim, p1sim_fails, temp_dir};

#[test]
fn info_names_a_missing_device_and_the_fix() {
    let (code, err) = p1sim_fails(&["rig", "info", "/dev/p1sim-no-such-rig"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("/dev/p1sim-no-such-rig") && err.contains("no such device"), "{err}");
    assert!(err.contains("Is the Pico plugged in"), "{err}");
}

#[test]
fn info_shows_what_the_rig_reports() {
    let (fake, p) = rig_on_pty(Behaviour::default());
    let out = p1sim().args(["rig", "info"]).arg(&p.path).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("firmware      0.1.0-fake"), "{text}");
    assert!(text.contains("protocol      2 (this p1sim speaks 1 to 2)"), "{text}");
    assert!(text.contains("build         host-driven"), "{text}");
    assert!(text.contains("pins          data GP0, Request GP3, capture GP5, LED GP25"), "{text}");
    fake.seen(|s| assert_eq!((s.hellos, s.lines.len()), (1, 0), "info says Hello and changes nothing"));
}

#[test]
fn info_on_a_port_that_is_not_a_rig() {
    let p = pty();
    let path = p.path.to_string_lossy().into_owned();
    let (code, err) = p1sim_fails(&["rig", "info", &path]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains(&path) && err.contains("did not answer Hello") && err.contains("is it a p1sim rig"), "{err}");
    assert!(err.contains("cargo xtask firmware"), "{err}");
}

#[test]
fn run_streams_telegrams_through_the_rig_and_captures_the_board() {
    let (fake, p) = rig_on_pty(Behaviour { loopback: true, ..Behaviour::default() });
    let dir = temp_dir("rig-run");
    let capture = dir.join("board.bin");
    let slave = p.path.to_string_lossy().into_owned();
    let cap = capture.to_string_lossy().into_owned();
    let mut run = Running::start(&["--profile", "iskra-am550", "--speed", "10", "--rig", &slave, "--capture", &cap]);
    assert!(run.banner.iter().any(|l| l.contains(&format!("rig: {slave}"))), "{:?}", run.banner);
    let end = Instant::now() + Duration::from_secs(60);
    while fake.seen(|s| s.telegrams.len()) < 3 {
        assert!(Instant::now() < end, "the rig got {} telegrams", fake.seen(|s| s.telegrams.len()));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(run.signal("TERM").success());
    let err = run.stderr();
    assert!(err.contains("telegrams started") && err.contains("; 0 errors"), "{err}");
    // Every telegram the rig was given came back from the simulated board, and decodes.
    let sent: Vec<u8> = fake.seen(|s| s.telegrams.iter().flat_map(|(_, b)| b.clone()).collect());
    let board = std::fs::read(&capture).unwrap();
    assert!(sent.starts_with(&board) && board.len() >= 3 * 1000, "{} of {} bytes captured", board.len(), sent.len());
    let mut good = 0;
    Decoder::new().feed(&board, |e| {
        if let Event::Telegram(f) = e {
            good += usize::from(f.is_valid());
        }
    });
    assert!(good >= 3, "{good} valid telegrams in the capture");
    fake.seen(|s| assert!(s.chunks.iter().all(|c| c.len <= 512), "chunks of at most 512 bytes"));
    let _ = std::fs::remove_dir_all(&dir);
}
