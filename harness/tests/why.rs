//! Why-lines for outcomes that are not failures: a probe that succeeds but
//! about a second slower than the baseline's, and one that succeeds where
//! the baseline's (rightly) failed. Both are real cases run on the kernel,
//! on the docker-bridge fixture; the why-line must name the cause from the
//! evidence alone, and `run` prints exactly the why-lines of the phases
//! whose outcome differs from the baseline's.

mod common;

use common::Need;

use netrepro::app::suite;
use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::evidence::record::CaseRecord;
use netrepro::run::runner;

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(a_connect_a_second_slower_names_the_dropped_syn).needs(Need::Namespaces),
        common::test!(a_connect_that_succeeds_where_it_should_fail_says_what_is_gone).needs(Need::Namespaces),
    ])
}

fn run(id: &str, text: &str) -> CaseRecord {
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let case = dir.path().join(format!("{id}.toml"));
    std::fs::write(&case, text).unwrap();
    let p = plan::load(&case, &suite::fixtures_dir()).unwrap_or_else(|e| panic!("{e}"));
    let (release, version) = Version::running().unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, root.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    rec
}

fn why<'a>(rec: &'a CaseRecord, phase: &str) -> Option<&'a str> {
    rec.phases.iter().find(|p| p.name == phase).unwrap().probes[0].why.as_deref()
}

/// The first SYN of every connection dropped (`-m statistic --mode nth`):
/// the connect succeeds on the retransmission, one initial RTO (1 s,
/// RFC 6298) later.
const FIRST_SYN: &str = r#"
id = "first-syn-dropped"
title = "The first SYN of a connection is dropped: connects succeed, a second late"
urls = ["https://example.org/netrepro-first-syn"]
symptom = "Every new connection to the service takes just over a second; once up, it is fast."
fix = "Remove the rule (here: a rate-limit that drops every other SYN)."
fixture = "docker-bridge"
requires = ["iptables"]
capture = ["container/eth0", "external/eth0"]

[probes]
connect = { kind = "connect", from = "container", to = "10.2.19.80:8080", listen_in = "external", timeout_ms = 3000 }

[[phase]]
name = "baseline"
[phase.expect.connect]
result = "ok"
elapsed_ms = { min = 0, max = 500 }

[[phase]]
name = "fault"
steps = [{ sh = { ns = "host", run = "iptables -I FORWARD -p tcp --syn -m statistic --mode nth --every 2 --packet 0 -j DROP" } }]
[phase.expect.connect]
result = "ok"
elapsed_ms = { min = 900, max = 2900 }
drops = { "host: NETFILTER_DROP" = 1 }
packets = { "container/eth0: tcp syn out" = 2, "external/eth0: tcp syn in" = 1 }
"#;

fn a_connect_a_second_slower_names_the_dropped_syn() {
    let rec = run("first-syn-dropped", FIRST_SYN);
    assert_eq!(why(&rec, "baseline"), None, "the baseline is the reference");
    let w = why(&rec, "fault").expect("a why-line for the slower fault");
    assert!(w.starts_with("connect 10.2.19.80:8080 from container: ok after "), "{w}");
    assert!(w.contains("× the baseline's "), "{w}");
    assert!(w.contains("dropped") && w.contains("NETFILTER_DROP in "), "names the drop: {w}");
    assert!(w.contains("2 × TCP SYN on container/eth0 where the baseline saw 1"), "names the retransmission: {w}");
    // The dropped SYN is drawn on its frame: the first SYN on container/eth0.
    let fault = &rec.phases[1].probes[0];
    let d = fault.drops.iter().find(|d| d.reason == "NETFILTER_DROP").unwrap();
    if let Some(pk) = d.packets.first() {
        let tie = pk.frame.as_ref().expect("tied to its frame");
        let first_syn = fault.packets["container/eth0"].frames.iter().find(|f| f.headers.tcp.is_some()).unwrap();
        assert_eq!((tie.iface.as_str(), tie.pcap_frame), ("container/eth0", first_syn.pcap_frame));
    }
    let lines = rec.why_lines();
    assert_eq!(lines.len(), 1, "{lines:#?}");
    assert!(lines[0].starts_with("fault connect: connect"), "{lines:#?}");
}

/// "Docker bypasses the firewall": the host drops port 8080 from its uplink
/// in INPUT; once a container publishes 8080, DNAT in PREROUTING sends the
/// connection through FORWARD instead, and it succeeds.
const BYPASS: &str = r#"
id = "published-port-bypasses-input"
title = "A port published by DNAT bypasses the host's INPUT drop rule"
urls = ["https://github.com/moby/moby/issues/4737"]
symptom = "The host firewall drops port 8080 from outside, yet after a container publishes 8080 anyone can connect."
fix = "Filter published ports in FORWARD (Docker's DOCKER-USER chain), not INPUT."
fixture = "docker-bridge"
requires = ["iptables"]
capture = ["host/eno1", "container/eth0"]
setup = [{ sh = { ns = "host", run = "iptables -A INPUT -i eno1 -p tcp --dport 8080 -j DROP" } }]

[probes]
connect = { kind = "connect", from = "external", to = "10.2.19.78:8080", listen_in = "container", listen_on = "172.17.0.2:8080", timeout_ms = 400 }

[[phase]]
name = "baseline"
[phase.expect.connect]
result = "timeout"
rules = { "host: -A INPUT -i eno1 -p tcp -m tcp --dport 8080 -j DROP" = 1 }

[[phase]]
name = "fault"
steps = [{ sh = { ns = "host", run = "iptables -t nat -A PREROUTING -i eno1 -p tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:8080" } }]
[phase.expect.connect]
result = "ok"
rules = { "host: -A INPUT -i eno1 -p tcp -m tcp --dport 8080 -j DROP" = 0 }
packets = { "container/eth0: tcp syn in" = 1 }
"#;

fn a_connect_that_succeeds_where_it_should_fail_says_what_is_gone() {
    let rec = run("published-port-bypasses-input", BYPASS);
    assert_eq!(why(&rec, "baseline"), None, "a baseline that fails by design is the reference, not a symptom");
    let w = why(&rec, "fault").expect("a why-line for a success where the baseline failed");
    assert!(
        w.starts_with("connect 10.2.19.78:8080 from external: ok after ")
            && w.contains("where the baseline's got timeout"),
        "{w}"
    );
    assert!(w.contains("rule host: -A INPUT -i eno1 -p tcp -m tcp --dport 8080 -j DROP +0 (baseline +1)"), "{w}");
    assert!(w.contains("TCP SYN seen on container/eth0 (1), none there in the baseline"), "the new path: {w}");
    if matches!(netrepro::sys::drops::support(), netrepro::sys::drops::Support::Reasons(_)) {
        assert!(w.contains("the baseline's 1 × IPv4 dropped on host/eno1: NETFILTER_DROP in "), "{w}");
    }
}
