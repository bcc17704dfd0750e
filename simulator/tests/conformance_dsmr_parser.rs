//! `p1sim conformance --dut dsmr_parser` end to end: the runner sets up dsmr_parser 1.11.2 from
//! PyPI (the virtualenv under target/py the interop tests share), and the embedded adapter
//! reports what dsmr_parser accepts over every transport and in the persistent mode: clean
//! telegrams pass with their values, a wrong CRC is rejected, and a lowercase CRC, which
//! dsmr_parser's framing regex refuses, fails the case that expects it to be accepted.

mod support;

use std::path::Path;
use std::process::Output;

use support::p1sim;

fn conformance(args: &[&str]) -> Output {
    p1sim()
        .arg("conformance")
        .arg("--dut")
        .arg("dsmr_parser")
        .args(args)
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap())
        .output()
        .expect("p1sim starts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn dsmr_parser_decodes_clean_telegrams_of_every_generation_over_every_transport() {
    for mode in [&["--transport", "stdin"][..], &["--transport", "pty"], &["--transport", "tcp"], &["--persistent"]] {
        // The first seed of every profile: DSMR 2.2 to 5, Belgian, Swedish, Smarty, the EasyMeter,
        // Hungarian, Austrian and Iskra IE dialects. dsmr_parser waits in vain for the `!` of
        // the Iskra MT382 that sends none, and reads everything else.
        let mut args = vec!["--filter", "*/clean/s1"];
        args.extend_from_slice(mode);
        let out = conformance(&args);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{mode:?}:\n{stdout}\n{}", text(&out.stderr));
        assert!(stdout.contains("dsmr_parser 1.11.2"), "{stdout}");
        assert!(stdout.contains("25/26  1 failed"), "{mode:?}: {stdout}");
        let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
        assert_eq!(failed, ["FAIL legacy-dsmr2/iskra-mt382-no-end-marker/clean/s1"], "{mode:?}: {stdout}");
    }
}

#[test]
fn dsmr_parser_rejects_wrong_crcs_and_refuses_lowercase_ones() {
    let out = conformance(&["--filter", "crc-check/iskra-am550/"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    let out = conformance(&["--filter", "crc-format/iskra-am550/lowercase-crc/s1"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("[lowercase-crc: CRC in lowercase hex]: expected it, but the decoder skipped it"),
        "{stdout}"
    );
}
