//! Structure in a line's text: JSON objects and logfmt (`key=value key="quoted value"`) give their
//! message, level and time, and the rest of their fields become attributes; plain text gets a level
//! guessed from its first words.

use serde_json::{Map, Value};

use crate::record::detect_level;

/// What a line's text says about itself.
#[derive(Debug, Default, PartialEq)]
pub struct Parsed {
    /// The message when it is not the whole text (a structured line's `msg`).
    pub message: Option<String>,
    pub level: String,
    pub time: Option<jiff::Timestamp>,
    pub attributes: Map<String, Value>,
}

const MESSAGE_KEYS: [&str; 3] = ["msg", "message", "log"];
const LEVEL_KEYS: [&str; 4] = ["level", "lvl", "severity", "log.level"];
const TIME_KEYS: [&str; 5] = ["time", "timestamp", "ts", "@timestamp", "t"];

pub fn parse(text: &str) -> Parsed {
    let trimmed = text.trim();
    if trimmed.starts_with('{')
        && let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(trimmed)
    {
        return structured(text, fields);
    }
    if let Some(fields) = logfmt(trimmed) {
        return structured(text, fields);
    }
    Parsed {
        message: None,
        level: detect_level(text).to_string(),
        ..Parsed::default()
    }
}

fn structured(text: &str, mut fields: Map<String, Value>) -> Parsed {
    let take = |fields: &mut Map<String, Value>, keys: &[&str]| keys.iter().find_map(|k| fields.remove(*k));
    let message = match take(&mut fields, &MESSAGE_KEYS) {
        Some(Value::String(s)) => Some(s),
        Some(other) => Some(other.to_string()),
        None => None,
    };
    let level = take(&mut fields, &LEVEL_KEYS)
        .and_then(|v| v.as_str().map(normalize_level))
        .unwrap_or_else(|| detect_level(message.as_deref().unwrap_or(text)).to_string());
    let time = take(&mut fields, &TIME_KEYS).and_then(|v| time_of(&v));
    Parsed {
        message,
        level,
        time,
        attributes: fields,
    }
}

/// Levels under their common names: `error`, `warn`, `info`, `debug`.
pub fn normalize_level(level: &str) -> String {
    match level.to_ascii_lowercase().as_str() {
        "error" | "err" | "fatal" | "panic" | "critical" | "crit" | "alert" | "emerg" | "emergency" => {
            "error"
        }
        "warn" | "warning" => "warn",
        "info" | "information" | "notice" => "info",
        "debug" | "trace" | "verbose" => "debug",
        _ => "",
    }
    .to_string()
}

/// A time as apps write it: RFC 3339, or seconds / milliseconds since the epoch.
fn time_of(value: &Value) -> Option<jiff::Timestamp> {
    match value {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => {
            let n = n.as_f64()?;
            // Past 1e11 it cannot be seconds (year 5138): milliseconds.
            let nanos = if n.abs() > 1e11 { n * 1e6 } else { n * 1e9 };
            jiff::Timestamp::from_nanosecond(nanos as i128).ok()
        }
        _ => None,
    }
}

/// `key=value` pairs, at least two, the whole line made of them; `None` otherwise.
fn logfmt(line: &str) -> Option<Map<String, Value>> {
    let mut fields = Map::new();
    let mut rest = line;
    while !rest.is_empty() {
        let (key, after) = rest.split_once('=')?;
        if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '"') {
            return None;
        }
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    '\\' if !escaped => escaped = true,
                    '"' if !escaped => {
                        end = Some(i);
                        break;
                    }
                    _ => escaped = false,
                }
            }
            let end = end?;
            (quoted[..end].replace("\\\"", "\""), &quoted[end + 1..])
        } else {
            let end = after.find(' ').unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        fields.insert(key.to_string(), Value::String(value));
        rest = after.trim_start();
    }
    (fields.len() >= 2).then_some(fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_give_their_fields() {
        let p = parse(r#"{"level":"WARNING","msg":"disk low","ts":1700000000.5,"disk":"/dev/sda","free":3}"#);
        assert_eq!(p.message.as_deref(), Some("disk low"));
        assert_eq!(p.level, "warn");
        assert_eq!(p.time.unwrap().as_millisecond(), 1_700_000_000_500);
        assert_eq!(p.attributes["disk"], "/dev/sda");
        assert_eq!(p.attributes["free"], 3);
        let ms = parse(r#"{"message":"x","timestamp":1700000000123}"#);
        assert_eq!(ms.time.unwrap().as_millisecond(), 1_700_000_000_123);
    }

    #[test]
    fn logfmt_lines_give_their_fields() {
        let p = parse(r#"time=2026-01-01T00:00:00Z level=error msg="connection refused \"db\"" host=db-1"#);
        assert_eq!(p.message.as_deref(), Some("connection refused \"db\""));
        assert_eq!(p.level, "error");
        assert_eq!(p.time.unwrap().to_string(), "2026-01-01T00:00:00Z");
        assert_eq!(p.attributes["host"], "db-1");
    }

    #[test]
    fn plain_text_stays_as_it_is() {
        let p = parse("ERROR something broke: a=b");
        assert_eq!(p.message, None, "the whole text");
        assert_eq!(p.level, "error");
        assert!(p.attributes.is_empty());
        assert_eq!(parse("{not json").message, None);
        assert_eq!(parse("GET /index.html 200").level, "");
    }
}
