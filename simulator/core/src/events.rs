//! Scripting the household for a run: a TOML `[[events]]` list of things that happen at given
//! instants, so a user can reproduce a situation exactly.
//!
//! ```toml
//! [[events]]
//! at = "2026-01-15T18:00:00+01:00"
//! action = "set-load"            # the household draws this many watts until cleared
//! watts = 4200
//!
//! [[events]]
//! at = "2026-01-15T19:00:00+01:00"
//! action = "power-failure"       # mains off for this long; the meter sends nothing meanwhile
//! seconds = 600
//! ```
//!
//! Actions: `set-load` / `set-solar` (`watts`, omit to return to the model), `start-charging`
//! (`watts`, `minutes`), `power-failure` (`seconds`), `text-message` (`text`), `set-tariff`
//! (`tariff` 1 or 2, 3 and 4 on meters that send them; omit to follow the schedule).

use std::path::Path;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::input::{LocatedTable, TableAt};
use crate::meter::{Command, MAX_DURATION_S, MAX_POWER_W};
use crate::profile::load::ProfileError;

#[derive(Deserialize, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case", deny_unknown_fields)]
enum Action {
    SetLoad { watts: Option<u32> },
    SetSolar { watts: Option<u32> },
    StartCharging { watts: u32, minutes: u32 },
    PowerFailure { seconds: u32 },
    TextMessage { text: String },
    SetTariff { tariff: Option<u8> },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    events: Vec<Spanned<LocatedTable>>,
}

/// The longest text message a meter stores: 1024 characters (DSMR 5.0.2 §7.2).
pub const MAX_TEXT: usize = 1024;

/// Parses an events file into (instant, command) pairs; `file` names it in errors, which point
/// at the line and key of the mistake. Linear in the size of the file.
pub fn parse(file: &str, text: &str) -> Result<Vec<(i64, Command)>, ProfileError> {
    let raw: File = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        ProfileError::at(file, text, offset, Some("events"), e.message().trim().to_string())
    })?;
    let mut out = Vec::with_capacity(raw.events.len());
    for (i, table) in raw.events.iter().enumerate() {
        let ev = TableAt { file, text, span: table.span(), table: table.get_ref() };
        let n = i + 1;
        let at = match ev.get("at").map(Spanned::get_ref) {
            Some(toml::Value::String(s)) => s
                .parse::<jiff::Timestamp>()
                .map_err(|e| ev.error("at", format!("event #{n}: {s:?} is not an RFC 3339 instant: {e}")))?
                .as_second(),
            Some(toml::Value::Datetime(d)) => d
                .to_string()
                .parse::<jiff::Timestamp>()
                .map_err(|e| ev.error("at", format!("event #{n}: {d} needs a UTC offset: {e}")))?
                .as_second(),
            Some(_) => {
                return Err(ev.error(
                    "at",
                    format!("event #{n}: at is an RFC 3339 instant such as \"2026-01-15T18:00:00+01:00\""),
                ));
            }
            None => return Err(ev.error_at_table("at", format!("event #{n} needs at = \"RFC 3339 instant\""))),
        };
        if ev.get("action").is_none() {
            return Err(ev.error_at_table("action", format!("event #{n} needs an action (set-load, set-solar, start-charging, power-failure, text-message or set-tariff)")));
        }
        let action: Action = ev.parse(&["at"], "action", &format!("event #{n}"))?;
        let watts = |key: &str, w: Option<u32>| match w {
            Some(w) if w > MAX_POWER_W => Err(ev.error(
                key,
                format!("event #{n}: {w} W is more than a household connection carries; at most {MAX_POWER_W} W"),
            )),
            _ => Ok(w),
        };
        let cmd = match action {
            Action::SetLoad { watts: w } => Command::SetLoad(watts("watts", w)?),
            Action::SetSolar { watts: w } => Command::SetSolar(watts("watts", w)?),
            Action::StartCharging { watts: w, minutes } => {
                let seconds = u64::from(minutes) * 60;
                if seconds > u64::from(MAX_DURATION_S) {
                    return Err(ev.error(
                        "minutes",
                        format!(
                            "event #{n}: {minutes} minutes; a charging session lasts at most {} minutes (a year)",
                            MAX_DURATION_S / 60
                        ),
                    ));
                }
                Command::StartCharging { watts: watts("watts", Some(w))?.unwrap_or(0), seconds: seconds as u32 }
            }
            Action::PowerFailure { seconds } => {
                if seconds == 0 || seconds > MAX_DURATION_S {
                    return Err(ev.error(
                        "seconds",
                        format!(
                            "event #{n}: a power failure lasts 1 to {MAX_DURATION_S} seconds (a year), not {seconds}"
                        ),
                    ));
                }
                Command::PowerFailure { seconds }
            }
            Action::TextMessage { text: t } => {
                if t.chars().count() > MAX_TEXT || t.contains(['\r', '\n']) {
                    return Err(ev.error(
                        "text",
                        format!("event #{n}: a text message is one line of at most {MAX_TEXT} characters"),
                    ));
                }
                Command::TextMessage(t)
            }
            Action::SetTariff { tariff } => {
                if tariff.is_some_and(|t| !(1..=crate::tariff::MAX_TARIFFS).contains(&t)) {
                    return Err(
                        ev.error("tariff", format!("event #{n}: tariff is 1 to {}", crate::tariff::MAX_TARIFFS))
                    );
                }
                Command::SetTariff(tariff)
            }
        };
        out.push((at, cmd));
    }
    Ok(out)
}

pub fn load(path: &Path) -> Result<Vec<(i64, Command)>, ProfileError> {
    let text = ProfileError::read(path, "events file")?;
    parse(&path.display().to_string(), &text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_action() {
        let text = r#"
[[events]]
at = "2026-01-15T18:00:00Z"
action = "set-load"
watts = 4200

[[events]]
at = "2026-01-15T18:30:00+01:00"
action = "power-failure"
seconds = 600

[[events]]
at = 2026-01-15T19:00:00Z
action = "text-message"
text = "Onderhoud"

[[events]]
at = "2026-01-15T20:00:00Z"
action = "start-charging"
watts = 11000
minutes = 90

[[events]]
at = "2026-01-15T21:00:00Z"
action = "set-tariff"
"#;
        let ev = parse("e.toml", text).unwrap();
        assert_eq!(ev.len(), 5);
        assert_eq!(ev[0], (1_768_500_000, Command::SetLoad(Some(4200))));
        assert_eq!(ev[1], (1_768_498_200, Command::PowerFailure { seconds: 600 }));
        assert_eq!(ev[3].1, Command::StartCharging { watts: 11_000, seconds: 5400 });
        assert_eq!(ev[4].1, Command::SetTariff(None));
    }

    #[test]
    fn errors_name_the_event_and_key() {
        let e = parse("e.toml", "[[events]]\nat = \"2026-01-15T18:00:00Z\"\naction = \"explode\"\n").unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (3, Some("action")));
        assert!(e.message.contains("event #1") && e.message.contains("explode"), "{e}");
        let e = parse("e.toml", "[[events]]\naction = \"set-load\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("at"));
        let e = parse("e.toml", "[[events]]\nat = \"tomorrow\"\naction = \"set-load\"\n").unwrap_err();
        assert!(e.message.contains("RFC 3339"), "{e}");
    }

    fn events(n: usize, last: &str) -> String {
        let mut text = String::new();
        for i in 0..n {
            text.push_str(&format!(
                "[[events]]\nat = \"2026-01-15T18:00:{:02}Z\"\naction = \"set-load\"\nwatts = {}\n\n",
                i % 60,
                i
            ));
        }
        text.push_str(last);
        text
    }

    #[test]
    fn errors_point_at_the_real_line_and_key() {
        // The third event's watts is a string: line 13 (4 lines per event, one blank between).
        let text = events(2, "[[events]]\nat = \"2026-01-15T18:00:00Z\"\naction = \"set-load\"\nwatts = \"lots\"\n");
        let e = parse("e.toml", &text).unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (14, Some("watts")), "{e}");
        let e =
            parse("e.toml", &events(1, "[[events]]\nat = \"2026-01-15T18:00:00Z\"\naction = \"set-load\"\nwats = 5\n"))
                .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (9, Some("wats")), "{e}");
        assert!(e.message.contains("event #2"), "{e}");
        // A key another action has is still unknown for this one.
        let e = parse("e.toml", "[[events]]\nat = \"2026-01-15T18:00:00Z\"\naction = \"set-tariff\"\nseconds = 5\n")
            .unwrap_err();
        assert_eq!((e.line, e.key.as_deref()), (4, Some("seconds")), "{e}");
    }

    #[test]
    fn durations_and_powers_are_bounded() {
        let one = |body: &str| parse("e.toml", &format!("[[events]]\nat = \"2026-01-15T18:00:00Z\"\n{body}"));
        let e = one("action = \"power-failure\"\nseconds = 4294967295\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("seconds"));
        assert!(e.message.contains("a year"), "{e}");
        assert!(one("action = \"power-failure\"\nseconds = 0\n").is_err());
        assert!(one("action = \"power-failure\"\nseconds = 31622400\n").is_ok());
        let e = one("action = \"set-load\"\nwatts = 4294967295\n").unwrap_err();
        assert!(e.key.as_deref() == Some("watts") && e.message.contains("99999"), "{e}");
        let e = one("action = \"start-charging\"\nwatts = 11000\nminutes = 4294967295\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("minutes"));
    }

    #[test]
    fn forty_thousand_events_parse_in_one_pass() {
        // The old parser searched the text for each event's header: quadratic, 45 s for these.
        let parsed = parse("e.toml", &events(40_000, "")).unwrap();
        assert_eq!(parsed.len(), 40_000);
        assert_eq!(parsed[39_999].1, Command::SetLoad(Some(39_999)));
    }
}
