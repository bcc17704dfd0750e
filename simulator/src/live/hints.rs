//! What `p1sim run` prints on start: where the meter is and how common readers connect to it,
//! set the way each reader needs for this meter's dialect.
//!
//! The settings are dsmr_parser's (the decoder behind Home Assistant's DSMR integration): the
//! telegram specification, the version its readers take, and the label Home Assistant shows for
//! that version. `simulator/tests/interop_hints.rs` runs dsmr_parser's serial and TCP readers set
//! exactly as printed here against `p1sim run`, and the README's profile table must agree.

use std::fmt::Write;
use std::net::SocketAddr;
use std::path::Path;

use p1sim_core::profile::Profile;
use p1sim_core::{Framing, Parity, Spec};

/// How dsmr_parser and Home Assistant are set for a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderHint {
    /// dsmr_parser's `telegram_specifications` entry, e.g. `V5`, `MSN`.
    pub spec: &'static str,
    /// The version dsmr_parser's readers take (`create_dsmr_reader`, `create_tcp_dsmr_reader`)
    /// and Home Assistant stores, e.g. `5`, `MSn`.
    pub version: &'static str,
    /// Whether `dsmr_console --version` offers that version (it has no encrypted ones).
    pub console: bool,
    /// The "DSMR version" Home Assistant's integration lists, `None` where it has none.
    pub home_assistant: Option<&'static str>,
    /// Why dsmr_parser (and so Home Assistant) cannot read the meter at all, if it cannot.
    pub unreadable: Option<&'static str>,
}

/// dsmr_parser frames telegrams from `/` to `!` (its TelegramBuffer): a meter that sends no `!`
/// never completes one.
const NO_END_MARKER: &str = "its telegrams end without `!`, and dsmr_parser's TelegramBuffer waits for one \
                             (node-dsmr-parser ends them at the next `/`; so does `p1sim decode`)";

/// The reader settings for a profile's dialect. Encrypted Smarty needs `MSn` with the key:
/// `5L` only reads the plaintext a decrypting proxy hands on.
pub fn reader(profile: &Profile) -> ReaderHint {
    if !profile.end_marker {
        return ReaderHint {
            console: false,
            home_assistant: None,
            unreadable: Some(NO_END_MARKER),
            ..dialect(profile)
        };
    }
    dialect(profile)
}

/// The settings of the profile's dialect, whether or not its telegrams can be read with them.
fn dialect(profile: &Profile) -> ReaderHint {
    let hint = |spec, version, console, home_assistant| ReaderHint {
        spec,
        version,
        console,
        home_assistant,
        unreadable: None,
    };
    match (profile.spec, profile.is_encrypted()) {
        (Spec::Dsmr22, _) => hint("V2_2", "2.2", true, Some("DSMR 2.2")),
        (Spec::Dsmr30, _) => hint("V3", "2.2", true, Some("DSMR 2.2")),
        (Spec::Dsmr40 | Spec::Dsmr42, _) => hint("V4", "4", true, Some("DSMR 4")),
        (Spec::Dsmr50, _) => hint("V5", "5", true, Some("DSMR 5")),
        (Spec::EMucs, _) => hint("BELGIUM_FLUVIUS", "5B", true, Some("DSMR 5B (Belgium, Fluvius)")),
        (Spec::SeHan, _) => hint("SWEDEN", "5S", true, Some("DSMR 5S (Sweden)")),
        (Spec::Smarty, true) => {
            hint("MSN", "MSn", false, Some("Luxembourg Smarty / Sagemcom T210-D, encrypted (Creos)"))
        }
        (Spec::Smarty, false) => hint("LUXEMBOURG_SMARTY", "5L", true, Some("DSMR 5L (Luxembourg, unencrypted)")),
        // Home Assistant labels the EasyMeter setting "Q3D (Austria)", though the meter is German.
        (Spec::D0, _) => hint("Q3D", "Q3D", true, Some("Q3D (Austria)")),
        (Spec::EonHu, _) => hint("EON_HUNGARY", "5EONHU", false, Some("DSMR 5 (E.ON Hungary)")),
        (Spec::Steiermark, true) => hint(
            "SAGEMCOM_T210_D_R",
            "SAGEMCOM_T210_D_R",
            false,
            Some("Sagemcom T210-D-R, encrypted (Austria, Energienetze Steiermark)"),
        ),
        (Spec::Steiermark, false) => hint("V5", "5", true, Some("DSMR 5")),
        (Spec::IskraIe, _) => hint("ISKRA_IE", "ISKRA_IE", false, None),
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

/// A picocom command line for a framing.
fn picocom(path: impl std::fmt::Display, baud: u32, f: Framing) -> String {
    let parity = match f.parity {
        Parity::None => 'n',
        Parity::Even => 'e',
        Parity::Odd => 'o',
    };
    format!("picocom --baud {baud} --databits {} --parity {parity} --stopbits {} {path}", f.data_bits, f.stop_bits)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// The key arguments of dsmr_parser's readers for an encrypted profile: the encryption key, and
/// the authentication key where it is not the one dsmr_parser's specification carries.
fn key_args(profile: &Profile, hint: &ReaderHint, key: Option<[u8; 16]>) -> String {
    let Some(enc) = &profile.encryption else { return String::new() };
    let mut s = format!(", encryption_key='{}'", key.map_or("YOUR-KEY".to_string(), |k| hex(&k)));
    // MSN carries Smarty's published key; other specifications need the meter's.
    if !(hint.spec == "MSN" && enc.auth_key == p1sim_core::smarty::AUTH_KEY) {
        let _ = write!(s, ", authentication_key='{}'", hex(&enc.auth_key));
    }
    s
}

/// Home Assistant's setting, or why there is none.
fn home_assistant(hint: &ReaderHint) -> String {
    match hint.home_assistant {
        Some(label) => format!("DSMR version {} (\"{label}\")", hint.version),
        None => "has no setting for this meter (dsmr_parser alone reads it)".to_string(),
    }
}

/// The connection help for the outputs of a single meter.
pub fn connect(
    profile: &Profile,
    reader_framing: Framing,
    pty: Option<&Path>,
    tcp: Option<SocketAddr>,
    key: Option<[u8; 16]>,
) -> String {
    let hint = reader(profile);
    let v = hint.version;
    let keys = key_args(profile, &hint, key);
    let mut ha_key = match (profile.is_encrypted(), key) {
        (true, Some(k)) => format!(", encryption key {}", hex(&k)),
        (true, None) => ", encryption key: yours".to_string(),
        (false, _) => String::new(),
    };
    if let Some(enc) = profile.encryption.as_ref().filter(|e| e.auth_key != p1sim_core::smarty::AUTH_KEY) {
        let _ = write!(ha_key, ", authentication key {} where it asks for one", hex(&enc.auth_key));
    }
    let ha = home_assistant(&hint);
    let baud = profile.line.baud;
    let mut s = String::from("\nConnect a reader:\n");
    if let Some(why) = hint.unreadable {
        let _ = writeln!(s, "  dsmr_parser     cannot read this meter: {why}");
        let _ = writeln!(s, "  Home Assistant  cannot read this meter either (it reads through dsmr_parser)");
    }
    let readable = hint.unreadable.is_none();
    if let Some(p) = pty {
        let p = p.display();
        if hint.console && keys.is_empty() {
            let _ = writeln!(s, "  dsmr_console    dsmr_console --device {p} --version {v}");
        }
        if readable {
            let _ = writeln!(s, "  dsmr_parser     create_dsmr_reader('{p}', '{v}', callback{keys})");
            let _ = writeln!(
                s,
                "  Home Assistant  DSMR Slimme Meter integration, connection type Serial: USB path {p}, {ha}{ha_key}"
            );
        }
        let _ = writeln!(s, "  screen          screen {p} {}", screen_settings(baud, reader_framing));
        // picocom rather than cu: Debian's cu drops to the uucp user, which cannot open a PTY
        // that belongs to root.
        let _ = writeln!(s, "  picocom         {}   (Ctrl-A Ctrl-X quits)", picocom(&p, baud, reader_framing));
        let _ = writeln!(
            s,
            "  ESPHome (host)  uart: port {p}, baud_rate {baud} (the host platform's UART opens a device path)"
        );
    }
    if let Some(a) = tcp {
        let (host, port) = (a.ip(), a.port());
        if hint.console && keys.is_empty() {
            let _ = writeln!(s, "  dsmr_console    dsmr_console --host {host} --port {port} --version {v}");
        }
        if readable {
            let _ = writeln!(s, "  dsmr_parser     create_tcp_dsmr_reader('{host}', {port}, '{v}', callback{keys})");
            let _ = writeln!(
                s,
                "  Home Assistant  DSMR Slimme Meter integration, connection type Network: host {host}, port {port}, {ha}{ha_key}"
            );
        }
        let _ = writeln!(s, "  raw TCP         nc {host} {port}   (like an ESP serial bridge or ser2net in raw mode)");
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
        assert_eq!(
            picocom("./p1-meter", 9600, Framing::SEVEN_E1),
            "picocom --baud 9600 --databits 7 --parity e --stopbits 1 ./p1-meter"
        );
    }

    #[test]
    fn smarty_is_read_as_msn_with_the_key_and_never_through_dsmr_console() {
        let smarty = p1sim_core::builtin::lookup("sagemcom-t210d-lu").unwrap();
        let text = connect(&smarty, Framing::EIGHT_N1, Some(Path::new("/tmp/p1")), None, Some([0xAB; 16]));
        assert!(text.contains("create_dsmr_reader('/tmp/p1', 'MSn', callback, encryption_key='ABAB"), "{text}");
        assert!(!text.contains("dsmr_console"), "dsmr_console has no encrypted versions: {text}");
        assert!(!text.contains("authentication_key"), "MSN carries Smarty's published key: {text}");
        let plain = p1sim_core::builtin::lookup("sagemcom-t210d-lu-plaintext").unwrap();
        assert_eq!(reader(&plain).version, "5L");
    }

    #[test]
    fn every_version_is_one_dsmr_parser_readers_take() {
        // dsmr_parser 1.11.2, clients/protocol.py _create_dsmr_protocol.
        let known = ["2.2", "4", "4+", "5", "5B", "5L", "5S", "Q3D", "ISKRA_IE", "5EONHU", "MSn", "SAGEMCOM_T210_D_R"];
        // dsmr_console --version choices (dsmr_parser __main__.py).
        let console = ["2.2", "4", "5", "5B", "5L", "5S", "Q3D"];
        for p in p1sim_core::builtin::all().unwrap() {
            let h = reader(&p);
            assert!(known.contains(&h.version), "{}: {}", p.name, h.version);
            assert!(!h.console || console.contains(&h.version), "{}: {}", p.name, h.version);
        }
    }

    #[test]
    fn the_readme_table_names_each_profiles_home_assistant_setting() {
        let readme = include_str!("../../../README.md");
        for p in p1sim_core::builtin::all().unwrap() {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{}` |", p.name)))
                .unwrap_or_else(|| panic!("README: no row for {}", p.name));
            let h = reader(&p);
            let setting = match (h.home_assistant, h.unreadable) {
                (_, Some(_)) => "cannot read".to_string(),
                (Some(_), None) => format!("`{}`", h.version),
                (None, None) => "none".to_string(),
            };
            assert!(row.contains(&setting), "README row of {} lacks {setting}: {row}", p.name);
        }
    }
}
