//! A global setting changed by a run is put back when the run is SIGKILLed
//! with its whole process group (a CI timeout, Ctrl-C): the guardian it
//! forked outlives it just long enough to write the saved value back.
//!
//! The setting here is a file standing in for the sysctl, so the test never
//! changes this machine: the guardian's path is the same for both (open,
//! write, exit); the real `net.netfilter.nf_conntrack_max` is changed and put
//! back by the `conntrack-table-full` case in the kernel matrix's guests.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const HELPER: &str = "NETREPRO_GLOBALS_TEST_FILE";

#[test]
fn a_killed_run_gets_its_global_setting_back() {
    // The helper: this same test, re-run in a child process that changes
    // the setting and waits to be killed.
    if let Ok(f) = std::env::var(HELPER) {
        let g = netrepro::safety::globals::Guardian::start(f.as_ref(), Duration::from_secs(5)).unwrap();
        std::fs::write(&f, "16\n").unwrap();
        println!("ready {}", g.pid());
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("nf_conntrack_max");
    std::fs::write(&f, "262144\n").unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "a_killed_run_gets_its_global_setting_back", "--nocapture", "--test-threads=1"])
        .env(HELPER, &f)
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    // libtest may print its own words on the same line first.
    let mut line = String::new();
    let guardian: i32 = loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the helper ended before changing the setting");
        if let Some((_, pid)) = line.trim().split_once("ready ") {
            break pid.parse().unwrap();
        }
    };
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "16\n", "the helper's change");

    // SIGKILL to the run's whole process group.
    nix::sys::signal::killpg(nix::unistd::Pid::from_raw(child.id() as i32), nix::sys::signal::Signal::SIGKILL).unwrap();
    child.wait().unwrap();
    let t0 = Instant::now();
    while std::fs::read_to_string(&f).unwrap().trim() != "262144" {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "5 s after the kill the setting is still {:?}, not 262144",
            std::fs::read_to_string(&f).unwrap()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // The guardian does not linger (gone, or a zombie waiting for its reaper).
    while let Ok(stat) = std::fs::read_to_string(format!("/proc/{guardian}/stat")) {
        if stat.rsplit(") ").next().is_some_and(|s| s.starts_with('Z')) {
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "guardian {guardian} still running: {stat}");
        std::thread::sleep(Duration::from_millis(10));
    }
    // ... and it held nothing but the lock and its pipe: the next run takes
    // the lock at once.
    netrepro::safety::globals::Guardian::start(&f, Duration::from_millis(100)).unwrap().finish().unwrap();
}
