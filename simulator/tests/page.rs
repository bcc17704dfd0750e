//! The live page's server side without a browser: the page and its assets with their security
//! headers, the event stream and its limits, readings in human units. The browser test
//! (`browser.rs`) drives the page itself.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use support::{Running, http, raw_http, raw_http_text};

/// Opens `/events` and returns the stream with the response head read. HTTP/1.0, so the body
/// comes as it is, not in chunks.
fn open_events(api: &str) -> (TcpStream, String) {
    let mut s = TcpStream::connect(api).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(format!("GET /events HTTP/1.0\r\nHost: {api}\r\nAccept: text/event-stream\r\n\r\n").as_bytes())
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && s.read(&mut byte).unwrap_or(0) == 1 {
        head.push(byte[0]);
    }
    (s, String::from_utf8_lossy(&head).into_owned())
}

#[test]
fn the_page_is_served_whole_with_a_policy_that_forbids_other_origins_and_framing() {
    let run = Running::start(&["--profile", "iskra-am550", "--tcp", "0", "--control", "127.0.0.1:0"]);
    let api = run.control();
    assert!(
        run.banner.iter().any(|l| l.contains(&format!("http://{api}/")) && l.contains("live page")),
        "{:?}",
        run.banner
    );
    let (code, html) = raw_http_text(&api, "GET", "/", "", "");
    assert_eq!(code, 200);
    assert!(
        html.contains("<script src=\"/app.js\"") && !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere"
    );
    let mut s = TcpStream::connect(&api).unwrap();
    s.write_all(format!("GET / HTTP/1.1\r\nHost: {api}\r\nConnection: close\r\n\r\n").as_bytes()).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let head = resp.split("\r\n\r\n").next().unwrap().to_ascii_lowercase();
    assert!(head.contains("content-security-policy:") && head.contains("frame-ancestors 'none'"), "{head}");
    assert!(head.contains("x-frame-options: deny"), "{head}");
    for (path, kind) in [("/app.js", "text/javascript"), ("/style.css", "text/css")] {
        let (code, body) = raw_http_text(&api, "GET", path, "", "");
        assert_eq!(code, 200, "{path}");
        assert!(!body.is_empty() && !body.contains("https://"), "{path} fetches nothing from elsewhere");
        let _ = kind;
    }
    let (code, faults) = http(&api, "GET", "/api/faults", None);
    assert_eq!(code, 200);
    assert!(faults["faults"].as_array().unwrap().iter().any(|f| f["kind"] == "wrong-crc"));
    let (code, index) = http(&api, "GET", "/api", None);
    assert_eq!(code, 200);
    assert!(index["endpoints"]["POST /load"].is_string());
}

#[test]
fn the_event_stream_sends_each_telegram_in_human_units_and_is_bounded() {
    let run = Running::start(&["--profile", "iskra-am550", "--tcp", "0", "--control", "127.0.0.1:0", "--speed", "4"]);
    let api = run.control();
    let (mut s, head) = open_events(&api);
    assert!(head.contains(" 200 ") && head.to_ascii_lowercase().contains("text/event-stream"), "{head}");
    let mut text = String::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(20);
    while text.matches("event: update").count() < 3 && Instant::now() < deadline {
        let n = s.read(&mut buf).unwrap_or(0);
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    let data: Vec<serde_json::Value> =
        text.lines().filter_map(|l| l.strip_prefix("data: ")).filter_map(|d| serde_json::from_str(d).ok()).collect();
    let with_telegram: Vec<&serde_json::Value> = data.iter().filter(|d| !d["telegram"].is_null()).collect();
    assert!(with_telegram.len() >= 2, "{text:.600}");
    let t = with_telegram[1]["telegram"].clone();
    assert!(t["telegram"].as_str().unwrap().starts_with("/ISK5"), "{t}");
    let r = &t["readings"];
    assert!(r["power_import_kw"].is_number() && r["phases"][0]["voltage_v"].is_number(), "{r}");
    let (kwh, wh) =
        (r["registers"]["import_kwh"][0].as_f64().unwrap(), r["registers"]["import_wh"][0].as_f64().unwrap());
    assert_eq!((kwh * 1000.0).round(), wh, "the same register in kWh and Wh");
    assert_eq!(with_telegram[1]["status"]["profile"]["name"], "iskra-am550");
    // Another origin cannot listen in.
    let (code, _) = raw_http(&api, "GET", "/events", "Origin: http://evil.example\r\n", "");
    assert_eq!(code, 403);
    // Eight streams at most; the ninth is refused, the API still answers.
    let mut streams: Vec<TcpStream> = (0..7).map(|_| open_events(&api).0).collect();
    let (extra, head) = open_events(&api);
    assert!(head.contains(" 503 "), "{head}");
    drop(extra);
    assert_eq!(http(&api, "GET", "/readings", None).0, 200);
    streams.clear();
    drop(s);
}
