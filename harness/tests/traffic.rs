//! The bind, udp and burst probes and connect from a given source, on the
//! running kernel: each outcome as the kernel gives it, checked through the
//! case's own expectations.

mod common;

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
[phase.expect.burst]
results = { ok = ">=2", timeout = ">=1", ECONNREFUSED = 0 }
listen_overflows = ">=1"
[phase.expect.burst-accepting]
results = { ok = 8 }
listen_overflows = 0
"#;

#[test]
fn bind_udp_burst_and_sourced_connect_on_the_running_kernel() {
    if !common::privileged("traffic") {
        return;
    }
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

#[test]
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
        ("echo = true, count = 3", "echo = true, listen_in = \"b\", count = 3", "duplicate key"),
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
