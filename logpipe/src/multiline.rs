//! Multiline joining: lines that do not match a source's `start` pattern continue the record before
//! them (a stack trace joins the line that threw it). A record goes out when the next one starts, when
//! it has `maxLines` lines, or when no line came for `timeout`.
//!
//! The position committed for a file stays at the start of the record being joined, so after a restart
//! the record is joined again from its first line: nothing is lost or split.

use std::time::{Duration, Instant};

/// How a source's records start.
#[derive(Clone, Debug)]
pub struct MultilineRule {
    pub start: regex::bytes::Regex,
    pub timeout: Duration,
    pub max_lines: usize,
}

impl MultilineRule {
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
    pub const DEFAULT_MAX_LINES: usize = 500;

    pub fn starts(&self, text: &[u8]) -> bool {
        self.start.is_match(text)
    }
}

/// A record being joined.
#[derive(Debug)]
pub struct Pending {
    pub time: jiff::Timestamp,
    pub text: Vec<u8>,
    pub truncated: bool,
    pub stream: &'static str,
    /// Where its first line starts in the file, and where its last line ends.
    pub start: u64,
    pub end: u64,
    pub lines: usize,
    pub since: Instant,
}

impl Pending {
    pub fn new(
        time: jiff::Timestamp,
        text: Vec<u8>,
        truncated: bool,
        stream: &'static str,
        start: u64,
        end: u64,
    ) -> Pending {
        Pending {
            time,
            text,
            truncated,
            stream,
            start,
            end,
            lines: 1,
            since: Instant::now(),
        }
    }

    /// Adds a continuation line, cutting the record at `max_len` bytes.
    pub fn push(&mut self, text: &[u8], truncated: bool, end: u64, max_len: usize) {
        let room = max_len.saturating_sub(self.text.len());
        if room > text.len() {
            self.text.push(b'\n');
            self.text.extend_from_slice(text);
            self.truncated |= truncated;
        } else {
            self.text.push(b'\n');
            self.text.extend_from_slice(&text[..room.saturating_sub(1)]);
            self.text.truncate(max_len);
            self.truncated = true;
        }
        self.end = end;
        self.lines += 1;
        self.since = Instant::now();
    }

    /// Whether the line (of `stream`) starts a record of its own instead of continuing this one.
    pub fn ends_before(&self, rule: &MultilineRule, text: &[u8], stream: &str) -> bool {
        stream != self.stream || self.lines >= rule.max_lines || rule.starts(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continuations_join_and_records_are_cut_at_the_limit() {
        let rule = MultilineRule {
            start: regex::bytes::Regex::new(r"^\S").unwrap(),
            timeout: MultilineRule::DEFAULT_TIMEOUT,
            max_lines: 3,
        };
        let mut p = Pending::new(
            jiff::Timestamp::UNIX_EPOCH,
            b"Exception: boom".to_vec(),
            false,
            "",
            0,
            16,
        );
        assert!(!p.ends_before(&rule, b"  at a.b(C.java:1)", ""));
        p.push(b"  at a.b(C.java:1)", false, 35, 1024);
        assert!(p.ends_before(&rule, b"  at x", "stderr"), "another stream");
        assert!(p.ends_before(&rule, b"next record", ""));
        p.push(b"  at c", false, 42, 1024);
        assert!(p.ends_before(&rule, b"  at d", ""), "max lines");
        assert_eq!(p.text, b"Exception: boom\n  at a.b(C.java:1)\n  at c");
        assert_eq!((p.start, p.end, p.lines), (0, 42, 3));
        let mut small = Pending::new(jiff::Timestamp::UNIX_EPOCH, b"abc".to_vec(), false, "", 0, 4);
        small.push(b"defgh", false, 10, 6);
        assert_eq!((small.text.as_slice(), small.truncated), (&b"abc\nde"[..], true));
    }
}
