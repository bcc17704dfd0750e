//! Specification generations, countries and serial line settings: the facts a profile starts from.

use core::fmt;
use core::str::FromStr;

/// The companion standard, or the dialect of one, a meter implements. It fixes CRC presence,
/// default line settings, the interval and the M-Bus capture cadence (docs/meters.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Spec {
    Dsmr22,
    Dsmr30,
    Dsmr40,
    Dsmr42,
    Dsmr50,
    EMucs,
    SeHan,
    Smarty,
    /// IEC 62056-21 push output ("D0") as EasyMeter's Q3D sends it: no CRC, `*255` OBIS codes.
    D0,
    /// E.ON Hungary's P1 interface: DSMR 5 based, four tariffs, quadrant reactive energy.
    EonHu,
    /// Energienetze Steiermark's (Austria) customer interface: DSMR 5 objects in integer Wh,
    /// sent inside DLMS general-glo-ciphering frames.
    Steiermark,
    /// Iskra's IE.x P1 variant.
    IskraIe,
}

impl Spec {
    pub const ALL: [Spec; 12] = [
        Spec::Dsmr22,
        Spec::Dsmr30,
        Spec::Dsmr40,
        Spec::Dsmr42,
        Spec::Dsmr50,
        Spec::EMucs,
        Spec::SeHan,
        Spec::Smarty,
        Spec::D0,
        Spec::EonHu,
        Spec::Steiermark,
        Spec::IskraIe,
    ];

    pub const fn name(self) -> &'static str {
        match self {
            Spec::Dsmr22 => "DSMR 2.2",
            Spec::Dsmr30 => "DSMR 3.0",
            Spec::Dsmr40 => "DSMR 4.0",
            Spec::Dsmr42 => "DSMR 4.2",
            Spec::Dsmr50 => "DSMR 5.0",
            Spec::EMucs => "e-MUCS",
            Spec::SeHan => "SE-HAN",
            Spec::Smarty => "Smarty",
            Spec::D0 => "D0",
            Spec::EonHu => "E.ON HU",
            Spec::Steiermark => "Steiermark",
            Spec::IskraIe => "Iskra IE",
        }
    }

    /// DSMR 2.2 and 3.0 end with a bare `!` (DSMR 3.0 P1 Companion Standard §5.2), and so does
    /// D0 push output; every later generation carries a CRC.
    pub const fn has_crc(self) -> bool {
        !self.is_legacy() && !matches!(self, Spec::D0)
    }

    /// The 9600 baud generations without CRC, message timestamp or 13-character TST.
    pub const fn is_legacy(self) -> bool {
        matches!(self, Spec::Dsmr22 | Spec::Dsmr30)
    }

    /// The meter's own serial line. D0 optical ports run 9600 7E1 like DSMR 2.2/3 (IEC 62056-21).
    pub const fn default_line(self) -> LineSettings {
        if self.is_legacy() || matches!(self, Spec::D0) {
            LineSettings { baud: 9600, framing: Framing::SEVEN_E1 }
        } else {
            LineSettings { baud: 115_200, framing: Framing::EIGHT_N1 }
        }
    }

    /// Seconds between telegrams: 1 s on DSMR 5, e-MUCS and Iskra IE, 2 s on D0 (assumed, see
    /// docs/meters.md), 10 s otherwise (Smarty per its P1 specification §3.2.1).
    pub const fn default_interval_s(self) -> u32 {
        match self {
            Spec::Dsmr50 | Spec::EMucs | Spec::IskraIe => 1,
            Spec::D0 => 2,
            _ => 10,
        }
    }

    /// How often an M-Bus reading is captured: hourly on DSMR 2.2-4.x, every 5 minutes from
    /// DSMR 5 on (DSMR 3.0 §6.3, DSMR 5.0.2 §7.3).
    pub const fn mbus_capture_s(self) -> u32 {
        match self {
            Spec::Dsmr22 | Spec::Dsmr30 | Spec::Dsmr40 | Spec::Dsmr42 => 3600,
            _ => 300,
        }
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Spec {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Spec::ALL.into_iter().find(|v| v.name() == s).ok_or(UnknownName {
            expected: "one of DSMR 2.2, DSMR 3.0, DSMR 4.0, DSMR 4.2, DSMR 5.0, e-MUCS, SE-HAN, Smarty, D0, E.ON HU, \
                       Steiermark, Iskra IE",
        })
    }
}

/// A name that is not in a closed list; carries the list so errors can name the choices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnknownName {
    pub expected: &'static str,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}", self.expected)
    }
}

/// The market a meter was made for; it decides the time zone and the tariff numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Country {
    NL,
    BE,
    LU,
    SE,
    DE,
    HU,
    AT,
}

impl Country {
    pub const ALL: [Country; 7] =
        [Country::NL, Country::BE, Country::LU, Country::SE, Country::DE, Country::HU, Country::AT];

    /// The time zone the country's meters keep, unless a profile names another.
    pub fn zone(self) -> crate::clock::Zone {
        use crate::clock::Zone;
        match self {
            Country::NL => Zone::Amsterdam,
            Country::BE => Zone::Brussels,
            Country::LU => Zone::Luxembourg,
            Country::SE => Zone::Stockholm,
            Country::DE => Zone::Berlin,
            Country::HU => Zone::Budapest,
            Country::AT => Zone::Vienna,
        }
    }

    pub const fn code(self) -> &'static str {
        match self {
            Country::NL => "NL",
            Country::BE => "BE",
            Country::LU => "LU",
            Country::SE => "SE",
            Country::DE => "DE",
            Country::HU => "HU",
            Country::AT => "AT",
        }
    }
}

impl FromStr for Country {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Country::ALL
            .into_iter()
            .find(|c| c.code() == s)
            .ok_or(UnknownName { expected: "one of NL, BE, LU, SE, DE, HU, AT" })
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Parity {
    None,
    Even,
    Odd,
}

/// Character framing: data bits, parity, stop bits, written the usual way (`8N1`, `7E1`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct Framing {
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: u8,
}

impl Framing {
    pub const EIGHT_N1: Framing = Framing { data_bits: 8, parity: Parity::None, stop_bits: 1 };
    pub const SEVEN_E1: Framing = Framing { data_bits: 7, parity: Parity::Even, stop_bits: 1 };

    /// Bit times per character: start + data + parity + stop. 10 for both 8N1 and 7E1.
    pub const fn bits_per_char(self) -> u32 {
        1 + self.data_bits as u32 + if matches!(self.parity, Parity::None) { 0 } else { 1 } + self.stop_bits as u32
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.parity {
            Parity::None => 'N',
            Parity::Even => 'E',
            Parity::Odd => 'O',
        };
        write!(f, "{}{}{}", self.data_bits, p, self.stop_bits)
    }
}

impl FromStr for Framing {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const EXPECTED: UnknownName =
            UnknownName { expected: "data bits 5-8, parity N/E/O, stop bits 1-2, e.g. 8N1 or 7E1" };
        let b = s.as_bytes();
        if b.len() != 3 {
            return Err(EXPECTED);
        }
        let data_bits = match b[0] {
            b'5'..=b'8' => b[0] - b'0',
            _ => return Err(EXPECTED),
        };
        let parity = match b[1].to_ascii_uppercase() {
            b'N' => Parity::None,
            b'E' => Parity::Even,
            b'O' => Parity::Odd,
            _ => return Err(EXPECTED),
        };
        let stop_bits = match b[2] {
            b'1' | b'2' => b[2] - b'0',
            _ => return Err(EXPECTED),
        };
        Ok(Framing { data_bits, parity, stop_bits })
    }
}

/// Baud rate and framing of the P1 data line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct LineSettings {
    pub baud: u32,
    pub framing: Framing,
}

impl LineSettings {
    /// Nanoseconds a character occupies on the line.
    pub const fn char_time_ns(self) -> u64 {
        self.framing.bits_per_char() as u64 * 1_000_000_000 / self.baud as u64
    }
}

impl fmt::Display for LineSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.baud, self.framing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for s in Spec::ALL {
            assert_eq!(s.name().parse::<Spec>(), Ok(s));
        }
        assert!("DSMR 6".parse::<Spec>().is_err());
        for c in Country::ALL {
            assert_eq!(c.code().parse::<Country>(), Ok(c));
        }
    }

    #[test]
    fn legacy_generations_are_9600_7e1_without_crc() {
        for s in [Spec::Dsmr22, Spec::Dsmr30, Spec::D0] {
            assert!(!s.has_crc());
            assert_eq!(s.default_line().to_string(), "9600 7E1");
        }
        assert!(!Spec::D0.is_legacy(), "D0 has no two-line gas record and no TST12");
        assert_eq!(Spec::Dsmr50.default_line().to_string(), "115200 8N1");
    }

    #[test]
    fn character_time_matches_the_line_rate() {
        // 10 bit times: 86.8 us at 115200, 1.04 ms at 9600 (a 10-bit character: start, 8 data or 7
        // data and parity, stop).
        assert_eq!(Spec::Dsmr50.default_line().char_time_ns(), 86_805);
        assert_eq!(Spec::Dsmr22.default_line().char_time_ns(), 1_041_666);
    }

    #[test]
    fn framing_parses_and_prints() {
        for s in ["8N1", "7E1", "7O2", "5N1"] {
            assert_eq!(s.parse::<Framing>().unwrap().to_string(), s);
        }
        for s in ["9N1", "8X1", "8N3", "8N", "8N1 "] {
            assert!(s.parse::<Framing>().is_err(), "{s}");
        }
    }
}
