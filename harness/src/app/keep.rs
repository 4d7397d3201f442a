//! Kept topologies: `netrepro run CASE --keep` leaves a phase's topology up
//! for a person to poke at. A keeper process holds the namespaces (by fd and
//! thread, never by name or mount), so they still die with it, however it
//! dies; a state file under `/run/netrepro` says where to find them.
//! `shell` enters one of them, `down` ends the keepers, `status` lists them.
//!
//! A state file is a claim to verify, never an order: trusted, it would let
//! whoever wrote it have `down` kill any pid and `shell` enter any namespace.
//! So `down`, `shell` and `status` act only on a keeper that proves itself
//! ([`KeptState::prove`]):
//! - its pid is > 1 and alive, and is pinned by a pidfd from then on, so a
//!   signal reaches that process and never a later one given its pid;
//! - `/proc/<pid>/exe` is this netrepro binary ([`OwnExe`]);
//! - at the fd the file names it holds a sealed memfd named
//!   `netrepro-keeper` ([`CLAIM`]) whose content is this very claim: case,
//!   pid, state directory, namespaces and a random token. Why a memfd and
//!   not argv or the environment: those are plain memory a process can
//!   rewrite, while the keeper seals the memfd (`F_SEAL_WRITE`, binding root
//!   too) once written, and no file can put an fd into another process. A
//!   forged or stale file names a process that holds no such claim, or
//!   holds a different one;
//! - each namespace is opened through that process (`/proc/<pid>/fd/<fd>`),
//!   must be a network namespace (nsfs) of the claimed inode, and is never
//!   the keeper's own or ours: the host's.
//!
//! The state directory must be the caller's and writable by no one else
//! ([`OwnDir`]); a file's case id passes [`check_id`] before it names any
//! file; `--keep` and `down` hold the directory's lock, so two `--keep` of
//! one case cannot both start a keeper.

use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use indexmap::IndexMap;
use nix::errno::Errno;
use serde::{Deserialize, Serialize};

use crate::case::syntax::check_id;
use crate::safety::owndir::OwnDir;
use crate::sys::pidfd::Pidfd;

/// The name of the keeper's sealed memfd (`/proc/<pid>/fd/N` reads
/// `/memfd:netrepro-keeper (deleted)`).
pub const CLAIM: &str = "netrepro-keeper";
/// The lock `--keep` and `down` hold in the state directory.
const LOCK: &str = ".lock";
/// How long `--keep` or `down` waits for another one's lock: longer than a
/// keeper takes to build its topology, short enough to say who holds it.
const LOCK_WAIT: Duration = Duration::from_secs(60);
/// No state file or claim is near this size; a larger one is not ours.
const MAX_STATE: u64 = 1 << 20;

/// `$NETREPRO_STATE`, else `/run/netrepro` (tmpfs: gone at reboot, as are
/// the namespaces it points at).
pub fn state_dir() -> PathBuf {
    std::env::var_os("NETREPRO_STATE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/run/netrepro"))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NsRef {
    /// The keeper's fd on the namespace (`/proc/<pid>/fd/<fd>`).
    pub fd: i32,
    /// Its nsfs inode, to recognise it (and a reused pid or fd).
    pub inode: u64,
}

/// What a keeper says it keeps: written by the keeper into its sealed
/// memfd and, the same, into `<state dir>/<case>.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeptState {
    pub case: String,
    pub phase: String,
    pub pid: u32,
    pub started_unix_ms: u64,
    pub kernel: String,
    pub evidence: PathBuf,
    pub namespaces: IndexMap<String, NsRef>,
    /// The state directory the keeper wrote to (absolute).
    pub state_dir: PathBuf,
    /// The keeper's fd on its sealed claim memfd.
    pub claim_fd: i32,
    /// 128 random bits the keeper drew: this claim and no earlier one.
    pub token: String,
}

/// The binary a keeper must run to be believed: ours.
#[derive(Debug, Clone)]
pub struct OwnExe {
    dev: u64,
    ino: u64,
    path: PathBuf,
}

impl OwnExe {
    /// This process's own binary.
    ///
    /// # Errors
    /// When `/proc/self/exe` cannot be read.
    pub fn current() -> Result<OwnExe> {
        OwnExe::of(Path::new("/proc/self/exe"))
    }

    /// The binary at `path` (a test names the netrepro it runs).
    ///
    /// # Errors
    /// Names `path` when it cannot be read.
    pub fn of(path: &Path) -> Result<OwnExe> {
        let m = std::fs::metadata(path).with_context(|| format!("{}: cannot stat", path.display()))?;
        let shown = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(OwnExe { dev: m.dev(), ino: m.ino(), path: shown })
    }

    /// Whether a process whose `/proc/<pid>/exe` has `meta` and reads `link`
    /// runs this binary: the same file (device and inode), or the file that
    /// was at our path until a rebuild replaced it (the link then reads
    /// `<our path> (deleted)`), so `down` still ends a keeper started before
    /// `cargo build`. Only who may write our path could have put another
    /// program there, and that one would still have to hold a claim.
    fn runs(&self, meta: &std::fs::Metadata, link: &Path) -> bool {
        (meta.dev(), meta.ino()) == (self.dev, self.ino)
            || link.as_os_str().as_encoded_bytes() == format!("{} (deleted)", self.path.display()).as_bytes()
    }
}

/// What a claim turned out to be.
#[derive(Debug)]
pub enum Proof {
    /// Its keeper, alive and proven, with the namespaces opened through it.
    Up(Box<Keeper>),
    /// Its keeper has exited, and the namespaces with it: the file is stale.
    Gone(String),
    /// A live process of another user, which we may not inspect.
    Foreign { uid: u32 },
    /// The claim fails (why): nothing may be done on its word.
    Refused(String),
}

/// A proven keeper (see [`KeptState::prove`]).
#[derive(Debug)]
pub struct Keeper {
    /// Its claim, as read from its own sealed memfd.
    pub state: KeptState,
    pidfd: Pidfd,
    namespaces: IndexMap<String, OwnedFd>,
}

impl Keeper {
    fn pid_str(&self) -> String {
        self.pidfd.pid().to_string()
    }

    /// Its namespace `name`, opened through it.
    ///
    /// # Errors
    /// When it keeps no namespace of that name (the message lists them).
    pub fn namespace(&self, name: &str) -> Result<BorrowedFd<'_>> {
        self.namespaces.get(name).map(|f| f.as_fd()).ok_or_else(|| {
            let names: Vec<&str> = self.namespaces.keys().map(String::as_str).collect();
            anyhow!("kept {} has no namespace {name:?} (it has: {})", self.state.case, names.join(", "))
        })
    }

    /// SIGTERM, then SIGKILL after 5 s, through the pidfd.
    ///
    /// # Errors
    /// When it cannot be signalled or still runs 5 s after SIGKILL.
    fn end(self) -> Result<(), String> {
        let Keeper { state, pidfd, namespaces } = self;
        drop(namespaces);
        for sig in [nix::sys::signal::Signal::SIGTERM, nix::sys::signal::Signal::SIGKILL] {
            match pidfd.signal(sig) {
                Ok(()) | Err(Errno::ESRCH) => {}
                Err(e) => return Err(format!("the keeper of {} (pid {}): {sig}: {e}", state.case, state.pid)),
            }
            if pidfd.wait_exit(Duration::from_secs(5)) {
                return Ok(());
            }
        }
        Err(format!("the keeper of {} (pid {}) does not exit", state.case, state.pid))
    }
}

impl KeptState {
    /// Checks this claim against the process it names (see the module
    /// doc): [`Proof::Up`] only for the live keeper of this case, for state
    /// directory `dir`, running binary `exe`, holding exactly this claim.
    pub fn prove(&self, dir: &OwnDir, exe: &OwnExe) -> Proof {
        use Proof::{Foreign, Gone, Refused};
        if self.namespaces.is_empty() {
            return Refused("it names no namespace, which no keeper does".into());
        }
        let pid = match i32::try_from(self.pid) {
            Ok(p) if p > 1 => p,
            _ => return Refused(format!("pid {} cannot be a keeper's", self.pid)),
        };
        if pid as u32 == std::process::id() {
            return Refused(format!("pid {pid} is this very process"));
        }
        let pidfd = match Pidfd::open(pid) {
            Ok(p) => p,
            Err(Errno::ESRCH) => return Gone(format!("pid {pid} has exited")),
            Err(Errno::EINVAL) => return Refused(format!("pid {pid} is a thread, not a process")),
            Err(e) => return Refused(format!("pid {pid}: pidfd_open: {e}")),
        };
        // From here on a failure of a /proc read may mean it just exited.
        let gone = || Gone(format!("pid {pid} has exited"));
        let proc = PathBuf::from(format!("/proc/{pid}"));
        let uid = match std::fs::metadata(&proc) {
            Ok(m) => m.uid(),
            Err(_) if pidfd.exited() => return gone(),
            Err(e) => return Refused(format!("{}: {e}", proc.display())),
        };
        let exe_path = proc.join("exe");
        let denied = |e: &std::io::Error| e.kind() == std::io::ErrorKind::PermissionDenied;
        let (meta, link) = match (std::fs::metadata(&exe_path), std::fs::read_link(&exe_path)) {
            (Ok(m), Ok(l)) => (m, l),
            _ if pidfd.exited() => return gone(),
            (Err(e), _) | (_, Err(e)) if denied(&e) && uid != nix::unistd::geteuid().as_raw() => {
                return Foreign { uid };
            }
            (Err(e), _) | (_, Err(e)) => {
                return Refused(format!("pid {pid} is not a netrepro keeper ({}: {e})", exe_path.display()));
            }
        };
        if !exe.runs(&meta, &link) {
            return Refused(format!("pid {pid} is not a netrepro keeper: it runs {}", link.display()));
        }
        let claim = match read_claim(pid, self.claim_fd) {
            Ok(c) => c,
            Err(_) if pidfd.exited() => return gone(),
            Err(why) => return Refused(format!("pid {pid} holds no keeper's claim at fd {}: {why}", self.claim_fd)),
        };
        if let Some(field) = differs(&claim, self) {
            return Refused(format!("pid {pid} keeps something else: its claim's {field} differs from the file's"));
        }
        if !dir.is(&claim.state_dir) {
            return Refused(format!(
                "pid {pid} keeps {} for another state directory, {}",
                claim.case,
                claim.state_dir.display()
            ));
        }
        let mut namespaces = IndexMap::new();
        for (name, r) in &claim.namespaces {
            match open_ns(pid, name, r) {
                Ok(f) => namespaces.insert(name.clone(), f),
                Err(_) if pidfd.exited() => return gone(),
                Err(why) => return Refused(why),
            };
        }
        // Still the same process after all those reads: its pid was not
        // reused under us (a pid is not given again while its pidfd's
        // process has not exited).
        if pidfd.exited() {
            return gone();
        }
        Proof::Up(Box::new(Keeper { state: claim, pidfd, namespaces }))
    }
}

/// The first field in which two claims differ.
fn differs(a: &KeptState, b: &KeptState) -> Option<&'static str> {
    let fields = [
        ("case", a.case == b.case),
        ("pid", a.pid == b.pid),
        ("token", a.token == b.token),
        ("claim fd", a.claim_fd == b.claim_fd),
        ("namespaces", a.namespaces == b.namespaces),
        ("phase", a.phase == b.phase),
        ("state directory", a.state_dir == b.state_dir),
        ("start", (&a.started_unix_ms, &a.kernel, &a.evidence) == (&b.started_unix_ms, &b.kernel, &b.evidence)),
    ];
    fields.into_iter().find(|(_, same)| !same).map(|(f, _)| f)
}

/// The claim keeper `pid` holds at `fd`: a memfd named [`CLAIM`], sealed
/// against any change, holding one [`KeptState`] whose pid is `pid`.
fn read_claim(pid: i32, fd: i32) -> Result<KeptState, String> {
    use std::io::Read;
    let link = format!("/proc/{pid}/fd/{fd}");
    let memfd = format!("/memfd:{CLAIM}");
    // Only a memfd is opened (never a FIFO or device a process may hold)...
    let target = std::fs::read_link(&link).map_err(|e| format!("{link}: {e}"))?;
    if !target.as_os_str().as_encoded_bytes().starts_with(memfd.as_bytes()) {
        return Err(format!("{link} is {}", target.display()));
    }
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&link)
        .map_err(|e| format!("{link}: {e}"))?;
    // ...and what was opened is checked itself, not its name a moment ago.
    let ours = std::fs::read_link(format!("/proc/self/fd/{}", f.as_raw_fd())).map_err(|e| format!("{link}: {e}"))?;
    if !ours.as_os_str().as_encoded_bytes().starts_with(memfd.as_bytes()) {
        return Err(format!("{link} is {}", ours.display()));
    }
    let sealed = nix::fcntl::SealFlag::F_SEAL_SEAL
        | nix::fcntl::SealFlag::F_SEAL_WRITE
        | nix::fcntl::SealFlag::F_SEAL_GROW
        | nix::fcntl::SealFlag::F_SEAL_SHRINK;
    let seals = nix::fcntl::fcntl(&f, nix::fcntl::FcntlArg::F_GET_SEALS).map_err(|e| format!("{link}: seals: {e}"))?;
    if !nix::fcntl::SealFlag::from_bits_truncate(seals).contains(sealed) {
        return Err(format!("{link} is not sealed"));
    }
    let mut buf = Vec::new();
    f.take(MAX_STATE).read_to_end(&mut buf).map_err(|e| format!("{link}: {e}"))?;
    let claim: KeptState = serde_json::from_slice(&buf).map_err(|e| format!("{link}: {e}"))?;
    if claim.pid != pid as u32 {
        return Err(format!("{link} is pid {}'s claim", claim.pid));
    }
    Ok(claim)
}

/// Keeper `pid`'s namespace `name`, opened through its fd and checked: a
/// network namespace of the claimed inode, neither the keeper's own nor
/// ours (the host's).
fn open_ns(pid: i32, name: &str, r: &NsRef) -> Result<OwnedFd, String> {
    let link = format!("/proc/{pid}/fd/{}", r.fd);
    let want = format!("net:[{}]", r.inode);
    let target = std::fs::read_link(&link).map_err(|e| format!("namespace {name}: {link}: {e}"))?;
    if target.as_os_str() != want.as_str() {
        return Err(format!("namespace {name}: {link} is {}, not {want}", target.display()));
    }
    let f: OwnedFd = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&link)
        .map_err(|e| format!("namespace {name}: {link}: {e}"))?
        .into();
    let fs = nix::sys::statfs::fstatfs(&f).map_err(|e| format!("namespace {name}: {link}: {e}"))?;
    let st = nix::sys::stat::fstat(&f).map_err(|e| format!("namespace {name}: {link}: {e}"))?;
    if fs.filesystem_type() != nix::sys::statfs::NSFS_MAGIC || st.st_ino != r.inode {
        return Err(format!("namespace {name}: {link} is not {want}"));
    }
    for (whose, ns) in
        [("the keeper's own", format!("/proc/{pid}/ns/net")), ("ours", "/proc/thread-self/ns/net".into())]
    {
        let m = std::fs::metadata(&ns).map_err(|e| format!("{ns}: {e}"))?;
        if (m.dev(), m.ino()) == (st.st_dev, st.st_ino) {
            return Err(format!("namespace {name} is {whose} network namespace (the host's), not a kept one"));
        }
    }
    Ok(f)
}

/// What one `*.json` in the state directory is.
#[derive(Debug)]
pub enum Entry {
    /// A well-formed claim (not yet proven).
    Claim { path: PathBuf, state: KeptState },
    /// A file named for valid case `id` that cannot be read or parsed.
    Unreadable { path: PathBuf, id: String, error: String },
    /// A name or case id that fails [`check_id`], or a case that is not
    /// its file's name: never used to build a path, never acted on.
    Ignored { path: PathBuf, why: String },
}

impl Entry {
    fn path(&self) -> &Path {
        match self {
            Entry::Claim { path, .. } | Entry::Unreadable { path, .. } | Entry::Ignored { path, .. } => path,
        }
    }

    /// Whether this is the file of `case` (a checked id).
    fn is_of(&self, case: &str) -> bool {
        self.path().file_name().is_some_and(|n| n.as_encoded_bytes() == format!("{case}.json").as_bytes())
    }
}

/// Every `*.json` in `dir`, read and sorted, none trusted yet.
///
/// # Errors
/// When the directory cannot be listed (named).
pub fn scan(dir: &OwnDir) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for name in dir.names()? {
        let Some(id) = name.strip_suffix(".json") else { continue };
        if name.starts_with('.') {
            continue;
        }
        let path = dir.join(&name);
        if let Err(e) = check_id(id) {
            out.push(Entry::Ignored { path, why: format!("its name is no case {e}") });
            continue;
        }
        let parsed = dir.read(&name, MAX_STATE).and_then(|b| Ok(serde_json::from_slice::<KeptState>(&b)?));
        match parsed {
            Err(e) => out.push(Entry::Unreadable { path, id: id.to_string(), error: format!("{e:#}") }),
            Ok(state) => match check_id(&state.case) {
                Err(e) => out.push(Entry::Ignored { path, why: format!("case {e}") }),
                Ok(()) if state.case != id => out
                    .push(Entry::Ignored { path, why: format!("it says case {:?}, but is named {name}", state.case) }),
                Ok(()) => out.push(Entry::Claim { path, state }),
            },
        }
    }
    Ok(out)
}

/// The well-formed claims in directory `dir` (unchecked; empty when the
/// directory is missing or refused).
pub fn list(dir: &Path) -> Vec<KeptState> {
    let Ok(Some(d)) = OwnDir::open(dir) else { return Vec::new() };
    scan(&d)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| match e {
            Entry::Claim { state, .. } => Some(state),
            _ => None,
        })
        .collect()
}

/// The live, proven keeper of `case` for `dir`, found without its state
/// file (when that is unreadable): a process running `exe` as
/// `netrepro __keep CASE …` that holds a claim naming `dir`, proven as any.
fn find_keeper(dir: &OwnDir, case: &str, exe: &OwnExe) -> Option<Keeper> {
    let me = std::process::id();
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if pid <= 1 || pid == me {
            continue;
        }
        let exe_path = format!("/proc/{pid}/exe");
        let (Ok(meta), Ok(link)) = (std::fs::metadata(&exe_path), std::fs::read_link(&exe_path)) else { continue };
        let argv = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let mut args = argv.split(|b| *b == 0).skip(1);
        if !exe.runs(&meta, &link) || args.next() != Some(b"__keep") || args.next() != Some(case.as_bytes()) {
            continue;
        }
        for fd in std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten() {
            let Some(n) = fd.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else { continue };
            let Ok(claim) = read_claim(pid as i32, n) else { continue };
            if claim.case == case && claim.claim_fd == n {
                if let Proof::Up(k) = claim.prove(dir, exe) {
                    return Some(*k);
                }
            }
        }
    }
    None
}

/// The lines `status` prints for a proven keeper.
fn up_lines(k: &KeptState, now_ms: u64) -> String {
    let mut s = format!(
        "{} phase {}: up; pid {}, kernel {}, up {} s\n",
        k.case,
        k.phase,
        k.pid,
        k.kernel,
        now_ms.saturating_sub(k.started_unix_ms) / 1000
    );
    for (n, r) in &k.namespaces {
        s += &format!("    {n:<12} net:[{}]   netrepro shell {} {n}\n", r.inode, k.case);
    }
    s + &format!("    evidence {}\n", k.evidence.display())
}

/// The `status` listing, one block per state file, each as proven.
///
/// # Errors
/// When the state directory is refused or cannot be listed (named).
pub fn status(dir: &Path) -> Result<String> {
    let Some(dir) = OwnDir::open(dir)? else { return Ok("no kept topologies\n".into()) };
    let entries = scan(&dir)?;
    if entries.is_empty() {
        return Ok("no kept topologies\n".into());
    }
    let exe = OwnExe::current()?;
    let now = crate::sys::clock::now_ns() / 1_000_000;
    let mut s = String::new();
    for e in entries {
        s += &match e {
            Entry::Claim { path, state: k } => match k.prove(&dir, &exe) {
                Proof::Up(keeper) => up_lines(&keeper.state, now),
                Proof::Gone(why) => format!("{} phase {}: GONE ({why}; `netrepro down` cleans up)\n", k.case, k.phase),
                Proof::Foreign { uid } => {
                    format!("{} phase {}: kept by uid {uid}; you cannot reach it (pid {})\n", k.case, k.phase, k.pid)
                }
                Proof::Refused(why) => format!("{}: NOT PROVEN ({why}); {} left alone\n", k.case, path.display()),
            },
            Entry::Unreadable { path, id, error } => match find_keeper(&dir, &id, &exe) {
                Some(k) => format!(
                    "unreadable state file {} ({error}); its keeper proves itself:\n{}",
                    path.display(),
                    up_lines(&k.state, now)
                ),
                None => format!(
                    "unreadable state file {} ({error}); no keeper of {id} proves itself; left alone\n",
                    path.display()
                ),
            },
            Entry::Ignored { path, why } => format!("ignored state file {}: {why}\n", path.display()),
        };
    }
    Ok(s)
}

/// What `down` did.
#[derive(Debug, Default)]
pub struct Down {
    /// Keepers ended, and stale files of keepers already gone.
    pub ended: Vec<String>,
    /// What it would not touch, and why.
    pub refused: Vec<String>,
}

/// Ends the proven keepers (of `case`, or all): SIGTERM, then SIGKILL after
/// 5 s, through their pidfds; removes their state files and logs, and those
/// of keepers proven gone. Any other file is left alone and reported in
/// [`Down::refused`]. Holds the state directory's lock throughout.
///
/// # Errors
/// `case` is no valid id or not kept; the state directory is refused, or
/// its lock is held for more than a minute (each names the path).
pub fn down(dir: &Path, case: Option<&str>) -> Result<Down> {
    if let Some(c) = case {
        check_id(c).map_err(|e| anyhow!("case {e}"))?;
    }
    let holder = format!("netrepro down {}", case.unwrap_or(""));
    let Some((dir, lock)) = OwnDir::locked(dir, false, LOCK, holder.trim_end(), LOCK_WAIT)? else {
        return match case {
            Some(c) => Err(anyhow!("{c} is not kept")),
            None => Ok(Down::default()),
        };
    };
    let exe = OwnExe::current()?;
    let mut out = Down::default();
    let mut seen = false;
    for e in scan(&dir)?.into_iter().filter(|e| case.is_none_or(|c| e.is_of(c))) {
        seen = true;
        match e {
            Entry::Claim { path, state } => match state.prove(&dir, &exe) {
                Proof::Up(k) => {
                    let (c, phase, pid) = (k.state.case.clone(), k.state.phase.clone(), k.pid_str());
                    match k.end() {
                        Ok(()) => {
                            forget(&dir, &c);
                            out.ended.push(format!("{c} ({phase}; pid {pid})"));
                        }
                        Err(why) => out.refused.push(why),
                    }
                }
                Proof::Gone(why) => {
                    forget(&dir, &state.case);
                    out.ended.push(format!("{} (keeper already gone: {why})", state.case));
                }
                Proof::Foreign { uid } => out.refused.push(format!(
                    "{}: kept by uid {uid}; you cannot reach it (pid {}): only uid {uid} can end it; {} left alone",
                    state.case,
                    state.pid,
                    path.display()
                )),
                Proof::Refused(why) => out.refused.push(format!(
                    "{}: refused: {why}; {} left alone (remove it yourself if it is stale)",
                    state.case,
                    path.display()
                )),
            },
            Entry::Unreadable { path, id, error } => match find_keeper(&dir, &id, &exe) {
                Some(k) => {
                    let (phase, pid) = (k.state.phase.clone(), k.pid_str());
                    match k.end() {
                        Ok(()) => {
                            forget(&dir, &id);
                            out.ended.push(format!("{id} ({phase}; pid {pid}; its state file was unreadable)"));
                        }
                        Err(why) => out.refused.push(why),
                    }
                }
                None => out.refused.push(format!(
                    "unreadable state file {} ({error}); no keeper of {id} proves itself; left alone",
                    path.display()
                )),
            },
            Entry::Ignored { path, why } => {
                out.refused.push(format!("ignored state file {}: {why}; left alone", path.display()))
            }
        }
    }
    // Leave no trace: the logs of keepers that never kept anything, then
    // the directory once the last topology is gone.
    if let Ok(names) = dir.names() {
        if !names.iter().any(|n| n.ends_with(".json")) {
            for id in names.iter().filter_map(|n| n.strip_suffix(".log")).filter(|id| check_id(id).is_ok()) {
                let _ = dir.remove(&format!("{id}.log"));
            }
        }
    }
    dir.remove_if_empty(lock);
    if let (Some(c), false) = (case, seen) {
        bail!("{c} is not kept");
    }
    Ok(out)
}

/// Removes the state file and log of `case` (a checked id).
fn forget(dir: &OwnDir, case: &str) {
    let _ = dir.remove(&format!("{case}.json"));
    let _ = dir.remove(&format!("{case}.log"));
}

/// The proven keeper of `case` in state directory `dir`, or why there is
/// none, as the error.
fn proven(dir: &Path, case: &str) -> Result<Keeper> {
    check_id(case).map_err(|e| anyhow!("case {e}"))?;
    let not_kept =
        || anyhow!("{case} is not kept; `netrepro run {case} --keep [--phase NAME]` builds it and leaves it up");
    let Some(dir) = OwnDir::open(dir)? else { return Err(not_kept()) };
    let exe = OwnExe::current()?;
    let entry = scan(&dir)?.into_iter().find(|e| e.is_of(case)).ok_or_else(not_kept)?;
    match entry {
        Entry::Claim { path, state } => match state.prove(&dir, &exe) {
            Proof::Up(k) => Ok(*k),
            Proof::Gone(why) => bail!(
                "the keeper of {case} (pid {}) is gone ({why}), and its namespaces with it; `netrepro down` cleans up",
                state.pid
            ),
            Proof::Foreign { uid } => bail!("{case}: kept by uid {uid}; you cannot reach it (pid {})", state.pid),
            Proof::Refused(why) => bail!("{case}: refused: {why} ({})", path.display()),
        },
        Entry::Unreadable { path, error, .. } => find_keeper(&dir, case, &exe).ok_or_else(|| {
            anyhow!("unreadable state file {} ({error}); no keeper of {case} proves itself", path.display())
        }),
        Entry::Ignored { path, why } => bail!("ignored state file {}: {why}", path.display()),
    }
}

/// Runs `argv` (a shell by default) inside namespace `ns` of kept `case`,
/// once its keeper has proven itself; returns its exit code.
///
/// # Errors
/// When there is no proven keeper (why), no such namespace, or `argv`
/// cannot be started.
pub fn shell(dir: &Path, case: &str, ns: &str, argv: &[String]) -> Result<i32> {
    let keeper = proven(dir, case)?;
    let fd = keeper.namespace(ns)?;
    let default = vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())];
    let argv = if argv.is_empty() { &default } else { argv };
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).env("NETREPRO_NS", format!("{case}:{ns}"));
    if argv.len() == 1 && argv == default.as_slice() {
        cmd.env("PS1", format!("[{case} {ns}] # "));
    }
    crate::sys::netns::enter_on_exec(&mut cmd, fd.as_raw_fd());
    // As an sh step sees them: the case's namespaces by name under
    // /run/netns (ip netns exec, ip -n) and a /sys of this namespace.
    let names: Vec<(String, std::os::fd::RawFd)> =
        keeper.namespaces.iter().map(|(n, f)| (n.clone(), f.as_raw_fd())).collect();
    crate::sys::mountns::name_namespaces(&mut cmd, &names)?;
    let st = cmd.status().with_context(|| format!("running {:?} in {case}:{ns}", argv[0]))?;
    Ok(st.code().unwrap_or(128 + nix::libc::SIGKILL))
}

/// The last line a keeper prints once its topology is up: `pass` or `fail`.
const READY: &str = "netrepro: kept ";

/// `netrepro run CASE --keep [--phase P]`: under the state directory's
/// lock, refuses a case already kept, starts a keeper in its own session,
/// relays what it prints, and returns once the topology is up and its state
/// file written (exit code: 0 kept and the phases passed, 1 kept but
/// failed, 2 not kept).
///
/// # Errors
/// The case is kept already, or its state file does not prove itself (left
/// alone); the state directory is refused, or another `--keep`/`down`
/// holds its lock for over a minute (the holder named); the keeper fails.
pub fn start(case: &str, phase: Option<&str>) -> Result<u8> {
    use std::io::BufRead;
    check_id(case).map_err(|e| anyhow!("case {e}"))?;
    let holder = format!("netrepro run {case} --keep");
    let (dir, lock) = OwnDir::locked(&state_dir(), true, LOCK, &holder, LOCK_WAIT)?
        .ok_or_else(|| anyhow!("{}: could not be created", state_dir().display()))?;
    let exe = OwnExe::current()?;
    if let Some(e) = scan(&dir)?.into_iter().find(|e| e.is_of(case)) {
        let already = |k: &Keeper| {
            anyhow!(
                "{case} is kept already (phase {}, pid {}); `netrepro down {case}` first",
                k.state.phase,
                k.pid_str()
            )
        };
        match e {
            Entry::Claim { path, state } => match state.prove(&dir, &exe) {
                Proof::Up(k) => return Err(already(&k)),
                Proof::Gone(_) => forget(&dir, case),
                Proof::Foreign { uid } => bail!("{case}: kept by uid {uid}; you cannot reach it (pid {})", state.pid),
                Proof::Refused(why) => {
                    bail!(
                        "{case}: {} does not prove itself ({why}); left alone: remove it if it is stale",
                        path.display()
                    )
                }
            },
            Entry::Unreadable { path, error, .. } => match find_keeper(&dir, case, &exe) {
                Some(k) => return Err(already(&k)),
                None => {
                    bail!("unreadable state file {} ({error}); left alone: remove it if it is stale", path.display())
                }
            },
            Entry::Ignored { path, why } => bail!("ignored state file {}: {why}; left alone", path.display()),
        }
    }
    let log_name = format!("{case}.log");
    let log = dir.create_file(&log_name)?;
    let mut cmd = std::process::Command::new(&exe.path);
    cmd.args(["__keep", case, phase.unwrap_or("-")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe. Its own session: a Ctrl-C or a
    // closed terminal does not end the kept topology; `down` does.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().with_context(|| format!("starting the keeper ({})", exe.path.display()))?;
    let out = std::io::BufReader::new(child.stdout.take().context("the keeper's stdout")?);
    let mut verdict = None;
    for line in out.lines() {
        let line = line.context("reading the keeper's output")?;
        match line.strip_prefix(READY) {
            Some(v) => verdict = Some(v.to_string()),
            None => println!("{line}"),
        }
    }
    match verdict.as_deref() {
        Some("pass") => Ok(0),
        Some(_) => Ok(1),
        None => {
            let st = child.wait().context("waiting for the keeper")?;
            let log =
                dir.read(&log_name, MAX_STATE).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default();
            // Nothing kept, so nothing may stay behind.
            let _ = dir.remove(&log_name);
            dir.remove_if_empty(lock);
            bail!(
                "the keeper exited ({st}) without keeping {case}{}",
                if log.is_empty() { String::new() } else { format!("\n{log}") }
            )
        }
    }
}

/// 128 random bits, hex.
fn token() -> Result<String> {
    use std::io::Read;
    let mut b = [0u8; 16];
    std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b)).context("/dev/urandom: cannot read")?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// The keeper's claim: a memfd holding `state` as JSON, sealed so that no
/// one (root included) can change, grow or shrink it. `state.claim_fd`
/// must be the fd it gets, so the fd is made first and filled after.
fn seal_claim(fd: &OwnedFd, state: &KeptState) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::from(fd.try_clone().context("claim memfd")?);
    f.write_all(&serde_json::to_vec(state)?).context("writing the claim memfd")?;
    let seals = nix::fcntl::SealFlag::F_SEAL_SEAL
        | nix::fcntl::SealFlag::F_SEAL_WRITE
        | nix::fcntl::SealFlag::F_SEAL_GROW
        | nix::fcntl::SealFlag::F_SEAL_SHRINK;
    nix::fcntl::fcntl(fd, nix::fcntl::FcntlArg::F_ADD_SEALS(seals)).context("sealing the claim memfd")?;
    Ok(())
}

/// The keeper itself (`netrepro __keep CASE PHASE|-`): runs the case up to
/// the phase, keeps its topology, holds its sealed claim, writes the state
/// file and waits for SIGTERM, SIGINT or SIGHUP. Must be called before any
/// thread exists, so every namespace thread inherits the blocked signals.
///
/// # Errors
/// The phase does not build its topology; the state directory is refused
/// or missing (`run --keep` makes it); the claim cannot be made.
pub fn keeper(plan: &crate::case::plan::Plan, phase: Option<&str>) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut sigs = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        sigs.add(s);
    }
    sigs.thread_block()?;
    let (release, version) = crate::case::kernel::Version::running()?;
    let phase = match phase {
        Some(p) => p.to_string(),
        None => {
            let chosen = plan.phases_for(version).map_err(|e| anyhow!(e))?;
            chosen.last().map(|p| p.name.clone()).ok_or_else(|| anyhow!("case {} has no phase", plan.id()))?
        }
    };
    let root = crate::evidence::record::artifacts_root();
    let (rec, path, kept) = crate::run::runner::run_case_until(
        plan,
        &release,
        version,
        &root,
        Some(&phase),
        &crate::render::report::cache_part,
    )?;
    let kept =
        kept.ok_or_else(|| anyhow!("phase {phase} did not build its topology:\n{}", rec.failure_report(&path)))?;
    if rec.passed() {
        println!("PASS {}: phases up to {phase} passed on {release}", plan.id());
    } else {
        println!("FAIL {}\n{}", plan.id(), rec.failure_report(&path));
    }
    for line in rec.why_lines() {
        println!("    {line}");
    }
    if let Ok(r) = crate::render::report::write(&root) {
        println!("report: {}", r.display());
    }
    let mut namespaces = IndexMap::new();
    for (name, ns) in &kept.topology.namespaces {
        let inode = crate::sys::netns::inode_of(ns.raw_fd())? as u64;
        namespaces.insert(name.clone(), NsRef { fd: ns.raw_fd(), inode });
    }
    let state_path = std::path::absolute(state_dir()).context("the state directory's path")?;
    let dir = OwnDir::open(&state_path)?
        .ok_or_else(|| anyhow!("{}: missing (`netrepro run --keep` makes it)", state_path.display()))?;
    let claim_fd = nix::sys::memfd::memfd_create(
        CLAIM,
        nix::sys::memfd::MFdFlags::MFD_CLOEXEC | nix::sys::memfd::MFdFlags::MFD_ALLOW_SEALING,
    )
    .context("memfd_create for the keeper's claim")?;
    let state = KeptState {
        case: plan.id().into(),
        phase: kept.phase.clone(),
        pid: std::process::id(),
        started_unix_ms: crate::sys::clock::now_ns() / 1_000_000,
        kernel: release,
        evidence: path,
        namespaces,
        state_dir: state_path,
        claim_fd: claim_fd.as_raw_fd(),
        token: token()?,
    };
    seal_claim(&claim_fd, &state)?;
    let name = format!("{}.json", plan.id());
    let file = dir.write(&name, serde_json::to_string_pretty(&state)?.as_bytes())?;
    println!("kept {} after phase {phase} (keeper pid {}, state {}):", plan.id(), state.pid, file.display());
    for n in state.namespaces.keys() {
        println!("    netrepro shell {} {n} [-- COMMAND...]", plan.id());
    }
    println!("    netrepro status · netrepro down {}", plan.id());
    println!("{READY}{}", if rec.passed() { "pass" } else { "fail" });
    // Let `start` see the end of our output: stdout becomes /dev/null.
    use std::io::Write;
    std::io::stdout().flush()?;
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null").context("/dev/null: cannot open")?;
    nix::unistd::dup2_stdout(&null)?;
    let sig = sigs.wait()?;
    eprintln!("netrepro: {sig:?}: tearing {} down", plan.id());
    let _ = dir.remove(&name);
    drop(kept);
    drop(claim_fd);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(pid: u32, namespaces: &[(&str, i32, u64)], dir: &Path) -> KeptState {
        KeptState {
            case: "demo".into(),
            phase: "fault".into(),
            pid,
            started_unix_ms: 0,
            kernel: "6.18".into(),
            evidence: "/nonexistent".into(),
            namespaces: namespaces
                .iter()
                .map(|(n, fd, inode)| (n.to_string(), NsRef { fd: *fd, inode: *inode }))
                .collect(),
            state_dir: dir.into(),
            claim_fd: 3,
            token: "00".into(),
        }
    }

    #[test]
    fn what_a_file_alone_claims_is_refused_before_any_process_is_looked_at() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OwnDir::open(tmp.path()).unwrap().unwrap();
        let exe = OwnExe::current().unwrap();
        let ns = [("host", 3, 1)];
        let me = std::process::id();
        for (c, why) in [
            (claim(me, &[], tmp.path()), "names no namespace".to_string()),
            (claim(0, &ns, tmp.path()), "pid 0 cannot be a keeper's".into()),
            (claim(1, &ns, tmp.path()), "pid 1 cannot be a keeper's".into()),
            (claim(u32::MAX, &ns, tmp.path()), "pid 4294967295 cannot be a keeper's".into()),
            (claim(me, &ns, tmp.path()), format!("pid {me} is this very process")),
        ] {
            match c.prove(&dir, &exe) {
                Proof::Refused(w) => assert!(w.contains(&why), "{w}"),
                other => panic!("{why}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_claim_of_an_exited_pid_is_gone_and_of_a_live_stranger_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OwnDir::open(tmp.path()).unwrap().unwrap();
        let exe = OwnExe::current().unwrap();
        let mut c = std::process::Command::new("true").spawn().unwrap();
        c.wait().unwrap();
        assert!(matches!(claim(c.id(), &[("host", 3, 1)], tmp.path()).prove(&dir, &exe), Proof::Gone(_)));
        let mut s = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let p = claim(s.id(), &[("host", 3, 1)], tmp.path()).prove(&dir, &exe);
        let _ = s.kill();
        let _ = s.wait();
        assert!(matches!(&p, Proof::Refused(w) if w.contains("is not a netrepro keeper")), "{p:?}");
    }

    #[test]
    fn claims_differ_by_their_first_field() {
        let a = claim(7, &[("host", 3, 1)], Path::new("/s"));
        assert_eq!(differs(&a, &a.clone()), None);
        let mut b = a.clone();
        b.token = "01".into();
        b.phase = "baseline".into();
        assert_eq!(differs(&a, &b), Some("token"));
        let mut b = a.clone();
        b.namespaces.insert("root".into(), NsRef { fd: 4, inode: 2 });
        assert_eq!(differs(&a, &b), Some("namespaces"));
    }

    #[test]
    fn a_state_file_is_named_only_by_a_checked_id() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = OwnDir::open(tmp.path()).unwrap().unwrap();
        let text = |case: &str| serde_json::to_string(&KeptState { case: case.into(), ..claim(7, &[], tmp.path()) });
        std::fs::write(tmp.path().join("demo.json"), text("demo").unwrap()).unwrap();
        std::fs::write(tmp.path().join("evil.json"), text("/etc/passwd").unwrap()).unwrap();
        std::fs::write(tmp.path().join("other.json"), text("demo").unwrap()).unwrap();
        std::fs::write(tmp.path().join("Bad.json"), "{}").unwrap();
        std::fs::write(tmp.path().join("cut.json"), "{\"case\":").unwrap();
        let got: Vec<String> = scan(&dir)
            .unwrap()
            .iter()
            .map(|e| match e {
                Entry::Claim { state, .. } => format!("claim {}", state.case),
                Entry::Unreadable { id, .. } => format!("unreadable {id}"),
                Entry::Ignored { why, .. } => format!("ignored {why}"),
            })
            .collect();
        assert_eq!(got.len(), 5, "{got:?}");
        assert!(got[0].starts_with("ignored its name is no case id \"Bad\""), "{got:?}");
        assert_eq!(got[1], "unreadable cut");
        assert_eq!(got[2], "claim demo");
        assert!(got[3].starts_with("ignored case id \"/etc/passwd\""), "{got:?}");
        assert!(got[4].starts_with("ignored it says case \"demo\", but is named other.json"), "{got:?}");
    }
}
