//! Actors on the running kernel: every built-in (UDP echo and sink, DNS
//! responder, TCP server, IPv6 RA sender) and a literal command line run
//! through a phase, are asserted through `expect_actors` and probes, and
//! leave nothing behind — after a passing run, a failing one, and SIGKILL
//! of the run at several points.

mod common;

use common::Need;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::run::runner;

const FIXTURE: &str = r#"
description = "Two hosts on one link, IPv4 and IPv6 (no DAD); b accepts RAs."

[[namespace]]
name = "a"
sysctls = { "net.ipv6.conf.all.accept_dad" = 0, "net.ipv6.conf.default.accept_dad" = 0, "net.ipv6.conf.all.forwarding" = 1 }

[[namespace]]
name = "b"
sysctls = { "net.ipv6.conf.all.accept_dad" = 0, "net.ipv6.conf.default.accept_dad" = 0, "net.ipv6.conf.default.accept_ra" = 1, "net.ipv6.conf.all.forwarding" = 0 }

[[veth]]
a = { ns = "a", name = "eth0", addresses = ["10.0.0.1/24", "fd00::1/64"] }
b = { ns = "b", name = "eth0", addresses = ["10.0.0.2/24", "fd00::2/64"] }
"#;

/// A literal command actor: a UDP echo in python, ready when it listens.
const PY_ECHO: &str = "python3 -u -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((\"10.0.0.1\", 7001)); print(\"up\", flush=True)\nwhile True:\n  d, p = s.recvfrom(2048); s.sendto(d, p)'";

/// A literal command actor that daemonizes: a `setsid sleep` in the
/// background and a python double fork (fork, `setsid`, fork, the parents
/// exit) that binds udp:7003, then the line exits 0. Both are marked by
/// `tag` (the sleep's length, python's argv) so a test finds them on the
/// whole machine, whoever their parent is by then.
fn daemon(tag: &str) -> String {
    format!(
        "setsid sleep 1000.{tag} & python3 -c 'import os, socket, time\n\
         if os.fork(): os._exit(0)\nos.setsid()\nif os.fork(): os._exit(0)\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind((\"10.0.0.1\", 7003)); time.sleep(1000)' \
         netrepro-daemon-{tag}; exit 0"
    )
}

/// Live processes anywhere on the machine marked by `tag` ([`daemon`]).
fn marked(tag: &str) -> Vec<(u32, String)> {
    let marks = [format!("1000.{tag}"), format!("netrepro-daemon-{tag}")];
    let mut out = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(c) = std::fs::read(p.path().join("cmdline")) else { continue };
        let c = String::from_utf8_lossy(&c).replace('\0', " ");
        if marks.iter().any(|m| c.contains(m.as_str())) && !alive(&BTreeSet::from([pid])).is_empty() {
            out.push((pid, c));
        }
    }
    out
}

/// A tag no other run of these tests uses: this process and a name.
fn tag(which: u32) -> String {
    format!("{}{which}", std::process::id())
}

/// The PID namespaces of `pids` other than ours, and whether any process
/// on the machine is still in one of them.
fn pid_namespaces(pids: &BTreeSet<u32>) -> BTreeSet<String> {
    let own = std::fs::read_link("/proc/self/ns/pid").unwrap();
    pids.iter()
        .filter_map(|p| std::fs::read_link(format!("/proc/{p}/ns/pid")).ok())
        .filter(|l| *l != own)
        .map(|l| l.to_string_lossy().into_owned())
        .collect()
}

fn pid_namespaces_in_use(of: &BTreeSet<String>) -> BTreeSet<String> {
    let all: BTreeSet<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| p.file_name().to_string_lossy().parse().ok())
        .collect();
    pid_namespaces(&all).intersection(of).cloned().collect()
}

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(actors_and_their_counters_are_checked_at_load),
        common::test!(every_actor_runs_is_asserted_and_ends_with_the_phase).needs(Need::Namespaces),
        common::test!(sigkill_during_a_phase_with_actors_leaves_no_process_and_no_namespace).needs(Need::Namespaces),
    ])
}

fn case(py: &str, daemon: &str) -> String {
    format!(
        r#"
id = "actors"
title = "actors"
urls = ["https://example.org/actors"]
symptom = "none: a self-test"
fix = "none"
fixture = "actors"
capture = ["b/eth0"]
setup = [{{ sh = {{ ns = "a", run = "ping -6 -c1 -i 0.05 -w 3 fd00::2 >/dev/null" }} }}]

[probes]
echo = {{ kind = "udp", from = "b", to = "10.0.0.1:7000", count = 3, interval_ms = 10, wait_ms = 200 }}
sink = {{ kind = "udp", from = "b", to = "10.0.0.1:7002", count = 4, interval_ms = 5, wait_ms = 100 }}
py = {{ kind = "udp", from = "b", to = "10.0.0.1:7001", count = 2, interval_ms = 10, wait_ms = 200 }}
lookup = {{ kind = "dns", from = "b", server = "10.0.0.1:53", name = "svc.cluster.local", timeout_ms = 200, attempts = 2 }}
web = {{ kind = "connect", from = "b", to = "10.0.0.1:80" }}
offlink = {{ kind = "ping", from = "b", to = "2001:db8:9::1", count = 1, wait_ms = 50 }}

[[phase]]
name = "baseline"
[phase.actors]
echo = {{ kind = "udp-echo", ns = "a", listen = "10.0.0.1:7000" }}
sink = {{ kind = "udp-sink", ns = "a", listen = "10.0.0.1:7002" }}
dns = {{ kind = "dns", ns = "a", listen = "10.0.0.1:53", answers = {{ "svc.cluster.local" = ["10.96.0.1", "fd00::96"] }}, drop_aaaa = 1 }}
web = {{ kind = "tcp-server", ns = "a", listen = "10.0.0.1:80", on_accept = "close" }}
ra = {{ kind = "ra", ns = "a", dev = "eth0", prefix = "2001:db8:1::/64", router_lifetime = 600, interval_ms = 100 }}
py = {{ kind = "command", ns = "a", run = "{py}", ready_listening = "udp:7001" }}
daemon = {{ kind = "command", ns = "a", run = "{daemon}", ready_listening = "udp:7003" }}
[phase.expect_actors]
"echo: received" = 3
"echo: echoed" = 3
"sink: received" = 4
"dns: received" = 3
"dns: dropped" = 1
"dns: answered" = 2
"web: accepted" = 1
"ra: sent" = ">=1"
"py: exited" = 0
"daemon: exited" = 1
"daemon: exit_code" = 0
[phase.expect.echo]
replies = 3
[phase.expect.sink]
icmp_errors = []
[phase.expect.py]
replies = 2
[phase.expect.lookup]
queries = {{ A = "ok", AAAA = "ok" }}
answers = {{ A = ["10.96.0.1"], AAAA = ["fd00::96"] }}
[phase.expect.web]
result = "ok"
[phase.expect.offlink]
send_errors = []
packets = {{ "b/eth0: icmp6 router-advertisement in" = ">=0" }}

[[phase]]
name = "fault"
note = "no RA: b has no default route"
[phase.expect.offlink]
send_errors = ["ENETUNREACH"]
counters = {{ "b: Ip6.OutNoRoutes" = 1 }}

[[phase]]
name = "fix"
note = "no probe: the phase's own window, actors and steps included"
steps = [{{ sh = {{ ns = "a", run = "sleep 0.25" }} }}]
[phase.actors]
ra = {{ kind = "ra", ns = "a", dev = "eth0", router_lifetime = 600, interval_ms = 100 }}
daemon = {{ kind = "command", ns = "a", run = "{daemon}", ready_listening = "udp:7003" }}
[phase.expect_actors]
"ra: sent" = ">=3"
"daemon: exit_code" = 0
[phase.expect_phase]
counters = {{ "b: Icmp6.InRouterAdvertisements" = ">=3" }}
packets = {{ "b/eth0: icmp6 router-advertisement in" = ">=3", "b/eth0: tcp" = 0 }}
"#,
        py = toml_str(py),
        daemon = toml_str(daemon),
    )
}

/// `s` inside a TOML basic string.
fn toml_str(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn write_case(dir: &Path, py: &str, daemon: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let fixtures = dir.join("fixtures");
    let cases = dir.join("cases");
    std::fs::create_dir_all(&fixtures).unwrap();
    std::fs::create_dir_all(&cases).unwrap();
    std::fs::write(fixtures.join("actors.toml"), FIXTURE).unwrap();
    std::fs::write(cases.join("actors.toml"), case(py, daemon)).unwrap();
    (cases, fixtures)
}

/// Processes whose parent chain leads to `pid`, or that are in `pgids`.
fn descendants(pid: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let mut frontier = vec![pid];
    while let Some(p) = frontier.pop() {
        let Ok(kids) = std::fs::read_to_string(format!("/proc/{p}/task/{p}/children")) else { continue };
        for k in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
            if out.insert(k) {
                frontier.push(k);
            }
        }
        // Children of other threads of the process too.
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                if let Ok(kids) = std::fs::read_to_string(t.path().join("children")) {
                    for k in kids.split_whitespace().filter_map(|k| k.parse().ok()) {
                        if out.insert(k) {
                            frontier.push(k);
                        }
                    }
                }
            }
        }
    }
    out
}

fn alive(pids: &BTreeSet<u32>) -> Vec<u32> {
    pids.iter()
        .copied()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/stat"))
                .is_ok_and(|s| s.rsplit(')').next().is_some_and(|r| !r.trim_start().starts_with('Z')))
        })
        .collect()
}

fn every_actor_runs_is_asserted_and_ends_with_the_phase() {
    assert!(netrepro::sys::cmd::which("python3").is_some(), "python3 is not on PATH (ci/setup-host installs it)");
    let dir = tempfile::tempdir().unwrap();
    let passing = tag(1);
    let (cases, fixtures) = write_case(dir.path(), PY_ECHO, &daemon(&passing));
    let p = plan::load(&cases.join("actors.toml"), &fixtures).unwrap_or_else(|e| panic!("{e}"));
    let (release, version) = Version::running().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, out.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    let base = &rec.phases[0];
    let py = base.actors.iter().find(|a| a.name == "py").unwrap();
    assert!(py.stdout.contains("up"), "{py:?}");
    assert!(py.end.contains("killed at phase end"), "{py:?}");
    assert!(base.actors.iter().all(|a| a.error.is_none()), "{:?}", base.actors);
    // The daemonizing line exited 0 by itself, and what it left (a setsid
    // sleep, a double-forked python) ran until the phase's end.
    let d = base.actors.iter().find(|a| a.name == "daemon").unwrap();
    assert!(d.end.starts_with("exited 0; what it left running killed at phase end"), "{d:?}");
    // The report draws them: each actor's row with its namespace, kind,
    // ready and end on one axis, exit status and what was asserted of it.
    let html = netrepro::render::report::render(std::slice::from_ref(&rec));
    let table = html.split("<h3>actors").nth(1).expect("the report has no actors table");
    let row = table.split("<tr>").find(|r| r.starts_with("<td>daemon</td>")).expect("no row for the daemon");
    for part in ["<td>a</td>", "command", "exit 0", "what it left running killed", "class=\"life\"", "exit_code"] {
        assert!(row.contains(part), "{part} not in the daemon's row: {row}");
    }
    assert!(d.ended_ns > d.started_ns && d.ready_ms.is_some(), "{d:?}");
    let fix = rec.phases.iter().find(|p| p.name == "fix").unwrap();
    let whole = fix.windows.iter().find(|w| w.name == "phase").unwrap();
    assert!(fix.probes.is_empty() && whole.checks.len() == 3 && whole.window_ns.1 > whole.window_ns.0, "{fix:?}");
    // Nothing of the run outlives it (other tests of this binary run their
    // own `netrepro` children meanwhile: look for this run's actor).
    assert!(actor_processes().is_empty(), "processes left: {:?}", actor_processes());
    assert_eq!(marked(&passing), vec![], "the daemonizing actor's processes outlived the run");

    // A failing run (a command that exits at once) ends the same way, and
    // says why.
    let failing = tag(2);
    let (cases, fixtures) = write_case(dir.path(), "python3 -c 'import sys; sys.exit(3)'", &daemon(&failing));
    let p = plan::load(&cases.join("actors.toml"), &fixtures).unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, out.path()).unwrap();
    assert!(!rec.passed());
    let report = rec.failure_report(&path);
    assert!(report.contains("actor \"py\" did not start") && report.contains("exited"), "{report}");
    assert!(actor_processes().is_empty(), "processes left: {:?}", actor_processes());
    assert_eq!(marked(&failing), vec![], "the daemonizing actor's processes outlived the failing run");
}

/// Live descendants of this test process running the python actor.
/// This test's own actors: children of this process (the kill test of the
/// same binary runs `netrepro` children whose actors are grandchildren).
fn actor_processes() -> Vec<u32> {
    let me = std::process::id().to_string();
    let parent_is_me = |p: &u32| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.split_whitespace().nth(1).map(str::to_string)))
            .flatten()
            .is_some_and(|ppid| ppid == me)
    };
    alive(&descendants(std::process::id()))
        .into_iter()
        .filter(parent_is_me)
        .filter(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("SOCK_DGRAM"))
        })
        .collect()
}

fn sigkill_during_a_phase_with_actors_leaves_no_process_and_no_namespace() {
    assert!(netrepro::sys::cmd::which("python3").is_some(), "python3 is not on PATH (ci/setup-host installs it)");
    let host_ns = common::own_namespace();
    let dir = tempfile::tempdir().unwrap();
    let killed = tag(3);
    let (cases, fixtures) = write_case(dir.path(), PY_ECHO, &daemon(&killed));
    let artifacts = tempfile::tempdir().unwrap();
    let run = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_netrepro"));
        c.args(["run", "actors"])
            .env("NETREPRO_CASES", &cases)
            .env("NETREPRO_FIXTURES", &fixtures)
            .env("NETREPRO_ARTIFACTS", artifacts.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        c
    };
    let t0 = Instant::now();
    let st = run().status().unwrap();
    assert!(st.success(), "the whole run failed");
    let whole = t0.elapsed().as_millis() as u64;
    assert_eq!(marked(&killed), vec![], "the daemonizing actor outlived a whole run");
    let (mut caught_actor, mut caught_daemon) = (0, 0);
    for ms in [whole / 5, whole * 2 / 5, whole / 2, whole * 3 / 5, whole * 4 / 5] {
        let mut child = run().spawn().unwrap();
        let pid = child.id();
        common::assert_marked(pid, &common::run_marker(artifacts.path()));
        let mut seen_ns = BTreeSet::new();
        let mut seen_pids = BTreeSet::new();
        let mut seen_pidns = BTreeSet::new();
        let kill_at = Instant::now() + Duration::from_millis(ms);
        while Instant::now() < kill_at {
            seen_ns.extend(common::namespaces_of(pid));
            let now = descendants(pid);
            seen_pidns.extend(pid_namespaces(&now));
            seen_pids.extend(now);
            std::thread::sleep(Duration::from_millis(1));
        }
        seen_ns.remove(&host_ns);
        // The daemon's processes (reparented inside its PID namespace, in
        // sessions of their own), alive at the kill.
        caught_daemon += usize::from(!marked(&killed).is_empty());
        // The command actor (python) and its parent chain, alive at the kill.
        caught_actor += usize::from(!alive(&seen_pids).is_empty());
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        let end = Instant::now() + Duration::from_secs(5);
        while !alive(&seen_pids).is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(alive(&seen_pids).is_empty(), "kill at {ms} ms of {whole}: processes left: {:?}", alive(&seen_pids));
        let left =
            common::wait_unreachable_by_run(&seen_ns, &common::run_marker(artifacts.path()), Duration::from_secs(5));
        assert!(left.is_empty(), "kill at {ms} ms of {whole}: namespaces left: {left:?}");
        // The kernel kills what is left of a PID namespace once its init
        // is gone, not within the kill(2) of netrepro: a moment.
        let end = Instant::now() + Duration::from_secs(5);
        while (!marked(&killed).is_empty() || !pid_namespaces_in_use(&seen_pidns).is_empty()) && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(marked(&killed), vec![], "kill at {ms} ms of {whole}: the daemonizing actor survived");
        let pidns = pid_namespaces_in_use(&seen_pidns);
        assert!(pidns.is_empty(), "kill at {ms} ms of {whole}: PID namespaces still in use: {pidns:?}");
    }
    assert!(caught_actor >= 1, "no kill point caught the command actor running");
    assert!(caught_daemon >= 2, "only {caught_daemon} kill points caught the daemonizing actor running");
}

fn actors_and_their_counters_are_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    let (cases, fixtures) = write_case(dir.path(), PY_ECHO, &daemon(&tag(4)));
    let file = cases.join("actors.toml");
    let good = std::fs::read_to_string(&file).unwrap();
    for (from, to, says) in [
        ("\"ra: sent\"", "\"ra: received\"", "a ra actor counts sent"),
        ("\"ra: sent\"", "\"rb: sent\"", "no actor \"rb\""),
        ("dev = \"eth0\", prefix", "dev = \"eth9\", prefix", "no interface \"eth9\""),
        ("ready_listening = \"udp:7001\"", "ready_listening = \"sctp:7001\"", "write tcp:PORT or udp:PORT"),
        ("kind = \"udp-sink\", ns = \"a\"", "kind = \"udp-sink\", ns = \"z\"", "no namespace \"z\""),
        ("\"b/eth0: tcp\" = 0", "\"a/eth0: tcp\" = 0", "expect_phase: packets \"a/eth0: tcp\": a/eth0 is not captured"),
        ("\"b: Icmp6.InRouterAdvertisements\" = \">=3\"", "\"q: Icmp6.X\" = 1", "expect_phase: counter \"q: Icmp6.X\""),
    ] {
        let text = good.replacen(from, to, 1);
        assert_ne!(text, good, "{from}");
        std::fs::write(&file, text).unwrap();
        let e = plan::load(&file, &fixtures).unwrap_err().to_string();
        assert!(e.contains(says) && e.contains("actors.toml:"), "{e}");
    }
}
