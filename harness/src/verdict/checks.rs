//! Expectations against what a probe's window showed: a pure function, so
//! every check's wording and verdict is testable without a kernel.

use std::collections::BTreeMap;

use crate::case::plan::Check;
use crate::case::spec::Window;
use crate::evidence::outcome::Outcome;
use crate::evidence::record::{CheckRecord, DerivedWindow};
use crate::sys::counters::Counters;
use crate::sys::drops::{Drop, Origin, Support};
use crate::sys::link::Neighbour;
use crate::sys::tc::QdiscInfo;
use crate::wire::packet::{Frame, Vars};

/// Everything a probe's window showed, as the runner gathered it.
pub struct Observed<'a> {
    pub outcome: &'a Outcome,
    /// The `elapsed_ms` window in force (derived ones resolved).
    pub window: Option<&'a Window>,
    pub derived_window: Option<&'a DerivedWindow>,
    pub counter_deltas: &'a BTreeMap<String, Counters>,
    /// To tell a counter that did not move from one the kernel lacks.
    pub counters_after: &'a BTreeMap<String, Counters>,
    pub frames: &'a BTreeMap<String, Vec<Frame>>,
    pub vars: &'a Vars,
    pub qdiscs: &'a BTreeMap<String, QdiscInfo>,
    pub qdisc_drops: &'a BTreeMap<String, i64>,
    pub links: &'a BTreeMap<String, BTreeMap<String, u64>>,
    pub rules: &'a BTreeMap<String, i64>,
    pub conntrack: &'a BTreeMap<String, Vec<String>>,
    pub neighbours: &'a BTreeMap<String, Vec<Neighbour>>,
    /// The kernel's drops in the case's namespaces during the window.
    pub drops: &'a [Drop],
    pub drop_support: &'a Support,
    /// Drops the kernel kept from the monitor during the window.
    pub drops_missed: u64,
}

/// One record per expectation of `check`, expected vs observed.
pub fn evaluate(check: &Check, o: &Observed) -> Vec<CheckRecord> {
    let x = &check.expect;
    let mut checks = Vec::new();
    let mut na = Vec::new();
    let mut add = |what: String, expected: String, observed: String, ok: bool| {
        checks.push(CheckRecord { what, expected, observed, ok, unavailable: false })
    };
    // The loader ties each outcome key to its probe kind; a record where
    // they disagree fails with what it had instead of guessing.
    let kind = o.outcome.kind();
    let (ping, connect, stream) = match o.outcome {
        Outcome::Ping(p) => (Some(p), None, None),
        Outcome::Connect(c) => (None, Some(c), None),
        Outcome::Stream(s) => (None, None, Some(s)),
    };
    let absent = |what: &str| format!("no {what} in a {kind} probe's outcome");
    if let Some(c) = x.replies {
        match ping {
            Some(p) => add("replies".into(), c.to_string(), p.replies.to_string(), c.holds(p.replies.into())),
            None => add("replies".into(), c.to_string(), absent("replies"), false),
        }
    }
    if let Some(want) = &x.icmp_errors {
        let mut got: Vec<String> =
            ping.into_iter().flat_map(|p| &p.errors).map(|e| format!("{} from {}", e.kind, e.from)).collect();
        got.sort();
        got.dedup();
        let mut w = want.clone();
        w.sort();
        w.dedup();
        add("icmp_errors".into(), format!("{w:?}"), format!("{got:?}"), ping.is_some() && got == w);
    }
    if let Some(r) = &x.result {
        match connect {
            Some(c) => {
                add("result".into(), r.clone(), format!("{} after {} ms", c.result, c.elapsed_ms), &c.result == r)
            }
            None => add("result".into(), r.clone(), absent("result"), false),
        }
    }
    if let Some(w) = o.window {
        let got = o.outcome.elapsed_ms();
        let why = match o.derived_window {
            Some(b) => {
                format!(" (from {}: ({} + {}) x {} ms)", b.interface, b.mcast_solicit, b.app_solicit, b.retrans_time_ms)
            }
            None => String::new(),
        };
        add("elapsed_ms".into(), format!("{w}{why}"), format!("{got} ms"), w.holds(got));
    }
    if let Some(c) = x.bytes_received {
        match stream {
            Some(s) => {
                let got = i64::try_from(s.bytes_received).unwrap_or(i64::MAX);
                add("bytes_received".into(), c.to_string(), got.to_string(), c.holds(got))
            }
            None => add("bytes_received".into(), c.to_string(), absent("bytes_received"), false),
        }
    }
    for (key, want) in [("client_error", &x.client_error), ("server_error", &x.server_error)] {
        if let Some(w) = want {
            let got = stream.map(|s| if key == "client_error" { &s.client_error } else { &s.server_error });
            match got {
                Some(g) => add(key.into(), w.clone(), g.clone(), g == w),
                None => add(key.into(), w.clone(), absent(key), false),
            }
        }
    }
    for c in &check.counters {
        let got = o.counter_deltas.get(&c.ns).and_then(|d| d.get(&c.key)).copied().unwrap_or(0);
        let known = o.counters_after.get(&c.ns).is_some_and(|a| a.contains_key(&c.key));
        let observed =
            if known { format!("{got:+}") } else { format!("no such counter in {} (kernel does not have it?)", c.ns) };
        add(
            format!("counter {}: {}", c.ns, c.key),
            format!("delta {}", c.count),
            observed,
            known && c.count.holds(got),
        );
    }
    for p in &check.packets {
        let label = p.at.to_string();
        let got =
            o.frames.get(&label).map(|fs| fs.iter().filter(|f| p.matcher.matches_with(f, o.vars)).count()).unwrap_or(0)
                as i64;
        add(format!("packets {label}: {}", p.matcher.text()), p.count.to_string(), got.to_string(), p.count.holds(got));
    }
    for (k, q) in &x.qdisc {
        let got = &o.qdiscs[k];
        if let Some(kind) = &q.kind {
            add(format!("qdisc {k}: kind"), kind.clone(), got.kind.clone(), &got.kind == kind);
        }
        if let Some(d) = q.direct_qlen {
            let obs = got.direct_qlen.map(|v| v.to_string()).unwrap_or_else(|| "none reported".into());
            add(format!("qdisc {k}: direct_qlen"), d.to_string(), obs, got.direct_qlen == Some(d));
        }
        if let Some(d) = &q.default_class {
            let obs = got.default_class.clone().unwrap_or_else(|| "none reported".into());
            add(format!("qdisc {k}: default_class"), d.clone(), obs.clone(), &obs == d);
        }
        if let Some(c) = q.drops {
            let got = o.qdisc_drops[k];
            add(format!("qdisc {k}: drops"), format!("delta {c}"), format!("{got:+}"), c.holds(got));
        }
    }
    for (k, l) in &x.links {
        let got = &o.links[k];
        for (name, want) in [("tx_queue_len", l.tx_queue_len), ("mtu", l.mtu)] {
            if let Some(w) = want {
                let obs = got.get(name).copied();
                let shown = obs.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
                add(format!("link {k}: {name}"), w.to_string(), shown, obs == Some(w as u64));
            }
        }
    }
    for (k, c) in &x.rules {
        let (ns, rule) = k.split_once(':').map(|(n, r)| (n.trim(), r.trim())).unwrap_or_default();
        match o.rules.get(&format!("{ns}: {rule}")) {
            Some(d) => add(format!("rule {k}"), format!("delta {c}"), format!("{d:+}"), c.holds(*d)),
            None => add(format!("rule {k}"), format!("delta {c}"), "no such rule in iptables-save -c".into(), false),
        }
    }
    for (k, c) in &x.conntrack {
        let (ns, words) = k.split_once(':').map(|(n, w)| (n.trim(), w)).unwrap_or_default();
        let words: Vec<&str> = words.split_whitespace().collect();
        let got = o.conntrack[ns].iter().filter(|l| words.iter().all(|w| l.contains(w))).count() as i64;
        add(format!("conntrack {k}"), c.to_string(), got.to_string(), c.holds(got));
    }
    for n in &check.neighbours {
        let entry = o.neighbours.get(&n.ns).and_then(|v| v.iter().find(|e| e.ip == n.ip));
        let got = entry.map(|e| e.state.clone()).unwrap_or_else(|| "ABSENT".into());
        add(format!("neighbour {}: {}", n.ns, n.ip), n.state.clone(), got.clone(), got == n.state);
    }
    for d in &check.drops {
        let at = match &d.dev {
            Some(dev) => format!("{}/{dev}", d.ns),
            None => d.ns.clone(),
        };
        let what = format!("drops {at}: {}", d.reason);
        let expected = d.count.to_string();
        match o.drop_support {
            Support::Reasons(known) if !known.contains(&d.reason) => {
                add(what, expected, format!("this kernel has no drop reason {}", d.reason), false)
            }
            Support::Reasons(_) => {
                let (hits, others): (Vec<&Drop>, Vec<&Drop>) = o
                    .drops
                    .iter()
                    .filter(|x| x.ns == d.ns && x.reason == d.reason && d.dev.as_ref().is_none_or(|dev| &x.dev == dev))
                    // Only the incident's drops count (verdict::attribution).
                    .partition(|x| x.origin == Origin::Incident);
                let got: u64 = hits.iter().map(|x| x.count).sum();
                let mut places: Vec<String> = hits.iter().map(|x| format!("{} in {}", x.protocol, x.at)).collect();
                places.dedup();
                let mut shown =
                    if places.is_empty() { got.to_string() } else { format!("{got} ({})", places.join(", ")) };
                for x in others {
                    shown += &format!("; not counted: {} × {} in {} ({})", x.count, x.protocol, x.at, x.origin.word());
                }
                let m = o.drops_missed;
                if !d.count.holds(got as i64) && m > 0 && (1..=m.min(10_000)).any(|k| d.count.holds((got + k) as i64)) {
                    // Short by no more than the kernel kept from the monitor:
                    // the evidence is incomplete, not a failure nor a pass.
                    na.push(CheckRecord {
                        what,
                        expected,
                        observed: format!("not available: {shown} counted, and the kernel skipped the monitor {m} time(s) during this probe (a drop in a softirq that interrupted it on the same CPU: recursion_misses); the counters carry the evidence"),
                        ok: true,
                        unavailable: true,
                    });
                } else {
                    add(what, expected, shown, d.count.holds(got as i64))
                }
            }
            Support::NoReasons(why) | Support::NotPermitted(why) => na.push(CheckRecord {
                what,
                expected,
                observed: format!("not available: {why}"),
                ok: true,
                unavailable: true,
            }),
            Support::Broken(why) => add(what, expected, format!("drop monitor failed: {why}"), false),
        }
    }
    checks.extend(na);
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = "description = \"d\"\n[[namespace]]\nname = \"a\"\n[[namespace]]\nname = \"b\"\n\
        [[veth]]\na = { ns = \"a\", name = \"eth0\", addresses = [\"10.0.0.1/24\"] }\nb = { ns = \"b\", name = \"eth0\", addresses = [\"10.0.0.2/24\"] }\n";

    fn check(expect: &str) -> Check {
        let case = format!(
            "id = \"t\"\ntitle = \"t\"\nurls = [\"https://example.org/issue\"]\nsymptom = \"s\"\nfix = \"f\"\nfixture = \"f\"\ncapture = [\"b/eth0\"]\n\
             [probes]\nping = {{ kind = \"ping\", from = \"a\", to = \"10.0.0.2\" }}\n[[phase]]\nname = \"baseline\"\n[phase.expect.ping]\n{expect}\n"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("f.toml"), FIXTURE).unwrap();
        std::fs::write(dir.path().join("t.toml"), case).unwrap();
        let plan = crate::case::plan::load(&dir.path().join("t.toml"), dir.path()).unwrap();
        plan.phases[0].checks[0].clone()
    }

    fn run(c: &Check, outcome: Outcome, deltas: Counters, frames: Vec<Frame>) -> Vec<CheckRecord> {
        run_with_drops(c, outcome, deltas, frames, &[], &Support::NoReasons("test".into()), 0)
    }

    fn run_with_drops(
        c: &Check,
        outcome: Outcome,
        deltas: Counters,
        frames: Vec<Frame>,
        drops: &[Drop],
        drop_support: &Support,
        drops_missed: u64,
    ) -> Vec<CheckRecord> {
        let after = BTreeMap::from([("a".to_string(), Counters::from([("Ip.InAddrErrors".to_string(), 9)]))]);
        let o = Observed {
            outcome: &outcome,
            window: None,
            derived_window: None,
            counter_deltas: &BTreeMap::from([("a".to_string(), deltas)]),
            counters_after: &after,
            frames: &BTreeMap::from([("b/eth0".to_string(), frames)]),
            vars: &Vars::new(),
            qdiscs: &BTreeMap::new(),
            qdisc_drops: &BTreeMap::new(),
            links: &BTreeMap::new(),
            rules: &BTreeMap::new(),
            conntrack: &BTreeMap::new(),
            neighbours: &BTreeMap::new(),
            drops,
            drop_support,
            drops_missed,
        };
        evaluate(c, &o)
    }

    fn ping_outcome(replies: u32) -> Outcome {
        Outcome::Ping(crate::evidence::outcome::PingOutcome {
            sent: 3,
            replies,
            errors: vec![],
            rtt_ms: vec![],
            elapsed_ms: 3000.0,
            id: 7,
        })
    }

    #[test]
    fn each_expectation_is_one_record_with_expected_and_observed() {
        let c = check("replies = 0\nicmp_errors = []\ncounters = { \"a: Ip.InAddrErrors\" = 3 }\npackets = { \"b/eth0: icmp echo-request\" = 1 }");
        let outcome = ping_outcome(0);
        let req = crate::wire::packet::tests::icmp_echo([10, 0, 0, 1], [10, 0, 0, 2], false);
        let frames = vec![Frame::ethernet(0, crate::wire::packet::Direction::In, req)];
        let r = run(&c, outcome, Counters::from([("Ip.InAddrErrors".to_string(), 3)]), frames);
        assert_eq!(r.len(), 4);
        assert!(r.iter().all(|c| c.ok), "{r:#?}");
        assert_eq!(r[2].what, "counter a: Ip.InAddrErrors");
        assert_eq!((r[2].expected.as_str(), r[2].observed.as_str()), ("delta 3", "+3"));
    }

    #[test]
    fn a_drop_shortfall_the_kernel_kept_from_the_monitor_is_no_evidence() {
        let c = check("drops = { \"a/eth0: NEIGH_FAILED\" = 3 }");
        let seen = |count: u64| Drop {
            ns: "a".into(),
            dev: "eth0".into(),
            reason: "NEIGH_FAILED".into(),
            at: "neigh_invalidate".into(),
            protocol: "IPv4".into(),
            count,
            first_ns: 0,
            last_ns: 0,
            ..Default::default()
        };
        let support = Support::Reasons(["NEIGH_FAILED".to_string()].into());
        let judge = |drops: &[Drop], missed: u64| {
            let r = run_with_drops(&c, ping_outcome(0), Counters::new(), vec![], drops, &support, missed);
            (r[0].ok, r[0].unavailable)
        };
        assert_eq!(judge(&[seen(3)], 0), (true, false));
        assert_eq!(judge(&[seen(2)], 0), (false, false), "short, nothing missed: a failure");
        assert_eq!(judge(&[seen(2)], 1), (true, true), "short by what was missed: not available");
        assert_eq!(judge(&[], 2), (false, false), "short by more than was missed: a failure");
        assert_eq!(judge(&[seen(4)], 5), (false, false), "too many is a failure whatever was missed");
    }

    #[test]
    fn unmet_and_unknown_are_failures_that_say_why() {
        let c = check("replies = 3\ncounters = { \"a: Ip.InAddrErrors\" = 0, \"a: TcpExt.NoSuch\" = 0 }\nicmp_errors = [\"host-unreachable from 10.0.0.1\"]");
        let outcome = ping_outcome(1);
        let r = run(&c, outcome, Counters::new(), vec![]);
        let failed: Vec<_> = r.iter().filter(|c| !c.ok).map(|c| (c.what.as_str(), c.observed.as_str())).collect();
        assert_eq!(
            failed,
            vec![
                ("replies", "1"),
                ("icmp_errors", "[]"),
                ("counter a: TcpExt.NoSuch", "no such counter in a (kernel does not have it?)"),
            ]
        );
    }
}
