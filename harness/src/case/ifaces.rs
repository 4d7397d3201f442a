//! The interfaces each namespace has at one point of a phase: the
//! fixture's, then each step's adds, moves and deletes in order. The loader
//! walks every phase with it, so captures, expectations and steps may name
//! links a step makes, and a name that exists at no point is refused with
//! the list of those that do.

use std::collections::{BTreeMap, BTreeSet};

use crate::case::expect::Devices;
use crate::case::object::{LinkKind, LinkSpec};
use crate::case::spec::{FixtureFile, Step};

/// Interfaces per namespace, and which are veth peers of which.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ifaces {
    pub devs: Devices,
    peers: BTreeMap<(String, String), (String, String)>,
}

impl Ifaces {
    /// What the fixture builds: `lo` in every namespace, bridges, veths,
    /// then `[[link]]` in order (unchecked: [`Ifaces::add_link`] checks).
    pub fn of_fixture(f: &FixtureFile) -> Ifaces {
        let mut t = Ifaces::default();
        for n in &f.namespaces {
            t.devs.entry(n.name.get_ref().clone()).or_default().insert("lo".into());
        }
        for b in &f.bridges {
            t.devs.entry(b.ns.get_ref().clone()).or_default().insert(b.name.clone());
        }
        for v in &f.veths {
            let (a, b) = ((v.a.ns.get_ref().clone(), v.a.name.clone()), (v.b.ns.get_ref().clone(), v.b.name.clone()));
            t.devs.entry(a.0.clone()).or_default().insert(a.1.clone());
            t.devs.entry(b.0.clone()).or_default().insert(b.1.clone());
            t.peers.insert(a.clone(), b.clone());
            t.peers.insert(b, a);
        }
        for l in &f.links {
            let _ = t.add_link(l.get_ref());
        }
        t
    }

    pub fn has(&self, ns: &str, dev: &str) -> bool {
        self.devs.get(ns).is_some_and(|d| d.contains(dev))
    }

    /// `ns`'s interfaces, comma-separated, for messages.
    pub fn list(&self, ns: &str) -> String {
        self.devs.get(ns).map(|d| d.iter().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default()
    }

    fn ns_ok(&self, ns: &str) -> Result<(), String> {
        match self.devs.contains_key(ns) {
            true => Ok(()),
            false => Err(format!(
                "no namespace {ns:?} (the fixture has {})",
                self.devs.keys().cloned().collect::<Vec<_>>().join(", ")
            )),
        }
    }

    fn dev_ok(&self, ns: &str, dev: &str, what: &str) -> Result<(), String> {
        self.ns_ok(ns)?;
        match self.has(ns, dev) {
            true => Ok(()),
            false => Err(format!(
                "{what} {dev:?}: namespace {ns:?} has no interface {dev:?} at this point (it has {})",
                self.list(ns)
            )),
        }
    }

    fn free(&self, ns: &str, dev: &str) -> Result<(), String> {
        crate::case::syntax::check_ifname(dev)?;
        match self.has(ns, dev) {
            true => Err(format!("interface {dev:?} already exists in namespace {ns:?} at this point")),
            false => Ok(()),
        }
    }

    /// `ip link add`: checks the link and what it names, then adds it.
    pub fn add_link(&mut self, l: &LinkSpec) -> Result<(), String> {
        l.check()?;
        self.ns_ok(&l.ns)?;
        self.ns_ok(l.home())?;
        self.free(l.home(), &l.name)?;
        if let Some(lower) = &l.link {
            self.dev_ok(&l.ns, lower, "link")?;
        }
        if let Some(m) = &l.master {
            self.dev_ok(l.home(), m, "master")?;
        }
        self.devs.entry(l.home().to_string()).or_default().insert(l.name.clone());
        if let (LinkKind::Veth, Some(p)) = (l.kind, &l.peer) {
            let pns = l.peer_ns.clone().unwrap_or(l.ns.clone());
            self.ns_ok(&pns)?;
            if pns == l.ns && *p == l.name {
                return Err(format!("link {:?}: a veth's peer needs another name", l.name));
            }
            self.free(&pns, p)?;
            self.devs.entry(pns.clone()).or_default().insert(p.clone());
            let (a, b) = ((l.ns.clone(), l.name.clone()), (pns, p.clone()));
            self.peers.insert(a.clone(), b.clone());
            self.peers.insert(b, a);
        }
        Ok(())
    }

    fn remove(&mut self, ns: &str, dev: &str) {
        if let Some(d) = self.devs.get_mut(ns) {
            d.remove(dev);
        }
    }

    /// The interfaces after `step`, or why the step cannot apply here.
    pub fn apply(&mut self, step: &Step) -> Result<(), String> {
        if let Some(ns) = step.ns() {
            self.ns_ok(ns)?;
        }
        match step {
            Step::LinkAdd(l) => return self.add_link(l),
            Step::LinkDel { ns, dev } => {
                self.dev_ok(ns, dev, "link del dev")?;
                if dev == "lo" {
                    return Err("lo cannot be deleted".into());
                }
                self.remove(ns, dev);
                let me = (ns.clone(), dev.clone());
                if let Some(peer) = self.peers.remove(&me) {
                    self.peers.remove(&peer);
                    self.remove(&peer.0, &peer.1);
                }
                return Ok(());
            }
            Step::LinkSet(s) => {
                self.dev_ok(&s.ns, &s.dev, "dev")?;
                if let Some(m) = s.master.as_deref().filter(|m| !m.is_empty()) {
                    self.dev_ok(&s.ns, m, "master")?;
                }
                if let Some(to) = &s.netns {
                    self.ns_ok(to)?;
                    if s.dev == "lo" {
                        return Err("lo cannot move to another namespace".into());
                    }
                    self.free(to, &s.dev).map_err(|e| format!("link set netns {to}: {e}"))?;
                    self.remove(&s.ns, &s.dev);
                    self.devs.entry(to.clone()).or_default().insert(s.dev.clone());
                    let (old, new) = ((s.ns.clone(), s.dev.clone()), (to.clone(), s.dev.clone()));
                    if let Some(peer) = self.peers.remove(&old) {
                        self.peers.insert(peer.clone(), new.clone());
                        self.peers.insert(new, peer);
                    }
                }
                return Ok(());
            }
            Step::Redirect { ns, to, .. } => self.dev_ok(ns, to, "redirect to")?,
            _ => {}
        }
        if let (Some(ns), Some(dev)) = (step.ns(), step.dev()) {
            if dev != "lo" || !matches!(step, Step::RouteAdd(_) | Step::RouteDel(_)) {
                self.dev_ok(ns, dev, "dev")?;
            }
        }
        Ok(())
    }

    /// The veth pairs, each once, as `ns/dev` labels.
    pub fn veth_pairs(&self) -> Vec<(String, String)> {
        self.peers
            .iter()
            .filter(|(a, b)| a < b)
            .map(|(a, b)| (format!("{}/{}", a.0, a.1), format!("{}/{}", b.0, b.1)))
            .collect()
    }

    /// Adds every interface of `other` (to know what exists at any point).
    pub fn union(&mut self, other: &Ifaces) {
        for (ns, d) in &other.devs {
            self.devs.entry(ns.clone()).or_default().extend(d.iter().cloned());
        }
    }
}

/// Every interface that exists at some point, per namespace.
pub type Ever = BTreeMap<String, BTreeSet<String>>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::object::LinkSet;

    fn veth(ns: &str, name: &str, peer: &str, peer_ns: &str) -> LinkSpec {
        toml::from_str(&format!(
            "ns = \"{ns}\"\nname = \"{name}\"\nkind = \"veth\"\npeer = \"{peer}\"\npeer_ns = \"{peer_ns}\""
        ))
        .unwrap()
    }

    #[test]
    fn adds_moves_and_deletes_are_followed() {
        let mut t = Ifaces::default();
        for ns in ["host", "c"] {
            t.devs.entry(ns.into()).or_default().insert("lo".into());
        }
        t.apply(&Step::LinkAdd(veth("host", "veth1", "eth0", "c"))).unwrap();
        assert!(t.has("host", "veth1") && t.has("c", "eth0"));
        let e = t.apply(&Step::LinkAdd(veth("host", "veth1", "eth1", "c"))).unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        // Move the host end into c, then delete the pair from there.
        let mv = LinkSet { ns: "host".into(), dev: "veth1".into(), netns: Some("c".into()), ..LinkSet::default() };
        t.apply(&Step::LinkSet(mv)).unwrap();
        assert!(!t.has("host", "veth1") && t.has("c", "veth1"));
        t.apply(&Step::LinkDel { ns: "c".into(), dev: "eth0".into() }).unwrap();
        assert_eq!(t.list("c"), "lo");
        let e = t.apply(&Step::LinkDel { ns: "c".into(), dev: "eth0".into() }).unwrap_err();
        assert!(e.contains("has no interface \"eth0\" at this point (it has lo)"), "{e}");
        let mut mv = veth("host", "mv0", "x", "c");
        mv.kind = LinkKind::Macvlan;
        mv.peer = None;
        mv.peer_ns = None;
        mv.link = Some("eno1".into());
        let e = t.apply(&Step::LinkAdd(mv)).unwrap_err();
        assert!(e.contains("link \"eno1\": namespace \"host\" has no interface \"eno1\""), "{e}");
    }
}
