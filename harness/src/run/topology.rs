//! A fixture, built over netlink into fresh namespaces. Dropping the
//! [`Topology`] ends every namespace thread and so every namespace.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use indexmap::IndexMap;

use crate::case::object::{LinkKind, LinkSpec, Offloads, RouteObj, RulesetKind};
use crate::case::spec::{FixtureFile, Step, VethEnd};
use crate::evidence::topo::{IfView, NsView, TopoView};
use crate::sys::cmd;
use crate::sys::ethtool;
use crate::sys::firewall;
use crate::sys::link::{self, LinkOpts, PeerNs, Req};
use crate::sys::netns::{Netns, NsCtx};
use crate::sys::rtnl;
use crate::sys::sysctl;
use crate::sys::tc;

/// How long a built topology may take to get carrier on every link: the
/// kernel's link watch runs at once for these events, but under load it is
/// a worker thread like any other.
pub const CARRIER_WITHIN: Duration = Duration::from_secs(10);

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
    /// A route, out of the index of its device when it has one.
    Route(RouteObj, Option<u32>),
}

impl LinkReq {
    pub fn build(&self, peer_ns: &dyn Fn(&str) -> PeerNs) -> Req {
        match self {
            LinkReq::Bridge(n, o) => link::new_bridge(n, o),
            LinkReq::Veth(n, o, p, po, ns) => link::new_veth(n, o, p, po, peer_ns(ns)),
            LinkReq::Set(n, o) => link::set_link(n, o),
            LinkReq::Addr(i, d, ip, len) => link::new_address(*i, d, *ip, *len),
            LinkReq::Route(r, oif) => link::new_route(rtnl::route::message_with(r, *oif), r.show("add")),
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

/// Gives every link its index, counted in each namespace from `first(ns)`
/// (see [`Netns::first_free_index`]), and sorts the fixture into rounds.
/// `lookup` answers for a route's device the fixture does not make. A
/// fixture with typed links or addresses gets its routes after them
/// ([`Topology::build`]): none here, and a device not made yet is no error.
pub fn plan(
    f: &FixtureFile,
    first: &dyn Fn(&str) -> u32,
    lookup: &dyn Fn(&str, &str) -> Result<u32>,
) -> Result<BuildPlan> {
    let mut work: IndexMap<String, NsWork> =
        f.namespaces.iter().map(|n| (n.name.get_ref().clone(), NsWork::default())).collect();
    let mut indexes: BTreeMap<(String, String), u32> = BTreeMap::new();
    let mut next: BTreeMap<String, u32> = BTreeMap::new();
    let mut give = |ns: &str, dev: &str| {
        let n = next.entry(ns.to_string()).or_insert_with(|| first(ns));
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
    if has_objects(f) {
        return Ok(BuildPlan { work, indexes });
    }
    for r in &f.routes {
        let r = r.obj();
        let oif = match &r.dev {
            Some(d) => Some(idx(&r.ns, d).or_else(|_| lookup(&r.ns, d))?),
            None => None,
        };
        at(&mut work, &r.ns)?.routes.push(LinkReq::Route(r, oif));
    }
    Ok(BuildPlan { work, indexes })
}

/// Whether a fixture has typed links or addresses, which its routes may
/// need: those come after the rounds' links, one at a time, and the routes
/// after them.
pub fn has_objects(f: &FixtureFile) -> bool {
    !(f.links.is_empty() && f.addresses.is_empty())
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
    /// and the fixture's `iptables-restore` and `iptables` commands (by
    /// interface name) run beside them:
    ///
    /// 1. bridges (up) and their addresses; each veth from its first end,
    ///    both ends down, and that end's addresses and offloads;
    /// 2. the peer end: offloads, then master and up, its addresses;
    /// 3. the first end up, routes; the wait for carrier.
    ///
    /// A fixture with typed `links` or `addresses` (VLANs, macvlans, tunnels
    /// on the fixture's bridges and veths) gets them after round 3's requests, one
    /// request after another as the kernel may need each before the next;
    /// its routes then follow them, as do its neighbours, fdb entries and
    /// rules, and the wait for carrier comes last. `nft` rulesets load once
    /// every link exists (`iif`/`oif` resolve at load time).
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
        let plan = plan(f, &|ns| namespaces.get(ns).map_or(2, |n| n.first_free_index()), &|ns, dev| match namespaces
            .get(ns)
        {
            Some(n) => lookup(n, dev),
            None => Err(anyhow!("no namespace {ns:?}")),
        })?;
        let t = Topology { namespaces, indexes: plan.indexes };
        let tids: BTreeMap<String, u32> = t.namespaces.iter().map(|(n, ns)| (n.clone(), ns.tid())).collect();
        // Typed objects may sit on the fixture's links and routes on them:
        // those go after the links, one at a time, and the wait last.
        let late = has_objects(f);
        let late_routes: Vec<RouteObj> = if late { f.routes.iter().map(|r| r.obj()).collect() } else { Vec::new() };
        std::thread::scope(|s| {
            // The fixture's xtables rules (the incident's own command lines)
            // name interfaces, need none to exist: they load while the links
            // are made.
            let fw = s.spawn(|| t.firewall(f, false));
            let built = t.rounds(&plan.work, tids, late, |t| t.objects(f, &late_routes));
            let fw = fw.join().unwrap_or_else(|_| Err(anyhow!("the fixture's firewall thread panicked")));
            built.and(fw)
        })?;
        t.firewall(f, true)?;
        Ok(t)
    }

    /// The fixture's typed objects, in the order a script would add them:
    /// links, addresses, neighbours, fdb entries, `routes`, rules.
    fn objects(&self, f: &FixtureFile, routes: &[RouteObj]) -> Result<()> {
        for l in &f.links {
            self.link_add(l.get_ref())?;
        }
        for a in &f.addresses {
            let a = a.get_ref().clone();
            self.ns(&a.ns)?.run(move |ctx| rtnl::addr::add(ctx, &a.dev, a.address, a.nodad))??;
        }
        for n in &f.neighbours {
            let n = n.get_ref().clone();
            self.ns(&n.ns)?.run(move |ctx| rtnl::neigh::add(ctx, &n))??;
        }
        for x in &f.fdb {
            let x = x.get_ref().clone();
            self.ns(&x.ns)?.run(move |ctx| rtnl::fdb::add(ctx, &x))??;
        }
        for r in routes {
            let r = r.clone();
            self.ns(&r.ns)?.run(move |ctx| rtnl::route::add(ctx, &r))??;
        }
        for r in &f.rules {
            let r = r.get_ref().clone();
            self.ns(&r.ns)?.run(move |ctx| rtnl::rule::add(ctx, &r))??;
        }
        Ok(())
    }

    /// The build's rounds, each in every namespace at once; `objects`
    /// (the fixture's typed objects) run between the last round's requests
    /// and its wait for carrier when `late`.
    fn rounds(
        &self,
        work: &IndexMap<String, NsWork>,
        tids: BTreeMap<String, u32>,
        late: bool,
        objects: impl FnOnce(&Self) -> Result<()>,
    ) -> Result<()> {
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
        let up = move |w: &NsWork, ctx: &mut NsCtx| link::batch(ctx, reqs(&[&w.ups[..], &w.routes[..]].concat()));
        let wait = |w: &NsWork, ctx: &mut NsCtx| link::wait_oper_up(ctx, &w.carrier, CARRIER_WITHIN);
        if late {
            self.each(work, up)?;
            objects(self)?;
            self.each(work, wait)
        } else {
            self.each(work, move |w, ctx| {
                up(w, ctx)?;
                wait(w, ctx)
            })
        }
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

    /// The fixture's firewall: `iptables-restore` rulesets, then the
    /// `iptables` lines (`nft` false), or its `nft` rulesets (`nft` true).
    fn firewall(&self, f: &FixtureFile, nft: bool) -> Result<()> {
        for fw in &f.firewall {
            let ns = self.ns(fw.ns.get_ref())?;
            let (restore, nfts): (Vec<_>, Vec<_>) =
                fw.rulesets.iter().partition(|r| matches!(r.kind, RulesetKind::IptablesRestore { .. }));
            let context = || format!("fixture firewall in {}", fw.ns.get_ref());
            if nft {
                for r in nfts {
                    firewall::load(ns, r).with_context(context)?;
                }
                continue;
            }
            for r in restore {
                firewall::load(ns, r).with_context(context)?;
            }
            for rule in &fw.iptables {
                let mut c = ns.command("iptables");
                // Quotes were checked at load; an unclosed one cannot get here.
                c.args(shlex::split(rule).unwrap_or_default());
                cmd::run_ok(c, cmd::DEFAULT_DEADLINE).with_context(context)?;
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
                let index = self.index_or_lookup(ns, dev)?;
                let o = LinkOpts { index, mtu: *mtu, tx_queue_len: *tx_queue_len, ..Default::default() };
                let dev = dev.clone();
                self.ns(ns)?.run(move |ctx| link::batch(ctx, vec![link::set_link(&dev, &o)]))??;
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

/// A link's index asked of the kernel.
fn lookup(ns: &Netns, dev: &str) -> Result<u32> {
    let dev = dev.to_string();
    ns.run(move |ctx| link::index_of(ctx, &dev))?
}
