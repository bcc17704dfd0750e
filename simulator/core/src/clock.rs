//! The meter's clock: IANA time zones compiled in (no system tzdb, so output never depends on
//! the host), and the S/W flag the telegram timestamp carries.

use crate::format::LocalTime;
use core::fmt;
use core::str::FromStr;
use jiff::Timestamp;
use jiff::tz::TimeZone;

/// The zones p1sim's meters live in. Each is embedded at compile time by `jiff::tz::get!`,
/// which works without an allocator, so the firmware keeps the same clock as the host.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Zone {
    Amsterdam,
    Brussels,
    Luxembourg,
    Stockholm,
    Vienna,
    Budapest,
    Berlin,
}

static AMSTERDAM: TimeZone = jiff::tz::get!("Europe/Amsterdam");
static BRUSSELS: TimeZone = jiff::tz::get!("Europe/Brussels");
static LUXEMBOURG: TimeZone = jiff::tz::get!("Europe/Luxembourg");
static STOCKHOLM: TimeZone = jiff::tz::get!("Europe/Stockholm");
static VIENNA: TimeZone = jiff::tz::get!("Europe/Vienna");
static BUDAPEST: TimeZone = jiff::tz::get!("Europe/Budapest");
static BERLIN: TimeZone = jiff::tz::get!("Europe/Berlin");

impl Zone {
    pub const ALL: [Zone; 7] = [
        Zone::Amsterdam,
        Zone::Brussels,
        Zone::Luxembourg,
        Zone::Stockholm,
        Zone::Vienna,
        Zone::Budapest,
        Zone::Berlin,
    ];

    pub fn iana(self) -> &'static str {
        match self {
            Zone::Amsterdam => "Europe/Amsterdam",
            Zone::Brussels => "Europe/Brussels",
            Zone::Luxembourg => "Europe/Luxembourg",
            Zone::Stockholm => "Europe/Stockholm",
            Zone::Vienna => "Europe/Vienna",
            Zone::Budapest => "Europe/Budapest",
            Zone::Berlin => "Europe/Berlin",
        }
    }

    pub fn tz(self) -> &'static TimeZone {
        match self {
            Zone::Amsterdam => &AMSTERDAM,
            Zone::Brussels => &BRUSSELS,
            Zone::Luxembourg => &LUXEMBOURG,
            Zone::Stockholm => &STOCKHOLM,
            Zone::Vienna => &VIENNA,
            Zone::Budapest => &BUDAPEST,
            Zone::Berlin => &BERLIN,
        }
    }
}

impl FromStr for Zone {
    type Err = crate::spec::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Zone::ALL.into_iter().find(|z| z.iana() == s).ok_or(crate::spec::UnknownName {
            expected: "one of Europe/Amsterdam, Europe/Brussels, Europe/Luxembourg, Europe/Stockholm, Europe/Vienna, Europe/Budapest, Europe/Berlin",
        })
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.iana())
    }
}

/// How the meter keeps time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ClockRule {
    pub zone: Zone,
    /// False for meters that stay on standard time all year and always send `W` (Swedish meters:
    /// the Swedish HAN recommendation, Tabell 1; docs/meters.md#sweden-han-port); true for meters
    /// that follow the zone's DST.
    pub summer_time: bool,
}

impl ClockRule {
    /// The meter's local time at a Unix instant. Instants outside jiff's range clamp to its ends.
    pub fn local(&self, unix: i64) -> LocalTime {
        let ts = Timestamp::from_second(unix).unwrap_or(if unix < 0 { Timestamp::MIN } else { Timestamp::MAX });
        let tz = self.zone.tz();
        let (offset, dst) = if self.summer_time {
            let info = tz.to_offset_info(ts);
            (info.offset(), info.dst().is_dst())
        } else {
            (standard_offset(tz, ts), false)
        };
        let dt = offset.to_datetime(ts);
        LocalTime {
            year: dt.year() as u16,
            month: dt.month() as u8,
            day: dt.day() as u8,
            hour: dt.hour() as u8,
            minute: dt.minute() as u8,
            second: dt.second() as u8,
            dst,
        }
    }

    /// The next instant after `unix` at which the zone's offset changes, if any is known.
    /// The meter model caches local time between transitions instead of asking jiff every second.
    pub fn next_transition(&self, unix: i64) -> Option<i64> {
        if !self.summer_time {
            return None;
        }
        let ts = Timestamp::from_second(unix).ok()?;
        self.zone.tz().following(ts).next().map(|t| t.timestamp().as_second())
    }

    /// UTC offset in seconds at an instant.
    pub fn offset_seconds(&self, unix: i64) -> i32 {
        let ts = Timestamp::from_second(unix).unwrap_or(Timestamp::MAX);
        if self.summer_time {
            self.zone.tz().to_offset(ts).seconds()
        } else {
            standard_offset(self.zone.tz(), ts).seconds()
        }
    }
}

/// Standard (winter) time of a zone: the offset minus its DST shift.
fn standard_offset(tz: &TimeZone, ts: Timestamp) -> jiff::tz::Offset {
    let info = tz.to_offset_info(ts);
    if info.dst().is_dst() {
        // Every zone here shifts by exactly one hour in summer.
        jiff::tz::Offset::from_seconds(info.offset().seconds() - 3600).unwrap_or(info.offset())
    } else {
        info.offset()
    }
}

/// Civil date from days since 1970-01-01 (proleptic Gregorian), for callers that already know
/// the offset and want no table lookups on the hot path.
pub const fn civil_from_days(z: i64) -> (i32, u8, u8) {
    // Howard Hinnant's algorithm, public domain.
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u8;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u8;
    ((y + if m <= 2 { 1 } else { 0 }) as i32, m, d)
}

/// Days since 1970-01-01 of a civil date; the inverse of [`civil_from_days`].
pub const fn days_from_civil(y: i32, m: u8, d: u8) -> i64 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Local time from a Unix instant and a fixed offset, without consulting a zone.
pub const fn local_from_offset(unix: i64, offset_s: i32, dst: bool) -> LocalTime {
    let t = unix + offset_s as i64;
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    LocalTime {
        year: y as u16,
        month: m,
        day: d,
        hour: (secs / 3600) as u8,
        minute: (secs / 60 % 60) as u8,
        second: (secs % 60) as u8,
        dst,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NL: ClockRule = ClockRule { zone: Zone::Amsterdam, summer_time: true };
    const SE: ClockRule = ClockRule { zone: Zone::Stockholm, summer_time: false };

    #[test]
    fn summer_flag_flips_at_the_transition_second() {
        // 2026-03-29 01:00:00 UTC: clocks in Amsterdam jump from 02:00 CET to 03:00 CEST.
        let before = NL.local(1_774_746_000 - 1);
        let after = NL.local(1_774_746_000);
        assert_eq!((before.hour, before.minute, before.second, before.dst), (1, 59, 59, false));
        assert_eq!((after.hour, after.minute, after.second, after.dst), (3, 0, 0, true));
        // 2026-10-25 01:00:00 UTC: back from 03:00 CEST to 02:00 CET.
        let before = NL.local(1_792_890_000 - 1);
        let after = NL.local(1_792_890_000);
        assert_eq!((before.hour, before.dst), (2, true));
        assert_eq!((after.hour, after.minute, after.dst), (2, 0, false));
    }

    #[test]
    fn next_transition_is_found() {
        assert_eq!(NL.next_transition(1_774_746_000 - 100), Some(1_774_746_000));
        assert_eq!(SE.next_transition(0), None);
    }

    #[test]
    fn swedish_meters_keep_standard_time() {
        // 2021-07-01 12:00:00 UTC is 14:00 CEST in Stockholm, but the meter shows 13:00 W.
        let t = SE.local(1_625_140_800);
        assert_eq!((t.hour, t.dst), (13, false));
    }

    #[test]
    fn civil_conversion_round_trips() {
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
    }

    #[test]
    fn fixed_offset_agrees_with_the_zone() {
        for unix in (1_600_000_000..1_700_000_000).step_by(86_399 * 7) {
            let off = NL.offset_seconds(unix);
            let z = NL.local(unix);
            assert_eq!(local_from_offset(unix, off, z.dst), z);
        }
    }
}
