//! `glasshouse shim DIR`: the process that owns one container run, as containerd-shim and conmon do. The
//! agent starts it; it leaves the agent's session, starts the container's program in a process group of
//! its own (inside the container's cgroups), writes its stdout and stderr as CRI log records, and when
//! the program ends kills what is left of the group, records how it ended in `exit.json` and goes. It
//! does not depend on the agent: the container keeps running while the agent is down.
//!
//! Plain threads, no async runtime: a shim per container must stay small.

use std::io::{self, BufRead, BufReader, Read};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use super::cgroups::oom_kills;
use super::crilog::{Stream, Writer};
use super::runtime::{ExitRecord, ShimSpec, StartRecord, proc_start_ticks, socket_name, write_json_atomic};
use super::sys;

/// How long the log readers may drain after the program ended (a descendant that escaped the group and
/// the cgroups could hold the pipes open forever).
const DRAIN: Duration = Duration::from_secs(2);

/// Runs the shim for the attempt directory `dir`; what goes wrong is recorded in `dir`.
pub fn main(dir: &Path) -> ExitCode {
    let spec: ShimSpec = match std::fs::read(dir.join("spec.json"))
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
    {
        Ok(spec) => spec,
        Err(e) => {
            let _ = write_json_atomic(
                &dir.join("exit.json"),
                &ExitRecord::start_error(format!("reading the container spec: {e}")),
            );
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = sys::new_session() {
        eprintln!("shim: setsid: {e}");
    }

    // The socket is the shim's lock too: a second shim for the same container cannot bind it.
    let listener = match std::os::unix::net::SocketAddr::from_abstract_name(socket_name(&spec.id))
        .and_then(|addr| std::os::unix::net::UnixListener::bind_addr(&addr))
    {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("shim: another shim holds container {}: {e}", spec.id);
            return ExitCode::FAILURE;
        }
    };
    // An agent that gave up waiting for this shim recorded an exit: the container must not start now.
    if dir.join("exit.json").exists() {
        return ExitCode::FAILURE;
    }
    let exit = run(dir, &spec, listener);
    match write_json_atomic(&dir.join("exit.json"), &exit) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shim: recording the exit: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(dir: &Path, spec: &ShimSpec, listener: std::os::unix::net::UnixListener) -> ExitRecord {
    let log = match Writer::open(&spec.log_path, spec.rotation) {
        Ok(log) => Arc::new(Mutex::new(log)),
        Err(e) => {
            return ExitRecord::start_error(format!("opening the log {}: {e}", spec.log_path.display()));
        }
    };
    let Some((program, args)) = spec.argv.split_first() else {
        return ExitRecord::start_error("no command to run".into());
    };
    let mut command = Command::new(program);
    command
        .args(args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if let Some(dir) = &spec.working_dir {
        command.current_dir(dir);
    }
    if let Err(message) = spec.cgroups.join_before_exec(&mut command) {
        return ExitRecord::start_error(message);
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return ExitRecord::start_error(start_error_message(program, spec.working_dir.as_deref(), &e));
        }
    };
    let pid = child.id();
    let started_at = jiff::Timestamp::now();
    let start = StartRecord {
        pid,
        started_at,
        start_ticks: proc_start_ticks(pid),
    };
    if let Err(e) = write_json_atomic(&dir.join("state.json"), &start) {
        eprintln!("shim: recording the start: {e}");
    }

    let (drained, drains) = mpsc::channel();
    let mut readers = 0;
    if let Some(out) = child.stdout.take() {
        spawn_reader(out, Stream::Stdout, log.clone(), drained.clone());
        readers += 1;
    }
    if let Some(err) = child.stderr.take() {
        spawn_reader(err, Stream::Stderr, log.clone(), drained.clone());
        readers += 1;
    }
    std::thread::spawn(move || serve_signals(listener, pid));

    let status = loop {
        match child.wait() {
            Ok(status) => break Some(status),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                eprintln!("shim: waiting for the container: {e}");
                break None;
            }
        }
    };
    // The program's end is the container's end: nothing it left behind may run on.
    let _ = sys::signal_group(pid, libc::SIGKILL);
    kill_cgroup_members(&spec.cgroups.dirs);
    for _ in 0..readers {
        if drains.recv_timeout(DRAIN).is_err() {
            break;
        }
    }
    let finished_at = jiff::Timestamp::now();
    let oom = spec.cgroups.oom_file.as_deref().is_some_and(|f| oom_kills(f) > 0);
    let (exit_code, signal) = match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => (code, None),
            (None, Some(signal)) => (128 + signal, Some(signal)),
            (None, None) => (255, None),
        },
        None => (255, None),
    };
    let reason = if oom && (signal == Some(libc::SIGKILL) || exit_code == 137) {
        "OOMKilled"
    } else if exit_code == 0 {
        "Completed"
    } else {
        "Error"
    };
    ExitRecord {
        exit_code,
        signal,
        reason: reason.into(),
        message: None,
        started_at: Some(started_at),
        finished_at,
    }
}

/// The runtime's words for a program that could not start (runc's `exec: "x": executable file not found
/// in $PATH`).
fn start_error_message(program: &str, working_dir: Option<&Path>, error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::NotFound if working_dir.is_some_and(|d| !d.is_dir()) => format!(
            "failed to start container: chdir to cwd (\"{}\") set in config.json failed: no such file or directory",
            working_dir.map(|d| d.display().to_string()).unwrap_or_default()
        ),
        io::ErrorKind::NotFound if !program.contains('/') => {
            format!("failed to start container: exec: \"{program}\": executable file not found in $PATH")
        }
        io::ErrorKind::NotFound => {
            format!(
                "failed to start container: exec: \"{program}\": stat {program}: no such file or directory"
            )
        }
        io::ErrorKind::PermissionDenied => {
            format!("failed to start container: exec: \"{program}\": permission denied")
        }
        _ => format!("failed to start container: exec: \"{program}\": {error}"),
    }
}

/// Copies one output stream into the log, line by line, until every writer of the pipe is gone.
fn spawn_reader(
    pipe: impl Read + Send + 'static,
    stream: Stream,
    log: Arc<Mutex<Writer>>,
    done: mpsc::Sender<()>,
) {
    std::thread::spawn(move || {
        let mut reader = BufReader::with_capacity(64 * 1024, pipe);
        let mut line = Vec::with_capacity(1024);
        loop {
            line.clear();
            // Read at most a record's worth at a time, so an endless line still reaches the log.
            let read = (&mut reader)
                .take(super::crilog::MAX_LINE as u64)
                .read_until(b'\n', &mut line);
            match read {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let complete = line.last() == Some(&b'\n');
                    if complete {
                        line.pop();
                    }
                    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
                    if let Err(e) = log.line(stream, &line, complete) {
                        eprintln!("shim: writing the log: {e}");
                    }
                }
            }
        }
        let _ = done.send(());
    });
}

/// Answers the agent's connections: each stays open until the shim ends; `T` and `K` on it signal the
/// container's process group.
fn serve_signals(listener: std::os::unix::net::UnixListener, pgid: u32) {
    for stream in listener.incoming() {
        let Ok(mut stream) = stream else { continue };
        if !sys::peer_is_trusted(&stream) {
            continue;
        }
        std::thread::spawn(move || {
            let mut byte = [0u8; 1];
            while let Ok(1) = stream.read(&mut byte) {
                let signal = match byte[0] {
                    b'T' => libc::SIGTERM,
                    b'K' => libc::SIGKILL,
                    _ => continue,
                };
                let _ = sys::signal_group(pgid, signal);
            }
        });
    }
}

/// Kills every process still in the container's cgroups (those that left its process group), again and
/// again while some remain (one could fork during a pass), for up to a second.
fn kill_cgroup_members(dirs: &[std::path::PathBuf]) {
    for _ in 0..100 {
        let mut found = false;
        for dir in dirs {
            let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) else {
                continue;
            };
            for pid in procs.lines().filter_map(|l| l.trim().parse::<u32>().ok()) {
                found = true;
                let _ = sys::signal_process(pid, libc::SIGKILL);
            }
        }
        if !found {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
