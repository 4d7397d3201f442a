//! Drop attribution is by network namespace: two cases running at the same
//! time, with the same namespace names and addresses, never see each
//! other's drops. And within a case, by origin: the probe's own traffic is
//! never the incident's.

mod common;

use common::Need;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use netrepro::app::suite;
use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::evidence::record::CaseRecord;
use netrepro::run::runner;
use netrepro::sys::drops::{Origin, Support};

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(parallel_cases_never_see_each_others_drops).needs(Need::Namespaces),
        common::test!(a_healthy_pings_own_replies_are_labelled_not_counted).needs(Need::Namespaces),
    ])
}

fn run(id: &str, root: &std::path::Path) -> CaseRecord {
    let (release, version) = Version::running().unwrap();
    let p = plan::load(&suite::cases_dir().join(format!("{id}.toml")), &suite::fixtures_dir()).unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, root).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    rec
}

/// (reason or, without reasons, the freeing function) of every drop.
fn drop_names(rec: &CaseRecord) -> Vec<String> {
    rec.phases
        .iter()
        .flat_map(|p| &p.probes)
        .flat_map(|p| &p.drops)
        .map(|d| if d.reason.is_empty() { d.at.clone() } else { d.reason.clone() })
        .collect()
}

fn parallel_cases_never_see_each_others_drops() {
    if matches!(netrepro::sys::drops::support(), Support::Broken(_) | Support::NotPermitted(_)) {
        panic!("the drop monitor does not work here: {}", netrepro::sys::drops::describe());
    }
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let b_path = b.path().to_path_buf();
    // forwarding-off again and again for as long as htb-direct-qlen runs,
    // so their phases overlap.
    let other = std::thread::spawn(move || {
        let mut runs = Vec::new();
        while !d.load(Ordering::Acquire) || runs.is_empty() {
            runs.push(run("forwarding-off", &b_path));
        }
        runs
    });
    let htb = run("htb-direct-qlen", a.path());
    done.store(true, Ordering::Release);
    let fwd = other.join().unwrap();
    assert!(!fwd.is_empty());

    let htb_names = drop_names(&htb);
    let fwd_names: Vec<String> = fwd.iter().flat_map(drop_names).collect();
    let (qdisc, inaddr) = match netrepro::sys::drops::support() {
        Support::Reasons(_) => ("QDISC_DROP", "IP_INADDRERRORS"),
        // 5.10: no reasons, but the freeing function still tells them apart
        // (a qdisc drop is freed in kfree_skb_list there).
        _ => ("kfree_skb_list", "ip_error"),
    };
    assert!(htb_names.iter().any(|n| n == qdisc), "htb saw no {qdisc}: {htb_names:?}");
    assert!(fwd_names.iter().any(|n| n == inaddr), "forwarding-off saw no {inaddr}: {fwd_names:?}");
    assert!(!htb_names.iter().any(|n| n == inaddr), "htb-direct-qlen saw forwarding-off's {inaddr}: {htb_names:?}");
    assert!(!fwd_names.iter().any(|n| n == qdisc), "forwarding-off saw htb-direct-qlen's {qdisc}: {fwd_names:?}");
}

/// A healthy ping baseline on docker-bridge that asserts no NO_SOCKET drop
/// in the pinging namespace: it holds, though the kernel frees one copy of
/// every echo reply there as NO_SOCKET — those are the probe's own, and the
/// evidence keeps them under that label, each with the probe's echo id and
/// tied to the reply's captured frame.
const OWN_PING: &str = r#"
id = "own-ping"
title = "A healthy ping: the probe's own echo replies are not the incident's drops"
urls = ["https://example.org/netrepro-own-ping"]
symptom = "none: a baseline"
fix = "none"
fixture = "docker-bridge"
capture = ["container/eth0"]

[probes]
ping = { kind = "ping", from = "container", to = "10.2.19.80", count = 3, interval_ms = 20, wait_ms = 200 }

[[phase]]
name = "baseline"
[phase.expect.ping]
replies = 3
drops = { "container: NO_SOCKET" = 0, "container/eth0: NO_SOCKET" = 0 }
"#;

fn a_healthy_pings_own_replies_are_labelled_not_counted() {
    let Support::Reasons(_) = netrepro::sys::drops::support() else {
        eprintln!("no drop reasons here: {}", netrepro::sys::drops::describe());
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let case = dir.path().join("own-ping.toml");
    std::fs::write(&case, OWN_PING).unwrap();
    let p = plan::load(&case, &suite::fixtures_dir()).unwrap();
    let (release, version) = Version::running().unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, root.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    let ping = &rec.phases[0].probes[0];
    let netrepro::evidence::outcome::Outcome::Ping(o) = &ping.outcome else { panic!("{:?}", ping.outcome) };
    let own: Vec<&netrepro::sys::drops::Drop> = ping
        .drops
        .iter()
        .filter(|d| d.ns == "container" && d.reason == "NO_SOCKET" && d.origin == Origin::ProbeOwn)
        .collect();
    assert_eq!(
        own.iter().map(|d| d.count).sum::<u64>(),
        3,
        "the evidence keeps the probe's own drops: {:#?}",
        ping.drops
    );
    assert!(own.iter().all(|d| d.origin_why.contains(&format!("id {}", o.id))), "{own:#?}");
    // Each packet is the echo reply with our id, tied to its frame on eth0.
    let packets: Vec<&netrepro::sys::drops::DroppedPacket> = own.iter().flat_map(|d| &d.packets).collect();
    if netrepro::sys::drops::monitor().is_ok_and(|m| m.has_packets()) {
        assert_eq!(packets.len(), 3);
        let frames = &ping.packets["container/eth0"].frames;
        for pk in packets {
            let icmp = pk.headers.icmp.expect("an ICMP packet");
            assert_eq!((icmp.kind, icmp.id), (0, Some(o.id)), "{}", pk.summary);
            let tie = pk.frame.as_ref().unwrap_or_else(|| panic!("{} is tied to no frame", pk.summary));
            assert_eq!(tie.iface, "container/eth0");
            let f = frames.iter().find(|f| f.pcap_frame == tie.pcap_frame).unwrap();
            assert_eq!(f.headers.icmp.and_then(|i| i.seq), icmp.seq, "the reply with the same sequence");
        }
    }
    // Nothing of it in the why-lines or the failure report's incident part.
    assert_eq!(ping.why, None);
    let check = ping.checks.iter().find(|c| c.what == "drops container: NO_SOCKET").unwrap();
    // ping_rcv from 6.2 on, icmp_rcv before.
    assert!(
        check.observed.to_string().starts_with("0; not counted: 3 × IPv4 in ")
            && check.observed.to_string().ends_with("(probe_own)"),
        "{check:?}"
    );
}
