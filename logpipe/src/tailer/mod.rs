//! The tailer: finds the container log files under the node's `pods/` directory as pods come and go,
//! follows each from its committed position, joins CRI partial records, and hands lines to the indexer in
//! batches together with the positions they reach. It polls (every 250 ms by default); inotify comes with
//! a later slice.
//!
//! Files are known by device and inode, checked against a fingerprint of their first bytes when a
//! position is taken up again. Rotation by rename (the runtime renames `0.log` and opens a new one) is
//! followed by draining the old file to its end through the descriptor still open, then releasing it; a
//! file deleted while open is drained the same way; a file that shrinks (copytruncate, truncate and
//! rewrite) is read again from its start.
//!
//! The tailer blocks when the indexer falls behind (a bounded channel): it waits, it never drops.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::checkpoint::{FINGERPRINT_LEN, FileKey, Position, fingerprint, key_of};
use crate::cri::{self, Joiner};
use crate::record::LogLine;
use crate::telemetry::Telemetry;

/// How much of a file is read at a time.
const CHUNK: usize = 1024 * 1024;
/// Lines per batch handed to the indexer.
const BATCH_LINES: usize = 2000;

/// Host files to follow (config `logs.sources`): plain lines, not CRI.
#[derive(Clone, Debug)]
pub struct HostSource {
    pub name: String,
    pub include: Vec<glob::Pattern>,
    pub exclude: Vec<glob::Pattern>,
    /// Files present when the pipeline first starts are read from their end (files that appear later,
    /// and files with a committed position, are read from where they should be).
    pub start_at_end: bool,
}

/// The labels of a pod by namespace and name, supplied by the process (the log pipeline does not talk
/// to the API itself). One made with `expected` holds container lines back until it is set, so no line
/// goes into the index without its labels.
#[derive(Clone, Default)]
pub struct PodLabels {
    lookup: std::sync::Arc<std::sync::OnceLock<LabelLookup>>,
    expected: bool,
}

type LabelLookup = Box<dyn Fn(&str, &str) -> Option<BTreeMap<String, String>> + Send + Sync>;

impl PodLabels {
    /// Labels that will come: container files wait for `set`.
    pub fn expected() -> PodLabels {
        PodLabels {
            expected: true,
            ..PodLabels::default()
        }
    }

    /// Whether container lines must wait for the lookup.
    fn waiting(&self) -> bool {
        self.expected && self.lookup.get().is_none()
    }

    /// Sets the lookup (once; later calls are ignored).
    pub fn set(
        &self,
        lookup: impl Fn(&str, &str) -> Option<BTreeMap<String, String>> + Send + Sync + 'static,
    ) {
        let _ = self.lookup.set(Box::new(lookup));
    }

    fn get(&self, namespace: &str, pod: &str) -> Option<BTreeMap<String, String>> {
        self.lookup.get().and_then(|lookup| lookup(namespace, pod))
    }
}

impl std::fmt::Debug for PodLabels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.lookup.get().is_some() {
            "PodLabels(set)"
        } else {
            "PodLabels(unset)"
        })
    }
}

#[derive(Clone, Debug)]
pub struct TailerConfig {
    /// `DIR/pods`: `<namespace>_<pod>_<uid>/<container>/<restartCount>.log`.
    pub root: PathBuf,
    pub hosts: Vec<HostSource>,
    /// Container lines get their pod's labels as `attributes.labels`.
    pub labels: PodLabels,
    pub node: String,
    pub poll: Duration,
    /// Longer lines are cut here and flagged `truncated`.
    pub max_line: usize,
}

/// Lines read and the positions they reach, for the indexer to commit together.
#[derive(Debug, Default)]
pub struct Batch {
    pub lines: Vec<LogLine>,
    pub positions: Vec<(FileKey, Position)>,
    /// Files read to their end and gone: their positions can be forgotten once this batch is committed.
    pub released: Vec<FileKey>,
    /// Told once the batch is committed (or why it could not be).
    pub ack: Option<tokio::sync::oneshot::Sender<Result<(), String>>>,
}

/// Where a file's lines come from: a container (what its path says) or a host source.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Origin {
    namespace: String,
    pod: String,
    container: String,
    /// The host source's name; empty for container logs (which are CRI).
    host: String,
    start_at_end: bool,
}

struct Tracked {
    path: PathBuf,
    file: File,
    origin: Origin,
    /// Where reading resumes after a restart (no half-read line before it).
    offset: u64,
    /// Lines ending at or before this are handed over already.
    emitted: u64,
    /// Where the next read starts.
    read_pos: u64,
    joiner: Joiner,
    fingerprint: u64,
    fingerprint_len: u64,
    /// The path leads elsewhere now (renamed or deleted): drain, then release.
    rotated: bool,
    /// Inside a line already cut at `max_line`: its rest, up to the newline, is dropped.
    skipping: bool,
    /// How many looks in a row found this rotated file read to its end.
    drained_looks: u32,
}

pub struct Tailer {
    config: TailerConfig,
    files: HashMap<FileKey, Tracked>,
    /// Positions from the last commit, taken up when their files are found again.
    saved: BTreeMap<FileKey, Position>,
    out: SyncSender<Batch>,
    telemetry: Telemetry,
    /// Whether the first look is done (a host source's `start_at_end` applies to it only).
    looked: bool,
    /// Whether the index has committed positions before (then no file is read from its end: one that
    /// appeared while the pipeline was down is new).
    resumed: bool,
}

impl Tailer {
    pub fn new(
        config: TailerConfig,
        saved: BTreeMap<FileKey, Position>,
        out: SyncSender<Batch>,
        telemetry: Telemetry,
    ) -> Tailer {
        Tailer {
            config,
            files: HashMap::new(),
            saved,
            out,
            telemetry,
            looked: false,
            resumed: false,
        }
    }

    /// Marks a pipeline that committed before: files it finds now are read from their start.
    pub fn resumed(mut self, resumed: bool) -> Tailer {
        self.resumed = resumed;
        self
    }

    /// Follows the files until `shutdown`; returns when the indexer is gone too.
    pub fn run(mut self, shutdown: CancellationToken) {
        while !shutdown.is_cancelled() {
            let Ok(more) = self.pass() else { return };
            if !more {
                std::thread::sleep(self.config.poll);
            }
        }
    }

    /// One look at every file; `Err` when the indexer is gone. Returns whether data is left to read now.
    pub fn pass(&mut self) -> Result<bool, std::sync::mpsc::SendError<Batch>> {
        self.discover();
        let mut batch = Batch::default();
        let mut more = false;
        // Rotated files first: their lines come before those of the file that replaced them.
        let mut keys: Vec<(bool, FileKey)> =
            self.files.iter().map(|(k, t)| (!t.rotated, k.clone())).collect();
        keys.sort();
        let keys: Vec<FileKey> = keys.into_iter().map(|(_, k)| k).collect();
        let hold_containers = self.config.labels.waiting();
        // Containers whose rotated file still has data: their new file waits, so lines keep their order.
        let mut draining: HashSet<(String, String, String)> = HashSet::new();
        for key in keys {
            let Some(tracked) = self.files.get_mut(&key) else {
                continue;
            };
            if hold_containers && tracked.origin.host.is_empty() {
                continue;
            }
            let container = (
                tracked.origin.namespace.clone(),
                tracked.origin.pod.clone(),
                tracked.origin.container.clone(),
            );
            if !tracked.rotated && tracked.origin.host.is_empty() && draining.contains(&container) {
                more = true;
                continue;
            }
            let left = match read(tracked, &self.config, &self.telemetry, &mut batch.lines) {
                Ok(left) => left,
                Err(e) => {
                    tracing::warn!(file = %tracked.path.display(), error = %e, "reading a log file failed");
                    continue;
                }
            };
            more |= left;
            if tracked.rotated && left {
                draining.insert(container);
            }
            if tracked.fingerprint_len < FINGERPRINT_LEN
                && tracked.read_pos > tracked.fingerprint_len
                && let Ok((fp, len)) = fingerprint(&tracked.path, FINGERPRINT_LEN)
                && !tracked.rotated
            {
                tracked.fingerprint = fp;
                tracked.fingerprint_len = len;
            }
            batch.positions.push((key.clone(), position(tracked)));
            let drained = !left && tracked.file.metadata().is_ok_and(|m| m.len() <= tracked.read_pos);
            // Released after two looks at its end in a row: a writer that appends between its rename and
            // reopening the new file is still read.
            tracked.drained_looks = if tracked.rotated && drained {
                tracked.drained_looks + 1
            } else {
                0
            };
            if tracked.drained_looks >= 2 {
                // A partial line left at the end of a rotated file goes out as it is.
                for (time, text, truncated, stream) in tracked.joiner.take_pending() {
                    let mut line = to_line(
                        tracked,
                        &self.config,
                        time,
                        text,
                        truncated,
                        stream,
                        &self.telemetry,
                    );
                    line.attributes.insert("partial".into(), true.into());
                    batch.lines.push(line);
                }
                self.files.remove(&key);
                batch.released.push(key.clone());
                self.telemetry.files_tracked.dec();
            }
            if batch.lines.len() >= BATCH_LINES {
                more = true;
                break;
            }
        }
        if batch.lines.is_empty() && batch.released.is_empty() {
            return Ok(more);
        }
        self.out.send(batch)?;
        Ok(more)
    }

    /// Finds the log files now under the root; notes those whose path leads elsewhere.
    fn discover(&mut self) {
        let mut seen: HashSet<FileKey> = HashSet::new();
        let mut found: Vec<(PathBuf, Option<Origin>)> = log_files(&self.config.root)
            .into_iter()
            .map(|path| {
                let origin = origin(&self.config.root, &path);
                (path, origin)
            })
            .collect();
        for source in &self.config.hosts {
            for pattern in &source.include {
                for path in glob::glob(pattern.as_str()).into_iter().flatten().flatten() {
                    if path.is_file() && !source.exclude.iter().any(|x| x.matches_path(&path)) {
                        let origin = Origin {
                            host: source.name.clone(),
                            start_at_end: source.start_at_end,
                            ..Origin::default()
                        };
                        found.push((path, Some(origin)));
                    }
                }
            }
        }
        let first_look = !self.looked && !self.resumed;
        self.looked = true;
        for (path, origin) in found {
            // A stat per known file and look; a file is opened once, when it is new.
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let key = key_of(&meta);
            seen.insert(key.clone());
            if let Some(tracked) = self.files.get_mut(&key) {
                tracked.path = path;
                tracked.rotated = false;
                continue;
            }
            let Some(origin) = origin else {
                continue;
            };
            let Ok(file) = File::open(&path) else { continue };
            // Replaced between the stat and the open: taken up at the next look.
            if file.metadata().map(|m| key_of(&m)).ok().as_ref() != Some(&key) {
                continue;
            }
            let (fp, fp_len) = fingerprint(&path, FINGERPRINT_LEN).unwrap_or((0, 0));
            let (offset, emitted, skipping) = match self.saved.remove(&key) {
                Some(saved)
                    if fingerprint(&path, saved.fingerprint_len).ok()
                        == Some((saved.fingerprint, saved.fingerprint_len)) =>
                {
                    (saved.offset, saved.emitted, saved.skipping)
                }
                Some(_) => {
                    // The inode is another file's now (reused, or rewritten while we were down).
                    self.telemetry.file_replaced();
                    (0, 0, false)
                }
                None if first_look && origin.start_at_end => (meta.len(), meta.len(), false),
                None => (0, 0, false),
            };
            tracing::debug!(file = %path.display(), offset, "following a log file");
            self.telemetry.files_tracked.inc();
            self.files.insert(
                key,
                Tracked {
                    path,
                    file,
                    origin,
                    offset,
                    emitted,
                    read_pos: offset,
                    joiner: Joiner::default(),
                    fingerprint: fp,
                    fingerprint_len: fp_len,
                    rotated: false,
                    skipping,
                    drained_looks: 0,
                },
            );
        }
        for (key, tracked) in &mut self.files {
            // Not found this time: rotated only if its path is gone or is another file now (a listing
            // that failed once must not release a live file, to be read again from 0 later).
            let elsewhere = match std::fs::metadata(&tracked.path) {
                Ok(meta) => key_of(&meta) != *key,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            };
            if !seen.contains(key) && elsewhere {
                tracked.rotated = true;
            }
        }
    }
}

fn position(tracked: &Tracked) -> Position {
    Position {
        path: tracked.path.clone(),
        fingerprint: tracked.fingerprint,
        fingerprint_len: tracked.fingerprint_len,
        offset: tracked.offset,
        emitted: tracked.emitted,
        skipping: tracked.skipping,
    }
}

/// The live log files: `<root>/<ns>_<pod>_<uid>/<container>/<n>.log` (rotated ones are followed
/// through their open descriptors, not found again by name).
fn log_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pod in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for container in std::fs::read_dir(pod.path()).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(container.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = file.path();
                if path.extension().is_some_and(|e| e == "log") {
                    out.push(path);
                }
            }
        }
    }
    out
}

fn origin(root: &Path, path: &Path) -> Option<Origin> {
    let relative = path.strip_prefix(root).ok()?;
    let mut parts = relative
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned());
    let pod_dir = parts.next()?;
    let container = parts.next()?;
    let mut names = pod_dir.splitn(3, '_');
    Some(Origin {
        namespace: names.next()?.to_string(),
        pod: names.next()?.to_string(),
        container,
        ..Origin::default()
    })
}

/// Reads what the file has past `read_pos` (up to a chunk), turning whole records into lines. Returns
/// whether more is waiting.
fn read(
    tracked: &mut Tracked,
    config: &TailerConfig,
    telemetry: &Telemetry,
    lines: &mut Vec<LogLine>,
) -> std::io::Result<bool> {
    let len = tracked.file.metadata()?.len();
    if len < tracked.read_pos {
        // Truncated in place (copytruncate, or truncate and rewrite): everything is new again.
        telemetry.file_truncated();
        tracked.read_pos = 0;
        tracked.offset = 0;
        tracked.emitted = 0;
        tracked.joiner = Joiner::default();
        tracked.skipping = false;
    }
    if len == tracked.read_pos {
        return Ok(false);
    }
    tracked.file.seek(SeekFrom::Start(tracked.read_pos))?;
    let want = (len - tracked.read_pos).min(CHUNK as u64) as usize;
    let mut buf = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match tracked.file.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    buf.truncate(filled);
    telemetry.bytes_read(filled as u64);
    let base = tracked.read_pos;
    let mut start = 0;
    while let Some(newline) = buf[start..].iter().position(|b| *b == b'\n') {
        let end = start + newline;
        let record_end = base + end as u64 + 1;
        let raw = &buf[start..end];
        start = end + 1;
        if tracked.skipping {
            // The end of a line cut before: dropped.
            tracked.skipping = false;
            if !tracked.joiner.pending() {
                tracked.offset = record_end;
            }
            tracked.emitted = tracked.emitted.max(record_end);
            tracked.read_pos = record_end;
            continue;
        }
        let record = if tracked.origin.host.is_empty() {
            cri::parse(raw)
        } else {
            None
        };
        let line = match record {
            Some(record) => tracked
                .joiner
                .push(&record, config.max_line)
                .map(|(time, text, truncated)| (time, text, truncated, record.stream)),
            // Not a CRI record: kept as it is, timed now.
            None => {
                let cut = raw.len() > config.max_line;
                Some((
                    jiff::Timestamp::now(),
                    raw[..raw.len().min(config.max_line)].to_vec(),
                    cut,
                    "",
                ))
            }
        };
        if let Some((time, text, truncated, stream)) = line {
            if record_end > tracked.emitted {
                lines.push(to_line(tracked, config, time, text, truncated, stream, telemetry));
            }
            tracked.emitted = tracked.emitted.max(record_end);
        }
        if !tracked.joiner.pending() {
            tracked.offset = record_end;
        }
        tracked.read_pos = record_end;
    }
    if start == 0 && filled == CHUNK {
        // A chunk without a newline: not CRI; its start is cut as a line of its own and the rest of
        // that line, however long, is dropped.
        let record_end = base + filled as u64;
        let skipped = std::mem::replace(&mut tracked.skipping, true);
        if record_end > tracked.emitted && !skipped {
            let text = buf[..config.max_line.min(filled)].to_vec();
            lines.push(to_line(
                tracked,
                config,
                jiff::Timestamp::now(),
                text,
                true,
                "",
                telemetry,
            ));
        }
        tracked.emitted = tracked.emitted.max(record_end);
        tracked.offset = record_end;
        tracked.read_pos = record_end;
    }
    Ok(tracked.read_pos < len)
}

fn to_line(
    tracked: &Tracked,
    config: &TailerConfig,
    timestamp: jiff::Timestamp,
    text: Vec<u8>,
    truncated: bool,
    stream: &str,
    telemetry: &Telemetry,
) -> LogLine {
    let mut invalid = false;
    let text = match String::from_utf8(text) {
        Ok(text) => text,
        Err(e) => {
            invalid = true;
            String::from_utf8_lossy(e.as_bytes()).into_owned()
        }
    };
    // A container record's time stays the line's time (it orders the container's lines) and the app's
    // own time, when it wrote one, is kept as an attribute; a host file's line is timed by its text when
    // it says when, else by when it was read.
    let parsed = crate::parse::parse(&text);
    let message = parsed.message.unwrap_or(text);
    let mut attributes = parsed.attributes;
    let host = !tracked.origin.host.is_empty();
    let timestamp = match parsed.time {
        Some(time) if host => time,
        Some(time) => {
            attributes.insert("time".into(), time.to_string().into());
            timestamp
        }
        None => timestamp,
    };
    if host {
        attributes.insert("logSource".into(), tracked.origin.host.clone().into());
    } else if let Some(labels) = config.labels.get(&tracked.origin.namespace, &tracked.origin.pod)
        && !labels.is_empty()
    {
        let labels: serde_json::Map<String, serde_json::Value> =
            labels.into_iter().map(|(k, v)| (k, v.into())).collect();
        attributes.insert("labels".into(), labels.into());
    }
    if invalid {
        attributes.insert("invalidUtf8".into(), true.into());
    }
    if truncated {
        attributes.insert("truncated".into(), true.into());
        telemetry.line_truncated();
    }
    LogLine {
        timestamp,
        level: parsed.level,
        message,
        stream: stream.to_string(),
        namespace: tracked.origin.namespace.clone(),
        pod: tracked.origin.pod.clone(),
        container: tracked.origin.container.clone(),
        node: config.node.clone(),
        source: tracked.path.display().to_string(),
        attributes,
        dedup_key: None,
    }
}

#[cfg(test)]
mod tests;
