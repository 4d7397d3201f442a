//! Global settings (`net.netfilter.nf_conntrack_max`, the neighbour table's
//! `gc_thresh*`, [`crate::case::syntax::GLOBAL`]): one value for every namespace,
//! the host's included. A case changes one only where that is allowed
//! ([`ALLOW_ENV`]; the kernel matrix's guests are disposable and set it).
//!
//! Before the first write of a key the run takes an exclusive `flock` on the
//! sysctl file itself (two runs never interleave their saves and restores)
//! and forks a guardian: a process in its own session that holds only that
//! lock and the read end of a pipe. When the pipe closes — the phase ended,
//! or the run died however it died — the guardian writes the saved value
//! back and exits, and the lock goes with it. Restoring has one path, the
//! same for a pass, a failure, a panic and a SIGKILL.

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use nix::sys::wait::waitpid;
use nix::unistd::{fork, pipe2, ForkResult, Pid};

/// `NETREPRO_GLOBALS=1` lets cases change global settings on this machine.
pub const ALLOW_ENV: &str = "NETREPRO_GLOBALS";

/// How long a run waits for another run's hold on a key.
const LOCK_WAIT: Duration = Duration::from_secs(120);

pub fn allowed() -> bool {
    std::env::var(ALLOW_ENV).is_ok_and(|v| v == "1")
}

/// Why a case that changes `keys` does not run here, if it does not.
pub fn skip_reason(keys: &[&str]) -> Option<String> {
    if keys.is_empty() || allowed() {
        return None;
    }
    Some(format!(
        "changes {}, shared by every namespace with this machine: it runs in the kernel matrix's guests \
         (ci/kernel-matrix), or here with {ALLOW_ENV}=1 (put back after each phase, even if the run is killed)",
        keys.join(", ")
    ))
}

/// The global settings one phase has changed; dropped, each guardian is
/// let go and waited for, so the values are back when the drop returns.
#[derive(Default)]
pub struct Globals {
    held: Vec<Guardian>,
}

impl Globals {
    /// Writes `value` to `key` from the calling thread, which must be in
    /// the host's namespace (the runner's threads never enter another).
    /// Returns the value it replaced.
    pub fn set(&mut self, key: &str, value: &str) -> Result<String> {
        let path = crate::case::syntax::path_of(key)?;
        if !self.held.iter().any(|g| g.path == path) {
            self.held.push(Guardian::start(&path, LOCK_WAIT).with_context(|| format!("saving {key}"))?);
        }
        let was =
            std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?.trim().to_string();
        std::fs::write(&path, value).with_context(|| format!("writing {key}={value} ({})", path.display()))?;
        Ok(was)
    }

    /// Puts every key back (last changed first) and says what it did.
    pub fn restore(&mut self) -> Vec<Result<String>> {
        self.held.drain(..).rev().map(Guardian::finish).collect()
    }
}

/// The guardian of one key: its pid and our end of its pipe.
pub struct Guardian {
    path: PathBuf,
    original: String,
    pid: Pid,
    pipe: Option<OwnedFd>,
}

impl Guardian {
    /// Locks `path`, saves its value and forks the guardian that will put it
    /// back once our end of the pipe closes.
    pub fn start(path: &Path, wait: Duration) -> Result<Guardian> {
        let lock = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let deadline = Instant::now() + wait;
        // SAFETY: flock on a descriptor we own.
        while unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EWOULDBLOCK) || Instant::now() >= deadline {
                return Err(anyhow!(
                    "{} is held by another run ({e}, waited {} s): a kept topology (`netrepro status`)?",
                    path.display(),
                    wait.as_secs_f64()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let original =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?.trim().to_string();
        // Everything the child touches is made before the fork: after it,
        // only async-signal-safe calls (this process has threads).
        let cpath = CString::new(path.as_os_str().as_bytes())?;
        let value = format!("{original}\n").into_bytes();
        let null = CString::new("/dev/null")?;
        let (r, w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        let (ready_r, ready_w) = pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
        // SAFETY: the child runs only `guard`, which makes raw syscalls on
        // memory prepared above and never returns.
        match unsafe { fork() }? {
            ForkResult::Child => guard(r.as_raw_fd(), ready_w.as_raw_fd(), lock.as_raw_fd(), &cpath, &value, &null),
            ForkResult::Parent { child } => {
                drop((r, ready_w));
                // The guardian's copy of the descriptor keeps the lock.
                drop(lock);
                let g = Guardian { path: path.to_path_buf(), original, pid: child, pipe: Some(w) };
                // Not before the guardian has left our process group: a
                // kill of the group in between would take it along and the
                // value we are about to write would stay (CI saw it once).
                let mut b = [0u8; 1];
                loop {
                    match nix::unistd::read(&ready_r, &mut b) {
                        Ok(1) => return Ok(g),
                        Err(nix::errno::Errno::EINTR) => continue,
                        other => {
                            return Err(anyhow!(
                                "the guardian of {} died before it was ready ({other:?})",
                                path.display()
                            ))
                        }
                    }
                }
            }
        }
    }

    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// Closes the pipe, waits for the guardian and reads the key back.
    pub fn finish(mut self) -> Result<String> {
        self.close_and_wait();
        let now = std::fs::read_to_string(&self.path)
            .with_context(|| format!("reading {}", self.path.display()))?
            .trim()
            .to_string();
        if now != self.original {
            return Err(anyhow!("{} is {now} after the restore, not {}", self.path.display(), self.original));
        }
        Ok(format!("{} put back to {} (guardian pid {})", self.path.display(), self.original, self.pid))
    }

    fn close_and_wait(&mut self) {
        if self.pipe.take().is_some() {
            let _ = waitpid(self.pid, None);
        }
    }
}

impl Drop for Guardian {
    fn drop(&mut self) {
        self.close_and_wait();
    }
}

/// The guardian's whole life. Raw syscalls only.
fn guard(pipe: i32, ready: i32, lock: i32, path: &CString, value: &[u8], null: &CString) -> ! {
    // SAFETY: plain syscalls on descriptors and buffers owned by this process.
    unsafe {
        // Out of the run's session and process group: what kills the run
        // (Ctrl-C, a CI timeout killing the group) leaves the guardian.
        // Only then may the run change the value: it waits for this byte.
        libc::setsid();
        libc::write(ready, b"r".as_ptr().cast(), 1);
        libc::close(ready);
        // Nothing of the run stays open here (namespace fds, the capture
        // sockets, the test harness's stdout pipe): only the pipe and the lock.
        let n = libc::open(null.as_ptr(), libc::O_RDWR);
        if n >= 0 {
            for fd in 0..3 {
                libc::dup2(n, fd);
            }
        }
        let (a, b) = (pipe.min(lock) as u32, pipe.max(lock) as u32);
        for (first, last) in [(3, a.wrapping_sub(1)), (a + 1, b - 1), (b + 1, u32::MAX)] {
            if first <= last && libc::syscall(libc::SYS_close_range, first, last, 0) != 0 {
                // Before 5.9: one by one, up to a generous bound.
                for fd in first..=last.min(4096) {
                    libc::close(fd as i32);
                }
            }
        }
        let mut buf = [0u8; 16];
        loop {
            let r = libc::read(pipe, buf.as_mut_ptr().cast(), buf.len());
            if r > 0 || (r < 0 && std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR)) {
                continue;
            }
            break;
        }
        let fd = libc::open(path.as_ptr(), libc::O_WRONLY);
        if fd >= 0 {
            libc::write(fd, value.as_ptr().cast(), value.len());
            libc::close(fd);
        }
        libc::_exit(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guardian_puts_the_value_back_when_the_pipe_closes() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("nf_conntrack_max");
        std::fs::write(&f, "262144\n").unwrap();
        let g = Guardian::start(&f, Duration::from_secs(1)).unwrap();
        // Out of our process group before we may change anything.
        assert_eq!(nix::unistd::getsid(Some(g.pid())).unwrap(), g.pid(), "the guardian's session");
        std::fs::write(&f, "16").unwrap();
        // A second run waits for the lock, and gives up with the reason.
        let e = Guardian::start(&f, Duration::from_millis(200)).err().unwrap().to_string();
        assert!(e.contains("held by another run"), "{e}");
        let said = g.finish().unwrap();
        assert!(said.contains("put back to 262144"), "{said}");
        assert_eq!(std::fs::read_to_string(&f).unwrap().trim(), "262144");
        // The lock went with the guardian.
        Guardian::start(&f, Duration::from_millis(200)).unwrap().finish().unwrap();
    }

    #[test]
    fn unknown_runs_skip_cases_that_change_globals() {
        if allowed() {
            return;
        }
        let why = skip_reason(&["net.netfilter.nf_conntrack_max"]).unwrap();
        assert!(why.contains("NETREPRO_GLOBALS=1"), "{why}");
        assert!(skip_reason(&[]).is_none());
    }
}
