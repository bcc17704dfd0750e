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

use serde::Deserialize;

use crate::meter::Command;
use crate::profile::load::ProfileError;

#[derive(Deserialize)]
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
    events: Vec<toml::Table>,
}

/// The longest text message a meter stores: 1024 characters (SPEC50 7.2).
pub const MAX_TEXT: usize = 1024;

/// Parses an events file into (instant, command) pairs; `file` names it in errors.
pub fn parse(file: &str, text: &str) -> Result<Vec<(i64, Command)>, ProfileError> {
    let err = |offset: usize, key: &str, message: String| ProfileError::at(file, text, offset, Some(key), message);
    let raw: File = toml::from_str(text).map_err(|e| {
        let offset = e.span().map_or(0, |s| s.start);
        err(offset, "events", e.message().trim().to_string())
    })?;
    let mut out = Vec::with_capacity(raw.events.len());
    for (i, mut table) in raw.events.into_iter().enumerate() {
        let here = text.match_indices("[[events]]").nth(i).map_or(0, |(o, _)| o);
        let at = match table.remove("at") {
            Some(toml::Value::String(s)) => s
                .parse::<jiff::Timestamp>()
                .map_err(|e| err(here, "at", format!("event #{}: {s:?} is not an RFC 3339 instant: {e}", i + 1)))?
                .as_second(),
            Some(toml::Value::Datetime(d)) => d
                .to_string()
                .parse::<jiff::Timestamp>()
                .map_err(|e| err(here, "at", format!("event #{}: {d} needs a UTC offset: {e}", i + 1)))?
                .as_second(),
            _ => return Err(err(here, "at", format!("event #{} needs at = \"RFC 3339 instant\"", i + 1))),
        };
        let action: Action = toml::Value::Table(table)
            .try_into()
            .map_err(|e: toml::de::Error| err(here, "action", format!("event #{}: {}", i + 1, e.message().trim())))?;
        let cmd = match action {
            Action::SetLoad { watts } => Command::SetLoad(watts),
            Action::SetSolar { watts } => Command::SetSolar(watts),
            Action::StartCharging { watts, minutes } => {
                Command::StartCharging { watts, seconds: minutes.saturating_mul(60) }
            }
            Action::PowerFailure { seconds } => Command::PowerFailure { seconds },
            Action::TextMessage { text: t } => {
                if t.chars().count() > MAX_TEXT || t.contains(['\r', '\n']) {
                    return Err(err(
                        here,
                        "text",
                        format!("event #{}: a text message is one line of at most {MAX_TEXT} characters", i + 1),
                    ));
                }
                Command::TextMessage(t)
            }
            Action::SetTariff { tariff } => {
                if tariff.is_some_and(|t| !(1..=crate::tariff::MAX_TARIFFS).contains(&t)) {
                    return Err(err(here, "tariff", format!("event #{}: tariff is 1 to 4", i + 1)));
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
        assert_eq!((e.line, e.key.as_deref()), (1, Some("action")));
        assert!(e.message.contains("event #1") && e.message.contains("explode"), "{e}");
        let e = parse("e.toml", "[[events]]\naction = \"set-load\"\n").unwrap_err();
        assert_eq!(e.key.as_deref(), Some("at"));
        let e = parse("e.toml", "[[events]]\nat = \"tomorrow\"\naction = \"set-load\"\n").unwrap_err();
        assert!(e.message.contains("RFC 3339"), "{e}");
    }
}
