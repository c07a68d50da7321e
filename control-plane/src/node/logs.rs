//! `kubectl logs`: reading a container's CRI log files back as the kubelet serves them
//! (`kuberuntime/logs/logs.go` `ReadLogs`): the text of the records (a `P` record's text goes on into the
//! next), from the rotated files and then the live one, filtered by `sinceTime`/`sinceSeconds`, cut to the
//! last `tailLines`, prefixed with each line's time for `timestamps`, ended at `limitBytes`; with
//! `follow`, what the container writes afterwards too, until its run ends.
//!
//! Which run: the container status's `restartCount` (the current run) or the one before (`previous`).
//! The errors are the API server's and the kubelet's texts, as `400 Bad Request`.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::api::core::v1::Pod;
use tokio::sync::mpsc;

use super::crilog::{self, parse};
use super::runtime::Attempt;

/// How often a followed log is looked at for more.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// At most this much is read back before `tailLines` is applied.
const TAIL_SCAN_LIMIT: u64 = 64 * 1024 * 1024;

/// `PodLogOptions`, as the API decoded them.
#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    pub container: Option<String>,
    pub follow: bool,
    pub previous: bool,
    pub since: Option<jiff::Timestamp>,
    pub timestamps: bool,
    pub tail_lines: Option<usize>,
    pub limit_bytes: Option<usize>,
}

/// How many `logs -f` may stream at once: each holds a blocking thread, and the blocking pool is shared
/// with the store.
const MAX_FOLLOWERS: usize = 64;

/// The container logs of one node's data dir.
#[derive(Clone, Debug)]
pub struct LogFiles {
    /// `DIR/pods`
    pub log_dir: PathBuf,
    /// `DIR/run/pods`
    pub run_dir: PathBuf,
    followers: std::sync::Arc<tokio::sync::Semaphore>,
}

/// What to read: the files of one run, oldest first, and whether the run still writes.
struct Target {
    files: Vec<PathBuf>,
    live: PathBuf,
    pod_uid: String,
    container: String,
    restart: i32,
}

impl LogFiles {
    pub fn new(data_dir: &Path) -> LogFiles {
        LogFiles {
            log_dir: data_dir.join("pods"),
            run_dir: data_dir.join("run/pods"),
            followers: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_FOLLOWERS)),
        }
    }

    /// Streams `pod`'s log as `options` ask; the error is a message for a `400 Bad Request`.
    pub fn stream(&self, pod: &Pod, options: &LogOptions) -> Result<mpsc::Receiver<Bytes>, String> {
        let target = self.target(pod, options)?;
        let permit = if options.follow {
            Some(self.followers.clone().try_acquire_owned().map_err(|_| {
                format!("{MAX_FOLLOWERS} logs are followed already on this node; try again later")
            })?)
        } else {
            None
        };
        let (tx, rx) = mpsc::channel(16);
        let options = options.clone();
        let run_dir = self.run_dir.clone();
        tokio::task::spawn_blocking(move || {
            let mut out = Output {
                tx,
                left: options.limit_bytes,
                timestamps: options.timestamps,
                at_line_start: true,
            };
            let _ = copy(&target, &options, &run_dir, &mut out);
            drop(permit);
        });
        Ok(rx)
    }

    fn target(&self, pod: &Pod, options: &LogOptions) -> Result<Target, String> {
        let name = pod.metadata.name.clone().unwrap_or_default();
        let spec = pod.spec.clone().unwrap_or_default();
        let all: Vec<String> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(&spec.containers)
            .map(|c| c.name.clone())
            .collect();
        let container = match options.container.as_deref().filter(|c| !c.is_empty()) {
            Some(c) if all.iter().any(|n| n == c) => c.to_string(),
            Some(c) => return Err(format!("container {c} is not valid for pod {name}")),
            None if spec.containers.len() == 1 => spec.containers[0].name.clone(),
            None => {
                let names: Vec<&str> = spec.containers.iter().map(|c| c.name.as_str()).collect();
                return Err(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    names.join(" ")
                ));
            }
        };
        let status = pod
            .status
            .iter()
            .flat_map(|s| {
                s.init_container_statuses
                    .iter()
                    .flatten()
                    .chain(s.container_statuses.iter().flatten())
            })
            .find(|s| s.name == container)
            .cloned()
            .unwrap_or_default();
        let restart = if options.previous {
            let terminated = status
                .last_state
                .as_ref()
                .and_then(|s| s.terminated.as_ref())
                .is_some();
            if !terminated || status.restart_count == 0 {
                return Err(format!(
                    "previous terminated container \"{container}\" in pod \"{name}\" not found"
                ));
            }
            status.restart_count - 1
        } else {
            status.restart_count
        };
        let uid = pod.metadata.uid.clone().unwrap_or_default();
        let namespace = pod.metadata.namespace.clone().unwrap_or_default();
        let live = self
            .log_dir
            .join(format!("{namespace}_{name}_{uid}"))
            .join(&container)
            .join(format!("{restart}.log"));
        if !live.exists() {
            let reason = status
                .state
                .as_ref()
                .and_then(|s| s.waiting.as_ref())
                .and_then(|w| w.reason.clone())
                .unwrap_or_else(|| "ContainerCreating".into());
            return Err(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: {reason}"
            ));
        }
        let mut files = crilog::rotated_files(&live).map_err(|e| e.to_string())?;
        files.push(live.clone());
        Ok(Target {
            files,
            live,
            pod_uid: uid,
            container,
            restart,
        })
    }
}

/// Where the log text goes: the response, within `limitBytes`.
struct Output {
    tx: mpsc::Sender<Bytes>,
    left: Option<usize>,
    timestamps: bool,
    at_line_start: bool,
}

impl Output {
    /// Sends one record's text; false once the reader is gone or the limit is reached.
    fn record(&mut self, time: jiff::Timestamp, text: &[u8], complete: bool) -> bool {
        let mut chunk = Vec::with_capacity(text.len() + 40);
        if self.timestamps && self.at_line_start {
            chunk.extend_from_slice(crilog::format_time(time).as_bytes());
            chunk.push(b' ');
        }
        chunk.extend_from_slice(text);
        if complete {
            chunk.push(b'\n');
        }
        self.at_line_start = complete;
        if let Some(left) = &mut self.left {
            if *left == 0 {
                return false;
            }
            chunk.truncate(*left);
            *left -= chunk.len();
        }
        self.tx.blocking_send(Bytes::from(chunk)).is_ok() && self.left != Some(0)
    }
}

/// One record as read, owned.
struct Owned {
    time: jiff::Timestamp,
    text: Vec<u8>,
    complete: bool,
}

fn copy(target: &Target, options: &LogOptions, run_dir: &Path, out: &mut Output) -> std::io::Result<()> {
    let keep = |time: jiff::Timestamp| options.since.is_none_or(|since| time >= since);
    match options.tail_lines {
        Some(tail) => {
            // The last `tail` lines: whole lines, a `P` record belongs to the line its `F` ends.
            let mut lines: VecDeque<Vec<Owned>> = VecDeque::new();
            let mut current: Vec<Owned> = Vec::new();
            // The newest files that fit the scan limit (the live one always): the tail is at the end.
            let mut budget = TAIL_SCAN_LIMIT;
            let mut first = target.files.len() - 1;
            while first > 0 {
                let size = std::fs::metadata(&target.files[first - 1]).map_or(0, |m| m.len());
                if size > budget {
                    break;
                }
                budget -= size;
                first -= 1;
            }
            let mut live_offset = 0;
            for file in &target.files[first..] {
                let opened = match std::fs::File::open(file) {
                    Ok(opened) => opened,
                    // Rotated away since it was listed.
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(e),
                };
                let live = file == &target.live;
                let mut reader = BufReader::new(opened);
                let mut raw = Vec::new();
                let mut offset = 0u64;
                while reader.read_until(b'\n', &mut raw)? > 0 {
                    if raw.last() != Some(&b'\n') {
                        // A record still being written: followed from its start.
                        break;
                    }
                    offset += raw.len() as u64;
                    if let Some(record) = parse(&raw[..raw.len() - 1])
                        && keep(record.time)
                    {
                        let complete = record.complete;
                        current.push(Owned {
                            time: record.time,
                            text: record.text.to_vec(),
                            complete,
                        });
                        if complete {
                            lines.push_back(std::mem::take(&mut current));
                            if lines.len() > tail {
                                lines.pop_front();
                            }
                        }
                    }
                    raw.clear();
                }
                if live {
                    live_offset = offset;
                }
            }
            for line in lines {
                for record in line {
                    if !out.record(record.time, &record.text, record.complete) {
                        return Ok(());
                    }
                }
            }
            for record in current {
                if !out.record(record.time, &record.text, record.complete) {
                    return Ok(());
                }
            }
            if options.follow {
                follow(target, run_dir, out, live_offset, &keep)?;
            }
        }
        None => {
            let (older, _) = target.files.split_at(target.files.len() - 1);
            for file in older {
                if !copy_file(file, 0, out, &keep)?.1 {
                    return Ok(());
                }
            }
            if options.follow {
                follow(target, run_dir, out, 0, &keep)?;
            } else {
                copy_file(&target.live, 0, out, &keep)?;
            }
        }
    }
    Ok(())
}

/// Copies the records of `path` from `offset`; returns the offset reached (whole records only) and
/// whether to go on.
fn copy_file(
    path: &Path,
    offset: u64,
    out: &mut Output,
    keep: &dyn Fn(jiff::Timestamp) -> bool,
) -> std::io::Result<(u64, bool)> {
    let mut file = match std::fs::File::open(path) {
        Ok(file) => file,
        // A rotated file removed since it was listed: the rest is still worth sending.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((offset, true)),
        Err(e) => return Err(e),
    };
    file.seek(SeekFrom::Start(offset))?;
    copy_from(&mut BufReader::new(file), offset, out, keep)
}

fn copy_from(
    reader: &mut impl BufRead,
    mut offset: u64,
    out: &mut Output,
    keep: &dyn Fn(jiff::Timestamp) -> bool,
) -> std::io::Result<(u64, bool)> {
    let mut raw = Vec::new();
    loop {
        raw.clear();
        let n = reader.read_until(b'\n', &mut raw)?;
        // A record still being written (no newline yet) is read again next time.
        if n == 0 || raw.last() != Some(&b'\n') {
            return Ok((offset, true));
        }
        offset += n as u64;
        if let Some(record) = parse(&raw[..raw.len() - 1])
            && keep(record.time)
            && !out.record(record.time, record.text, record.complete)
        {
            return Ok((offset, false));
        }
    }
}

/// Follows the live file from `offset` until the run ends (and its last records are out) or the reader
/// goes; a rotation is followed into the new file.
fn follow(
    target: &Target,
    run_dir: &Path,
    out: &mut Output,
    mut offset: u64,
    keep: &dyn Fn(jiff::Timestamp) -> bool,
) -> std::io::Result<()> {
    let mut file = std::fs::File::open(&target.live)?;
    let mut inode = file.metadata()?.ino();
    loop {
        let running = run_is_live(run_dir, target);
        file.seek(SeekFrom::Start(offset))?;
        let (reached, go_on) = copy_from(&mut BufReader::new(&file), offset, out, keep)?;
        offset = reached;
        if !go_on || out.tx.is_closed() {
            return Ok(());
        }
        // Rotated: send what the old file got since the read above, then go on with the new one.
        if let Ok(meta) = std::fs::metadata(&target.live)
            && meta.ino() != inode
        {
            file.seek(SeekFrom::Start(offset))?;
            let (_, go_on) = copy_from(&mut BufReader::new(&file), offset, out, keep)?;
            if !go_on {
                return Ok(());
            }
            file = std::fs::File::open(&target.live)?;
            inode = meta.ino();
            offset = 0;
            continue;
        }
        if !running {
            return Ok(());
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// Whether the run that writes the target's file has not ended.
fn run_is_live(run_dir: &Path, target: &Target) -> bool {
    Attempt::read_pod(&run_dir.join(&target.pod_uid)).iter().any(|a| {
        a.spec.name == target.container && a.spec.restart_count == target.restart && a.exit.is_none()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crilog::{Rotation, Stream, Writer};

    fn pod(restarts: i32) -> Pod {
        serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "namespace": "ns", "uid": "u"},
            "spec": {"containers": [{"name": "c"}, {"name": "d"}]},
            "status": {"containerStatuses": [
                {"name": "c", "restartCount": restarts, "ready": true, "image": "", "imageID": "",
                 "lastState": {"terminated": {"exitCode": 1}}},
                {"name": "d", "restartCount": 0, "ready": false, "image": "", "imageID": "",
                 "state": {"waiting": {"reason": "CreateContainerConfigError"}}}
            ]}
        }))
        .unwrap()
    }

    async fn read(files: &LogFiles, pod: &Pod, options: LogOptions) -> Result<String, String> {
        let mut rx = files.stream(pod, &options)?;
        let mut text = Vec::new();
        while let Some(chunk) = rx.recv().await {
            text.extend_from_slice(&chunk);
        }
        Ok(String::from_utf8(text).unwrap())
    }

    #[tokio::test]
    async fn lines_tail_previous_and_limits() {
        let dir = tempfile::tempdir().unwrap();
        let files = LogFiles::new(dir.path());
        let base = dir.path().join("pods/ns_p_u/c");
        let mut old = Writer::open(&base.join("0.log"), Rotation::default()).unwrap();
        old.line(Stream::Stdout, b"before", true).unwrap();
        let mut now = Writer::open(&base.join("1.log"), Rotation::default()).unwrap();
        for n in 1..=5 {
            now.line(Stream::Stdout, format!("line {n}").as_bytes(), true)
                .unwrap();
        }
        now.line(Stream::Stderr, b"split ", false).unwrap();
        now.line(Stream::Stderr, b"line", true).unwrap();
        let c = |f: fn(&mut LogOptions)| {
            let mut o = LogOptions {
                container: Some("c".into()),
                ..LogOptions::default()
            };
            f(&mut o);
            o
        };
        let all = read(&files, &pod(1), c(|_| {})).await.unwrap();
        assert_eq!(all, "line 1\nline 2\nline 3\nline 4\nline 5\nsplit line\n");
        let tail = read(&files, &pod(1), c(|o| o.tail_lines = Some(2)))
            .await
            .unwrap();
        assert_eq!(tail, "line 5\nsplit line\n");
        let previous = read(&files, &pod(1), c(|o| o.previous = true)).await.unwrap();
        assert_eq!(previous, "before\n");
        let limited = read(&files, &pod(1), c(|o| o.limit_bytes = Some(9)))
            .await
            .unwrap();
        assert_eq!(limited, "line 1\nli");
        let stamped = read(&files, &pod(1), c(|o| o.tail_lines = Some(1)))
            .await
            .unwrap();
        assert_eq!(stamped, "split line\n");
        let stamped = read(
            &files,
            &pod(1),
            c(|o| {
                o.tail_lines = Some(1);
                o.timestamps = true;
            }),
        )
        .await
        .unwrap();
        assert!(
            stamped.ends_with("Z split line\n") && stamped.len() == 31 + 11,
            "{stamped}"
        );
        let future = read(
            &files,
            &pod(1),
            c(|o| o.since = Some(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(60))),
        )
        .await
        .unwrap();
        assert_eq!(future, "");
    }

    #[tokio::test]
    async fn errors_have_the_upstream_words() {
        let dir = tempfile::tempdir().unwrap();
        let files = LogFiles::new(dir.path());
        let err = |o: LogOptions, restarts| files.stream(&pod(restarts), &o).err().unwrap();
        assert_eq!(
            err(LogOptions::default(), 0),
            "a container name must be specified for pod p, choose one of: [c d]"
        );
        assert_eq!(
            err(
                LogOptions {
                    container: Some("x".into()),
                    ..Default::default()
                },
                0
            ),
            "container x is not valid for pod p"
        );
        assert_eq!(
            err(
                LogOptions {
                    container: Some("c".into()),
                    previous: true,
                    ..Default::default()
                },
                0
            ),
            "previous terminated container \"c\" in pod \"p\" not found"
        );
        assert_eq!(
            err(
                LogOptions {
                    container: Some("d".into()),
                    ..Default::default()
                },
                0
            ),
            "container \"d\" in pod \"p\" is waiting to start: CreateContainerConfigError"
        );
    }
}
