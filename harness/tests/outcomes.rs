//! The forwarding-off case end to end through the library: what a passing
//! run leaves (evidence, pcapngs), what a broken expectation prints, and that a
//! panic inside a namespace's life frees it.

mod common;

use common::Need;

use std::collections::BTreeSet;
use std::time::Duration;

use netrepro::app::suite;
use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::evidence::outcome::Outcome;
use netrepro::evidence::record::CaseRecord;
use netrepro::run::runner;
use netrepro::sys::netns::Netns;
use netrepro::wire::packet::{Direction, Frame};

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(passing_run_leaves_evidence_and_a_readable_pcapng_and_a_broken_expectation_reads_well)
            .needs(Need::Namespaces),
        common::test!(a_panic_while_namespaces_live_frees_them).needs(Need::Namespaces),
        common::test!(a_panicking_job_is_an_error_and_the_namespace_lives_on).needs(Need::Namespaces),
        common::test!(htb_case_fails_readably_when_errno_or_timing_is_wrong).needs(Need::Namespaces),
        common::test!(conntrack_case_leaves_the_rst_in_the_fault_pcap_only).needs(Need::Namespaces),
        common::test!(held_connections_close_outside_the_probe_window).needs(Need::Namespaces),
        common::test!(a_scaffolded_case_passes_its_baseline_as_is).needs(Need::Namespaces),
    ])
}

fn repo_case(id: &str) -> std::path::PathBuf {
    suite::cases_dir().join(format!("{id}.toml"))
}

/// A repository case's text up to (not including) its phase `phase`.
fn case_before_phase(id: &str, phase: &str) -> String {
    let text = std::fs::read_to_string(repo_case(id)).unwrap();
    let at =
        text.find(&format!("[[phase]]\nname = \"{phase}\"")).unwrap_or_else(|| panic!("{id} has no phase {phase}"));
    text[..at].to_string()
}

fn passing_run_leaves_evidence_and_a_readable_pcapng_and_a_broken_expectation_reads_well() {
    let (release, version) = Version::running().unwrap();
    let root = tempfile::tempdir().unwrap();
    let p = plan::load(&repo_case("forwarding-off"), &suite::fixtures_dir()).unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, root.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    assert_eq!(path, root.path().join("forwarding-off/evidence.json"));

    // evidence.json parses back and holds the InAddrErrors delta and outcomes.
    let back: CaseRecord = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back.kernel_release, release);
    let fault = back.phases.iter().find(|p| p.name == "fault").unwrap();
    let ping = fault.probes.iter().find(|p| p.name == "ping").unwrap();
    assert_eq!(ping.counter_deltas["host"]["Ip.InAddrErrors"], 3);
    let Outcome::Ping(o) = &ping.outcome else { panic!("ping outcome: {:?}", ping.outcome) };
    assert_eq!((o.replies, o.sent), (0, 3));
    let connect = fault.probes.iter().find(|p| p.name == "connect").unwrap();
    let Outcome::Connect(o) = &connect.outcome else { panic!("connect outcome: {:?}", connect.outcome) };
    assert_eq!(o.result, "timeout");

    // One pcapng per phase, every captured interface in it with frames.
    for phase in ["baseline", "fault", "fix"] {
        // Recorded relative to the artifacts root.
        let pcapng = std::path::PathBuf::from(format!("forwarding-off/{phase}.pcapng"));
        assert_eq!(back.phases.iter().find(|p| p.name == phase).unwrap().pcapng.as_ref(), Some(&pcapng));
        let pcapng = root.path().join(&pcapng);
        let frames = common::read_pcapng(&pcapng);
        for iface in ["host/eno1", "host/docker0", "container/eth0"] {
            assert!(frames.iter().any(|f| f.iface == iface), "{} holds no frames of {iface}", pcapng.display());
        }
        if let Some(tcpdump) = netrepro::sys::cmd::which("tcpdump") {
            let out = std::process::Command::new(tcpdump).arg("-nr").arg(&pcapng).output().unwrap();
            assert!(out.status.success(), "tcpdump -r {}: {}", pcapng.display(), String::from_utf8_lossy(&out.stderr));
            assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), frames.len());
        }
    }
    let fault = common::read_pcapng(&root.path().join("forwarding-off/fault.pcapng"));
    assert!(count_echo_replies(&fault, "host/eno1") >= 3, "the dropped replies are in the pcapng, on host/eno1");

    // Break the case: the fault connect expects ECONNREFUSED. It must fail,
    // saying expected vs observed, with the evidence and pcap paths, and
    // leave the host as it was.
    let host_before = netrepro::safety::hostguard::HostState::capture().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo_case("forwarding-off")).unwrap();
    let broken = text.replacen("result = \"timeout\"", "result = \"ECONNREFUSED\"", 1);
    assert_ne!(text, broken);
    let case = dir.path().join("forwarding-off.toml");
    std::fs::write(&case, broken).unwrap();
    let p = plan::load(&case, &suite::fixtures_dir()).unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, root.path()).unwrap();
    assert!(!rec.passed());
    let report = rec.failure_report(&path);
    assert!(report.contains("phase fault FAILED"), "{report}");
    assert!(report.contains("connect result: expected ECONNREFUSED, observed timeout after"), "{report}");
    // The why-line says where the SYN-ACK died, from the evidence alone.
    assert!(
        report.contains("why: connect 10.2.19.80:8080 from container: timeout after")
            && report.contains("TCP SYN-ACK seen on host/eno1 (1) but not on"),
        "{report}"
    );
    assert!(report.contains("pcapng: ") && report.contains("forwarding-off/fault.pcapng"), "{report}");
    assert!(report.contains(&format!("evidence: {}", path.display())), "{report}");
    assert!(!report.contains("phase baseline FAILED") && !report.contains("phase fix FAILED"), "{report}");
    let host_after = netrepro::safety::hostguard::HostState::capture().unwrap();
    let diff = netrepro::safety::hostguard::HostState::diff(&host_before, &host_after);
    assert!(diff.is_empty(), "a failing case changed the host: {diff:#?}");
}

fn count_echo_replies(frames: &[common::PcapngFrame], iface: &str) -> usize {
    let m = netrepro::wire::packet::Matcher::parse("icmp echo-reply").unwrap();
    let on = frames.iter().filter(|f| f.iface == iface);
    on.filter(|f| m.matches(&Frame::ethernet(f.t_ns, Direction::In, f.data.clone()))).count()
}

fn a_panic_while_namespaces_live_frees_them() {
    let seen = std::thread::spawn(|| {
        let ns = Netns::new("doomed").unwrap();
        let inode = ns.run(|_| std::fs::read_link("/proc/thread-self/ns/net").unwrap()).unwrap();
        let inode = inode.to_string_lossy().into_owned();
        assert!(common::reachable_namespaces().contains(&inode));
        std::panic::panic_any(inode)
    })
    .join()
    .unwrap_err();
    let inode = seen.downcast::<String>().unwrap();
    let left = common::wait_unreachable(&BTreeSet::from([*inode]), Duration::from_secs(5));
    assert!(left.is_empty(), "namespace still reachable after the panic: {left:?}");
}

fn a_panicking_job_is_an_error_and_the_namespace_lives_on() {
    let ns = Netns::new("sturdy").unwrap();
    let e = ns.run(|_| -> u32 { panic!("boom") }).unwrap_err();
    assert!(e.to_string().contains("panicked inside namespace sturdy"), "{e}");
    assert_eq!(ns.run(|_| 7).unwrap(), 7);
}

fn htb_case_fails_readably_when_errno_or_timing_is_wrong() {
    let (release, version) = Version::running().unwrap();
    // Baseline and the faults only: every phase runs on its own topology.
    let head = &case_before_phase("htb-direct-qlen", "fix");
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let case = dir.path().join("htb-direct-qlen.toml");
    let run = |body: String| {
        std::fs::write(&case, body).unwrap();
        let p = plan::load(&case, &suite::fixtures_dir()).unwrap();
        let (rec, path) = runner::run_case(&p, &release, version, root.path()).unwrap();
        (rec.passed(), rec.failure_report(&path))
    };
    let (ok, report) = run(head.to_string());
    assert!(ok, "unmodified baseline+fault must pass:\n{report}");

    let fault_at = head.find("name = \"fault\"\n").unwrap();
    let (pre, post) = head.split_at(fault_at);
    let wrong_errno = format!("{pre}{}", post.replacen("result = \"EHOSTUNREACH\"", "result = \"ETIMEDOUT\"", 1));
    let (ok, report) = run(wrong_errno);
    assert!(!ok);
    assert!(report.contains("connect result: expected ETIMEDOUT, observed EHOSTUNREACH after"), "{report}");

    let wrong_window = format!(
        "{pre}{}",
        post.replacen(
            "elapsed_ms = { neigh_failure = \"container/eth0\", tolerance_ms = 80 }",
            "elapsed_ms = { min = 900, max = 1500 }",
            1
        )
    );
    let (ok, report) = run(wrong_window);
    assert!(!ok);
    assert!(report.contains("connect elapsed_ms: expected 900..=1500 ms, observed"), "{report}");
}

fn conntrack_case_leaves_the_rst_in_the_fault_pcap_only() {
    let (release, version) = Version::running().unwrap();
    let root = tempfile::tempdir().unwrap();
    let p = plan::load(&repo_case("conntrack-invalid-rst"), &suite::fixtures_dir()).unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, root.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    let back: CaseRecord = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(back.kernel_release, release);
    let probe = |phase: &str| back.phases.iter().find(|p| p.name == phase).unwrap().probes[0].clone();
    let fault = probe("fault");
    assert_eq!(fault.counter_deltas["host"]["Conntrack.invalid"], 2);
    let Outcome::Stream(o) = &fault.outcome else { panic!("stream outcome: {:?}", fault.outcome) };
    assert_eq!((o.server_error.as_str(), o.client_error.as_str()), ("ECONNRESET", "timeout"));
    let drop = probe("fix-drop-invalid");
    assert_eq!(drop.rules["host: -A INPUT -m conntrack --ctstate INVALID -j DROP"], 1);
    // The seed why-line: the fault's, and none for the fixes, which do what
    // the baseline did.
    let why = fault.why.as_deref().unwrap_or_default();
    assert!(
        why.starts_with(
            "stream container ⇄ 10.2.19.80:5201: 262144 of 524288 bytes; client timeout, server ECONNRESET — "
        ) && why.contains("host Conntrack.invalid +2"),
        "{why}"
    );
    for phase in ["baseline", "fix-liberal", "fix-drop-invalid"] {
        assert_eq!(probe(phase).why, None, "{phase}");
    }

    // The acceptance check, as a person would run it.
    let Some(tcpdump) = netrepro::sys::cmd::which("tcpdump") else {
        eprintln!("tcpdump not installed: pcap filter check skipped (ci/setup-host installs it)");
        return;
    };
    let rsts = |phase: &str| {
        let pcap = root.path().join(format!("conntrack-invalid-rst/{phase}.pcapng"));
        let out = std::process::Command::new(&tcpdump)
            .arg("-nSr")
            .arg(&pcap)
            .arg("tcp[tcpflags] & tcp-rst != 0")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect::<Vec<_>>()
    };
    let fault_rsts = rsts("fault");
    let injected_ack = fault.vars["injected_ack"];
    assert!(
        fault_rsts.iter().any(|l| l.contains("10.2.19.78.") && l.contains(&format!("seq {injected_ack},"))),
        "no RST from the host with seq {injected_ack} in the fault pcap: {fault_rsts:#?}"
    );
    for phase in ["fix-liberal", "fix-drop-invalid"] {
        assert_eq!(rsts(phase), Vec::<String>::new(), "{phase}");
    }
}

/// Held connections are scaffolding: they close after the phase's captures,
/// so their FINs (and, when two CPUs reorder a closing handshake, a stray
/// RST: the 6.1 guest saw one) are in no probe's window or pcap.
fn held_connections_close_outside_the_probe_window() {
    let (release, version) = Version::running().unwrap();
    // The baseline only (the fault changes a global setting).
    let head = &case_before_phase("conntrack-table-full", "fault");
    // The probe's own connection is closed in its window, and only that one.
    let packets = "packets = { \"container/eth0: tcp syn out\" = 17,";
    assert!(head.contains(packets), "the baseline's packets line changed");
    let body = head.replace(packets, &format!("{packets} \"container/eth0: tcp fin out\" = 1,"));
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let case = dir.path().join("conntrack-table-full.toml");
    std::fs::write(&case, body).unwrap();
    let p = plan::load(&case, &suite::fixtures_dir()).unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, root.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    let frames = common::read_pcapng(&root.path().join("conntrack-table-full/baseline.pcapng"));
    let fin = netrepro::wire::packet::Matcher::parse("tcp fin").unwrap();
    let fins = frames
        .iter()
        .filter(|f| f.iface == "container/eth0")
        .filter(|f| fin.matches(&Frame::ethernet(f.t_ns, Direction::In, f.data.clone())))
        .count();
    assert_eq!(fins, 1, "FINs in the baseline pcap: only the probe's own connection may close in it");
}

fn a_scaffolded_case_passes_its_baseline_as_is() {
    let (release, version) = Version::running().unwrap();
    let fx = plan::load_fixture(&suite::fixtures_dir().join("docker-bridge.toml")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let case = dir.path().join("demo.toml");
    std::fs::write(&case, netrepro::case::scaffold::case_text("demo", "docker-bridge", &fx).unwrap()).unwrap();
    let p = plan::load(&case, &suite::fixtures_dir()).unwrap();
    let root = tempfile::tempdir().unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, root.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
}
