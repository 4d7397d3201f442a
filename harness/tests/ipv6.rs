//! IPv6 end to end on the running kernel: ICMPv6 echo and its errors named
//! in the one vocabulary, `sendto` errnos, TCP connect and stream to
//! `[v6]:port`, IPv6 and ICMPv6/NDP matcher words, `/proc/net/snmp6`
//! counters as nstat names them.

mod common;

use common::Need;

use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::evidence::outcome::Outcome;
use netrepro::run::runner;

const FIXTURE: &str = r#"
description = "Two hosts on one IPv6 link, no DAD (addresses usable at once)."

[[namespace]]
name = "a"
sysctls = { "net.ipv6.conf.all.accept_dad" = 0, "net.ipv6.conf.default.accept_dad" = 0 }

[[namespace]]
name = "b"
sysctls = { "net.ipv6.conf.all.accept_dad" = 0, "net.ipv6.conf.default.accept_dad" = 0 }

[[veth]]
a = { ns = "a", name = "eth0", addresses = ["fd00::1/64"] }
b = { ns = "b", name = "eth0", addresses = ["fd00::2/64"] }
"#;

const CASE: &str = r#"
id = "v6"
title = "IPv6 probes and matchers"
urls = ["https://example.org/v6"]
symptom = "none: a self-test"
fix = "none"
fixture = "v6"
requires = ["ip6tables"]
capture = ["a/eth0"]
# IPv6 takes a link's carrier from linkwatch, up to 1 s after the veth is up:
# until then the addresses do not answer. Wait for it (before captures start).
setup = [{ sh = { ns = "a", run = "ping -6 -c1 -i 0.05 -w 3 fd00::2 >/dev/null" } }]

[probes]
ping = { kind = "ping", from = "a", to = "fd00::2", count = 3, interval_ms = 20, wait_ms = 300 }
nowhere = { kind = "ping", from = "a", to = "fd99::9", count = 2, interval_ms = 10, wait_ms = 50 }
connect = { kind = "connect", from = "a", to = "[fd00::2]:8080", listen_in = "b", timeout_ms = 800 }
refused = { kind = "connect", from = "a", to = "[fd00::2]:8081", timeout_ms = 800 }
stream = { kind = "stream", from = "a", to = "[fd00::2]:5201", server_in = "b", bytes = 65536, timeout_ms = 2000 }

[[phase]]
name = "baseline"
[phase.expect.ping]
replies = 3
icmp_errors = []
send_errors = []
counters = { "b: Icmp6.InEchos" = 3, "a: Icmp6.InEchoReplies" = 3 }
packets = { "a/eth0: icmp6 echo-request out dst fd00::2" = 3, "a/eth0: ip6 echo-reply in src fd00::2" = 3, "a/eth0: icmp echo-reply" = 0 }
[phase.expect.nowhere]
replies = 0
send_errors = ["ENETUNREACH"]
counters = { "a: Ip6.OutNoRoutes" = 2 }
[phase.expect.connect]
result = "ok"
packets = { "a/eth0: tcp syn dst fd00::2 port 8080" = 1 }
[phase.expect.refused]
result = "ECONNREFUSED"
[phase.expect.stream]
bytes_received = 65536
client_error = "none"
server_error = "none"

[[phase]]
name = "fault"
steps = [
  { sh = { ns = "b", run = "ip6tables -A INPUT -p icmpv6 --icmpv6-type echo-request -j REJECT --reject-with icmp6-adm-prohibited" } },
]
[phase.expect.ping]
replies = 0
icmp_errors = ["admin-prohibited from fd00::2"]
counters = { "b: Icmp6.OutDestUnreachs" = 3 }
packets = { "a/eth0: icmp6 admin-prohibited in src fd00::2" = 3, "a/eth0: unreachable" = 3, "a/eth0: no-route" = 0 }
"#;

fn main() -> std::process::ExitCode {
    common::run(vec![common::test!(ipv6_probes_matchers_and_counters_on_the_running_kernel).needs(Need::Namespaces)])
}

fn ipv6_probes_matchers_and_counters_on_the_running_kernel() {
    if netrepro::sys::cmd::which("ip6tables").is_none() {
        eprintln!("ipv6: SKIPPED: no ip6tables");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let fixtures = dir.path().join("fixtures");
    std::fs::create_dir(&fixtures).unwrap();
    std::fs::write(fixtures.join("v6.toml"), FIXTURE).unwrap();
    let case = dir.path().join("v6.toml");
    std::fs::write(&case, CASE).unwrap();
    let p = plan::load(&case, &fixtures).unwrap_or_else(|e| panic!("{e}"));
    let (release, version) = Version::running().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, out.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    let fault = rec.phases.iter().find(|p| p.name == "fault").unwrap();
    let ping = fault.probes.iter().find(|p| p.name == "ping").unwrap();
    let Outcome::Ping(o) = &ping.outcome else { panic!("{:?}", ping.outcome) };
    assert_eq!(o.errors.len(), 3);
    assert!(o.errors.iter().all(|e| e.from.is_ipv6() && e.kind == "admin-prohibited"));
    let why = netrepro::verdict::explain::symptom(ping).unwrap();
    assert!(why.contains("admin-prohibited from fd00::2"), "{why}");
}
