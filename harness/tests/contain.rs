//! `sh` steps are contained (issue 18): whatever a step starts — `&`,
//! `setsid`, a double fork — ends with the step when its shell exits, at its
//! deadline, and when netrepro is SIGKILLed mid-step; a background child
//! holding the output pipe does not hang the run; output is bounded.
//!
//! Every process a test starts carries `CONTAIN_MARK=<unique>` in its
//! environment, so "no process of it is left" is a scan of
//! `/proc/*/environ` that other tests' (and other people's) processes
//! cannot disturb.

mod common;

use common::Need;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use netrepro::sys::contain;
use netrepro::sys::netns::Netns;

/// A mark no other test uses.
fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(a_step_runs_in_its_namespace_and_says_its_status_and_output).needs(Need::Namespaces),
        common::test!(background_children_end_with_the_step_and_do_not_hang_it).needs(Need::Namespaces),
        common::test!(a_step_at_its_deadline_is_killed_with_everything_it_started).needs(Need::Namespaces),
        common::test!(output_past_the_bound_is_cut_and_said).needs(Need::Namespaces),
        common::test!(a_case_whose_step_escapes_leaves_nothing_run_normally_at_its_deadline_or_killed)
            .needs(Need::Namespaces),
        common::test!(a_step_printing_200_mb_leaves_a_bounded_evidence_and_rss).needs(Need::Namespaces),
    ])
}

fn mark(what: &str) -> String {
    format!("{what}-{}-{}", std::process::id(), netrepro::sys::clock::now_ns())
}

/// Pids of live processes (not zombies) whose environment holds `CONTAIN_MARK=<mark>`.
fn marked(mark: &str) -> Vec<u32> {
    let want = format!("CONTAIN_MARK={mark}");
    let mut out = Vec::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = p.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(env) = std::fs::read(p.path().join("environ")) else { continue };
        let zombie = std::fs::read_to_string(p.path().join("stat"))
            .is_ok_and(|s| s.rsplit_once(')').is_some_and(|(_, r)| r.trim_start().starts_with('Z')));
        if !zombie && env.split(|b| *b == 0).any(|v| v == want.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

/// Waits (bounded) until no process carries `mark`; the ones left, with
/// their command lines.
fn wait_none_marked(mark: &str, within: Duration) -> Vec<String> {
    let end = Instant::now() + within;
    loop {
        let left = marked(mark);
        if left.is_empty() || Instant::now() > end {
            return left
                .iter()
                .map(|p| {
                    let c = std::fs::read(format!("/proc/{p}/cmdline")).unwrap_or_default();
                    format!("{p}: {}", String::from_utf8_lossy(&c).replace('\0', " "))
                })
                .collect();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `setsid sleep 600` detached from everything, as the attack.
fn escapee(mark: &str) -> String {
    format!("CONTAIN_MARK={mark} setsid sleep 600 >/dev/null 2>&1 </dev/null &")
}

fn a_step_runs_in_its_namespace_and_says_its_status_and_output() {
    let ns = Netns::new("step").unwrap();
    let inode = netrepro::sys::netns::inode_of(ns.raw_fd()).unwrap();
    let out = contain::sh(&ns, "readlink /proc/self/ns/net; echo err >&2; exit 3", Duration::from_secs(10)).unwrap();
    assert_eq!(out.status, 3);
    assert_eq!(out.stdout.trim(), format!("net:[{inode}]"));
    assert_eq!(out.stderr, "err\n");
    let out = contain::sh(&ns, "exec /nonexistent/x", Duration::from_secs(10)).unwrap();
    assert_eq!(out.status, 127, "{out:?}");
}

fn background_children_end_with_the_step_and_do_not_hang_it() {
    let m = mark("bg");
    let ns = Netns::new("step").unwrap();
    let t = Instant::now();
    // `sleep 1000 &` keeps the stdout pipe: the run used to wait on it.
    let script = format!("CONTAIN_MARK={m} sleep 1000 & {} echo started", escapee(&m));
    let out = contain::sh(&ns, &script, Duration::from_secs(30)).unwrap();
    assert!(t.elapsed() < Duration::from_secs(5), "the step took {:?}", t.elapsed());
    assert_eq!((out.status, out.stdout.as_str()), (0, "started\n"));
    let left = wait_none_marked(&m, Duration::from_secs(2));
    assert!(left.is_empty(), "processes of the step outlived it: {left:?}");
}

fn a_step_at_its_deadline_is_killed_with_everything_it_started() {
    let m = mark("deadline");
    let ns = Netns::new("step").unwrap();
    let script = format!("{} echo before; CONTAIN_MARK={m} sleep 600", escapee(&m));
    let t = Instant::now();
    let e = format!("{:#}", contain::sh(&ns, &script, Duration::from_millis(1000)).unwrap_err());
    assert!(t.elapsed() < Duration::from_secs(5), "the step took {:?}", t.elapsed());
    assert!(e.contains("still running after 1s: killed, with every process it started"), "{e}");
    assert!(e.contains("its output so far: before"), "{e}");
    let left = wait_none_marked(&m, Duration::from_secs(2));
    assert!(left.is_empty(), "processes of the step outlived its deadline: {left:?}");
}

fn output_past_the_bound_is_cut_and_said() {
    let ns = Netns::new("step").unwrap();
    let script = "head -c 20000000 /dev/zero | tr '\\0' x; head -c 100000 /dev/zero | tr '\\0' y >&2";
    let out = contain::sh(&ns, script, Duration::from_secs(30)).unwrap();
    let limit = contain::OUTPUT_LIMIT;
    assert_eq!(out.status, 0);
    assert!(out.stdout.starts_with(&"x".repeat(limit)), "{}", &out.stdout[..100]);
    assert!(out.stdout.ends_with(&format!("x\n[… {} bytes cut]", 20_000_000 - limit)), "{}", &out.stdout[limit - 10..]);
    assert!(out.stderr.ends_with(&format!("y\n[… {} bytes cut]", 100_000 - limit)), "{}", &out.stderr[limit - 10..]);
}

// ---- the same through `netrepro run`, as a case -------------------------

/// A directory with one case, `contained`, whose fault phase runs `step`.
fn case_dir(step: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    common::write_sh_case(dir.path(), "contained", step);
    dir
}

fn netrepro(cases: &Path, artifacts: &Path) -> Command {
    let mut cmd = common::netrepro(&["run", "contained"], cases, artifacts);
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to its end, watching which namespaces its threads enter;
/// returns (exit status, stdout + stderr, namespaces seen, peak RSS in KiB).
// Reaped by wait4 below, which also reads its peak RSS; clippy sees no wait().
#[allow(clippy::zombie_processes)]
fn watched(mut cmd: Command, kill_when: Option<&dyn Fn() -> bool>) -> (i32, String, BTreeSet<String>, i64) {
    let host = common::own_namespace();
    let mut child = cmd.spawn().unwrap();
    let pid = child.id();
    // What the leak checks find the run's processes by.
    let artifacts = cmd.get_envs().find(|(k, _)| *k == "NETREPRO_ARTIFACTS").and_then(|(_, v)| v).unwrap();
    common::assert_marked(pid, &common::run_marker(Path::new(artifacts)));
    let (mut so, mut se) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut so, &mut s).unwrap();
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut se, &mut s).unwrap();
        s
    });
    let mut seen = BTreeSet::new();
    let end = Instant::now() + Duration::from_secs(240);
    loop {
        seen.extend(common::namespaces_of(pid));
        if let Some(f) = kill_when {
            if f() {
                seen.extend(common::namespaces_of(pid));
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL)
                    .unwrap();
            }
        }
        // Not reaped here: wait4 below reaps it and reads its peak RSS.
        let mut info: libc::siginfo_t = unsafe_zeroed();
        // SAFETY: waitid writes into `info`, which we own; WNOWAIT leaves
        // the child to be reaped by wait4.
        let r = unsafe { libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOHANG | libc::WNOWAIT) };
        // SAFETY: si_pid is valid for the siginfo waitid filled (0 when nothing exited).
        if r == 0 && unsafe { info.si_pid() } != 0 {
            break;
        }
        if Instant::now() > end {
            // Not left behind by a failing test: it and its step go.
            let _ = child.kill();
            let _ = child.wait();
            panic!("netrepro run did not end in 240 s");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let (mut status, mut usage): (libc::c_int, libc::rusage) = (0, unsafe_zeroed());
    // SAFETY: wait4 on our own child, writing into locals we own.
    let r = unsafe { libc::wait4(pid as i32, &mut status, 0, &mut usage) };
    assert_eq!(r, pid as i32);
    seen.remove(&host);
    let code = if libc::WIFEXITED(status) { libc::WEXITSTATUS(status) } else { -libc::WTERMSIG(status) };
    let text = format!("{}{}", t_out.join().unwrap(), t_err.join().unwrap());
    (code, text, seen, usage.ru_maxrss)
}

fn unsafe_zeroed<T>() -> T {
    // SAFETY: only used for plain C structs (siginfo_t, rusage), for which
    // all-zero bytes are a valid value.
    unsafe { std::mem::zeroed() }
}

fn assert_nothing_left(which: &str, m: &str, seen: &BTreeSet<String>, artifacts: &Path) {
    let left = wait_none_marked(m, Duration::from_secs(5));
    assert!(left.is_empty(), "{which}: processes of the step are left: {left:?}");
    assert!(!seen.is_empty(), "{which}: the run was never seen in a namespace of its own");
    let left = common::wait_unreachable_by_run(seen, &common::run_marker(artifacts), Duration::from_secs(5));
    assert!(left.is_empty(), "{which}: namespaces still reachable: {left:?}");
}

fn a_case_whose_step_escapes_leaves_nothing_run_normally_at_its_deadline_or_killed() {
    let artifacts = tempfile::tempdir().unwrap();

    // Run normally: `sleep 1000 &` and a setsid'd sleep 600 do not hang it.
    let m = mark("normal");
    let cases = case_dir(&format!("CONTAIN_MARK={m} sleep 1000 & {}", escapee(&m)));
    let t = Instant::now();
    let (code, said, seen, _) = watched(netrepro(cases.path(), artifacts.path()), None);
    assert_eq!(code, 0, "run normally:\n{said}");
    assert!(t.elapsed() < Duration::from_secs(60), "run normally took {:?}", t.elapsed());
    assert_nothing_left("run normally", &m, &seen, artifacts.path());

    // At its deadline (lowered for the test: a hung step).
    let m = mark("deadline");
    let cases = case_dir(&format!("{} CONTAIN_MARK={m} sleep 600", escapee(&m)));
    let mut cmd = netrepro(cases.path(), artifacts.path());
    cmd.env(contain::DEADLINE_ENV, "1500");
    let (code, said, seen, _) = watched(cmd, None);
    assert_eq!(code, 1, "at its deadline:\n{said}");
    assert!(said.contains("still running after 1.5s: killed, with every process it started"), "{said}");
    assert_nothing_left("at its deadline", &m, &seen, artifacts.path());

    // SIGKILLed mid-step, once the escapee is running.
    let m = mark("killed");
    let cases = case_dir(&format!("{} CONTAIN_MARK={m} sleep 600", escapee(&m)));
    let started = || marked(&m).len() >= 2;
    let (code, _, seen, _) = watched(netrepro(cases.path(), artifacts.path()), Some(&started));
    assert_eq!(code, -libc::SIGKILL);
    assert_nothing_left("SIGKILLed mid-step", &m, &seen, artifacts.path());
}

fn a_step_printing_200_mb_leaves_a_bounded_evidence_and_rss() {
    let artifacts = tempfile::tempdir().unwrap();
    let cases = case_dir("head -c 200000000 /dev/zero | tr '\\0' x");
    let (code, said, _, rss_kib) = watched(netrepro(cases.path(), artifacts.path()), None);
    assert_eq!(code, 0, "{said}");
    let evidence: PathBuf = artifacts.path().join("contained/evidence.json");
    let size = std::fs::metadata(&evidence).unwrap().len();
    assert!(size < 1 << 20, "{}: {size} bytes", evidence.display());
    let rec = netrepro::evidence::record::CaseRecord::read(&evidence).unwrap();
    let step = rec.phases.iter().flat_map(|p| &p.steps).find(|s| s.step.contains("head -c")).unwrap();
    assert!(step.output.ends_with(&format!("[… {} bytes cut]", 200_000_000 - contain::OUTPUT_LIMIT)), "{}", {
        let o = &step.output;
        &o[o.len().saturating_sub(80)..]
    });
    // A run of this case peaks near 50 MB here; 618 MB before (issue 18).
    assert!(rss_kib < 150 * 1024, "netrepro peaked at {rss_kib} KiB");
}
