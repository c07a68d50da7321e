//! One log line as the pipeline carries it, from the tailer to the index and back out of a search.

use serde::Serialize;

/// Where a line came from and what it says. The field names are the search API's.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LogLine {
    /// When the line was written (the CRI record's time; for host files, when it was read).
    pub timestamp: jiff::Timestamp,
    pub message: String,
    /// `stdout` or `stderr` for containers; empty for host files.
    pub stream: String,
    /// A level found in the line (`error`, `warn`, `info`, `debug`), or empty.
    pub level: String,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub node: String,
    /// The file the line was read from.
    pub source: String,
    /// Flags and other fields (`invalidUtf8`, `truncated`, parsed JSON fields later).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// For lines that may be delivered twice (shipped events): a line with the same key replaces the
    /// earlier one.
    #[serde(skip)]
    pub dedup_key: Option<String>,
}

/// A level word near the start of a plain-text line (its first 64 bytes), as log viewers guess it.
pub fn detect_level(message: &str) -> &'static str {
    let head = &message.as_bytes()[..message.len().min(64)];
    for word in head.split(|b| !b.is_ascii_alphabetic()) {
        let is = |w: &str| word.eq_ignore_ascii_case(w.as_bytes());
        if ["error", "err", "fatal", "panic", "critical", "crit"]
            .iter()
            .any(|w| is(w))
        {
            return "error";
        }
        if is("warn") || is("warning") {
            return "warn";
        }
        if is("info") || is("notice") {
            return "info";
        }
        if is("debug") || is("trace") {
            return "debug";
        }
    }
    ""
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_from_the_first_words() {
        assert_eq!(detect_level("2026-01-01 ERROR boom"), "error");
        assert_eq!(detect_level("[warn] disk"), "warn");
        assert_eq!(detect_level("level=info msg=hi"), "info");
        assert_eq!(detect_level("GET / HTTP/1.1 200"), "");
    }
}
