//! As a normal user: where the kernel allows unprivileged user namespaces,
//! netrepro runs in one of its own (uid 0 there, nothing of the host's
//! touched); where it does not, it says so in one line and changes nothing.

mod common;

use common::Need;

use std::os::unix::process::CommandExt;
use std::process::Command;

fn main() -> std::process::ExitCode {
    common::run(vec![common::test!(a_normal_user_runs_in_its_own_user_namespace_or_is_told_what_is_needed)
        .needs(Need::Root("needs root to become uid 65534"))])
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

/// Whether uid 65534 may create a user namespace here.
fn userns_allowed_for_nobody() -> bool {
    let mut probe = Command::new("/bin/true");
    as_nobody(&mut probe);
    // SAFETY: unshare is async-signal-safe.
    unsafe {
        probe.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWUSER) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    probe.status().map(|s| s.success()).unwrap_or(false)
}

fn a_normal_user_runs_in_its_own_user_namespace_or_is_told_what_is_needed() {
    // Nobody's own (an artifacts directory others can write is refused).
    let artifacts = tempfile::tempdir().unwrap();
    std::os::unix::fs::chown(artifacts.path(), Some(65534), Some(65534)).unwrap();
    let before = netrepro::safety::hostguard::Guard::start().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netrepro"));
    cmd.args(["run", "forwarding-off"]).env("NETREPRO_ARTIFACTS", artifacts.path()).env("TMPDIR", artifacts.path());
    let out = as_nobody(&mut cmd).output().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    if userns_allowed_for_nobody() {
        assert!(out.status.success(), "rootless run failed:\n{stdout}\n{stderr}");
        assert!(stdout.contains("PASS forwarding-off"), "{stdout}");
    } else {
        assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "one line expected, got:\n{stderr}");
        assert!(stderr.contains("run as root"), "{stderr}");
    }
    before.check().unwrap();
}
