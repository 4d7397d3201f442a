//! Network namespaces held only by file descriptors, each served by one
//! dedicated thread that never runs anything else.
//!
//! Why this shape: `setns` is per thread, so a pooled thread (libtest-mimic's,
//! tokio's) that entered a namespace would run later, unrelated work in the
//! wrong place. Here a namespace is created by `unshare(CLONE_NEWNET)` on its
//! own thread, which then only executes jobs for that namespace and exits when
//! the [`Netns`] is dropped. Nothing is bind-mounted or named in the kernel,
//! so when the process dies — however it dies — the last references (the fd,
//! the thread, the sockets) go with it and the kernel frees the namespace.

use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;
use std::sync::mpsc;
use std::thread;

use anyhow::{anyhow, Context, Result};
use nix::sched::{unshare, CloneFlags};

/// What a job sees on its namespace's thread: a netlink handle bound to the
/// namespace and the single-threaded runtime that drives it.
pub struct NsCtx {
    pub rt: tokio::runtime::Runtime,
    pub nl: rtnetlink::Handle,
}

impl NsCtx {
    /// Runs a netlink future to completion on this namespace's runtime.
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }
}

type Job = Box<dyn FnOnce(&mut NsCtx) + Send>;

/// A job queued on a namespace's thread; [`Submitted::wait`] gives its result.
pub struct Submitted<T> {
    rx: mpsc::Receiver<T>,
    ns: String,
}

impl<T> Submitted<T> {
    pub fn wait(self) -> Result<T> {
        self.rx.recv().map_err(|_| anyhow!("a job panicked inside namespace {}", self.ns))
    }
}

/// One private network namespace. `!Sync` by construction of its channel;
/// dropping it ends its thread and releases the namespace.
pub struct Netns {
    name: String,
    fd: OwnedFd,
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl std::fmt::Debug for Netns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Netns({})", self.name)
    }
}

/// A namespace whose thread is still setting it up.
struct Pending {
    name: String,
    ready: mpsc::Receiver<Result<OwnedFd>>,
    tx: mpsc::Sender<Job>,
    thread: thread::JoinHandle<()>,
}

impl Pending {
    fn wait(self) -> Result<Netns> {
        let fd = self
            .ready
            .recv()
            .map_err(|_| anyhow!("namespace thread for {} died during setup", self.name))?
            .with_context(|| format!("creating network namespace {}", self.name))?;
        Ok(Netns { name: self.name, fd, tx: Some(self.tx), thread: Some(self.thread) })
    }
}

impl Netns {
    /// Creates a fresh namespace with `lo` up.
    pub fn new(name: &str) -> Result<Netns> {
        Self::spawn(name)?.wait()
    }

    /// Creates several namespaces at once: the kernel sets them up in
    /// parallel, and that is most of the cost of a topology.
    pub fn new_many(names: &[String]) -> Result<Vec<Netns>> {
        let pending = names.iter().map(|n| Self::spawn(n)).collect::<Result<Vec<_>>>()?;
        // Wait for every thread even after a failure, so none is left behind.
        let done: Vec<Result<Netns>> = pending.into_iter().map(Pending::wait).collect();
        done.into_iter().collect()
    }

    fn spawn(name: &str) -> Result<Pending> {
        // Thread names cannot hold NUL (`Builder::spawn` would panic); the
        // loader refuses such names, this keeps any other caller safe.
        if name.contains('\0') {
            return Err(anyhow!("namespace name {name:?} contains NUL"));
        }
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<OwnedFd>>(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name(format!("netns:{name}"))
            .spawn(move || match enter_new_namespace() {
                Ok((fd, mut ctx)) => {
                    let _ = ready_tx.send(Ok(fd));
                    for job in rx {
                        // A panicking job must not take the namespace thread
                        // down with it: the caller sees the panic as an error.
                        let _ = catch_unwind(AssertUnwindSafe(|| job(&mut ctx)));
                    }
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            })
            .context("spawning a namespace thread")?;
        Ok(Pending { name: name.to_string(), ready: ready_rx, tx, thread })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace fd, valid for the lifetime of `self` (for `IFLA_NET_NS_FD`,
    /// `setns` in a child process, ...).
    pub fn raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }

    /// Runs `f` on the namespace's thread and returns its result.
    pub fn run<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut NsCtx) -> T + Send + 'static,
    {
        self.submit(f)?.wait()
    }

    /// Queues `f` on the namespace's thread and returns at once, so work in
    /// several namespaces can proceed in parallel.
    pub fn submit<T, F>(&self, f: F) -> Result<Submitted<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut NsCtx) -> T + Send + 'static,
    {
        let (rtx, rrx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |ctx| {
            let _ = rtx.send(f(ctx));
        });
        self.tx
            .as_ref()
            .expect("namespace sender lives until drop")
            .send(job)
            .map_err(|_| anyhow!("namespace thread for {} is gone", self.name))?;
        Ok(Submitted { rx: rrx, ns: self.name.clone() })
    }

    /// A command that runs inside this namespace. The child enters it with
    /// `setns` between fork and exec and is killed if its parent thread dies,
    /// so a killed harness leaves no helper behind.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        let fd = self.raw_fd();
        // SAFETY: only async-signal-safe syscalls between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        cmd
    }
}

/// Makes `cmd` enter the network namespace `fd` names between fork and exec
/// (a kept topology's shell: it outlives nothing, so no PDEATHSIG). The fd
/// must stay open until the command is spawned.
pub fn enter_on_exec(cmd: &mut Command, fd: RawFd) {
    // SAFETY: only an async-signal-safe syscall between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; never panic here.
        self.tx.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn enter_new_namespace() -> Result<(OwnedFd, NsCtx)> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| {
        if e == nix::errno::Errno::EPERM {
            anyhow!("unshare(CLONE_NEWNET): EPERM — netrepro needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")
        } else {
            anyhow!("unshare(CLONE_NEWNET): {e}")
        }
    })?;
    let fd: OwnedFd =
        std::fs::File::open("/proc/thread-self/ns/net").context("opening /proc/thread-self/ns/net")?.into();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the namespace's runtime")?;
    let nl = rt.block_on(async {
        let (mut conn, handle, _) = rtnetlink::new_connection()?;
        use netlink_sys::AsyncSocket;
        let sock = conn.socket_mut().socket_mut();
        // Extended ACKs carry the kernel's own error text; CAP_ACK keeps the
        // echoed request short so the text is easy to find.
        sock.set_ext_ack(true)?;
        sock.set_cap_ack(true)?;
        tokio::spawn(conn);
        Ok::<_, std::io::Error>(handle)
    })?;
    let ctx = NsCtx { rt, nl };
    // lo is ifindex 1 in every namespace (LOOPBACK_IFINDEX, set in
    // loopback_net_init): up in one message, with no lookup.
    ctx.block_on(async { ctx.nl.link().set(rtnetlink::LinkUnspec::new_with_index(1).up().build()).execute().await })
        .context("bringing lo up")?;
    Ok((fd, ctx))
}

/// The nsfs inode of a namespace fd: what `net->ns.inum` holds.
pub fn inode_of(fd: i32) -> Result<u32> {
    // SAFETY: the caller's namespace fd stays open for this call.
    let st = nix::sys::stat::fstat(unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) })?;
    Ok(st.st_ino as u32)
}

/// As a normal user, becomes root of a private user namespace, where network
/// namespaces can be created and configured without touching anything of
/// the host's. Must run before the process has any other thread (unshare
/// of CLONE_NEWUSER requires it), i.e. first thing in `main`. Returns
/// whether it did; as root it does nothing.
pub fn become_userns_root() -> Result<bool> {
    let (uid, gid) = (nix::unistd::getuid(), nix::unistd::getgid());
    if uid.is_root() {
        return Ok(false);
    }
    unshare(CloneFlags::CLONE_NEWUSER).map_err(|e| {
        anyhow!(
            "unshare(CLONE_NEWUSER): {e} — this kernel does not allow unprivileged user namespaces here; run as root"
        )
    })?;
    std::fs::write("/proc/self/setgroups", "deny").context("writing /proc/self/setgroups")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1")).context("writing /proc/self/uid_map")?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1")).context("writing /proc/self/gid_map")?;
    // iptables-legacy serialises on /run/xtables.lock, which a normal user
    // cannot open; each run's namespaces are its own, so a private lock file
    // is enough. Single-threaded here, so setting the environment is sound.
    std::env::set_var("XTABLES_LOCKFILE", std::env::temp_dir().join(format!("netrepro-xtables-{uid}.lock")));
    ROOTLESS.store(true, std::sync::atomic::Ordering::Relaxed);
    Ok(true)
}

static ROOTLESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True when [`become_userns_root`] made this process root of a private
/// user namespace (not real root: no BPF, no `--keep`).
pub fn rootless() -> bool {
    ROOTLESS.load(std::sync::atomic::Ordering::Relaxed)
}

/// True when this process may create network namespaces.
pub fn can_create_namespaces() -> std::result::Result<(), String> {
    match Netns::new("probe") {
        Ok(_) => Ok(()),
        Err(e) => Err(format!("{e:#}")),
    }
}
