//! `p1sim rig`: the RP2040 rig on its USB serial port. `rig info DEV` says Hello and shows what
//! the rig reports: firmware and protocol versions, build, settings in force and pin map.
//! `rig measure DEV` takes the electrical measurements of a rig with sensors: the data line's
//! levels and edges with the board's pull-up derived from them, Request, the board's output
//! level and its supply current.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use p1sim_core::rig::{MeasureRequest, Measured, Mode, RequestMode};
use p1sim_core::wire::board::SenseCircuit;
use serde_json::json;

use super::Outcome;
use crate::rig::Rig;
use crate::rig::RigEvent;
use crate::rig::client::{Info, describe_capture, describe_line};

/// The RP2040 rig: a real P1 signal for an interface board under test (rig-firmware/README.md).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim rig info /dev/ttyACM0\n  \
    p1sim rig info /dev/serial/by-id/usb-p1sim_p1sim_rig_0.1.0-if00\n  \
    p1sim rig measure /dev/ttyACM0 --json\n  \
    p1sim run --profile iskra-am550 --rig /dev/ttyACM0 --capture board.bin")]
pub struct Args {
    #[command(subcommand)]
    command: RigCommand,
}

#[derive(Debug, clap::Subcommand)]
enum RigCommand {
    /// Show the rig's firmware, protocol version, line settings and pin map (changes nothing).
    Info {
        /// The rig's serial device, e.g. /dev/ttyACM0.
        #[arg(value_name = "DEV")]
        device: String,
    },
    /// Measure the board plugged into the rig: the data line's levels, pull-up and edges,
    /// Request, the board's output level and its supply current (a rig with sensors).
    Measure {
        /// The rig's serial device, e.g. /dev/ttyACM0, or tcp://HOST:PORT.
        #[arg(value_name = "DEV")]
        device: String,
        /// How long to sample the supply current for its average and peak, in milliseconds.
        #[arg(long, value_name = "MS", default_value_t = 500)]
        window_ms: u16,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args) -> Result<Outcome> {
    match args.command {
        RigCommand::Info { device } => {
            let info = Rig::probe(crate::rig::transport::connector_for(&device).as_mut(), Duration::from_secs(2))?;
            print!("{}", show(&device, &info));
            Ok(Outcome::Ok)
        }
        RigCommand::Measure { device, window_ms, json } => {
            let (info, m) = measure(&device, window_ms)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&measured_json(&device, &info, &m)).expect("JSON values"));
            } else {
                print!("{}", measured_text(&device, &info, &m));
            }
            Ok(Outcome::Ok)
        }
    }
}

/// Connects, asks for the measurements and waits for them.
fn measure(device: &str, window_ms: u16) -> Result<(Info, Measured)> {
    if window_ms == 0 || window_ms > MeasureRequest::MAX_WINDOW_MS {
        bail!("--window-ms {window_ms}: give 1 to {} milliseconds", MeasureRequest::MAX_WINDOW_MS);
    }
    let settings =
        crate::rig::Settings::p1(p1sim_core::LineSettings { baud: 115_200, framing: p1sim_core::Framing::EIGHT_N1 });
    let (rig, events) = Rig::connect(crate::rig::transport::connector_for(device), settings)?;
    rig.measure(MeasureRequest { supply_window_ms: window_ms })?;
    let end = Instant::now() + Duration::from_millis(u64::from(window_ms)) + Duration::from_secs(5);
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            bail!("the rig at {device} did not answer the measurement within {} s", 5 + window_ms / 1000);
        }
        match events.recv_timeout(left) {
            Ok(RigEvent::Measured(m)) => return Ok((rig.info(), m)),
            Ok(RigEvent::DeviceError { code, arg }) => {
                bail!("the rig at {device} could not measure: {} ({arg})", code.describe())
            }
            Ok(_) => {}
            Err(_) => bail!("the rig at {device} went away while measuring"),
        }
    }
}

/// The board's pull-up and the rise in bits at 115200, from the readings.
fn derived(m: &Measured) -> (Option<f64>, Option<f64>) {
    let Some(s) = crate::bench::station::line_sense(m) else { return (None, None) };
    (s.pull_up_ohms(&SenseCircuit::from(m.circuit)), s.rise_s.map(|r| r * 115_200.0))
}

/// The sensors a rig did not announce, each with what is missing on it.
fn missing_sensors(info: &Info) -> Vec<(&'static str, &'static str)> {
    use p1sim_core::rig::caps;
    [
        (caps::SENSE_LINE, "data line", "no sense divider on ADC0 (a first-generation rig)"),
        (caps::SENSE_REQUEST, "Request", "no divider on ADC1"),
        (caps::SENSE_OUTPUT, "board output", "no divider on ADC2"),
        (caps::SENSE_SUPPLY, "supply current", "no INA219 answered at 0x40 on I2C0"),
    ]
    .into_iter()
    .filter(|(bit, _, _)| info.capabilities & bit == 0)
    .map(|(_, what, why)| (what, why))
    .collect()
}

fn measured_text(device: &str, info: &Info, m: &Measured) -> String {
    let mut s = format!(
        "rig {device}: firmware {}, protocol {}, {}\n",
        info.firmware,
        info.protocol,
        info.capability_names().iter().filter(|c| c.starts_with("sense")).copied().collect::<Vec<_>>().join(", ")
    );
    for r in &m.readings {
        let value = match r.value {
            Some(v) => format!("{v} {}", r.quantity.unit()),
            None => "not reached".into(),
        };
        s.push_str(&format!(
            "  {:<26} {:>14}   (±{} {})\n",
            r.quantity.describe(),
            value,
            r.resolution,
            r.quantity.unit()
        ));
    }
    let (ohms, bits) = derived(m);
    s.push_str(&format!(
        "  {:<26} {:>14}   (sense input {} kΩ, known load {} kΩ, threshold {} mV)\n",
        "pull-up",
        ohms.map_or("not measurable".into(), |r| format!("{:.0} Ω", r)),
        m.circuit.sense_input_ohms / 1000,
        m.circuit.known_load_ohms / 1000,
        m.circuit.threshold_mv
    ));
    if let Some(bits) = bits {
        s.push_str(&format!("  {:<26} {:>14}\n", "rise at 115200 baud", format!("{bits:.3} bit")));
    }
    for (what, why) in missing_sensors(info) {
        s.push_str(&format!("  {what:<26} {:>14}   ({why}; rig-firmware/README.md, Rig 2)\n", "not fitted"));
    }
    s
}

fn measured_json(device: &str, info: &Info, m: &Measured) -> serde_json::Value {
    let (ohms, bits) = derived(m);
    json!({
        "schema_version": 1,
        "device": device,
        "firmware": info.firmware,
        "protocol": info.protocol,
        "circuit": {
            "sense_input_ohms": m.circuit.sense_input_ohms,
            "known_load_ohms": m.circuit.known_load_ohms,
            "threshold_mv": m.circuit.threshold_mv,
        },
        "readings": m.readings.iter().map(|r| json!({
            "quantity": r.quantity.name(),
            "value": r.value,
            "unit": r.quantity.unit(),
            "resolution": r.resolution,
        })).collect::<Vec<_>>(),
        "pull_up_ohms": ohms,
        "rise_bits_115200": bits,
        "not_fitted": missing_sensors(info).iter().map(|(what, why)| json!({ "sensor": what, "why": why })).collect::<Vec<_>>(),
    })
}

/// The `rig info` text.
fn show(device: &str, info: &Info) -> String {
    let s = &info.status;
    let build = match info.mode {
        Mode::HostDriven => "host-driven (telegrams from p1sim run --rig)".to_string(),
        Mode::Standalone => format!("standalone pocket meter, profile {}", info.profile),
    };
    let p = &info.pins;
    format!(
        "rig {device}\n  firmware      {}\n  protocol      {} (this p1sim speaks {} to {})\n  build         {build}\n  \
         capabilities  {}\n  max chunk     {} bytes\n  line          {}\n  capture       {}\n  Request       {}, now {}\n  \
         pins          data GP{}, Request GP{}, capture GP{}, LED GP{}\n",
        info.firmware,
        info.protocol,
        p1sim_core::rig::MIN_PROTOCOL_VERSION,
        p1sim_core::rig::PROTOCOL_VERSION,
        info.capability_names().join(", "),
        info.max_chunk,
        describe_line(&s.line),
        describe_capture(&s.capture),
        match s.request_mode {
            RequestMode::Honour => "honoured",
            RequestMode::Ignore => "ignored",
        },
        if s.request_high { "high" } else { "low" },
        p.data,
        p.request,
        p.capture,
        p.led,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rig::fake::{Behaviour, FakeRig};

    #[test]
    fn info_shows_versions_settings_and_pins() {
        let fake = FakeRig::new(Behaviour::default());
        let info = Rig::probe(fake.connector("/dev/ttyACM0").as_mut(), Duration::from_secs(10)).unwrap();
        let text = show("/dev/ttyACM0", &info);
        assert!(text.contains("firmware      0.1.0-fake"), "{text}");
        assert!(text.contains("115200 8N1, inverted (idle low, as P1), open drain, 8 slots per bit"), "{text}");
        assert!(text.contains("data GP0, Request GP3, capture GP5, LED GP25"), "{text}");
        assert!(text.contains("honoured, now high"), "{text}");
        fake.seen(|s| assert!(s.lines.is_empty() && s.modes.is_empty(), "info changes nothing"));
    }
}
