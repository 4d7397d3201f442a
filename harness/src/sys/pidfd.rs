//! One process held by a pidfd: signals and waits that reach exactly that
//! process, never a later one that was given its pid.

use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;

/// A process (thread-group leader) pinned by `pidfd_open(2)`.
#[derive(Debug)]
pub struct Pidfd {
    pid: i32,
    fd: OwnedFd,
}

impl Pidfd {
    /// Pins process `pid`.
    ///
    /// # Errors
    /// `EINVAL` for a pid ≤ 0 (which `kill` would read as a process group or
    /// "everyone") or a thread that leads no process; `ESRCH` when no such
    /// process exists.
    pub fn open(pid: i32) -> nix::Result<Pidfd> {
        if pid <= 0 {
            return Err(Errno::EINVAL);
        }
        // SAFETY: pidfd_open(pid, flags) only returns a new fd or -1.
        let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        let fd = Errno::result(r)? as RawFd;
        // SAFETY: the kernel just created this fd; nothing else owns it.
        Ok(Pidfd { pid, fd: unsafe { OwnedFd::from_raw_fd(fd) } })
    }

    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// Sends `sig` to this process.
    ///
    /// # Errors
    /// `ESRCH` once it has exited; `EPERM` when it is not ours to signal.
    pub fn signal(&self, sig: Signal) -> nix::Result<()> {
        // SAFETY: pidfd_send_signal(fd, sig, info = NULL, flags = 0) reads
        // nothing through the null info pointer.
        let r = unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.fd.as_raw_fd(),
                sig as libc::c_int,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            )
        };
        Errno::result(r).map(drop)
    }

    /// Whether it has exited (a zombie not yet reaped counts as exited).
    pub fn exited(&self) -> bool {
        self.wait_exit(Duration::ZERO)
    }

    /// Waits up to `within` for it to exit; true when it has. The pidfd
    /// turns readable at exit, so this works for a process that is not our
    /// child (a keeper is reparented once `run --keep` returns).
    pub fn wait_exit(&self, within: Duration) -> bool {
        let end = Instant::now() + within;
        loop {
            let left = end.saturating_duration_since(Instant::now());
            let timeout = PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX);
            let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
            match poll(&mut fds, timeout) {
                Ok(n) if n > 0 => return true,
                Ok(_) if left.is_zero() => return false,
                Ok(_) | Err(Errno::EINTR) => {}
                // A pidfd cannot fail to poll; if it does, "not exited" is
                // the answer that ends nothing by mistake.
                Err(_) => return false,
            }
        }
    }
}
