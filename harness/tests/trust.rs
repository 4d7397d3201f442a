//! State files are claims to verify, never orders (issue 18), tested as the
//! attacks: forged state files make `down` and `shell` refuse and touch
//! nothing; a state directory someone else owns or can write is refused;
//! two `--keep` of one case at once leave one keeper; a truncated state
//! file is named, and another user's keeper is reported as theirs.

mod common;

use common::Need;

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_netrepro");
const CASE: &str = "htb-direct-qlen";

/// `netrepro ARGS` with state in `state`, in its own process group: a
/// `kill(0)` it must never send would then not reach this test.
fn netrepro(state: &Path, args: &[&str]) -> Output {
    command(state, args).output().unwrap()
}

fn command(state: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env("NETREPRO_STATE", state).process_group(0);
    if let Some(a) = state.parent() {
        c.env("NETREPRO_ARTIFACTS", a.join("artifacts"));
    }
    c
}

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(forged_state_files_make_down_and_shell_refuse_and_touch_nothing),
        common::test!(forged_pids_0_and_4294967295_are_never_signalled_nor_entered)
            .needs(Need::Root("needs root for a PID namespace of their own")),
        common::test!(a_truncated_state_file_is_named_and_left_alone),
        common::test!(a_state_directory_others_can_write_or_a_symlink_is_refused),
        common::test!(a_state_directory_of_another_uid_is_refused).needs(Need::Root("needs root to chown")),
        common::test!(keep_is_refused_in_a_state_directory_others_own_or_can_write)
            .needs(Need::Namespaces)
            .needs(Need::Root("needs root to chown")),
        common::test!(two_keeps_at_once_leave_one_keeper_that_only_its_claim_reaches)
            .needs(Need::Namespaces)
            .needs(Need::Root("needs root to become uid 65534")),
    ])
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// A state directory as netrepro makes it: the caller's, 0700.
fn state_dir(tmp: &Path, name: &str) -> PathBuf {
    let d = tmp.join(name);
    std::fs::create_dir(&d).unwrap();
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700)).unwrap();
    d
}

/// The nsfs inode of this test's (the host's) network namespace.
fn host_inode() -> u64 {
    let s = common::own_namespace();
    s.trim_start_matches("net:[").trim_end_matches(']').parse().unwrap()
}

/// A state file's text as a keeper would write it, with the given claims.
fn claim(case: &str, pid: u64, namespaces: serde_json::Value, state: &Path) -> String {
    json!({
        "case": case, "phase": "fault", "pid": pid, "started_unix_ms": 0, "kernel": "6.18",
        "evidence": "/nonexistent/evidence.json", "namespaces": namespaces,
        "state_dir": state, "claim_fd": 3, "token": "00112233445566778899aabbccddeeff",
    })
    .to_string()
}

/// `sleep 60` holding an fd (3) on this test's network namespace: a live
/// process that is no keeper, with a namespace fd a forged file can name.
struct Sleeper(Child);

impl Sleeper {
    fn start() -> Sleeper {
        let child = Command::new("sh").args(["-c", "exec sleep 60 3</proc/self/ns/net"]).spawn().unwrap();
        let fd3 = format!("/proc/{}/fd/3", child.id());
        let end = Instant::now() + Duration::from_secs(5);
        while !std::fs::read_link(&fd3).is_ok_and(|l| l.to_string_lossy().starts_with("net:[")) {
            assert!(Instant::now() < end, "sleep did not get its namespace fd");
            std::thread::sleep(Duration::from_millis(10));
        }
        Sleeper(child)
    }

    fn pid(&self) -> u64 {
        self.0.id().into()
    }

    fn alive(&mut self) -> bool {
        self.0.try_wait().unwrap().is_none()
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A pid no process has: a child of ours, reaped.
fn dead_pid() -> u64 {
    let mut c = Command::new("true").spawn().unwrap();
    c.wait().unwrap();
    c.id().into()
}

/// Every file under `dir` with its bytes, to show nothing was touched.
fn snapshot(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            let b = std::fs::read(&p).unwrap();
            (p, b)
        })
        .collect();
    out.sort();
    out
}

/// `down` and `shell` refuse the state file in `state`, say `why`, and
/// leave every file as it was; `status` names the file.
fn refused(state: &Path, case: &str, why: &str) {
    let before = snapshot(state);
    let o = netrepro(state, &["down"]);
    assert_eq!(o.status.code(), Some(1), "down accepted a forged file:\n{}", text(&o));
    assert!(text(&o).contains(why) && text(&o).contains("left alone"), "down: {}", text(&o));
    assert!(o.stdout.is_empty(), "down ended something: {}", text(&o));

    let o = netrepro(state, &["shell", case, "host", "--", "readlink", "/proc/self/ns/net"]);
    assert_eq!(o.status.code(), Some(2), "shell accepted a forged file:\n{}", text(&o));
    assert!(text(&o).contains(why), "shell: {}", text(&o));
    assert!(!text(&o).contains("net:["), "shell ran its command in a namespace a forged file named: {}", text(&o));

    let o = netrepro(state, &["status"]);
    assert!(text(&o).contains(why) && !text(&o).contains(": up;"), "status: {}", text(&o));
    assert_eq!(snapshot(state), before, "a forged state file led to a change in {}", state.display());
}

fn forged_state_files_make_down_and_shell_refuse_and_touch_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let mut sleeper = Sleeper::start();
    let (host, sleep) = (host_inode(), sleeper.pid());
    let ns = |fd: i32, inode: u64| json!({ "host": { "fd": fd, "inode": inode } });

    // No namespaces: once counted as alive (`all` over nothing).
    let s = state_dir(tmp.path(), "empty");
    std::fs::write(s.join("x.json"), claim("x", sleep, json!({}), &s)).unwrap();
    refused(&s, "x", "it names no namespace");

    // An unrelated live process: once got SIGTERM, then SIGKILL.
    let s = state_dir(tmp.path(), "unrelated");
    std::fs::write(s.join("x.json"), claim("x", sleep, ns(0, 1), &s)).unwrap();
    refused(&s, "x", &format!("pid {sleep} is not a netrepro keeper: it runs"));

    // A foreign fd: the same process's fd on the host's namespace, with
    // the right inode. `shell` once entered it.
    let s = state_dir(tmp.path(), "foreign-fd");
    std::fs::write(s.join("x.json"), claim("x", sleep, ns(3, host), &s)).unwrap();
    refused(&s, "x", &format!("pid {sleep} is not a netrepro keeper"));
    assert!(sleeper.alive(), "down signalled a process no keeper's");

    // pid 1: never signalled, never entered.
    let s = state_dir(tmp.path(), "init");
    std::fs::write(s.join("x.json"), claim("x", 1, ns(3, host), &s)).unwrap();
    refused(&s, "x", "pid 1 cannot be a keeper's");

    // A case that is an absolute path: `down` once deleted <path>.json and
    // <path>.log. The victims sit next to the state directory.
    let victim = tmp.path().join("victim");
    std::fs::write(victim.with_extension("json"), "victim json").unwrap();
    std::fs::write(victim.with_extension("log"), "victim log").unwrap();
    let s = state_dir(tmp.path(), "abs");
    let dead = dead_pid();
    std::fs::write(s.join("x.json"), claim(victim.to_str().unwrap(), dead, ns(3, host), &s)).unwrap();
    refused(&s, "x", "ignored state file");
    let o = netrepro(&s, &["shell", victim.to_str().unwrap(), "host", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("case id"), "{}", text(&o));
    let o = netrepro(&s, &["down", victim.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("case id"), "{}", text(&o));
    assert_eq!(std::fs::read(victim.with_extension("json")).unwrap(), b"victim json");
    assert_eq!(std::fs::read(victim.with_extension("log")).unwrap(), b"victim log");
    assert!(sleeper.alive(), "down signalled a process no keeper's");
}

/// pid 0 (once: netrepro's own process group) and 4294967295 (once:
/// kill(-1), everyone). Run in a PID namespace of their own, so that a
/// regression kills only what is in it.
fn forged_pids_0_and_4294967295_are_never_signalled_nor_entered() {
    let tmp = tempfile::tempdir().unwrap();
    let host = host_inode();
    let ns = |fd: i32, inode: u64| json!({ "host": { "fd": fd, "inode": inode } });
    for (pid, why) in [(0u64, "pid 0 cannot be a keeper's"), (4294967295, "pid 4294967295 cannot be a keeper's")] {
        let s = state_dir(tmp.path(), &format!("pid-{pid}"));
        std::fs::write(s.join("x.json"), claim("x", pid, ns(3, host), &s)).unwrap();
        let before = snapshot(&s);
        for (args, code) in [(vec!["down"], 1), (vec!["shell", "x", "host", "--", "true"], 2)] {
            let o = Command::new("unshare")
                .args(["--pid", "--fork", "--mount-proc", "--kill-child", "--", BIN])
                .args(&args)
                .env("NETREPRO_STATE", &s)
                .process_group(0)
                .output()
                .unwrap();
            assert_eq!(o.status.code(), Some(code), "{args:?} with pid {pid}:\n{}", text(&o));
            assert!(text(&o).contains(why), "{args:?}: {}", text(&o));
        }
        assert_eq!(snapshot(&s), before);
    }
}

fn a_truncated_state_file_is_named_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let s = state_dir(tmp.path(), "state");
    let full = claim(CASE, dead_pid(), json!({ "host": { "fd": 3, "inode": 1 } }), &s);
    let file = s.join(format!("{CASE}.json"));
    std::fs::write(&file, &full[..full.len() / 2]).unwrap();
    let o = netrepro(&s, &["status"]);
    assert!(
        text(&o).contains(&format!("unreadable state file {}", file.display())),
        "status hides a truncated state file: {}",
        text(&o)
    );
    assert!(!text(&o).contains("no kept topologies"), "{}", text(&o));
    let o = netrepro(&s, &["down"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("unreadable state file") && text(&o).contains("left alone"), "{}", text(&o));
    let o = netrepro(&s, &["shell", CASE, "host", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("unreadable state file"), "{}", text(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), full[..full.len() / 2]);
}

/// State directories `status`, `down`, `shell` and `run --keep` must
/// refuse, each with the reason they must say: one open to everyone, a
/// symbolic link, and (as root) one another uid owns.
fn refused_dirs(tmp: &Path, another_uid: bool) -> Vec<(PathBuf, String)> {
    let mut dirs = Vec::new();

    let open = state_dir(tmp, "world-writable");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    dirs.push((open, "writable by group or others (mode 0777)".to_string()));

    let target = state_dir(tmp, "target");
    let link = tmp.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    dirs.push((link, "a symbolic link".into()));

    if another_uid {
        let theirs = state_dir(tmp, "theirs");
        std::os::unix::fs::chown(&theirs, Some(65534), Some(65534)).unwrap();
        dirs.push((theirs, "owned by uid 65534, not by you (uid 0)".into()));
    }
    dirs
}

/// Every command refuses `dir`, saying `why`, and changes nothing in it;
/// with `keep`, `run --keep` too and no keeper starts.
fn refused_dir(dir: &Path, why: &str, keep: bool) {
    std::fs::write(dir.join(format!("{CASE}.json")), "{}").unwrap();
    let before = snapshot(dir);
    for (args, code) in
        [(vec!["status"], 1), (vec!["down"], 1), (vec!["down", CASE], 1), (vec!["shell", CASE, "host"], 2)]
    {
        let o = netrepro(dir, &args);
        assert_eq!(o.status.code(), Some(code), "{args:?} in {}: {}", dir.display(), text(&o));
        let t = text(&o);
        assert!(t.contains(&dir.display().to_string()) && t.contains(why), "{args:?}: {t}");
    }
    if keep {
        let o = netrepro(dir, &["run", CASE, "--keep", "--phase", "baseline"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(why), "{}", text(&o));
        assert!(keepers(dir).is_empty(), "a keeper started for a refused state directory");
    }
    assert_eq!(snapshot(dir), before, "{} changed", dir.display());
}

fn a_state_directory_others_can_write_or_a_symlink_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    for (dir, why) in &refused_dirs(tmp.path(), false) {
        refused_dir(dir, why, false);
    }
}

fn a_state_directory_of_another_uid_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dirs = refused_dirs(tmp.path(), true);
    let (dir, why) = dirs.last().unwrap();
    refused_dir(dir, why, false);
}

fn keep_is_refused_in_a_state_directory_others_own_or_can_write() {
    let tmp = tempfile::tempdir().unwrap();
    for (dir, why) in &refused_dirs(tmp.path(), true) {
        refused_dir(dir, why, true);
    }
}

/// The live keepers of `CASE` whose state directory is `state` (by the
/// environment they were started with).
fn keepers(state: &Path) -> Vec<u32> {
    let env = format!("NETREPRO_STATE={}", state.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.len() < 3 || args[1] != b"__keep" || args[2] != CASE.as_bytes() {
            continue;
        }
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if environ.split(|b| *b == 0).any(|v| v == env.as_bytes()) {
            out.push(pid);
        }
    }
    out
}

fn as_nobody(cmd: &mut Command) -> &mut Command {
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Ends any keeper this test started, even when an assertion fails with a
/// forged state file in place (which `down` rightly refuses): those left
/// are killed outright, which ends their namespaces too; `down` tidies.
struct Down<'a>(&'a Path);

impl Drop for Down<'_> {
    fn drop(&mut self) {
        let _ = netrepro(self.0, &["down"]);
        for pid in keepers(self.0) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGKILL);
        }
        let _ = netrepro(self.0, &["down"]);
    }
}

fn two_keeps_at_once_leave_one_keeper_that_only_its_claim_reaches() {
    let guard = netrepro::safety::hostguard::Guard::start().unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // Others may pass through (the nobody checks below), not read.
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o711)).unwrap();
    let state = tmp.path().join("state");
    let _down = Down(&state);

    // Two `--keep` of one case started together: one keeper, one refusal.
    let spawn = || {
        command(&state, &["run", CASE, "--keep", "--phase", "baseline"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    let mut codes = [a.status.code(), b.status.code()];
    codes.sort();
    assert_eq!(codes, [Some(0), Some(2)], "\n--- first:\n{}\n--- second:\n{}", text(&a), text(&b));
    let refusal = if a.status.code() == Some(2) { &a } else { &b };
    assert!(
        text(refusal).contains(&format!("{CASE} is kept already")) || text(refusal).contains("is held by"),
        "{}",
        text(refusal)
    );
    let pids = keepers(&state);
    assert_eq!(pids.len(), 1, "keepers of {CASE}: {pids:?}");
    let keeper = pids[0];
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700, "the state directory is made 0700");
    let file = state.join(format!("{CASE}.json"));
    let real = std::fs::read_to_string(&file).unwrap();
    let o = netrepro(&state, &["status"]);
    assert!(text(&o).contains(&format!("{CASE} phase baseline: up; pid {keeper}")), "{}", text(&o));

    // The real keeper's pid with a claim it does not hold: a namespace it
    // does not keep, a token it did not draw. Refused; the keeper lives.
    let forge = |change: &dyn Fn(&mut serde_json::Value)| {
        let mut v: serde_json::Value = serde_json::from_str(&real).unwrap();
        change(&mut v);
        v.to_string()
    };
    let forged = [
        (
            forge(&|v| {
                let fd = v["claim_fd"].clone();
                v["namespaces"]["host"] = json!({ "fd": fd, "inode": host_inode() });
            }),
            "its claim's namespaces differs",
        ),
        (forge(&|v| v["token"] = json!("00000000000000000000000000000000")), "its claim's token differs"),
    ];
    for (t, why) in forged {
        std::fs::write(&file, &t).unwrap();
        let o = netrepro(&state, &["shell", CASE, "host", "--", "readlink", "/proc/self/ns/net"]);
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains(why) && !text(&o).contains("net:["), "{}", text(&o));
        let o = netrepro(&state, &["down"]);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(text(&o).contains(why) && text(&o).contains("left alone"), "{}", text(&o));
        assert_eq!(std::fs::read_to_string(&file).unwrap(), t, "down touched a forged file");
        assert_eq!(keepers(&state), [keeper], "down ended a keeper on a forged claim");
    }
    std::fs::write(&file, &real).unwrap();

    // Another user against this live root keeper: theirs to see, not ours
    // to reach, never "GONE".
    let theirs = state_dir(tmp.path(), "nobody-state");
    std::fs::write(theirs.join(format!("{CASE}.json")), &real).unwrap();
    for p in [theirs.clone(), theirs.join(format!("{CASE}.json"))] {
        std::os::unix::fs::chown(&p, Some(65534), Some(65534)).unwrap();
    }
    let as_them = |dir: &Path, args: &[&str]| as_nobody(&mut command(dir, args)).output().unwrap();
    let o = as_them(&theirs, &["status"]);
    assert!(text(&o).contains(&format!("kept by uid 0; you cannot reach it (pid {keeper})")), "{}", text(&o));
    assert!(!text(&o).contains("GONE"), "{}", text(&o));
    let o = as_them(&theirs, &["down"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("kept by uid 0; you cannot reach it"), "{}", text(&o));
    assert!(!text(&o).contains("already gone"), "{}", text(&o));
    let o = as_them(&theirs, &["shell", CASE, "host", "--", "true"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("you cannot reach it"), "{}", text(&o));
    assert!(theirs.join(format!("{CASE}.json")).exists(), "down as nobody removed a state file");
    // And root's own state directory: refused as root's.
    let o = as_them(&state, &["down"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("owned by uid 0, not by you (uid 65534)"), "{}", text(&o));
    assert_eq!(keepers(&state), [keeper], "nobody ended root's keeper");

    // Truncated while its keeper lives: `status` names the file and finds
    // the keeper through its claim; `down` ends it.
    std::fs::write(&file, &real[..real.len() / 2]).unwrap();
    let o = netrepro(&state, &["status"]);
    assert!(text(&o).contains(&format!("unreadable state file {}", file.display())), "{}", text(&o));
    assert!(text(&o).contains("its keeper proves itself") && text(&o).contains(": up;"), "{}", text(&o));
    let kept: serde_json::Value = serde_json::from_str(&real).unwrap();
    let inodes: std::collections::BTreeSet<String> =
        kept["namespaces"].as_object().unwrap().values().map(|n| format!("net:[{}]", n["inode"])).collect();
    assert!(!inodes.is_empty() && !inodes.contains(&common::own_namespace()));
    let alive = keepers(&state);
    assert!(!alive.is_empty(), "no keeper before `down`");
    for k in alive {
        common::assert_marked(k, &common::run_marker(&tmp.path().join("artifacts")));
    }
    let o = netrepro(&state, &["down"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(text(&o).contains("its state file was unreadable"), "{}", text(&o));
    assert!(keepers(&state).is_empty(), "a keeper outlived `down`");
    let left = common::wait_unreachable_by_run(
        &inodes,
        &common::run_marker(&tmp.path().join("artifacts")),
        Duration::from_secs(5),
    );
    assert!(left.is_empty(), "namespaces outlived `down`: {left:?}");
    assert!(!state.exists(), "`down` left {} behind", state.display());

    if let Err(report) = guard.check() {
        panic!("the host changed:\n{report}");
    }
}
