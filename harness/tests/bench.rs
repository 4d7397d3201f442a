//! `netrepro bench` beside a suite: every side's namespaces (the harness's,
//! the floor's, the shell script's) stay out of the host's view, so the host
//! guard of a suite running at the same time sees nothing change, at any
//! moment of the bench (issue 17).

mod common;

use common::Need;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use netrepro::app::bench;
use netrepro::app::suite::fixtures_dir;
use netrepro::safety::hostguard::HostState;

fn main() -> std::process::ExitCode {
    common::run(vec![common::test!(a_concurrent_host_guard_sees_nothing_of_the_bench).needs(Need::Root("the bench"))])
}

fn a_concurrent_host_guard_sees_nothing_of_the_bench() {
    for tool in ["ip", "iptables", "ping", "ethtool"] {
        assert!(
            netrepro::sys::cmd::which(tool).is_some(),
            "no {tool} for the bench's shell side: ci/setup-host installs it"
        );
    }
    let before = HostState::capture().unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let bench = std::thread::spawn(move || {
        let script = fixtures_dir().join("../ci/bench/docker-bridge.sh");
        let rounds = bench::run(&fixtures_dir(), &script, 3);
        let scaled = bench::scale(&fixtures_dir(), 5);
        d.store(true, Ordering::Release);
        (rounds, scaled)
    });
    let mut looks = 0;
    while !done.load(Ordering::Acquire) {
        let now = HostState::capture().unwrap();
        let diff = HostState::diff(&before, &now);
        assert!(diff.is_empty(), "the host guard saw the bench: {diff:#?}");
        looks += 1;
    }
    let (rounds, scaled) = bench.join().unwrap();
    let rounds = rounds.unwrap();
    assert_eq!((rounds.harness_ms.len(), rounds.floor_ms.len(), rounds.shell_ms.len()), (3, 3, 3));
    let scaled = scaled.unwrap();
    assert!(scaled.shell.is_some(), "{scaled}");
    assert!(looks >= 3, "only {looks} host snapshots during the bench");
    assert!(HostState::diff(&before, &HostState::capture().unwrap()).is_empty());
    // The fds a namespace costs, counted with nothing else of this process
    // opening any (the snapshots above run subprocesses through pipes: the
    // count before the build once read 26 against 21 at its peak).
    let quiet = bench::scale(&fixtures_dir(), 5).unwrap();
    assert!(quiet.fds >= quiet.base_fds + 7, "7 namespaces, at least one fd each:\n{quiet}");
}
