//! A conformance case: the bytes a decoder is given, the line they travel on, and what a correct
//! decoder must report for each telegram in them.

use p1sim_core::fault::Expect;
use p1sim_core::spec::{LineSettings, Spec};
use p1sim_core::telegram::Telegram;

/// The quirk classes cases are grouped in: the rows of the summary table and of the
/// compatibility matrix. Each names the peers-and-quirks.md entries it covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Class {
    Clean,
    CrcCheck,
    CrcFormat,
    TruncationResync,
    Garbage,
    SlashInside,
    LineDamage,
    LineEndings,
    Oversize,
    Placeholders,
    UnitsWhitespace,
    Legacy,
    Belgian,
    Swedish,
    Encrypted,
    Framing7e1,
    Dst,
    MonthEnd,
    OptionalLines,
    D0Gateway,
    UnitScaling,
    FourTariffs,
}

impl Class {
    pub const ALL: [Class; 22] = [
        Class::Clean,
        Class::CrcCheck,
        Class::CrcFormat,
        Class::TruncationResync,
        Class::Garbage,
        Class::SlashInside,
        Class::LineDamage,
        Class::LineEndings,
        Class::Oversize,
        Class::Placeholders,
        Class::UnitsWhitespace,
        Class::Legacy,
        Class::Belgian,
        Class::Swedish,
        Class::Encrypted,
        Class::Framing7e1,
        Class::Dst,
        Class::MonthEnd,
        Class::OptionalLines,
        Class::D0Gateway,
        Class::UnitScaling,
        Class::FourTariffs,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Class::Clean => "clean",
            Class::CrcCheck => "crc-check",
            Class::CrcFormat => "crc-format",
            Class::TruncationResync => "truncation-resync",
            Class::Garbage => "garbage",
            Class::SlashInside => "slash-inside",
            Class::LineDamage => "line-damage",
            Class::LineEndings => "line-endings",
            Class::Oversize => "oversize",
            Class::Placeholders => "placeholders",
            Class::UnitsWhitespace => "units-whitespace",
            Class::Legacy => "legacy-dsmr2",
            Class::Belgian => "belgian",
            Class::Swedish => "swedish",
            Class::Encrypted => "encrypted",
            Class::Framing7e1 => "framing-7e1",
            Class::Dst => "dst",
            Class::MonthEnd => "month-end",
            Class::OptionalLines => "optional-lines",
            Class::D0Gateway => "d0-gateway",
            Class::UnitScaling => "unit-scaling",
            Class::FourTariffs => "four-tariffs",
        }
    }

    /// What the class checks, with the quirks (peers-and-quirks.md) it comes from.
    pub fn about(self) -> &'static str {
        match self {
            Class::Clean => "every profile's telegrams, unmodified",
            Class::CrcCheck => "wrong and missing CRCs are rejected (Q4, Q7, Q17)",
            Class::CrcFormat => "lowercase and unpadded CRCs with the right value are accepted (Q5, Q20)",
            Class::TruncationResync => {
                "a telegram cut off (Request dropped) is dropped and the next one read (Q10, Q18)"
            }
            Class::Garbage => "noise, 0xFF padding and a NUL after the CRC around telegrams (Q11, Q15, Q18)",
            Class::SlashInside => "a `/` inside a telegram that its CRC covers (Q6)",
            Class::LineDamage => "dropped, duplicated and bit-flipped lines are caught by the CRC (Q17)",
            Class::LineEndings => "LF-only line endings (Q20)",
            Class::Oversize => "telegrams past 1500/2048/3000-byte buffers (Q11)",
            Class::Placeholders => "clock-not-set, no-data timestamps and ghost M-Bus channels (Q1, Q2, Q14)",
            Class::UnitsWhitespace => "lowercase units and whitespace after the OBIS code (Q20)",
            Class::Legacy => "DSMR 2.2/3.0: no CRC, the two-line gas record (Q3, Q4)",
            Class::Belgian => "e-MUCS: 96.1.4, 24.2.3 gas, peak demand history, 3.2-digit currents (Q12, Q13)",
            Class::Swedish => "Swedish HAN: 8.3/4.3 widths, reactive energy, no tariffs",
            Class::Encrypted => "Luxembourg Smarty AES-128-GCM frames (Q16)",
            Class::Framing7e1 => "9600 7E1 lines of DSMR 2.2/3 meters (Q8)",
            Class::Dst => "the S/W flag across both DST changes (Q19)",
            Class::MonthEnd => "month and year ends: dates, tariffs, Belgian peak rollover",
            Class::OptionalLines => "meters that omit lines others send (Q21)",
            Class::D0Gateway => {
                "EasyMeter Q3D via a COM-1 gateway: no CRC, `*255` codes, a trailer and 0xFF padding after `!`"
            }
            Class::UnitScaling => "integer Wh, W, varh and var instead of kWh and kW (Austria's T210-D-r)",
            Class::FourTariffs => "E.ON Hungary: tariffs 1.8.1 to 1.8.4, quadrant reactive energy, the 98.1.0 record",
        }
    }
}

/// What a correct decoder must do with one telegram of the input.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedTelegram {
    pub expect: Expect,
    /// The telegram as the simulator made it (after meter-side faults): what an accepting decoder
    /// must report. For rejected telegrams, what it must not report.
    pub model: Telegram,
    /// What the faults did, in words, for reports.
    pub faults: Vec<String>,
}

/// One case of the suite.
#[derive(Clone, Debug)]
pub struct Case {
    /// Unique, stable, `/`-separated: `class/profile/variant/seed`.
    pub name: String,
    pub class: Class,
    pub description: String,
    pub profile: String,
    pub spec: Spec,
    pub line: LineSettings,
    /// The key the decoder needs, if the case is encrypted.
    pub key: Option<[u8; 16]>,
    /// The meter's authentication key, where it is not Smarty's published one.
    pub auth_key: Option<[u8; 16]>,
    pub input: Vec<u8>,
    pub telegrams: Vec<ExpectedTelegram>,
}

impl Case {
    /// Telegrams a correct decoder reports.
    pub fn accepted(&self) -> usize {
        self.telegrams.iter().filter(|t| matches!(t.expect, Expect::Accept | Expect::AcceptLenient)).count()
    }
}
