//! Per-container cgroups: where a container's processes are accounted and limited. Version 1 (a hierarchy
//! per controller: `memory`, `cpu`, `pids`) and version 2 (the unified hierarchy) are both handled; the
//! layout mirrors the kubelet's cgroupfs driver, `glasshouse/pod<uid>/<container id>`. Where the host
//! refuses (no cgroupfs, not root, read-only), containers run without limits and the agent says so in a
//! node condition and an event.
//!
//! Limits: `limits.memory` → `memory.limit_in_bytes` (v1, swap included where accounted) or `memory.max`
//! with no swap (v2); `limits.cpu` → a CFS quota per 100 ms period; `requests.cpu` → shares or weight;
//! a pids limit per container.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

/// The CFS period the quota is expressed in (the kubelet's default `cpuCFSQuotaPeriod`).
const CFS_PERIOD_US: i128 = 100_000;
/// The directory under each hierarchy that holds Glasshouse's pods.
const ROOT: &str = "glasshouse";

/// The host's cgroup support, found once at start.
#[derive(Clone, Debug)]
pub enum Cgroups {
    V1 {
        mount: PathBuf,
    },
    V2 {
        mount: PathBuf,
    },
    /// Containers run without cgroups; the reason is for the node condition.
    Unavailable {
        reason: String,
    },
}

/// What one container is limited to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub memory_bytes: Option<i128>,
    pub cpu_millis: Option<i128>,
    pub cpu_request_millis: Option<i128>,
    pub pids: Option<i64>,
}

/// A container's cgroups once made: the directories its process joins and where OOM kills are counted.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerCgroups {
    pub dirs: Vec<PathBuf>,
    /// v1 `memory.oom_control` or v2 `memory.events`: both have an `oom_kill N` line.
    pub oom_file: Option<PathBuf>,
}

/// cpuacct for CPU accounting (the collector reads `cpuacct.usage`); with cpu it is often one hierarchy.
impl ContainerCgroups {
    /// Makes the child of `command` join these cgroups before it runs its program (the container's
    /// process, or a probe's command run as the container).
    pub fn join_before_exec(&self, command: &mut std::process::Command) -> Result<(), String> {
        let mut procs: Vec<std::os::fd::OwnedFd> = Vec::new();
        for cgroup in &self.dirs {
            let file = fs::OpenOptions::new()
                .write(true)
                .open(cgroup.join("cgroup.procs"))
                .map_err(|e| format!("joining the cgroup {}: {e}", cgroup.display()))?;
            procs.push(file.into());
        }
        super::sys::join_cgroups_before_exec(command, procs);
        Ok(())
    }
}

const V1_CONTROLLERS: [&str; 4] = ["memory", "cpu", "cpuacct", "pids"];

impl Cgroups {
    /// Finds the host's cgroup version under `mount` (normally `/sys/fs/cgroup`) and checks that a
    /// directory can be made there.
    pub fn detect(mount: &Path) -> Cgroups {
        let unavailable = |reason: String| Cgroups::Unavailable { reason };
        let found = if mount.join("cgroup.controllers").exists() {
            Cgroups::V2 {
                mount: mount.to_path_buf(),
            }
        } else if V1_CONTROLLERS.iter().all(|c| mount.join(c).is_dir()) {
            Cgroups::V1 {
                mount: mount.to_path_buf(),
            }
        } else {
            return unavailable(format!(
                "no cgroup v2 hierarchy nor cgroup v1 memory, cpu, cpuacct and pids hierarchies under {}",
                mount.display()
            ));
        };
        for dir in found.hierarchies(Path::new(ROOT)) {
            if let Err(e) = fs::create_dir_all(&dir) {
                return unavailable(format!("cannot create {}: {e}", dir.display()));
            }
        }
        if let Cgroups::V2 { mount } = &found {
            // Controllers must be enabled on the way down for the leaves to have their files.
            if let Err(e) = enable_v2_controllers(mount, &mount.join(ROOT)) {
                return unavailable(format!("cannot enable the cgroup v2 controllers: {e}"));
            }
        }
        found
    }

    pub fn available(&self) -> bool {
        !matches!(self, Cgroups::Unavailable { .. })
    }

    /// The directories of `relative` in every hierarchy used.
    fn hierarchies(&self, relative: &Path) -> Vec<PathBuf> {
        match self {
            Cgroups::V1 { mount } => V1_CONTROLLERS
                .iter()
                .map(|c| mount.join(c).join(relative))
                .collect(),
            Cgroups::V2 { mount } => vec![mount.join(relative)],
            Cgroups::Unavailable { .. } => Vec::new(),
        }
    }

    fn pod_relative(pod_uid: &str) -> PathBuf {
        Path::new(ROOT).join(format!("pod{pod_uid}"))
    }

    /// Makes a container's cgroups and writes its limits.
    pub fn create(&self, pod_uid: &str, container_id: &str, limits: &Limits) -> io::Result<ContainerCgroups> {
        let relative = Self::pod_relative(pod_uid).join(container_id);
        let dirs = self.hierarchies(&relative);
        for dir in &dirs {
            fs::create_dir_all(dir)?;
        }
        match self {
            Cgroups::V1 { mount } => {
                let at = |controller: &str, file: &str| mount.join(controller).join(&relative).join(file);
                if let Some(bytes) = limits.memory_bytes {
                    fs::write(at("memory", "memory.limit_in_bytes"), bytes.to_string())?;
                    // With swap accounted, the same ceiling for memory and swap: an OOM kill, not swapping.
                    let memsw = at("memory", "memory.memsw.limit_in_bytes");
                    if memsw.exists() {
                        fs::write(memsw, bytes.to_string())?;
                    }
                }
                if let Some(millis) = limits.cpu_millis {
                    fs::write(at("cpu", "cpu.cfs_period_us"), CFS_PERIOD_US.to_string())?;
                    fs::write(at("cpu", "cpu.cfs_quota_us"), cfs_quota(millis).to_string())?;
                }
                if let Some(millis) = limits.cpu_request_millis {
                    fs::write(at("cpu", "cpu.shares"), cpu_shares(millis).to_string())?;
                }
                if let Some(pids) = limits.pids {
                    fs::write(at("pids", "pids.max"), pids.to_string())?;
                }
                Ok(ContainerCgroups {
                    dirs,
                    oom_file: Some(at("memory", "memory.oom_control")),
                })
            }
            Cgroups::V2 { mount } => {
                let pod = mount.join(Self::pod_relative(pod_uid));
                enable_v2_controllers(mount, &pod)?;
                let dir = mount.join(&relative);
                if let Some(bytes) = limits.memory_bytes {
                    fs::write(dir.join("memory.max"), bytes.to_string())?;
                    let swap = dir.join("memory.swap.max");
                    if swap.exists() {
                        fs::write(swap, "0")?;
                    }
                }
                if let Some(millis) = limits.cpu_millis {
                    fs::write(
                        dir.join("cpu.max"),
                        format!("{} {CFS_PERIOD_US}", cfs_quota(millis)),
                    )?;
                }
                if let Some(millis) = limits.cpu_request_millis {
                    // The kubelet's shares → weight conversion.
                    let shares = cpu_shares(millis);
                    let weight = 1 + ((shares - 2) * 9999) / 262_142;
                    fs::write(dir.join("cpu.weight"), weight.to_string())?;
                }
                if let Some(pids) = limits.pids {
                    fs::write(dir.join("pids.max"), pids.to_string())?;
                }
                Ok(ContainerCgroups {
                    oom_file: Some(dir.join("memory.events")),
                    dirs,
                })
            }
            Cgroups::Unavailable { .. } => Ok(ContainerCgroups::default()),
        }
    }

    /// Removes a container's cgroups (they must be empty); a cgroup that is gone is not an error.
    pub fn remove_container(&self, pod_uid: &str, container_id: &str) {
        for dir in self.hierarchies(&Self::pod_relative(pod_uid).join(container_id)) {
            remove_dir(&dir);
        }
    }

    /// Removes what is left of a pod's cgroups.
    pub fn remove_pod(&self, pod_uid: &str) {
        for dir in self.hierarchies(&Self::pod_relative(pod_uid)) {
            if let Ok(entries) = fs::read_dir(&dir) {
                for entry in entries.flatten() {
                    if entry.path().is_dir() {
                        remove_dir(&entry.path());
                    }
                }
            }
            remove_dir(&dir);
        }
    }
}

fn remove_dir(dir: &Path) {
    match fs::remove_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            tracing::debug!(cgroup = %dir.display(), error = %e, "removing a cgroup failed")
        }
        _ => {}
    }
}

/// The CFS quota of a CPU limit: the kubelet's `milliCPUToQuota`, at least 1 ms per period.
fn cfs_quota(millis: i128) -> i128 {
    (millis * CFS_PERIOD_US / 1000).max(1000)
}

/// The kubelet's `MilliCPUToShares`: 1024 per CPU, at least 2.
fn cpu_shares(millis: i128) -> i128 {
    (millis * 1024 / 1000).clamp(2, 262_144)
}

/// Enables the memory, cpu and pids controllers in `subtree_control` from the mount down to `dir`
/// included, so `dir`'s children have them.
fn enable_v2_controllers(mount: &Path, dir: &Path) -> io::Result<()> {
    let relative = dir.strip_prefix(mount).unwrap_or(dir);
    let mut levels = vec![mount.to_path_buf()];
    for part in relative.components() {
        let next = levels[levels.len() - 1].join(part);
        levels.push(next);
    }
    for level in levels {
        fs::create_dir_all(&level)?;
        let control = level.join("cgroup.subtree_control");
        let have = fs::read_to_string(&control).unwrap_or_default();
        for controller in ["memory", "cpu", "pids"] {
            if !have.split_whitespace().any(|c| c == controller) {
                fs::write(&control, format!("+{controller}"))?;
            }
        }
    }
    Ok(())
}

/// The `oom_kill` count in a v1 `memory.oom_control` or v2 `memory.events` file.
pub fn oom_kills(file: &Path) -> u64 {
    fs::read_to_string(file)
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok()))
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quota_and_shares_follow_the_kubelet() {
        assert_eq!(cfs_quota(500), 50_000);
        assert_eq!(cfs_quota(1), 1000);
        assert_eq!(cpu_shares(250), 256);
        assert_eq!(cpu_shares(0), 2);
    }

    #[test]
    fn a_fake_v1_hierarchy_gets_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        for c in V1_CONTROLLERS {
            fs::create_dir_all(dir.path().join(c)).unwrap();
        }
        let cgroups = Cgroups::detect(dir.path());
        assert!(matches!(cgroups, Cgroups::V1 { .. }), "{cgroups:?}");
        let limits = Limits {
            memory_bytes: Some(50 << 20),
            cpu_millis: Some(250),
            cpu_request_millis: None,
            pids: Some(100),
        };
        let made = cgroups.create("u1", "c1", &limits).unwrap();
        assert_eq!(made.dirs.len(), 4);
        assert!(
            dir.path().join("cpuacct/glasshouse/podu1/c1").is_dir(),
            "for CPU accounting"
        );
        let read = |p: &str| fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(
            read("memory/glasshouse/podu1/c1/memory.limit_in_bytes"),
            (50 << 20).to_string()
        );
        assert_eq!(read("cpu/glasshouse/podu1/c1/cpu.cfs_quota_us"), "25000");
        assert_eq!(read("pids/glasshouse/podu1/c1/pids.max"), "100");
        fs::write(
            dir.path().join("memory/glasshouse/podu1/c1/memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        assert_eq!(oom_kills(made.oom_file.as_ref().unwrap()), 2);
    }

    #[test]
    fn a_fake_v2_hierarchy_gets_the_limits_and_controllers() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.controllers"), "cpu memory pids").unwrap();
        let cgroups = Cgroups::detect(dir.path());
        assert!(matches!(cgroups, Cgroups::V2 { .. }), "{cgroups:?}");
        let limits = Limits {
            memory_bytes: Some(64 << 20),
            cpu_millis: Some(1500),
            cpu_request_millis: Some(1000),
            pids: Some(50),
        };
        let made = cgroups.create("u2", "c2", &limits).unwrap();
        let read = |p: &str| fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(read("glasshouse/podu2/c2/memory.max"), (64 << 20).to_string());
        assert_eq!(read("glasshouse/podu2/c2/cpu.max"), "150000 100000");
        assert_eq!(read("glasshouse/podu2/c2/cpu.weight"), "39");
        assert_eq!(read("glasshouse/podu2/c2/pids.max"), "50");
        // Every level on the way down delegates the controllers (a real cgroupfs keeps them all; this
        // fake file keeps the last write).
        assert!(read("glasshouse/podu2/cgroup.subtree_control").starts_with('+'));
        assert_eq!(
            made.oom_file.unwrap(),
            dir.path().join("glasshouse/podu2/c2/memory.events")
        );
    }

    #[test]
    fn no_hierarchy_means_unavailable_with_a_reason() {
        let dir = tempfile::tempdir().unwrap();
        match Cgroups::detect(dir.path()) {
            Cgroups::Unavailable { reason } => assert!(reason.contains("no cgroup"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
}
