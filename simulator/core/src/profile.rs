//! The meter profile: everything that makes one make and model's telegram differ from another's.
//!
//! A [`Profile`] is plain data. It is loaded from TOML on the host (`profile::load`, std only) and
//! serialised with postcard into the firmware's pocket-meter build, so it derives serde both ways.

use alloc::string::String;
use alloc::vec::Vec;

use crate::clock::ClockRule;
use crate::format::NumFormat;
use crate::obis::Obis;
use crate::spec::{Country, LineSettings, Spec};

#[cfg(feature = "std")]
pub mod load;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Profile {
    /// The profile's name, e.g. `iskra-am550` (the file stem for files on disk).
    pub name: String,
    pub description: String,
    pub country: Country,
    pub spec: Spec,
    /// The identification line without the leading `/`, e.g. `ISK5\2M550T-1012`.
    pub header: String,
    /// 1 or 3; phase 2 and 3 objects only exist on poly-phase meters.
    pub phases: u8,
    pub interval_s: u32,
    pub line: LineSettings,
    pub clock: ClockRule,
    /// Whether the empty line follows the header (every verified CRC has it; one Kamstrup sample
    /// not).
    pub blank_line: bool,
    /// Whether `!` is followed by the CRC; false on DSMR 2.2/3.0.
    pub crc: bool,
    /// Whether the CRC is zero-padded to four digits; the NWA Warmtelink sends `!B9F`.
    pub crc_padded: bool,
    /// Whether the telegram ends with `!`; some Iskra MT382 send no end marker at all, and the
    /// next telegram's `/` (or the pause before it) ends theirs (docs/quirks.md).
    pub end_marker: bool,
    /// The OBIS F group every code carries, as EasyMeter's D0 output writes `1-0:1.8.0*255`.
    pub obis_f: Option<u8>,
    /// What a gateway between meter and reader adds after each telegram.
    pub trailer: Option<Trailer>,
    /// Whether equipment ids, M-Bus ids and the system title are derived from the seed
    /// (`identity`), or sent exactly as the profile writes them.
    pub derive_identity: bool,
    pub failure_log: FailureLogStyle,
    pub mbus: Vec<MBusDevice>,
    pub objects: Vec<Object>,
    pub encryption: Option<Encryption>,
    pub household: crate::household::HouseholdConfig,
    /// The meter's state when a run starts, where a captured telegram gave it (`[start]`);
    /// what it leaves out is drawn from the seed.
    pub start: Option<StartState>,
    /// The public facts the profile is built from: real telegrams, standards, issues
    /// (docs/meters.md).
    pub sources: Vec<String>,
}

/// A meter's state at the start of a run, as a captured telegram showed it: a run continues
/// from the meter's real registers, counters, log, M-Bus readings, tariff and messages. Every
/// field left out is drawn from the seed as for any profile.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StartState {
    /// Active energy per tariff register, Wh: tariffs 1 to 4, unused ones 0 (meters without
    /// tariffs book everything on the first).
    pub import_wh: Option<[u64; 4]>,
    pub export_wh: Option<[u64; 4]>,
    /// Reactive energy, varh.
    pub q_import_varh: Option<u64>,
    pub q_export_varh: Option<u64>,
    /// Reactive energy per tariff register (3.8.1, 4.8.2, ...), varh.
    #[serde(default)]
    pub q_import_tariff_varh: Option<[u64; 4]>,
    #[serde(default)]
    pub q_export_tariff_varh: Option<[u64; 4]>,
    /// Reactive energy per quadrant Q1 to Q4 (5.8.0 to 8.8.0), varh.
    #[serde(default)]
    pub q_quadrant_varh: Option<[u64; 4]>,
    /// The tariff shown until the next whole hour, when the schedule takes over.
    pub tariff: Option<u8>,
    pub power_failures: Option<u32>,
    pub long_power_failures: Option<u32>,
    /// Most recent first.
    pub failure_log: Option<Vec<crate::readings::PowerFailure>>,
    pub sags: Option<[u32; 3]>,
    pub swells: Option<[u32; 3]>,
    pub text_message: Option<String>,
    pub text_code: Option<String>,
    /// The last captured reading per M-Bus channel.
    pub mbus: Vec<crate::readings::MBusValue>,
    /// Belgian demand: the month's peak so far and the completed months, oldest first.
    pub month_max: Option<(crate::format::LocalTime, u32)>,
    pub demand_history: Option<Vec<crate::readings::DemandMonth>>,
    /// Smarty's invocation counter of the first frame.
    pub frame_counter: Option<u32>,
}

impl Profile {
    pub fn mbus_device(&self, channel: u8) -> Option<&MBusDevice> {
        self.mbus.iter().find(|d| d.channel == channel)
    }

    /// Whether the profile books energy on tariff registers (x.8.1/x.8.2); Swedish meters do not.
    pub fn has_tariffs(&self) -> bool {
        self.objects.iter().any(|o| matches!(o.kind, Kind::Energy { register: Register { tariff: Some(_), .. }, .. }))
    }

    pub fn is_encrypted(&self) -> bool {
        self.encryption.is_some()
    }

    /// The tariff registers the meter books on (x.8.1 to x.8.4): 0 for meters with totals only.
    pub fn tariff_count(&self) -> u8 {
        self.objects
            .iter()
            .filter_map(|o| match o.kind {
                Kind::Energy { register: Register { tariff: Some(t), .. }, .. } => Some(t),
                _ => None,
            })
            .max()
            .unwrap_or(0)
    }
}

/// Lines a gateway appends after the meter's telegram: EasyMeter's COM-1 Ethernet gateway sends a
/// right-aligned counter line and, on some units, a run of 0xFF bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Trailer {
    /// Width of the counter line (0: none). Its meaning is undocumented; p1sim sends the
    /// seconds since the start of the year, which grows as the real one does.
    pub counter_width: u8,
    /// 0xFF bytes in a line of their own (0: none).
    pub ff_padding: u16,
}

/// One line of the telegram: an OBIS code and how its value is produced.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Object {
    pub obis: Obis,
    pub kind: Kind,
}

/// A numeric rendering: digit widths and the unit text exactly as the meter spells it.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Num {
    pub format: NumFormat,
    pub unit: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Direction {
    Import,
    Export,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Energy {
    Active,
    Reactive,
    /// Reactive energy of one quadrant, 1 to 4 (`5.8.0` to `8.8.0`); the direction is ignored.
    Quadrant(u8),
    /// Active import plus export (`15.8.0`); the direction is ignored.
    Combined,
}

/// An energy register: `1-0:1.8.1` is import, active, tariff 1; `1-0:3.8.0` reactive import total.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Register {
    pub direction: Direction,
    pub energy: Energy,
    /// `None` for the totals (`x.8.0`).
    pub tariff: Option<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum PowerKind {
    Active,
    Reactive,
    Apparent,
    /// Reactive power of one quadrant, 1 to 4 (`5.7.0` to `8.7.0`); the direction is ignored.
    Quadrant(u8),
}

/// An instantaneous power: `1-0:1.7.0` total import, `1-0:42.7.0` L2 export, `1-0:23.7.0` L1 Q+.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct PowerQuantity {
    pub direction: Direction,
    pub kind: PowerKind,
    /// 1..=3, or `None` for the sum over phases.
    pub phase: Option<u8>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Kind {
    /// One bracket with fixed text: `1-3:0.2.8(50)`, `0-0:17.0.0(999.9*kW)`.
    Text(String),
    /// One bracket with text sent as hex, two digits per octet: equipment ids.
    Hex(String),
    /// Verbatim text after the OBIS code, for multi-value literals such as `(100*A)(-063*A)`.
    Raw(String),
    /// The message timestamp `0-0:1.0.0(YYMMDDhhmmssX)`.
    Clock,
    Energy {
        register: Register,
        num: Num,
    },
    /// `0-0:96.14.0(0001)`.
    Tariff {
        format: NumFormat,
    },
    Power {
        quantity: PowerQuantity,
        num: Num,
    },
    Voltage {
        phase: u8,
        num: Num,
    },
    Current {
        phase: u8,
        num: Num,
    },
    /// `96.7.21` (all) or `96.7.9` (long) power failures.
    Failures {
        long: bool,
        format: NumFormat,
    },
    /// `1-0:99.97.0`, rendered per [`FailureLogStyle`]; `num` is the duration's width and unit.
    FailureLog {
        num: Num,
    },
    Sags {
        phase: u8,
        format: NumFormat,
    },
    Swells {
        phase: u8,
        format: NumFormat,
    },
    /// `0-0:96.13.0`, the long text message, hex encoded.
    TextMessage,
    /// `0-0:96.13.1`, the numeric text message code (DSMR 3/4), hex encoded.
    TextCode,
    /// e-MUCS `1-0:1.4.0`: average demand of the running quarter hour.
    Demand {
        num: Num,
    },
    /// e-MUCS `1-0:1.6.0(TST)(kW)`: the month's highest quarter-hour demand and when it happened.
    /// With `value_first`, `(kW)(YYMMDDhhmmss)` as an Iskra IE5T writes it (docs/quirks.md).
    DemandMax {
        num: Num,
        value_first: bool,
    },
    /// e-MUCS `0-0:98.1.0`: the 13-month history of monthly peaks.
    DemandHistory {
        num: Num,
    },
    /// E.ON Hungary's `0-0:98.1.0`: the last month-end snapshot, `(TST)` then thirteen registers
    /// (1.8.0-1.8.2, 2.8.0-2.8.2, 3.8.0, 4.8.0, 5.8.0-8.8.0, 15.8.0) and six quarter-hour peaks
    /// (import total, tariff 1, 2, export total, 1, 2), with no count header. `num` is the
    /// active energy's; reactive values use its unit with `varh`, peaks `kW` with 2.3 digits.
    Billing {
        num: Num,
    },
    /// `1-0:13.7.0` (total), `33.7.0`, `53.7.0`, `73.7.0`: cos(phi), without a unit.
    PowerFactor {
        phase: Option<u8>,
        format: NumFormat,
    },
    /// `1-0:14.7.0`: mains frequency.
    Frequency {
        num: Num,
    },
    MBusType {
        channel: u8,
        format: NumFormat,
    },
    MBusId {
        channel: u8,
    },
    /// `0-n:24.2.1(TST)(value*unit)` (`24.2.3` for Belgian gas).
    MBusReading {
        channel: u8,
        num: Num,
    },
    /// DSMR 2.2/3.0 `0-n:24.3.0(TST12)(status)(period)(1)(capture)(unit)` CRLF `(value)`.
    MBusLegacy {
        channel: u8,
        num: Num,
        status: String,
        period: String,
        capture: Obis,
    },
}

/// How the power-failure log is written; vendors differ (docs/meters.md; DSMR 5.0.2 §6.11 has
/// the newest entry first).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FailureLogStyle {
    pub order: LogOrder,
    /// Kaifa's permanent placeholder entry, e.g. `000101000001W`, written with 2147483647 s.
    pub dummy: Option<String>,
    /// The meter keeps at most this many entries (10 in the spec).
    pub max_entries: u8,
    pub empty: EmptyLog,
}

impl Default for FailureLogStyle {
    fn default() -> Self {
        Self { order: LogOrder::NewestFirst, dummy: None, max_entries: 10, empty: EmptyLog::ZeroCount }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LogOrder {
    /// As the spec says (Sagemcom).
    NewestFirst,
    /// Iskra M550E and L+G E360 NL.
    OldestFirst,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EmptyLog {
    /// `(0)(0-0:96.7.19)` (L+G E350, Sagemcom XS210).
    ZeroCount,
    /// `()` (seen on an Iskra AM550; it crashed dsmr_parser, docs/quirks.md#empty-values).
    EmptyBrackets,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Medium {
    Gas,
    Water,
    Heat,
    /// A channel that is listed but has no working device: Iskra AM550's channel 1, the
    /// unused water slots of Smarty.
    Ghost,
}

impl Medium {
    /// EN 13757-3 device type (table 6: 03 gas, 04 heat, 07 water).
    pub const fn device_type(self) -> u8 {
        match self {
            Medium::Gas => 3,
            Medium::Water => 7,
            Medium::Heat => 4,
            Medium::Ghost => 3,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct MBusDevice {
    pub channel: u8,
    pub medium: Medium,
    pub device_type: u8,
    /// Equipment identifier text; sent hex encoded (unless `raw_id`), `()` when empty.
    pub id: String,
    /// Whether `id` is sent as written: the NWA Warmtelink sends the M-Bus secondary address
    /// itself, 16 hex digits.
    pub raw_id: bool,
    /// Seconds between captures of the reading.
    pub capture_s: u32,
    /// For ghost devices: the placeholder timestamp and value text, e.g. `700101010000W`,
    /// `00000000`.
    pub placeholder: Option<(String, String)>,
}

/// DLMS general-glo-ciphering around the telegram (Luxembourg Smarty, Austria's T210-D-r;
/// docs/meters.md).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Encryption {
    pub system_title: [u8; 8],
    /// The authentication key in the GCM additional data: Smarty's published one unless the
    /// profile or `--auth-key` says otherwise.
    pub auth_key: [u8; 16],
}

/// Maps an OBIS code to the quantity it carries, for codes whose meaning the spec fixes.
/// Returns `None` for codes that only make sense as literals (version, thresholds, breaker).
pub fn quantity_of(obis: Obis) -> Option<Quantity> {
    use Direction::*;
    let phase_of = |c: u8, base: u8| Some((c - base) / 20 + 1);
    let q = match (obis.a, obis.b, obis.c, obis.d, obis.e) {
        (0, 0, 1, 0, 0) => Quantity::Clock,
        (1, 0, c @ 1..=4, 8, e @ 0..=4) => {
            let direction = if c % 2 == 1 { Import } else { Export };
            let energy = if c <= 2 { Energy::Active } else { Energy::Reactive };
            Quantity::Energy(Register { direction, energy, tariff: (e > 0).then_some(e) })
        }
        (1, 0, c @ 5..=8, 8, 0) => {
            Quantity::Energy(Register { direction: Import, energy: Energy::Quadrant(c - 4), tariff: None })
        }
        (1, 0, 15, 8, 0) => Quantity::Energy(Register { direction: Import, energy: Energy::Combined, tariff: None }),
        (1, 0, c @ 5..=8, 7, 0) => {
            Quantity::Power(PowerQuantity { direction: Import, kind: PowerKind::Quadrant(c - 4), phase: None })
        }
        (1, 0, 13, 7, 0) => Quantity::PowerFactor(None),
        (1, 0, c @ (33 | 53 | 73), 7, 0) => Quantity::PowerFactor(phase_of(c, 33)),
        (1, 0, 14, 7, 0) => Quantity::Frequency,
        (0, 0, 96, 14, 0) => Quantity::Tariff,
        (1, 0, c @ (1..=4 | 9 | 10), 7, 0) => {
            let (direction, kind) = match c {
                1 => (Import, PowerKind::Active),
                2 => (Export, PowerKind::Active),
                3 => (Import, PowerKind::Reactive),
                4 => (Export, PowerKind::Reactive),
                9 => (Import, PowerKind::Apparent),
                _ => (Export, PowerKind::Apparent),
            };
            Quantity::Power(PowerQuantity { direction, kind, phase: None })
        }
        (1, 0, c @ (21..=24 | 41..=44 | 61..=64), 7, 0) => {
            let (direction, kind) = match c % 20 {
                1 => (Import, PowerKind::Active),
                2 => (Export, PowerKind::Active),
                3 => (Import, PowerKind::Reactive),
                _ => (Export, PowerKind::Reactive),
            };
            Quantity::Power(PowerQuantity { direction, kind, phase: phase_of(c, 21) })
        }
        (1, 0, c @ (32 | 52 | 72), 7, 0) => Quantity::Voltage(phase_of(c, 32)?),
        (1, 0, c @ (31 | 51 | 71), 7, 0) => Quantity::Current(phase_of(c, 31)?),
        (0, 0, 96, 7, 21) => Quantity::Failures { long: false },
        (0, 0, 96, 7, 9) => Quantity::Failures { long: true },
        (1, 0, 99, 97, 0) => Quantity::FailureLog,
        (1 | 0, 0, c @ (32 | 52 | 72), 32, 0) => Quantity::Sags(phase_of(c, 32)?),
        (1 | 0, 0, c @ (32 | 52 | 72), 36, 0) => Quantity::Swells(phase_of(c, 32)?),
        (0, 0, 96, 13, 0) => Quantity::TextMessage,
        (0, 0, 96, 13, 1) => Quantity::TextCode,
        (1, 0, 1, 4, 0) => Quantity::Demand,
        (1, 0, 1, 6, 0) => Quantity::DemandMax,
        (0, 0, 98, 1, 0) => Quantity::DemandHistory,
        (0, b @ 1..=4, 24, 1, 0) => Quantity::MBusType(b),
        (0, b @ 1..=4, 96, 1, 0 | 1) => Quantity::MBusId(b),
        (0, b @ 1..=4, 24, 2, 1 | 3) => Quantity::MBusReading(b),
        (0, b @ 1..=4, 24, 3, 0) => Quantity::MBusLegacy(b),
        _ => return None,
    };
    Some(q)
}

/// What an OBIS code means, before a profile says how it is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantity {
    Clock,
    Energy(Register),
    Tariff,
    Power(PowerQuantity),
    Voltage(u8),
    Current(u8),
    Failures { long: bool },
    FailureLog,
    Sags(u8),
    Swells(u8),
    TextMessage,
    TextCode,
    Demand,
    DemandMax,
    DemandHistory,
    PowerFactor(Option<u8>),
    Frequency,
    MBusType(u8),
    MBusId(u8),
    MBusReading(u8),
    MBusLegacy(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Option<Quantity> {
        quantity_of(Obis::parse(s.as_bytes()).unwrap())
    }

    #[test]
    fn energy_registers() {
        assert_eq!(
            q("1-0:1.8.1"),
            Some(Quantity::Energy(Register { direction: Direction::Import, energy: Energy::Active, tariff: Some(1) }))
        );
        assert_eq!(
            q("1-0:4.8.0"),
            Some(Quantity::Energy(Register { direction: Direction::Export, energy: Energy::Reactive, tariff: None }))
        );
    }

    #[test]
    fn per_phase_powers() {
        assert_eq!(
            q("1-0:42.7.0"),
            Some(Quantity::Power(PowerQuantity {
                direction: Direction::Export,
                kind: PowerKind::Active,
                phase: Some(2)
            }))
        );
        assert_eq!(
            q("1-0:63.7.0"),
            Some(Quantity::Power(PowerQuantity {
                direction: Direction::Import,
                kind: PowerKind::Reactive,
                phase: Some(3)
            }))
        );
        assert_eq!(q("1-0:72.7.0"), Some(Quantity::Voltage(3)));
        assert_eq!(q("1-0:51.7.0"), Some(Quantity::Current(2)));
    }

    #[test]
    fn mbus_objects_carry_their_channel() {
        assert_eq!(q("0-2:24.2.1"), Some(Quantity::MBusReading(2)));
        assert_eq!(q("0-1:24.2.3"), Some(Quantity::MBusReading(1)));
        assert_eq!(q("0-1:96.1.1"), Some(Quantity::MBusId(1)));
        assert_eq!(q("0-0:96.1.1"), None, "the meter's own id is a literal");
    }

    #[test]
    fn hungarian_and_austrian_registers() {
        let e = |direction, energy, tariff| Some(Quantity::Energy(Register { direction, energy, tariff }));
        assert_eq!(q("1-0:1.8.4"), e(Direction::Import, Energy::Active, Some(4)));
        assert_eq!(q("1-0:3.8.2"), e(Direction::Import, Energy::Reactive, Some(2)));
        assert_eq!(q("1-0:7.8.0"), e(Direction::Import, Energy::Quadrant(3), None));
        assert_eq!(q("1-0:15.8.0"), e(Direction::Import, Energy::Combined, None));
        assert_eq!(q("1-0:53.7.0"), Some(Quantity::PowerFactor(Some(2))));
        assert_eq!(q("1-0:13.7.0"), Some(Quantity::PowerFactor(None)));
        assert_eq!(q("1-0:14.7.0"), Some(Quantity::Frequency));
        assert_eq!(q("1-0:1.8.5"), None, "no meter books on a fifth tariff");
    }

    #[test]
    fn literals_have_no_quantity() {
        for s in ["1-3:0.2.8", "0-0:17.0.0", "0-0:96.3.10", "1-0:31.4.0", "0-0:96.1.4"] {
            assert_eq!(q(s), None, "{s}");
        }
    }
}
