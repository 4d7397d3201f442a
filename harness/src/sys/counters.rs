//! Kernel counters of one namespace: `/proc/net/snmp`, `/proc/net/netstat`
//! and `/proc/net/snmp6` (read through `/proc/thread-self`, so on the
//! namespace's thread), keyed `Group.Field` as `nstat` names them without the
//! prefix join: `Ip.InAddrErrors`, `TcpExt.TCPTimeouts`, `Ip6.InNoRoutes`,
//! `Icmp6.OutDestUnreachs`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};

pub type Counters = BTreeMap<String, i64>;

/// Parses the header/value line pairs of `/proc/net/snmp` or `/proc/net/netstat`.
pub fn parse_snmp(text: &str) -> Result<Counters> {
    let mut out = Counters::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if lines.len() % 2 != 0 {
        bail!("odd number of lines: header/value pairs expected");
    }
    for pair in lines.chunks(2) {
        let (h, v) = (pair[0], pair[1]);
        let (hg, hf) = h.split_once(':').context("header line without ':'")?;
        let (vg, vf) = v.split_once(':').context("value line without ':'")?;
        if hg != vg {
            bail!("header group {hg} followed by value group {vg}");
        }
        let names: Vec<&str> = hf.split_whitespace().collect();
        let vals: Vec<&str> = vf.split_whitespace().collect();
        if names.len() != vals.len() {
            bail!("group {hg}: {} names but {} values", names.len(), vals.len());
        }
        for (n, v) in names.iter().zip(vals) {
            let v: i64 = v.parse().with_context(|| format!("{hg}.{n}: value {v:?} is not a number"))?;
            out.insert(format!("{hg}.{n}"), v);
        }
    }
    Ok(out)
}

/// Parses `/proc/net/snmp6` (one `Ip6InNoRoutes  3` per line) into
/// `Ip6.InNoRoutes`: the group is the name up to its first `6` (`Ip6`,
/// `Icmp6`, `Udp6`, `UdpLite6`), as nstat's `Ip6InNoRoutes` reads.
pub fn parse_snmp6(text: &str) -> Result<Counters> {
    let mut out = Counters::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut it = l.split_whitespace();
        let (Some(name), Some(v), None) = (it.next(), it.next(), it.next()) else {
            bail!("snmp6 line {l:?}: `Name value` expected");
        };
        let Some(i) = name.find('6').filter(|i| *i > 0 && *i + 1 < name.len()) else {
            bail!("snmp6 name {name:?} has no Group6 prefix");
        };
        let v: i64 = v.parse().with_context(|| format!("{name}: value {v:?} is not a number"))?;
        out.insert(format!("{}.{}", &name[..=i], &name[i + 1..]), v);
    }
    Ok(out)
}

/// Parses `/proc/net/stat/nf_conntrack`-style tables (hex columns, one row per
/// CPU) into sums, keyed `Conntrack.<column>`.
pub fn parse_conntrack_stat(text: &str) -> Result<Counters> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().context("empty conntrack stat")?.split_whitespace().collect();
    let mut out = Counters::new();
    for l in lines {
        for (name, v) in header.iter().zip(l.split_whitespace()) {
            let v = i64::from_str_radix(v, 16).with_context(|| format!("conntrack {name}: {v:?}"))?;
            *out.entry(format!("Conntrack.{name}")).or_insert(0) += v;
        }
    }
    // "entries" is a gauge repeated per CPU, not a per-CPU count.
    out.remove("Conntrack.entries");
    Ok(out)
}

/// Reads every counter of the calling thread's namespace.
pub fn read_thread_ns() -> Result<Counters> {
    let read = |p: &str| std::fs::read_to_string(p).with_context(|| format!("reading {p}"));
    let mut all = parse_snmp(&read("/proc/thread-self/net/snmp")?)?;
    all.extend(parse_snmp(&read("/proc/thread-self/net/netstat")?)?);
    // Absent when IPv6 is disabled at boot (ipv6.disable=1).
    if let Ok(t) = std::fs::read_to_string("/proc/thread-self/net/snmp6") {
        all.extend(parse_snmp6(&t)?);
    }
    // Present only once nf_conntrack is loaded.
    if let Ok(t) = std::fs::read_to_string("/proc/thread-self/net/stat/nf_conntrack") {
        all.extend(parse_conntrack_stat(&t)?);
    }
    Ok(all)
}

/// `after - before` for every counter that moved.
pub fn delta(before: &Counters, after: &Counters) -> Counters {
    after
        .iter()
        .filter_map(|(k, a)| {
            let d = a - before.get(k).copied().unwrap_or(0);
            (d != 0).then(|| (k.clone(), d))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors\n\
Ip: 1 64 120 0 7\n\
Icmp: InMsgs InErrors\n\
Icmp: 3 0\n";

    #[test]
    fn snmp_pairs_become_group_dot_field() {
        let c = parse_snmp(SNMP).unwrap();
        assert_eq!(c["Ip.InAddrErrors"], 7);
        assert_eq!(c["Ip.Forwarding"], 1);
        assert_eq!(c["Icmp.InMsgs"], 3);
        assert_eq!(c.len(), 7);
    }

    #[test]
    fn malformed_snmp_is_rejected_with_the_reason() {
        let e = parse_snmp("Ip: A B\nIp: 1\n").unwrap_err().to_string();
        assert!(e.contains("2 names but 1 values"), "{e}");
        let e = parse_snmp("Ip: A\nTcp: 1\n").unwrap_err().to_string();
        assert!(e.contains("followed by value group"), "{e}");
        assert!(parse_snmp("Ip: A\n").is_err());
        assert!(parse_snmp("Ip: A\nIp: x\n").is_err());
    }

    #[test]
    fn snmp6_names_split_at_the_family_digit() {
        let c = parse_snmp6("Ip6InReceives                   \t12\nIp6InNoRoutes 3\nIcmp6OutDestUnreachs 2\nIcmp6InType135 4\nUdpLite6InErrors 0\n").unwrap();
        assert_eq!(c["Ip6.InNoRoutes"], 3);
        assert_eq!(c["Icmp6.OutDestUnreachs"], 2);
        assert_eq!(c["Icmp6.InType135"], 4);
        assert_eq!(c["UdpLite6.InErrors"], 0);
        assert!(parse_snmp6("Ip6InReceives\n").is_err());
        assert!(parse_snmp6("Foo 1\n").is_err());
    }

    #[test]
    fn conntrack_stat_sums_cpus_and_drops_the_gauge() {
        let t = "entries  clashres found invalid\n00000002 00000000 00000001 0000000a\n00000002 00000001 00000000 00000001\n";
        let c = parse_conntrack_stat(t).unwrap();
        assert_eq!(c["Conntrack.invalid"], 11);
        assert_eq!(c["Conntrack.clashres"], 1);
        assert!(!c.contains_key("Conntrack.entries"));
    }

    #[test]
    fn delta_keeps_only_what_moved() {
        let a = parse_snmp(SNMP).unwrap();
        let mut b = a.clone();
        *b.get_mut("Ip.InAddrErrors").unwrap() += 3;
        let d = delta(&a, &b);
        assert_eq!(d.len(), 1);
        assert_eq!(d["Ip.InAddrErrors"], 3);
    }
}
