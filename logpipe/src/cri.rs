//! The CRI log format the node runtime writes (`<time> <stdout|stderr> <F|P> <text>`), with `P` records
//! joined to the `F` record that ends their line, per stream.

/// One parsed record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: jiff::Timestamp,
    pub stream: &'a str,
    pub complete: bool,
    pub text: &'a [u8],
}

/// Parses one record (without its newline); `None` for a line that is not one.
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let stream = match parts.next()? {
        b"stdout" => "stdout",
        b"stderr" => "stderr",
        _ => return None,
    };
    let complete = match parts.next()? {
        b"F" => true,
        b"P" => false,
        _ => return None,
    };
    Some(Record {
        time,
        stream,
        complete,
        text: parts.next().unwrap_or_default(),
    })
}

/// The partial line pending per stream of one file.
#[derive(Clone, Debug, Default)]
pub struct Joiner {
    stdout: Option<Partial>,
    stderr: Option<Partial>,
}

/// A line read in part: its first record's time, its text so far, whether it was cut.
type Partial = (jiff::Timestamp, Vec<u8>, bool);

impl Joiner {
    /// Feeds a record; returns the whole line (its first record's time and the joined text) when this
    /// record ends one.
    pub fn push(&mut self, record: &Record<'_>, max_line: usize) -> Option<(jiff::Timestamp, Vec<u8>, bool)> {
        let slot = if record.stream == "stdout" {
            &mut self.stdout
        } else {
            &mut self.stderr
        };
        let (time, mut text, mut truncated) = slot.take().unwrap_or((record.time, Vec::new(), false));
        let room = max_line.saturating_sub(text.len());
        truncated |= record.text.len() > room;
        text.extend_from_slice(&record.text[..record.text.len().min(room)]);
        if record.complete {
            Some((time, text, truncated))
        } else {
            *slot = Some((time, text, truncated));
            None
        }
    }

    /// The half-read lines (a file that ends with them), with their stream names.
    pub fn take_pending(&mut self) -> Vec<(jiff::Timestamp, Vec<u8>, bool, &'static str)> {
        let mut out = Vec::new();
        if let Some((time, text, truncated)) = self.stdout.take() {
            out.push((time, text, truncated, "stdout"));
        }
        if let Some((time, text, truncated)) = self.stderr.take() {
            out.push((time, text, truncated, "stderr"));
        }
        out
    }

    /// Whether a line is half read in either stream (then the file's safe offset cannot move).
    pub fn pending(&self) -> bool {
        self.stdout.is_some() || self.stderr.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_records_join_per_stream() {
        let mut joiner = Joiner::default();
        let a = parse(b"2026-01-01T00:00:00.000000001Z stdout P hello ").unwrap();
        let b = parse(b"2026-01-01T00:00:01Z stderr F other").unwrap();
        let c = parse(b"2026-01-01T00:00:02Z stdout F world").unwrap();
        assert!(joiner.push(&a, 1024).is_none());
        assert!(joiner.pending());
        let (_, text, _) = joiner.push(&b, 1024).unwrap();
        assert_eq!(text, b"other");
        let (time, text, truncated) = joiner.push(&c, 1024).unwrap();
        assert_eq!(text, b"hello world");
        assert!(!truncated);
        assert_eq!(time.to_string(), "2026-01-01T00:00:00.000000001Z");
        assert!(!joiner.pending());
        assert!(parse(b"nonsense").is_none());
    }

    #[test]
    fn long_lines_are_cut_and_flagged() {
        let mut joiner = Joiner::default();
        let a = parse(b"2026-01-01T00:00:00Z stdout P 0123456789").unwrap();
        let b = parse(b"2026-01-01T00:00:00Z stdout F abcdef").unwrap();
        joiner.push(&a, 12);
        let (_, text, truncated) = joiner.push(&b, 12).unwrap();
        assert_eq!(text, b"0123456789ab");
        assert!(truncated);
    }
}
