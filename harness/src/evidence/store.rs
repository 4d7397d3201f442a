//! Where a run's artifacts go, written so that no one else can redirect them
//! and no killed run loses the evidence before it.
//!
//! - The root (`<root>`, [`crate::evidence::record::artifacts_root`]) is an
//!   [`OwnDir`]: made 0755 by the caller, refused (naming the path and why)
//!   when it is a symlink, another uid's, or writable by group or others. The
//!   default `target/netrepro` a cargo build uses fits that rule as it is.
//! - Everything in it is opened relative to its checked fd, never through a
//!   symlink: the case lock `.<case>.lock` (a flock that gives up after
//!   [`LOCK_WAIT`] naming its holder, and leaves no file), `report.html`
//!   (written to a fresh `O_EXCL` temporary file, renamed over).
//! - A run writes its case's artifacts into a fresh directory
//!   `.<case>.new-<pid>/` ([`Store::begin`]), made by this very run (EEXIST is
//!   an error), and written through its fd; done, [`Store::commit`] swaps it in
//!   as `<case>/` (`RENAME_EXCHANGE`, or two renames where the filesystem
//!   cannot) and then removes the old one. A run killed before that leaves
//!   the previous `<case>/` whole; its `.<case>.new-*` is removed by the next
//!   run of the case, under the lock. A staging directory renamed away and
//!   replaced (by a symlink, say) before the swap is refused: the evidence
//!   stays where it was written, and nothing is swapped in.
//! - `soak` keeps every failing run's directory as `<root>/soak/<n>/<case>/`
//!   ([`Store::keep_soak`]): each `soak/<n>/` is an artifacts root of its own,
//!   so the pcapng paths in the evidence (relative to the root) still hold and
//!   `netrepro report <root>/soak/<n>` draws it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::evidence::record::CaseRecord;
use crate::safety::owndir::{Access, DirLock, OwnDir};

/// How long a run waits for another run of the same case (or another report,
/// or another soak) before it gives up naming the holder: two suites at once
/// (`ci/concurrency`) take turns per case, and a case takes well under this.
pub const LOCK_WAIT: Duration = Duration::from_secs(600);

/// The file the evidence of a case is in, in its directory.
pub const EVIDENCE: &str = "evidence.json";

/// The directory `soak` keeps failing runs in.
pub const SOAK: &str = "soak";

/// The artifacts root, checked and held by fd.
#[derive(Debug)]
pub struct Store {
    root: OwnDir,
}

/// A case's fresh directory, written by one run, not yet in place.
#[derive(Debug)]
pub struct Staged {
    pub dir: OwnDir,
    name: String,
    id: String,
}

impl Store {
    /// Opens `root`, making it (0755, with its parents) when missing.
    ///
    /// # Errors
    /// Names `root` and why it is refused: a symlink, not a directory,
    /// another uid's, writable by group or others; or cannot be made.
    pub fn open(root: &Path) -> Result<Store> {
        let root = OwnDir::create_with(root, Access::Readable).context("the artifacts directory")?;
        Ok(Store { root })
    }

    pub fn path(&self) -> &Path {
        self.root.path()
    }

    pub fn dir(&self) -> &OwnDir {
        &self.root
    }

    /// Takes `.<what>.lock` (a case id, `report`, `soak`), waiting up to
    /// [`LOCK_WAIT`]; `holder` is what a waiter is told.
    ///
    /// # Errors
    /// Names the lock and its holder after the wait; refuses a lock that is
    /// a symlink.
    pub fn lock(&self, what: &str, holder: &str) -> Result<DirLock> {
        self.root.lock(&format!(".{what}.lock"), holder, LOCK_WAIT)
    }

    /// A fresh `.<id>.new-<pid>/` for a run of case `id`, after removing what
    /// killed runs of it left. Call it holding the case's lock.
    ///
    /// # Errors
    /// Names the directory.
    pub fn begin(&self, id: &str) -> Result<Staged> {
        for n in self.root.names()? {
            if n.starts_with(&format!(".{id}.new-")) || n.starts_with(&format!(".{id}.old-")) {
                self.root.remove_all(&n)?;
            }
        }
        let name = format!(".{id}.new-{}", std::process::id());
        let dir = self.root.fresh_subdir(&name)?;
        Ok(Staged { dir, name, id: id.to_string() })
    }

    /// Puts `staged` in place as `<root>/<id>/` and removes the directory it
    /// replaces; returns the new `<root>/<id>/evidence.json`. Call it holding
    /// the case's lock.
    ///
    /// # Errors
    /// The staging directory is no longer what this run made under its name
    /// (renamed away, replaced): refused, naming it; or a rename fails.
    pub fn commit(&self, staged: Staged) -> Result<PathBuf> {
        let Staged { dir, name, id } = staged;
        if !self.root.holds(&name, &dir) {
            bail!(
                "{}: no longer the directory this run wrote its evidence into (renamed or replaced while it ran); \
                 refused: nothing is put in place of {}",
                self.root.join(&name).display(),
                self.root.join(&id).display()
            );
        }
        let aside = format!(".{id}.old-{}", std::process::id());
        if let Some(old) = self.root.swap_in(&name, &id, &aside)? {
            self.root.remove_all(&old)?;
        }
        Ok(self.root.join(&id).join(EVIDENCE))
    }

    /// Keeps the evidence of run `n` of a soak, `rec`, as
    /// `<root>/soak/<n>/<id>/` (hard links to `<root>/<id>/`'s files, which
    /// the next run of the case replaces); returns the kept evidence file.
    ///
    /// # Errors
    /// `<root>/<id>/` holds another run's evidence than `rec` (a concurrent
    /// run of the case replaced it); a file cannot be kept. Each names a path.
    pub fn keep_soak(&self, id: &str, n: u32, rec: &CaseRecord) -> Result<PathBuf> {
        let _lock = self.lock(id, &format!("netrepro soak (keeping run {n} of {id})"))?;
        let case = self
            .root
            .subdir(id, false)?
            .with_context(|| format!("{}: missing: run {n}'s evidence is gone", self.root.join(id).display()))?;
        let there = case.read(EVIDENCE, 1 << 30)?;
        let there: CaseRecord = serde_json::from_slice(&there)
            .with_context(|| format!("{}: not an evidence record", case.join(EVIDENCE).display()))?;
        if there.started_unix_ms != rec.started_unix_ms || there.verdict != rec.verdict {
            bail!(
                "{}: another run's evidence (started at {} ms, not {}): run {n}'s was replaced before it could be kept",
                case.join(EVIDENCE).display(),
                there.started_unix_ms,
                rec.started_unix_ms
            );
        }
        let soak = self.root.subdir(SOAK, true)?.context("soak directory")?;
        let run = soak.subdir(&n.to_string(), true)?.context("soak run directory")?;
        run.remove_all(id)?;
        let kept = run.fresh_subdir(id)?;
        for f in case.names()? {
            case.link_into(&f, &kept)?;
        }
        Ok(kept.join(EVIDENCE))
    }

    /// Removes `<root>/soak/` (a new soak starts with none).
    ///
    /// # Errors
    /// Names it.
    pub fn clear_soak(&self) -> Result<()> {
        self.root.remove_all(SOAK).map(drop)
    }
}

impl Staged {
    /// The case's directory as it will be named once in place.
    pub fn id(&self) -> &str {
        &self.id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_committed_directory_replaces_the_old_whole_and_an_uncommitted_one_leaves_it() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let s = store.begin("x").unwrap();
        s.dir.write(EVIDENCE, b"first").unwrap();
        let path = store.commit(s).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        // A run that never commits (killed) leaves the first in place ...
        let s = store.begin("x").unwrap();
        s.dir.write(EVIDENCE, b"half").unwrap();
        drop(s);
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        // ... and the next run removes what it left.
        let s = store.begin("x").unwrap();
        s.dir.write(EVIDENCE, b"second").unwrap();
        store.commit(s).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(store.dir().names().unwrap(), ["x"], "leftovers of earlier runs");
    }

    #[test]
    fn a_staging_directory_swapped_for_a_symlink_is_not_put_in_place() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("root")).unwrap();
        let victim = tmp.path().join("victim");
        std::fs::create_dir(&victim).unwrap();
        let s = store.begin("x").unwrap();
        let staged = store.path().join(format!(".x.new-{}", std::process::id()));
        std::fs::rename(&staged, store.path().join("moved")).unwrap();
        std::os::unix::fs::symlink(&victim, &staged).unwrap();
        // Written through the fd: into the directory the run made.
        s.dir.write(EVIDENCE, b"evidence").unwrap();
        let e = format!("{:#}", store.commit(s).unwrap_err());
        assert!(e.contains(&staged.display().to_string()) && e.contains("no longer the directory"), "{e}");
        assert_eq!(std::fs::read_dir(&victim).unwrap().count(), 0, "written into the symlink's target");
        assert!(!store.path().join("x").exists(), "something was put in place");
        assert_eq!(std::fs::read(store.path().join("moved").join(EVIDENCE)).unwrap(), b"evidence");
    }
}
