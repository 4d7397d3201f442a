//! A snapshot of the host's own network state — links, addresses, routes,
//! every sysctl under `net.`, the iptables and nft rulesets, `/run/netns` —
//! taken before and after a run: any difference means the harness touched
//! the host, and the run fails loudly.
//!
//! Call it from a thread that never entered a namespace (any thread but a
//! [`crate::sys::netns::Netns`] worker).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::link::LinkAttribute;
use netlink_packet_route::route::RouteAttribute;

/// Counters and gauges that move on their own.
const VOLATILE_SYSCTLS: &[&str] = &["net.netfilter.nf_conntrack_count"];

/// The check around a run: a snapshot now, compared when the run is over.
pub struct Guard(HostState);

impl Guard {
    pub fn start() -> Result<Guard> {
        Ok(Guard(HostState::capture().context("host guard: cannot snapshot the host's network state")?))
    }

    /// Ok, or every difference, written for the person running.
    pub fn check(self) -> std::result::Result<(), String> {
        let after = HostState::capture()
            .map_err(|e| format!("host guard: cannot snapshot the host's network state after the run: {e:#}"))?;
        let diff = HostState::diff(&self.0, &after);
        if diff.is_empty() {
            Ok(())
        } else {
            Err(format!("HOST GUARD: the run changed the host's own network state:\n  {}", diff.join("\n  ")))
        }
    }

    /// A command's exit code with the guard's verdict folded in: failure
    /// (the difference printed to stderr) when the host changed, else
    /// success if `ok`.
    pub fn exit_code(self, ok: bool) -> std::process::ExitCode {
        match self.check() {
            Err(report) => {
                eprintln!("{report}");
                std::process::ExitCode::FAILURE
            }
            Ok(()) if ok => std::process::ExitCode::SUCCESS,
            Ok(()) => std::process::ExitCode::FAILURE,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct HostState {
    pub items: BTreeMap<String, String>,
}

impl HostState {
    /// One snapshot. Its parts are read at the same time (the three ruleset
    /// tools, the sysctl walk, the netlink dumps): ~12 ms where one after
    /// the other took ~20 (`iptables-save` alone is ~10).
    pub fn capture() -> Result<HostState> {
        let mut items = BTreeMap::new();
        let (rulesets, sys, nl) = std::thread::scope(|s| {
            let rulesets: Vec<_> =
                [("iptables-save", &[][..]), ("iptables-legacy-save", &[][..]), ("nft", &["list", "ruleset"][..])]
                    .into_iter()
                    .map(|(tool, args)| {
                        s.spawn(move || {
                            let p = crate::sys::cmd::which(tool)?;
                            let mut c = std::process::Command::new(p);
                            c.args(args);
                            let out = crate::sys::cmd::run(c, crate::sys::cmd::DEFAULT_DEADLINE).ok()?;
                            Some((tool, drop_inert_tables(&normalise_ruleset(&out.stdout))))
                        })
                    })
                    .collect();
            let sys = s.spawn(|| {
                let mut sys = BTreeMap::new();
                walk_sysctls(Path::new("/proc/sys/net"), &mut sys);
                sys
            });
            let mut nl = BTreeMap::new();
            let nl = netlink_state(&mut nl).map(|()| nl);
            let rulesets: Vec<_> = rulesets.into_iter().filter_map(|t| t.join().ok().flatten()).collect();
            (rulesets, sys.join(), nl)
        });
        items.extend(nl?);
        let sys = sys.map_err(|_| anyhow::anyhow!("the sysctl walk panicked"))?;
        for (k, v) in sys {
            if !VOLATILE_SYSCTLS.contains(&k.as_str()) {
                items.insert(format!("sysctl {k}"), v);
            }
        }
        for (tool, text) in rulesets {
            items.insert(format!("ruleset {tool}"), text);
        }
        let netns: Vec<String> = std::fs::read_dir("/run/netns")
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        items.insert("named netns".into(), netns.join(" "));
        Ok(HostState { items })
    }

    /// Differences from `before`. A sysctl that only *appears* (a module was
    /// loaded, e.g. nf_conntrack on first use in any namespace) is not a
    /// change of the host's configuration and is left out.
    pub fn diff(before: &HostState, after: &HostState) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in &before.items {
            match after.items.get(k) {
                None => out.push(format!("gone: {k} (was {v:?})")),
                Some(w) if w != v => out.push(format!("changed: {k}: {v:?} -> {w:?}")),
                _ => {}
            }
        }
        for (k, v) in &after.items {
            if !before.items.contains_key(k) && !k.starts_with("sysctl ") {
                out.push(format!("new: {k} = {v:?}"));
            }
        }
        out
    }
}

/// Removes iptables-save tables that hold no rule and only ACCEPT policies.
/// Loading a legacy table module (a case's `iptables-legacy` in its own
/// namespace, on kernels without lazy table setup) instantiates such a table
/// in every namespace, the host's included: it filters nothing, like the
/// sysctls a module load adds, and is not a change of the host's rules.
pub fn drop_inert_tables(saved: &str) -> String {
    let mut out = Vec::new();
    let mut table: Vec<&str> = Vec::new();
    for line in saved.lines() {
        if line.starts_with('*') {
            table = vec![line];
        } else if line == "COMMIT" && !table.is_empty() {
            let inert = table[1..].iter().all(|l| l.starts_with(':') && l.split_whitespace().nth(1) == Some("ACCEPT"));
            if !inert {
                out.append(&mut table);
                out.push(line);
            }
            table.clear();
        } else if !table.is_empty() {
            table.push(line);
        } else {
            out.push(line);
        }
    }
    out.extend(table);
    out.join("\n")
}

/// Strips what changes without anyone changing the rules: packet/byte
/// counters and the generated-at comments.
pub fn normalise_ruleset(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let mut s = String::new();
            let mut rest = l;
            // iptables-save chain lines: ":INPUT ACCEPT [12:3456]"
            while let Some(i) = rest.find('[') {
                match rest[i..].find(']') {
                    Some(j) if rest[i + 1..i + j].chars().all(|c| c.is_ascii_digit() || c == ':') => {
                        s += &rest[..i];
                        s += "[*]";
                        rest = &rest[i + j + 1..];
                    }
                    _ => {
                        s += &rest[..=i];
                        rest = &rest[i + 1..];
                    }
                }
            }
            s += rest;
            // nft: "counter packets 12 bytes 3456"
            let words: Vec<&str> = s.split(' ').collect();
            let mut o = Vec::new();
            let mut i = 0;
            while i < words.len() {
                if (words[i] == "packets" || words[i] == "bytes")
                    && i + 1 < words.len()
                    && words[i + 1].chars().all(|c| c.is_ascii_digit())
                {
                    o.push(words[i]);
                    o.push("*");
                    i += 2;
                } else {
                    o.push(words[i]);
                    i += 1;
                }
            }
            o.join(" ")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn walk_sysctls(dir: &Path, out: &mut BTreeMap<String, String>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            walk_sysctls(&p, out);
        } else if let Ok(v) = std::fs::read_to_string(&p) {
            let key = p.strip_prefix("/proc/sys").unwrap_or(&p).to_string_lossy().replace('/', ".");
            out.insert(key, v.trim().to_string());
        }
    }
}

fn netlink_state(items: &mut BTreeMap<String, String>) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let (conn, h, _) = rtnetlink::new_connection().context("netlink socket in the host namespace")?;
        let conn_task = tokio::spawn(conn);
        let links: Vec<_> = h.link().get().execute().try_collect().await?;
        for l in &links {
            let mut name = l.header.index.to_string();
            let mut desc = format!("flags {:?}", l.header.flags);
            for a in &l.attributes {
                match a {
                    LinkAttribute::IfName(n) => name = n.clone(),
                    LinkAttribute::Mtu(m) => desc += &format!(" mtu {m}"),
                    LinkAttribute::TxQueueLen(q) => desc += &format!(" qlen {q}"),
                    LinkAttribute::Controller(m) => desc += &format!(" master {m}"),
                    LinkAttribute::Address(a) => desc += &format!(" addr {a:02x?}"),
                    _ => {}
                }
            }
            items.insert(format!("link {name} (index {})", l.header.index), desc);
        }
        let addrs: Vec<_> = h.address().get().execute().try_collect().await?;
        for a in &addrs {
            let ip = a.attributes.iter().find_map(|x| match x {
                AddressAttribute::Address(ip) => Some(ip.to_string()),
                _ => None,
            });
            items.insert(
                format!("address {}/{} on index {}", ip.unwrap_or_default(), a.header.prefix_len, a.header.index),
                format!("scope {:?}", a.header.scope),
            );
        }
        for family in [rtnetlink::IpVersion::V4, rtnetlink::IpVersion::V6] {
            let msg = match family {
                rtnetlink::IpVersion::V4 => {
                    rtnetlink::RouteMessageBuilder::<std::net::Ipv4Addr>::new().table_id(0).build()
                }
                rtnetlink::IpVersion::V6 => {
                    rtnetlink::RouteMessageBuilder::<std::net::Ipv6Addr>::new().table_id(0).build()
                }
            };
            let routes: Vec<_> = h.route().get(msg).execute().try_collect().await?;
            for r in &routes {
                let attrs: Vec<String> = r
                    .attributes
                    .iter()
                    .filter(|a| !matches!(a, RouteAttribute::CacheInfo(_) | RouteAttribute::Expires(_)))
                    .map(|a| format!("{a:?}"))
                    .collect();
                items.insert(format!("route {:?} {}", r.header, attrs.join(" ")), String::new());
            }
        }
        conn_task.abort();
        Ok::<_, anyhow::Error>(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rulesets_compare_without_counters() {
        let a = "# Generated by iptables-save v1.8.9 on Sun\n*nat\n:POSTROUTING ACCEPT [12:720]\n-A POSTROUTING -j MASQUERADE\n";
        let b = "# Generated by iptables-save v1.8.9 on Mon\n*nat\n:POSTROUTING ACCEPT [99:5000]\n-A POSTROUTING -j MASQUERADE\n";
        assert_eq!(normalise_ruleset(a), normalise_ruleset(b));
        let n1 = "table ip filter {\n chain x {\n  counter packets 3 bytes 180 drop\n }\n}";
        let n2 = "table ip filter {\n chain x {\n  counter packets 9 bytes 999 drop\n }\n}";
        assert_eq!(normalise_ruleset(n1), normalise_ruleset(n2));
        assert_ne!(normalise_ruleset(a), normalise_ruleset(&a.replace("MASQUERADE", "ACCEPT")));
    }

    #[test]
    fn inert_tables_are_not_rules() {
        let appeared = "*filter\n:INPUT ACCEPT [*]\n:FORWARD ACCEPT [*]\n:OUTPUT ACCEPT [*]\nCOMMIT";
        assert_eq!(drop_inert_tables(appeared), "");
        let policy = "*filter\n:INPUT ACCEPT [*]\n:FORWARD DROP [*]\nCOMMIT";
        assert_eq!(drop_inert_tables(policy), policy);
        let rule = "*nat\n:POSTROUTING ACCEPT [*]\n[*] -A POSTROUTING -j MASQUERADE\nCOMMIT";
        assert_eq!(drop_inert_tables(rule), rule);
        assert_eq!(drop_inert_tables(&format!("{appeared}\n{rule}")), rule);
    }

    #[test]
    fn diff_reports_changes_and_ignores_appearing_sysctls() {
        let mut a = HostState::default();
        a.items.insert("sysctl net.ipv4.ip_forward".into(), "0".into());
        let mut b = a.clone();
        b.items.insert("sysctl net.netfilter.nf_conntrack_max".into(), "262144".into());
        assert!(HostState::diff(&a, &b).is_empty());
        b.items.insert("sysctl net.ipv4.ip_forward".into(), "1".into());
        b.items.insert("link veth0 (index 9)".into(), "flags".into());
        let d = HostState::diff(&a, &b);
        assert_eq!(d.len(), 2, "{d:?}");
        assert!(d[0].contains("ip_forward") && d[0].contains("\"0\" -> \"1\""));
        assert!(d[1].starts_with("new: link veth0"));
    }
}
