//! p1sim conformance adapter for the `dsmr5` crate (crates.io, 0.4.0), a `no_std` decoder of
//! DSMR 5 telegrams: its `Reader` frames the byte stream into readouts, `to_telegram()` checks
//! the CRC, and `objects()` parses the lines. Every telegram `to_telegram()` accepts is printed as
//! one JSON line of the decoder interface (conformance/adapters/README.md), built only from what
//! dsmr5 returned:
//! - each `OBIS` variant under the OBIS code its name stands for (`MeterReadingTo(Tariff1, _)` is
//!   `1-0:1.8.1`), the line and slave numbers giving the phase and channel;
//! - numbers as dsmr5 parsed them (an `f64` of the fixed-point value), with the unit its type
//!   stands for in the DSMR 5 tables it implements (kWh, kW, V, A); dsmr5 knows no unit for M-Bus
//!   readings, so they have none;
//! - timestamps rebuilt from its `TST` fields and DST flag; octet strings as hex of its octets;
//! - lines it cannot parse (`Err`), and the variants it leaves unparsed (the failure log, text
//!   messages), are left out, as a program using dsmr5 would have nothing for them.
//!
//! Reads the case on standard input (`P1SIM_TRANSPORT=stdin`), or many cases with
//! `P1SIM_PERSISTENT=1`.

use std::io::{self, BufRead, Read, Write};
use std::process::ExitCode;

use dsmr5::types::TST;
use dsmr5::{Line, OBIS, Slave, Tariff};
use serde_json::{Value, json};

fn main() -> ExitCode {
    let persistent = std::env::var("P1SIM_PERSISTENT").is_ok_and(|v| v == "1");
    let transport = std::env::var("P1SIM_TRANSPORT").unwrap_or_else(|_| "stdin".into());
    if transport != "stdin" {
        eprintln!("p1sim-adapter-dsmr5: only P1SIM_TRANSPORT=stdin is supported, got {transport:?}");
        return ExitCode::from(2);
    }
    let result = if persistent { serve() } else { one_case() };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("p1sim-adapter-dsmr5: {e}");
            ExitCode::from(2)
        }
    }
}

fn one_case() -> io::Result<()> {
    let mut input = Vec::new();
    io::stdin().lock().read_to_end(&mut input)?;
    let mut out = io::stdout().lock();
    for line in decode(&input) {
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// The persistent mode: `P1SIM-CASE<TAB>name<TAB>bytes<TAB>...` then the bytes, answered by the
/// JSON lines and `P1SIM-END<TAB>name`.
fn serve() -> io::Result<()> {
    let mut stdin = io::stdin().lock();
    let mut out = io::stdout().lock();
    loop {
        let mut header = String::new();
        if stdin.read_line(&mut header)? == 0 {
            return Ok(());
        }
        let fields: Vec<&str> = header.trim_end_matches('\n').split('\t').collect();
        let (Some(&"P1SIM-CASE"), Some(name), Some(Ok(size))) =
            (fields.first(), fields.get(1), fields.get(2).map(|s| s.parse::<usize>()))
        else {
            return Err(io::Error::other(format!("expected a P1SIM-CASE header, got {:?}", header.trim_end())));
        };
        let mut input = vec![0u8; size];
        stdin.read_exact(&mut input)?;
        for line in decode(&input) {
            writeln!(out, "{line}")?;
        }
        writeln!(out, "P1SIM-END\t{name}")?;
        out.flush()?;
    }
}

/// The JSON lines of every telegram dsmr5 accepts in `input`.
fn decode(input: &[u8]) -> Vec<String> {
    let reader = dsmr5::Reader::new(input.iter().map(|&b| Ok::<u8, ()>(b)));
    let mut lines = Vec::new();
    for readout in reader {
        // A buffer overflow ends that readout only; the reader goes on with the next `/`.
        let Ok(readout) = readout else { continue };
        let Ok(telegram) = readout.to_telegram() else { continue };
        let objects: Vec<Value> = telegram.objects().filter_map(Result::ok).filter_map(|o| object(&o)).collect();
        lines.push(json!({ "objects": objects }).to_string());
    }
    lines
}

fn number(v: f64, unit: Option<&str>) -> Value {
    json!({ "value": v, "unit": unit })
}

fn integer(v: u64) -> Value {
    json!({ "value": v, "unit": null })
}

fn text(s: String) -> Value {
    json!({ "value": s, "unit": null })
}

fn tst(t: &TST) -> Value {
    let flag = if t.dst { 'S' } else { 'W' };
    text(format!("{:02}{:02}{:02}{:02}{:02}{:02}{flag}", t.year, t.month, t.day, t.hour, t.minute, t.second))
}

/// Hex of the octets dsmr5 read, as the meter sent them.
fn hex(s: &dsmr5::types::OctetString<'_>) -> Value {
    let text: String = s.as_octets().map(|b| b.map_or_else(|_| "??".into(), |b| format!("{b:02X}"))).collect();
    self::text(text)
}

fn phase(line: &Line) -> u8 {
    match line {
        Line::Line1 => 0,
        Line::Line2 => 1,
        Line::Line3 => 2,
    }
}

fn channel(s: &Slave) -> u8 {
    match s {
        Slave::Slave1 => 1,
        Slave::Slave2 => 2,
        Slave::Slave3 => 3,
        Slave::Slave4 => 4,
    }
}

fn tariff(t: &Tariff) -> u8 {
    match t {
        Tariff::Tariff1 => 1,
        Tariff::Tariff2 => 2,
    }
}

/// One object in the schema, or `None` for the variants dsmr5 does not parse.
fn object(o: &OBIS<'_>) -> Option<Value> {
    let (obis, values) = match o {
        OBIS::Version(v) => ("1-3:0.2.8".to_string(), vec![hex(v)]),
        OBIS::DateTime(t) => ("0-0:1.0.0".to_string(), vec![tst(t)]),
        OBIS::EquipmentIdentifier(v) => ("0-0:96.1.1".to_string(), vec![hex(v)]),
        OBIS::MeterReadingTo(t, v) => (format!("1-0:1.8.{}", tariff(t)), vec![number(f64::from(v), Some("kWh"))]),
        OBIS::MeterReadingBy(t, v) => (format!("1-0:2.8.{}", tariff(t)), vec![number(f64::from(v), Some("kWh"))]),
        OBIS::TariffIndicator(v) => ("0-0:96.14.0".to_string(), vec![hex(v)]),
        OBIS::PowerDelivered(v) => ("1-0:1.7.0".to_string(), vec![number(f64::from(v), Some("kW"))]),
        OBIS::PowerReceived(v) => ("1-0:2.7.0".to_string(), vec![number(f64::from(v), Some("kW"))]),
        OBIS::PowerFailures(n) => ("0-0:96.7.21".to_string(), vec![integer(n.0)]),
        OBIS::LongPowerFailures(n) => ("0-0:96.7.9".to_string(), vec![integer(n.0)]),
        OBIS::VoltageSags(l, n) => (format!("1-0:{}.32.0", 32 + 20 * phase(l)), vec![integer(n.0)]),
        OBIS::VoltageSwells(l, n) => (format!("1-0:{}.36.0", 32 + 20 * phase(l)), vec![integer(n.0)]),
        OBIS::InstantaneousVoltage(l, v) => {
            (format!("1-0:{}.7.0", 32 + 20 * phase(l)), vec![number(f64::from(v), Some("V"))])
        }
        OBIS::InstantaneousCurrent(l, n) => {
            (format!("1-0:{}.7.0", 31 + 20 * phase(l)), vec![json!({ "value": n.0, "unit": "A" })])
        }
        OBIS::InstantaneousActivePowerPlus(l, v) => {
            (format!("1-0:{}.7.0", 21 + 20 * phase(l)), vec![number(f64::from(v), Some("kW"))])
        }
        OBIS::InstantaneousActivePowerNeg(l, v) => {
            (format!("1-0:{}.7.0", 22 + 20 * phase(l)), vec![number(f64::from(v), Some("kW"))])
        }
        OBIS::SlaveDeviceType(s, t) => {
            (format!("0-{}:24.1.0", channel(s)), vec![t.as_ref().map_or_else(|| text(String::new()), |t| integer(t.0))])
        }
        OBIS::SlaveEquipmentIdentifier(s, v) => (format!("0-{}:96.1.0", channel(s)), vec![hex(v)]),
        OBIS::SlaveMeterReading(s, t, v) => {
            let value = v.as_ref().map_or(json!({ "value": null, "unit": null }), |v| number(f64::from(v), None));
            (format!("0-{}:24.2.1", channel(s)), vec![tst(t), value])
        }
        OBIS::PowerFailureEventLog | OBIS::TextMessage | OBIS::TextMessageCode => return None,
    };
    Some(json!({ "obis": obis, "values": values }))
}
