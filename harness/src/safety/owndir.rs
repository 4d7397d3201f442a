//! A directory only the caller can write, used through one fd opened and
//! checked once, and a lock in it that waits a bounded time and names its
//! holder. Kept topologies' state ([`Access::Private`]) and the artifacts
//! root and its case directories ([`Access::Readable`]) both live in one.
//!
//! Why: whoever else can write a directory can plant a symlink or a forged
//! file in it, rename it away between a check and a use, or hold its lock
//! for ever. So the directory must be the caller's (owner = euid) and not
//! writable by group or others; every file and subdirectory in it is opened
//! relative to the checked fd, without following symlinks, by a name that
//! is one plain component (never `..` or a path); and the lock gives up with
//! the holder's name instead of hanging.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{openat, renameat, renameat2, AtFlags, Flock, FlockArg, OFlag, RenameFlags};
use nix::sys::stat::{fstat, fstatat, mkdirat, Mode};
use nix::unistd::{linkat, unlinkat, UnlinkatFlags};

/// Who may read what is made in a directory (nobody but the caller may
/// ever write it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Directories 0700, files 0600: kept-topology state.
    Private,
    /// Directories 0755, files 0644: evidence, pcapngs and reports, which
    /// CI uploads as another user and people read.
    Readable,
}

impl Access {
    fn dir_mode(self) -> u32 {
        match self {
            Access::Private => 0o700,
            Access::Readable => 0o755,
        }
    }
    fn file_mode(self) -> u32 {
        match self {
            Access::Private => 0o600,
            Access::Readable => 0o644,
        }
    }
}

/// A checked directory: the caller's own, not writable by group or others.
#[derive(Debug)]
pub struct OwnDir {
    path: PathBuf,
    fd: OwnedFd,
    /// (st_dev, st_ino) of what `fd` is, to notice the path being swapped.
    id: (u64, u64),
    access: Access,
}

/// Refuses a name that is not one plain entry of a directory: a path
/// (`a/b`), `.`, `..`, empty, or with NUL, which `openat` would resolve
/// somewhere else than in the checked directory.
fn entry(dir: &Path, name: &str) -> Result<()> {
    if name.is_empty() || name == "." || name == ".." || name.contains('/') || name.contains('\0') {
        bail!("{}: {name:?} is not a plain file name; refused", dir.display());
    }
    Ok(())
}

impl OwnDir {
    /// Opens `path` when it exists (`None` when it does not); what is made
    /// in it is [`Access::Private`].
    ///
    /// # Errors
    /// Each names `path` and why: a symlink, not a directory, owned by
    /// another uid, writable by group or others, or an I/O error.
    pub fn open(path: &Path) -> Result<Option<OwnDir>> {
        OwnDir::open_with(path, Access::Private)
    }

    /// [`OwnDir::open`], making what it makes with `access`.
    ///
    /// # Errors
    /// As [`OwnDir::open`].
    pub fn open_with(path: &Path, access: Access) -> Result<Option<OwnDir>> {
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
        Ok(Some(OwnDir { path: path.to_path_buf(), fd, id: (st.st_dev, st.st_ino), access }))
    }

    /// Opens `path`, creating it (and missing parents) with mode 0700 first.
    ///
    /// # Errors
    /// As [`OwnDir::open`], and when it cannot be created.
    pub fn create(path: &Path) -> Result<OwnDir> {
        OwnDir::create_with(path, Access::Private)
    }

    /// [`OwnDir::create`] with `access` (0755 for [`Access::Readable`]).
    /// An existing directory is checked, never changed.
    ///
    /// # Errors
    /// As [`OwnDir::open`], and when it cannot be created.
    pub fn create_with(path: &Path, access: Access) -> Result<OwnDir> {
        match std::fs::DirBuilder::new().recursive(true).mode(access.dir_mode()).create(path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            // A file or a dangling symlink there: `open` says which.
            Err(_) if std::fs::symlink_metadata(path).is_ok() => {}
            Err(e) => return Err(e).with_context(|| format!("creating {}", path.display())),
        }
        OwnDir::open_with(path, access)?.with_context(|| format!("{}: removed while being created", path.display()))
    }

    /// Subdirectory `name`, opened relative to this one (never through a
    /// symlink) and checked as [`OwnDir::open`] checks; created first (with
    /// this directory's access) when `create`. `None` when it does not exist
    /// and `create` is false.
    ///
    /// # Errors
    /// Names `path/name` and why.
    pub fn subdir(&self, name: &str, create: bool) -> Result<Option<OwnDir>> {
        entry(&self.path, name)?;
        let path = self.join(name);
        if create {
            match mkdirat(&self.fd, name, Mode::from_bits_truncate(self.access.dir_mode())) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(e).with_context(|| format!("{}: cannot create", path.display())),
            }
        }
        self.open_entry(name, &path)
    }

    /// Subdirectory `name` made now, by this call (`EEXIST` is an error):
    /// nothing anyone else made can be in it.
    ///
    /// # Errors
    /// Names `path/name`: it exists already, or cannot be made.
    pub fn fresh_subdir(&self, name: &str) -> Result<OwnDir> {
        entry(&self.path, name)?;
        let path = self.join(name);
        mkdirat(&self.fd, name, Mode::from_bits_truncate(self.access.dir_mode()))
            .with_context(|| format!("{}: cannot create", path.display()))?;
        self.open_entry(name, &path)?.with_context(|| format!("{}: removed as soon as made", path.display()))
    }

    fn open_entry(&self, name: &str, path: &Path) -> Result<Option<OwnDir>> {
        let st = match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Ok(None),
            r => r.with_context(|| format!("{}: cannot stat", path.display()))?,
        };
        let kind = st.st_mode & libc::S_IFMT;
        check(path, kind == libc::S_IFLNK, kind == libc::S_IFDIR, st.st_uid, st.st_mode)?;
        let fd = openat(
            &self.fd,
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .with_context(|| format!("{}: cannot open", path.display()))?;
        let st = fstat(&fd).with_context(|| format!("{}: cannot stat", path.display()))?;
        check(path, false, true, st.st_uid, st.st_mode)?;
        Ok(Some(OwnDir { path: path.to_path_buf(), fd, id: (st.st_dev, st.st_ino), access: self.access }))
    }

    /// Whether entry `name` of this directory is `dir` (by device and inode,
    /// without following a symlink): a directory renamed away and replaced
    /// by something else under its name is not.
    pub fn holds(&self, name: &str, dir: &OwnDir) -> bool {
        entry(&self.path, name).is_ok()
            && fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok_and(|n| (n.st_dev, n.st_ino) == dir.id)
    }

    /// Whether entry `name` exists (of any kind, a symlink included).
    pub fn has(&self, name: &str) -> bool {
        entry(&self.path, name).is_ok() && fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW).is_ok()
    }

    /// Renames entry `from` of this directory to `to` in directory `into`
    /// (which may be this one), replacing a file or an empty directory
    /// there as rename(2) does.
    ///
    /// # Errors
    /// Names both paths.
    pub fn rename(&self, from: &str, into: &OwnDir, to: &str) -> Result<()> {
        entry(&self.path, from)?;
        entry(&into.path, to)?;
        renameat(&self.fd, from, &into.fd, to)
            .with_context(|| format!("renaming {} to {}", self.join(from).display(), into.join(to).display()))
    }

    /// Puts directory `from` in the place of `to` (both entries of this
    /// directory) in one step when the filesystem can (`RENAME_EXCHANGE`:
    /// there is no moment without a `to`), and leaves what was at `to` under
    /// `from`; else moves `to` aside to `aside` first. Returns the name the
    /// old `to` now has, to remove; `None` when there was no `to`.
    ///
    /// # Errors
    /// Names the paths.
    pub fn swap_in(&self, from: &str, to: &str, aside: &str) -> Result<Option<String>> {
        for n in [from, to, aside] {
            entry(&self.path, n)?;
        }
        if !self.has(to) {
            self.rename(from, self, to)?;
            return Ok(None);
        }
        match renameat2(&self.fd, from, &self.fd, to, RenameFlags::RENAME_EXCHANGE) {
            Ok(()) => return Ok(Some(from.to_string())),
            // 9p (the kernel matrix's guests) and old kernels: two renames.
            Err(Errno::EINVAL | Errno::ENOSYS | Errno::EOPNOTSUPP) => {}
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("exchanging {} and {}", self.join(from).display(), self.join(to).display())
                })
            }
        }
        self.rename(to, self, aside)?;
        self.rename(from, self, to)?;
        Ok(Some(aside.to_string()))
    }

    /// Removes entry `name`: a directory with everything in it, a file, or a
    /// symlink itself (never what it points to). True when it was there.
    ///
    /// # Errors
    /// Names the path.
    pub fn remove_all(&self, name: &str) -> Result<bool> {
        entry(&self.path, name)?;
        let path = self.join(name);
        let st = match fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
            Err(Errno::ENOENT) => return Ok(false),
            r => r.with_context(|| format!("{}: cannot stat", path.display()))?,
        };
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            return self.remove(name);
        }
        // Through the checked fd (so the path cannot be swapped under us);
        // std's remove_dir_all opens every level relative to the one above
        // with O_NOFOLLOW, and removes symlinks rather than following them.
        std::fs::remove_dir_all(self.via(name)).with_context(|| format!("{}: cannot remove", path.display()))?;
        Ok(true)
    }

    /// Gives the regular file `name` a second name `name` in `into`: a hard
    /// link (both stay the same file), or a copy where links are refused.
    ///
    /// # Errors
    /// Names both paths; `name` that is not a regular file is refused.
    pub fn link_into(&self, name: &str, into: &OwnDir) -> Result<()> {
        entry(&self.path, name)?;
        let (from, to) = (self.join(name), into.join(name));
        // linkat without AT_SYMLINK_FOLLOW links a symlink itself: check first.
        let st = fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW)
            .with_context(|| format!("{}: cannot stat", from.display()))?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            bail!("{}: not a regular file; not kept", from.display());
        }
        match linkat(&self.fd, name, &into.fd, name, AtFlags::empty()) {
            Ok(()) => return Ok(()),
            Err(Errno::EXDEV | Errno::EPERM | Errno::EMLINK | Errno::EOPNOTSUPP) => {}
            Err(e) => return Err(e).with_context(|| format!("linking {} as {}", from.display(), to.display())),
        }
        let src = openat(&self.fd, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC, Mode::empty())
            .with_context(|| format!("{}: cannot open", from.display()))?;
        let mut dst = into.create_file(name)?;
        std::io::copy(&mut File::from(src), &mut dst)
            .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
        Ok(())
    }

    /// `/proc/self/fd/<fd>/name`: this very directory's entry, whatever its
    /// path names now.
    fn via(&self, name: &str) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.fd.as_raw_fd())).join(name)
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
        let via = self.via("");
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
        let mut buf = Vec::new();
        self.open_read(name, max)?.read_to_end(&mut buf).with_context(|| format!("{}: cannot read", path.display()))?;
        Ok(buf)
    }

    /// Opens regular file `name` for reading as [`OwnDir::read`] does
    /// (never through a symlink, never a FIFO), for a reader that needs
    /// only its start; at most `max` bytes can be read from it.
    ///
    /// # Errors
    /// Names `path/name`: missing, not a regular file, larger than `max`.
    pub fn open_read(&self, name: &str, max: u64) -> Result<std::io::Take<File>> {
        entry(&self.path, name)?;
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
            bail!("{}: {} bytes, more than the {max} a file here may hold", path.display(), st.st_size);
        }
        Ok(File::from(fd).take(max + 1))
    }

    /// Replaces `name` with `bytes` whole: written to a fresh temporary file
    /// (O_EXCL, O_NOFOLLOW, 0600 or 0644) and renamed over it, so a reader
    /// sees the old file or the new one, never half of one.
    ///
    /// # Errors
    /// Names the file.
    pub fn write(&self, name: &str, bytes: &[u8]) -> Result<PathBuf> {
        entry(&self.path, name)?;
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

    /// Creates `name` afresh (0600 or 0644, O_EXCL, O_NOFOLLOW) for
    /// writing: a file left there before is removed first, never written
    /// through.
    ///
    /// # Errors
    /// Names the file.
    pub fn create_file(&self, name: &str) -> Result<File> {
        entry(&self.path, name)?;
        let path = self.join(name);
        match unlinkat(&self.fd, name, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("{}: cannot remove", path.display())),
        }
        let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
        let fd = openat(&self.fd, name, flags, Mode::from_bits_truncate(self.access.file_mode()))
            .with_context(|| format!("{}: cannot create", path.display()))?;
        Ok(File::from(fd))
    }

    /// Removes file `name`; true when it was there.
    ///
    /// # Errors
    /// Names the file.
    pub fn remove(&self, name: &str) -> Result<bool> {
        entry(&self.path, name)?;
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
        entry(&self.path, name)?;
        let path = self.join(name);
        let end = Instant::now() + wait;
        loop {
            let flags = OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
            let fd = match openat(&self.fd, name, flags, Mode::from_bits_truncate(0o600)) {
                Err(Errno::ELOOP) => {
                    bail!(
                        "{}: a symbolic link; refusing to use it as a lock (nothing it points to is touched)",
                        path.display()
                    )
                }
                r => r.with_context(|| format!("{}: cannot open", path.display()))?,
            };
            let st = fstat(&fd).with_context(|| format!("{}: cannot stat", path.display()))?;
            if st.st_mode & libc::S_IFMT != libc::S_IFREG {
                bail!("{}: not a regular file; refusing to use it as a lock", path.display());
            }
            match Flock::lock(File::from(fd), FlockArg::LockExclusiveNonblock) {
                Ok(mut f) => {
                    // Removed (and perhaps made again) between our open and
                    // our lock: this one guards nothing any more.
                    let now = fstatat(&self.fd, name, AtFlags::AT_SYMLINK_NOFOLLOW);
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
        let now = fstatat(&self.dir, self.name.as_str(), AtFlags::AT_SYMLINK_NOFOLLOW);
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

    #[test]
    fn names_stay_in_the_directory_and_symlinked_entries_are_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OwnDir::create_with(&tmp.path().join("d"), Access::Readable).unwrap();
        assert_eq!(std::fs::metadata(dir.path()).unwrap().permissions().mode() & 0o777, 0o755);
        for bad in ["..", ".", "", "a/b", "../x"] {
            let e = format!("{:#}", dir.create_file(bad).unwrap_err());
            assert!(e.contains("is not a plain file name"), "{bad:?}: {e}");
            assert!(dir.subdir(bad, true).is_err() && dir.remove_all(bad).is_err(), "{bad:?}");
        }
        let outside = tmp.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        std::os::unix::fs::symlink(&outside, dir.join("link")).unwrap();
        let e = format!("{:#}", dir.subdir("link", true).unwrap_err());
        assert!(e.contains("link: a symbolic link"), "{e}");
        let e = format!("{:#}", dir.fresh_subdir("link").unwrap_err());
        assert!(e.contains("link: cannot create"), "{e}");
        let sub = dir.fresh_subdir("sub").unwrap();
        assert_eq!(std::fs::metadata(sub.path()).unwrap().permissions().mode() & 0o777, 0o755);
        let e = format!("{:#}", dir.link_into("link", &sub).unwrap_err());
        assert!(e.contains("not a regular file"), "{e}");
        // A symlink swapped out and removed: the link goes, its target stays.
        assert_eq!(dir.swap_in("sub", "link", ".aside").unwrap().as_deref(), Some("sub"));
        assert!(dir.remove_all("sub").unwrap());
        assert!(dir.holds("link", &sub));
        assert_eq!(std::fs::read_to_string(outside.join("keep")).unwrap(), "x");
        let f = sub.create_file("f").unwrap();
        drop(f);
        assert_eq!(std::fs::metadata(dir.join("link").join("f")).unwrap().permissions().mode() & 0o777, 0o644);
    }
}
