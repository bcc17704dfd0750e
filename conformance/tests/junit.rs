//! The JUnit report has the shape Jenkins and GitLab read: a `<testsuites>` root, one
//! `<testsuite>` per quirk class with `name`, `tests` and `failures` attributes that add up, one
//! `<testcase>` per case with `name` and `classname`, and a `<failure>` with a message and the
//! problems inside each failing case. Checked by parsing the XML, not by comparing strings.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use p1sim_conformance::dut;
use p1sim_conformance::report::{self, RunInfo};
use p1sim_conformance::runner::{self, Options};
use p1sim_conformance::suite;
use quick_xml::events::{BytesStart, Event};

#[derive(Debug, Default)]
struct Node {
    name: String,
    attrs: BTreeMap<String, String>,
    children: Vec<Node>,
    text: String,
}

impl Node {
    fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    fn attr(&self, key: &str) -> &str {
        self.attrs.get(key).unwrap_or_else(|| panic!("<{}> has no {key}: {:?}", self.name, self.attrs))
    }

    fn number(&self, key: &str) -> usize {
        self.attr(key).parse().unwrap_or_else(|_| panic!("<{} {key}> is not a count", self.name))
    }
}

fn element(e: &BytesStart<'_>) -> Node {
    let mut n = Node { name: String::from_utf8_lossy(e.name().as_ref()).into_owned(), ..Node::default() };
    for a in e.attributes() {
        let a = a.expect("well-formed attributes");
        n.attrs.insert(
            String::from_utf8_lossy(a.key.as_ref()).into_owned(),
            a.normalized_value(quick_xml::XmlVersion::Explicit1_0).unwrap().into_owned(),
        );
    }
    n
}

/// A small DOM from quick-xml's events; panics on XML that is not well formed.
fn parse(xml: &str) -> Node {
    let mut reader = quick_xml::Reader::from_str(xml);
    let mut stack = vec![Node::default()];
    loop {
        match reader.read_event().expect("well-formed XML") {
            Event::Start(e) => stack.push(element(&e)),
            Event::Empty(e) => stack.last_mut().unwrap().children.push(element(&e)),
            Event::End(_) => {
                let done = stack.pop().unwrap();
                stack.last_mut().expect("balanced tags").children.push(done);
            }
            Event::Text(t) => stack.last_mut().unwrap().text.push_str(&String::from_utf8_lossy(&t)),
            Event::CData(t) => stack.last_mut().unwrap().text.push_str(&String::from_utf8_lossy(&t)),
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(stack.len(), 1, "unclosed elements");
    stack.pop().unwrap()
}

#[test]
fn junit_has_the_shape_ci_systems_read() {
    // A decoder that wants four CRC digits: the crc-format class fails some cases, crc-check
    // passes all of them, so the report carries passing and failing suites.
    let cases = runner::select(suite::cases(), Some("crc-"), None);
    let exe = env!("CARGO_BIN_EXE_p1sim-broken-decoder");
    let dut = dut::resolve(&format!("'{exe}' padded-crc-only"), None, None).unwrap();
    let opts = Options { timeout: Duration::from_secs(60), ..Options::default() };
    let results = runner::run(&cases, &dut, &opts, &AtomicBool::new(false), &|_| {}).unwrap();
    let failed = results.iter().filter(|r| !r.passed()).count();
    assert!(failed > 0 && failed < results.len(), "{failed} of {} failed", results.len());
    let info = RunInfo {
        dut: dut.name().into(),
        dut_version: None,
        dut_note: None,
        transport: "stdin".into(),
        persistent: false,
        jobs: opts.jobs,
        timeout: opts.timeout,
        started: jiff::Timestamp::now(),
        elapsed: Duration::from_secs(1),
        command_line: "test".into(),
        suite_size: 619,
        gate: runner::Gate::All,
    };
    let xml = report::junit(&cases, &results, &info).unwrap();
    let doc = parse(&xml);
    let roots: Vec<&Node> = doc.all("testsuites").collect();
    assert_eq!(roots.len(), 1, "one <testsuites> root");
    let root = roots[0];
    assert_eq!(root.number("tests"), results.len());
    assert_eq!(root.number("failures"), failed);
    let suites: Vec<&Node> = root.all("testsuite").collect();
    let names: Vec<&str> = suites.iter().map(|s| s.attr("name")).collect();
    assert_eq!(names, ["crc-check", "crc-format"], "one testsuite per class, in the suite's order");
    let mut cases_seen = 0;
    for s in &suites {
        let testcases: Vec<&Node> = s.all("testcase").collect();
        let failing: Vec<&Node> = testcases.iter().copied().filter(|t| t.all("failure").next().is_some()).collect();
        assert_eq!(s.number("tests"), testcases.len(), "suite {}", s.attr("name"));
        assert_eq!(s.number("failures"), failing.len(), "suite {}", s.attr("name"));
        for t in &testcases {
            assert!(t.attr("name").starts_with(&format!("{}/", s.attr("name"))), "{:?}", t.attrs);
            assert_eq!(t.attr("classname"), format!("conformance.{}", s.attr("name")));
            let r = results.iter().find(|r| r.name == t.attr("name")).expect("a case of the run");
            assert_eq!(t.all("failure").next().is_some(), !r.passed(), "{}", r.name);
        }
        for t in failing {
            let f = t.all("failure").next().unwrap();
            assert!(!f.attr("message").is_empty());
            assert_eq!(f.attr("type"), "conformance");
            assert!(f.text.contains("unpadded-crc"), "the failure carries the problems: {}", f.text);
        }
        cases_seen += testcases.len();
    }
    assert_eq!(cases_seen, results.len(), "one testcase per case");
    assert!(
        suites[0].all("properties").next().is_some_and(|p| p.all("property").any(|p| p.attr("name") == "dut")),
        "properties say what was tested"
    );
}
