//! Container logs in the CRI format, the files the kubelet and the log tooling of the ecosystem read:
//! one record per line, `<RFC 3339 nanosecond time> <stdout|stderr> <F|P> <text>`, where `P` marks a
//! piece of a line longer than the runtime's buffer and `F` its end (containerd's
//! `pkg/cri/io/logger.go`). The writer (used by the shim) rotates by size as the kubelet's container log
//! manager does: `0.log` becomes `0.log.<time>` and the oldest rotated files go. The reader side parses
//! records for `kubectl logs`.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// A line is cut into `P` records past this many bytes (containerd's default `max_container_log_line_size`).
pub const MAX_LINE: usize = 16 * 1024;

/// Which stream a record came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Size-based rotation: a file grows to `max_size` bytes, and `max_files` files (the live one included)
/// are kept (the kubelet's `containerLogMaxSize` 10Mi and `containerLogMaxFiles` 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rotation {
    pub max_size: u64,
    pub max_files: usize,
}

impl Default for Rotation {
    fn default() -> Self {
        Rotation {
            max_size: 10 * 1024 * 1024,
            max_files: 5,
        }
    }
}

/// Appends CRI records to a container's log file, rotating it by size.
pub struct Writer {
    path: PathBuf,
    file: File,
    size: u64,
    rotation: Rotation,
}

impl Writer {
    pub fn open(path: &Path, rotation: Rotation) -> io::Result<Writer> {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Writer {
            path: path.to_path_buf(),
            file,
            size,
            rotation,
        })
    }

    /// Writes one line (without its newline) as one `F` record, or as `P` records and a final `F` when it
    /// is longer than `MAX_LINE`; `complete: false` ends it with a `P` (a line cut by the buffer).
    pub fn line(&mut self, stream: Stream, text: &[u8], complete: bool) -> io::Result<()> {
        let mut chunks = text.chunks(MAX_LINE).peekable();
        if text.is_empty() {
            return self.record(stream, if complete { "F" } else { "P" }, b"");
        }
        while let Some(chunk) = chunks.next() {
            let last = chunks.peek().is_none();
            let tag = if last && complete { "F" } else { "P" };
            self.record(stream, tag, chunk)?;
        }
        Ok(())
    }

    fn record(&mut self, stream: Stream, tag: &str, text: &[u8]) -> io::Result<()> {
        let mut record = Vec::with_capacity(text.len() + 48);
        record.extend_from_slice(format_time(jiff::Timestamp::now()).as_bytes());
        record.push(b' ');
        record.extend_from_slice(stream.as_str().as_bytes());
        record.push(b' ');
        record.extend_from_slice(tag.as_bytes());
        record.push(b' ');
        record.extend_from_slice(text);
        record.push(b'\n');
        self.file.write_all(&record)?;
        self.size += record.len() as u64;
        if self.size >= self.rotation.max_size {
            self.rotate()?;
        }
        Ok(())
    }

    /// Renames the live file to `<name>.<time>`, opens a fresh one, and removes the oldest rotated files
    /// beyond `max_files - 1`.
    fn rotate(&mut self) -> io::Result<()> {
        let stamp = jiff::Timestamp::now().strftime("%Y%m%d-%H%M%S%.f").to_string();
        let mut rotated = self.path.clone().into_os_string();
        rotated.push(format!(".{stamp}"));
        fs::rename(&self.path, &rotated)?;
        self.file = OpenOptions::new().create(true).append(true).open(&self.path)?;
        self.size = 0;
        let mut old = rotated_files(&self.path)?;
        let keep = self.rotation.max_files.saturating_sub(1);
        if old.len() > keep {
            let excess = old.len() - keep;
            for path in old.drain(..excess) {
                let _ = fs::remove_file(path);
            }
        }
        Ok(())
    }
}

/// The rotated files of a log, oldest first (their names sort by time).
pub fn rotated_files(path: &Path) -> io::Result<Vec<PathBuf>> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return Ok(Vec::new());
    };
    let prefix = format!("{name}.");
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_str().is_some_and(|n| n.starts_with(&prefix)))
            .map(|e| e.path())
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e),
    };
    files.sort();
    Ok(files)
}

/// `2016-10-06T00:17:09.669794202Z`: RFC 3339 with nanoseconds, always nine digits, as the CRI writes.
pub fn format_time(t: jiff::Timestamp) -> String {
    format!(
        "{}.{:09}Z",
        t.strftime("%Y-%m-%dT%H:%M:%S"),
        t.subsec_nanosecond()
    )
}

/// One parsed CRI record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    pub time: jiff::Timestamp,
    pub stream: Stream,
    /// False for a `P` record: the line goes on in the next record of the same stream.
    pub complete: bool,
    pub text: &'a [u8],
}

/// Parses one record (without its newline); `None` for what is not one.
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let mut parts = line.splitn(4, |b| *b == b' ');
    let time = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
    let stream = match parts.next()? {
        b"stdout" => Stream::Stdout,
        b"stderr" => Stream::Stderr,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_long_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c/0.log");
        let mut writer = Writer::open(&path, Rotation::default()).unwrap();
        writer.line(Stream::Stdout, b"hello world", true).unwrap();
        writer
            .line(Stream::Stderr, &vec![b'x'; MAX_LINE + 10], true)
            .unwrap();
        writer.line(Stream::Stdout, b"no newline", false).unwrap();
        let text = fs::read(&path).unwrap();
        let records: Vec<Record> = text
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| parse(l).unwrap())
            .collect();
        assert_eq!(records.len(), 4);
        assert_eq!(records[0].text, b"hello world");
        assert!(records[0].complete);
        assert_eq!(
            (records[1].stream, records[1].complete, records[1].text.len()),
            (Stream::Stderr, false, MAX_LINE)
        );
        assert_eq!((records[2].complete, records[2].text.len()), (true, 10));
        assert!(!records[3].complete);
        let line = std::str::from_utf8(text.split(|b| *b == b'\n').next().unwrap()).unwrap();
        let stamp = line.split(' ').next().unwrap();
        assert_eq!(stamp.len(), "2016-10-06T00:17:09.669794202Z".len(), "{stamp}");
    }

    #[test]
    fn rotation_keeps_max_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        let rotation = Rotation {
            max_size: 200,
            max_files: 3,
        };
        let mut writer = Writer::open(&path, rotation).unwrap();
        for n in 0..40 {
            writer
                .line(Stream::Stdout, format!("line {n:04}").as_bytes(), true)
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        let rotated = rotated_files(&path).unwrap();
        assert_eq!(rotated.len(), 2, "{rotated:?}");
        let last = fs::read_to_string(&path).unwrap();
        assert!(last.is_empty() || last.contains("line 0039"), "{last}");
        assert!(fs::metadata(&path).unwrap().len() < 200);
    }

    #[test]
    fn garbage_is_not_a_record() {
        assert!(parse(b"not a record").is_none());
        assert!(parse(b"2016-10-06T00:17:09.669794202Z stdin F x").is_none());
        let r = parse(b"2016-10-06T00:17:09.669794202Z stdout F ").unwrap();
        assert_eq!(r.text, b"");
    }
}
