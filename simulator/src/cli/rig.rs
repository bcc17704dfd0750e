//! `p1sim rig`: the RP2040 rig on its USB serial port. `rig info DEV` says Hello and shows what
//! the rig reports: firmware and protocol versions, build, settings in force and pin map.

use std::time::Duration;

use anyhow::Result;
use p1sim_core::rig::{Mode, RequestMode};

use super::Outcome;
use crate::rig::Rig;
use crate::rig::client::{Info, describe_capture, describe_line};

/// The RP2040 rig: a real P1 signal for an interface board under test (rig-firmware/README.md).
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  \
    p1sim rig info /dev/ttyACM0\n  \
    p1sim rig info /dev/serial/by-id/usb-p1sim_p1sim_rig_0.1.0-if00\n  \
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
}

pub fn run(args: Args) -> Result<Outcome> {
    match args.command {
        RigCommand::Info { device } => {
            let info = Rig::probe(crate::rig::transport::connector_for(&device).as_mut(), Duration::from_secs(2))?;
            print!("{}", show(&device, &info));
            Ok(Outcome::Ok)
        }
    }
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
        "rig {device}\n  firmware      {}\n  protocol      {} (this p1sim speaks {})\n  build         {build}\n  \
         capabilities  {}\n  max chunk     {} bytes\n  line          {}\n  capture       {}\n  Request       {}, now {}\n  \
         pins          data GP{}, Request GP{}, capture GP{}, LED GP{}\n",
        info.firmware,
        info.protocol,
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
