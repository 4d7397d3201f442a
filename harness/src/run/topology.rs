//! A fixture, built over netlink into fresh namespaces. Dropping the
//! [`Topology`] ends every namespace thread and so every namespace.

use anyhow::{anyhow, bail, Context, Result};
use indexmap::IndexMap;

use crate::case::object::{LinkKind, LinkSpec, Offloads, RulesetKind};
use crate::case::spec::{FixtureFile, Step};
use crate::evidence::topo::{IfView, NsView, TopoView};
use crate::sys::cmd;
use crate::sys::ethtool;
use crate::sys::firewall;
use crate::sys::link;
use crate::sys::netns::Netns;
use crate::sys::rtnl;
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
        for l in &f.links {
            t.link_add(l.get_ref())?;
        }
        for a in &f.addresses {
            let a = a.get_ref().clone();
            t.ns(&a.ns)?.run(move |ctx| rtnl::addr::add(ctx, &a.dev, a.address, a.nodad))??;
        }
        for n in &f.neighbours {
            let n = n.get_ref().clone();
            t.ns(&n.ns)?.run(move |ctx| rtnl::neigh::add(ctx, &n))??;
        }
        for x in &f.fdb {
            let x = x.get_ref().clone();
            t.ns(&x.ns)?.run(move |ctx| rtnl::fdb::add(ctx, &x))??;
        }
        for r in &f.routes {
            let r = r.obj();
            t.ns(&r.ns)?.run(move |ctx| rtnl::route::add(ctx, &r))??;
        }
        for r in &f.rules {
            let r = r.get_ref().clone();
            t.ns(&r.ns)?.run(move |ctx| rtnl::rule::add(ctx, &r))??;
        }
        t.wait_active(f, std::time::Duration::from_secs(3))?;
        for fw in &f.firewall {
            let ns = t.ns(fw.ns.get_ref())?;
            // iptables-restore first, then the iptables lines, then nft.
            let (restore, nft): (Vec<_>, Vec<_>) =
                fw.rulesets.iter().partition(|r| matches!(r.kind, RulesetKind::IptablesRestore { .. }));
            for r in restore {
                firewall::load(ns, r).with_context(|| format!("fixture firewall in {}", fw.ns.get_ref()))?;
            }
            for rule in &fw.iptables {
                let mut c = ns.command("iptables");
                // Quotes were checked at load; an unclosed one cannot get here.
                c.args(shlex::split(rule).unwrap_or_default());
                cmd::run_ok(c, cmd::DEFAULT_DEADLINE)
                    .with_context(|| format!("fixture firewall in {}", fw.ns.get_ref()))?;
            }
            for r in nft {
                firewall::load(ns, r).with_context(|| format!("fixture firewall in {}", fw.ns.get_ref()))?;
            }
        }
        Ok(t)
    }

    /// Waits until every veth end, and every bridge with a port, is
    /// operationally up: a link that comes up transmits through `noop_qdisc`
    /// until the kernel's linkwatch work sees its carrier (operstate UP,
    /// then `dev_activate`), and that work is rate-limited (up to a second
    /// with many links changing at once, as with topologies built side by
    /// side). A frame sent before then is dropped as `QDISC_DROP`
    /// (`noop_enqueue`): a first ARP lost, a probe's first second gone.
    /// After `limit`, goes on (the evidence will show the drop).
    fn wait_active(&self, f: &FixtureFile, limit: std::time::Duration) -> Result<()> {
        let mut links: Vec<(String, String)> = Vec::new();
        for v in &f.veths {
            for end in [&v.a, &v.b] {
                links.push((end.ns.get_ref().clone(), end.name.clone()));
            }
        }
        for b in &f.bridges {
            if f.veths
                .iter()
                .flat_map(|v| [&v.a, &v.b])
                .any(|e| e.master.as_ref().is_some_and(|m| m.get_ref() == &b.name))
            {
                links.push((b.ns.get_ref().clone(), b.name.clone()));
            }
        }
        let until = std::time::Instant::now() + limit;
        for (ns, dev) in links {
            loop {
                let d = dev.clone();
                let up = self.ns(&ns)?.run(move |ctx| link::oper_up(ctx, &d))??;
                if up || std::time::Instant::now() >= until {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        Ok(())
    }

    /// `ip link add`, then offloads as the link says (off unless told), on
    /// both ends of a veth.
    fn link_add(&self, l: &LinkSpec) -> Result<()> {
        let peer_fd = match (&l.peer_ns, l.kind) {
            (Some(p), LinkKind::Veth) => Some(self.ns(p)?.raw_fd()),
            _ => None,
        };
        let netns_fd = match &l.netns {
            Some(n) => Some(self.ns(n)?.raw_fd()),
            None => None,
        };
        let home = l.home();
        let mut spec = l.clone();
        if netns_fd.is_some() {
            // As the CNI macvlan/ipvlan plugins do: made under a temporary
            // name straight in the other namespace, then renamed there, so
            // the name may be one the lower device's namespace has too
            // (eth0): the kernel checks a new link's name in the namespace
            // that creates it as well.
            spec.name = format!("nrtmp{}", std::process::id() % 100_000);
        }
        let tmp = spec.name.clone();
        self.ns(&l.ns)?.run(move |ctx| rtnl::link::add(ctx, &spec, peer_fd, netns_fd))??;
        if tmp != l.name {
            let to = l.name.clone();
            self.ns(home)?.run(move |ctx| rtnl::link::rename(ctx, &tmp, &to))??;
        }
        let spec = l.clone();
        self.ns(home)?.run(move |ctx| rtnl::link::attach(ctx, &spec))??;
        let features = match (l.kind, &l.offloads) {
            (LinkKind::Bridge, None) => None,
            (_, o) => Offloads::settings(o.as_ref()),
        };
        let mut ends = vec![(home.to_string(), l.name.clone())];
        if let (LinkKind::Veth, Some(p)) = (l.kind, &l.peer) {
            ends.push((l.peer_ns.clone().unwrap_or(l.ns.clone()), p.clone()));
        }
        for (ns, dev) in ends.into_iter().filter(|_| features.is_some()) {
            let fs = features.clone().unwrap_or_default();
            self.ns(&ns)?.run(move |_| ethtool::set_features(&dev, &fs))??;
        }
        // A veth peer comes up with its end.
        if let (LinkKind::Veth, Some(p)) = (l.kind, &l.peer) {
            if l.up != Some(false) {
                let p = p.clone();
                self.ns(l.peer_ns.as_deref().unwrap_or(&l.ns))?.run(move |ctx| link::set_up_by_name(ctx, &p))??;
            }
        }
        for a in &l.addresses {
            let (dev, a) = (l.name.clone(), *a);
            self.ns(home)?.run(move |ctx| rtnl::addr::add(ctx, &dev, a, a.addr.is_ipv6()))??;
        }
        if l.up != Some(false) {
            let dev = l.name.clone();
            self.ns(home)?.run(move |ctx| link::set_up_by_name(ctx, &dev))??;
        }
        Ok(())
    }

    /// Waits (at most 3 s) until no address is tentative in any namespace:
    /// an IPv6 address cannot be bound or used as a source before its
    /// duplicate address detection ends, and the kernel ends it from a
    /// workqueue after the link comes up even where DAD is off. An address
    /// whose real DAD takes longer is left to the case.
    pub fn settle(&self) -> Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        loop {
            let mut pending = 0;
            for ns in self.namespaces.values() {
                pending += ns.run(|ctx| rtnl::addr::tentative(ctx))??.len();
            }
            if pending == 0 || std::time::Instant::now() > deadline {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// The links of every namespace as they are now, for the evidence;
    /// `veths` are the pairs the loader knows, kept where both ends exist.
    pub fn view(&self, veths: &[(String, String)]) -> Result<TopoView> {
        let mut namespaces = Vec::new();
        let mut labels = std::collections::BTreeSet::new();
        for (name, ns) in &self.namespaces {
            let links = ns.run(|ctx| rtnl::link::list(ctx))??;
            let ifaces = links
                .into_iter()
                .filter(|l| l.name != "lo")
                .map(|l| {
                    labels.insert(format!("{name}/{}", l.name));
                    IfView {
                        name: l.name,
                        kind: l.kind.unwrap_or_default(),
                        addresses: l.addresses,
                        master: l.master,
                        mac: l.mac,
                        up: Some(l.up),
                    }
                })
                .collect();
            namespaces.push(NsView { name: name.clone(), ifaces });
        }
        let veths = veths.iter().filter(|(a, b)| labels.contains(a) && labels.contains(b)).cloned().collect();
        Ok(TopoView { namespaces, veths })
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
                // Contained (every process the step starts ends with it), and
                // the case's namespaces by name under /run/netns, so a
                // customer's `ip netns exec container …` pastes in unchanged.
                let names = crate::sys::mountns::Names::new(&self.names())?;
                let out = crate::sys::contain::sh_named(
                    self.ns(ns)?,
                    run,
                    crate::sys::contain::step_deadline(),
                    Some(names),
                )?;
                if out.status != 0 {
                    // The command is the step's own line: say only what it did.
                    let mut said = format!("exited {}", out.status);
                    for (name, text) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
                        if !text.trim().is_empty() {
                            said += &format!("; {name}: {}", text.trim());
                        }
                    }
                    bail!(said);
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
            Step::Tbf { ns, dev, handle, rate, burst, latency_ms } => {
                let (dev, h, r, b, l) = (dev.clone(), handle.0, rate.bytes_per_s, burst.bytes, *latency_ms);
                self.ns(ns)?.run(move |ctx| tc::add_tbf(ctx, &dev, h, r, b, l))??;
                Ok(String::new())
            }
            Step::Ingress { ns, dev } => {
                let dev = dev.clone();
                self.ns(ns)?.run(move |ctx| tc::add_ingress(ctx, &dev))??;
                Ok(String::new())
            }
            Step::Redirect { ns, dev, to } => {
                let (dev, to) = (dev.clone(), to.clone());
                self.ns(ns)?.run(move |ctx| tc::add_redirect(ctx, &dev, &to))??;
                Ok(String::new())
            }
            Step::LinkAdd(l) => self.link_add(l).map(|_| String::new()),
            Step::LinkSet(l) => {
                let fd = l.netns.as_deref().map(|n| self.ns(n).map(|n| n.raw_fd())).transpose()?;
                let s = l.clone();
                self.ns(&l.ns)?.run(move |ctx| rtnl::link::set(ctx, &s, fd))??;
                if let Some(o) = &l.offloads {
                    let (dev, fs) = (l.dev.clone(), Offloads::settings(Some(o)));
                    if let Some(fs) = fs {
                        self.ns(l.netns.as_deref().unwrap_or(&l.ns))?
                            .run(move |_| ethtool::set_features(&dev, &fs))??;
                    }
                }
                Ok(String::new())
            }
            Step::LinkDel { ns, dev } => {
                let dev = dev.clone();
                self.ns(ns)?.run(move |ctx| rtnl::link::del(ctx, &dev))??;
                Ok(String::new())
            }
            Step::AddrAdd(a) => {
                let a = a.clone();
                self.ns(&a.ns)?.run(move |ctx| rtnl::addr::add(ctx, &a.dev, a.address, a.nodad))??;
                Ok(String::new())
            }
            Step::AddrDel(a) => {
                let a = a.clone();
                self.ns(&a.ns)?.run(move |ctx| rtnl::addr::del(ctx, &a.dev, a.address))??;
                Ok(String::new())
            }
            Step::NeighAdd(n) => {
                let n = n.clone();
                self.ns(&n.ns)?.run(move |ctx| rtnl::neigh::add(ctx, &n))??;
                Ok(String::new())
            }
            Step::NeighDel(n) => {
                let n = n.clone();
                self.ns(&n.ns)?.run(move |ctx| rtnl::neigh::del(ctx, &n))??;
                Ok(String::new())
            }
            Step::FdbAdd(x) => {
                let x = x.clone();
                self.ns(&x.ns)?.run(move |ctx| rtnl::fdb::add(ctx, &x))??;
                Ok(String::new())
            }
            Step::FdbDel(x) => {
                let x = x.clone();
                self.ns(&x.ns)?.run(move |ctx| rtnl::fdb::del(ctx, &x))??;
                Ok(String::new())
            }
            Step::RuleAdd(r) => {
                let r = r.clone();
                self.ns(&r.ns)?.run(move |ctx| rtnl::rule::add(ctx, &r))??;
                Ok(String::new())
            }
            Step::RuleDel(r) => {
                let r = r.clone();
                self.ns(&r.ns)?.run(move |ctx| rtnl::rule::del(ctx, &r))??;
                Ok(String::new())
            }
            Step::RouteAdd(r) => {
                let r = r.clone();
                self.ns(&r.ns)?.run(move |ctx| rtnl::route::add(ctx, &r))??;
                Ok(String::new())
            }
            Step::RouteDel(r) => {
                let r = r.clone();
                self.ns(&r.ns)?.run(move |ctx| rtnl::route::del(ctx, &r))??;
                Ok(String::new())
            }
            Step::Nft { ns, .. } | Step::IptablesRestore { ns, .. } => {
                let r = step.ruleset().ok_or_else(|| anyhow!("`{step}`: no ruleset"))?;
                firewall::load(self.ns(ns)?, &r)
            }
        }
    }
}
