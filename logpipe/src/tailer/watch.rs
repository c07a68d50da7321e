//! Wake-ups from inotify (`notify`): the tailer sleeps until a watched directory changes, so a line
//! written to a quiet file is read at once instead of at the next look. Looks at every file remain the
//! backstop, once a second: inotify drops events when its queue overflows, and watches run out
//! (`fs.inotify.max_user_watches`). Without inotify (refused, or out of watches) the tailer polls.

use std::path::{Component, Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher};

/// What the tailer waits on between looks.
pub struct Wakeup {
    events: Receiver<()>,
    /// Kept for as long as the watches should last.
    watcher: Option<RecommendedWatcher>,
}

impl Wakeup {
    /// Watches `dirs` (recursively where asked); on any failure, none (polling alone).
    pub fn start(dirs: &[(PathBuf, bool)]) -> Wakeup {
        let (tx, events) = sync_channel(1);
        let watcher = match watch(dirs, tx) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!(error = %e, "inotify is unavailable: log files are polled");
                None
            }
        };
        Wakeup { events, watcher }
    }

    /// Whether inotify is in use.
    pub fn active(&self) -> bool {
        self.watcher.is_some()
    }

    /// Returns at the first change after the call's start (one already waiting counts), or after
    /// `timeout`.
    pub fn wait(&self, timeout: Duration) {
        if let Err(std::sync::mpsc::RecvTimeoutError::Disconnected) = self.events.recv_timeout(timeout) {
            // No watcher (it failed, or stopped): nothing will come.
            std::thread::sleep(timeout);
        }
    }
}

fn watch(dirs: &[(PathBuf, bool)], tx: SyncSender<()>) -> notify::Result<RecommendedWatcher> {
    // Many events collapse into one wake-up (the channel holds one); overflow and errors wake too.
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Opening and reading files (the tailer's own reads among them) changes nothing to look at.
        if let Ok(event) = &event
            && event.kind.is_access()
        {
            return;
        }
        let _ = tx.try_send(());
    })?;
    for (dir, recursive) in dirs {
        let mode = if *recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        watcher.watch(dir, mode)?;
    }
    Ok(watcher)
}

/// The directory to watch for a glob: its longest leading part without a wildcard, and whether the
/// rest goes deeper than one level (then recursively).
pub fn glob_base(pattern: &str) -> (PathBuf, bool) {
    let wild = |s: &str| s.contains(['*', '?', '[']);
    let path = Path::new(pattern);
    let mut base = PathBuf::new();
    let mut rest = 0;
    for component in path.components() {
        let text = component.as_os_str().to_string_lossy();
        if rest > 0 || (matches!(component, Component::Normal(_)) && wild(&text)) {
            rest += 1;
        } else {
            base.push(component);
        }
    }
    // The last part names the files; what lies between the base and it is directories to descend.
    if rest == 0 {
        base.pop();
        rest = 1;
    }
    (base, rest > 1 || pattern.contains("**"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_are_watched_from_their_fixed_part() {
        assert_eq!(glob_base("/var/log/*.log"), ("/var/log".into(), false));
        assert_eq!(glob_base("/var/log/app.log"), ("/var/log".into(), false));
        assert_eq!(glob_base("/var/log/*/x.log"), ("/var/log".into(), true));
        assert_eq!(glob_base("/var/log/**/*.log"), ("/var/log".into(), true));
        assert_eq!(glob_base("/srv/a?/b.log"), ("/srv".into(), true));
    }

    #[test]
    fn a_change_wakes_and_a_missing_directory_means_polling() {
        let dir = tempfile::tempdir().unwrap();
        let wakeup = Wakeup::start(&[(dir.path().to_path_buf(), true)]);
        assert!(wakeup.active());
        let started = std::time::Instant::now();
        let file = dir.path().join("a.log");
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::fs::write(file, "x\n").unwrap();
        });
        wakeup.wait(Duration::from_secs(10));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        let none = Wakeup::start(&[(dir.path().join("missing"), false)]);
        assert!(!none.active());
        let started = std::time::Instant::now();
        none.wait(Duration::from_millis(100));
        assert!(started.elapsed() >= Duration::from_millis(100));
    }
}
