//! Helpers shared by the self-tests that need root.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

/// True when we may create namespaces; otherwise the caller prints why and
/// returns, so an unprivileged `cargo test` still runs the rest.
pub fn privileged(test: &str) -> bool {
    match netrepro::app::preflight::privilege_problem() {
        None => true,
        Some(p) => {
            eprintln!("{test}: SKIPPED: {p}");
            false
        }
    }
}

fn ns_of_link(target: &Path) -> Option<String> {
    let l = std::fs::read_link(target).ok()?;
    let s = l.to_string_lossy().into_owned();
    s.starts_with("net:[").then_some(s)
}

/// The network namespaces `pid`'s threads are in.
pub fn namespaces_of(pid: u32) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            out.extend(ns_of_link(&t.path().join("ns/net")));
        }
    }
    out
}

/// Every network namespace something on this machine can still reach: a
/// thread in it, an fd on it, or an nsfs mount of it.
pub fn reachable_namespaces() -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in std::fs::read_dir("/proc").unwrap().flatten() {
        let name = p.file_name();
        if !name.to_string_lossy().chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        if let Ok(tasks) = std::fs::read_dir(p.path().join("task")) {
            for t in tasks.flatten() {
                out.extend(ns_of_link(&t.path().join("ns/net")));
            }
        }
        if let Ok(fds) = std::fs::read_dir(p.path().join("fd")) {
            for fd in fds.flatten() {
                out.extend(ns_of_link(&fd.path()));
            }
        }
        if let Ok(mi) = std::fs::read_to_string(p.path().join("mountinfo")) {
            for l in mi.lines() {
                if let Some(i) = l.find("net:[") {
                    let end = l[i..].find(']').map(|j| i + j + 1).unwrap_or(l.len());
                    out.insert(l[i..end].to_string());
                }
            }
        }
    }
    out
}

/// Waits (bounded) until none of `ns` is reachable; returns the ones left.
pub fn wait_unreachable(ns: &BTreeSet<String>, within: Duration) -> BTreeSet<String> {
    let end = Instant::now() + within;
    loop {
        let left: BTreeSet<String> = reachable_namespaces().intersection(ns).cloned().collect();
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The namespace of the calling thread (the host's, in these tests).
pub fn own_namespace() -> String {
    ns_of_link(Path::new("/proc/thread-self/ns/net")).unwrap()
}
