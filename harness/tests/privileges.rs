//! Without the privileges to create namespaces, netrepro says so in one line
//! and changes nothing.

use std::os::unix::process::CommandExt;
use std::process::Command;

#[test]
fn unprivileged_run_says_what_is_needed_in_one_line() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("unprivileged_run_says_what_is_needed_in_one_line: SKIPPED: needs root to drop to uid 65534");
        return;
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netrepro"));
    cmd.args(["run", "forwarding-off"]).env("NETREPRO_ARTIFACTS", "/nonexistent");
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0 || libc::setgid(65534) != 0 || libc::setuid(65534) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line expected, got:\n{stderr}");
    assert!(stderr.contains("run as root") && stderr.contains("EPERM"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).is_empty());
}
