//! Literal command lines see the case's namespaces by their fixture names:
//! between fork and exec, the child (already in its network namespace)
//! enters a private mount namespace, mounts a tmpfs on `/run/netns`, binds
//! each namespace (its fd, `/proc/self/fd/N`, inherited from the harness)
//! onto `/run/netns/<name>`, and mounts a fresh `/sys` for its own network
//! namespace. So a customer's `ip netns exec container …`, `ip -n host …`,
//! `nsenter --net=/run/netns/host …` paste in unchanged; none of it is
//! visible on the host (its `/run/netns` is untouched), and it all goes
//! with the last process of the command.

use std::ffi::CString;
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

use anyhow::{anyhow, Result};

/// Where the names go. When the host has no `/run/netns`, the tmpfs goes on
/// `/run` instead (a directory is never created on the host). Made before
/// a fork, used only with raw system calls after it ([`Names::enter`]).
pub struct Names {
    tmpfs_on: CString,
    dir: CString,
    /// (`/proc/self/fd/N`, `/run/netns/<name>`)
    binds: Vec<(CString, CString)>,
    /// The namespace fds the binds read: a child must keep them open.
    pub fds: Vec<RawFd>,
    fstype: CString,
    sysfs: CString,
    root: CString,
    sys: CString,
}

fn c(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| anyhow!("{s:?} has a NUL byte"))
}

impl Names {
    /// The case's namespaces by name, each with the fd that holds it.
    pub fn new(names: &[(String, RawFd)]) -> Result<Names> {
        let has_dir = std::path::Path::new("/run/netns").is_dir();
        Ok(Names {
            tmpfs_on: c(if has_dir { "/run/netns" } else { "/run" })?,
            dir: c("/run/netns")?,
            binds: names
                .iter()
                .map(|(n, fd)| Ok((c(&format!("/proc/self/fd/{fd}"))?, c(&format!("/run/netns/{n}"))?)))
                .collect::<Result<_>>()?,
            fds: names.iter().map(|(_, fd)| *fd).collect(),
            fstype: c("tmpfs")?,
            sysfs: c("sysfs")?,
            root: c("/")?,
            sys: c("/sys")?,
        })
    }

    /// In a child already in its network namespace: a private mount
    /// namespace, the names under `/run/netns`, a `/sys` of its own network
    /// namespace. Nothing mounted propagates back to the host.
    ///
    /// # Safety
    /// Raw system calls on memory made before the fork, only; call it in a
    /// child (between fork and exec, or in a cloned init).
    pub unsafe fn enter(&self) -> std::io::Result<()> {
        let err = || Err(std::io::Error::last_os_error());
        // SAFETY: as the function's contract says.
        unsafe {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return err();
            }
            if libc::mount(
                std::ptr::null(),
                self.root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return err();
            }
            if libc::mount(
                self.fstype.as_ptr(),
                self.tmpfs_on.as_ptr(),
                self.fstype.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                std::ptr::null(),
            ) != 0
            {
                return err();
            }
            // On a tmpfs of our own: /run/netns, if the tmpfs is on /run.
            libc::mkdir(self.dir.as_ptr(), 0o755);
            for (from, to) in &self.binds {
                let fd = libc::open(to.as_ptr(), libc::O_CREAT | libc::O_RDONLY | libc::O_CLOEXEC, 0o444);
                if fd < 0 {
                    return err();
                }
                libc::close(fd);
                if libc::mount(from.as_ptr(), to.as_ptr(), std::ptr::null(), libc::MS_BIND, std::ptr::null()) != 0 {
                    return err();
                }
            }
            // A /sys of this network namespace (`ip -br link` reads it).
            if libc::umount2(self.sys.as_ptr(), libc::MNT_DETACH) == 0 {
                libc::mount(self.sysfs.as_ptr(), self.sys.as_ptr(), self.sysfs.as_ptr(), 0, std::ptr::null());
            }
        }
        Ok(())
    }
}

/// Adds the mount-namespace setup to `cmd`, after the hooks already there
/// (`Netns::command`'s `setns` comes first, so `/sys` is the namespace's).
pub fn name_namespaces(cmd: &mut Command, names: &[(String, RawFd)]) -> Result<()> {
    let n = Names::new(names)?;
    // SAFETY: `enter` makes only raw system calls on memory made before the fork.
    unsafe {
        cmd.pre_exec(move || n.enter());
    }
    Ok(())
}
