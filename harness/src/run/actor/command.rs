//! A literal command line as an actor: `sh -c <run>` in the namespace, run
//! contained like an `sh` step ([`crate::sys::contain::Contained`]: a PID
//! namespace of its own, whose init's death takes every process of it), so
//! a daemon that forks, calls `setsid` or double-forks and lets its parent
//! exit still ends with the phase, and with netrepro however it dies.
//! Ready when a socket listens on the given port in the namespace; output
//! kept (first 64 KiB per stream).

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::sys::contain::Contained;
use crate::sys::netns::Netns;

pub struct Child(Contained);

pub struct Ended {
    /// The command line (its shell) exited by itself before the phase end.
    pub exited: bool,
    pub code: Option<i32>,
    pub how: String,
    /// When the last of its processes was gone, ns since the epoch (0: not known).
    pub ended_ns: u64,
    pub stdout: String,
    pub stderr: String,
}

/// Whether a socket of the namespace (read on its thread) is bound to
/// `port`: TCP in LISTEN, UDP any.
fn listening(ns: &Netns, tcp: bool, port: u16) -> Result<bool> {
    ns.run(move |_| {
        let files = if tcp { ["tcp", "tcp6"] } else { ["udp", "udp6"] };
        let want = format!(":{port:04X}");
        files.iter().any(|f| {
            std::fs::read_to_string(format!("/proc/thread-self/net/{f}")).is_ok_and(|t| {
                t.lines().skip(1).any(|l| {
                    let cols: Vec<&str> = l.split_whitespace().collect();
                    cols.len() > 3 && cols[1].ends_with(&want) && (!tcp || cols[3] == "0A")
                })
            })
        })
    })
}

impl Child {
    pub fn start(
        ns: &Netns,
        names: &[(String, std::os::fd::RawFd)],
        run: &str,
        ready: Option<&str>,
        ready_timeout_ms: u64,
    ) -> Result<Child> {
        let names = crate::sys::mountns::Names::new(names)?;
        let c = Child(Contained::start(ns, run, Some(names))?);
        if let Some(r) = ready {
            let (tcp, port) = crate::case::expect::parse_listening(r).map_err(|e| anyhow!(e))?;
            let end = Instant::now() + Duration::from_millis(ready_timeout_ms);
            loop {
                if listening(ns, tcp, port)? {
                    break;
                }
                if c.0.finished() {
                    let ended = c.end();
                    bail!("`{run}` {} before {r} listened: {}", ended.how, ended.stderr.trim());
                }
                if Instant::now() > end {
                    let ended = c.end();
                    bail!("`{run}`: nothing listened on {r} within {ready_timeout_ms} ms; {}", ended.stderr.trim());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        Ok(c)
    }

    /// Ends it: whatever of it still runs is killed with its PID
    /// namespace's init, which is reaped.
    pub fn end(self) -> Ended {
        match self.0.end() {
            Ok(e) => {
                let how = match (e.shell, e.killed) {
                    (Some(c), false) => format!("exited {c}"),
                    (Some(c), true) => {
                        format!("exited {c}; what it left running killed at phase end (with its PID namespace)")
                    }
                    (None, _) => "killed at phase end (SIGKILL to its PID namespace's init)".into(),
                };
                Ended {
                    exited: e.shell.is_some(),
                    code: e.shell,
                    how,
                    ended_ns: e.ended_ns,
                    stdout: e.stdout,
                    stderr: e.stderr,
                }
            }
            Err(e) => Ended {
                exited: false,
                code: None,
                how: format!("{e:#}"),
                ended_ns: 0,
                stdout: String::new(),
                stderr: String::new(),
            },
        }
    }
}
