//! The serial-port output: a real UART (usually a USB-UART) at the profile's baud rate and framing,
//! real 7E1 included, optionally gated by the P1 Request line wired to its CTS or DSR input.
//!
//! Opening errors name the device and the likely fix. A device that disappears mid-run (USB
//! unplugged) is reopened every second while the run goes on. The same code runs against a PTY
//! slave, which opens and writes like a port but has no modem lines (their calls fail with
//! ENOTTY) and ignores 7E1: that is how it is tested without hardware.

use std::io::Write;
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering as Atomic};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow};
use p1sim_core::{LineSettings, Parity};
use serialport::{ClearBuffer, DataBits, FlowControl, SerialPort, StopBits};

use super::pacer::{Outgoing, Sink};

/// Which input of the adapter carries the meter's Request line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RequestPin {
    /// Clear To Send.
    Cts,
    /// Data Set Ready.
    Dsr,
    /// No Request wiring: always send.
    None,
}

impl RequestPin {
    fn name(self) -> &'static str {
        match self {
            RequestPin::Cts => "CTS",
            RequestPin::Dsr => "DSR",
            RequestPin::None => "none",
        }
    }
}

/// Counters of a serial output.
#[derive(Debug, Default)]
pub struct SerialStats {
    /// Times the device was lost mid-run.
    pub disconnects: AtomicU64,
    /// Times it came back.
    pub reconnects: AtomicU64,
    /// Telegrams that came due while the device was gone.
    pub lost_telegrams: AtomicU64,
}

/// Opens `path` with the profile's line settings; errors say what to do.
pub fn open_port(path: &str, line: LineSettings) -> Result<Box<dyn SerialPort>> {
    let (data_bits, parity, stop_bits) = port_framing(line);
    serialport::new(path, line.baud)
        .data_bits(data_bits)
        .parity(parity)
        .stop_bits(stop_bits)
        .flow_control(FlowControl::None)
        // Writes never wait long: a port that takes nothing for 50 ms is treated as gone.
        .timeout(Duration::from_millis(50))
        .open()
        .map_err(|e| explain_open_error(path, line, &e))
}

/// Sets an open port to `line` (baud rate and framing).
pub fn set_line(port: &mut dyn SerialPort, line: LineSettings) -> serialport::Result<()> {
    let (data_bits, parity, stop_bits) = port_framing(line);
    port.set_baud_rate(line.baud)?;
    port.set_data_bits(data_bits)?;
    port.set_parity(parity)?;
    port.set_stop_bits(stop_bits)
}

/// The serialport crate's names for a framing.
fn port_framing(line: LineSettings) -> (DataBits, serialport::Parity, StopBits) {
    let data_bits = match line.framing.data_bits {
        5 => DataBits::Five,
        6 => DataBits::Six,
        7 => DataBits::Seven,
        _ => DataBits::Eight,
    };
    let parity = match line.framing.parity {
        Parity::None => serialport::Parity::None,
        Parity::Even => serialport::Parity::Even,
        Parity::Odd => serialport::Parity::Odd,
    };
    let stop_bits = if line.framing.stop_bits == 2 { StopBits::Two } else { StopBits::One };
    (data_bits, parity, stop_bits)
}

fn explain_open_error(path: &str, line: LineSettings, e: &serialport::Error) -> anyhow::Error {
    crate::port_error::explain(
        crate::port_error::Port {
            path,
            role: "",
            missing_hint: "Is the USB-UART plugged in? `ls /dev/ttyUSB* /dev/ttyACM* /dev/serial/by-id/` lists the \
                           ports; the /dev/serial/by-id/ names stay the same when the adapter is replugged",
            expected: "the device of a USB-UART or UART",
            line: Some(line),
        },
        e,
    )
}

fn read_pin(port: &mut dyn SerialPort, pin: RequestPin) -> serialport::Result<bool> {
    match pin {
        RequestPin::Cts => port.read_clear_to_send(),
        RequestPin::Dsr => port.read_data_set_ready(),
        RequestPin::None => Ok(true),
    }
}

/// The pacer's end of a serial port.
pub struct SerialSink {
    path: String,
    line: LineSettings,
    pin: RequestPin,
    port: Option<Box<dyn SerialPort>>,
    last_attempt: Instant,
    pub stats: Arc<SerialStats>,
}

impl std::fmt::Debug for SerialSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SerialSink").field("path", &self.path).field("connected", &self.port.is_some()).finish()
    }
}

impl SerialSink {
    /// Opens the port and, with a Request pin, checks that the pin can be read at all.
    pub fn open(path: &str, line: LineSettings, pin: RequestPin) -> Result<SerialSink> {
        let mut port = open_port(path, line)?;
        if let Err(e) = read_pin(port.as_mut(), pin) {
            return Err(anyhow!(
                "cannot read the {} input of {path} ({e}): the device has no modem lines (a pseudo-terminal, \
                 or an adapter without {} wired out). Wire the P1 Request line to {} of a USB-UART that \
                 has it, or use --request none",
                pin.name(),
                pin.name(),
                pin.name()
            ));
        }
        Ok(SerialSink {
            path: path.to_string(),
            line,
            pin,
            port: Some(port),
            last_attempt: Instant::now(),
            stats: Arc::new(SerialStats::default()),
        })
    }

    fn lost(&mut self, why: &dyn std::fmt::Display) {
        if self.port.take().is_some() {
            self.stats.disconnects.fetch_add(1, Atomic::Relaxed);
            log::warn!("serial: lost {} ({why}); retrying every second", self.path);
        }
        self.last_attempt = Instant::now();
    }
}

impl Sink for SerialSink {
    fn begin(&mut self, _t: &Outgoing, _bytes: &Arc<[u8]>) {
        if self.port.is_none() {
            self.stats.lost_telegrams.fetch_add(1, Atomic::Relaxed);
        }
    }

    fn write(&mut self, bytes: &Arc<[u8]>, range: Range<usize>) {
        if let Some(port) = self.port.as_mut()
            && let Err(e) = port.write_all(&bytes[range])
        {
            self.lost(&e);
        }
    }

    fn end(&mut self, complete: bool) {
        if !complete {
            // Request dropped: what the driver still holds must not go out either.
            if let Some(port) = self.port.as_mut() {
                let _ = port.clear(ClearBuffer::Output);
            }
        }
    }

    fn poll_interval(&self) -> Option<Duration> {
        // Request is sampled every millisecond (about 11 characters at 115200); without it,
        // polling only serves reconnecting.
        Some(if self.pin == RequestPin::None { Duration::from_millis(200) } else { Duration::from_millis(1) })
    }

    fn poll(&mut self, now: Instant) -> Option<bool> {
        if self.port.is_none() && now.duration_since(self.last_attempt) >= Duration::from_secs(1) {
            self.last_attempt = now;
            if let Ok(port) = open_port(&self.path, self.line) {
                log::warn!("serial: {} is back", self.path);
                self.stats.reconnects.fetch_add(1, Atomic::Relaxed);
                self.port = Some(port);
            }
        }
        if self.pin == RequestPin::None {
            return None;
        }
        let level = match self.port.as_mut() {
            Some(port) => read_pin(port.as_mut(), self.pin),
            None => return Some(false),
        };
        match level {
            Ok(up) => Some(up),
            Err(e) => {
                self.lost(&e);
                Some(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_device_is_named_with_the_fix() {
        let line = LineSettings { baud: 115_200, framing: p1sim_core::Framing::EIGHT_N1 };
        let Err(e) = open_port("/dev/ttyUSB-p1sim-missing", line) else { panic!("no such device") };
        let e = e.to_string();
        assert!(e.contains("/dev/ttyUSB-p1sim-missing"), "{e}");
        assert!(e.contains("plugged in"), "{e}");
    }

    #[test]
    fn a_regular_file_is_not_a_port() {
        let path = std::env::temp_dir().join(format!("p1sim-not-a-port-{}", std::process::id()));
        std::fs::write(&path, b"").unwrap();
        let line = LineSettings { baud: 9600, framing: p1sim_core::Framing::SEVEN_E1 };
        let Err(e) = open_port(path.to_str().unwrap(), line) else { panic!("a file is no port") };
        let e = e.to_string();
        let _ = std::fs::remove_file(&path);
        assert!(e.contains("not a serial port"), "{e}");
    }
}
