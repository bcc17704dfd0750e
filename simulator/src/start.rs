//! Parsing `--start` and `--duration`: instants and spans as users write them.

use anyhow::{Context, Result, bail};

/// The default `--start` of `emit`: fixed, so the same arguments always give the same bytes.
pub const DEFAULT_START: &str = "2026-01-15T11:00:00Z";

/// Parses an RFC 3339 instant (`2026-10-25T00:30:00Z`, `2026-10-25T02:30:00+02:00`) or `now`.
pub fn parse_start(text: &str) -> Result<i64> {
    if text == "now" {
        return Ok(jiff::Timestamp::now().as_second());
    }
    let ts: jiff::Timestamp = text.parse().with_context(|| {
        format!("--start {text:?} is not an RFC 3339 instant such as 2026-10-25T00:30:00Z or 2026-10-25T02:30:00+02:00")
    })?;
    Ok(ts.as_second())
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
        assert_eq!(parse_start("1970-01-01T00:00:00Z").unwrap(), 0);
        assert_eq!(parse_start("2026-10-25T02:30:00+02:00").unwrap(), parse_start("2026-10-25T00:30:00Z").unwrap());
        assert!(parse_start("yesterday").is_err());
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
