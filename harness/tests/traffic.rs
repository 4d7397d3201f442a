//! The bind, udp and burst probes and connect from a given source, on the
//! running kernel: each outcome as the kernel gives it, checked through the
//! case's own expectations.

mod common;

use common::Need;

use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::evidence::outcome::Outcome;
use netrepro::run::runner;

const FIXTURE: &str = r#"
description = "Two hosts on one link, IPv4 and IPv6 (no DAD)."

[[namespace]]
name = "a"
sysctls = { "net.ipv6.conf.all.accept_dad" = 0, "net.ipv6.conf.default.accept_dad" = 0 }

[[namespace]]
name = "b"
sysctls = { "net.ipv6.conf.all.accept_dad" = 0, "net.ipv6.conf.default.accept_dad" = 0 }

[[veth]]
a = { ns = "a", name = "eth0", addresses = ["10.0.0.1/24", "fd00::1/64"] }
b = { ns = "b", name = "eth0", addresses = ["10.0.0.2/24", "fd00::2/64"] }
"#;

pub const CASE: &str = r#"
id = "traffic"
title = "bind, udp, burst, connect from a source"
urls = ["https://example.org/traffic"]
symptom = "none: a self-test"
fix = "none"
fixture = "traffic"
capture = ["a/eth0"]
setup = [{ sh = { ns = "a", run = "ping -6 -c1 -i 0.05 -w 3 fd00::2 >/dev/null" } }]

[probes]
bind-absent = { kind = "bind", from = "b", addr = "10.0.0.99:80" }
bind-freebind = { kind = "bind", from = "b", addr = "10.0.0.99:80", freebind = true, listen = true }
bind-v6-udp = { kind = "bind", from = "b", addr = "[fd00::2]:53", proto = "udp" }
echo = { kind = "udp", from = "a", to = "10.0.0.2:5353", src = "10.0.0.1:41000", listen_in = "b", echo = true, count = 3, interval_ms = 10, wait_ms = 200 }
closed = { kind = "udp", from = "a", to = "10.0.0.2:5354", count = 2, interval_ms = 10, wait_ms = 200 }
closed6 = { kind = "udp", from = "a", to = "[fd00::2]:5354", count = 1, wait_ms = 200 }
sink6 = { kind = "udp", from = "a", to = "[fd00::2]:5355", listen_in = "b", count = 4, interval_ms = 5, wait_ms = 100 }
from-port = { kind = "connect", from = "a", to = "10.0.0.2:8080", listen_in = "b", src = "10.0.0.1:40000" }
from-absent = { kind = "connect", from = "a", to = "10.0.0.2:8080", listen_in = "b", src = "10.0.0.77:0" }
dns-refused = { kind = "dns", from = "a", server = "10.0.0.2:5399", name = "x.local", timeout_ms = 300, attempts = 2, send = "threads" }
garp = { kind = "frame", at = "b/eth0", src_mac = "02:42:ac:11:00:02", arp = { op = "request", sender = "10.0.0.2", target = "10.0.0.2" } }
forged = { kind = "frame", at = "b/eth0", count = 2, dst_mac = "ff:ff:ff:ff:ff:ff", ip = { src = "10.0.0.2", dst = "10.96.0.10" }, tcp = { sport = 40000, dport = 80, flags = "S", seq = 7 } }
udp-frame = { kind = "frame", at = "b/eth0", ip = { src = "fd00::2", dst = "fd00::1" }, udp = { sport = 9, dport = 9, len = 4 } }
burst = { kind = "burst", from = "a", to = "10.0.0.2:9000", listen_in = "b", backlog = 1, count = 8, timeout_ms = 600 }
burst-accepting = { kind = "burst", from = "a", to = "[fd00::2]:9001", listen_in = "b", backlog = 16, accept = true, count = 8, timeout_ms = 1000 }

[[phase]]
name = "baseline"
[phase.expect.bind-absent]
result = "EADDRNOTAVAIL"
[phase.expect.bind-freebind]
result = "ok"
[phase.expect.bind-v6-udp]
result = "ok"
[phase.expect.echo]
received = 3
replies = 3
icmp_errors = []
packets = { "a/eth0: udp src 10.0.0.1 port 41000 out" = 3, "a/eth0: udp src 10.0.0.2 in" = 3 }
[phase.expect.closed]
replies = 0
icmp_errors = ["port-unreachable from 10.0.0.2"]
counters = { "b: Udp.NoPorts" = 2, "b: Icmp.OutDestUnreachs" = 2 }
[phase.expect.closed6]
icmp_errors = ["port-unreachable from fd00::2"]
counters = { "b: Udp6.NoPorts" = 1, "b: Icmp6.OutDestUnreachs" = 1 }
packets = { "a/eth0: icmp6 port-unreachable in" = 1 }
[phase.expect.sink6]
received = 4
icmp_errors = []
[phase.expect.from-port]
result = "ok"
packets = { "a/eth0: tcp syn src 10.0.0.1 port 40000 out" = 1 }
[phase.expect.from-absent]
result = "EADDRNOTAVAIL"
[phase.expect.dns-refused]
queries = { A = "ECONNREFUSED", AAAA = "ECONNREFUSED" }
# One lookup counts as one round.
rounds = { ECONNREFUSED = 1, ok = 0 }
answers = { A = [] }
elapsed_ms = { max = 250 }
[phase.expect.burst]
results = { ok = ">=2", timeout = ">=1", ECONNREFUSED = 0 }
listen_overflows = ">=1"
[phase.expect.burst-accepting]
results = { ok = 8 }
listen_overflows = 0
# The frames last: the gratuitous ARP moves a's entry for 10.0.0.2 to a
# MAC nobody has (what an ARP spoofer does), and a's traffic to b is lost.
[phase.expect.forged]
packets = { "a/eth0: tcp syn src 10.0.0.2 dst 10.96.0.10 port 80 seq 7 in" = 2 }
[phase.expect.udp-frame]
packets = { "a/eth0: ip6 udp port 9 good-csum in" = 1, "a/eth0: bad-csum" = 0 }
[phase.expect.garp]
packets = { "a/eth0: arp request src 10.0.0.2 dst 10.0.0.2 arp-sha 02:42:ac:11:00:02 src-mac 02:42:ac:11:00:02 dst-mac ff:ff:ff:ff:ff:ff in" = 1 }
neighbours = { "a: 10.0.0.2" = { lladdr = "02:42:ac:11:00:02" } }
"#;

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(bind_udp_burst_and_sourced_connect_on_the_running_kernel).needs(Need::Namespaces),
        common::test!(new_probe_keys_are_checked_against_the_probe_kind_at_load),
        common::test!(dns_probe_resolves_the_glibc_way).needs(Need::Namespaces),
        common::test!(dns_probe_rounds_each_from_a_new_socket).needs(Need::Namespaces),
    ])
}

fn bind_udp_burst_and_sourced_connect_on_the_running_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir(&fixtures).unwrap();
    std::fs::write(fixtures.join("traffic.toml"), FIXTURE).unwrap();
    let case = dir.path().join("traffic.toml");
    std::fs::write(&case, CASE).unwrap();
    let p = plan::load(&case, &fixtures).unwrap_or_else(|e| panic!("{e}"));
    let (release, version) = Version::running().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, out.path()).unwrap();
    let base = &rec.phases[0];
    for pr in &base.probes {
        eprintln!("{}: {}", pr.name, serde_json::to_string(&pr.outcome).unwrap());
    }
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    let burst = base.probes.iter().find(|p| p.name == "burst").unwrap();
    let Outcome::Burst(b) = &burst.outcome else { panic!() };
    assert_eq!(b.results.values().sum::<u32>(), 8);
    let why = netrepro::verdict::explain::symptom(burst).unwrap();
    assert!(why.contains("listen overflows +"), "{why}");
}

fn new_probe_keys_are_checked_against_the_probe_kind_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir(&fixtures).unwrap();
    std::fs::write(fixtures.join("traffic.toml"), FIXTURE).unwrap();
    let case = dir.path().join("traffic.toml");
    for (from, to, says) in [
        (
            "[phase.expect.bind-absent]\nresult",
            "[phase.expect.bind-absent]\nreceived = 1\nresult",
            "`received` applies to udp probes",
        ),
        (
            "[phase.expect.burst]\n",
            "[phase.expect.burst]\nresult = \"ok\"\n",
            "`result` applies to connect and bind probes",
        ),
        ("results = { ok = 8 }", "results = { okay = 8 }", "results key \"okay\""),
        ("answers = { A = [] }", "answers = { MX = [] }", "answers key \"MX\": write A or AAAA"),
        ("AAAA = \"ECONNREFUSED\" }", "AAAA = \"lost\" }", "queries.AAAA = \"lost\""),
        ("name = \"x.local\"", "name = \"x..local\"", "not a domain name"),
        ("at = \"b/eth0\", src_mac", "at = \"b/eth9\", src_mac", "no such interface"),
        ("flags = \"S\", seq = 7", "flags = \"SYN\", seq = 7", "letters S F R P and ."),
        ("src_mac = \"02:42:ac:11:00:02\"", "src_mac = \"02:42\"", "not a MAC address"),
        ("echo = true, count = 3", "echo = true, listen_in = \"b\", count = 3", "duplicate key"),
        ("ECONNREFUSED = 1", "lost = 1", "rounds key \"lost\": write ok, resent, timeout"),
        ("[phase.expect.burst]\n", "[phase.expect.burst]\nrounds = { ok = 1 }\n", "`rounds` applies to dns probes"),
        ("send = \"threads\"", "send = \"sendmmsg\"", "unknown variant"),
        (
            "send = \"threads\"",
            "rounds = 3, src = \"10.0.0.1:5353\", send = \"threads\"",
            "every round would reuse one source port",
        ),
        ("send = \"threads\"", "rounds = 10001, send = \"threads\"", "rounds = 10001: write 1 to 10000"),
    ] {
        let text = CASE.replacen(from, to, 1);
        assert_ne!(text, CASE, "{from}");
        std::fs::write(&case, text).unwrap();
        let e = plan::load(&case, &fixtures).unwrap_err().to_string();
        assert!(e.contains(says), "{e}");
    }
    let text = CASE.replacen("listen_in = \"b\", echo = true", "echo = true", 1);
    std::fs::write(&case, text).unwrap();
    let e = plan::load(&case, &fixtures).unwrap_err().to_string();
    assert!(e.contains("echo and listen_on need listen_in"), "{e}");
}

/// A responder thread in `ns` that answers A and AAAA from `addrs`, drops
/// the first `drop_aaaa` AAAA queries for `name` (the lost reply of the
/// conntrack insert race) and answers NXDOMAIN for any name but `name`.
fn responder(
    ns: &netrepro::sys::netns::Netns,
    at: std::net::SocketAddr,
    name: &'static str,
    addrs: Vec<std::net::IpAddr>,
    drop_aaaa: u32,
) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use netrepro::wire::dns;
    let sock = ns.run(move |_| std::net::UdpSocket::bind(at)).unwrap().unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_millis(20))).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    std::thread::spawn(move || {
        let mut dropped = 0;
        let mut buf = [0u8; 1500];
        while !s2.load(std::sync::atomic::Ordering::Acquire) {
            let Ok((n, peer)) = sock.recv_from(&mut buf) else { continue };
            let Some((_, qname, qtype)) = dns::parse_query(&buf[..n]) else { continue };
            if qtype == 28 && qname == name && dropped < drop_aaaa {
                dropped += 1;
                continue;
            }
            let (rcode, a) = if qname == name { (0, addrs.as_slice()) } else { (3, &[][..]) };
            let _ = sock.send_to(&dns::answer(&buf[..n], rcode, a).unwrap(), peer);
        }
    });
    stop
}

fn dns_probe_resolves_the_glibc_way() {
    use netrepro::run::probe::{dns, DnsOpts};
    use netrepro::wire::dns::QType;
    use std::time::Duration;
    let f: netrepro::case::spec::FixtureFile = toml::from_str(FIXTURE).unwrap();
    let topo = netrepro::run::topology::Topology::build(&f, "dnstest").unwrap();
    let (a, b) = (topo.ns("a").unwrap(), topo.ns("b").unwrap());
    let server: std::net::SocketAddr = "10.0.0.2:53".parse().unwrap();
    let addrs = vec!["10.0.0.2".parse().unwrap(), "fd00::2".parse().unwrap()];
    let stop = responder(b, server, "svc.cluster.local", addrs.clone(), 1);
    let opts = |name: &str, timeout_ms: u64, attempts: u32| DnsOpts {
        name: name.into(),
        types: vec![QType::A, QType::Aaaa],
        timeout: Duration::from_millis(timeout_ms),
        attempts,
        src: None,
        rounds: 1,
        send: netrepro::case::spec::DnsSend::BackToBack,
    };
    // The veth's carrier comes through linkwatch, a moment after the
    // topology is up: wait for the first answer (NXDOMAIN) before measuring.
    let t0 = std::time::Instant::now();
    while dns(a, server, opts("ready.local", 50, 1)).unwrap().queries[0].result != "NXDOMAIN" {
        assert!(t0.elapsed() < Duration::from_secs(3), "no answer from the responder within 3 s");
    }
    // The first AAAA is lost: A answers at once, AAAA after one timeout.
    let o = dns(a, server, opts("svc.cluster.local", 300, 2)).unwrap();
    let (qa, qaaaa) = (&o.queries[0], &o.queries[1]);
    assert_eq!((qa.result.as_str(), qa.sent, qa.answers.clone()), ("ok", 1, vec![addrs[0]]), "{o:?}");
    assert_eq!((qaaaa.result.as_str(), qaaaa.sent, qaaaa.answers.clone()), ("ok", 2, vec![addrs[1]]), "{o:?}");
    assert!(qaaaa.latency_ms.unwrap() >= 300.0 && qa.latency_ms.unwrap() < 100.0, "{o:?}");
    let o = dns(a, server, opts("nope.local", 300, 2)).unwrap();
    assert!(o.queries.iter().all(|q| q.result == "NXDOMAIN" && q.sent == 1), "{o:?}");
    // Nothing listens: the port-unreachable ends each attempt at once.
    let o = dns(a, "10.0.0.2:5399".parse().unwrap(), opts("svc.cluster.local", 300, 2)).unwrap();
    assert!(o.queries.iter().all(|q| q.result == "ECONNREFUSED"), "{o:?}");
    assert!(o.elapsed_ms < 250.0, "{o:?}");
    // Nothing answers: timeout × attempts.
    let o = dns(a, "10.0.0.9:53".parse().unwrap(), opts("svc.cluster.local", 100, 3)).unwrap();
    assert!(o.queries.iter().all(|q| q.result == "timeout" && q.sent == 3), "{o:?}");
    assert!(o.elapsed_ms >= 300.0, "{o:?}");
    stop.store(true, std::sync::atomic::Ordering::Release);
}

fn dns_probe_rounds_each_from_a_new_socket() {
    use netrepro::case::spec::DnsSend;
    use netrepro::run::probe::{dns, DnsOpts};
    use netrepro::wire::dns::QType;
    use std::time::Duration;
    let f: netrepro::case::spec::FixtureFile = toml::from_str(FIXTURE).unwrap();
    let topo = netrepro::run::topology::Topology::build(&f, "dnsrounds").unwrap();
    let (a, b) = (topo.ns("a").unwrap(), topo.ns("b").unwrap());
    let server: std::net::SocketAddr = "10.0.0.2:53".parse().unwrap();
    let addrs = vec!["10.0.0.2".parse().unwrap()];
    // The first AAAA is lost, as the incident's second reply.
    let stop = responder(b, server, "svc.cluster.local", addrs, 1);
    let opts = |name: &str, timeout_ms: u64, rounds: u32, send: DnsSend| DnsOpts {
        name: name.into(),
        types: vec![QType::A, QType::Aaaa],
        timeout: Duration::from_millis(timeout_ms),
        attempts: 2,
        src: None,
        rounds,
        send,
    };
    let t0 = std::time::Instant::now();
    while dns(a, server, opts("ready.local", 50, 1, DnsSend::BackToBack)).unwrap().queries[0].result != "NXDOMAIN" {
        assert!(t0.elapsed() < Duration::from_secs(3), "no answer from the responder within 3 s");
    }
    let words = |o: &netrepro::evidence::outcome::DnsOutcome| {
        let r = o.rounds.as_ref().unwrap_or_else(|| panic!("no rounds: {o:?}"));
        r.results.iter().map(|(w, n)| format!("{w} {n}")).collect::<Vec<_>>().join(", ")
    };
    // single-request-reopen: the lost AAAA is sent again after 200 ms, in
    // the first lookup only; the slowest lookup is that one.
    let o = dns(a, server, opts("svc.cluster.local", 200, 3, DnsSend::SingleRequestReopen)).unwrap();
    assert_eq!((words(&o), o.send.as_str()), ("ok 2, resent 1".into(), "single-request-reopen"), "{o:?}");
    let r = o.rounds.as_ref().unwrap();
    assert!(r.lost.is_empty() && r.latency_max_ms >= 200.0 && r.latency_median_ms < 100.0, "{o:?}");
    assert_eq!(o.queries[1].sent, 2, "{o:?}");
    // Both senders' queries answered at their first send, every round.
    for send in [DnsSend::BackToBack, DnsSend::Threads] {
        let o = dns(a, server, opts("svc.cluster.local", 200, 20, send)).unwrap();
        assert_eq!(words(&o), "ok 20", "{o:?}");
        assert!(o.queries.iter().all(|q| q.result == "ok" && q.sent == 1), "{o:?}");
    }
    // Nothing answers: every query lost, every round.
    let o = dns(a, "10.0.0.9:53".parse().unwrap(), opts("svc.cluster.local", 30, 2, DnsSend::Threads)).unwrap();
    assert_eq!(words(&o), "timeout 2", "{o:?}");
    let lost = &o.rounds.as_ref().unwrap().lost;
    assert_eq!((lost.get("A"), lost.get("AAAA")), (Some(&2), Some(&2)), "{o:?}");
    stop.store(true, std::sync::atomic::Ordering::Release);
}
