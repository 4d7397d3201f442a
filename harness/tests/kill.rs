//! SIGKILL at any moment of a run leaves nothing behind: no namespace is
//! still reachable (by thread, fd or mount), no helper process survives, and
//! the host's network state is as before.

mod common;

use common::Need;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netrepro::safety::hostguard::HostState;

fn main() -> std::process::ExitCode {
    common::run(vec![common::test!(sigkill_at_twenty_points_leaves_nothing).needs(Need::Namespaces)])
}

fn sigkill_at_twenty_points_leaves_nothing() {
    let host_ns = common::own_namespace();
    let before = HostState::capture().unwrap();
    // The drop monitor's BPF program is the kernel's, not the namespace's:
    // it must go with the process too. Each run's own program is known by
    // the prog_id its process holds: other runs on this machine load theirs.
    let artifacts = tempfile::tempdir().unwrap();
    // One whole run first, timed: setup, steps, probes and teardown of
    // three phases (~3 s here, longer on a busy machine). Kill points spread
    // over all of it, plus a few very early ones (namespace creation,
    // fixture build), so the test covers the same stages however fast the
    // machine is today.
    let t0 = Instant::now();
    whole_run(artifacts.path(), "the timing run");
    let whole = t0.elapsed().as_millis() as u64;
    let mut points: Vec<u64> = vec![1, 3, 6, 10, 15];
    points.extend((0..16).map(|i| 25 + i * (whole * 9 / 10 - 25) / 15));
    let mut killed_with_namespaces = 0;
    let mut killed_with_program = 0;
    for (i, ms) in points.iter().enumerate() {
        let mut child = run(artifacts.path()).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        let pid = child.id();
        common::assert_marked(pid, &common::run_marker(artifacts.path()));
        // Watch which namespaces the run's threads enter until the kill.
        let mut seen = BTreeSet::new();
        let mut programs = BTreeSet::new();
        let kill_at = Instant::now() + Duration::from_millis(*ms);
        while Instant::now() < kill_at {
            seen.extend(common::namespaces_of(pid));
            programs.extend(common::bpf_programs_of(pid));
            std::thread::sleep(Duration::from_micros(300));
        }
        seen.extend(common::namespaces_of(pid));
        seen.remove(&host_ns);
        let exited_already = child.try_wait().unwrap().is_some();
        let held_now = common::bpf_programs_of(pid);
        programs.extend(held_now.iter().copied());
        // Of the programs it held, the drop monitor's (by name).
        let monitors = netrepro::sys::drops::loaded();
        programs.retain(|id| monitors.contains(id));
        if held_now.iter().any(|id| monitors.contains(id)) {
            killed_with_program += 1;
        }
        // A run that ended before its kill point was reaped by try_wait: its
        // pid is gone (ESRCH), and what it left is checked all the same.
        if !exited_already {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
        }
        let status = child.wait().unwrap();
        if !seen.is_empty() {
            killed_with_namespaces += 1;
        }
        let left =
            common::wait_unreachable_by_run(&seen, &common::run_marker(artifacts.path()), Duration::from_secs(5));
        assert!(
            left.is_empty(),
            "kill #{i} at {ms} ms of {whole} (exited already: {exited_already}, status {status:?}): \
             namespaces still reachable: {left:?}"
        );
        let still =
            || -> Vec<u32> { netrepro::sys::drops::loaded().into_iter().filter(|id| programs.contains(id)).collect() };
        let end = Instant::now() + Duration::from_secs(5);
        while !still().is_empty() && Instant::now() < end {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(still(), Vec::<u32>::new(), "kill #{i} at {ms} ms left its BPF program loaded");
        let diff = HostState::diff(&before, &HostState::capture().unwrap());
        assert!(diff.is_empty(), "kill #{i} at {ms} ms changed the host: {diff:#?}");
    }
    // The kill points must actually have hit runs that held namespaces.
    assert!(
        killed_with_namespaces >= 15,
        "only {killed_with_namespaces} kills of {points:?} ms caught a live topology"
    );
    if netrepro::sys::drops::monitor().is_ok() {
        assert!(
            killed_with_program >= 10,
            "only {killed_with_program} kills of {points:?} ms caught the drop monitor loaded (a whole run: {whole} ms)"
        );
    }
    // And the next run passes.
    whole_run(artifacts.path(), "the run after the kills");
}

fn run(artifacts: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netrepro"));
    cmd.args(["run", "forwarding-off"]).env("NETREPRO_ARTIFACTS", artifacts);
    cmd
}

fn whole_run(artifacts: &Path, which: &str) {
    let out = run(artifacts).output().unwrap();
    assert!(out.status.success(), "{which} failed:\n{}", String::from_utf8_lossy(&out.stdout));
}
