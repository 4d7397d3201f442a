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
/// `/run` instead (a directory is never created on the host).
struct Plan {
    tmpfs_on: CString,
    dir: CString,
    /// (`/proc/self/fd/N`, `/run/netns/<name>`)
    binds: Vec<(CString, CString)>,
}

fn c(s: &str) -> Result<CString> {
    CString::new(s).map_err(|_| anyhow!("{s:?} has a NUL byte"))
}

/// Adds the mount-namespace setup to `cmd`, after the hooks already there
/// (`Netns::command`'s `setns` comes first, so `/sys` is the namespace's).
pub fn name_namespaces(cmd: &mut Command, names: &[(String, RawFd)]) -> Result<()> {
    let has_dir = std::path::Path::new("/run/netns").is_dir();
    let plan = Plan {
        tmpfs_on: c(if has_dir { "/run/netns" } else { "/run" })?,
        dir: c("/run/netns")?,
        binds: names
            .iter()
            .map(|(n, fd)| Ok((c(&format!("/proc/self/fd/{fd}"))?, c(&format!("/run/netns/{n}"))?)))
            .collect::<Result<_>>()?,
    };
    let (tmpfs, sysfs, root, sys) = (c("tmpfs")?, c("sysfs")?, c("/")?, c("/sys")?);
    // SAFETY: only raw syscalls (unshare, mount, umount2, mkdir, open, close)
    // on strings made before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let err = || Err(std::io::Error::last_os_error());
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return err();
            }
            // Nothing mounted below propagates back to the host.
            if libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return err();
            }
            if libc::mount(
                tmpfs.as_ptr(),
                plan.tmpfs_on.as_ptr(),
                tmpfs.as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                std::ptr::null(),
            ) != 0
            {
                return err();
            }
            // On a tmpfs of our own: /run/netns, if the tmpfs is on /run.
            libc::mkdir(plan.dir.as_ptr(), 0o755);
            for (from, to) in &plan.binds {
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
            if libc::umount2(sys.as_ptr(), libc::MNT_DETACH) == 0 {
                libc::mount(sysfs.as_ptr(), sys.as_ptr(), sysfs.as_ptr(), 0, std::ptr::null());
            }
            Ok(())
        });
    }
    Ok(())
}
