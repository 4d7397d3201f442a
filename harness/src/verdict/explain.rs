//! One line that says why, built from a probe's evidence alone: what the
//! user saw, where the kernel dropped what and why, how far the packets got,
//! and the state left behind. A pure function of the record, so the same
//! line appears in the test output, `netrepro run` and the report.

use std::collections::BTreeMap;

use crate::evidence::record::ProbeRecord;
use crate::wire::kind::FrameKind;

/// The probe's outcome as the user would describe it, and whether it is a
/// failure at all (`None` for a healthy outcome).
pub fn symptom(p: &ProbeRecord) -> Option<String> {
    use crate::case::spec::ProbeSpec;
    use crate::evidence::outcome::Outcome;
    match (&p.spec, &p.outcome) {
        (ProbeSpec::Ping { from, to, count, .. }, Outcome::Ping(o)) => {
            if o.replies >= *count && *count > 0 {
                return None;
            }
            let errors: Vec<String> = o.errors.iter().map(|e| format!("{} from {}", e.kind, e.from)).collect();
            let mut heard = match dedup_counted(&errors) {
                d if d.is_empty() => "no ICMP error".to_string(),
                d => d.join(", "),
            };
            for (errno, n) in &o.send_errors {
                heard.push_str(&format!("; {n} × {errno} sending"));
            }
            Some(format!("ping {to} from {from}: {}/{count} replies, {heard}", o.replies))
        }
        (ProbeSpec::Connect { from, to, .. }, Outcome::Connect(o)) => match o.result.as_str() {
            "ok" => None,
            r => Some(format!("connect {to} from {from}: {r} after {} ms", o.elapsed_ms)),
        },
        (ProbeSpec::Stream { from, to, bytes, .. }, Outcome::Stream(o)) => {
            let (c, sv) = (o.client_error.as_str(), o.server_error.as_str());
            if c == "none" && sv == "none" && o.bytes_received >= *bytes {
                return None;
            }
            Some(format!("stream {from} ⇄ {to}: {} of {bytes} bytes; client {c}, server {sv}", o.bytes_received))
        }
        (ProbeSpec::Bind { from, addr, .. }, Outcome::Bind(o)) => match o.result.as_str() {
            "ok" => None,
            r => Some(format!("bind {addr} in {from}: {r} from {}", o.failed)),
        },
        (ProbeSpec::Udp { from, to, count, listen_in, echo, .. }, Outcome::Udp(o)) => {
            let heard_back = !*echo || o.replies >= *count;
            let all_in = listen_in.is_none() || o.received.is_some_and(|r| r >= *count);
            if heard_back && all_in && o.errors.is_empty() && o.send_errors.is_empty() {
                return None;
            }
            let errors: Vec<String> = o.errors.iter().map(|e| format!("{} from {}", e.kind, e.from)).collect();
            let mut line = format!("udp {to} from {from}: {}/{count} sent", o.sent);
            if let Some(r) = o.received {
                line.push_str(&format!(", {r} received"));
            }
            if *echo {
                line.push_str(&format!(", {} echoed back", o.replies));
            }
            match dedup_counted(&errors) {
                d if d.is_empty() => line.push_str(", no ICMP error"),
                d => line.push_str(&format!(", {}", d.join(", "))),
            }
            for (errno, n) in &o.send_errors {
                line.push_str(&format!("; {n} × {errno} sending"));
            }
            Some(line)
        }
        (ProbeSpec::Burst { from, to, count, backlog, .. }, Outcome::Burst(o)) => {
            if o.results.get("ok").copied().unwrap_or(0) >= *count && o.listen_overflows == 0 {
                return None;
            }
            let by: Vec<String> = o.results.iter().map(|(k, n)| format!("{n} {k}")).collect();
            Some(format!(
                "burst of {count} connects {from} → {to} (backlog {backlog}): {}; listen overflows +{}, listen drops +{}",
                by.join(", "),
                o.listen_overflows,
                o.listen_drops
            ))
        }
        (ProbeSpec::Dns { from, server, name, .. }, Outcome::Dns(o)) => {
            if o.queries.iter().all(|q| q.result == "ok") {
                return None;
            }
            let each: Vec<String> = o
                .queries
                .iter()
                .map(|q| match q.latency_ms {
                    Some(l) => format!("{} {} after {l} ms ({} sent)", q.qtype, q.result, q.sent),
                    None => format!("{} {} ({} sent)", q.qtype, q.result, q.sent),
                })
                .collect();
            Some(format!("dns {name} via {server} from {from}: {} in {} ms", each.join(", "), o.elapsed_ms))
        }
        // A record whose outcome is not of its spec's kind is not one the
        // runner writes; nothing to say about it.
        _ => None,
    }
}

/// `["a", "a", "b"]` → `["2 × a", "b"]`, first-seen order.
fn dedup_counted(items: &[String]) -> Vec<String> {
    let mut order: Vec<(&String, usize)> = Vec::new();
    for i in items {
        match order.iter_mut().find(|(k, _)| *k == i) {
            Some((_, n)) => *n += 1,
            None => order.push((i, 1)),
        }
    }
    order.into_iter().map(|(k, n)| if n > 1 { format!("{n} × {k}") } else { k.clone() }).collect()
}

/// Where requests were seen and their answers were not: "ARP reply on none
/// of container/eth0, host/docker0 (which saw 3 ARP requests)".
fn path(p: &ProbeRecord) -> Vec<String> {
    // kind → interface → count
    let mut seen: BTreeMap<FrameKind, BTreeMap<&str, usize>> = BTreeMap::new();
    let mut answers: Vec<(FrameKind, FrameKind)> = Vec::new();
    for (iface, w) in &p.packets {
        for f in &w.frames {
            let k = f.kind();
            *seen.entry(k).or_default().entry(iface.as_str()).or_default() += 1;
            if let Some(a) = k.answer() {
                if !answers.contains(&(k, a)) {
                    answers.push((k, a));
                }
            }
        }
    }
    let mut out = Vec::new();
    for (req, ans) in answers {
        let asked = &seen[&req];
        let answered = seen.get(&ans);
        let missing: Vec<&str> =
            asked.keys().copied().filter(|i| !answered.is_some_and(|a| a.contains_key(i))).collect();
        if missing.is_empty() {
            continue;
        }
        let n = asked.values().max().copied().unwrap_or(0);
        let (req, ans) = (req.name(), ans.name());
        match answered {
            None => out.push(format!("{n} × {req} seen on {}, no {ans} on any of them", missing.join(", "))),
            Some(a) => out.push(format!(
                "{ans} seen on {} but not on {}",
                a.iter().map(|(i, n)| format!("{i} ({n})")).collect::<Vec<_>>().join(", "),
                missing.join(", ")
            )),
        }
    }
    out
}

/// Drops worth a person's attention: on a device other than loopback,
/// largest first. Socket-level frees (no device) stay in the evidence.
fn drops(p: &ProbeRecord) -> Vec<String> {
    let mut d: Vec<&crate::sys::drops::Drop> = p
        .drops
        .iter()
        .filter(|d| !d.dev.is_empty() && d.dev != "lo")
        // The ping probe reads echo replies on a raw socket; the kernel then
        // frees its own copy as NO_SOCKET (no ping socket wants it: in
        // ping_rcv on 6.18, icmp_rcv on 6.1). Not a loss.
        .filter(|d| {
            !(p.kind() == "ping" && d.reason == "NO_SOCKET" && matches!(d.at.as_str(), "ping_rcv" | "icmp_rcv"))
        })
        .collect();
    d.sort_by_key(|x| std::cmp::Reverse(x.count));
    d.iter()
        .map(|d| {
            let why = if d.reason.is_empty() { String::new() } else { format!(": {}", d.reason) };
            let q = p
                .qdiscs
                .get(&format!("{}/{}", d.ns, d.dev))
                .filter(|_| d.reason.starts_with("QDISC") || d.at.contains("xmit"))
                .map(|q| {
                    let dq = q.direct_qlen.map(|v| format!(" direct_qlen {v}")).unwrap_or_default();
                    format!(" (root qdisc {} {}{dq})", q.kind, q.handle)
                })
                .unwrap_or_default();
            format!("{} × {} dropped on {}/{}{why} in {}{q}", d.count, d.protocol, d.ns, d.dev, d.at)
        })
        .collect()
}

/// Counters the case names that moved, and neighbours left FAILED.
fn state(p: &ProbeRecord, named: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (ns, d) in &p.counter_deltas {
        for (k, v) in d {
            if *v != 0 && named.iter().any(|n| n == &format!("{ns}: {k}")) {
                out.push(format!("{ns} {k} {v:+}"));
            }
        }
    }
    for (ns, n) in &p.neighbours {
        for e in n.iter().filter(|e| e.state == "FAILED") {
            out.push(format!("neighbour {} FAILED in {ns}", e.ip));
        }
    }
    out
}

/// The why-line of a probe, or `None` when it did what a healthy network
/// does. `named_counters` are the `"ns: Group.Field"` the case asserts on.
pub fn why(p: &ProbeRecord, named_counters: &[String]) -> Option<String> {
    let s = symptom(p)?;
    let mut parts = drops(p);
    parts.extend(path(p));
    parts.extend(state(p, named_counters));
    if parts.is_empty() {
        return Some(format!("{s}; no drop, counter or missing answer in the evidence explains it"));
    }
    Some(format!("{s} — {}", parts.join("; ")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::frames::{FrameRecord, WindowFrames};
    use crate::wire::packet::tests::{arp_request, tcp_segment};
    use crate::wire::packet::{Direction, Frame};

    /// The recorded window of `iface` holding `frames` (bytes, direction).
    fn lane(iface: &str, frames: &[(Vec<u8>, Direction)]) -> WindowFrames {
        let frames = frames.iter().map(|(b, d)| FrameRecord::of(&Frame::ethernet(0, *d, b.clone()), iface)).collect();
        WindowFrames { frames, truncated: 0 }
    }

    fn probe(kind: &str, spec: serde_json::Value, outcome: serde_json::Value) -> ProbeRecord {
        ProbeRecord::for_test(kind, spec, outcome)
    }

    #[test]
    fn the_htb_fault_reads_as_a_sentence() {
        let mut p = probe(
            "ping",
            serde_json::json!({"from": "container", "to": "172.17.0.1", "count": 3}),
            serde_json::json!({"sent": 3, "replies": 0, "rtt_ms": [], "elapsed_ms": 3000.0, "errors": [
                {"kind": "host-unreachable", "from": "172.17.0.2", "seq": 1},
                {"kind": "host-unreachable", "from": "172.17.0.2", "seq": 2}]}),
        );
        let arp = |d| (arp_request([172, 17, 0, 2], [172, 17, 0, 1]), d);
        let out = [arp(Direction::Out), arp(Direction::Out), arp(Direction::Out)];
        p.packets.insert("container/eth0".into(), lane("container/eth0", &out));
        let inn = [arp(Direction::In), arp(Direction::In), arp(Direction::In)];
        p.packets.insert("host/docker0".into(), lane("host/docker0", &inn));
        p.drops.push(crate::sys::drops::Drop {
            ns: "host".into(),
            dev: "docker0".into(),
            reason: "QDISC_DROP".into(),
            at: "__dev_queue_xmit".into(),
            protocol: "ARP".into(),
            count: 3,
            first_ns: 0,
            last_ns: 0,
        });
        p.qdiscs.insert(
            "host/docker0".into(),
            crate::sys::tc::QdiscInfo {
                kind: "htb".into(),
                handle: "1:".into(),
                direct_qlen: Some(0),
                ..Default::default()
            },
        );
        p.neighbours.insert(
            "container".into(),
            vec![crate::sys::link::Neighbour {
                ip: "172.17.0.1".parse().unwrap(),
                dev: "eth0".into(),
                state: "FAILED".into(),
                lladdr: None,
            }],
        );
        assert_eq!(
            why(&p, &[]).unwrap(),
            "ping 172.17.0.1 from container: 0/3 replies, 2 × host-unreachable from 172.17.0.2 — \
             3 × ARP dropped on host/docker0: QDISC_DROP in __dev_queue_xmit (root qdisc htb 1: direct_qlen 0); \
             3 × ARP request seen on container/eth0, host/docker0, no ARP reply on any of them; \
             neighbour 172.17.0.1 FAILED in container"
        );
    }

    #[test]
    fn a_healthy_probe_has_no_why_and_a_silent_failure_says_so() {
        let ok = probe(
            "connect",
            serde_json::json!({"from": "a", "to": "10.0.0.1:80"}),
            serde_json::json!({"result": "ok", "elapsed_ms": 0.2}),
        );
        assert_eq!(why(&ok, &[]), None);
        let mut bad = probe(
            "connect",
            serde_json::json!({"from": "a", "to": "10.0.0.1:80"}),
            serde_json::json!({"result": "timeout", "elapsed_ms": 800.0}),
        );
        assert!(why(&bad, &[]).unwrap().ends_with("no drop, counter or missing answer in the evidence explains it"));
        bad.counter_deltas.insert("host".into(), [("Ip.InAddrErrors".to_string(), 3)].into());
        let syn = (tcp_segment([10, 0, 0, 2], 5, [10, 0, 0, 1], 80, "S"), Direction::Out);
        let syn_ack = (tcp_segment([10, 0, 0, 1], 80, [10, 0, 0, 2], 5, "S."), Direction::In);
        bad.packets.insert("host/eno1".into(), lane("host/eno1", &[syn_ack, syn.clone()]));
        bad.packets.insert("host/docker0".into(), lane("host/docker0", &[syn]));
        assert_eq!(
            why(&bad, &["host: Ip.InAddrErrors".into()]).unwrap(),
            "connect 10.0.0.1:80 from a: timeout after 800 ms — TCP SYN-ACK seen on host/eno1 (1) but not on host/docker0; host Ip.InAddrErrors +3"
        );
    }
}
