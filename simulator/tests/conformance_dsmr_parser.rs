//! `p1sim conformance --dut dsmr_parser` end to end: the runner sets up dsmr_parser 1.11.2 from
//! PyPI (the virtualenv under target/py the interop tests share), and the embedded adapter
//! reports what dsmr_parser's `parse()` returns over every transport and in the persistent mode:
//! clean telegrams pass with their values, a wrong CRC is rejected, and Swedish summer
//! timestamps, which dsmr_parser reads as Dutch summer time, fail the cases that check them.

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
        let total = stdout.lines().find(|l| l.starts_with("total ")).unwrap_or_default();
        assert!(total.contains(" 25/26 ") && total.contains("1 failed"), "{mode:?}: {stdout}");
        let failed: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL ")).collect();
        assert_eq!(failed, ["FAIL legacy-dsmr2/iskra-mt382-no-end-marker/clean/s1"], "{mode:?}: {stdout}");
    }
}

#[test]
fn dsmr_parser_rejects_wrong_crcs_and_misreads_swedish_summer_time() {
    let out = conformance(&["--filter", "crc-check/iskra-am550/"]);
    assert_eq!(out.status.code(), Some(0), "{}\n{}", text(&out.stdout), text(&out.stderr));
    // April in Sweden: standard time, `W`; dsmr_parser takes it as Amsterdam summer time.
    let out = conformance(&["--filter", "swedish/sagemcom-t211-se/clean/s5"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains(r#"0-0:1.0.0: value "260410171630W", got "2026-04-10T15:16:30+00:00""#), "{stdout}");
    assert!(stdout.contains("evidence: conformance/EVIDENCE.md#swedish-time"), "{stdout}");
}

#[test]
fn the_adapter_runs_by_its_path() {
    // The file is named so that Python imports the dsmr_parser package, not the adapter.
    let python = p1sim_conformance::python::venv_with(&p1sim_conformance::python::cache_dir(), "dsmr-parser", "1.11.2")
        .expect("the shared virtualenv");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let adapter = root.join("conformance/adapters/dsmr_parser_adapter.py");
    let case = p1sim_conformance::suite::cases().into_iter().find(|c| c.name == "clean/iskra-am550/clean/s1").unwrap();
    let mut child = std::process::Command::new(python)
        .arg(&adapter)
        .env("P1SIM_SPEC", "DSMR 5.0")
        .env("P1SIM_TRANSPORT", "stdin")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&case.input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reported = p1sim_conformance::schema::parse_output(&text(&out.stdout)).unwrap();
    assert!(p1sim_conformance::judge(&case, &reported).passed(), "{}", text(&out.stdout));
    // Named by meaning, with the channel from dsmr_parser's obis_id_code: the gas meter of the
    // Iskra AM550 sits on channel 2.
    assert!(reported[0].objects.iter().any(|o| o.obis == "0-2:24.2.1"), "{:?}", reported[0]);
}
