//! One line that says why, built from a probe's evidence alone: what the
//! user saw, where the kernel dropped what and why, how far the packets got,
//! and the state left behind. A pure function of the record, so the same
//! line appears in the test output, `netrepro run` and the report.
//!
//! A probe gets a why-line when its outcome differs from the healthy
//! baseline's ([`change`]): it fails where the baseline's succeeded (or
//! fails otherwise), succeeds where the baseline's failed, or has the same
//! result [much slower](SLOWER_FACTOR). A probe the baseline does not run
//! gets one when it fails; a baseline probe only when one of its checks
//! failed. Only what is tied to the probe's traffic and window may explain:
//! the incident's drops ([`crate::verdict::attribution`]), frames of the
//! window, counters the case names, neighbours the window shows being
//! resolved.

use std::collections::BTreeMap;

use crate::evidence::record::{PhaseRecord, ProbeRecord};
use crate::sys::drops::Drop;
use crate::wire::kind::FrameKind;

/// "Much slower": at least this many times the baseline's time…
pub const SLOWER_FACTOR: f64 = 2.0;
/// …and at least this many ms more (so 0.2 ms against 0.1 ms is not).
pub const SLOWER_MS: f64 = 200.0;

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
            if let Some(r) = &o.rounds {
                if r.results.keys().all(|w| w == "ok") {
                    return None;
                }
                let by: Vec<String> = r.results.iter().map(|(w, n)| format!("{w} {n}")).collect();
                let lost: Vec<String> = r.lost.iter().map(|(t, n)| format!("{t} {n}")).collect();
                return Some(format!(
                    "dns {name} via {server} from {from}, {} lookups ({}): {}; never answered: {}; latency median {} ms, max {} ms",
                    r.rounds,
                    o.send,
                    by.join(", "),
                    if lost.is_empty() { "none".into() } else { lost.join(", ") },
                    r.latency_median_ms,
                    r.latency_max_ms
                ));
            }
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

/// What a healthy outcome did, in the symptom's words: `connect
/// 10.0.0.1:80 from a: ok after 1015.2 ms`.
fn success(p: &ProbeRecord) -> String {
    use crate::case::spec::ProbeSpec;
    use crate::evidence::outcome::Outcome;
    match (&p.spec, &p.outcome) {
        (ProbeSpec::Ping { from, to, count, .. }, Outcome::Ping(o)) => {
            let worst = o.rtt_ms.iter().copied().fold(0.0f64, f64::max);
            format!("ping {to} from {from}: {}/{count} replies, slowest {worst} ms", o.replies)
        }
        (ProbeSpec::Connect { from, to, .. }, Outcome::Connect(o)) => {
            format!("connect {to} from {from}: {} after {} ms", o.result, o.elapsed_ms)
        }
        (ProbeSpec::Stream { from, to, .. }, Outcome::Stream(o)) => {
            format!("stream {from} ⇄ {to}: {} bytes in {} ms", o.bytes_received, o.elapsed_ms)
        }
        _ => format!("{} {}", p.kind(), p.name),
    }
}

/// The outcome without its timing: what "the same result" compares.
fn result(p: &ProbeRecord) -> String {
    use crate::evidence::outcome::Outcome;
    match &p.outcome {
        Outcome::Ping(o) => {
            let mut kinds: Vec<&str> = o.errors.iter().map(|e| e.kind.as_str()).collect();
            kinds.sort();
            kinds.dedup();
            let errors = if kinds.is_empty() { String::new() } else { format!(", {}", kinds.join(", ")) };
            format!("{}/{} replies{errors}", o.replies, o.sent)
        }
        Outcome::Connect(o) => o.result.clone(),
        Outcome::Stream(o) => format!(
            "{} of {} bytes, client {}, server {}",
            o.bytes_received, o.bytes_sent, o.client_error, o.server_error
        ),
        // The other probes: every field but the timings.
        o => {
            let mut v = serde_json::to_value(o).unwrap_or_default();
            if let Some(m) = v.as_object_mut() {
                m.retain(|k, _| !k.ends_with("_ms"));
            }
            v.to_string()
        }
    }
}

/// The time "much slower" compares, ms: a ping's slowest reply, a
/// connect's or a stream's whole time.
fn duration_ms(p: &ProbeRecord) -> f64 {
    match &p.outcome {
        crate::evidence::outcome::Outcome::Ping(o) if !o.rtt_ms.is_empty() => {
            o.rtt_ms.iter().copied().fold(0.0f64, f64::max)
        }
        o => o.elapsed_ms(),
    }
}

/// How a probe's outcome differs from the same probe's in the baseline.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// It fails where the baseline's succeeded.
    Fails,
    /// Both fail, differently.
    FailsOtherwise,
    /// It succeeds where the baseline's failed.
    Succeeds,
    /// The same result, [`SLOWER_FACTOR`] × and [`SLOWER_MS`] more than the
    /// baseline's time (ms: this run's, the baseline's).
    Slower(f64, f64),
}

/// How `p` differs from `baseline` (the same probe in the baseline phase),
/// or `None` when it does the same in about the same time.
pub fn change(p: &ProbeRecord, baseline: &ProbeRecord) -> Option<Change> {
    let (now, then) = (symptom(p).is_some(), symptom(baseline).is_some());
    match (now, then) {
        (true, false) => return Some(Change::Fails),
        (false, true) => return Some(Change::Succeeds),
        (true, true) if result(p) != result(baseline) => return Some(Change::FailsOtherwise),
        _ => {}
    }
    if result(p) != result(baseline) {
        return None;
    }
    let (t, b) = (duration_ms(p), duration_ms(baseline));
    (t >= SLOWER_FACTOR * b && t >= b + SLOWER_MS).then_some(Change::Slower(t, b))
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

/// kind → interface → frames of that kind seen there in the window.
fn kinds_seen(p: &ProbeRecord) -> Seen<'_> {
    let mut seen: BTreeMap<FrameKind, BTreeMap<&str, usize>> = BTreeMap::new();
    for (iface, w) in &p.packets {
        for f in &w.frames {
            *seen.entry(f.kind()).or_default().entry(iface.as_str()).or_default() += 1;
        }
    }
    seen
}

/// Where requests were seen and their answers were not: "ARP reply on none
/// of container/eth0, host/docker0 (which saw 3 ARP requests)".
fn path(p: &ProbeRecord) -> Vec<String> {
    // kind → interface → count
    let seen = kinds_seen(p);
    let mut answers: Vec<(FrameKind, FrameKind)> = Vec::new();
    for w in p.packets.values() {
        for f in &w.frames {
            let k = f.kind();
            if let Some(a) = k.answer() {
                if !answers.contains(&(k, a)) {
                    answers.push((k, a));
                }
            }
        }
    }
    // Interfaces where a kind was only ever seen arriving as a broadcast or
    // multicast (a flooded ARP request at a bystander): no answer is owed
    // there, so once one was seen elsewhere their lack of it is no clue.
    let flooded_only = |kind: FrameKind, iface: &str| {
        p.packets.get(iface).is_some_and(|w| {
            w.frames.iter().filter(|f| f.kind() == kind).all(|f| {
                let group =
                    f.headers.eth.as_ref().is_some_and(|e| {
                        u8::from_str_radix(e.dst.get(..2).unwrap_or("00"), 16).is_ok_and(|b| b & 1 == 1)
                    });
                group && f.direction == crate::wire::packet::Direction::In
            })
        })
    };
    let mut out = Vec::new();
    for (req, ans) in answers {
        let asked = &seen[&req];
        let answered = seen.get(&ans);
        let missing: Vec<&str> = asked
            .keys()
            .copied()
            .filter(|i| !answered.is_some_and(|a| a.contains_key(i)))
            .filter(|i| answered.is_none() || !flooded_only(req, i))
            .collect();
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

/// Frames this run saw that the baseline's did not, or saw more often
/// (a retransmitted request): "2 × TCP SYN on container/eth0 where the
/// baseline saw 1"; "TCP SYN-ACK on external/eth0 (1), none there in the
/// baseline". Only kinds that ask or answer: plain segments, FINs and the
/// probe's closing RSTs vary from run to run.
fn path_against(p: &ProbeRecord, base: &ProbeRecord) -> Vec<String> {
    let (now, then) = (kinds_seen(p), kinds_seen(base));
    // The probe's own protocol's requests and answers, and ICMP errors;
    // ARP only for a probe whose own frames show no change (resolution is
    // where it differs).
    let own: &[FrameKind] = match &p.outcome {
        crate::evidence::outcome::Outcome::Ping(_) => &[FrameKind::EchoRequest, FrameKind::EchoReply],
        _ => &[FrameKind::TcpSyn, FrameKind::TcpSynAck],
    };
    let mut out = differing(&now, &then, own);
    out.extend(differing(&now, &then, &[FrameKind::IcmpError]));
    if out.is_empty() {
        out = differing(&now, &then, &[FrameKind::ArpRequest, FrameKind::ArpReply]);
    }
    out
}

type Seen<'a> = BTreeMap<FrameKind, BTreeMap<&'a str, usize>>;

/// Of `kinds`, those seen more often or on more interfaces than in `then`.
fn differing(now: &Seen, then: &Seen, kinds: &[FrameKind]) -> Vec<String> {
    let mut out = Vec::new();
    for (kind, lanes) in now.iter().filter(|(k, _)| kinds.contains(k)) {
        let mut more = Vec::new();
        let mut new = Vec::new();
        for (lane, n) in lanes {
            match then.get(kind).and_then(|l| l.get(lane)).copied().unwrap_or(0) {
                0 => new.push(format!("{lane} ({n})")),
                b if *n > b => more.push(format!("{n} × {} on {lane} where the baseline saw {b}", kind.name())),
                _ => {}
            }
        }
        out.extend(more);
        if !new.is_empty() {
            out.push(format!("{} seen on {}, none there in the baseline", kind.name(), new.join(", ")));
        }
    }
    out
}

/// One incident drop as a phrase: `3 × ARP dropped on host/docker0:
/// QDISC_DROP in __dev_queue_xmit (root qdisc htb 1: direct_qlen 0)`.
fn drop_phrase(p: &ProbeRecord, d: &Drop) -> String {
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
    let place = if d.dev.is_empty() { format!("in {}", d.ns) } else { format!("on {}/{}", d.ns, d.dev) };
    format!("{} × {} dropped {place}{why} in {}{q}", d.count, d.protocol, d.at)
}

/// The incident's drops (never the probe's own, never background), largest
/// first: the kernel's own word on what happened to the traffic under test.
fn drops(p: &ProbeRecord) -> Vec<String> {
    let mut d: Vec<&Drop> = crate::verdict::attribution::incident(&p.drops).collect();
    d.sort_by_key(|x| std::cmp::Reverse(x.count));
    d.iter().map(|d| drop_phrase(p, d)).collect()
}

/// The why-line of a window with no probe (the whole phase, a span of
/// steps): its unmet expectations, then the incident's drops in it and the
/// rule and named counters that moved; `None` when it met every
/// expectation and the kernel dropped nothing of the incident's in it.
pub fn why_window(w: &crate::evidence::record::WindowRecord) -> Option<String> {
    let (over, prefix) = if w.name == "phase" {
        ("over the phase".to_string(), "phase: ".to_string())
    } else {
        (format!("over span {}", w.name), format!("span {}: ", w.name))
    };
    let unmet: Vec<String> = w
        .checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| {
            format!(
                "{} expected {}, observed {}",
                c.what.strip_prefix(&prefix).unwrap_or(&c.what),
                c.expected,
                c.observed
            )
        })
        .collect();
    let mut d: Vec<&Drop> = crate::verdict::attribution::incident(&w.drops).collect();
    d.sort_by_key(|x| std::cmp::Reverse(x.count));
    let mut parts: Vec<String> = d
        .iter()
        .map(|d| {
            let why = if d.reason.is_empty() { String::new() } else { format!(": {}", d.reason) };
            let place = if d.dev.is_empty() { format!("in {}", d.ns) } else { format!("on {}/{}", d.ns, d.dev) };
            format!("{} × {} dropped {place}{why} in {}", d.count, d.protocol, d.at)
        })
        .collect();
    let named: Vec<&str> = w.checks.iter().map(|c| c.what.as_str()).collect();
    // The rules the checks name, as they name them.
    parts.extend(
        w.rules
            .iter()
            .filter(|(r, v)| **v != 0 && named.iter().any(|n| n.ends_with(&format!("rule {r}"))))
            .map(|(r, v)| format!("rule {r} {v:+}")),
    );
    for (ns, deltas) in &w.counter_deltas {
        for (k, v) in deltas {
            if *v != 0 && named.iter().any(|n| n.ends_with(&format!("{ns}: {k}"))) {
                parts.push(format!("{ns} {k} {v:+}"));
            }
        }
    }
    if unmet.is_empty() && d.is_empty() {
        return None;
    }
    let head = if unmet.is_empty() { over } else { format!("{over}: {}", unmet.join("; ")) };
    Some(if parts.is_empty() { head } else { format!("{head} — {}", parts.join("; ")) })
}

/// Counters the case names that moved, and neighbours left FAILED that the
/// window shows the kernel resolving (an ARP request for it, or an incident
/// `NEIGH_FAILED` drop on its device): never one an earlier probe left.
fn state(p: &ProbeRecord, named: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for (ns, d) in &p.counter_deltas {
        for (k, v) in d {
            if *v != 0 && named.iter().any(|n| n == &format!("{ns}: {k}")) {
                out.push(format!("{ns} {k} {v:+}"));
            }
        }
    }
    let asked = |ip: std::net::IpAddr| {
        p.packets.values().flat_map(|w| &w.frames).any(|f| {
            f.headers.arp.as_ref().is_some_and(|a| std::net::IpAddr::V4(a.target) == ip)
                || f.headers.nd.as_ref().and_then(|n| n.target).is_some_and(|t| std::net::IpAddr::V6(t) == ip)
        })
    };
    for (ns, n) in &p.neighbours {
        for e in n.iter().filter(|e| e.state == "FAILED") {
            let failed_here = crate::verdict::attribution::incident(&p.drops)
                .any(|d| &d.ns == ns && d.dev == e.dev && d.reason == "NEIGH_FAILED");
            if asked(e.ip) || failed_here {
                out.push(format!("neighbour {} FAILED in {ns}", e.ip));
            }
        }
    }
    out
}

/// What the baseline had that this run does not, or has otherwise: its
/// incident drops that did not happen, rule and named counter deltas that
/// differ.
fn gone_and_changed(p: &ProbeRecord, base: &ProbeRecord, named: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for b in crate::verdict::attribution::incident(&base.drops) {
        let now: u64 = crate::verdict::attribution::incident(&p.drops)
            .filter(|d| (&d.ns, &d.dev, &d.reason, &d.at) == (&b.ns, &b.dev, &b.reason, &b.at))
            .map(|d| d.count)
            .sum();
        match now {
            0 => out.push(format!("gone: the baseline's {}", drop_phrase(base, b))),
            n if n < b.count => out.push(format!("{n} of the baseline's {}", drop_phrase(base, b))),
            _ => {}
        }
    }
    // The rules the case names (`rules = {...}`), not every chain's policy.
    let named_rules: Vec<&str> = p.checks.iter().filter_map(|c| c.what.strip_prefix("rule ")).collect();
    for (k, d) in p.rules.iter().filter(|(k, _)| named_rules.contains(&k.as_str())) {
        if let Some(b) = base.rules.get(k).filter(|b| *b != d) {
            out.push(format!("rule {k} {d:+} (baseline {b:+})"));
        }
    }
    for (ns, d) in &p.counter_deltas {
        for n in named.iter().filter_map(|n| n.strip_prefix(&format!("{ns}: "))) {
            let (v, b) = (
                d.get(n).copied().unwrap_or(0),
                base.counter_deltas.get(ns).and_then(|c| c.get(n)).copied().unwrap_or(0),
            );
            if v != b {
                out.push(format!("{ns} {n} {v:+} (baseline {b:+})"));
            }
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

/// The why-line of `p` against the same probe in the baseline: `None` when
/// its outcome is the baseline's ([`change`]).
pub fn why_against(p: &ProbeRecord, base: &ProbeRecord, named: &[String]) -> Option<String> {
    let line = |head: String, parts: Vec<String>, nothing: &str| {
        if parts.is_empty() {
            format!("{head}; {nothing}")
        } else {
            format!("{head} — {}", parts.join("; "))
        }
    };
    match change(p, base)? {
        Change::Fails => why(p, named),
        Change::FailsOtherwise => {
            let mut parts = drops(p);
            parts.extend(path(p));
            parts.extend(state(p, named));
            parts.extend(gone_and_changed(p, base, named));
            let head = format!("{}, where the baseline's got {}", symptom(p)?, result(base));
            Some(line(head, parts, "no drop, counter or missing answer in the evidence explains it"))
        }
        Change::Succeeds => {
            let mut parts = gone_and_changed(p, base, named);
            parts.extend(path_against(p, base));
            parts.extend(drops(p));
            let head = format!("{}, where the baseline's got {}", success(p), result(base));
            Some(line(head, parts, "nothing in the probe's window tells it from the baseline's"))
        }
        Change::Slower(_, b) => {
            let mut parts = drops(p);
            parts.extend(path_against(p, base));
            parts.extend(state(p, named));
            parts.extend(gone_and_changed(p, base, named).into_iter().filter(|g| g.starts_with("rule ")));
            let head = format!("{}, {:.0}× the baseline's {b} ms", success(p), duration_ms(p) / b.max(0.001));
            Some(line(head, parts, "nothing in the probe's window explains it"))
        }
    }
}

/// `"ns: Group.Field"` of every counter the probe's checks name.
pub fn named_counters(p: &ProbeRecord) -> Vec<String> {
    p.checks.iter().filter_map(|c| c.what.strip_prefix("counter ").map(str::to_string)).collect()
}

/// Sets every probe's why-line of a case's phases, each against the same
/// probe in the baseline (the first phase, named `baseline`): see the
/// module's rules.
pub fn explain_phases(phases: &mut [PhaseRecord]) {
    let baseline: Vec<ProbeRecord> =
        phases.first().filter(|b| b.name == "baseline").map(|b| b.probes.clone()).unwrap_or_default();
    for (i, ph) in phases.iter_mut().enumerate() {
        let is_baseline = i == 0 && ph.name == "baseline";
        for p in &mut ph.probes {
            let named = named_counters(p);
            p.why = match baseline.iter().find(|b| b.name == p.name) {
                _ if is_baseline => why(p, &named).filter(|_| p.checks.iter().any(|c| !c.ok)),
                Some(b) => why_against(p, b, &named),
                None => why(p, &named),
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::frames::{FrameRecord, WindowFrames};
    use crate::sys::drops::Origin;
    use crate::wire::packet::tests::{arp_reply, arp_request, tcp_segment};
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
    fn a_flooded_request_owes_no_answer_at_a_bystander() {
        // The trial's hairpin fault: the asker got its ARP reply; the
        // request also flooded to another pod, which no reply ever crosses.
        let mut p = probe(
            "connect",
            serde_json::json!({"from": "web", "to": "10.96.0.10:80"}),
            serde_json::json!({"result": "timeout", "elapsed_ms": 800.0}),
        );
        let req = |d| (arp_request([10, 244, 0, 5], [10, 244, 0, 1]), d);
        let rep = |d| (arp_reply([10, 244, 0, 1], [10, 244, 0, 5]), d);
        p.packets.insert("web/eth0".into(), lane("web/eth0", &[req(Direction::Out), rep(Direction::In)]));
        p.packets.insert("host/cbr0".into(), lane("host/cbr0", &[req(Direction::In), rep(Direction::Out)]));
        p.packets.insert("other/eth0".into(), lane("other/eth0", &[req(Direction::In)]));
        assert!(path(&p).iter().all(|l| !l.contains("other/eth0")), "{:?}", path(&p));
        // With no reply anywhere, every interface that heard the request is named.
        p.packets.insert("web/eth0".into(), lane("web/eth0", &[req(Direction::Out)]));
        p.packets.insert("host/cbr0".into(), lane("host/cbr0", &[req(Direction::In)]));
        let lines = path(&p);
        assert!(lines.iter().any(|l| l.contains("other/eth0") && l.contains("no ARP reply")), "{lines:?}");
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
            ..Default::default()
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

    fn connect(result: &str, ms: f64) -> ProbeRecord {
        probe(
            "connect",
            serde_json::json!({"from": "container", "to": "10.2.19.80:8080"}),
            serde_json::json!({"result": result, "elapsed_ms": ms}),
        )
    }

    fn drop_of(ns: &str, dev: &str, reason: &str, at: &str, count: u64, origin: Origin) -> Drop {
        Drop {
            ns: ns.into(),
            dev: dev.into(),
            reason: reason.into(),
            at: at.into(),
            protocol: "IPv4".into(),
            count,
            origin,
            ..Default::default()
        }
    }

    #[test]
    fn a_window_says_its_unmet_expectations_then_the_incident_drops_and_named_rules() {
        use crate::evidence::record::{CheckRecord, Expected, Observed, WindowRecord};
        let rule = "b: -A INPUT -p icmp -j DROP";
        let mut w = WindowRecord {
            name: "pings".into(),
            steps: vec![],
            window_ns: (1, 2),
            counter_deltas: Default::default(),
            packet_counts: Default::default(),
            drops: vec![drop_of("b", "eth0", "NO_TX_TARGET", "br_dev_xmit", 2, Origin::Background)],
            drops_missed: 0,
            rules: [(rule.to_string(), 3), ("b: filter: -A INPUT -p icmp -j DROP".to_string(), 3)].into(),
            conntrack: Default::default(),
            checks: vec![CheckRecord {
                what: format!("span pings: rule {rule}"),
                expected: Expected::Delta { cmp: crate::case::cmp::Cmp::Eq, n: 3 },
                observed: Observed::Delta { n: 3 },
                ok: true,
                unavailable: false,
            }],
            why: None,
        };
        // All met, nothing of the incident's dropped: nothing to say.
        assert_eq!(why_window(&w), None);
        w.drops.push(drop_of("b", "eth0", "NETFILTER_DROP", "nft_do_chain", 3, Origin::Incident));
        assert_eq!(
            why_window(&w).unwrap(),
            format!("over span pings — 3 × IPv4 dropped on b/eth0: NETFILTER_DROP in nft_do_chain; rule {rule} +3")
        );
        w.checks[0].expected = Expected::Delta { cmp: crate::case::cmp::Cmp::Eq, n: 2 };
        w.checks[0].ok = false;
        assert!(why_window(&w)
            .unwrap()
            .starts_with(&format!("over span pings: rule {rule} expected delta 2, observed +3 — 3 ×")));
    }

    #[test]
    fn own_and_background_drops_never_explain_and_socket_drops_do() {
        let mut p = connect("timeout", 800.0);
        p.drops.push(drop_of("external", "", "QUEUE_PURGE", "tcp_disconnect", 1, Origin::ProbeOwn));
        p.drops.push(drop_of("host", "docker0", "NO_TX_TARGET", "br_dev_xmit", 2, Origin::Background));
        assert!(why(&p, &[]).unwrap().ends_with("no drop, counter or missing answer in the evidence explains it"));
        p.drops.push(drop_of("client", "lo", "NO_SOCKET", "tcp_v4_rcv", 1, Origin::Incident));
        assert_eq!(
            why(&p, &[]).unwrap(),
            "connect 10.2.19.80:8080 from container: timeout after 800 ms — 1 × IPv4 dropped on client/lo: NO_SOCKET in tcp_v4_rcv"
        );
    }

    #[test]
    fn a_neighbour_the_window_never_asked_for_is_not_blamed() {
        let mut p = connect("timeout", 800.0);
        p.neighbours.insert(
            "container".into(),
            vec![crate::sys::link::Neighbour {
                ip: "172.17.0.9".parse().unwrap(),
                dev: "eth0".into(),
                state: "FAILED".into(),
                lladdr: None,
            }],
        );
        assert!(!why(&p, &[]).unwrap().contains("neighbour"), "left over from an earlier probe");
        let ask = (arp_request([172, 17, 0, 2], [172, 17, 0, 9]), Direction::Out);
        p.packets.insert("container/eth0".into(), lane("container/eth0", &[ask]));
        assert!(why(&p, &[]).unwrap().contains("neighbour 172.17.0.9 FAILED in container"));
    }

    #[test]
    fn changes_against_the_baseline() {
        let base = connect("ok", 0.4);
        assert_eq!(change(&connect("ok", 150.0), &base), None, "not 200 ms more");
        assert_eq!(change(&connect("ok", 1015.0), &base), Some(Change::Slower(1015.0, 0.4)));
        assert_eq!(change(&connect("ok", 1015.0), &connect("ok", 600.0)), None, "not twice as long");
        assert_eq!(change(&connect("timeout", 800.0), &base), Some(Change::Fails));
        assert_eq!(change(&connect("ok", 0.3), &connect("timeout", 800.0)), Some(Change::Succeeds));
        assert_eq!(change(&connect("ECONNREFUSED", 0.3), &connect("timeout", 800.0)), Some(Change::FailsOtherwise));
        assert_eq!(change(&connect("timeout", 800.0), &connect("timeout", 801.0)), None);
    }

    #[test]
    fn a_slower_success_names_the_drop_and_the_retransmission() {
        let base_syn = (tcp_segment([172, 17, 0, 2], 5, [10, 2, 19, 80], 8080, "S"), Direction::Out);
        let mut base = connect("ok", 0.4);
        base.packets.insert("container/eth0".into(), lane("container/eth0", std::slice::from_ref(&base_syn)));
        let mut slow = connect("ok", 1015.2);
        slow.packets.insert("container/eth0".into(), lane("container/eth0", &[base_syn.clone(), base_syn]));
        slow.drops.push(drop_of("host", "", "NETFILTER_DROP", "nf_hook_slow", 1, Origin::Incident));
        slow.drops.push(drop_of("host", "", "QUEUE_PURGE", "skb_queue_purge_reason", 1, Origin::ProbeOwn));
        assert_eq!(
            why_against(&slow, &base, &[]).unwrap(),
            "connect 10.2.19.80:8080 from container: ok after 1015.2 ms, 2538× the baseline's 0.4 ms — \
             1 × IPv4 dropped in host: NETFILTER_DROP in nf_hook_slow; 2 × TCP SYN on container/eth0 where the baseline saw 1"
        );
        assert_eq!(why_against(&connect("ok", 0.5), &base, &[]), None);
    }

    #[test]
    fn a_success_where_the_baseline_failed_says_what_is_gone() {
        let mut base = connect("timeout", 800.0);
        base.drops.push(drop_of("host", "", "NETFILTER_DROP", "nf_hook_slow", 1, Origin::Incident));
        base.rules.insert("host: -A INPUT -p tcp -m tcp --dport 8080 -j DROP".into(), 1);
        let mut ok = connect("ok", 0.3);
        ok.rules.insert("host: -A INPUT -p tcp -m tcp --dport 8080 -j DROP".into(), 0);
        // Rules the case names are compared; the others (policies) are not.
        ok.rules.insert("host: policy filter INPUT".into(), 9);
        base.rules.insert("host: policy filter INPUT".into(), 2);
        ok.checks.push(crate::evidence::record::CheckRecord {
            what: "rule host: -A INPUT -p tcp -m tcp --dport 8080 -j DROP".into(),
            expected: crate::evidence::record::Expected::Delta { cmp: crate::case::cmp::Cmp::Eq, n: 0 },
            observed: crate::evidence::record::Observed::Delta { n: 0 },
            ok: true,
            unavailable: false,
        });
        let syn_ack = (tcp_segment([172, 17, 0, 2], 8080, [10, 2, 19, 80], 5, "S."), Direction::Out);
        ok.packets.insert("container/eth0".into(), lane("container/eth0", &[syn_ack]));
        assert_eq!(
            why_against(&ok, &base, &[]).unwrap(),
            "connect 10.2.19.80:8080 from container: ok after 0.3 ms, where the baseline's got timeout — \
             gone: the baseline's 1 × IPv4 dropped in host: NETFILTER_DROP in nf_hook_slow; \
             rule host: -A INPUT -p tcp -m tcp --dport 8080 -j DROP +0 (baseline +1); \
             TCP SYN-ACK seen on container/eth0 (1), none there in the baseline"
        );
    }

    #[test]
    fn phases_are_explained_against_the_baseline() {
        let phase = |name: &str, p: ProbeRecord| crate::evidence::record::PhaseRecord {
            probes: vec![p],
            ..crate::evidence::record::PhaseRecord::new(name)
        };
        let failed_check = crate::evidence::record::CheckRecord {
            what: "result".into(),
            expected: crate::evidence::record::Expected::word("ok"),
            observed: crate::evidence::record::Observed::word("timeout"),
            ok: false,
            unavailable: false,
        };
        // A baseline that fails by design (the isolation works) has no why-line…
        let mut phases = vec![
            phase("baseline", connect("timeout", 800.0)),
            phase("fault", connect("ok", 0.3)),
            phase("fix", connect("timeout", 800.0)),
        ];
        explain_phases(&mut phases);
        let whys: Vec<Option<&str>> = phases.iter().map(|p| p.probes[0].why.as_deref()).collect();
        assert_eq!(whys[0], None);
        assert!(whys[1]
            .unwrap()
            .starts_with("connect 10.2.19.80:8080 from container: ok after 0.3 ms, where the baseline's got timeout"));
        assert_eq!(whys[2], None, "the fix does what the baseline did");
        // …unless one of its checks failed.
        phases[0].probes[0].checks.push(failed_check);
        explain_phases(&mut phases);
        assert!(phases[0].probes[0]
            .why
            .as_deref()
            .unwrap()
            .starts_with("connect 10.2.19.80:8080 from container: timeout"));
    }
}
