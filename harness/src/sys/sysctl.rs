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
