//! What the node agent tells the API about the machine it runs on: capacity, addresses and system
//! info, read from procfs and friends. Anything unreadable is left out rather than guessed.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::NodeSystemInfo;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

/// The Kubernetes version the agent reports as its kubelet's (the API server reports 1.32 too).
pub const KUBELET_VERSION: &str = "v1.32.0";
/// Pods per node, kubelet's default `maxPods`.
pub const DEFAULT_MAX_PODS: u32 = 110;

/// The machine, as far as the Node object describes it.
#[derive(Clone, Debug)]
pub struct Host {
    pub hostname: String,
    pub cpus: usize,
    /// Bytes of memory (`MemTotal`).
    pub memory: Option<u64>,
    pub info: NodeSystemInfo,
}

impl Host {
    pub fn read() -> Self {
        let text = |path: &str| std::fs::read_to_string(path).ok().map(|s| s.trim().to_string());
        let hostname = hostname();
        let os_image = text("/etc/os-release")
            .and_then(|release| {
                release.lines().find_map(|l| {
                    l.strip_prefix("PRETTY_NAME=")
                        .map(|v| v.trim_matches('"').to_string())
                })
            })
            .unwrap_or_else(|| "Linux".into());
        let info = NodeSystemInfo {
            architecture: go_arch().into(),
            boot_id: text("/proc/sys/kernel/random/boot_id").unwrap_or_default(),
            container_runtime_version: format!("glasshouse://{}", env!("CARGO_PKG_VERSION")),
            kernel_version: text("/proc/sys/kernel/osrelease").unwrap_or_default(),
            kube_proxy_version: String::new(),
            kubelet_version: KUBELET_VERSION.into(),
            machine_id: text("/etc/machine-id").unwrap_or_default(),
            operating_system: "linux".into(),
            os_image,
            system_uuid: text("/sys/class/dmi/id/product_uuid").unwrap_or_default(),
            swap: None,
        };
        Host {
            hostname,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory: text("/proc/meminfo").and_then(|m| mem_total(&m)),
            info,
        }
    }

    /// Capacity (and, with nothing reserved yet, allocatable) as the kubelet reports it.
    pub fn capacity(&self, max_pods: u32) -> BTreeMap<String, Quantity> {
        let mut capacity = BTreeMap::from([
            ("cpu".to_string(), Quantity(self.cpus.to_string())),
            ("pods".to_string(), Quantity(max_pods.to_string())),
        ]);
        if let Some(memory) = self.memory {
            capacity.insert("memory".into(), Quantity(format!("{}Ki", memory / 1024)));
        }
        capacity
    }
}

/// The machine's host name (`localhost` when it cannot be read).
pub fn hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|path| {
            std::fs::read_to_string(path)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "localhost".into())
}

/// `MemTotal` from `/proc/meminfo`, in bytes.
fn mem_total(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The architecture in Go's names, which Kubernetes uses (`kubernetes.io/arch`).
pub fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_comes_from_meminfo_in_kibibytes() {
        let meminfo = "MemTotal:       24576000 kB\nMemFree:         1000 kB\n";
        assert_eq!(mem_total(meminfo), Some(24_576_000 * 1024));
        assert_eq!(mem_total("nothing"), None);
    }

    #[test]
    fn this_host_reports_what_a_node_needs() {
        let host = Host::read();
        assert!(host.cpus >= 1 && !host.hostname.is_empty());
        let capacity = host.capacity(DEFAULT_MAX_PODS);
        assert_eq!(capacity["pods"].0, "110");
        assert!(capacity["memory"].0.ends_with("Ki"));
        assert_eq!(host.info.operating_system, "linux");
    }
}
