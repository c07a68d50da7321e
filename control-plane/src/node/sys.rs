//! The few system calls the runtime needs that the standard library does not wrap: starting a session,
//! signalling a process group, and joining cgroups between `fork` and `exec`. Every `unsafe` of the node
//! runtime is here.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::process::Command;

/// Makes the calling process the leader of a new session (and process group), detached from the
/// terminal and from the agent's process group, so signals meant for the agent do not reach it.
#[allow(unsafe_code)]
pub fn new_session() -> io::Result<()> {
    // SAFETY: setsid takes no arguments and only changes the calling process's session.
    if unsafe { libc::setsid() } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Sends `signal` to every process of the process group `pgid`. A group that is gone is not an error.
pub fn signal_group(pgid: u32, signal: i32) -> io::Result<()> {
    kill(pgid, signal, true)
}

/// Sends `signal` to one process. A process that is gone is not an error.
pub fn signal_process(pid: u32, signal: i32) -> io::Result<()> {
    kill(pid, signal, false)
}

#[allow(unsafe_code)]
fn kill(id: u32, signal: i32, group: bool) -> io::Result<()> {
    let Ok(id) = i32::try_from(id) else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    // Never "every process" (-1) nor our own group (0), nor init.
    if id <= 1 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    let target = if group { -id } else { id };
    // SAFETY: kill(2) has no memory effects; `target` names one process or one group.
    if unsafe { libc::kill(target, signal) } < 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() == Some(libc::ESRCH) {
            return Ok(());
        }
        return Err(error);
    }
    Ok(())
}

/// Whether the process at the other end of a unix socket runs as root or as this process's user (abstract
/// sockets have no file permissions: this is their access check).
#[allow(unsafe_code)]
pub fn peer_is_trusted(stream: &std::os::unix::net::UnixStream) -> bool {
    let mut credentials = libc::ucred {
        pid: 0,
        uid: u32::MAX,
        gid: u32::MAX,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into the `ucred` it is given and sets `len`.
    let rc = unsafe {
        libc::getsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut credentials as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    rc == 0 && (credentials.uid == 0 || credentials.uid == me)
}

/// Makes the child of `command` join the cgroups whose `cgroup.procs` files are open as `procs` before it
/// runs its program, so nothing it starts ever runs outside its limits.
#[allow(unsafe_code)]
pub fn join_cgroups_before_exec(command: &mut Command, procs: Vec<OwnedFd>) {
    use std::os::unix::process::CommandExt;
    if procs.is_empty() {
        return;
    }
    let fds: Vec<i32> = procs.iter().map(AsRawFd::as_raw_fd).collect();
    // The descriptors must stay open until the spawn is over: the closure owns them.
    let procs = std::sync::Arc::new(procs);
    // SAFETY: between fork and exec only async-signal-safe calls are allowed; the closure calls write(2)
    // on descriptors opened before the fork and allocates nothing ("0" is the calling process, as the
    // cgroup v1 and v2 interfaces define it).
    unsafe {
        command.pre_exec(move || {
            let _keep = &procs;
            for fd in &fds {
                if libc::write(*fd, b"0".as_ptr().cast(), 1) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
