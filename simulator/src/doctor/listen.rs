//! Where a capture comes from: a file, standard input, a TCP bridge or a serial port, read
//! through the same code paths as the rest of p1sim (the size cap of every file read, the
//! rig's TCP connector, the bench's port reader with its Request line), bounded in bytes and
//! in time, and on a serial port probing one setting after another.
//!
//! A live source is listened to until the capture is decisive (a whole telegram decoded, an
//! HDLC frame, or a burst of bytes from its quiet start to its quiet end) or until the longest
//! interval a meter keeps between telegrams, plus one telegram, has passed.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use p1sim_core::input::{Limit, human_bytes, read_prefix};
use p1sim_core::spec::{Framing, LineSettings};

use super::cause::Cause;
use super::report::setting;
use super::{Arrival, Capture, DEFAULT_READ_AS, Diagnosis, LONGEST_INTERVAL, MAX_CAPTURE, diagnose, telegrams};
use crate::bench::readback::{Options as PortOptions, PortReader, RequestVia};
use crate::rig::transport::{Connector, TcpConnector, TcpPeer, Transport};

/// Where the bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    File(PathBuf),
    Stdin,
    /// `HOST:PORT` of a serial bridge (ser2net, an ESP running esp-link), as given after `tcp://`.
    Tcp(String),
    /// A serial device.
    Serial(String),
}

impl Source {
    /// `--file FILE`, or the SOURCE argument: `-`, `tcp://HOST:PORT`, or a serial device.
    pub fn parse(source: Option<&str>, file: Option<&Path>) -> Result<Source> {
        match (source, file) {
            (Some(_), Some(_)) => bail!("give either SOURCE or --file, not both"),
            (None, Some(f)) => Ok(Source::File(f.to_path_buf())),
            (Some("-"), None) => Ok(Source::Stdin),
            (Some(s), None) => match s.strip_prefix("tcp://") {
                Some("") => bail!("{s}: give tcp://HOST:PORT, e.g. tcp://192.168.1.40:23"),
                Some(addr) => Ok(Source::Tcp(addr.to_string())),
                None => Ok(Source::Serial(s.to_string())),
            },
            (None, None) => bail!(
                "give what to examine: a serial port (/dev/ttyUSB0), tcp://HOST:PORT, --file FILE, or - for \
                 standard input"
            ),
        }
    }

    /// How the report names it.
    pub fn describe(&self) -> String {
        match self {
            Source::File(p) => p.display().to_string(),
            Source::Stdin => "standard input".into(),
            Source::Tcp(a) => format!("tcp://{a}"),
            Source::Serial(p) => p.clone(),
        }
    }
}

/// How to read a source.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The setting the bytes were (or are to be) read at; `None` probes a serial port and
    /// assumes 115200 8N1 elsewhere.
    pub read_as: Option<LineSettings>,
    /// The modem line of a serial adapter wired to Request.
    pub request: Option<RequestVia>,
    /// Listen this long instead of stopping at a decisive capture.
    pub listen: Option<Duration>,
    pub key: Option<[u8; 16]>,
}

/// The settings tried on a serial port without `--as`, in order: DSMR 4 and 5, DSMR 2.2 and 3,
/// and the DSMR 4 meters reported to send 7E1.
pub const PROBE: [LineSettings; 3] = [
    DEFAULT_READ_AS,
    LineSettings { baud: 9600, framing: Framing::SEVEN_E1 },
    LineSettings { baud: 115_200, framing: Framing::SEVEN_E1 },
];

/// Reads the source and diagnoses what it gave. Errors mean the source could not be opened or
/// read.
pub fn examine(source: &Source, opts: &Options) -> Result<Diagnosis> {
    match source {
        Source::File(path) => {
            let prefix = read_prefix(path, Limit::new("capture", MAX_CAPTURE))
                .with_context(|| format!("cannot read {}", path.display()))?;
            let mut capture = Capture { bytes: prefix.bytes, read_as: opts.read_as, ..Capture::default() };
            if !prefix.whole {
                capture.notes.push(format!(
                    "{} is larger than {}: the doctor read its first {} only",
                    path.display(),
                    human_bytes(MAX_CAPTURE),
                    human_bytes(MAX_CAPTURE)
                ));
            }
            assumed(&mut capture, opts);
            diagnose(&capture, opts.key)
        }
        Source::Stdin => {
            let mut feed = StdinFeed::start()?;
            let mut capture = listen(&mut feed, opts.read_as, opts)?;
            assumed(&mut capture, opts);
            diagnose(&capture, opts.key)
        }
        Source::Tcp(addr) => {
            let peer = TcpPeer { role: "the bridge at ", serving: "ser2net (raw mode) or the ESP serial bridge" };
            let name = source.describe();
            let mut feed = TcpFeed(TcpConnector::new(&name, addr, peer).open()?);
            let mut capture = listen(&mut feed, opts.read_as, opts)?;
            assumed(&mut capture, opts);
            diagnose(&capture, opts.key)
        }
        Source::Serial(path) => serial(path, opts),
    }
}

fn assumed(capture: &mut Capture, opts: &Options) {
    if opts.read_as.is_none() {
        capture.notes.push(format!(
            "read at {} assumed: give --as with the setting the bytes were read at if it was another",
            setting(DEFAULT_READ_AS)
        ));
    }
}

/// A serial port: at `--as`, or at each of [`PROBE`] until one explains what arrives.
fn serial(path: &str, opts: &Options) -> Result<Diagnosis> {
    let settings: Vec<LineSettings> = match opts.read_as {
        Some(line) => vec![line],
        None => PROBE.to_vec(),
    };
    let options = PortOptions { port: "SOURCE", request: "--request" };
    let mut port = PortReader::open_with(path, settings[0], opts.request, options)?;
    port.set_request(true)?;
    let mut tried: Vec<(LineSettings, Diagnosis)> = Vec::new();
    for (i, &line) in settings.iter().enumerate() {
        if i > 0 {
            port.reconfigure(line)?;
        }
        let mut feed = PortFeed { port: &mut port, fresh: true, mask: data_mask(line) };
        let capture = listen(&mut feed, Some(line), opts)?;
        let d = diagnose(&capture, opts.key)?;
        // A meter at another rate or framing is read at the next setting; anything else is
        // what the line is, whatever the setting.
        let elsewhere = matches!(d.first(), Cause::WrongBaud | Cause::ParityAsData | Cause::WrongFraming);
        tried.push((line, d));
        if !elsewhere {
            break;
        }
    }
    let probed = settings.len() > 1;
    let summary: Vec<String> = tried.iter().map(|(l, d)| format!("{}: {}", setting(*l), d.first())).collect();
    // The last setting tried explains the line, or none did and the first is reported.
    let last = tried.len() - 1;
    let pick = if matches!(tried[last].1.first(), Cause::WrongBaud | Cause::ParityAsData | Cause::WrongFraming) {
        0
    } else {
        last
    };
    let mut d = tried.swap_remove(pick).1;
    if probed {
        d.notes.push(format!("probed {}", summary.join("; ")));
    }
    Ok(d)
}

/// One read from a live source.
enum Chunk {
    Bytes(Vec<u8>),
    /// Nothing within the wait.
    Quiet,
    /// The source ended (end of file, a closed connection).
    End,
}

/// A live source, read with a short wait.
trait Feed {
    fn next(&mut self) -> Result<Chunk>;
}

/// How long one read waits.
const POLL: Duration = Duration::from_millis(50);

/// A TCP bridge, through the rig's transport (reads wait at most 50 ms).
struct TcpFeed(Box<dyn Transport>);

impl Feed for TcpFeed {
    fn next(&mut self) -> Result<Chunk> {
        let mut buf = vec![0u8; 16 * 1024];
        match self.0.read(&mut buf) {
            Ok(0) => Ok(Chunk::Quiet),
            Ok(n) => {
                buf.truncate(n);
                Ok(Chunk::Bytes(buf))
            }
            // The bridge hung up: the capture ends there.
            Err(_) => Ok(Chunk::End),
        }
    }
}

/// Standard input, read on a thread so a quiet pipe can be timed.
struct StdinFeed {
    rx: mpsc::Receiver<std::io::Result<Vec<u8>>>,
}

impl StdinFeed {
    fn start() -> Result<StdinFeed> {
        let (tx, rx) = mpsc::sync_channel(4);
        std::thread::Builder::new()
            .name("p1sim-doctor-stdin".into())
            .spawn(move || {
                let mut input = std::io::stdin().lock();
                loop {
                    let mut buf = vec![0u8; 64 * 1024];
                    let r = match input.read(&mut buf) {
                        Ok(n) => {
                            buf.truncate(n);
                            Ok(buf)
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => Err(e),
                    };
                    let end = r.as_ref().map_or(true, Vec::is_empty);
                    if tx.send(r).is_err() || end {
                        return;
                    }
                }
            })
            .context("cannot start reading standard input")?;
        Ok(StdinFeed { rx })
    }
}

impl Feed for StdinFeed {
    fn next(&mut self) -> Result<Chunk> {
        match self.rx.recv_timeout(POLL) {
            Ok(Ok(b)) if b.is_empty() => Ok(Chunk::End),
            Ok(Ok(b)) => Ok(Chunk::Bytes(b)),
            Ok(Err(e)) => Err(e).context("cannot read standard input"),
            Err(mpsc::RecvTimeoutError::Timeout) => Ok(Chunk::Quiet),
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(Chunk::End),
        }
    }
}

/// A serial port read by the bench's port reader.
struct PortFeed<'p> {
    port: &'p mut PortReader,
    /// Bytes read before this setting was in force are thrown away at the first read.
    fresh: bool,
    /// The data bits of the setting: a UART set to 7 data bits delivers 7, whatever a
    /// pseudo-terminal standing in for it passes on.
    mask: u8,
}

fn data_mask(line: LineSettings) -> u8 {
    (0xFFu16 >> 8u8.saturating_sub(line.framing.data_bits).min(8)) as u8
}

impl Feed for PortFeed<'_> {
    fn next(&mut self) -> Result<Chunk> {
        let mut got = Vec::new();
        self.port.take(&mut got);
        if std::mem::take(&mut self.fresh) {
            return Ok(Chunk::Quiet);
        }
        if got.is_empty() {
            std::thread::sleep(POLL);
            self.port.take(&mut got);
        }
        Ok(if got.is_empty() { Chunk::Quiet } else { Chunk::Bytes(got.iter().map(|c| c.byte & self.mask).collect()) })
    }
}

/// Listens to a live source at `line` until the capture is decisive, the source ends, the
/// budget is spent or the capture is full.
fn listen(feed: &mut dyn Feed, line: Option<LineSettings>, opts: &Options) -> Result<Capture> {
    let start = Instant::now();
    let budget = opts.listen.unwrap_or(LONGEST_INTERVAL);
    let mut capture = Capture { read_as: line, ..Capture::default() };
    let mut last_bytes: Option<Instant> = None;
    let mut last_check = start;
    while start.elapsed() < budget {
        match feed.next()? {
            Chunk::End => break,
            Chunk::Quiet => {}
            Chunk::Bytes(b) => {
                let now = Instant::now();
                let room = (MAX_CAPTURE as usize).saturating_sub(capture.bytes.len());
                capture
                    .arrivals
                    .push(Arrival { offset: capture.bytes.len(), at_ms: now.duration_since(start).as_millis() as u64 });
                capture.bytes.extend_from_slice(&b[..b.len().min(room)]);
                last_bytes = Some(now);
                if b.len() > room {
                    capture
                        .notes
                        .push(format!("the capture reached {} and listening stopped", human_bytes(MAX_CAPTURE)));
                    break;
                }
            }
        }
        // Decoding what came so far costs microseconds; ten times a second is plenty.
        if opts.listen.is_none() && last_check.elapsed() >= CHECK_EVERY {
            last_check = Instant::now();
            if decisive(&capture, last_bytes, opts.key) {
                break;
            }
        }
    }
    capture.listened = Some(start.elapsed());
    Ok(capture)
}

/// How often a live capture is checked for a verdict.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Whether the capture so far settles the verdict: a whole telegram or encrypted frame, an HDLC
/// frame, or a whole burst of other bytes (one that began after quiet and has ended in quiet).
fn decisive(capture: &Capture, last_bytes: Option<Instant>, key: Option<[u8; 16]>) -> bool {
    let d = telegrams::decode(&capture.bytes, key);
    if d.valid + d.failed() > 0 || d.frames() > 0 || super::hdlc::scan(&capture.bytes).found() {
        return true;
    }
    let quiet_now = last_bytes.is_some_and(|t| t.elapsed() >= Duration::from_millis(super::BURST_GAP_MS));
    let whole_burst = capture.arrivals.windows(2).any(|w| w[1].at_ms >= w[0].at_ms + super::BURST_GAP_MS)
        || capture.arrivals.first().is_some_and(|a| a.at_ms >= super::BURST_GAP_MS);
    quiet_now && whole_burst
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_7_bit_setting_delivers_7_bits() {
        assert_eq!(data_mask(PROBE[0]), 0xFF);
        assert_eq!(data_mask(PROBE[1]), 0x7F);
        assert_eq!(data_mask(LineSettings { baud: 300, framing: "5N1".parse().unwrap() }), 0x1F);
    }

    #[test]
    fn sources_parse_as_documented() {
        let p = |s: Option<&str>, f: Option<&str>| Source::parse(s, f.map(Path::new));
        assert_eq!(p(Some("-"), None).unwrap(), Source::Stdin);
        assert_eq!(p(Some("tcp://10.0.0.2:23"), None).unwrap(), Source::Tcp("10.0.0.2:23".into()));
        assert_eq!(p(Some("/dev/ttyUSB0"), None).unwrap(), Source::Serial("/dev/ttyUSB0".into()));
        assert_eq!(p(None, Some("c.bin")).unwrap(), Source::File("c.bin".into()));
        assert!(p(None, None).unwrap_err().to_string().contains("--file"));
        assert!(p(Some("x"), Some("y")).is_err());
        assert!(p(Some("tcp://"), None).unwrap_err().to_string().contains("HOST:PORT"));
    }
}
