//! Where the tailer is in every file, as committed with the index (the tantivy commit payload), so that
//! after a crash reading resumes exactly after the last indexed line: nothing lost, nothing twice.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// How many first bytes of a file identify it besides its inode (a reused inode or a file rewritten
/// while the pipeline was down has other first bytes).
pub const FINGERPRINT_LEN: u64 = 256;

/// A file's identity: device and inode.
pub type FileKey = String;

/// One file's position.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Position {
    /// The path it was last seen at.
    pub path: PathBuf,
    /// A hash of the first `fingerprint_len` bytes.
    pub fingerprint: u64,
    pub fingerprint_len: u64,
    /// Reading resumes here: every line before it is indexed, no line is half read before it.
    pub offset: u64,
    /// Lines ending at or before this offset are indexed already (a line of another stream can be
    /// complete while one is half read, past `offset`).
    pub emitted: u64,
    /// `offset` is inside an over-long line already cut: its rest is dropped.
    #[serde(default)]
    pub skipping: bool,
    /// A hash of the bytes just before `offset` (a file rewritten while the pipeline was down, past the
    /// offset, does not match even when its first bytes do). Absent in positions saved before it was.
    #[serde(default)]
    pub tail: Option<u64>,
    /// The file's size when the position was taken: a file gone later with `offset` short of it held
    /// lines never read.
    #[serde(default)]
    pub size: u64,
    /// Read to its end and left behind (renamed away by rotation, or deleted): kept while the file is
    /// still there, so that a restart does not read it again.
    #[serde(default)]
    pub done: bool,
}

/// The committed state of the pipeline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Checkpoint {
    pub version: u32,
    /// The sequence number the next indexed line gets (the tie-breaker of equal timestamps).
    pub next_seq: u64,
    pub files: BTreeMap<FileKey, Position>,
}

impl Checkpoint {
    pub fn parse(payload: Option<&str>) -> Checkpoint {
        payload
            .and_then(|p| serde_json::from_str(p).ok())
            .unwrap_or_default()
    }

    pub fn to_payload(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The key of an open file's metadata.
pub fn key_of(meta: &std::fs::Metadata) -> FileKey {
    use std::os::unix::fs::MetadataExt;
    format!("{}:{}", meta.dev(), meta.ino())
}

/// FNV-1a over the first `len` bytes of `file` (fewer when the file is shorter: then the length says
/// so). Reads at an offset: the file's own position does not move.
pub fn fingerprint(file: &File, len: u64) -> std::io::Result<(u64, u64)> {
    let buf = read_at(file, 0, len)?;
    Ok((fnv(&buf), buf.len() as u64))
}

/// FNV-1a over the (up to) `len` bytes that end at `end`.
pub fn hash_before(file: &File, end: u64, len: u64) -> std::io::Result<u64> {
    let start = end.saturating_sub(len);
    Ok(fnv(&read_at(file, start, end - start)?))
}

/// Up to `len` bytes of `file` from `at` (fewer at its end), without moving its position.
pub fn read_at(file: &File, at: u64, len: u64) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0; len as usize];
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], at + filled as u64)? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

fn fnv(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x100000001b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip_and_garbage_is_empty() {
        let mut c = Checkpoint {
            version: 1,
            next_seq: 7,
            ..Checkpoint::default()
        };
        c.files.insert(
            "1:2".into(),
            Position {
                path: "/x".into(),
                fingerprint: 3,
                fingerprint_len: 4,
                offset: 5,
                emitted: 6,
                skipping: true,
                tail: Some(8),
                size: 9,
                done: false,
            },
        );
        assert_eq!(Checkpoint::parse(Some(&c.to_payload())), c);
        assert_eq!(Checkpoint::parse(Some("{nope")), Checkpoint::default());
        assert_eq!(Checkpoint::parse(None), Checkpoint::default());
    }

    #[test]
    fn fingerprints_tell_files_apart() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, "first line\n").unwrap();
        std::fs::write(&b, "other line\n").unwrap();
        let (a, b) = (File::open(a).unwrap(), File::open(b).unwrap());
        assert_ne!(fingerprint(&a, 256).unwrap(), fingerprint(&b, 256).unwrap());
        assert_eq!(fingerprint(&a, 256).unwrap().1, 11);
        assert_eq!(fingerprint(&a, 5).unwrap(), fingerprint(&a, 5).unwrap());
        // "line\n" ends both.
        assert_eq!(hash_before(&a, 11, 5).unwrap(), hash_before(&b, 11, 5).unwrap());
        assert_ne!(hash_before(&a, 11, 11).unwrap(), hash_before(&b, 11, 11).unwrap());
        assert_eq!(hash_before(&a, 3, 32).unwrap(), fnv(b"fir"));
    }
}
