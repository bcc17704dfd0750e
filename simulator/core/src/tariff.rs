//! Tariff schedules: which register the meter books on at a given local time, per country.
//!
//! NL: tariff 1 is *low* (nights from 23:00 to 07:00, weekends and national holidays), tariff 2
//! normal (DSMR 5.0.2 §7.1). BE numbers the other way round: 1 is *day* (weekdays 07:00-22:00),
//! 2 is night and weekends, as Fluvius numbers them. Sweden, Luxembourg and the German
//! EasyMeter have no tariff registers. Hungary and Austria book day (06:00-22:00) on 1 and night
//! on 2; their meters carry further registers (Hungary 1.8.3 and 1.8.4) that only a forced
//! tariff fills (assumed schedules, docs/meters.md).

use crate::clock::days_from_civil;
use crate::format::LocalTime;
use crate::spec::Country;

/// Tariff registers a meter can book on: 1.8.1 to 1.8.4.
pub const MAX_TARIFFS: u8 = 4;

/// The tariff register (1 or 2) active at `t`, or `None` where the country has no tariffs.
pub fn tariff_at(country: Country, t: &LocalTime) -> Option<u8> {
    match country {
        Country::NL => {
            let low = is_weekend(t) || is_nl_holiday(t) || t.hour >= 23 || t.hour < 7;
            Some(if low { 1 } else { 2 })
        }
        Country::BE => {
            let night = is_weekend(t) || is_be_holiday(t) || t.hour >= 22 || t.hour < 7;
            Some(if night { 2 } else { 1 })
        }
        Country::HU | Country::AT => Some(if (6..22).contains(&t.hour) { 1 } else { 2 }),
        Country::LU | Country::SE | Country::DE => None,
    }
}

/// 0 = Monday .. 6 = Sunday.
pub fn weekday(t: &LocalTime) -> u8 {
    // 1970-01-01 was a Thursday (3).
    (days_from_civil(i32::from(t.year), t.month, t.day) + 3).rem_euclid(7) as u8
}

fn is_weekend(t: &LocalTime) -> bool {
    weekday(t) >= 5
}

/// Easter Sunday (Gregorian, anonymous algorithm) as (month, day).
pub fn easter(year: i32) -> (u8, u8) {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    (month as u8, day as u8)
}

/// Days after Easter Sunday, or `None` if `t` is not within the moveable-feast window.
fn days_after_easter(t: &LocalTime) -> i64 {
    let (m, d) = easter(i32::from(t.year));
    days_from_civil(i32::from(t.year), t.month, t.day) - days_from_civil(i32::from(t.year), m, d)
}

/// Dutch national holidays on which grid operators book the low tariff all day: New Year,
/// Easter Monday, King's Day, Ascension, Whit Monday and Christmas.
fn is_nl_holiday(t: &LocalTime) -> bool {
    let fixed = matches!((t.month, t.day), (1, 1) | (4, 27) | (12, 25) | (12, 26));
    fixed || matches!(days_after_easter(t), 1 | 39 | 50)
}

/// Belgian public holidays, booked as night tariff.
fn is_be_holiday(t: &LocalTime) -> bool {
    let fixed = matches!((t.month, t.day), (1, 1) | (5, 1) | (7, 21) | (8, 15) | (11, 1) | (11, 11) | (12, 25));
    fixed || matches!(days_after_easter(t), 1 | 39 | 50)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(year: u16, month: u8, day: u8, hour: u8) -> LocalTime {
        LocalTime { year, month, day, hour, minute: 0, second: 0, dst: false }
    }

    #[test]
    fn weekdays() {
        assert_eq!(weekday(&at(2026, 11, 21, 0)), 5, "2026-11-21 is a Saturday");
        assert_eq!(weekday(&at(2024, 1, 1, 0)), 0, "2024-01-01 was a Monday");
    }

    #[test]
    fn easter_dates() {
        assert_eq!(easter(2024), (3, 31));
        assert_eq!(easter(2025), (4, 20));
        assert_eq!(easter(2026), (4, 5));
    }

    #[test]
    fn dutch_schedule() {
        // Tuesday 2026-11-24.
        assert_eq!(tariff_at(Country::NL, &at(2026, 11, 24, 6)), Some(1));
        assert_eq!(tariff_at(Country::NL, &at(2026, 11, 24, 7)), Some(2));
        assert_eq!(tariff_at(Country::NL, &at(2026, 11, 24, 22)), Some(2));
        assert_eq!(tariff_at(Country::NL, &at(2026, 11, 24, 23)), Some(1));
        // Saturday, and Easter Monday 2026-04-06.
        assert_eq!(tariff_at(Country::NL, &at(2026, 11, 21, 12)), Some(1));
        assert_eq!(tariff_at(Country::NL, &at(2026, 4, 6, 12)), Some(1));
    }

    #[test]
    fn belgian_numbering_is_reversed() {
        assert_eq!(tariff_at(Country::BE, &at(2026, 11, 24, 12)), Some(1), "weekday daytime is tariff 1 (day)");
        assert_eq!(tariff_at(Country::BE, &at(2026, 11, 24, 22)), Some(2));
        assert_eq!(tariff_at(Country::BE, &at(2026, 11, 21, 12)), Some(2), "weekends are night tariff");
    }

    #[test]
    fn day_and_night_in_hungary_and_austria() {
        for c in [Country::HU, Country::AT] {
            assert_eq!(tariff_at(c, &at(2026, 11, 21, 6)), Some(1), "{c}: day starts at 06:00");
            assert_eq!(tariff_at(c, &at(2026, 11, 21, 22)), Some(2), "{c}: night from 22:00");
        }
    }

    #[test]
    fn no_tariffs_in_sweden_and_luxembourg() {
        assert_eq!(tariff_at(Country::SE, &at(2026, 11, 24, 12)), None);
        assert_eq!(tariff_at(Country::LU, &at(2026, 11, 24, 12)), None);
        assert_eq!(tariff_at(Country::DE, &at(2026, 11, 24, 12)), None);
    }
}
