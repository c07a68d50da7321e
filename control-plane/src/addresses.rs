//! The address ranges of the platform: pod IPs (per node), Service ClusterIPs, node ports. All are
//! loopback, so one machine's processes can listen on every address without touching the network.

use std::net::Ipv4Addr;

/// Where Services' ClusterIPs come from: loopback, so the node agent's proxy can listen on them.
pub const SERVICE_NETWORK: Ipv4Range = Ipv4Range {
    base: Ipv4Addr::new(127, 101, 0, 0),
    prefix: 16,
};
/// kube-apiserver's default `--service-node-port-range`.
pub const NODE_PORTS: std::ops::RangeInclusive<i64> = 30000..=32767;

/// An IPv4 range, `base/prefix`.
#[derive(Clone, Copy, Debug)]
pub struct Ipv4Range {
    pub base: Ipv4Addr,
    pub prefix: u8,
}

impl Ipv4Range {
    /// The range holding `ip` with `prefix` bits (clamped to 8..=30).
    pub fn new(ip: Ipv4Addr, prefix: u8) -> Ipv4Range {
        let prefix = prefix.clamp(8, 30);
        let mask = !((1u32 << (32 - u32::from(prefix))) - 1);
        Ipv4Range {
            base: Ipv4Addr::from(u32::from(ip) & mask),
            prefix,
        }
    }

    fn size(&self) -> u32 {
        1u32 << (32 - u32::from(self.prefix))
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & !(self.size() - 1) == u32::from(self.base)
    }

    /// A random address of the range that `free` accepts, the network's first two and last left out;
    /// `None` when every one is taken.
    pub fn allocate(&self, free: impl Fn(Ipv4Addr) -> bool) -> Option<Ipv4Addr> {
        let usable = self.size() - 3;
        let start = rand::random_range(0..usable);
        (0..usable)
            .map(|n| Ipv4Addr::from(u32::from(self.base) + 2 + (start + n) % usable))
            .find(|ip| free(*ip))
    }
}

impl std::fmt::Display for Ipv4Range {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_stays_in_range_and_skips_taken_addresses() {
        let range = Ipv4Range::new(Ipv4Addr::new(127, 5, 6, 7), 30);
        assert_eq!(range.base, Ipv4Addr::new(127, 5, 6, 4));
        // A /30 has one usable address here: .6 (.4 network, .5 first host, .7 broadcast).
        assert_eq!(range.allocate(|_| true), Some(Ipv4Addr::new(127, 5, 6, 6)));
        assert_eq!(range.allocate(|ip| ip != Ipv4Addr::new(127, 5, 6, 6)), None);
        assert!(SERVICE_NETWORK.contains(Ipv4Addr::new(127, 101, 3, 4)));
        assert!(!SERVICE_NETWORK.contains(Ipv4Addr::new(127, 100, 3, 4)));
        assert_eq!(SERVICE_NETWORK.to_string(), "127.101.0.0/16");
    }
}
