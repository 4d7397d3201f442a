//! Sysctls by their dotted name. Under `/proc/sys/net` the kernel resolves the
//! namespace of the *calling thread*, so these run on a namespace's thread.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

pub fn path_of(key: &str) -> Result<PathBuf> {
    if key.is_empty() || key.contains("..") || key.starts_with(['.', '/']) {
        bail!("bad sysctl name {key:?}");
    }
    // Interface names may contain dots; accept "a/b/c" as the unambiguous form.
    let rel = if key.contains('/') { key.to_string() } else { key.replace('.', "/") };
    Ok(PathBuf::from("/proc/sys").join(rel))
}

pub fn read(key: &str) -> Result<String> {
    let p = path_of(key)?;
    let v = std::fs::read_to_string(&p).with_context(|| missing_hint(key, &p))?;
    Ok(v.trim().to_string())
}

pub fn write(key: &str, value: &str) -> Result<()> {
    let p = path_of(key)?;
    std::fs::write(&p, value).with_context(|| format!("writing {value:?} to {key} ({})", p.display()))?;
    Ok(())
}

/// What loads the module behind a sysctl, where we know it.
pub fn module_hint(key: &str) -> &'static str {
    if key.starts_with("net.bridge.") {
        ": it appears with the br_netfilter module (`modprobe br_netfilter`; note that loading it makes every bridge on the host pass through iptables)"
    } else if key.starts_with("net.netfilter.") {
        ": it appears with nf_conntrack (any conntrack or NAT rule loads it)"
    } else {
        ""
    }
}

fn missing_hint(key: &str, p: &std::path::Path) -> String {
    if key.starts_with("net.netfilter.") || key.starts_with("net.bridge.") {
        format!(
            "reading {key} ({}): the sysctl appears only once its module is loaded (nf_conntrack, br_netfilter)",
            p.display()
        )
    } else {
        format!("reading {key} ({})", p.display())
    }
}

/// Settings that are global, not per namespace: one value for every
/// namespace, the host's included ([`crate::globals`] changes them).
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
}
