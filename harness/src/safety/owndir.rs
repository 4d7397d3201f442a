//! A directory only the caller can write, used through one fd opened and
//! checked once, and a lock in it that waits a bounded time and names its
//! holder.
//!
//! Why: whoever else can write a directory can plant a symlink or a forged
//! file in it, rename it away between a check and a use, or hold its lock
//! for ever. So the directory must be the caller's (owner = euid) and not
//! writable by group or others; every file in it is opened relative to the
//! checked fd, without following symlinks; and the lock gives up with the
//! holder's name instead of hanging.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, Flock, FlockArg, OFlag};
use nix::sys::stat::{fstat, fstatat, Mode};
use nix::unistd::{unlinkat, UnlinkatFlags};

/// A checked directory: the caller's own, not writable by group or others.
#[derive(Debug)]
pub struct OwnDir {
    path: PathBuf,
    fd: OwnedFd,
    /// (st_dev, st_ino) of what `fd` is, to notice the path being swapped.
    id: (u64, u64),
}

impl OwnDir {
    /// Opens `path` when it exists (`None` when it does not).
    ///
    /// # Errors
    /// Each names `path` and why: a symlink, not a directory, owned by
    /// another uid, writable by group or others, or an I/O error.
    pub fn open(path: &Path) -> Result<Option<OwnDir>> {
        // lstat first, so another user's 0700 directory is refused for
        // being theirs, not reported as "Permission denied".
        let meta = match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            r => r.with_context(|| format!("{}: cannot stat", path.display()))?,
        };
        check(path, meta.file_type().is_symlink(), meta.is_dir(), meta.uid(), meta.mode())?;
        let fd = nix::fcntl::open(
            path,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("{}: cannot open", path.display()))?;
        // Check what was opened, not what the path named a moment before.
        let st = fstat(&fd).with_context(|| format!("{}: cannot stat", path.display()))?;
        check(path, false, true, st.st_uid, st.st_mode)?;
        Ok(Some(OwnDir { path: path.to_path_buf(), fd, id: (st.st_dev, st.st_ino) }))
    }

    /// Opens `path`, creating it (and missing parents) with mode 0700 first.
    ///
    /// # Errors
    /// As [`OwnDir::open`], and when it cannot be created.
    pub fn create(path: &Path) -> Result<OwnDir> {
        match std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
        OwnDir::open(path)?.with_context(|| format!("{}: removed while being created", path.display()))
    }

    /// [`OwnDir::open`] (or [`OwnDir::create`]) with `lock` in it held: see
    /// [`OwnDir::lock`]. Retries when the directory was removed and made
    /// again while we waited (whoever removes it does so holding the lock),
    /// so the lock returned is always the one in the directory at `path`.
    ///
    /// # Errors
    /// As `open`/`create` and `lock`; `Ok(None)` when `create` is false and
    /// there is no directory.
    pub fn locked(
        path: &Path,
        create: bool,
        lock: &str,
        holder: &str,
        wait: Duration,
    ) -> Result<Option<(OwnDir, DirLock)>> {
        let end = Instant::now() + wait;
        loop {
            let dir = if create {
                OwnDir::create(path)?
            } else {
                match OwnDir::open(path)? {
                    Some(d) => d,
                    None => return Ok(None),
                }
            };
            match dir.lock(lock, holder, end.saturating_duration_since(Instant::now())) {
                Ok(l) if dir.still_at_path() => return Ok(Some((dir, l))),
                Ok(_) => continue,
                // Removed under us (its last user took it away): start again.
                Err(_) if !dir.still_at_path() => continue,
                Err(e) => return Err(e),
            }
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path/name`, for messages.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Whether `path` still names the directory we hold.
    pub fn still_at_path(&self) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }

    /// Whether `other` is this same directory (by device and inode).
    pub fn is(&self, other: &Path) -> bool {
        std::fs::metadata(other).is_ok_and(|m| (m.dev(), m.ino()) == self.id)
    }

    /// The names in it, sorted (non-UTF-8 names are nobody's state: skipped).
    ///
    /// # Errors
    /// Names the directory.
    pub fn names(&self) -> Result<Vec<String>> {
        // Through the fd, not the path, so it is the directory we checked.
        let via = format!("/proc/self/fd/{}", self.fd.as_raw_fd());
        let mut out = Vec::new();
        for e in std::fs::read_dir(&via).with_context(|| format!("{}: cannot list", self.path.display()))? {
            let e = e.with_context(|| format!("{}: cannot list", self.path.display()))?;
            if let Ok(n) = e.file_name().into_string() {
                out.push(n);
            }
        }
        out.sort();
        Ok(out)
    }

    /// Reads regular file `name`, at most `max` bytes, never through a
    /// symlink and never blocking on a FIFO.
    ///
    /// # Errors
    /// Names `path/name`: missing, not a regular file, larger than `max`.
    pub fn read(&self, name: &str, max: u64) -> Result<Vec<u8>> {
        let path = self.join(name);
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("{}: cannot open", path.display()))?;
        let st = fstat(&fd).with_context(|| format!("{}: cannot stat", path.display()))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            bail!("{}: not a regular file", path.display());
        }
        if st.st_size as u64 > max {
            bail!("{}: {} bytes, more than the {max} a state file can be", path.display(), st.st_size);
        }
        let mut buf = Vec::new();
        File::from(fd)
            .take(max + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("{}: cannot read", path.display()))?;
        Ok(buf)
    }

    /// Replaces `name` with `bytes` whole: written to a fresh temporary file
    /// (O_EXCL, O_NOFOLLOW, 0600) and renamed over it, so a reader sees the
    /// old file or the new one, never half of one.
    ///
    /// # Errors
    /// Names the file.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        let tmp = format!(".{name}.{}.tmp", std::process::id());
        let (path, tmp_path) = (self.join(name), self.join(&tmp));
        let _ = unlinkat(&self.fd, tmp.as_str(), UnlinkatFlags::NoRemoveDir);
        let mut f = self.create_file(&tmp)?;
        f.write_all(bytes).with_context(|| format!("{}: cannot write", tmp_path.display()))?;
        f.sync_all().with_context(|| format!("{}: cannot write", tmp_path.display()))?;
        renameat(&self.fd, tmp.as_str(), &self.fd, name)
            .with_context(|| format!("renaming {} to {}", tmp_path.display(), path.display()))?;
        Ok(path)
    }

    /// Creates `name` afresh (0600, O_EXCL, O_NOFOLLOW) for writing: a file
    /// left there before is removed first, never written through.
    ///
    /// # Errors
    /// Names the file.
    pub fn create_file(&self, name: &str) -> Result<File> {
        let path = self.join(name);
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("{}: cannot remove", path.display())),
        }
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600))
            .with_context(|| format!("{}: cannot create", path.display()))?;
        Ok(File::from(fd))
    }

    /// Removes file `name`; true when it was there.
    ///
    /// # Errors
    /// Names the file.
    pub fn remove(&self, name: &str) -> Result<bool> {
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) => Ok(true),
            Err(Errno::ENOENT) => Ok(false),
            Err(e) => Err(e).with_context(|| format!("{}: cannot remove", self.join(name).display())),
        }
    }

    /// Releases `lock` and removes the directory when nothing else is left
    /// in it, leaving no trace. True when it did.
    pub fn remove_if_empty(self, lock: DirLock) -> bool {
        let empty = self.names().is_ok_and(|n| n.iter().all(|n| *n == lock.name));
        drop(lock);
        empty && self.still_at_path() && std::fs::remove_dir(&self.path).is_ok()
    }

    /// Takes the exclusive `flock` on file `name` in this directory, waiting
    /// up to `wait`; writes `holder` (with our pid) into it for anyone who
    /// waits in turn. The lock ends when the [`DirLock`] is dropped (which
    /// removes the file: a lock leaves nothing behind), or the process dies.
    ///
    /// # Errors
    /// After `wait`, one naming the lock file and what its holder wrote; I/O
    /// errors name the file.
    pub fn lock(&self, name: &str, holder: &str, wait: Duration) -> Result<DirLock> {
        let path = self.join(name);
        let end = Instant::now() + wait;
        loop {
            let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600))
                .with_context(|| format!("{}: cannot open", path.display()))?;
            let st = fstat(&fd).with_context(|| format!("{}: cannot stat", path.display()))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                bail!("{}: not a regular file; refusing to use it as a lock", path.display());
            }
            match Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock) {
                Ok(mut f) => {
                    // Removed (and perhaps made again) between our open and
                    // our lock: this one guards nothing any more.
                    let now = fstatat(&self.fd, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
                    if !now.is_ok_and(|n| (n.st_dev, n.st_ino) == (st.st_dev, st.st_ino)) {
                        continue;
                    }
                    let _ = nix::unistd::ftruncate(f.as_fd(), 0);
                    let _ = f.write_all(format!("pid {}: {holder}\n", std::process::id()).as_bytes());
                    let dir = self.fd.try_clone().with_context(|| format!("{}: dup", self.path.display()))?;
                    return Ok(DirLock { _file: f, ino: (st.st_dev, st.st_ino), dir, name: name.to_string() });
                }
                Err((mut f, Errno::EWOULDBLOCK)) => {
                    if Instant::now() >= end {
                        let mut who = String::new();
                        let _ = (&mut f).take(512).read_to_string(&mut who);
                        let who = who.trim();
                        bail!(
                            "{} is held by {} (waited {} s)",
                            path.display(),
                            if who.is_empty() { "another process" } else { who },
                            wait.as_secs()
                        );
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err((_, e)) => return Err(e).with_context(|| format!("{}: cannot lock", path.display())),
            }
        }
    }
}

/// Refuses a directory someone else could write into or swap.
fn check(path: &Path, symlink: bool, dir: bool, uid: u32, mode: u32) -> Result<()> {
    let me = nix::unistd::geteuid().as_raw();
    let p = path.display();
    if symlink {
        bail!("{p}: a symbolic link; refused (it must be a directory of its own, not a pointer elsewhere)");
    }
    if !dir {
        bail!("{p}: not a directory");
    }
    if uid != me {
        bail!("{p}: owned by uid {uid}, not by you (uid {me}); refused: what is in it is uid {uid}'s");
    }
    if mode & 0o022 != 0 {
        bail!("{p}: writable by group or others (mode {:04o}); refused: anyone could plant files in it", mode & 0o7777);
    }
    Ok(())
}

/// An exclusive `flock` held until dropped.
#[derive(Debug)]
pub struct DirLock {
    _file: Flock<File>,
    /// (st_dev, st_ino) of the lock file.
    ino: (u64, u64),
    dir: OwnedFd,
    name: String,
}

impl Drop for DirLock {
    /// Unlinks the lock file while still holding it, then unlocks. Whoever
    /// waited on it and gets it next sees it unlinked and takes a new one
    /// (see [`OwnDir::lock`]), so there is never more than one holder.
    fn drop(&mut self) {
        let now = fstatat(&self.dir, self.name.as_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW);
        if now.is_ok_and(|n| (n.st_dev, n.st_ino) == self.ino) {
            let _ = unlinkat(&self.dir, self.name.as_str(), UnlinkatFlags::NoRemoveDir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn chmod(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_or_a_symlink_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("d");
        assert!(OwnDir::open(&d).unwrap().is_none(), "a missing directory is none, not an error");
        let made = OwnDir::create(&d.join("deeper")).unwrap();
        for p in [&d, made.path()] {
            assert_eq!(std::fs::metadata(p).unwrap().permissions().mode() & 0o7777, 0o700, "{}", p.display());
        }
        for (mode, refused) in [(0o777, true), (0o770, true), (0o1777, true), (0o755, false), (0o700, false)] {
            chmod(&d, mode);
            let r = OwnDir::open(&d);
            assert_eq!(r.is_err(), refused, "mode {mode:o}: {r:?}");
            if let Err(e) = r {
                let e = format!("{e:#}");
                assert!(e.contains(&d.display().to_string()) && e.contains("writable by group or others"), "{e}");
            }
        }
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&d, &link).unwrap();
        let e = format!("{:#}", OwnDir::open(&link).unwrap_err());
        assert!(e.contains("link: a symbolic link"), "{e}");
    }

    #[test]
    fn a_held_lock_times_out_naming_its_holder_and_leaves_no_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OwnDir::create(&tmp.path().join("d")).unwrap();
        let first = dir.lock(".lock", "the first", Duration::ZERO).unwrap();
        // flock conflicts between open file descriptions, even in one process.
        let e = format!("{:#}", dir.lock(".lock", "the second", Duration::from_millis(100)).unwrap_err());
        assert!(e.contains(".lock is held by pid") && e.contains(": the first"), "{e}");
        drop(first);
        assert!(dir.names().unwrap().is_empty(), "a released lock left its file");
        let again = dir.lock(".lock", "the second", Duration::ZERO).unwrap();
        assert!(dir.remove_if_empty(again));
        assert!(!tmp.path().join("d").exists());
    }

    #[test]
    fn files_are_replaced_whole_and_never_written_or_read_through_a_symlink() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OwnDir::create(&tmp.path().join("d")).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "victim").unwrap();
        for name in ["x.json", "x.log"] {
            std::os::unix::fs::symlink(&victim, dir.join(name)).unwrap();
        }
        let e = format!("{:#}", dir.read("x.json", 100).unwrap_err());
        assert!(e.contains("x.json: cannot open"), "{e}");
        dir.write("x.json", b"new").unwrap();
        drop(dir.create_file("x.log").unwrap());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "victim");
        assert_eq!(dir.read("x.json", 100).unwrap(), b"new");
        let e = format!("{:#}", dir.read("x.json", 2).unwrap_err());
        assert!(e.contains("more than the 2"), "{e}");
        assert_eq!(dir.names().unwrap(), ["x.json", "x.log"], "a temporary file left behind");
    }
}
