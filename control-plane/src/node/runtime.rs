//! The agent's side of the container runtime: what it asks a shim to run and what the shim leaves on disk.
//!
//! Each container run (an "attempt": one per restart) has a directory
//! `DIR/run/pods/<pod uid>/<container id>/` with `spec.json` (written by the agent: what to run),
//! `state.json` (written by the shim once the process started) and `exit.json` (written by the shim when it
//! ended). A live shim listens on the abstract unix socket `glasshouse-shim-<container id>`: a connection
//! to it closes when the container has ended, and the bytes `T` and `K` sent on it signal the container's
//! process group (SIGTERM, SIGKILL). The agent holds no state a restart would lose: it reads the attempts
//! back from these directories and reconnects to the shims that still run.

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;

use super::cgroups::ContainerCgroups;
use super::crilog::Rotation;

/// What the agent asks a shim to run.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ShimSpec {
    pub id: String,
    /// The container's name in its pod and whether it is an init container.
    pub name: String,
    pub init: bool,
    pub restart_count: i32,
    /// The program and its arguments.
    pub argv: Vec<String>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<PathBuf>,
    pub log_path: PathBuf,
    pub rotation: Rotation,
    pub cgroups: ContainerCgroups,
}

/// Written by the shim once the container's process runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartRecord {
    pub pid: u32,
    pub started_at: jiff::Timestamp,
    /// The process's start in clock ticks since boot: with the pid, it names the process for sure.
    pub start_ticks: Option<u64>,
}

/// How a container ended, written by the shim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExitRecord {
    pub exit_code: i32,
    pub signal: Option<i32>,
    /// `Completed`, `Error`, `OOMKilled` or `StartError`.
    pub reason: String,
    pub message: Option<String>,
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: jiff::Timestamp,
}

impl ExitRecord {
    /// The record of a container whose program could not be started.
    pub fn start_error(message: String) -> ExitRecord {
        ExitRecord {
            exit_code: 128,
            signal: None,
            reason: "StartError".into(),
            message: Some(message),
            started_at: None,
            finished_at: jiff::Timestamp::now(),
        }
    }
}

/// One attempt as found on disk.
#[derive(Clone, Debug)]
pub struct Attempt {
    pub dir: PathBuf,
    pub spec: ShimSpec,
    pub start: Option<StartRecord>,
    pub exit: Option<ExitRecord>,
}

/// The abstract socket name of a container's shim.
pub fn socket_name(id: &str) -> String {
    format!("glasshouse-shim-{id}")
}

/// Writes `value` as JSON to `path` atomically: a reader sees the old file or the whole new one, and a
/// crash right after leaves the new one.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&serde_json::to_vec(value).map_err(io::Error::other)?)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

impl Attempt {
    /// Reads an attempt's directory; `None` when it holds no valid spec.
    pub fn read(dir: &Path) -> Option<Attempt> {
        Some(Attempt {
            dir: dir.to_path_buf(),
            spec: read_json(&dir.join("spec.json"))?,
            start: read_json(&dir.join("state.json")),
            exit: read_json(&dir.join("exit.json")),
        })
    }

    /// Every attempt of a pod, oldest first per container.
    pub fn read_pod(pod_dir: &Path) -> Vec<Attempt> {
        let mut attempts: Vec<Attempt> = std::fs::read_dir(pod_dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_dir())
            .filter_map(|e| Attempt::read(&e.path()))
            .collect();
        attempts
            .sort_by(|a, b| (&a.spec.name, a.spec.restart_count).cmp(&(&b.spec.name, b.spec.restart_count)));
        attempts
    }
}

/// Starts a shim for `spec` in `dir` (created here) and returns once the shim listens, holding a
/// connection to it. `shim` is the glasshouse binary.
pub async fn start(shim: &Path, dir: &Path, spec: &ShimSpec) -> io::Result<Connection> {
    std::fs::create_dir_all(dir)?;
    write_json_atomic(&dir.join("spec.json"), spec)?;
    // The shim's own complaints (it has no one to tell) go to a file beside its records.
    let complaints = std::fs::File::create(dir.join("shim.log"))?;
    let mut child = tokio::process::Command::new(shim)
        .arg("shim")
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(complaints)
        .spawn()?;
    // The shim binds its socket before it starts the container: wait for either.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let result = loop {
        match Connection::open(&spec.id) {
            Ok(connection) => break Ok(connection),
            Err(_) if dir.join("exit.json").exists() => break Ok(Connection::ended()),
            Err(e) if tokio::time::Instant::now() >= deadline => {
                // Given up: the shim must not start the container later, unseen. It checks for an exit
                // record after binding; it is written first, then the shim is killed.
                let message = format!("the container's shim did not come up within 10 s: {e}");
                write_json_atomic(&dir.join("exit.json"), &ExitRecord::start_error(message.clone()))?;
                let _ = child.start_kill();
                break Err(io::Error::other(message));
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(5)).await,
        }
    };
    // The shim is our child until it ends: reap it so it leaves no zombie.
    tokio::spawn(async move {
        let _ = child.wait().await;
    });
    result
}

/// A connection to a running shim: it ends when the container does, and carries signals to it.
pub struct Connection {
    halves: Option<(tokio::net::unix::OwnedReadHalf, OwnedWriteHalf)>,
}

impl Connection {
    /// Connects to the shim of container `id`; fails when no shim of that container runs.
    pub fn open(id: &str) -> io::Result<Connection> {
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(socket_name(id))?;
        let stream = std::os::unix::net::UnixStream::connect_addr(&addr)?;
        stream.set_nonblocking(true)?;
        let stream = UnixStream::from_std(stream)?;
        Ok(Connection {
            halves: Some(stream.into_split()),
        })
    }

    /// A connection to a shim that has already ended.
    pub fn ended() -> Connection {
        Connection { halves: None }
    }

    /// Splits into the part that waits for the end and the part that sends signals.
    pub fn split(self) -> (ExitWatch, Signaller) {
        match self.halves {
            Some((read, write)) => (ExitWatch { read: Some(read) }, Signaller { write: Some(write) }),
            None => (ExitWatch { read: None }, Signaller { write: None }),
        }
    }
}

/// Resolves when the shim's connection closes (the container ended and the shim recorded it).
pub struct ExitWatch {
    read: Option<tokio::net::unix::OwnedReadHalf>,
}

impl ExitWatch {
    pub async fn ended(self) {
        if let Some(mut read) = self.read {
            let mut buf = [0u8; 16];
            while let Ok(n) = read.read(&mut buf).await {
                if n == 0 {
                    break;
                }
            }
        }
    }
}

/// Signals a container's process group through its shim.
pub struct Signaller {
    write: Option<OwnedWriteHalf>,
}

/// The signals the agent sends.
#[derive(Clone, Copy, Debug)]
pub enum Signal {
    Term,
    Kill,
}

impl Signaller {
    pub async fn send(&mut self, signal: Signal) {
        let byte = match signal {
            Signal::Term => b'T',
            Signal::Kill => b'K',
        };
        if let Some(write) = &mut self.write {
            // A shim that is gone has nothing left to signal.
            let _ = write.write_all(&[byte]).await;
        }
    }
}

/// What an attempt's directory says once its shim is gone. A shim that died without recording (killed
/// by hand, a host crash) leaves the container's end unknown: it is reported as an error, and whatever
/// of its process group is left is killed so it cannot run unseen.
pub fn exit_after_shim(dir: &Path) -> ExitRecord {
    if let Some(exit) = read_json::<ExitRecord>(&dir.join("exit.json")) {
        return exit;
    }
    let start: Option<StartRecord> = read_json(&dir.join("state.json"));
    if let Some(start) = &start
        && process_start_matches(start)
    {
        let _ = super::sys::signal_group(start.pid, libc::SIGKILL);
    }
    let exit = ExitRecord {
        exit_code: 137,
        signal: Some(libc::SIGKILL),
        reason: "Error".into(),
        message: Some("the container's shim ended without recording the container's exit".into()),
        started_at: start.map(|s| s.started_at),
        finished_at: jiff::Timestamp::now(),
    };
    let _ = write_json_atomic(&dir.join("exit.json"), &exit);
    exit
}

/// Whether the process recorded in `start` still exists (and is not a zombie). Pids are reused, so the
/// process's start time (in clock ticks since boot) must match the record too.
fn process_start_matches(start: &StartRecord) -> bool {
    start.start_ticks.is_some() && proc_start_ticks(start.pid) == start.start_ticks
}

/// A live process's start time in clock ticks since boot (`/proc/PID/stat` field 22); `None` for a
/// process that is gone or a zombie.
pub fn proc_start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z" | &"X") | None) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Kills every container that runs from the records under `run_dir` (`DIR/run/pods`) and removes their
/// cgroups: `glasshouse stop-containers`, for a clean slate. Returns how many containers were running.
pub fn stop_all(run_dir: &Path) -> usize {
    use std::io::{Read, Write};
    let mut stopped = 0;
    for pod in std::fs::read_dir(run_dir).into_iter().flatten().flatten() {
        for attempt in Attempt::read_pod(&pod.path()) {
            if attempt.exit.is_none()
                && let Ok(addr) =
                    std::os::unix::net::SocketAddr::from_abstract_name(socket_name(&attempt.spec.id))
                && let Ok(mut stream) = std::os::unix::net::UnixStream::connect_addr(&addr)
            {
                stopped += 1;
                let _ = stream.write_all(b"K");
                let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(5)));
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest);
            }
            for dir in &attempt.spec.cgroups.dirs {
                let _ = std::fs::remove_dir(dir);
                if let Some(pod_cgroup) = dir.parent() {
                    let _ = std::fs::remove_dir(pod_cgroup);
                }
            }
        }
    }
    stopped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_read_back_in_order() {
        let dir = tempfile::tempdir().unwrap();
        for (id, name, n) in [("b", "web", 1), ("a", "web", 0), ("c", "side", 0)] {
            let sub = dir.path().join(id);
            std::fs::create_dir_all(&sub).unwrap();
            let spec = ShimSpec {
                id: id.into(),
                name: name.into(),
                init: false,
                restart_count: n,
                argv: vec!["true".into()],
                env: vec![],
                working_dir: None,
                log_path: dir.path().join("log"),
                rotation: Rotation::default(),
                cgroups: ContainerCgroups::default(),
            };
            write_json_atomic(&sub.join("spec.json"), &spec).unwrap();
        }
        std::fs::create_dir_all(dir.path().join("junk")).unwrap();
        let attempts = Attempt::read_pod(dir.path());
        let order: Vec<_> = attempts
            .iter()
            .map(|a| (a.spec.name.as_str(), a.spec.restart_count))
            .collect();
        assert_eq!(order, [("side", 0), ("web", 0), ("web", 1)]);
    }

    #[test]
    fn a_shim_that_vanished_is_an_error_exit() {
        let dir = tempfile::tempdir().unwrap();
        let exit = exit_after_shim(dir.path());
        assert_eq!((exit.exit_code, exit.reason.as_str()), (137, "Error"));
        // Recorded, so a second look agrees.
        assert_eq!(exit_after_shim(dir.path()), exit);
    }
}
