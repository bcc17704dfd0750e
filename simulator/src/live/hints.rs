//! What `p1sim run` prints on start: where the meter is and how common readers connect to it.

use std::fmt::Write;
use std::net::SocketAddr;
use std::path::Path;

use p1sim_core::profile::Profile;
use p1sim_core::{Framing, Parity, Spec};

/// dsmr_parser's `--version` (and Home Assistant's "DSMR version") for a generation.
pub fn dsmr_version(spec: Spec) -> &'static str {
    match spec {
        Spec::Dsmr22 | Spec::Dsmr30 => "2.2",
        Spec::Dsmr40 | Spec::Dsmr42 => "4",
        Spec::Dsmr50 => "5",
        Spec::EMucs => "5B",
        Spec::Smarty => "5L",
        Spec::SeHan => "5S",
    }
}

/// `screen`'s stty-style settings for a framing.
fn screen_settings(baud: u32, f: Framing) -> String {
    let parity = match f.parity {
        Parity::None => "-parenb".to_string(),
        Parity::Even => "parenb,-parodd".to_string(),
        Parity::Odd => "parenb,parodd".to_string(),
    };
    let stop = if f.stop_bits == 2 { "cstopb" } else { "-cstopb" };
    format!("{baud},cs{},{parity},{stop}", f.data_bits)
}

/// The connection help for the outputs of a single meter.
pub fn connect(profile: &Profile, reader: Framing, pty: Option<&Path>, tcp: Option<SocketAddr>) -> String {
    let v = dsmr_version(profile.spec);
    let baud = profile.line.baud;
    let mut s = String::from("\nConnect a reader:\n");
    if let Some(p) = pty {
        let p = p.display();
        let _ = writeln!(s, "  dsmr_parser     dsmr_console --device {p} --version {v}");
        let _ = writeln!(
            s,
            "  Home Assistant  DSMR Slimme Meter integration, connection type Serial: USB path {p}, DSMR version {v}"
        );
        let _ = writeln!(s, "  screen          screen {p} {}", screen_settings(baud, reader));
        let cu_parity = match reader.parity {
            Parity::None => "",
            Parity::Even => " --parity=even",
            Parity::Odd => " --parity=odd",
        };
        let _ = writeln!(s, "  cu              cu -l {p} -s {baud}{cu_parity}");
        let _ = writeln!(
            s,
            "  ESPHome (host)  uart: port {p}, baud_rate {baud} (the host platform's UART opens a device path)"
        );
    }
    if let Some(a) = tcp {
        let (host, port) = (a.ip(), a.port());
        let _ = writeln!(s, "  dsmr_parser     dsmr_console --host {host} --port {port} --version {v}");
        let _ = writeln!(
            s,
            "  Home Assistant  DSMR Slimme Meter integration, connection type Network: host {host}, port {port}, DSMR version {v}"
        );
        let _ = writeln!(s, "  raw TCP         nc {host} {port}   (like an ESP serial bridge or ser2net in raw mode)");
    }
    if profile.is_encrypted() {
        let _ = writeln!(s, "  (Smarty: readers need the same key, e.g. Home Assistant's \"decryption key\")");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_for_both_framings() {
        assert_eq!(screen_settings(115_200, Framing::EIGHT_N1), "115200,cs8,-parenb,-cstopb");
        assert_eq!(screen_settings(9600, Framing::SEVEN_E1), "9600,cs7,parenb,-parodd,-cstopb");
    }

    #[test]
    fn versions_match_dsmr_console_choices() {
        for spec in Spec::ALL {
            assert!(["2.2", "4", "5", "5B", "5L", "5S"].contains(&dsmr_version(spec)));
        }
    }
}
