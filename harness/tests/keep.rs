//! Kept topologies: `run --keep --phase fault` leaves the HTB fault up,
//! `shell` shows the failure inside it, `down` ends it and the host is as it
//! was; a killed keeper takes its namespaces with it.

mod common;

use common::Need;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use netrepro::app::keep::KeptState;

fn main() -> std::process::ExitCode {
    common::run(vec![common::test!(keep_shell_down_and_a_killed_keeper).needs(Need::Namespaces)])
}

fn netrepro(state: &Path, artifacts: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_netrepro"))
        .args(args)
        .env("NETREPRO_STATE", state)
        .env("NETREPRO_ARTIFACTS", artifacts)
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn kept(state: &Path) -> KeptState {
    let all = netrepro::app::keep::list(state);
    assert_eq!(all.len(), 1, "{all:?}");
    all.into_iter().next().unwrap()
}

/// Whether `k` proves itself the live keeper (as the netrepro binary sees it).
fn proven(state: &Path, k: &KeptState) -> bool {
    let dir = netrepro::safety::owndir::OwnDir::open(state).unwrap().unwrap();
    let exe = netrepro::app::keep::OwnExe::of(Path::new(env!("CARGO_BIN_EXE_netrepro"))).unwrap();
    matches!(k.prove(&dir, &exe), netrepro::app::keep::Proof::Up(_))
}

/// Ends any keeper this test started, even when an assertion fails: through
/// the binary, whose keepers only it can prove.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = Command::new(env!("CARGO_BIN_EXE_netrepro")).arg("down").env("NETREPRO_STATE", self.0).output();
    }
}

fn inodes(k: &KeptState) -> BTreeSet<String> {
    k.namespaces.values().map(|n| format!("net:[{}]", n.inode)).collect()
}

fn keep_shell_down_and_a_killed_keeper() {
    let guard = netrepro::safety::hostguard::Guard::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (state, artifacts) = (dir.path().join("state"), dir.path().join("artifacts"));
    let run = |args: &[&str]| netrepro(&state, &artifacts, args);
    let _down = Down(&state);

    // A phase that does not exist: refused, and nothing left behind.
    let o = run(&["run", "htb-direct-qlen", "--keep", "--phase", "no-such-phase"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("has no phase \"no-such-phase\""), "{}", text(&o));
    assert!(!state.exists(), "a failed --keep left {}", state.display());

    let o = run(&["run", "htb-direct-qlen", "--keep", "--phase", "fault"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("kept htb-direct-qlen after phase fault"), "{}", text(&o));
    let k = kept(&state);
    common::assert_marked(k.pid, &common::run_marker(&artifacts));
    assert_eq!(k.phase, "fault");
    assert!(proven(&state, &k));
    assert!(!inodes(&k).contains(&common::own_namespace()), "a kept namespace is the host's own");

    let o = run(&["status"]);
    assert!(text(&o).contains("htb-direct-qlen phase fault: up"), "{}", text(&o));
    let o = run(&["run", "htb-direct-qlen", "--keep"]);
    assert_eq!(o.status.code(), Some(2), "a second keeper of the same case: {}", text(&o));

    // The user's own command shows the failure inside the kept fault.
    let o = run(&["shell", "htb-direct-qlen", "container", "--", "ping", "-c1", "-W1", "172.17.0.1"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("Destination Host Unreachable"), "{}", text(&o));
    let o = run(&["shell", "htb-direct-qlen", "host", "--", "cat", "/proc/thread-self/net/dev"]);
    assert!(text(&o).contains("docker0:"), "the shell is not in the case's host namespace: {}", text(&o));

    let o = run(&["down"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let left = common::wait_unreachable_by_run(&inodes(&k), &common::run_marker(&artifacts), Duration::from_secs(5));
    assert!(left.is_empty(), "namespaces outlived `down`: {left:?}");
    assert!(!state.exists(), "`down` leaves its state directory behind");
    assert!(text(&run(&["status"])).contains("no kept topologies"));

    // A keeper killed outright takes its namespaces with it; `down` tidies.
    let o = run(&["run", "htb-direct-qlen", "--keep", "--phase", "baseline"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let k = kept(&state);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(k.pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    let left = common::wait_unreachable_by_run(&inodes(&k), &common::run_marker(&artifacts), Duration::from_secs(5));
    assert!(left.is_empty(), "namespaces outlived a killed keeper: {left:?}");
    assert!(text(&run(&["status"])).contains("GONE"));
    let o = run(&["shell", "htb-direct-qlen", "container", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("is gone"), "{}", text(&o));
    let o = run(&["down"]);
    assert!(text(&o).contains("keeper already gone"), "{}", text(&o));
    assert!(!state.exists());

    if let Err(report) = guard.check() {
        panic!("the host changed:\n{report}");
    }
}
