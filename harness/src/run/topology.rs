//! A fixture, built over netlink into fresh namespaces. Dropping the
//! [`Topology`] ends every namespace thread and so every namespace.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::{anyhow, Context, Result};
use indexmap::IndexMap;

use crate::case::spec::{limits, FixtureFile, Step};
use crate::sys::cmd;
use crate::sys::link;
use crate::sys::netns::Netns;
use crate::sys::sysctl;
use crate::sys::tc;

pub struct Topology {
    pub namespaces: IndexMap<String, Netns>,
}

impl Topology {
    /// Every namespace's fixture name and fd, for literal commands that
    /// name them (`ip netns exec container …`).
    pub fn names(&self) -> Vec<(String, std::os::fd::RawFd)> {
        self.namespaces.iter().map(|(n, ns)| (n.clone(), ns.raw_fd())).collect()
    }

    pub fn ns(&self, name: &str) -> Result<&Netns> {
        self.namespaces.get(name).ok_or_else(|| anyhow!("no namespace {name:?} in this topology"))
    }

    /// Creates the namespaces and everything the fixture declares in them.
    pub fn build(f: &FixtureFile, tag: &str) -> Result<Topology> {
        let names: Vec<String> = f.namespaces.iter().map(|n| format!("{}@{tag}", n.name.get_ref())).collect();
        let mut namespaces = IndexMap::new();
        for (n, ns) in f.namespaces.iter().zip(Netns::new_many(&names)?) {
            let sysctls: Vec<(String, String)> = n.sysctls.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
            ns.run(move |_| sysctls.iter().try_for_each(|(k, v)| sysctl::write(k, v)))??;
            namespaces.insert(n.name.get_ref().clone(), ns);
        }
        let t = Topology { namespaces };
        for b in &f.bridges {
            let (name, q, mtu, addrs) = (b.name.clone(), b.tx_queue_len, b.mtu, b.addresses.clone());
            t.ns(b.ns.get_ref())?.run(move |ctx| -> Result<()> {
                link::add_bridge(ctx, &name, q)?;
                if let Some(m) = mtu {
                    link::set_mtu(ctx, &name, m)?;
                }
                for a in &addrs {
                    link::add_address(ctx, &name, a.addr, a.prefix)?;
                }
                link::set_up_by_name(ctx, &name)
            })??;
        }
        for v in &f.veths {
            let peer_fd = t.ns(v.b.ns.get_ref())?.raw_fd();
            let (a, b) = (v.a.name.clone(), v.b.name.clone());
            t.ns(v.a.ns.get_ref())?.run(move |ctx| link::add_veth(ctx, &a, &b, peer_fd))??;
            // One end after the other: bringing both ends of a veth up at
            // the same moment from two namespaces can leave the pair without
            // carrier (each end's open sees its peer still down; seen on
            // 6.18 under load as a topology that passes no packet).
            for end in [&v.a, &v.b] {
                let e = end.clone();
                t.ns(end.ns.get_ref())?.run(move |ctx| -> Result<()> {
                    let name = &e.name;
                    if let Some(m) = &e.master {
                        link::set_master(ctx, name, m.get_ref())?;
                    }
                    if let Some(m) = e.mtu {
                        link::set_mtu(ctx, name, m)?;
                    }
                    if let Some(q) = e.tx_queue_len {
                        link::set_tx_queue_len(ctx, name, q)?;
                    }
                    crate::sys::ethtool::offloads_off(name)?;
                    for a in &e.addresses {
                        link::add_address(ctx, name, a.addr, a.prefix)?;
                    }
                    link::set_up_by_name(ctx, name)
                })??;
            }
        }
        for r in &f.routes {
            let dst = match *r.to.get_ref() {
                crate::case::spec::RouteDst::Default => None,
                crate::case::spec::RouteDst::Net(c) => match c.addr {
                    IpAddr::V4(a) => Some((a, c.prefix)),
                    IpAddr::V6(_) => return Err(anyhow!("IPv6 routes are not supported")),
                },
            };
            let (via, dev): (Option<Ipv4Addr>, Option<String>) = (r.via, r.dev.clone());
            t.ns(r.ns.get_ref())?.run(move |ctx| link::add_route(ctx, dst, via, dev.as_deref()))??;
        }
        for fw in &f.firewall {
            let ns = t.ns(fw.ns.get_ref())?;
            for rule in &fw.iptables {
                let mut c = ns.command("iptables");
                c.args(rule.split_whitespace());
                cmd::run_ok(c, cmd::DEFAULT_DEADLINE)
                    .with_context(|| format!("fixture firewall in {}", fw.ns.get_ref()))?;
            }
        }
        Ok(t)
    }

    /// Applies one step; returns what it printed, for the evidence.
    pub fn apply(&self, step: &Step) -> Result<String> {
        match step {
            Step::Sysctl { ns, key, value } => {
                let (k, v) = (key.clone(), value.to_string());
                self.ns(ns)?.run(move |_| sysctl::write(&k, &v))??;
                Ok(String::new())
            }
            Step::GlobalSysctl { .. } => {
                Err(anyhow!("`{step}`: global settings are the runner's (crate::safety::globals)"))
            }
            Step::Sh { ns, run } => {
                let mut c = self.ns(ns)?.command("sh");
                c.arg("-c").arg(run);
                crate::sys::mountns::name_namespaces(&mut c, &self.names())?;
                let out = cmd::run(c, std::time::Duration::from_millis(limits::SH_STEP_MS)).map_err(|e| {
                    anyhow!(
                        "{}",
                        e.to_string()
                            .split(" still running")
                            .nth(1)
                            .map_or_else(|| e.to_string(), |r| format!("still running{r}"))
                    )
                })?;
                if out.status != 0 {
                    // The command is the step's own line: say only what it did.
                    let mut said = format!("exited {}", out.status);
                    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                        if !text.trim().is_empty() {
                            said += &format!("; {name}: {}", text.trim());
                        }
                    }
                    return Err(anyhow!(said));
                }
                Ok(format!("{}{}", out.stdout, out.stderr).trim().to_string())
            }
            Step::Htb { ns, dev, handle, default, direct_qlen } => {
                let (handle, defcls) = (handle.0, default.map_or(0, |d| d.0));
                let (dev, q) = (dev.clone(), *direct_qlen);
                self.ns(ns)?.run(move |ctx| tc::add_htb(ctx, &dev, handle, defcls, q))??;
                Ok(String::new())
            }
            Step::HtbClass { ns, dev, parent, classid, rate } => {
                let (p, c, r) = (parent.0, classid.0, rate.bytes_per_s);
                let dev = dev.clone();
                self.ns(ns)?.run(move |ctx| tc::add_htb_class(ctx, &dev, p, c, r))??;
                Ok(String::new())
            }
            Step::QdiscDel { ns, dev } => {
                let dev = dev.clone();
                self.ns(ns)?.run(move |ctx| tc::del_root(ctx, &dev))??;
                Ok(String::new())
            }
            Step::Link { ns, dev, tx_queue_len, mtu } => {
                let (dev, q, m) = (dev.clone(), *tx_queue_len, *mtu);
                self.ns(ns)?.run(move |ctx| -> Result<()> {
                    if let Some(q) = q {
                        link::set_tx_queue_len(ctx, &dev, q)?;
                    }
                    if let Some(m) = m {
                        link::set_mtu(ctx, &dev, m)?;
                    }
                    Ok(())
                })??;
                Ok(String::new())
            }
        }
    }
}
