//! Drop attribution is by network namespace: two cases running at the same
//! time, with the same namespace names and addresses, never see each
//! other's drops.

mod common;

use common::Need;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use netrepro::app::suite;
use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::evidence::record::CaseRecord;
use netrepro::run::runner;
use netrepro::sys::drops::Support;

fn main() -> std::process::ExitCode {
    common::run(vec![common::test!(parallel_cases_never_see_each_others_drops).needs(Need::Namespaces)])
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
