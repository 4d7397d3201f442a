//! Expectations against a probe's record: pure functions of the typed
//! expectation ([`crate::case::expect`]) and the evidence the witnesses
//! recorded ([`ProbeRecord`]), one file per kind of evidence, so every
//! check's wording and verdict is testable without a kernel and can be
//! re-judged from `evidence.json` alone.

mod actors;
mod conntrack;
mod counters;
mod drops;
mod links;
mod neighbours;
mod outcome;
mod packets;
mod qdisc;
mod routes;
mod rules;

use crate::case::plan::Check;
use crate::case::spec::Window;
use crate::evidence::record::{CheckRecord, Expected, Observed, ProbeRecord};
use crate::sys::drops::Support;

/// `expect_actors` of a phase against its actors' records.
pub fn actors(
    want: &[crate::case::expect::ActorExp],
    got: &[crate::evidence::record::ActorRecord],
) -> Vec<CheckRecord> {
    actors::judge(want, got)
}

/// Collects a check's records: `pass`/`fail` ones in order, then the ones
/// the kernel cannot show (not available), so failures come first in reports.
#[derive(Default)]
pub struct Judged {
    checks: Vec<CheckRecord>,
    unavailable: Vec<CheckRecord>,
}

impl Judged {
    /// One expectation: what, expected, observed, and whether it holds.
    pub fn add(&mut self, what: String, expected: Expected, observed: Observed, ok: bool) {
        self.checks.push(CheckRecord { what, expected, observed, ok, unavailable: false });
    }

    /// One expectation this kernel (or this run) cannot show: neither a pass
    /// nor a fail, and said so with `why`.
    pub fn unavailable(&mut self, what: String, expected: Expected, why: String) {
        let observed = Observed::Missing { why };
        self.unavailable.push(CheckRecord { what, expected, observed, ok: true, unavailable: true });
    }
}

/// One record per expectation of `check` against `rec`. `window` is the
/// `elapsed_ms` window in force (a derived one resolved on this kernel);
/// `support` what this kernel's drop monitor can show.
pub fn evaluate(check: &Check, rec: &ProbeRecord, window: Option<&Window>, support: &Support) -> Vec<CheckRecord> {
    let mut j = Judged::default();
    outcome::judge(&check.outcome, window, rec, &mut j);
    counters::judge(&check.counters, rec, &mut j);
    packets::judge(&check.packets, rec, &mut j);
    qdisc::judge(&check.qdiscs, rec, &mut j);
    links::judge(&check.links, rec, &mut j);
    rules::judge(&check.rules, rec, &mut j);
    conntrack::judge(&check.conntrack, rec, &mut j);
    neighbours::judge(&check.neighbours, rec, &mut j);
    routes::judge(&check.routes, rec, &mut j);
    drops::judge(&check.drops, rec, support, &mut j);
    j.checks.extend(j.unavailable);
    j.checks
}

/// One record per expectation of a check over a window with no probe (the
/// whole phase, a span of steps): the kinds such a window has (counters,
/// packets, rules, conntrack, drops), no outcome.
pub fn evaluate_window(check: &Check, rec: &ProbeRecord, support: &Support) -> Vec<CheckRecord> {
    let mut j = Judged::default();
    counters::judge(&check.counters, rec, &mut j);
    packets::judge(&check.packets, rec, &mut j);
    rules::judge(&check.rules, rec, &mut j);
    conntrack::judge(&check.conntrack, rec, &mut j);
    drops::judge(&check.drops, rec, support, &mut j);
    j.checks.extend(j.unavailable);
    j.checks
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::cmp::Cmp;
    use crate::evidence::outcome::Outcome;
    use crate::sys::counters::Counters;
    use crate::sys::drops::Drop;

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

    fn run(c: &Check, outcome: Outcome, deltas: Counters, packets: &[(&str, i64)]) -> Vec<CheckRecord> {
        run_with_drops(c, outcome, deltas, packets, &[], &Support::NoReasons("test".into()), 0)
    }

    /// The record the witnesses would leave: counter deltas in `a` (whose
    /// kernel has Ip.InAddrErrors but nothing else asked for), `packets`
    /// counts by key, the drops seen and missed.
    fn run_with_drops(
        c: &Check,
        outcome: Outcome,
        deltas: Counters,
        packets: &[(&str, i64)],
        drops: &[Drop],
        drop_support: &Support,
        drops_missed: u64,
    ) -> Vec<CheckRecord> {
        let spec = serde_json::json!({"kind": "ping", "from": "a", "to": "10.0.0.2"});
        let mut rec = ProbeRecord::new("ping", serde_json::from_value(spec).unwrap(), outcome, (0, 1));
        rec.counter_deltas.insert("a".into(), deltas);
        for e in &c.counters {
            if e.key != "Ip.InAddrErrors" {
                rec.counters_absent.entry(e.ns.clone()).or_default().push(e.key.clone());
            }
        }
        rec.packet_counts = packets.iter().map(|(k, n)| (k.to_string(), *n)).collect();
        rec.drops = drops.to_vec();
        rec.drops_missed = drops_missed;
        evaluate(c, &rec, None, drop_support)
    }

    fn ping_outcome(replies: u32) -> Outcome {
        Outcome::Ping(crate::evidence::outcome::PingOutcome {
            sent: 3,
            replies,
            errors: vec![],
            rtt_ms: vec![],
            elapsed_ms: 3000.0,
            id: 7,
            send_errors: Default::default(),
        })
    }

    #[test]
    fn each_expectation_is_one_record_with_expected_and_observed() {
        let c = check("replies = 0\nicmp_errors = []\ncounters = { \"a: Ip.InAddrErrors\" = 3 }\npackets = { \"b/eth0: icmp echo-request\" = 1 }");
        let outcome = ping_outcome(0);
        let packets = [("b/eth0: icmp echo-request", 1)];
        let r = run(&c, outcome, Counters::from([("Ip.InAddrErrors".to_string(), 3)]), &packets);
        assert_eq!(r.len(), 4);
        assert!(r.iter().all(|c| c.ok), "{r:#?}");
        assert_eq!(r[2].what, "counter a: Ip.InAddrErrors");
        assert_eq!(
            (&r[2].expected, &r[2].observed),
            (&Expected::Delta { cmp: Cmp::Eq, n: 3 }, &Observed::Delta { n: 3 })
        );
        assert_eq!((r[2].expected.to_string(), r[2].observed.to_string()), ("delta 3".into(), "+3".into()));
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
            let r = run_with_drops(&c, ping_outcome(0), Counters::new(), &[], drops, &support, missed);
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
        let r = run(&c, outcome, Counters::new(), &[]);
        let failed: Vec<_> = r.iter().filter(|c| !c.ok).map(|c| (c.what.as_str(), c.observed.to_string())).collect();
        assert_eq!(
            failed,
            vec![
                ("replies", "1".to_string()),
                ("icmp_errors", "[]".to_string()),
                ("counter a: TcpExt.NoSuch", "no such counter in a (kernel does not have it?)".to_string()),
            ]
        );
    }
}
