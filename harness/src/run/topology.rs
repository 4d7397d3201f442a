//! A fixture, built over netlink into fresh namespaces. Dropping the
//! [`Topology`] ends every namespace thread and so every namespace.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use anyhow::{anyhow, Context, Result};
use indexmap::IndexMap;

use crate::case::spec::{limits, FixtureFile, RouteDst, Step, VethEnd};
use crate::sys::cmd;
use crate::sys::link::{self, LinkOpts, PeerNs, Req};
use crate::sys::netns::{Netns, NsCtx};
use crate::sys::sysctl;
use crate::sys::tc;

/// How long a built topology may take to get carrier on every link: the
/// kernel's link watch runs at once for these events, but under load it is
/// a worker thread like any other.
pub const CARRIER_WITHIN: Duration = Duration::from_secs(10);

/// The first ifindex the build gives a fixture's links in each namespace:
/// above the few a new namespace may already hold (lo is 1; fallback
/// tunnels such as `tunl0`, `sit0`, `gre0` appear in every new namespace
/// once their module is loaded).
pub const FIRST_INDEX: u32 = 100;

pub struct Topology {
    pub namespaces: IndexMap<String, Netns>,
    /// The ifindex of every link the fixture made, by (namespace, name).
    indexes: BTreeMap<(String, String), u32>,
}

/// A fixture as netlink requests: each namespace's work in each round of
/// a build, and the ifindex every link gets. Nothing here touches the
/// kernel: the harness ([`Topology::build`]) and `netrepro bench`'s floor
/// send the same requests, each its own way.
pub struct BuildPlan {
    pub work: IndexMap<String, NsWork>,
    /// The ifindex of every link the fixture makes, by (namespace, name).
    pub indexes: BTreeMap<(String, String), u32>,
}

/// What one namespace does in each round of a build.
#[derive(Default, Clone)]
pub struct NsWork {
    /// Written when the namespace is made, before any link exists.
    pub sysctls: Vec<(String, String)>,
    /// Bridges (up), their addresses: first, before the veths.
    pub bridges: Vec<LinkReq>,
    /// Veths created (down) from this side, this end's addresses.
    pub veths: Vec<LinkReq>,
    /// The peer ends born here: master and up, addresses (once every veth
    /// exists).
    pub peers: Vec<LinkReq>,
    /// The first ends up, then routes (once every peer is up); then the
    /// wait for carrier.
    pub ups: Vec<LinkReq>,
    pub routes: Vec<LinkReq>,
    /// Devices whose offloads go off (`ethtool -K`), with the veths and
    /// with the peers, each while still down.
    pub offloads: [Vec<String>; 2],
    /// Links to wait for carrier on: index → name.
    pub carrier: BTreeMap<u32, String>,
}

/// A request not yet built: a veth's peer namespace is named, and each
/// builder says how to reach it.
#[derive(Clone)]
pub enum LinkReq {
    Bridge(String, LinkOpts),
    /// This end, its options, the peer, its options, the peer's namespace.
    Veth(String, LinkOpts, String, LinkOpts, String),
    Set(String, LinkOpts),
    Addr(u32, String, IpAddr, u8),
    Route(Option<(Ipv4Addr, u8)>, Option<Ipv4Addr>, Option<(u32, String)>),
}

impl LinkReq {
    pub fn build(&self, peer_ns: &dyn Fn(&str) -> PeerNs) -> Req {
        match self {
            LinkReq::Bridge(n, o) => link::new_bridge(n, o),
            LinkReq::Veth(n, o, p, po, ns) => link::new_veth(n, o, p, po, peer_ns(ns)),
            LinkReq::Set(n, o) => link::set_link(n, o),
            LinkReq::Addr(i, d, ip, len) => link::new_address(*i, d, *ip, *len),
            LinkReq::Route(dst, via, oif) => link::new_route(*dst, *via, oif.as_ref().map(|(i, d)| (*i, d.as_str()))),
        }
    }

    /// The veth's peer namespace, if this makes a veth.
    pub fn peer_ns(&self) -> Option<&str> {
        match self {
            LinkReq::Veth(.., ns) => Some(ns),
            _ => None,
        }
    }
}

fn at<'a>(work: &'a mut IndexMap<String, NsWork>, ns: &str) -> Result<&'a mut NsWork> {
    work.get_mut(ns).ok_or_else(|| anyhow!("no namespace {ns:?} in the fixture"))
}

/// Gives every link its index and sorts the fixture into rounds. `lookup`
/// answers for a route's device the fixture does not make.
pub fn plan(f: &FixtureFile, lookup: &dyn Fn(&str, &str) -> Result<u32>) -> Result<BuildPlan> {
    let mut work: IndexMap<String, NsWork> =
        f.namespaces.iter().map(|n| (n.name.get_ref().clone(), NsWork::default())).collect();
    let mut indexes: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut next: BTreeMap<String, u32> = BTreeMap::new();
    let mut give = |ns: &str, dev: &str| {
        let n = next.entry(ns.to_string()).or_insert(FIRST_INDEX);
        indexes.insert((ns.to_string(), dev.to_string()), *n);
        *n += 1;
    };
    for b in &f.bridges {
        give(b.ns.get_ref(), &b.name);
    }
    for v in &f.veths {
        give(v.a.ns.get_ref(), &v.a.name);
        give(v.b.ns.get_ref(), &v.b.name);
    }
    let idx = |ns: &str, dev: &str| {
        indexes.get(&(ns.to_string(), dev.to_string())).copied().ok_or_else(|| anyhow!("no link {dev} in {ns}"))
    };
    for n in &f.namespaces {
        at(&mut work, n.name.get_ref())?.sysctls = n.sysctls.iter().map(|(k, v)| (k.clone(), v.to_string())).collect();
    }
    let mut ported: BTreeMap<(String, String), bool> = BTreeMap::new();
    for b in &f.bridges {
        let ns = b.ns.get_ref();
        let index = idx(ns, &b.name)?;
        let w = at(&mut work, ns)?;
        let o = LinkOpts { index, tx_queue_len: b.tx_queue_len, up: true, ..Default::default() };
        w.bridges.push(LinkReq::Bridge(b.name.clone(), o));
        if let Some(m) = b.mtu {
            w.bridges.push(LinkReq::Set(b.name.clone(), LinkOpts { index, mtu: Some(m), ..Default::default() }));
        }
        for a in &b.addresses {
            w.bridges.push(LinkReq::Addr(index, b.name.clone(), a.addr, a.prefix));
        }
        ported.insert((ns.clone(), b.name.clone()), false);
    }
    let opts = |e: &VethEnd, index: u32| -> Result<LinkOpts> {
        let master = match &e.master {
            Some(m) => Some(idx(e.ns.get_ref(), m.get_ref())?),
            None => None,
        };
        Ok(LinkOpts { index, mtu: e.mtu, tx_queue_len: e.tx_queue_len, master, up: false })
    };
    for v in &f.veths {
        let (na, nb) = (v.a.ns.get_ref(), v.b.ns.get_ref());
        let (ia, ib) = (idx(na, &v.a.name)?, idx(nb, &v.b.name)?);
        let (oa, ob) = (opts(&v.a, ia)?, opts(&v.b, ib)?);
        let wa = at(&mut work, na)?;
        wa.veths.push(LinkReq::Veth(v.a.name.clone(), oa, v.b.name.clone(), ob.clone(), nb.clone()));
        wa.veths.extend(v.a.addresses.iter().map(|a| LinkReq::Addr(ia, v.a.name.clone(), a.addr, a.prefix)));
        wa.ups.push(LinkReq::Set(v.a.name.clone(), LinkOpts { index: ia, up: true, ..Default::default() }));
        wa.offloads[0].push(v.a.name.clone());
        wa.carrier.insert(ia, v.a.name.clone());
        let wb = at(&mut work, nb)?;
        // Master and up in one message (MTU and queue length came with
        // the creation).
        wb.peers.push(LinkReq::Set(
            v.b.name.clone(),
            LinkOpts { index: ib, master: ob.master, up: true, ..Default::default() },
        ));
        wb.peers.extend(v.b.addresses.iter().map(|a| LinkReq::Addr(ib, v.b.name.clone(), a.addr, a.prefix)));
        wb.offloads[1].push(v.b.name.clone());
        wb.carrier.insert(ib, v.b.name.clone());
        for e in [&v.a, &v.b] {
            if let Some(m) = &e.master {
                ported.insert((e.ns.get_ref().clone(), m.get_ref().clone()), true);
            }
        }
    }
    // A bridge has carrier once a port has: wait only for those with one.
    for ((ns, name), has_port) in ported {
        if has_port {
            let i = idx(&ns, &name)?;
            at(&mut work, &ns)?.carrier.insert(i, name);
        }
    }
    for r in &f.routes {
        let dst = match *r.to.get_ref() {
            RouteDst::Default => None,
            RouteDst::Net(c) => match c.addr {
                IpAddr::V4(a) => Some((a, c.prefix)),
                IpAddr::V6(_) => return Err(anyhow!("IPv6 routes are not supported")),
            },
        };
        let ns = r.ns.get_ref();
        let oif = match &r.dev {
            Some(d) => Some((idx(ns, d).or_else(|_| lookup(ns, d))?, d.clone())),
            None => None,
        };
        at(&mut work, ns)?.routes.push(LinkReq::Route(dst, r.via, oif));
    }
    Ok(BuildPlan { work, indexes })
}

impl Topology {
    pub fn ns(&self, name: &str) -> Result<&Netns> {
        self.namespaces.get(name).ok_or_else(|| anyhow!("no namespace {name:?} in this topology"))
    }

    /// The ifindex the build gave `dev` in `ns`, if the fixture made it.
    pub fn index(&self, ns: &str, dev: &str) -> Option<u32> {
        self.indexes.get(&(ns.to_string(), dev.to_string())).copied()
    }

    /// Creates the namespaces and everything the fixture declares in them,
    /// and returns once a probe can use it: every link up with carrier and
    /// its qdiscs attached ([`link::wait_oper_up`]).
    ///
    /// In as few netlink round trips as the kernel allows: links are created
    /// with their ifindex, master, MTU and queue length in one message (a
    /// veth with both ends), so nothing is looked up; each namespace's
    /// requests go as one batch ([`link::batch`]); the namespaces are made
    /// (with their sysctls) and then work at the same time, in three rounds,
    /// and the fixture's `iptables` commands run beside them:
    ///
    /// 1. bridges (up) and their addresses; each veth from its first end,
    ///    both ends down, and that end's addresses and offloads;
    /// 2. the peer end: offloads, then master and up, its addresses;
    /// 3. the first end up, routes; the wait for carrier.
    ///
    /// A veth's ends go up one after the other, the peer first: the second
    /// open gives both ends carrier while both run, which the kernel's link
    /// watch handles at once (a carrier that comes while a device is down is
    /// handled up to a second later, and so would be the build).
    pub fn build(f: &FixtureFile, tag: &str) -> Result<Topology> {
        let names: Vec<String> = f.namespaces.iter().map(|n| format!("{}@{tag}", n.name.get_ref())).collect();
        let mut namespaces = IndexMap::new();
        // Each namespace's sysctls are written as it is made, before any
        // link of any namespace exists.
        let spec = names
            .iter()
            .zip(&f.namespaces)
            .map(|(name, n)| (name.clone(), n.sysctls.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()))
            .collect();
        for (n, ns) in f.namespaces.iter().zip(Netns::new_many_with(spec)?) {
            namespaces.insert(n.name.get_ref().clone(), ns);
        }
        let plan = plan(f, &|ns, dev| match namespaces.get(ns) {
            Some(n) => lookup(n, dev),
            None => Err(anyhow!("no namespace {ns:?}")),
        })?;
        let t = Topology { namespaces, indexes: plan.indexes };
        let tids: BTreeMap<String, u32> = t.namespaces.iter().map(|(n, ns)| (n.clone(), ns.tid())).collect();
        std::thread::scope(|s| {
            // The fixture's iptables (the incident's own command lines) need
            // no link: they run while the links are made.
            let fw = s.spawn(|| t.firewall(f));
            let built = t.rounds(&plan.work, tids);
            let fw = fw.join().unwrap_or_else(|_| Err(anyhow!("the fixture's firewall thread panicked")));
            built.and(fw)
        })?;
        Ok(t)
    }

    /// The build's rounds, each in every namespace at once.
    fn rounds(&self, work: &IndexMap<String, NsWork>, tids: BTreeMap<String, u32>) -> Result<()> {
        let tids = std::sync::Arc::new(tids);
        let reqs = move |l: &[LinkReq]| -> Vec<Req> {
            let peer = |ns: &str| PeerNs::Thread(tids.get(ns).copied().unwrap_or(0));
            l.iter().map(|r| r.build(&peer)).collect()
        };
        let r = reqs.clone();
        self.each(work, move |w, ctx| {
            link::batch(ctx, r(&[&w.bridges[..], &w.veths[..]].concat()))?;
            w.offloads[0].iter().try_for_each(|d| crate::sys::ethtool::offloads_off(d))
        })?;
        let r = reqs.clone();
        self.each(work, move |w, ctx| {
            // Offloads go off while the end is still down: on a running
            // veth, turning GRO off stops its NAPI and waits for an RCU
            // grace period.
            w.offloads[1].iter().try_for_each(|d| crate::sys::ethtool::offloads_off(d))?;
            link::batch(ctx, r(&w.peers))
        })?;
        self.each(work, move |w, ctx| {
            link::batch(ctx, reqs(&[&w.ups[..], &w.routes[..]].concat()))?;
            link::wait_oper_up(ctx, &w.carrier, CARRIER_WITHIN)
        })
    }

    /// Runs `f` with each namespace's work on its thread, all at once, and
    /// waits for all; the first error (by namespace order) is the result.
    fn each(
        &self,
        work: &IndexMap<String, NsWork>,
        f: impl Fn(&NsWork, &mut NsCtx) -> Result<()> + Clone + Send + 'static,
    ) -> Result<()> {
        let mut jobs = Vec::new();
        for (name, w) in work {
            let (w, f) = (w.clone(), f.clone());
            jobs.push((name, self.ns(name)?.submit(move |ctx| f(&w, ctx))?));
        }
        let mut first = None;
        for (name, j) in jobs {
            if let Err(e) = j.wait().and_then(|r| r) {
                first.get_or_insert(e.context(format!("in namespace {name}")));
            }
        }
        first.map_or(Ok(()), Err)
    }

    /// The fixture's `iptables` calls, in order.
    fn firewall(&self, f: &FixtureFile) -> Result<()> {
        for fw in &f.firewall {
            let ns = self.ns(fw.ns.get_ref())?;
            for rule in &fw.iptables {
                let mut c = ns.command("iptables");
                c.args(rule.split_whitespace());
                cmd::run_ok(c, cmd::DEFAULT_DEADLINE)
                    .with_context(|| format!("fixture firewall in {}", fw.ns.get_ref()))?;
            }
        }
        Ok(())
    }

    /// The index of `dev` in `ns`: the build's, else asked of the kernel
    /// (a link a step made).
    fn index_or_lookup(&self, ns: &str, dev: &str) -> Result<u32> {
        match self.index(ns, dev) {
            Some(i) => Ok(i),
            None => lookup(self.ns(ns)?, dev),
        }
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
                let out = cmd::run_ok(c, std::time::Duration::from_millis(limits::SH_STEP_MS))?;
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
                let index = self.index_or_lookup(ns, dev)?;
                let o = LinkOpts { index, mtu: *mtu, tx_queue_len: *tx_queue_len, ..Default::default() };
                let dev = dev.clone();
                self.ns(ns)?.run(move |ctx| link::batch(ctx, vec![link::set_link(&dev, &o)]))??;
                Ok(String::new())
            }
        }
    }
}

/// A link's index asked of the kernel.
fn lookup(ns: &Netns, dev: &str) -> Result<u32> {
    let dev = dev.to_string();
    ns.run(move |ctx| link::index_of(ctx, &dev))?
}
