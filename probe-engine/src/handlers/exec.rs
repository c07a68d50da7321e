//! `exec`: the command runs (no shell) in the container's environment; exit 0 is healthy, another exit
//! code a failure with the command's output (stdout, then stderr, 10 KiB at most), the timeout a failure
//! `command "<cmd>" timed out` (K `pkg/probe/exec/exec.go`, `spec/probes.md` §2.4). A command that
//! cannot start is an error.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::{Attempted, MAX_OUTPUT, Outcome};

/// Runs `command` (prepared by the caller: program, arguments, environment, working directory, its
/// own process group) for at most `timeout`; on the timeout, `kill` is given the process id (to stop
/// the whole group) before the child itself is killed.
pub async fn run(
    mut command: tokio::process::Command,
    words: &[String],
    timeout: Duration,
    kill: &(dyn Fn(u32) + Send + Sync),
) -> Attempted {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("starting {:?}: {e}", words.join(" ")))?;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let outputs = async { tokio::join!(capped(stdout), capped(stderr)) };
    let finished = async {
        let (out, err) = outputs.await;
        let status = child.wait().await;
        (out, err, status)
    };
    match tokio::time::timeout(timeout, finished).await {
        Ok((mut out, err, status)) => {
            let status = status.map_err(|e| format!("waiting for {:?}: {e}", words.join(" ")))?;
            out.extend_from_slice(&err);
            out.truncate(MAX_OUTPUT);
            let output = String::from_utf8_lossy(&out).into_owned();
            Ok(if status.success() {
                (Outcome::Success, output)
            } else {
                (Outcome::Failure, output)
            })
        }
        Err(_) => {
            if let Some(pid) = child.id() {
                kill(pid);
            }
            let _ = child.start_kill();
            Ok((
                Outcome::Failure,
                format!("command {:?} timed out", words.join(" ")),
            ))
        }
    }
}

/// Reads a stream to its end, keeping its first 10 KiB (reading on, so the writer never blocks).
async fn capped(stream: Option<impl AsyncRead + Unpin>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut stream) = stream else {
        return kept;
    };
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        let room = MAX_OUTPUT.saturating_sub(kept.len());
        kept.extend_from_slice(&buf[..n.min(room)]);
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    fn command(words: &[&str]) -> (tokio::process::Command, Vec<String>) {
        let mut c = tokio::process::Command::new(words[0]);
        c.args(&words[1..]);
        (c, words.iter().map(|w| w.to_string()).collect())
    }

    async fn exec(words: &[&str], timeout: Duration) -> Attempted {
        let (c, w) = command(words);
        run(c, &w, timeout, &|_| {}).await
    }

    #[tokio::test]
    async fn exit_codes_output_and_timeouts() {
        let t = Duration::from_secs(5);
        assert_eq!(
            exec(&["sh", "-c", "echo out; echo err >&2"], t).await,
            Ok((Outcome::Success, "out\nerr\n".into()))
        );
        assert_eq!(
            exec(&["sh", "-c", "echo nope; exit 3"], t).await,
            Ok((Outcome::Failure, "nope\n".into()))
        );
        let (outcome, output) = exec(&["sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x"], t)
            .await
            .unwrap();
        assert_eq!((outcome, output.len()), (Outcome::Success, MAX_OUTPUT));
        let started = std::time::Instant::now();
        assert_eq!(
            exec(&["sleep", "5"], Duration::from_millis(200)).await,
            Ok((Outcome::Failure, "command \"sleep 5\" timed out".into()))
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(exec(&["/nonexistent/probe"], t).await.is_err());
    }
}
