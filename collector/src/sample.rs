//! Reading resource usage: a container from its cgroups (v1 `cpuacct.usage`, `memory.usage_in_bytes`,
//! `memory.stat`, `pids.current`; v2 `cpu.stat`, `memory.current`, `memory.stat`, `pids.current`), or,
//! without cgroups, from procfs (the processes of the container's process group); the node from
//! `/proc/stat` and `/proc/meminfo`.
//!
//! The memory working set is the kubelet's: usage minus inactive file pages (cAdvisor's
//! `container_memory_working_set_bytes`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One reading of a container (or of the node).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    /// CPU time used since the start, in seconds.
    pub cpu_seconds: f64,
    pub memory_usage_bytes: u64,
    pub memory_working_set_bytes: u64,
    pub memory_rss_bytes: u64,
    pub processes: u64,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

fn number(path: &Path) -> Option<u64> {
    read(path)?.trim().parse().ok()
}

/// `key value` lines (`memory.stat`, `cpu.stat`).
fn stat(path: &Path) -> HashMap<String, u64> {
    read(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// What changes slowly and costs most to read (`memory.stat`, `pids.current`): taken again every few
/// ticks only.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Detail {
    pub inactive_file: u64,
    pub rss: u64,
    pub processes: u64,
}

/// A container's usage from its cgroup directories (those of the v1 controllers, or the one v2 one).
/// Each directory is read for its own controller's files only (cgroupfs opens are the collector's
/// cost); with `detail` known, `memory.stat` and `pids.current` are not read. Returns the detail used.
pub fn from_cgroups(dirs: &[PathBuf], detail: Option<Detail>) -> Option<(Usage, Detail)> {
    let mut fresh = Detail::default();
    let mut usage = Usage::default();
    let mut found = false;
    for dir in dirs {
        let controller = ["cpuacct", "memory", "pids", "cpu"]
            .into_iter()
            .find(|c| dir.components().any(|part| part.as_os_str() == *c));
        let v2 = controller.is_none();
        if controller == Some("cpuacct")
            && let Some(ns) = number(&dir.join("cpuacct.usage"))
        {
            usage.cpu_seconds = ns as f64 / 1e9;
            found = true;
        }
        if v2 && let Some(us) = stat(&dir.join("cpu.stat")).get("usage_usec") {
            usage.cpu_seconds = *us as f64 / 1e6;
            found = true;
        }
        let memory = match controller {
            Some("memory") => number(&dir.join("memory.usage_in_bytes")),
            None => number(&dir.join("memory.current")),
            _ => None,
        };
        if let Some(bytes) = memory {
            if detail.is_none() {
                let stat = stat(&dir.join("memory.stat"));
                fresh.inactive_file = stat
                    .get("total_inactive_file")
                    .or_else(|| stat.get("inactive_file"))
                    .copied()
                    .unwrap_or(0);
                fresh.rss = stat
                    .get("total_rss")
                    .or_else(|| stat.get("rss"))
                    .or_else(|| stat.get("anon"))
                    .copied()
                    .unwrap_or(0);
            }
            usage.memory_usage_bytes = bytes;
            found = true;
        }
        if detail.is_none()
            && (v2 || controller == Some("pids"))
            && let Some(pids) = number(&dir.join("pids.current"))
        {
            fresh.processes = pids;
        }
    }
    let detail = detail.unwrap_or(fresh);
    usage.memory_working_set_bytes = usage.memory_usage_bytes.saturating_sub(detail.inactive_file);
    usage.memory_rss_bytes = detail.rss;
    usage.processes = detail.processes;
    found.then_some((usage, detail))
}

/// Clock ticks per second of `/proc/<pid>/stat` times (`USER_HZ`, 100 on Linux).
const TICKS: f64 = 100.0;
/// Page size for `statm` (4 KiB on the machines this runs on).
const PAGE: u64 = 4096;

/// The processes of the host by process group: `(cpu seconds, rss bytes)` each.
pub fn process_groups(proc_root: &Path) -> HashMap<u32, Vec<(f64, u64)>> {
    let mut groups: HashMap<u32, Vec<(f64, u64)>> = HashMap::new();
    for entry in std::fs::read_dir(proc_root).into_iter().flatten().flatten() {
        if entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
            .is_none()
        {
            continue;
        }
        let Some(text) = read(&entry.path().join("stat")) else {
            continue;
        };
        // After the command (which may hold spaces and parentheses): state is field 0, pgrp field 2,
        // utime field 11, stime field 12, rss (pages) field 21.
        let Some(after) = text.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        let cpu = (field(11) + field(12)) as f64 / TICKS;
        groups
            .entry(field(2) as u32)
            .or_default()
            .push((cpu, field(21) * PAGE));
    }
    groups
}

/// A container's usage without cgroups: the processes of its process group (its main process leads
/// one). Children that left the group are not counted; CPU of processes that ended is lost.
pub fn from_processes(groups: &HashMap<u32, Vec<(f64, u64)>>, pgid: u32) -> Option<Usage> {
    let members = groups.get(&pgid)?;
    let rss: u64 = members.iter().map(|(_, rss)| rss).sum();
    Some(Usage {
        cpu_seconds: members.iter().map(|(cpu, _)| cpu).sum(),
        memory_usage_bytes: rss,
        memory_working_set_bytes: rss,
        memory_rss_bytes: rss,
        processes: members.len() as u64,
    })
}

/// The node: CPU time of all CPUs but idle and iowait (`/proc/stat`), memory in use (`MemTotal` −
/// `MemAvailable`).
pub fn node(proc_root: &Path) -> Option<Usage> {
    let stat = read(&proc_root.join("stat"))?;
    let cpu: Vec<u64> = stat
        .lines()
        .find(|l| l.starts_with("cpu "))?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest times are within user and nice).
    let busy: u64 = cpu
        .iter()
        .enumerate()
        .filter(|(i, _)| ![3, 4].contains(i) && *i < 8)
        .map(|(_, v)| v)
        .sum();
    let meminfo = read(&proc_root.join("meminfo"))?;
    let kib = |key: &str| {
        meminfo
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
            * 1024
    };
    let used = kib("MemTotal:").saturating_sub(kib("MemAvailable:"));
    Some(Usage {
        cpu_seconds: busy as f64 / TICKS,
        memory_usage_bytes: used,
        memory_working_set_bytes: used,
        memory_rss_bytes: 0,
        processes: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cgroup_v1_and_v2_files_give_the_same_usage() {
        let dir = tempfile::tempdir().unwrap();
        let v1: Vec<PathBuf> = ["memory", "cpuacct", "pids"]
            .iter()
            .map(|c| dir.path().join(c))
            .collect();
        for d in &v1 {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(v1[1].join("cpuacct.usage"), "2500000000\n").unwrap();
        std::fs::write(v1[0].join("memory.usage_in_bytes"), "10485760\n").unwrap();
        std::fs::write(
            v1[0].join("memory.stat"),
            "cache 1\nrss 1\ntotal_rss 6291456\ntotal_inactive_file 2097152\n",
        )
        .unwrap();
        std::fs::write(v1[2].join("pids.current"), "3\n").unwrap();
        let expected = Usage {
            cpu_seconds: 2.5,
            memory_usage_bytes: 10485760,
            memory_working_set_bytes: 8388608,
            memory_rss_bytes: 6291456,
            processes: 3,
        };
        assert_eq!(from_cgroups(&v1, None).map(|(u, _)| u), Some(expected));
        // With the detail known, memory.stat and pids.current are not read again.
        std::fs::write(v1[0].join("memory.stat"), "total_inactive_file 0\n").unwrap();
        let detail = from_cgroups(&v1, None).unwrap().1;
        assert_eq!(detail.inactive_file, 0);
        let cached = Detail {
            inactive_file: 2097152,
            rss: 6291456,
            processes: 3,
        };
        assert_eq!(from_cgroups(&v1, Some(cached)).map(|(u, _)| u), Some(expected));
        let v2 = dir.path().join("v2");
        std::fs::create_dir_all(&v2).unwrap();
        std::fs::write(v2.join("cpu.stat"), "usage_usec 2500000\nuser_usec 2000000\n").unwrap();
        std::fs::write(v2.join("memory.current"), "10485760\n").unwrap();
        std::fs::write(
            v2.join("memory.stat"),
            "anon 6291456\nfile 4194304\ninactive_file 2097152\n",
        )
        .unwrap();
        std::fs::write(v2.join("pids.current"), "3\n").unwrap();
        assert_eq!(from_cgroups(&[v2], None).map(|(u, _)| u), Some(expected));
        assert_eq!(from_cgroups(&[dir.path().join("missing")], None), None);
    }

    #[test]
    fn procfs_gives_this_process_and_the_node() {
        let groups = process_groups(Path::new("/proc"));
        let me = std::process::id();
        let pgid = groups.iter().find(|(_, _)| true).map(|(g, _)| *g).unwrap_or(me);
        assert!(from_processes(&groups, pgid).is_some_and(|u| u.processes >= 1));
        let node = node(Path::new("/proc")).unwrap();
        assert!(node.cpu_seconds > 0.0 && node.memory_working_set_bytes > 0);
    }
}
