//! Which namespaces a probe's bookkeeping reads: the ones its traffic can
//! cross and the ones its check names. Counters and neighbour tables of the
//! other namespaces (199 idle containers beside the two a ping crosses)
//! cannot change the verdict or the why-line (`verdict/explain.rs` reads
//! the counters the case names and the neighbours of the namespaces on the
//! path), so they are not read.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::case::plan::{Check, Plan};
use crate::case::spec::{FixtureFile, ProbeSpec, Step};

/// The namespaces to read around one probe of `check` in `plan`: every
/// namespace on a path between the probe's ends (its source, the holder of
/// its destination address, its listener or server, its injection point),
/// and every namespace the check names. When no namespace holds the
/// destination, everything the source can reach. Every namespace when the
/// paths cannot be known from the fixture's bridges and veths alone
/// ([`fixed_paths`]) or for a probe other than ping, connect and stream.
pub fn scope(plan: &Plan, spec: &ProbeSpec, check: &Check) -> BTreeSet<String> {
    if !fixed_paths(plan) {
        return plan.fixture.namespaces.iter().map(|n| n.name.get_ref().clone()).collect();
    }
    on_fixture(&plan.fixture, spec, check)
}

/// [`scope`] over the fixture's bridges and veths.
fn on_fixture(f: &FixtureFile, spec: &ProbeSpec, check: &Check) -> BTreeSet<String> {
    let all = || f.namespaces.iter().map(|n| n.name.get_ref().clone()).collect();
    let (from, to, mut ends) = match spec {
        ProbeSpec::Ping { from, to, .. } => (from, *to, vec![]),
        ProbeSpec::Connect { from, to, listen_in, .. } => (from, to.ip(), listen_in.iter().cloned().collect()),
        ProbeSpec::Stream { from, to, server_in, inject, .. } => {
            let mut e = vec![server_in.clone()];
            e.extend(inject.iter().map(|i| i.at.ns.clone()));
            (from, to.ip(), e)
        }
        _ => return all(),
    };
    ends.push(from.clone());
    let holders = holders_of(f, to);
    let known_destination = !holders.is_empty();
    ends.extend(holders);
    let mut out = on_paths(f, from, &ends.into_iter().collect(), !known_destination);
    out.extend(named(check));
    out
}

/// Whether the fixture's bridges and veths are all the paths there are,
/// in every phase: no typed links or addresses, no step that adds, moves,
/// deletes or re-addresses a link (nor an `sh` step, which may), and no
/// actor (whose traffic the why-line may weigh in any namespace).
pub fn fixed_paths(plan: &Plan) -> bool {
    let f = &plan.fixture;
    let moves = |s: &Step| {
        matches!(
            s,
            Step::Sh { .. }
                | Step::LinkAdd(_)
                | Step::LinkSet(_)
                | Step::LinkDel { .. }
                | Step::AddrAdd(_)
                | Step::AddrDel(_)
                | Step::Redirect { .. }
        )
    };
    f.links.is_empty()
        && f.addresses.is_empty()
        && !plan.setup.iter().any(moves)
        && plan.phases.iter().all(|p| p.actors.is_empty() && !p.steps.iter().any(moves))
}

/// Namespaces that hold `ip` on a bridge or veth end.
fn holders_of(f: &FixtureFile, ip: IpAddr) -> Vec<String> {
    let mut out = Vec::new();
    for b in &f.bridges {
        if b.addresses.iter().any(|a| a.addr == ip) {
            out.push(b.ns.get_ref().clone());
        }
    }
    for v in &f.veths {
        for e in [&v.a, &v.b] {
            if e.addresses.iter().any(|a| a.addr == ip) {
                out.push(e.ns.get_ref().clone());
            }
        }
    }
    out
}

/// The namespaces reachable from `from` over veths, less every dead end
/// that is not one of `ends` (pruned until none is left): on a tree, the
/// paths between the ends; with cycles, those paths and the cycles beside
/// them, which a packet may take. With `everything`, no pruning.
fn on_paths(f: &FixtureFile, from: &str, ends: &BTreeSet<String>, everything: bool) -> BTreeSet<String> {
    let mut adj: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for v in &f.veths {
        let (a, b) = (v.a.ns.get_ref().as_str(), v.b.ns.get_ref().as_str());
        if a != b {
            adj.entry(a).or_default().push(b);
            adj.entry(b).or_default().push(a);
        }
    }
    let mut reach: BTreeSet<&str> = BTreeSet::from([from]);
    let mut todo = vec![from];
    while let Some(n) = todo.pop() {
        for &m in adj.get(n).into_iter().flatten() {
            if reach.insert(m) {
                todo.push(m);
            }
        }
    }
    if !everything {
        loop {
            let dead: Vec<&str> = reach
                .iter()
                .copied()
                .filter(|n| !ends.contains(*n))
                .filter(|n| adj.get(n).into_iter().flatten().filter(|m| reach.contains(*m)).count() <= 1)
                .collect();
            if dead.is_empty() {
                break;
            }
            for d in dead {
                reach.remove(d);
            }
        }
    }
    reach.into_iter().map(str::to_string).collect()
}

/// Every namespace a check's expectations name.
fn named(c: &Check) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    out.extend(c.counters.iter().map(|x| x.ns.clone()));
    out.extend(c.packets.iter().map(|x| x.at.ns.clone()));
    out.extend(c.neighbours.iter().map(|x| x.ns.clone()));
    out.extend(c.routes.iter().map(|x| x.ns.clone()));
    out.extend(c.qdiscs.iter().map(|x| x.at.ns.clone()));
    out.extend(c.links.iter().map(|x| x.at.ns.clone()));
    out.extend(c.rules.iter().map(|x| x.ns.clone()));
    out.extend(c.conntrack.iter().map(|x| x.ns.clone()));
    out.extend(c.drops.iter().map(|x| x.ns.clone()));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host with a bridge, three containers on it, an uplink to an
    /// external namespace, and a router hanging off the external one.
    fn fixture() -> FixtureFile {
        let mut t = String::from(
            "description = \"x\"\n[[namespace]]\nname = \"host\"\n[[namespace]]\nname = \"external\"\n\
             [[namespace]]\nname = \"router\"\n\
             [[bridge]]\nns = \"host\"\nname = \"br0\"\naddresses = [\"172.17.0.1/16\"]\n\
             [[veth]]\na = { ns = \"host\", name = \"eno1\", addresses = [\"10.0.0.1/24\"] }\n\
             b = { ns = \"external\", name = \"eth0\", addresses = [\"10.0.0.2/24\"] }\n\
             [[veth]]\na = { ns = \"external\", name = \"r\" }\nb = { ns = \"router\", name = \"eth0\", addresses = [\"10.9.0.1/24\"] }\n",
        );
        for i in 1..=3 {
            t += &format!(
                "[[namespace]]\nname = \"c{i}\"\n[[veth]]\na = {{ ns = \"host\", name = \"v{i}\", master = \"br0\" }}\n\
                 b = {{ ns = \"c{i}\", name = \"eth0\", addresses = [\"172.17.0.{}/16\"] }}\n",
                i + 1
            );
        }
        toml::from_str(&t).unwrap()
    }

    fn check() -> Check {
        Check {
            probe: "p".into(),
            outcome: Default::default(),
            counters: vec![],
            packets: vec![],
            neighbours: vec![],
            routes: vec![],
            qdiscs: vec![],
            links: vec![],
            rules: vec![],
            conntrack: vec![],
            drops: vec![],
        }
    }

    fn ping(from: &str, to: &str) -> ProbeSpec {
        ProbeSpec::Ping { from: from.into(), to: to.parse().unwrap(), count: 1, interval_ms: 1, wait_ms: 1 }
    }

    fn set(v: &[&str]) -> BTreeSet<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_ping_reads_the_namespaces_it_crosses() {
        let f = fixture();
        assert_eq!(on_fixture(&f, &ping("c1", "10.0.0.2"), &check()), set(&["c1", "host", "external"]));
        assert_eq!(on_fixture(&f, &ping("c2", "172.17.0.4"), &check()), set(&["c2", "host", "c3"]));
        assert_eq!(on_fixture(&f, &ping("c1", "10.9.0.1"), &check()), set(&["c1", "host", "external", "router"]));
    }

    #[test]
    fn an_unknown_destination_reads_everything_reachable() {
        let f = fixture();
        let all = set(&["c1", "c2", "c3", "host", "external", "router"]);
        assert_eq!(on_fixture(&f, &ping("c1", "8.8.8.8"), &check()), all);
    }

    #[test]
    fn what_the_check_names_is_read_too() {
        let f = fixture();
        let mut c = check();
        c.counters.push(crate::case::expect::CounterExp {
            ns: "c3".into(),
            key: "Ip.InReceives".into(),
            count: "0".parse().unwrap(),
        });
        assert_eq!(on_fixture(&f, &ping("c1", "10.0.0.2"), &c), set(&["c1", "c3", "host", "external"]));
    }
}
