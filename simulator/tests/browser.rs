//! The live page in a real browser: headless Chromium from Debian, driven over WebDriver
//! (chromedriver) while a real reader decodes the meter's TCP output.
//!
//! It opens the page of a running `p1sim run`, sees values appear and update at the next
//! telegram, sets the load from the page and finds the change in the next telegrams' `1-0:1.7.0`
//! as the reader decodes them, drops Request from the page and sees the output stop, and keeps a
//! screenshot (`target/browser/live-page.png`).
//!
//! It needs `chromium` and `chromium-driver` (`apt install chromium chromium-driver`), so it is
//! ignored by a plain `cargo test`; `cargo xtask ci` runs it, and so does
//! `cargo test -p p1sim --test browser -- --ignored`.

mod support;

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use support::{Running, collect, http, temp_dir, workspace_target};

/// Chromium's flags for a machine with no network and no display: without them it waits on
/// connection attempts and background services.
const CHROMIUM_FLAGS: &[&str] = &[
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1250",
];

/// chromedriver on a free port in a process group of its own, killed with every Chromium it
/// started when dropped (also when the test fails before it closes the session: killing
/// chromedriver alone would leave the browser running).
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("chromedriver is not installed: apt install chromium chromium-driver (.ci/run does)");
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("cannot start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Driver { child, url: format!("http://127.0.0.1:{port}") }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = rustix::process::Pid::from_child(&self.child);
        let _ = rustix::process::kill_process_group(group, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile_dir: &Path) -> Client {
    let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|s| s.to_string()).collect();
    args.push(format!("--user-data-dir={}", profile_dir.display()));
    let binary = ["/usr/bin/chromium", "/usr/lib/chromium/chromium"].into_iter().find(|p| Path::new(p).exists());
    let mut options = serde_json::json!({ "args": args });
    if let Some(b) = binary {
        options["binary"] = serde_json::json!(b);
    }
    let mut caps = serde_json::Map::new();
    caps.insert("browserName".into(), serde_json::json!("chrome"));
    caps.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("cannot start a Chromium session through chromedriver")
}

/// The text of element `id`, empty while the page does not have it (yet).
async fn text(c: &Client, id: &str) -> String {
    match c.find(Locator::Id(id)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Polls `f` every 100 ms until it holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !f().await {
        assert!(Instant::now() < deadline, "in {limit:?}: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn screenshot_path() -> PathBuf {
    let dir = workspace_target().join("browser");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join("live-page.png")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs chromium and chromium-driver; cargo xtask ci runs it"]
async fn the_page_shows_the_meter_and_its_load_slider_changes_the_telegrams() {
    let run = Running::start(&["--profile", "iskra-am550", "--tcp", "0", "--control", "127.0.0.1:0", "--speed", "2"]);
    let api = run.control();
    let driver = Driver::start();
    let profile_dir = temp_dir("chromium-profile");
    let c = browser(&driver, &profile_dir).await;
    c.goto(&format!("http://{api}/")).await.unwrap();
    let source = c.source().await.unwrap_or_default();
    assert!(source.contains("power-import"), "the page did not load: {source:.400}");

    // Values appear, in human units, and update at the next telegram.
    eventually(Duration::from_secs(20), "the page shows the import power", || async {
        text(&c, "power-import").await.ends_with(" kW")
    })
    .await;
    assert!(text(&c, "profile-name").await.contains("iskra-am550"));
    assert!(text(&c, "phases").await.contains(" V"));
    let first = text(&c, "telegram").await;
    assert!(first.starts_with("/ISK5"), "{first}");
    eventually(Duration::from_secs(20), "the next telegram replaces the last", || async {
        let now = text(&c, "telegram").await;
        now.starts_with("/ISK5") && now != first
    })
    .await;

    // Move the load slider, as a person does with the keyboard: to its end (25 kW), then 175
    // steps of 100 W back to 7.5 kW. A real reader on the TCP output decodes the change.
    let mut reader = TcpStream::connect(run.field("tcp")).unwrap();
    reader.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let slider = c.find(Locator::Id("load-range")).await.unwrap();
    slider.click().await.unwrap();
    let left: String = std::iter::repeat_n(char::from(Key::Left), 175).collect();
    slider.send_keys(&format!("{}{left}", char::from(Key::End))).await.unwrap();
    assert_eq!(c.find(Locator::Id("load-watts")).await.unwrap().prop("value").await.unwrap().as_deref(), Some("7500"));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    let changed = loop {
        let (got, _) = tokio::task::block_in_place(|| collect(&mut reader, 1, Duration::from_secs(2), None));
        if let Some(kw) = got.iter().rev().find_map(|t| t.value("1-0:1.7.0")) {
            let kw: f64 = kw.trim_end_matches("*kW").parse().unwrap();
            seen.push(kw);
            if (7.3..=7.7).contains(&kw) {
                break true;
            }
        }
        if Instant::now() > deadline {
            break false;
        }
    };
    assert!(changed, "1-0:1.7.0 never showed 7.5 kW; the reader decoded {seen:?}");
    eventually(Duration::from_secs(20), "the page shows the new load", || async {
        text(&c, "power-import").await.starts_with("7.")
    })
    .await;
    let (_, readings) = http(&api, "GET", "/readings", None);
    assert_eq!(readings["overrides"]["load_w"], 7500);
    // A few more telegrams draw the step in the chart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let png = c.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    let path = screenshot_path();
    std::fs::write(&path, &png).unwrap();
    eprintln!("screenshot: {}", path.display());

    // Drop Request from the page: the output stops.
    c.find(Locator::Id("request-toggle")).await.unwrap().click().await.unwrap();
    eventually(Duration::from_secs(20), "the page shows Request dropped", || async {
        text(&c, "request-state").await.contains("dropped")
    })
    .await;
    let (_, status) = http(&api, "GET", "/status", None);
    assert_eq!(status["request"], false, "{status}");
    tokio::task::block_in_place(|| {
        // What was on its way arrives; then nothing.
        let _ = collect(&mut reader, 100, Duration::from_secs(1), None);
        let (after, bytes) = collect(&mut reader, 1, Duration::from_secs(3), None);
        assert!(after.is_empty() && bytes.is_empty(), "output after Request dropped: {} bytes", bytes.len());
    });
    c.close().await.unwrap();
}
