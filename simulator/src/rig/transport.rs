//! How the rig client reaches a rig: a byte stream with short read timeouts (the rig's USB
//! CDC-ACM serial port; a raw TCP socket to a rig on another machine behind ser2net, or to the
//! firmware running in the emulator; an in-memory pipe in tests) and a [`Connector`] that opens
//! it again after the device disappears.
//!
//! Reads wait at most [`READ_TIMEOUT`] and return `Ok(0)` when nothing came, so a reader thread
//! can notice it should stop; an error means the device is gone.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serialport::SerialPort;

/// Longest a read waits for a byte.
pub const READ_TIMEOUT: Duration = Duration::from_millis(50);

/// One open connection to a rig.
pub trait Transport: Send {
    /// Reads what has arrived, waiting at most [`READ_TIMEOUT`]: `Ok(0)` when nothing did, an
    /// error when the device is gone.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize>;
    /// Writes all of `bytes`. The rig takes USB data only as fast as its line sends, so this
    /// may wait for seconds at slow baud rates; an error means the device is gone.
    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// A second handle on the same connection, so one thread can read while another writes.
    fn try_clone(&self) -> io::Result<Box<dyn Transport>>;
}

/// Opens connections to one rig, as often as it takes.
pub trait Connector: Send {
    /// What to call the device in messages (its path).
    fn name(&self) -> &str;
    /// Opens the device; errors say what is wrong and how to fix it.
    fn open(&mut self) -> Result<Box<dyn Transport>>;
}

/// The connector for a rig named on the command line: `tcp://HOST:PORT` for a rig reached over
/// the network (ser2net in raw mode, or the emulator's bridge), a serial device otherwise.
pub fn connector_for(device: &str) -> Box<dyn Connector> {
    match device.strip_prefix("tcp://") {
        Some(addr) => Box::new(TcpConnector::new(device, addr, TcpPeer::RIG)),
        None => Box::new(SerialConnector::new(device)),
    }
}

/// Who is expected behind a TCP address, for the messages when nothing is.
#[derive(Debug, Clone, Copy)]
pub struct TcpPeer {
    /// `"the rig at "`: said before the address.
    pub role: &'static str,
    /// What should be accepting connections there.
    pub serving: &'static str,
}

impl TcpPeer {
    pub const RIG: TcpPeer = TcpPeer { role: "the rig at ", serving: "ser2net (raw mode) or the emulator bridge" };
}

/// A byte stream behind a raw TCP socket: a rig behind ser2net or the emulator's bridge, or a
/// P1 reader's serial bridge (`p1sim doctor tcp://...`).
#[derive(Debug, Clone)]
pub struct TcpConnector {
    name: String,
    addr: String,
    peer: TcpPeer,
}

impl TcpConnector {
    /// `name` as the user wrote it (`tcp://HOST:PORT`), `addr` the `HOST:PORT` in it.
    pub fn new(name: &str, addr: &str, peer: TcpPeer) -> TcpConnector {
        TcpConnector { name: name.to_string(), addr: addr.to_string(), peer }
    }
}

impl Connector for TcpConnector {
    fn name(&self) -> &str {
        &self.name
    }

    fn open(&mut self) -> Result<Box<dyn Transport>> {
        use std::net::{TcpStream, ToSocketAddrs};
        let TcpPeer { role, serving } = self.peer;
        let addrs: Vec<_> = self
            .addr
            .to_socket_addrs()
            .map_err(|e| anyhow::format_err!("cannot resolve {role}{}: {e}; give tcp://HOST:PORT", self.name))?
            .collect();
        let stream =
            addrs.iter().find_map(|a| TcpStream::connect_timeout(a, Duration::from_secs(3)).ok()).ok_or_else(|| {
                anyhow::format_err!(
                    "cannot connect to {role}{}: nothing accepts connections there; is {serving} running?",
                    self.name
                )
            })?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_nodelay(true)?;
        Ok(Box::new(TcpTransport { stream, peer: role }))
    }
}

struct TcpTransport {
    stream: std::net::TcpStream,
    peer: &'static str,
}

impl Transport for TcpTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.stream.read(buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                format!("{}closed the connection", self.peer.trim_end_matches("at ")),
            )),
            Ok(n) => Ok(n),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
                ) =>
            {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        Write::write_all(&mut self.stream, bytes)
    }

    fn try_clone(&self) -> io::Result<Box<dyn Transport>> {
        Ok(Box::new(TcpTransport { stream: self.stream.try_clone()?, peer: self.peer }))
    }
}

/// The rig's serial port (`/dev/ttyACM0`, `/dev/serial/by-id/usb-p1sim_p1sim_rig_...`).
#[derive(Debug, Clone)]
pub struct SerialConnector {
    path: String,
}

impl SerialConnector {
    pub fn new(path: impl Into<String>) -> SerialConnector {
        SerialConnector { path: path.into() }
    }
}

impl Connector for SerialConnector {
    fn name(&self) -> &str {
        &self.path
    }

    fn open(&mut self) -> Result<Box<dyn Transport>> {
        // USB CDC ignores the baud rate; DTR tells the firmware a host is there.
        let mut port = serialport::new(&self.path, 115_200)
            .timeout(READ_TIMEOUT)
            .open()
            .map_err(|e| explain_open_error(&self.path, &e))?;
        let _ = port.write_data_terminal_ready(true);
        let _ = port.clear(serialport::ClearBuffer::Input);
        Ok(Box::new(SerialTransport { port }))
    }
}

/// What to do about a rig port that does not open.
fn explain_open_error(path: &str, e: &serialport::Error) -> anyhow::Error {
    crate::port_error::explain(
        crate::port_error::Port {
            path,
            role: "the rig at ",
            missing_hint: "Is the Pico plugged in and flashed with the rig firmware? It shows up as /dev/ttyACM* \
                           (`ls /dev/ttyACM* /dev/serial/by-id/`; the by-id name, usb-p1sim_p1sim_rig_..., stays \
                           the same when it is replugged)",
            expected: "the rig's /dev/ttyACM* device",
            line: None,
        },
        e,
    )
}

struct SerialTransport {
    port: Box<dyn SerialPort>,
}

impl Transport for SerialTransport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.port.read(buf) {
            // With a timeout set, zero bytes is a hang-up, not "nothing yet".
            Ok(0) => Err(io::Error::new(io::ErrorKind::BrokenPipe, "the device hung up")),
            Ok(n) => Ok(n),
            Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => Ok(0),
            Err(e) => Err(e),
        }
    }

    fn write_all(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            match self.port.write(bytes) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "the device took nothing")),
                Ok(n) => bytes = &bytes[n..],
                // The rig is busy sending a slow line; a gone device errors instead.
                Err(e) if matches!(e.kind(), io::ErrorKind::TimedOut | io::ErrorKind::Interrupted) => {}
                Err(e) => return Err(e),
            }
        }
        self.port.flush()
    }

    fn try_clone(&self) -> io::Result<Box<dyn Transport>> {
        let port = self.port.try_clone().map_err(io::Error::other)?;
        Ok(Box::new(SerialTransport { port }))
    }
}

/// An in-memory byte pipe in both directions: the host's end and the device's end of a rig
/// that exists only in a test. Dropping the plug ([`MemoryLink::unplug`]) makes both ends fail
/// as a pulled USB cable does.
#[derive(Debug, Clone)]
pub struct MemoryLink {
    to_device: Arc<Channel>,
    to_host: Arc<Channel>,
    plugged: Arc<AtomicBool>,
}

#[derive(Debug, Default)]
struct Channel {
    bytes: Mutex<VecDeque<u8>>,
    ready: Condvar,
}

impl MemoryLink {
    pub fn new() -> MemoryLink {
        MemoryLink {
            to_device: Arc::new(Channel::default()),
            to_host: Arc::new(Channel::default()),
            plugged: Arc::new(AtomicBool::new(true)),
        }
    }

    /// The host's end.
    pub fn host(&self) -> MemoryEnd {
        MemoryEnd { rx: Arc::clone(&self.to_host), tx: Arc::clone(&self.to_device), plugged: Arc::clone(&self.plugged) }
    }

    /// The device's end.
    pub fn device(&self) -> MemoryEnd {
        MemoryEnd { rx: Arc::clone(&self.to_device), tx: Arc::clone(&self.to_host), plugged: Arc::clone(&self.plugged) }
    }

    /// Pulls the cable: every read and write on either end fails from now on.
    pub fn unplug(&self) {
        self.plugged.store(false, Ordering::SeqCst);
        self.to_device.ready.notify_all();
        self.to_host.ready.notify_all();
    }

    pub fn is_plugged(&self) -> bool {
        self.plugged.load(Ordering::SeqCst)
    }
}

impl Default for MemoryLink {
    fn default() -> Self {
        MemoryLink::new()
    }
}

/// One end of a [`MemoryLink`].
#[derive(Debug, Clone)]
pub struct MemoryEnd {
    rx: Arc<Channel>,
    tx: Arc<Channel>,
    plugged: Arc<AtomicBool>,
}

impl MemoryEnd {
    fn gone() -> io::Error {
        io::Error::new(io::ErrorKind::BrokenPipe, "unplugged")
    }
}

impl Transport for MemoryEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let deadline = Instant::now() + READ_TIMEOUT;
        let mut q = self.rx.bytes.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if !self.plugged.load(Ordering::SeqCst) {
                return Err(Self::gone());
            }
            if !q.is_empty() {
                let n = buf.len().min(q.len());
                for (b, v) in buf.iter_mut().zip(q.drain(..n)) {
                    *b = v;
                }
                return Ok(n);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(0);
            }
            q = self.rx.ready.wait_timeout(q, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.plugged.load(Ordering::SeqCst) {
            return Err(Self::gone());
        }
        self.tx.bytes.lock().unwrap_or_else(|e| e.into_inner()).extend(bytes);
        self.tx.ready.notify_all();
        Ok(())
    }

    fn try_clone(&self) -> io::Result<Box<dyn Transport>> {
        Ok(Box::new(self.clone()))
    }
}

impl Read for MemoryEnd {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Transport::read(self, buf)
    }
}

impl Write for MemoryEnd {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Transport::write_all(self, buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_cross_both_ways_and_unplugging_fails_both_ends() {
        let link = MemoryLink::new();
        let (mut host, mut device) = (link.host(), link.device());
        Transport::write_all(&mut host, b"hello").unwrap();
        let mut buf = [0u8; 16];
        assert_eq!(Transport::read(&mut device, &mut buf).unwrap(), 5);
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(Transport::read(&mut host, &mut buf).unwrap(), 0, "nothing came: a timeout, not an error");
        link.unplug();
        assert!(Transport::read(&mut device, &mut buf).is_err());
        assert!(Transport::write_all(&mut host, b"x").is_err());
    }

    #[test]
    fn a_rig_over_tcp_carries_bytes_both_ways() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let echo = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = [0u8; 5];
            std::io::Read::read_exact(&mut s, &mut buf).unwrap();
            std::io::Write::write_all(&mut s, &buf).unwrap();
        });
        let mut c = connector_for(&format!("tcp://{addr}"));
        let mut t = c.open().unwrap();
        t.write_all(b"hello").unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 16];
        while got.len() < 5 {
            let n = t.read(&mut buf).unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"hello");
        echo.join().unwrap();
        // The peer hung up: an error, so the client looks for the rig again.
        let mut n = Ok(0);
        for _ in 0..100 {
            n = t.read(&mut buf);
            if n.is_err() {
                break;
            }
        }
        assert!(n.is_err());
        let err = connector_for("tcp://127.0.0.1:1").open().err().unwrap().to_string();
        assert!(err.contains("tcp://127.0.0.1:1") && err.contains("ser2net"), "{err}");
    }

    #[test]
    fn a_missing_device_is_named_with_the_fix() {
        let err = SerialConnector::new("/dev/p1sim-no-such-rig").open().err().expect("no such device");
        let text = err.to_string();
        assert!(text.contains("/dev/p1sim-no-such-rig"), "{text}");
        assert!(text.contains("plugged in"), "{text}");
    }
}
