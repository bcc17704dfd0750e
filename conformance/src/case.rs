//! A conformance case: the bytes a decoder is given, the line they travel on, and what a correct
//! decoder must report for each telegram in them, with how firmly the evidence says so.

use p1sim_core::fault::Expect;
use p1sim_core::spec::{LineSettings, Spec};
use p1sim_core::telegram::Telegram;

/// The quirk classes cases are grouped in: the rows of the summary table and of the
/// compatibility matrix. `conformance/EVIDENCE.md` has a section per class with the public
/// sources its expectations rest on.
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
    /// Captured telegrams a user added with `--corpus`.
    Corpus,
}

impl Class {
    pub const ALL: [Class; 23] = [
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
        Class::Corpus,
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
            Class::Corpus => "corpus",
        }
    }

    /// The class named `name`, as [`Class::name`] spells it.
    pub fn from_name(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.name() == name)
    }

    /// What the class checks, in one line.
    pub fn about(self) -> &'static str {
        match self {
            Class::Clean => "every profile's telegrams, unmodified",
            Class::CrcCheck => "wrong and missing CRCs, and the spec example's wrong CRC, are rejected",
            Class::CrcFormat => "unpadded CRCs (a real heat meter) and lowercase CRC hex",
            Class::TruncationResync => "a telegram cut off when Request drops is rejected and the next one read",
            Class::Garbage => "noise, 0xFF padding and a NUL after the CRC around telegrams",
            Class::SlashInside => "a `/` inside a value, and in the Holley meter's header",
            Class::LineDamage => "dropped, duplicated and bit-flipped lines are caught by the CRC",
            Class::LineEndings => "LF-only line endings",
            Class::Oversize => "a full 1024-character text message past 1500/2048-byte buffers",
            Class::Placeholders => "clock-not-set and no-data timestamps, ghost M-Bus channels, an empty log",
            Class::UnitsWhitespace => {
                "unit spelling and scale (Wh for kWh), lowercase units, a space after the OBIS code"
            }
            Class::Legacy => "DSMR 2.2/3.0: no CRC, the two-line gas record",
            Class::Belgian => "e-MUCS: 96.1.4, 24.2.3 gas, peak demand and its history, 3.2-digit currents",
            Class::Swedish => "Swedish HAN: 8.3/4.3 widths, reactive energy, standard time all year",
            Class::Encrypted => "Luxembourg Smarty AES-128-GCM frames: keys, tags, tampering",
            Class::Framing7e1 => "9600 7E1 lines of DSMR 2.2/3 meters",
            Class::Dst => "the S/W flag across both DST changes",
            Class::MonthEnd => "month and year ends: dates, tariffs, Belgian peak rollover",
            Class::OptionalLines => "meters that omit lines others send",
            Class::D0Gateway => {
                "EasyMeter Q3D via a COM-1 gateway: no CRC, `*255` codes, a trailer and 0xFF padding after `!`"
            }
            Class::UnitScaling => "integer Wh, W, varh and var instead of kWh and kW (Austria's T210-D-r)",
            Class::FourTariffs => "E.ON Hungary: tariffs 1.8.1 to 1.8.4, quadrant reactive energy, the 98.1.0 record",
            Class::Corpus => "captured telegrams added with --corpus",
        }
    }
}

/// How firmly the evidence backs an expectation (see `conformance/EVIDENCE.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The specification says so, or real meters do it: a decoder that gets it wrong loses real
    /// data. A decoder meeting every required expectation is *conformant*.
    Required,
    /// Robustness the field needs beyond the letter of the specification (noise, damaged
    /// cables, what DIY tools send).
    Recommended,
    /// The specification is silent and no meter does it: accepting and rejecting are both right,
    /// but what an accepting decoder reports must still be true.
    Either,
}

impl Level {
    pub fn name(self) -> &'static str {
        match self {
            Level::Required => "required",
            Level::Recommended => "recommended",
            Level::Either => "either",
        }
    }
}

/// What a correct decoder must do with one telegram of the input.
#[derive(Clone, Debug, PartialEq)]
pub struct ExpectedTelegram {
    /// Accept, reject, or either when the damage cannot be seen (no CRC on DSMR 2.2/3).
    pub expect: Expect,
    /// How firmly: a required expectation decides conformance, a recommended one robustness.
    pub level: Level,
    /// The section of `conformance/EVIDENCE.md` the expectation rests on.
    pub evidence: &'static str,
    /// The telegram as the simulator made it (after meter-side faults): what an accepting decoder
    /// must report. For rejected telegrams, what it must not report.
    pub model: Telegram,
    /// What the faults did, in words, for reports.
    pub faults: Vec<String>,
}

impl ExpectedTelegram {
    /// An undamaged telegram: required, on the evidence of the telegram format itself.
    pub fn clean(model: Telegram) -> ExpectedTelegram {
        ExpectedTelegram {
            expect: Expect::Accept,
            level: Level::Required,
            evidence: "telegram-format",
            model,
            faults: Vec::new(),
        }
    }

    /// Whether a correct decoder reports this telegram.
    pub fn is_accepted(&self) -> bool {
        matches!(self.expect, Expect::Accept | Expect::AcceptLenient)
    }

    /// The expectation in words: `accept`, `reject (recommended)`, `accept or reject`, `either`.
    pub fn verdict_word(&self) -> String {
        match (self.expect, self.level) {
            (Expect::Unspecified, _) => "either (damage the bytes cannot show)".into(),
            (_, Level::Either) => "accept or reject".into(),
            (e, level) => {
                let what = if matches!(e, Expect::Reject) { "reject" } else { "accept" };
                match level {
                    Level::Required => what.to_string(),
                    _ => format!("{what} ({})", level.name()),
                }
            }
        }
    }
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
    /// Telegrams a correct decoder reports (or may report, for `Either`).
    pub fn accepted(&self) -> usize {
        self.telegrams.iter().filter(|t| t.is_accepted()).count()
    }

    /// Whether any expectation of the case is only recommended.
    pub fn has_recommended(&self) -> bool {
        self.telegrams.iter().any(|t| t.level == Level::Recommended)
    }
}
