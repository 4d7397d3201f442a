//! Sysctls by their dotted name. Under `/proc/sys/net` the kernel resolves the
//! namespace of the *calling thread*, so these run on a namespace's thread.

use anyhow::{Context, Result};

use crate::case::syntax::path_of;

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

/// The kernel module whose loading makes a sysctl appear, and its
/// configuration symbol: by the key's prefix, longest first.
const MODULES: &[(&str, &str, &str)] = &[
    ("net.ipv4.vs.", "ip_vs", "CONFIG_IP_VS"),
    ("net.bridge.", "br_netfilter", "CONFIG_BRIDGE_NETFILTER"),
    ("net.netfilter.nf_conntrack_", "nf_conntrack", "CONFIG_NF_CONNTRACK"),
    ("net.netfilter.nf_log", "nf_log_syslog", "CONFIG_NF_LOG_SYSLOG"),
    ("net.netfilter.nf_flowtable_", "nf_flow_table", "CONFIG_NF_FLOW_TABLE"),
    ("net.netfilter.nf_hooks_lwtunnel", "nf_conntrack", "CONFIG_NF_CONNTRACK"),
    ("net.netfilter.", "nf_conntrack", "CONFIG_NF_CONNTRACK"),
    ("net.nf_conntrack_max", "nf_conntrack", "CONFIG_NF_CONNTRACK"),
    ("net.ipv6.", "ipv6", "CONFIG_IPV6"),
    ("net.mptcp.", "mptcp (built in only)", "CONFIG_MPTCP"),
    ("net.sctp.", "sctp", "CONFIG_IP_SCTP"),
    ("net.tipc.", "tipc", "CONFIG_TIPC"),
    ("net.rds.", "rds", "CONFIG_RDS"),
    ("net.can.", "can", "CONFIG_CAN"),
    ("net.x25.", "x25", "CONFIG_X25"),
    ("net.unix.", "unix", "CONFIG_UNIX"),
    ("net.core.xfrm_", "xfrm (built in only)", "CONFIG_XFRM"),
    ("net.ipv4.xfrm4_", "xfrm (built in only)", "CONFIG_XFRM"),
    ("net.ipv4.tcp_mtu_probe_floor", "(built in)", "CONFIG_INET"),
];

/// The module (and configuration symbol) behind a sysctl, where known.
pub fn module_for(key: &str) -> Option<(&'static str, &'static str)> {
    MODULES.iter().filter(|(p, _, _)| key.starts_with(p)).max_by_key(|(p, _, _)| p.len()).map(|(_, m, c)| (*m, *c))
}

/// Whether this kernel loads modules at all (`/proc/modules`).
pub fn loads_modules() -> bool {
    std::path::Path::new("/proc/modules").exists()
}

/// What brings a missing sysctl, in a few words: the module and how to
/// load it (or, on a kernel without loadable modules, the option to build
/// with), or that no module is known for it.
pub fn module_hint(key: &str) -> String {
    let Some((module, config)) = module_for(key) else {
        return "no module known to bring it".into();
    };
    let how = if module.contains("built in") {
        format!("a kernel built with {config}")
    } else if loads_modules() {
        format!("`modprobe {module}`")
    } else {
        format!("this kernel loads no modules (no /proc/modules): one built with {config}")
    };
    let caveat = if module == "br_netfilter" {
        "; note that loading it makes every bridge on the host pass through iptables"
    } else {
        ""
    };
    format!("module {module} ({config}) brings it: {how}{caveat}")
}

fn missing_hint(key: &str, p: &std::path::Path) -> String {
    match module_for(key) {
        Some(_) => format!(
            "reading {key} ({}): the sysctl appears only once its module is loaded: {}",
            p.display(),
            module_hint(key)
        ),
        None => format!("reading {key} ({})", p.display()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sysctls_module_comes_from_its_prefix() {
        assert_eq!(module_for("net.ipv4.vs.conn_reuse_mode"), Some(("ip_vs", "CONFIG_IP_VS")));
        assert_eq!(module_for("net.bridge.bridge-nf-call-iptables"), Some(("br_netfilter", "CONFIG_BRIDGE_NETFILTER")));
        assert_eq!(module_for("net.netfilter.nf_conntrack_max"), Some(("nf_conntrack", "CONFIG_NF_CONNTRACK")));
        assert_eq!(module_for("net.netfilter.nf_log.2"), Some(("nf_log_syslog", "CONFIG_NF_LOG_SYSLOG")));
        assert_eq!(module_for("net.ipv4.ip_forward"), None);
        assert!(module_hint("net.ipv4.vs.conn_reuse_mode").starts_with("module ip_vs (CONFIG_IP_VS) brings it: "));
        assert_eq!(module_hint("net.ipv4.no_such"), "no module known to bring it");
    }
}
