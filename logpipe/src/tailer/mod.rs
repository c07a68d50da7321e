//! The tailer: finds the container log files under the node's `pods/` directory as pods come and go,
//! and the host files of the configured globs, follows each from its committed position, joins CRI
//! partial records, and hands lines to the indexer in batches together with the positions they reach.
//! inotify (`watch`) wakes it when a watched directory changes; a look at every file once a second
//! (every `poll`, 250 ms by default, without inotify) is the backstop.
//!
//! Files are known by device and inode, checked against a fingerprint of their first bytes and a hash
//! of the bytes before the read position. Rotation by rename (the runtime renames `0.log` and opens a
//! new one) is followed by draining the old file to its end through the descriptor still open, then
//! leaving it (remembered as read while it exists, so a restart does not read it again); a file deleted
//! while open is drained the same way; a file that shrinks or is rewritten (copytruncate, truncate and
//! rewrite) is read again from its start. After a restart, rotated files not read to their end are found
//! beside their old path; one that is gone is counted lost. At most `max_open` files are held open.
//!
//! The tailer blocks when the indexer falls behind (a bounded channel): it waits, it never drops.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::SyncSender;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::checkpoint::{FINGERPRINT_LEN, FileKey, Position, fingerprint, hash_before, key_of};
use crate::cri::{self, Joiner};
use crate::multiline::{MultilineRule, Pending};
use crate::record::LogLine;
use crate::telemetry::Telemetry;

/// How much of a file is read at a time.
const CHUNK: usize = 1024 * 1024;
/// Lines per batch handed to the indexer.
const BATCH_LINES: usize = 2000;
/// Log files held open at once by default.
pub const MAX_OPEN_FILES: usize = 1024;
/// With inotify, how often every file is looked at even when nothing said it changed.
const RESCAN: Duration = Duration::from_secs(1);
/// How often files read to their end are looked for (their positions go once the files are gone).
const SWEEP_EVERY: Duration = Duration::from_secs(60);
/// How many bytes before the read position are checked to tell a file rewritten past it.
const TAIL_CHECK: u64 = 32;

/// Host files to follow (config `logs.sources`): plain lines, not CRI.
#[derive(Clone, Debug)]
pub struct HostSource {
    pub name: String,
    pub include: Vec<glob::Pattern>,
    pub exclude: Vec<glob::Pattern>,
    /// Files present when the pipeline first starts are read from their end (files that appear later,
    /// and files with a committed position, are read from where they should be).
    pub start_at_end: bool,
    pub multiline: Option<Arc<MultilineRule>>,
}

/// A multiline rule for the containers it names (globs; `None` for any).
#[derive(Clone, Debug)]
pub struct ContainerMultiline {
    pub namespace: Option<glob::Pattern>,
    pub pod: Option<glob::Pattern>,
    pub container: Option<glob::Pattern>,
    pub rule: Arc<MultilineRule>,
}

impl ContainerMultiline {
    fn matches(&self, origin: &Origin) -> bool {
        let fits = |p: &Option<glob::Pattern>, v: &str| p.as_ref().is_none_or(|p| p.matches(v));
        fits(&self.namespace, &origin.namespace)
            && fits(&self.pod, &origin.pod)
            && fits(&self.container, &origin.container)
    }
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
    /// Multiline joining for containers' logs (the first rule that matches).
    pub containers: Vec<ContainerMultiline>,
    /// Files held open at once: beyond it, read-up files that were quiet longest are closed (and opened
    /// again when they grow), and new files wait. A renamed or deleted file keeps its descriptor until
    /// it is drained.
    pub max_open: usize,
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
    /// Closed while quiet when too many files are open.
    file: Option<File>,
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
    /// The size the last look saw at the path (tells whether a closed file grew).
    seen_len: u64,
    /// A hash of the bytes just before `read_pos`: a file rewritten past it between two looks
    /// (copytruncate, then more than was read) does not match.
    tail: u64,
    /// The pass it was last read in (the quietest files close first).
    last_read: u64,
    /// Where the last whole line (CRI records joined) ends: `offset` unless a multiline record is open.
    line_start: u64,
    multiline: Option<Arc<MultilineRule>>,
    /// The multiline record being joined.
    pending: Option<Pending>,
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
    /// Files gone without a descriptor left to drain them: released with the next batch.
    gone: Vec<FileKey>,
    /// Files read to their end and left behind, while they are still there (`Position::done`).
    done: BTreeMap<FileKey, Position>,
    /// When the files of `done` were last looked for.
    swept: std::time::Instant,
    passes: u64,
}

impl Tailer {
    pub fn new(
        config: TailerConfig,
        saved: BTreeMap<FileKey, Position>,
        out: SyncSender<Batch>,
        telemetry: Telemetry,
    ) -> Tailer {
        let (done, saved) = saved.into_iter().partition(|(_, p)| p.done);
        Tailer {
            config,
            files: HashMap::new(),
            saved,
            out,
            telemetry,
            looked: false,
            resumed: false,
            gone: Vec::new(),
            done,
            swept: std::time::Instant::now(),
            passes: 0,
        }
    }

    /// Marks a pipeline that committed before: files it finds now are read from their start.
    pub fn resumed(mut self, resumed: bool) -> Tailer {
        self.resumed = resumed;
        self
    }

    /// Follows the files until `shutdown`; returns when the indexer is gone too.
    pub fn run(mut self, shutdown: CancellationToken) {
        let _ = std::fs::create_dir_all(&self.config.root);
        let mut dirs = vec![(self.config.root.clone(), true)];
        for source in &self.config.hosts {
            dirs.extend(source.include.iter().map(|p| watch::glob_base(p.as_str())));
        }
        let wakeup = watch::Wakeup::start(&dirs);
        self.telemetry.watching.set(i64::from(wakeup.active()));
        while !shutdown.is_cancelled() {
            let started = std::time::Instant::now();
            let Ok(more) = self.pass() else { return };
            if more {
                continue;
            }
            if wakeup.active() {
                // Until something changes (a look a second at most): then no sooner than `poll` after
                // the last look, so that a busy writer does not make looks back to back.
                wakeup.wait(RESCAN);
                std::thread::sleep(self.config.poll.saturating_sub(started.elapsed()));
            } else {
                std::thread::sleep(self.config.poll);
            }
        }
    }

    /// One look at every file; `Err` when the indexer is gone. Returns whether data is left to read now.
    pub fn pass(&mut self) -> Result<bool, std::sync::mpsc::SendError<Batch>> {
        self.passes += 1;
        self.discover();
        if self.passes == 1 || self.swept.elapsed() >= SWEEP_EVERY {
            self.sweep_done();
        }
        let mut batch = Batch {
            released: std::mem::take(&mut self.gone),
            ..Batch::default()
        };
        let mut more = false;
        // Whether a file was read to its end and left (its position says so from now on).
        let mut settled = false;
        // Rotated files first: their lines come before those of the file that replaced them. The others
        // start from another file each pass, so that a busy one (a batch fills up) starves none.
        let (mut keys, mut live): (Vec<FileKey>, Vec<FileKey>) =
            self.files.keys().cloned().partition(|k| self.files[k].rotated);
        keys.sort();
        live.sort();
        if !live.is_empty() {
            let first = (self.passes as usize) % live.len();
            live.rotate_left(first);
        }
        keys.extend(live);
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
            // A multiline record that waited long enough for more goes out.
            if let (Some(pending), Some(rule)) = (&tracked.pending, &tracked.multiline)
                && pending.since.elapsed() >= rule.timeout
            {
                flush(tracked, &self.config, &self.telemetry, &mut batch.lines);
                batch.positions.push((key.clone(), position(tracked)));
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
            if tracked.file.is_none() {
                // Closed while quiet: opened again once it changed.
                if tracked.seen_len == tracked.read_pos || !self.reopen(&key) {
                    continue;
                }
            }
            let Some(tracked) = self.files.get_mut(&key) else {
                continue;
            };
            tracked.last_read = self.passes;
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
                && let Some(Ok((fp, len))) = tracked.file.as_ref().map(|f| fingerprint(f, FINGERPRINT_LEN))
            {
                tracked.fingerprint = fp;
                tracked.fingerprint_len = len;
            }
            batch.positions.push((key.clone(), position(tracked)));
            let drained = !left && tracked.file.is_some();
            // Released after two looks at its end in a row: a writer that appends between its rename and
            // reopening the new file is still read.
            tracked.drained_looks = if tracked.rotated && drained {
                tracked.drained_looks + 1
            } else {
                0
            };
            if tracked.drained_looks >= 2 {
                // What is left at the end of a rotated file (a record being joined, a last line without
                // its newline) goes out as it is.
                take_remainder(tracked, &self.config, &self.telemetry, &mut batch.lines);
                flush_partials(tracked, &self.config, &self.telemetry, &mut batch.lines);
                // Still there (renamed): remembered as read until it goes; deleted: forgotten.
                if !matches!(find_in_dir(&tracked.path, &key), Ok(None)) {
                    let mut done = position(tracked);
                    done.done = true;
                    batch.positions.push((key.clone(), done.clone()));
                    self.done.insert(key.clone(), done);
                    settled = true;
                } else {
                    batch.released.push(key.clone());
                }
                self.files.remove(&key);
                self.telemetry.files_tracked.dec();
            }
            if batch.lines.len() >= BATCH_LINES {
                more = true;
                break;
            }
        }
        let open = self.files.values().filter(|t| t.file.is_some()).count();
        self.telemetry.files_open.set(open as i64);
        if batch.lines.is_empty() && batch.released.is_empty() && !settled {
            return Ok(more);
        }
        self.telemetry.lines_read.inc_by(batch.lines.len() as u64);
        // Blocks while the indexer's queue is full: the tailer waits, it never drops.
        self.out.send(batch)?;
        Ok(more)
    }

    /// Forgets the files read to their end that are gone now (a directory listing each).
    fn sweep_done(&mut self) {
        self.swept = std::time::Instant::now();
        // A directory listed once for all its files; one that cannot be listed keeps them all.
        let mut present: HashMap<PathBuf, Option<HashMap<FileKey, PathBuf>>> = HashMap::new();
        let mut gone = Vec::new();
        for (key, position) in &self.done {
            let dir = position.path.parent().unwrap_or(Path::new("/")).to_path_buf();
            let keys = present
                .entry(dir)
                .or_insert_with(|| keys_in_dir(&position.path).ok());
            if keys.as_ref().is_some_and(|keys| !keys.contains_key(key)) {
                gone.push(key.clone());
            }
        }
        for key in gone {
            self.done.remove(&key);
            self.gone.push(key);
        }
    }

    /// Makes room for one more open file: closes the file read up that was read longest ago (never a
    /// renamed or deleted one: it cannot be opened again by its path). False when none can close.
    fn make_room(&mut self, keep: Option<&FileKey>) -> bool {
        let open = self.files.values().filter(|t| t.file.is_some()).count();
        if open < self.config.max_open {
            return true;
        }
        let quietest = self
            .files
            .iter_mut()
            .filter(|(k, t)| {
                Some(*k) != keep
                    && t.file.is_some()
                    && !t.rotated
                    && t.pending.is_none()
                    && t.seen_len <= t.read_pos
            })
            .min_by_key(|(_, t)| t.last_read);
        match quietest {
            Some((_, tracked)) => {
                tracked.file = None;
                true
            }
            None => false,
        }
    }

    /// Opens a closed file again by its path (when it is still the same file and there is room).
    fn reopen(&mut self, key: &FileKey) -> bool {
        if !self.make_room(Some(key)) {
            return false;
        }
        let Some(tracked) = self.files.get_mut(key) else {
            return false;
        };
        match File::open(&tracked.path) {
            Ok(file) if file.metadata().is_ok_and(|m| key_of(&m) == *key) => {
                tracked.file = Some(file);
                true
            }
            // The path leads elsewhere now: the next look finds where the file went.
            _ => false,
        }
    }

    /// Finds the log files now under the root and the host sources; notes those whose path leads
    /// elsewhere; at the first look, finds the files of committed positions that moved away while the
    /// pipeline was down.
    fn discover(&mut self) {
        let mut seen: HashSet<FileKey> = HashSet::new();
        let mut found: Vec<(PathBuf, Option<Origin>)> = log_files(&self.config.root, false)
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
                        found.push((path, Some(host_origin(source))));
                    }
                }
            }
        }
        let first_look = !self.looked;
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
                tracked.seen_len = meta.len();
                continue;
            }
            let Some(origin) = origin else {
                continue;
            };
            let read_from_end = first_look && !self.resumed && origin.start_at_end;
            self.follow(key, path, origin, read_from_end, false);
        }
        if first_look {
            // Containers' rotated files (`0.log.<time>`) not read to their end: renamed while the
            // pipeline was down, or even written and renamed while it was down. Drained, then left.
            for path in log_files(&self.config.root, true) {
                let (Ok(meta), Some(origin)) = (std::fs::metadata(&path), origin(&self.config.root, &path))
                else {
                    continue;
                };
                let key = key_of(&meta);
                if self.files.contains_key(&key) {
                    continue;
                }
                self.follow(key.clone(), path, origin, false, true);
                if let Some(tracked) = self.files.get_mut(&key) {
                    tracked.rotated = true;
                }
            }
            // Committed positions whose files are not where they were: renamed beside it (rotated while
            // the pipeline was down) they are drained; gone, what they still held is lost, and counted.
            for (key, saved) in std::mem::take(&mut self.saved) {
                let origin = self.origin_of(&saved.path);
                match (find_in_dir(&saved.path, &key), origin) {
                    (Err(e), _) => {
                        tracing::warn!(file = %saved.path.display(), error = %e,
                            "cannot look for a log file that moved; its position is kept");
                    }
                    (Ok(Some(path)), Some(origin)) => {
                        self.saved.insert(key.clone(), saved);
                        self.follow(key.clone(), path, origin, false, true);
                        if let Some(tracked) = self.files.get_mut(&key) {
                            tracked.rotated = true;
                        }
                    }
                    _ => {
                        // Gone while the pipeline was down: lines written after the last look at it
                        // are lost (known to be when it had more than was read), and counted.
                        self.telemetry
                            .file_gone(&saved.path, saved.offset, saved.size > saved.offset);
                        self.gone.push(key);
                    }
                }
            }
        }
        let mut gone = Vec::new();
        for (key, tracked) in &mut self.files {
            // Not found this time: rotated only if its path is gone or is another file now (a listing
            // that failed once must not release a live file, to be read again from 0 later).
            let elsewhere = match std::fs::metadata(&tracked.path) {
                Ok(meta) => key_of(&meta) != *key,
                Err(e) => e.kind() == std::io::ErrorKind::NotFound,
            };
            if seen.contains(key) || !elsewhere {
                continue;
            }
            tracked.rotated = true;
            if tracked.file.is_none() {
                // Closed while quiet and moved since: found beside its old path, or gone.
                match find_in_dir(&tracked.path, key) {
                    Ok(Some(path)) => {
                        if let Ok(file) = File::open(&path) {
                            tracked.path = path;
                            tracked.seen_len = file.metadata().map_or(tracked.seen_len, |m| m.len());
                            tracked.file = Some(file);
                        }
                    }
                    // Cannot tell now: the next look tries again.
                    Err(_) => {}
                    Ok(None) => {
                        if tracked.seen_len > tracked.read_pos {
                            self.telemetry.file_gone(&tracked.path, tracked.read_pos, true);
                        }
                        gone.push(key.clone());
                    }
                }
            }
        }
        for key in gone {
            self.files.remove(&key);
            self.telemetry.files_tracked.dec();
            self.gone.push(key);
        }
    }

    /// Where lines of a file at `path` come from, by the root or the host source it falls under.
    fn origin_of(&self, path: &Path) -> Option<Origin> {
        if path.starts_with(&self.config.root) {
            return origin(&self.config.root, path);
        }
        self.config
            .hosts
            .iter()
            .find(|source| source.include.iter().any(|p| p.matches_path(path)))
            .map(host_origin)
    }

    /// Starts following a file found at `path`: from its committed position when it has one (and is
    /// still the same file), else from its start (or its end).
    /// A file that `must` be followed now (one renamed away, found only at the first look) is opened
    /// even beyond `max_open`; others wait for room.
    fn follow(&mut self, key: FileKey, path: PathBuf, origin: Origin, read_from_end: bool, must: bool) {
        if !self.make_room(None) && !must {
            // Too many open files: it waits for the next look.
            return;
        }
        let Ok(file) = File::open(&path) else { return };
        // Replaced between the stat and the open: taken up at the next look.
        let Ok(meta) = file.metadata() else { return };
        if key_of(&meta) != key {
            return;
        }
        let (fp, fp_len) = fingerprint(&file, FINGERPRINT_LEN).unwrap_or((0, 0));
        let same = |saved: &Position| {
            fingerprint(&file, saved.fingerprint_len).ok() == Some((saved.fingerprint, saved.fingerprint_len))
                && meta.len() >= saved.offset
                && saved
                    .tail
                    .is_none_or(|tail| hash_before(&file, saved.offset, TAIL_CHECK).ok() == Some(tail))
        };
        if let Some(done) = self.done.remove(&key) {
            if same(&done) && meta.len() == done.offset {
                // Read to its end before, and nothing since.
                self.done.insert(key, done);
                return;
            }
            // Grown since (taken up where it was left), or another file on the same inode (read whole).
            if same(&done) {
                self.saved.insert(key.clone(), done);
            }
        }
        let (offset, emitted, skipping) = match self.saved.remove(&key) {
            Some(saved) if same(&saved) => (saved.offset, saved.emitted, saved.skipping),
            Some(_) => {
                // The inode is another file's now (reused, or rewritten while we were down).
                self.telemetry.file_replaced();
                (0, 0, false)
            }
            None if read_from_end => (meta.len(), meta.len(), false),
            None => (0, 0, false),
        };
        let tail = hash_before(&file, offset, TAIL_CHECK).unwrap_or(0);
        let multiline = if origin.host.is_empty() {
            self.config
                .containers
                .iter()
                .find(|c| c.matches(&origin))
                .map(|c| c.rule.clone())
        } else {
            self.config
                .hosts
                .iter()
                .find(|h| h.name == origin.host)
                .and_then(|h| h.multiline.clone())
        };
        tracing::debug!(file = %path.display(), offset, "following a log file");
        self.telemetry.files_tracked.inc();
        self.files.insert(
            key,
            Tracked {
                path,
                file: Some(file),
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
                seen_len: meta.len(),
                tail,
                last_read: self.passes,
                line_start: offset,
                multiline,
                pending: None,
            },
        );
    }
}

fn host_origin(source: &HostSource) -> Origin {
    Origin {
        host: source.name.clone(),
        start_at_end: source.start_at_end,
        ..Origin::default()
    }
}

/// The file with key `key` in the directory of `path` (where rotation renames a file to): `Ok(None)`
/// when it is not there (or the directory is gone), `Err` when the directory cannot be listed (then
/// nothing can be told).
fn find_in_dir(path: &Path, key: &FileKey) -> std::io::Result<Option<PathBuf>> {
    Ok(keys_in_dir(path)?.remove(key))
}

/// The files of the directory of `path` by key (none when the directory is gone).
fn keys_in_dir(path: &Path) -> std::io::Result<HashMap<FileKey, PathBuf>> {
    let Some(dir) = path.parent() else {
        return Ok(HashMap::new());
    };
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e),
    };
    Ok(entries
        .flatten()
        .map(|entry| entry.path())
        .filter_map(|p| {
            let meta = std::fs::metadata(&p).ok().filter(|m| m.is_file())?;
            Some((key_of(&meta), p))
        })
        .collect())
}

fn position(tracked: &Tracked) -> Position {
    let tail = tracked
        .file
        .as_ref()
        .and_then(|f| hash_before(f, tracked.offset, TAIL_CHECK).ok());
    Position {
        tail,
        size: tracked.seen_len,
        path: tracked.path.clone(),
        fingerprint: tracked.fingerprint,
        fingerprint_len: tracked.fingerprint_len,
        offset: tracked.offset,
        emitted: tracked.emitted,
        skipping: tracked.skipping,
        done: false,
    }
}

/// The live log files, `<root>/<ns>_<pod>_<uid>/<container>/<n>.log` (rotated ones are followed
/// through their open descriptors, not found again by name); or, with `rotated`, the rotated ones
/// (`<n>.log.<time>`, compressed ones left out).
fn log_files(root: &Path, rotated: bool) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for pod in std::fs::read_dir(root).into_iter().flatten().flatten() {
        for container in std::fs::read_dir(pod.path()).into_iter().flatten().flatten() {
            for file in std::fs::read_dir(container.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let path = file.path();
                let name = file.file_name().to_string_lossy().into_owned();
                let wanted = if rotated {
                    name.contains(".log.") && !name.ends_with(".gz")
                } else {
                    name.ends_with(".log")
                };
                if wanted {
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
    let Some(file) = tracked.file.as_mut() else {
        return Ok(false);
    };
    let len = file.metadata()?.len();
    tracked.seen_len = len;
    // Truncated in place (copytruncate, or truncate and rewrite), even when rewritten past where
    // reading was between two looks: everything is new again.
    let rewritten = len < tracked.read_pos
        || (len > tracked.read_pos
            && tracked.read_pos > 0
            && hash_before(file, tracked.read_pos, TAIL_CHECK)? != tracked.tail);
    if rewritten {
        telemetry.file_truncated();
        // What was joined of the old content goes out first.
        flush_partials(tracked, config, telemetry, lines);
        tracked.read_pos = 0;
        tracked.offset = 0;
        tracked.line_start = 0;
        tracked.emitted = 0;
        tracked.joiner = Joiner::default();
        tracked.pending = None;
        tracked.skipping = false;
    }
    if len == tracked.read_pos {
        return Ok(false);
    }
    let Some(file) = tracked.file.as_mut() else {
        return Ok(false);
    };
    file.seek(SeekFrom::Start(tracked.read_pos))?;
    let want = (len - tracked.read_pos).min(CHUNK as u64) as usize;
    let mut buf = vec![0u8; want];
    let mut filled = 0;
    while filled < want {
        match file.read(&mut buf[filled..])? {
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
                tracked.line_start = record_end;
            }
            tracked.emitted = tracked.emitted.max(record_end);
            tracked.read_pos = record_end;
            settle(tracked);
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
        if let Some((time, text, truncated, stream)) = line
            && record_end > tracked.emitted
        {
            let stream = match stream {
                "stdout" => "stdout",
                "stderr" => "stderr",
                _ => "",
            };
            match (&tracked.multiline, &mut tracked.pending) {
                (Some(rule), Some(pending)) if !pending.ends_before(rule, &text, stream) => {
                    pending.push(&text, truncated, record_end, config.max_line);
                }
                (Some(_), _) => {
                    flush(tracked, config, telemetry, lines);
                    let start = tracked.line_start;
                    tracked.pending = Some(Pending::new(time, text, truncated, stream, start, record_end));
                }
                (None, _) => {
                    lines.push(to_line(tracked, config, time, text, truncated, stream, telemetry));
                    tracked.emitted = record_end;
                }
            }
        }
        if !tracked.joiner.pending() {
            tracked.line_start = record_end;
        }
        tracked.read_pos = record_end;
        settle(tracked);
    }
    if start == 0 && filled == CHUNK {
        // A chunk without a newline: not CRI; its start is cut as a line of its own and the rest of
        // that line, however long, is dropped.
        let record_end = base + filled as u64;
        let skipped = std::mem::replace(&mut tracked.skipping, true);
        flush(tracked, config, telemetry, lines);
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
        tracked.line_start = record_end;
        tracked.read_pos = record_end;
        settle(tracked);
    }
    if let Some(file) = &tracked.file {
        tracked.tail = hash_before(file, tracked.read_pos, TAIL_CHECK)?;
    }
    // More to read now only when a whole chunk was read (what is left after a shorter read is a line
    // still being written).
    Ok(want == CHUNK && tracked.read_pos < len)
}

/// Where reading resumes after a restart: the start of the multiline record being joined, else the end
/// of the last whole line.
fn settle(tracked: &mut Tracked) {
    tracked.offset = tracked.pending.as_ref().map_or(tracked.line_start, |p| p.start);
}

/// Sends out whatever is being joined: the multiline record, and CRI partial records (flagged).
fn flush_partials(
    tracked: &mut Tracked,
    config: &TailerConfig,
    telemetry: &Telemetry,
    lines: &mut Vec<LogLine>,
) {
    flush(tracked, config, telemetry, lines);
    for (time, text, truncated, stream) in tracked.joiner.take_pending() {
        let mut line = to_line(tracked, config, time, text, truncated, stream, telemetry);
        line.attributes.insert("partial".into(), true.into());
        lines.push(line);
    }
}

/// Reads what follows the last newline of a file that is done (renamed away and drained) as one last
/// line, flagged partial.
fn take_remainder(
    tracked: &mut Tracked,
    config: &TailerConfig,
    telemetry: &Telemetry,
    lines: &mut Vec<LogLine>,
) {
    let Some(file) = &tracked.file else { return };
    let Ok(len) = file.metadata().map(|m| m.len()) else {
        return;
    };
    if len <= tracked.read_pos || tracked.skipping {
        return;
    }
    let want = (len - tracked.read_pos).min(config.max_line as u64);
    let Ok(raw) = crate::checkpoint::read_at(file, tracked.read_pos, want) else {
        return;
    };
    let n = raw.len();
    let (time, text, stream) = match tracked.origin.host.is_empty().then(|| cri::parse(&raw)).flatten() {
        Some(record) => (record.time, record.text.to_vec(), record.stream.to_string()),
        None => (jiff::Timestamp::now(), raw.clone(), String::new()),
    };
    if tracked.read_pos + n as u64 > tracked.emitted {
        let mut line = to_line(
            tracked,
            config,
            time,
            text,
            (len - tracked.read_pos) as usize > n,
            &stream,
            telemetry,
        );
        line.attributes.insert("partial".into(), true.into());
        lines.push(line);
    }
    tracked.read_pos = len;
    tracked.line_start = len;
    tracked.emitted = tracked.emitted.max(len);
    settle(tracked);
}

/// Sends out the multiline record being joined, if any.
fn flush(tracked: &mut Tracked, config: &TailerConfig, telemetry: &Telemetry, lines: &mut Vec<LogLine>) {
    if let Some(pending) = tracked.pending.take() {
        let mut line = to_line(
            tracked,
            config,
            pending.time,
            pending.text,
            pending.truncated,
            pending.stream,
            telemetry,
        );
        if pending.lines > 1 {
            line.attributes.insert("lines".into(), pending.lines.into());
        }
        lines.push(line);
        tracked.emitted = tracked.emitted.max(pending.end);
    }
    settle(tracked);
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
pub mod watch;
