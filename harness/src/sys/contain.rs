//! An `sh` step run contained: the command line and every process it starts
//! end with the step — when its shell exits, at its deadline, and when
//! netrepro itself dies, even by SIGKILL — and its output is read without
//! waiting on a pipe a leftover process holds, up to a bound.
//!
//! How: the step runs in a PID namespace of its own. netrepro clones a tiny
//! init (`CLONE_NEWPID`: pid 1 there) that enters the case's network
//! namespace and forks `sh -c <run>`; every process the step starts is in
//! that PID namespace, and no `&`, `setsid`, double fork or reparenting can
//! leave it. When its pid 1 exits the kernel SIGKILLs everything left in the
//! namespace (`zap_pid_ns_processes`) before anyone can wait for it, so:
//! - the step's end is its shell's exit: the init then exits with the
//!   shell's status and takes `sleep 1000 &` or `setsid sleep 600 &` with it;
//! - at the deadline netrepro SIGKILLs the init: the same, for the whole tree;
//! - if netrepro dies, the init gets `PR_SET_PDEATHSIG` SIGKILL (a signal
//!   from an ancestor namespace reaches a pid 1), and also sees the hang-up
//!   of a pipe only netrepro holds the other end of (which also covers the
//!   moment before its `prctl`): the same again.
//!
//! netrepro reads the step's stdout and stderr with `poll`, from the start,
//! until the init has exited and both pipes are closed; once the init has
//! exited every process of the step is gone, so that is at once, and a
//! [`DRAIN`] bound covers any holder outside (a step that `nsenter`s
//! elsewhere: root can, it is not contained by anything). Each stream keeps
//! its first [`OUTPUT_LIMIT`] bytes and says how many it cut.
//!
//! Why not the alternatives: a child subreaper and a walk of `/proc` races
//! with processes that fork while it walks, and does not survive netrepro's
//! own SIGKILL (orphans go to the next subreaper or init); a supervisor
//! re-executing netrepro would not exist in the test binaries that run
//! cases through the library; a cgroup v2 with `cgroup.kill` (5.14+) needs a
//! writable cgroup2 hierarchy, which this project's CI hosts have only as
//! cgroup v1 plus an unified mount and its kernel-matrix guests (5.4–6.12,
//! booted bare) do not mount at all. A PID namespace needs only what a
//! network namespace already needs (CAP_SYS_ADMIN, real or in a user
//! namespace) and exists on every kernel the project runs on.
//!
//! What a step sees differently: `$$` is small (its shell is pid 2), and its
//! processes cannot outlive it — a case starts nothing in the background
//! for later steps or probes (listeners are probes': `listen_in`).

use std::ffi::CString;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill, Signal};
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{pipe2, Pid};

use crate::sys::cmd::Output;
use crate::sys::netns::Netns;

/// Bytes kept of each of a step's streams; the rest is counted and said.
pub const OUTPUT_LIMIT: usize = 64 * 1024;

/// How long output is still read once the step has ended, for a holder of
/// its pipes outside its PID namespace.
pub const DRAIN: Duration = Duration::from_millis(200);

/// `NETREPRO_SH_DEADLINE_MS`: for tests, a shorter deadline for `sh` steps
/// than [`crate::case::spec::limits::SH_STEP_MS`] (never a longer one).
pub const DEADLINE_ENV: &str = "NETREPRO_SH_DEADLINE_MS";

/// The deadline of an `sh` step: 60 s, or less with [`DEADLINE_ENV`].
pub fn step_deadline() -> Duration {
    let max = crate::case::spec::limits::SH_STEP_MS;
    let ms = std::env::var(DEADLINE_ENV).ok().and_then(|v| v.parse::<u64>().ok()).map_or(max, |v| v.min(max));
    Duration::from_millis(ms)
}

/// Where the init or the shell failed before the step ran.
const STAGE_SIGNALS: u8 = 1;
const STAGE_NETNS: u8 = 2;
const STAGE_FORK: u8 = 3;
const STAGE_EXEC: u8 = 4;
const STAGE_MOUNTNS: u8 = 5;
/// Not a failure: a lingering init's shell exited with the status that
/// follows, and what it left runs on.
const STAGE_EXITED: u8 = 16;

/// The first bytes of a stream and how many more there were.
struct Bounded {
    kept: Vec<u8>,
    cut: u64,
}

impl Bounded {
    fn new() -> Bounded {
        Bounded { kept: Vec::new(), cut: 0 }
    }

    fn push(&mut self, b: &[u8]) {
        let room = OUTPUT_LIMIT.saturating_sub(self.kept.len()).min(b.len());
        self.kept.extend_from_slice(&b[..room]);
        self.cut += (b.len() - room) as u64;
    }

    fn text(&self) -> String {
        let mut s = String::from_utf8_lossy(&self.kept).into_owned();
        if self.cut > 0 {
            s += &format!("\n[… {} bytes cut]", self.cut);
        }
        s
    }
}

/// The init, reaped exactly once: killed and reaped if still there when
/// dropped (an error on our side), so no step outlives its call.
struct Init {
    pid: Pid,
    status: Option<WaitStatus>,
}

impl Init {
    fn reap(&mut self) -> Result<WaitStatus> {
        if let Some(s) = self.status {
            return Ok(s);
        }
        loop {
            match waitpid(self.pid, None) {
                Err(Errno::EINTR) => continue,
                r => {
                    let s = r.context("waiting for a step's init")?;
                    self.status = Some(s);
                    return Ok(s);
                }
            }
        }
    }

    fn kill(&mut self) -> Result<WaitStatus> {
        if self.status.is_none() {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
        self.reap()
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        let _ = self.kill();
    }
}

/// An fd numbered 3 or more, so the shell's `dup2` onto 0, 1 and 2 never
/// overwrites one of its sources (a process started with 0, 1 or 2 closed).
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let n = fcntl(&fd, FcntlArg::F_DUPFD_CLOEXEC(3)).context("F_DUPFD_CLOEXEC")?;
    // SAFETY: fcntl just returned this new descriptor; nothing else owns it.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(n) })
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let (r, w) = pipe2(OFlag::O_CLOEXEC).context("pipe2")?;
    Ok((above_stdio(r)?, above_stdio(w)?))
}

/// Everything the init uses, made before the clone: after it, the child may
/// only make raw system calls on memory that exists already.
struct InitArgs {
    netns: RawFd,
    /// The case's namespaces by name under `/run/netns`, for literal lines.
    names: Option<crate::sys::mountns::Names>,
    /// The descriptors the init keeps, made before the clone (no
    /// allocation after it).
    keep: Vec<RawFd>,
    life: RawFd,
    status: RawFd,
    out: RawFd,
    err: RawFd,
    null: RawFd,
    sh: CString,
    argv: Vec<*const libc::c_char>,
    /// An actor's: the init outlives the shell until nothing is left.
    linger: bool,
}

/// Runs `sh -c <script>` in network namespace `ns`, contained (see the
/// module): returns its exit status and output (each stream at most
/// [`OUTPUT_LIMIT`] bytes, then `[… N bytes cut]`).
///
/// # Errors
/// The step was still running at `deadline` (killed, with every process it
/// started; the error carries its output so far); it could not be started
/// (no `sh`, the namespace could not be entered); it was killed by a signal
/// from outside.
pub fn sh(ns: &Netns, script: &str, deadline: Duration) -> Result<Output> {
    sh_named(ns, script, deadline, None)
}

/// As [`sh`], with the case's namespaces under `/run/netns` by their names
/// in a private mount namespace ([`crate::sys::mountns`]), so a customer's
/// `ip netns exec container …` pastes in unchanged.
pub fn sh_named(
    ns: &Netns,
    script: &str,
    deadline: Duration,
    names: Option<crate::sys::mountns::Names>,
) -> Result<Output> {
    let started = spawn(ns, script, names, false)?;
    let shown = started.shown.clone();
    let c = collect(started, Some(Instant::now() + deadline), None)?;
    if c.timed_out {
        let said = format!("{}{}", c.stdout, c.stderr);
        let said = said.trim();
        bail!(
            "{shown} still running after {deadline:?}: killed, with every process it started{}",
            if said.is_empty() { String::new() } else { format!("; its output so far: {said}") }
        );
    }
    c.failed_stage()?;
    let code = match c.ws {
        WaitStatus::Exited(_, code) => code,
        WaitStatus::Signaled(_, sig, _) => {
            bail!("{shown}: its init was killed by {sig:?} from outside the step{}", tail(&c.stdout, &c.stderr))
        }
        other => return Err(anyhow!("{shown}: unexpected wait status {other:?}")),
    };
    Ok(Output { status: code, stdout: c.stdout, stderr: c.stderr })
}

/// A long-lived command (an actor) run contained: `sh -c <script>` in its
/// own PID namespace, as a step, except that its shell's exit does not end
/// it — what the shell left running (a daemon that forked, `setsid`, a
/// double fork) runs on until [`Contained::end`] (the phase's end) or
/// until nothing of it is left. Its init's death ends everything in it: at
/// [`Contained::end`], on drop, and when netrepro dies (PDEATHSIG and the
/// hang-up of a pipe, as for a step).
pub struct Contained {
    /// Its init's pid (netrepro's PID namespace).
    pub pid: i32,
    /// Closed to tell the reader to kill the init.
    stop: Option<OwnedFd>,
    reader: Option<std::thread::JoinHandle<Result<Collected>>>,
    shown: String,
}

/// How a contained command ended ([`Contained::end`]).
#[derive(Debug)]
pub struct Ended {
    /// The shell's own exit status (128 + signal if killed by one), if it
    /// exited before the end.
    pub shell: Option<i32>,
    /// Whether anything of it was still running at the end (then killed).
    pub killed: bool,
    /// When its init was reaped: the last of its processes gone (ns since
    /// the epoch).
    pub ended_ns: u64,
    /// First [`OUTPUT_LIMIT`] bytes of each stream, then `[… N bytes cut]`.
    pub stdout: String,
    pub stderr: String,
}

impl Contained {
    /// Starts `sh -c <script>` in `ns`, contained, with the case's namespaces
    /// by name. Its output is read by a thread until it ends.
    ///
    /// # Errors
    /// The clone, the pipes or the reader thread could not be made (a
    /// failure inside, such as an `sh` that cannot be executed, shows as its
    /// end instead).
    pub fn start(ns: &Netns, script: &str, names: Option<crate::sys::mountns::Names>) -> Result<Contained> {
        let started = spawn(ns, script, names, true)?;
        let pid = started.child.pid.as_raw();
        let shown = started.shown.clone();
        let (stop_r, stop_w) = pipe()?;
        let reader = std::thread::Builder::new()
            .name("contained".into())
            .spawn(move || collect(started, None, Some(stop_r)))
            .context("a thread to read a contained command")?;
        Ok(Contained { pid, stop: Some(stop_w), reader: Some(reader), shown })
    }

    /// Whether everything it started has ended by itself.
    pub fn finished(&self) -> bool {
        self.reader.as_ref().is_none_or(|r| r.is_finished())
    }

    /// Ends it: if anything of it still runs, its init is SIGKILLed (the
    /// kernel kills the rest of its PID namespace) and reaped; then its
    /// output and how it ended.
    ///
    /// # Errors
    /// It never started (namespace, mount namespace, `sh`), or its init
    /// was killed from outside, or reading its output failed.
    pub fn end(mut self) -> Result<Ended> {
        drop(self.stop.take());
        let c = match self.reader.take().map(|r| r.join()) {
            Some(Ok(c)) => c?,
            Some(Err(_)) => bail!("{}: its reader panicked", self.shown),
            None => bail!("{}: ended twice", self.shown),
        };
        c.failed_stage()?;
        let shell = c.msgs.chunks(5).find(|m| m[0] == STAGE_EXITED).map(|m| word(&m[1..]));
        let killed = match c.ws {
            WaitStatus::Exited(..) => false,
            WaitStatus::Signaled(_, Signal::SIGKILL, _) if c.stopped => true,
            WaitStatus::Signaled(_, sig, _) => {
                bail!("{}: its init was killed by {sig:?} from outside{}", self.shown, tail(&c.stdout, &c.stderr))
            }
            other => bail!("{}: unexpected wait status {other:?}", self.shown),
        };
        Ok(Ended { shell, killed, ended_ns: c.ended_ns, stdout: c.stdout, stderr: c.stderr })
    }
}

impl Drop for Contained {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
    }
}

fn word(b: &[u8]) -> i32 {
    i32::from_ne_bytes(b.get(..4).and_then(|b| b.try_into().ok()).unwrap_or([0; 4]))
}

/// A contained command started, its pipes' read ends open.
struct Started {
    child: Init,
    out_r: OwnedFd,
    err_r: OwnedFd,
    status_r: OwnedFd,
    /// Held until the init is gone: its hang-up would tell the init we are.
    life_w: OwnedFd,
    sh: String,
    shown: String,
    ns: String,
}

/// What a contained command did, once its init is reaped.
struct Collected {
    ws: WaitStatus,
    stdout: String,
    stderr: String,
    /// The init's messages, 5 bytes each: `[stage, i32]`.
    msgs: Vec<u8>,
    timed_out: bool,
    stopped: bool,
    /// When the init was reaped, ns since the epoch.
    ended_ns: u64,
    sh: String,
    shown: String,
    ns: String,
}

impl Collected {
    /// A stage that failed before the command ran, as the error it is.
    fn failed_stage(&self) -> Result<()> {
        let Some(m) = self.msgs.chunks(5).find(|m| m[0] != STAGE_EXITED) else { return Ok(()) };
        let errno = Errno::from_raw(word(&m[1..]));
        let what = match m[0] {
            STAGE_SIGNALS => "setting up the step's signals".to_string(),
            STAGE_NETNS => format!("entering namespace {}", self.ns),
            STAGE_FORK => "forking the shell".to_string(),
            STAGE_EXEC => format!("executing {}", self.sh),
            STAGE_MOUNTNS => "naming the case's namespaces under /run/netns (a private mount namespace)".to_string(),
            _ => "starting".to_string(),
        };
        bail!("{}: {what}: {errno}", self.shown);
    }
}

/// Clones the init of a contained `sh -c <script>` in `ns`; with `linger`
/// it outlives the shell until nothing of the command is left.
fn spawn(ns: &Netns, script: &str, names: Option<crate::sys::mountns::Names>, linger: bool) -> Result<Started> {
    let shown = format!("`sh -c {script:?}` in {}", ns.name());
    let sh = crate::sys::cmd::which("sh").unwrap_or_else(|| "/bin/sh".into());
    let sh = CString::new(sh.as_os_str().as_bytes()).context("the path of sh")?;
    let args = [CString::new("sh")?, CString::new("-c")?, CString::new(script).context("a step with NUL in it")?];
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let null = above_stdio(std::fs::File::open("/dev/null").context("/dev/null: cannot open")?.into())?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (life_r, life_w) = pipe()?;
    let (status_r, status_w) = pipe()?;
    let mut keep = vec![ns.raw_fd(), life_r.as_raw_fd(), status_w.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
    keep.push(null.as_raw_fd());
    keep.extend(names.iter().flat_map(|n| n.fds.iter().copied()));
    keep.sort_unstable();
    keep.dedup();
    let a = InitArgs {
        netns: ns.raw_fd(),
        names,
        keep,
        life: life_r.as_raw_fd(),
        status: status_w.as_raw_fd(),
        out: out_w.as_raw_fd(),
        err: err_w.as_raw_fd(),
        null: null.as_raw_fd(),
        sh,
        argv,
        linger,
    };
    // SAFETY: a clone without CLONE_VM is a fork: the child gets a copy of
    // this thread's memory and runs only `init`, which makes raw system
    // calls on the memory prepared above and never returns.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (libc::CLONE_NEWPID | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    if pid == 0 {
        init(&a);
    }
    if pid < 0 {
        return Err(std::io::Error::last_os_error()).context("clone(CLONE_NEWPID) for a step");
    }
    let child = Init { pid: Pid::from_raw(pid as i32), status: None };
    drop((life_r, status_w, out_w, err_w, null));
    for fd in [&out_r, &err_r, &status_r] {
        fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).context("O_NONBLOCK on a step's pipe")?;
    }
    let sh = a.sh.to_string_lossy().into_owned();
    Ok(Started { child, out_r, err_r, status_r, life_w, sh, shown, ns: ns.name().to_string() })
}

/// Reads a contained command's output until its init has ended (and its
/// pipes closed, or [`DRAIN`] after): the init is killed at `deadline`, or
/// when `stop` becomes readable or hangs up.
fn collect(s: Started, deadline: Option<Instant>, stop: Option<OwnedFd>) -> Result<Collected> {
    let Started { mut child, out_r, err_r, status_r, life_w, sh, shown, ns } = s;
    let (mut out, mut err, mut status) = (Bounded::new(), Bounded::new(), Bounded::new());
    // Read ends still open: stdout, stderr, the init's status pipe.
    let mut open = [true, true, true];
    let mut drain_until: Option<Instant> = None;
    let (mut timed_out, mut stopped) = (false, false);
    let mut ended_ns = 0;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // The status pipe's only writer is the init (the shell's copy closes
        // at exec): its end is the init's.
        if !open[2] && drain_until.is_none() {
            child.reap()?;
            ended_ns = crate::sys::clock::now_ns();
            drain_until = Some(Instant::now() + DRAIN);
        }
        let now = Instant::now();
        if let Some(d) = drain_until {
            if (!open[0] && !open[1]) || now >= d {
                break;
            }
        } else if deadline.is_some_and(|end| now >= end) {
            child.kill()?;
            ended_ns = crate::sys::clock::now_ns();
            timed_out = true;
            drain_until = Some(Instant::now() + DRAIN);
            continue;
        }
        let until = drain_until.or(deadline);
        let timeout = until.map_or(PollTimeout::NONE, |u| {
            PollTimeout::try_from(u.saturating_duration_since(now)).unwrap_or(PollTimeout::MAX)
        });
        let fds = [&out_r, &err_r, &status_r];
        let watched: Vec<usize> = (0..3).filter(|&i| open[i]).collect();
        let mut pfds: Vec<PollFd> = watched.iter().map(|&i| PollFd::new(fds[i].as_fd(), PollFlags::POLLIN)).collect();
        let watch_stop = drain_until.is_none() && stop.is_some();
        if let (true, Some(s)) = (watch_stop, &stop) {
            pfds.push(PollFd::new(s.as_fd(), PollFlags::POLLIN));
        }
        match poll(&mut pfds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(e).context("poll on a step's output"),
        }
        if watch_stop && pfds.last().and_then(|p| p.revents()).is_some_and(|r| !r.is_empty()) {
            child.kill()?;
            ended_ns = crate::sys::clock::now_ns();
            stopped = true;
            drain_until = Some(Instant::now() + DRAIN);
            continue;
        }
        let ready: Vec<usize> = watched
            .iter()
            .zip(&pfds)
            .filter(|(_, p)| p.revents().is_some_and(|r| !r.is_empty()))
            .map(|(i, _)| *i)
            .collect();
        for i in ready {
            loop {
                match nix::unistd::read(fds[i], &mut buf) {
                    Ok(0) => {
                        open[i] = false;
                        break;
                    }
                    Ok(n) => [&mut out, &mut err, &mut status][i].push(&buf[..n]),
                    Err(Errno::EINTR) => {}
                    Err(Errno::EAGAIN) => break,
                    Err(e) => return Err(e).context("reading a step's output"),
                }
            }
        }
    }
    let ws = child.reap()?;
    drop(life_w);
    Ok(Collected {
        ws,
        stdout: out.text(),
        stderr: err.text(),
        msgs: status.kept,
        timed_out,
        stopped,
        ended_ns,
        sh,
        shown,
        ns,
    })
}

fn tail(stdout: &str, stderr: &str) -> String {
    let s = format!("{stdout}{stderr}");
    let s = s.trim();
    if s.is_empty() {
        String::new()
    } else {
        format!(": {s}")
    }
}

/// Writes `[stage, errno]` to `fd` and exits: a step that did not start.
///
/// # Safety
/// Raw system calls only; for the child of a clone.
unsafe fn fail(fd: RawFd, stage: u8) -> ! {
    let e = std::io::Error::last_os_error().raw_os_error().unwrap_or(0).to_ne_bytes();
    let msg = [stage, e[0], e[1], e[2], e[3]];
    // SAFETY: write and _exit on our own descriptor and stack buffer.
    unsafe {
        libc::write(fd, msg.as_ptr().cast(), msg.len());
        libc::_exit(126)
    }
}

/// Closes every descriptor from 3 up except those in `keep`.
///
/// # Safety
/// Raw system calls only; for the child of a clone.
/// `keep` must be sorted (it is made before the clone: no allocation here).
unsafe fn close_all_but(keep: &[RawFd]) {
    let mut first: u32 = 3;
    for k in keep.iter().map(|&k| k as u32).chain([u32::MAX]) {
        if k < first {
            continue;
        }
        let last = if k == u32::MAX { u32::MAX } else { k - 1 };
        // SAFETY: closing descriptors of this process, which uses no other.
        if first <= last && unsafe { libc::syscall(libc::SYS_close_range, first, last, 0) } != 0 {
            // Before 5.9: one by one, up to a generous bound.
            for fd in first..=last.min(4096) {
                // SAFETY: as above.
                unsafe { libc::close(fd as i32) };
            }
        }
        first = k.saturating_add(1);
    }
}

/// The step's pid 1. Raw system calls only (this process is the clone of
/// one thread of a threaded one: locks others held stay held).
fn init(a: &InitArgs) -> ! {
    // SAFETY: raw system calls on descriptors and memory this process owns,
    // prepared before the clone; never returns.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0);
        // netrepro died before the prctl: its end of the pipe is closed.
        let mut p = libc::pollfd { fd: a.life, events: libc::POLLIN, revents: 0 };
        if libc::poll(&mut p, 1, 0) != 0 {
            libc::_exit(125);
        }
        // Only what the step needs: not the other threads' pipes, sockets,
        // namespace fds or locks.
        close_all_but(&a.keep);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::signal(libc::SIGCHLD, libc::SIG_DFL);
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            fail(a.status, STAGE_SIGNALS);
        }
        let sfd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if sfd < 0 {
            fail(a.status, STAGE_SIGNALS);
        }
        if libc::setns(a.netns, libc::CLONE_NEWNET) != 0 {
            fail(a.status, STAGE_NETNS);
        }
        // The names bind /proc/self/fd/N of the namespace fds, the step's
        // own among them: closed only after.
        if let Some(n) = &a.names {
            if n.enter().is_err() {
                fail(a.status, STAGE_MOUNTNS);
            }
            for fd in &n.fds {
                libc::close(*fd);
            }
        }
        libc::close(a.netns);
        let shell = libc::syscall(libc::SYS_clone, libc::SIGCHLD as libc::c_ulong, 0usize, 0usize, 0usize, 0usize);
        if shell == 0 {
            // The shell: a clean signal state (the keeper blocks signals, a
            // Rust test binary ignores SIGPIPE), /dev/null in, the pipes out.
            let mut none: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut none);
            libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            libc::dup2(a.null, 0);
            libc::dup2(a.out, 1);
            libc::dup2(a.err, 2);
            libc::dup2(a.status, 3);
            libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC);
            close_all_but(&[3]);
            libc::execv(a.sh.as_ptr(), a.argv.as_ptr());
            fail(3, STAGE_EXEC);
        }
        if shell < 0 {
            fail(a.status, STAGE_FORK);
        }
        // The pipes are the step's: they close when its last process ends.
        libc::close(a.out);
        libc::close(a.err);
        libc::close(a.null);
        let mut info = [0u8; 1024];
        let mut shell_code: i32 = -1;
        loop {
            let mut fds = [
                libc::pollfd { fd: a.life, events: libc::POLLIN, revents: 0 },
                libc::pollfd { fd: sfd, events: libc::POLLIN, revents: 0 },
            ];
            if libc::poll(fds.as_mut_ptr(), 2, -1) < 0 {
                continue;
            }
            if fds[0].revents != 0 {
                // netrepro is gone: so is the step (the kernel kills the rest
                // of the namespace when we exit).
                libc::_exit(125);
            }
            while libc::read(sfd, info.as_mut_ptr().cast(), info.len()) > 0 {}
            loop {
                let mut st = 0;
                let r = libc::waitpid(-1, &mut st, libc::WNOHANG);
                if r == shell as libc::pid_t {
                    let code = if libc::WIFEXITED(st) { libc::WEXITSTATUS(st) } else { 128 + libc::WTERMSIG(st) };
                    if !a.linger {
                        libc::_exit(code);
                    }
                    // An actor: say the shell's status, and stay while
                    // anything it left runs (orphans are ours to reap).
                    shell_code = code;
                    let c = code.to_ne_bytes();
                    let msg = [STAGE_EXITED, c[0], c[1], c[2], c[3]];
                    libc::write(a.status, msg.as_ptr().cast(), msg.len());
                    continue;
                }
                if r < 0 && shell_code >= 0 {
                    // ECHILD: nothing of the command is left.
                    libc::_exit(shell_code);
                }
                if r <= 0 {
                    break;
                }
            }
        }
    }
}
