//! A literal command line as an actor: `sh -c "exec <run>"` in the
//! namespace (so a foreground daemon replaces the shell and keeps its
//! PDEATHSIG), in its own process group, output kept (last 4 KiB per
//! stream), ready when a socket listens on the given port in the namespace,
//! killed with its whole group and reaped when the phase ends.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::sys::netns::Netns;

const TAIL: usize = 4096;

pub struct Child {
    child: std::process::Child,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
}

pub struct Ended {
    pub exited: bool,
    pub code: Option<i32>,
    pub how: String,
    pub stdout: String,
    pub stderr: String,
}

fn drain(mut r: impl Read + Send + 'static, into: Arc<Mutex<Vec<u8>>>) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            if let Ok(mut v) = into.lock() {
                v.extend_from_slice(&buf[..n]);
                let over = v.len().saturating_sub(TAIL);
                v.drain(..over);
            }
        }
    });
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
        let mut cmd = ns.command("sh");
        cmd.arg("-c").arg(format!("exec {run}"));
        crate::sys::mountns::name_namespaces(&mut cmd, names)?;
        cmd.process_group(0).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = cmd.spawn().with_context(|| format!("starting `{run}`"))?;
        let (out, err) = (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(Vec::new())));
        drain(child.stdout.take().expect("piped"), out.clone());
        drain(child.stderr.take().expect("piped"), err.clone());
        let mut c = Child { child, out, err };
        if let Some(r) = ready {
            let (tcp, port) = crate::case::expect::parse_listening(r).map_err(|e| anyhow!(e))?;
            let end = Instant::now() + Duration::from_millis(ready_timeout_ms);
            loop {
                if listening(ns, tcp, port)? {
                    break;
                }
                if let Some(st) = c.child.try_wait()? {
                    let e = c.tail(&c.err);
                    bail!("`{run}` exited ({st}) before {r} listened: {}", e.trim());
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

    fn tail(&self, from: &Arc<Mutex<Vec<u8>>>) -> String {
        from.lock().map(|v| String::from_utf8_lossy(&v).into_owned()).unwrap_or_default()
    }

    /// Ends it: if still running, SIGKILL to its whole process group (the
    /// leader is not reaped yet, so the group id cannot be anyone else's),
    /// then reaps it.
    pub fn end(mut self) -> Ended {
        let (exited, status) = match self.child.try_wait() {
            Ok(Some(st)) => (true, Some(st)),
            _ => {
                let pgid = self.child.id() as i32;
                // SAFETY: signalling a process group we created and have not reaped.
                unsafe { libc::kill(-pgid, libc::SIGKILL) };
                (false, self.child.wait().ok())
            }
        };
        // Let the readers take what the pipes still hold.
        std::thread::sleep(Duration::from_millis(10));
        let code = status.and_then(|s| s.code());
        let how = match (exited, status) {
            (true, Some(s)) => match s.code() {
                Some(c) => format!("exited {c}"),
                None => format!("ended by {s}"),
            },
            (true, None) => "exited".into(),
            (false, _) => "killed at phase end (SIGKILL to its process group)".into(),
        };
        Ended { exited, code, how, stdout: self.tail(&self.out), stderr: self.tail(&self.err) }
    }
}
