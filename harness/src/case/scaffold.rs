//! `netrepro new <id> [--fixture NAME]`: a commented case file that already
//! runs (its baseline) and says what to fill in.

use anyhow::{anyhow, bail, Result};

use crate::case::spec::FixtureFile;

/// The case text for `id` on `fixture` (named `fixture_name`).
pub fn case_text(id: &str, fixture_name: &str, fixture: &FixtureFile) -> Result<String> {
    if let Err(e) = crate::case::syntax::check_id(id) {
        bail!("case {e}");
    }
    // A probe that works on any fixture: ping across its first veth pair
    // from one end's namespace to the other end's IPv4 address, or to the
    // address of the bridge that end is on (and capture it there).
    // IPv4 first (ping); an IPv6-only fixture gets a TCP connect instead.
    let v4 = |c: &[crate::case::spec::Cidr]| {
        c.iter().find(|c| c.addr.is_ipv4()).or_else(|| c.iter().find(|c| c.addr.is_ipv6())).map(|c| c.addr)
    };
    let direct = |e: &crate::case::spec::VethEnd| Some((v4(&e.addresses)?, e.ns.get_ref().clone(), e.name.clone()));
    let bridged = |e: &crate::case::spec::VethEnd| -> Option<(std::net::IpAddr, String, String)> {
        let m = e.master.as_ref()?;
        let b = fixture.bridges.iter().find(|b| b.name == *m.get_ref() && b.ns.get_ref() == e.ns.get_ref())?;
        Some((v4(&b.addresses)?, b.ns.get_ref().clone(), b.name.clone()))
    };
    type Target<'a> = &'a dyn Fn(&crate::case::spec::VethEnd) -> Option<(std::net::IpAddr, String, String)>;
    let across = |target: Target, a_end: bool| {
        fixture.veths.iter().find_map(|v| {
            let (there, here) = if a_end { (&v.a, &v.b) } else { (&v.b, &v.a) };
            let (a, ns, dev) = target(there)?;
            Some((here.ns.get_ref().clone(), a, ns, dev))
        })
    };
    // Else two [[link]]s in different namespaces, one's IPv4 address in
    // the other's prefix (ipvlan/macvlan endpoints on one parent).
    let linked = || {
        let v4_of = |l: &crate::case::object::LinkSpec| l.addresses.iter().find(|c| c.addr.is_ipv4()).copied();
        let same_net = |a: &crate::case::syntax::Cidr, b: std::net::IpAddr| match (a.addr, b) {
            (std::net::IpAddr::V4(x), std::net::IpAddr::V4(y)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(a.prefix)).unwrap_or(0);
                u32::from(x) & mask == u32::from(y) & mask
            }
            _ => false,
        };
        let links: Vec<_> = fixture.links.iter().map(|l| l.get_ref()).collect();
        links.iter().find_map(|here| {
            let mine = v4_of(here)?;
            links.iter().find_map(|there| {
                let a = v4_of(there)?.addr;
                (there.home() != here.home() && same_net(&mine, a))
                    .then(|| (here.home().to_string(), a, there.home().to_string(), there.name.clone()))
            })
        })
    };
    let (from, to, to_ns, to_dev) = across(&direct, true)
        .or_else(|| across(&direct, false))
        .or_else(|| across(&bridged, true))
        .or_else(linked)
        .ok_or_else(|| anyhow!("fixture {fixture_name} has no veth pair with an address to reach across"))?;
    let nss: Vec<&str> = fixture.namespaces.iter().map(|n| n.name.get_ref().as_str()).collect();
    let mut ifaces = Vec::new();
    for b in &fixture.bridges {
        ifaces.push(format!("{}/{}", b.ns.get_ref(), b.name));
    }
    for v in &fixture.veths {
        for e in [&v.a, &v.b] {
            ifaces.push(format!("{}/{}", e.ns.get_ref(), e.name));
        }
    }
    for l in &fixture.links {
        let l = l.get_ref();
        ifaces.push(format!("{}/{}", l.home(), l.name));
        if let Some(p) = &l.peer {
            ifaces.push(format!("{}/{p}", l.peer_ns.as_deref().unwrap_or(&l.ns)));
        }
    }
    Ok(format!(
        r#"# A new case. `netrepro check {id}` validates it; `cargo test --test cases -- {id}`
# (as root) runs it. The format is described in docs/cases.md.
id = "{id}"
title = "TODO: one line, as the report would title it"
# TODO: the report(s) this case reproduces.
urls = ["https://example.invalid/TODO"]
symptom = """
TODO: what the user saw, in their words (errors, timings, what worked)."""
fix = """
TODO: the documented fix, and why it works."""
fixture = "{fixture_name}"
# Namespaces in this fixture: {nss}
# Interfaces you can capture: {ifaces}
capture = ["{to_ns}/{to_dev}"]
# requires = ["tc"]          # userspace tools the case runs, if any

[probes]
# What the user would run. Kinds: ping, connect, stream, udp, dns, bind, burst,
# frame (docs/cases.md "Probes"); long-lived servers and senders are [[phase.actor]]s.
{probe}

[[phase]]
name = "baseline"
# The healthy topology. Keep this phase: it proves the fault is the fault.
[phase.expect.ping]
{healthy}

# TODO: the fault, as steps, and the exact failure the user saw:
# [[phase]]
# name = "fault"
# steps = [{{ sysctl = {{ ns = "{to_ns}", key = "net.ipv4.conf.all.rp_filter", value = 1 }} }}]
#         (typed steps: link-add/-set/-del, addr-, route-, rule-, neigh-, iptables-restore,
#          nft, htb, tbf ... see docs/cases.md "Steps"; `sh` only for a customer's literal line)
# [phase.expect.ping]
# replies = 0
# counters = {{ "{to_ns}: Ip.InAddrErrors" = 3 }}
#
# TODO: the documented fix, applied on a freshly faulted topology:
# [[phase]]
# name = "fix"
# after = "fault"
# steps = [...]
# [phase.expect.ping]
# replies = 3
"#,
        nss = nss.join(", "),
        probe = if to.is_ipv4() {
            format!("ping = {{ kind = \"ping\", from = \"{from}\", to = \"{to}\", count = 3, interval_ms = 50, wait_ms = 300 }}")
        } else {
            format!("ping = {{ kind = \"connect\", from = \"{from}\", to = \"[{to}]:80\", listen_in = \"{to_ns}\", timeout_ms = 800 }}")
        },
        healthy = if to.is_ipv4() { "replies = 3\nicmp_errors = []" } else { "result = \"ok\"" },
        ifaces = ifaces.join(", "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scaffold_loads_as_a_case() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let fx = crate::case::plan::load_fixture(&root.join("fixtures/docker-bridge.toml")).unwrap();
        let text = case_text("demo", "docker-bridge", &fx).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("demo.toml");
        std::fs::write(&p, text).unwrap();
        let plan = crate::case::plan::load(&p, &root.join("fixtures")).unwrap();
        assert_eq!(plan.phases.len(), 1);
        // It pings across the uplink and captures where the echo arrives.
        assert_eq!(plan.captures[0].to_string(), "host/eno1");
        assert!(case_text("Demo", "docker-bridge", &fx).is_err());
    }

    #[test]
    fn the_scaffold_loads_on_every_fixture() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let fixtures = root.join("fixtures");
        let mut n = 0;
        for e in std::fs::read_dir(&fixtures).unwrap().flatten() {
            let path = e.path();
            if path.extension().is_none_or(|x| x != "toml") {
                continue;
            }
            let name = path.file_stem().unwrap().to_str().unwrap().to_string();
            let fx = crate::case::plan::load_fixture(&path).unwrap();
            let text = case_text("demo", &name, &fx).unwrap_or_else(|e| panic!("{name}: {e}"));
            let dir = tempfile::tempdir().unwrap();
            let p = dir.path().join("demo.toml");
            std::fs::write(&p, text).unwrap();
            crate::case::plan::load(&p, &fixtures).unwrap_or_else(|e| panic!("{name}: {e}"));
            n += 1;
        }
        assert!(n >= 6, "{n} fixtures");
    }
}
