//! Why a serial port did not open, in words that say what to do: shared by the meter's serial
//! output (`run --serial`) and the rig client (`rig info`, `run --rig`).

use std::io;

use anyhow::anyhow;
use p1sim_core::LineSettings;

/// What the port was meant to be, for the hints.
#[derive(Debug, Clone, Copy)]
pub struct Port<'a> {
    /// The device path given by the user.
    pub path: &'a str,
    /// `"the rig at "` or empty: said before the path.
    pub role: &'a str,
    /// What to check when the device is missing.
    pub missing_hint: &'a str,
    /// What a real device of this role is called, when the path is not a serial port.
    pub expected: &'a str,
    /// The settings asked for, if refusing them is possible.
    pub line: Option<LineSettings>,
}

/// Turns an open error into a message naming the device and the likely fix.
pub fn explain(port: Port<'_>, e: &serialport::Error) -> anyhow::Error {
    let Port { path, role, missing_hint, expected, line } = port;
    let io_kind = match e.kind() {
        serialport::ErrorKind::Io(k) => Some(k),
        _ => None,
    };
    let text = e.to_string();
    if matches!(e.kind(), serialport::ErrorKind::NoDevice) || io_kind == Some(io::ErrorKind::NotFound) {
        anyhow!("cannot open {role}{path}: no such device ({text}). {missing_hint}")
    } else if io_kind == Some(io::ErrorKind::PermissionDenied) {
        anyhow!(
            "cannot open {role}{path}: permission denied ({text}). Add your user to the group that owns the \
             device, usually dialout (`sudo usermod -aG dialout $USER`, then log out and in again); \
             `ls -l {path}` shows the group"
        )
    } else if text.contains("busy") || text.contains("Resource temporarily unavailable") {
        anyhow!(
            "cannot open {role}{path}: another program has it open ({text}); close the terminal, \
             ModemManager or the other p1sim that holds it"
        )
    } else if text.contains("Not a typewriter") || text.contains("Inappropriate ioctl") {
        anyhow!("cannot open {role}{path}: it is not a serial port ({text}); give {expected}")
    } else if let (true, Some(line)) = (matches!(e.kind(), serialport::ErrorKind::InvalidInput), line) {
        anyhow!("cannot open {role}{path} at {line}: the device does not accept these settings ({text})")
    } else {
        anyhow!("cannot open {role}{path}: {text}")
    }
}
