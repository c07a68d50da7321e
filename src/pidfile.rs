//! `DIR/glasshouse.pid`: which process runs the platform on a data dir, so `stop-containers` can refuse
//! while an agent would restart what it stops.

use std::path::{Path, PathBuf};

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("glasshouse.pid")
}

/// Records this process as the one running on `data_dir`.
pub fn write(data_dir: &Path) -> std::io::Result<()> {
    std::fs::write(path(data_dir), format!("{}\n", std::process::id()))
}

/// Forgets the record (on a clean shutdown).
pub fn remove(data_dir: &Path) {
    let _ = std::fs::remove_file(path(data_dir));
}

/// The pid of a live glasshouse process recorded for `data_dir`, if any (a record left by a killed
/// process, or a pid since reused by another program, does not count).
pub fn running(data_dir: &Path) -> Option<u32> {
    let pid: u32 = std::fs::read_to_string(path(data_dir))
        .ok()?
        .trim()
        .parse()
        .ok()?;
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let cmdline = String::from_utf8_lossy(&cmdline);
    let mut args = cmdline.split('\0');
    let program = args.next()?;
    (program.ends_with("glasshouse") && args.next().is_some_and(|mode| mode == "up" || mode == "server"))
        .then_some(pid)
}
