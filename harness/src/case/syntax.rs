//! The notations a case borrows from the tools it replaces, parsed once here:
//! tc(8) handles and rates, sysctl(8) keys (and which are global), and the
//! `ns (backend)` source of iptables counters. Pure.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use netlink_packet_route::tc::TcHandle;

/// `tc`'s handle notation: `1:`, `1:10`, `root`. Numbers are hex, as in tc.
pub fn parse_handle(s: &str) -> Result<TcHandle> {
    if s == "root" {
        return Ok(TcHandle::ROOT);
    }
    let (maj, min) =
        s.split_once(':').ok_or_else(|| anyhow!("handle {s:?}: write major:[minor] in hex, e.g. 1: or 1:10"))?;
    let hex = |x: &str| -> Result<u16> {
        if x.is_empty() {
            Ok(0)
        } else {
            u16::from_str_radix(x, 16).map_err(|_| anyhow!("handle {s:?}: {x:?} is not hex"))
        }
    };
    Ok(TcHandle { major: hex(maj)?, minor: hex(min)? })
}

pub fn handle_text(h: TcHandle) -> String {
    if h == TcHandle::ROOT {
        "root".into()
    } else if h.minor == 0 {
        format!("{:x}:", h.major)
    } else {
        format!("{:x}:{:x}", h.major, h.minor)
    }
}

/// A rate as tc writes it (`1gbit`, `100mbit`, `800kbit`, `5000bit`,
/// `10mbps` = bytes) in bytes per second.
pub fn parse_rate(s: &str) -> Result<u64> {
    let s = s.trim().to_ascii_lowercase();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| anyhow!("rate {s:?}: no number"))?;
    let bits = match unit {
        "bit" | "" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        u => bail!("rate {s:?}: unknown unit {u:?} (bit, kbit, mbit, gbit, bps, kbps, mbps, gbps)"),
    };
    let bytes = (n * bits / 8.0).round() as u64;
    if bytes == 0 {
        bail!("rate {s:?} is zero");
    }
    Ok(bytes)
}

/// A sysctl key as sysctl(8) writes it (`net.ipv4.ip_forward`, or with
/// slashes where an interface name has dots) → its `/proc/sys` path.
pub fn path_of(key: &str) -> Result<PathBuf> {
    if key.is_empty() || key.contains("..") || key.starts_with(['.', '/']) {
        bail!("bad sysctl name {key:?}");
    }
    // Interface names may contain dots; accept "a/b/c" as the unambiguous form.
    let rel = if key.contains('/') { key.to_string() } else { key.replace('.', "/") };
    Ok(PathBuf::from("/proc/sys").join(rel))
}

/// Settings that are global, not per namespace: one value for every
/// namespace, the host's included ([`crate::safety::globals`] changes them).
pub const GLOBAL: &[&str] = &[
    "net.netfilter.nf_conntrack_max",
    "net.nf_conntrack_max",
    "net.core.netdev_max_backlog",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.core.optmem_max",
    "net.ipv4.tcp_mem",
    "net.ipv4.udp_mem",
    "net.ipv4.neigh.default.gc_thresh1",
    "net.ipv4.neigh.default.gc_thresh2",
    "net.ipv4.neigh.default.gc_thresh3",
    "net.ipv6.neigh.default.gc_thresh1",
    "net.ipv6.neigh.default.gc_thresh2",
    "net.ipv6.neigh.default.gc_thresh3",
];

pub fn is_global(key: &str) -> bool {
    GLOBAL.contains(&key.replace('/', ".").as_str())
}

/// Splits a counter source, `host` or `host (legacy)` / `host (nft)`, into
/// the namespace and the iptables backend to read (None: whatever
/// `iptables-save` is on this system).
pub fn split_source(source: &str) -> Result<(&str, Option<&str>)> {
    let s = source.trim();
    match s.split_once('(') {
        None => Ok((s, None)),
        Some((ns, rest)) => match rest.trim().strip_suffix(')').map(str::trim) {
            Some(b @ ("legacy" | "nft")) => Ok((ns.trim(), Some(b))),
            _ => bail!("{source:?}: write \"namespace\", \"namespace (legacy)\" or \"namespace (nft)\""),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_map_to_proc_paths() {
        assert_eq!(
            path_of("net.ipv4.conf.eno1.forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eno1/forwarding")
        );
        assert_eq!(
            path_of("net/ipv4/conf/eth0.100/forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
        );
        assert!(path_of("net..x").is_err());
        assert!(path_of("").is_err());
    }

    #[test]
    fn global_settings_are_recognised() {
        assert!(is_global("net.netfilter.nf_conntrack_max"));
        assert!(is_global("net.ipv4.neigh.default.gc_thresh3"));
        assert!(!is_global("net.ipv4.conf.all.forwarding"));
        assert!(!is_global("net.netfilter.nf_conntrack_tcp_be_liberal"));
    }

    #[test]
    fn sources_name_a_backend() {
        assert_eq!(split_source("host").unwrap(), ("host", None));
        assert_eq!(split_source(" host (legacy) ").unwrap(), ("host", Some("legacy")));
        assert_eq!(split_source("host (nft)").unwrap(), ("host", Some("nft")));
        assert!(split_source("host (ebtables)").is_err());
    }
}
