//! Parsing `--start` and `--duration`: instants and spans as users write them.

use anyhow::{Context, Result, bail};

/// The default `--start` of `emit`: fixed, so the same arguments always give the same bytes.
pub const DEFAULT_START: &str = "2026-01-15T11:00:00Z";

/// Parses an RFC 3339 instant (`2026-10-25T00:30:00Z`, `2026-10-25T02:30:00+02:00`), `now`, or a
/// date or date and time without an offset (`2026-01-15`, `2026-01-15T07:00`), taken as the
/// meter's own local time in `zone` (a date alone is its local midnight).
pub fn parse_start(text: &str, zone: &jiff::tz::TimeZone) -> Result<i64> {
    if text == "now" {
        return Ok(jiff::Timestamp::now().as_second());
    }
    if let Ok(ts) = text.parse::<jiff::Timestamp>() {
        return Ok(ts.as_second());
    }
    let civil = text
        .parse::<jiff::civil::DateTime>()
        .or_else(|_| text.parse::<jiff::civil::Date>().map(|d| d.to_datetime(jiff::civil::Time::midnight())));
    match civil {
        // In a DST gap or overlap, the earlier of the possible instants, as a clock set by hand would.
        Ok(dt) => Ok(zone
            .to_ambiguous_timestamp(dt)
            .compatible()
            .context("--start: not a time in the meter's zone")?
            .as_second()),
        Err(_) => bail!(
            "--start {text:?}: expected an RFC 3339 instant such as 2026-10-25T00:30:00Z or 2026-10-25T02:30:00+02:00, \
             a local date or time of the meter such as 2026-01-15 or 2026-01-15T07:00, or `now`"
        ),
    }
}

/// The longest `--duration`: a hundred years of telegrams.
pub const MAX_DURATION_S: u64 = 100 * 366 * 86_400;

/// Parses a span such as `90s`, `15m`, `3h`, `2d`, `1w` or a combination like `1h30m`: at least
/// a second, at most [`MAX_DURATION_S`].
pub fn parse_duration(text: &str) -> Result<u64> {
    let mut total: u64 = 0;
    let mut number = String::new();
    let mut seen_unit = false;
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            'w' => 7 * 86_400,
            _ => bail!("--duration {text:?}: unknown unit {c:?}; use s, m, h, d or w, e.g. 90s, 3h, 2d or 1h30m"),
        };
        if number.is_empty() {
            bail!("--duration {text:?}: a unit needs a number before it, e.g. 3h");
        }
        let n: u64 = number.parse().unwrap_or(u64::MAX);
        total = total.saturating_add(n.saturating_mul(unit));
        number.clear();
        seen_unit = true;
    }
    if !number.is_empty() || !seen_unit {
        bail!("--duration {text:?}: give a unit, e.g. 90s, 15m, 3h, 2d or 1h30m");
    }
    if total == 0 {
        bail!("--duration {text:?} emits nothing; give at least 1s");
    }
    if total > MAX_DURATION_S {
        bail!("--duration {text:?} is more than the limit of 100 years (36600d)");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants() {
        let utc = jiff::tz::TimeZone::UTC;
        assert_eq!(parse_start("1970-01-01T00:00:00Z", &utc).unwrap(), 0);
        assert_eq!(
            parse_start("2026-10-25T02:30:00+02:00", &utc).unwrap(),
            parse_start("2026-10-25T00:30:00Z", &utc).unwrap()
        );
        let err = format!("{:#}", parse_start("yesterday", &utc).unwrap_err());
        assert!(err.contains("2026-01-15T07:00"), "{err}");
    }

    #[test]
    fn a_local_date_or_time_is_the_meters_own() {
        let amsterdam = p1sim_core::clock::Zone::Amsterdam.tz();
        // Local midnight in January is 23:00 UTC the day before.
        assert_eq!(
            parse_start("2026-01-15", amsterdam).unwrap(),
            parse_start("2026-01-14T23:00:00Z", amsterdam).unwrap()
        );
        assert_eq!(
            parse_start("2026-07-01T07:00", amsterdam).unwrap(),
            parse_start("2026-07-01T05:00:00Z", amsterdam).unwrap()
        );
        assert!(parse_start("2026-13-01", amsterdam).is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s").unwrap(), 90);
        assert_eq!(parse_duration("3h").unwrap(), 10_800);
        assert_eq!(parse_duration("2d").unwrap(), 172_800);
        assert_eq!(parse_duration("1h30m").unwrap(), 5400);
        for bad in ["", "3", "h", "3x", "-3h", "0s", "0h0m", "99999999999999999999999d", "36601d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}
