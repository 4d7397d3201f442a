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
/// namespace. Its socket was created on that thread (so it lives in the
/// namespace) and is driven by the process's one netlink runtime
/// ([`runtime`]): a namespace costs one fd and one thread, not a runtime's
/// epoll, eventfd and socket besides.
pub struct NsCtx {
    pub nl: rtnetlink::Handle,
    /// Notifications of the groups this socket joined ([`NsCtx::join_links`]).
    events: futures::channel::mpsc::UnboundedReceiver<(NlMessage, netlink_sys::SocketAddr)>,
    /// The handle's socket, for group membership (valid while the
    /// connection lives, i.e. while this context does).
    nl_fd: RawFd,
}

pub type NlMessage = netlink_packet_core::NetlinkMessage<netlink_packet_route::RouteNetlinkMessage>;

/// `RTNLGRP_LINK`: link state notifications.
const RTNLGRP_LINK: u32 = 1;
const SOL_NETLINK: libc::c_int = 270;
const NETLINK_ADD_MEMBERSHIP: libc::c_int = 1;
const NETLINK_DROP_MEMBERSHIP: libc::c_int = 2;

impl NsCtx {
    /// Runs a netlink future to completion (on this thread; the socket's
    /// I/O is the shared runtime's).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        runtime().block_on(f)
    }

    /// Starts (or stops) receiving this namespace's link notifications
    /// (`RTNLGRP_LINK`), read with [`NsCtx::next_event`]. Stopping drops
    /// whatever is still queued.
    pub fn join_links(&mut self, on: bool) -> Result<()> {
        let opt = if on { NETLINK_ADD_MEMBERSHIP } else { NETLINK_DROP_MEMBERSHIP };
        // What an earlier membership left is stale.
        while self.events.try_recv().is_ok() {}
        // SAFETY: setsockopt on the live handle's socket with a u32 group.
        let r = unsafe {
            libc::setsockopt(
                self.nl_fd,
                SOL_NETLINK,
                opt,
                &RTNLGRP_LINK as *const u32 as *const libc::c_void,
                std::mem::size_of::<u32>() as libc::socklen_t,
            )
        };
        if r != 0 {
            return Err(anyhow!("netlink link notifications: {}", std::io::Error::last_os_error()));
        }
        if !on {
            while self.events.try_recv().is_ok() {}
        }
        Ok(())
    }

    /// The next notification, or None when none came before `deadline`.
    pub fn next_event(&mut self, deadline: std::time::Instant) -> Option<NlMessage> {
        use futures::StreamExt;
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let events = &mut self.events;
        runtime().block_on(async { tokio::time::timeout(left, events.next()).await.ok().flatten().map(|(m, _)| m) })
    }
}

/// The process's netlink runtime: every namespace's rtnetlink connection
/// runs on it (created lazily, after `become_userns_root`, which must run
/// while the process has one thread).
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("netlink")
            .enable_all()
            .build()
            .expect("building the netlink runtime")
    })
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

/// One private network namespace, held by its thread (and its netlink
/// socket); dropping it ends the thread and releases the namespace. Its fd
/// is opened only when asked for ([`Netns::raw_fd`]): most namespaces of a
/// large topology never need one.
pub struct Netns {
    name: String,
    /// The namespace's thread (a tid: `IFLA_NET_NS_PID` takes it).
    tid: libc::pid_t,
    /// One above the highest ifindex the new namespace held (lo, and the
    /// fallback tunnels of loaded modules): what the kernel would give the
    /// next link made in it.
    first_free: u32,
    fd: std::sync::OnceLock<OwnedFd>,
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
    ready: mpsc::Receiver<Result<(libc::pid_t, u32)>>,
    tx: mpsc::Sender<Job>,
    thread: thread::JoinHandle<()>,
}

impl Pending {
    fn wait(self) -> Result<Netns> {
        let (tid, first_free) = self
            .ready
            .recv()
            .map_err(|_| anyhow!("namespace thread for {} died during setup", self.name))?
            .with_context(|| format!("creating network namespace {}", self.name))?;
        Ok(Netns {
            name: self.name,
            tid,
            first_free,
            fd: std::sync::OnceLock::new(),
            tx: Some(self.tx),
            thread: Some(self.thread),
        })
    }
}

impl Netns {
    /// Creates a fresh namespace with `lo` up.
    pub fn new(name: &str) -> Result<Netns> {
        Self::spawn(name, Vec::new())?.wait()
    }

    /// Creates several namespaces at once: the kernel sets them up in
    /// parallel, and that is most of the cost of a topology.
    pub fn new_many(names: &[String]) -> Result<Vec<Netns>> {
        Self::new_many_with(names.iter().map(|n| (n.clone(), Vec::new())).collect())
    }

    /// As [`Netns::new_many`], each namespace with its sysctls (`key`,
    /// `value`) written by its thread as soon as it exists, before any
    /// link can be made in it (a link takes `default`'s values when made).
    pub fn new_many_with(spec: Vec<(String, Vec<(String, String)>)>) -> Result<Vec<Netns>> {
        let pending = spec.into_iter().map(|(n, s)| Self::spawn(&n, s)).collect::<Result<Vec<_>>>()?;
        // Wait for every thread even after a failure, so none is left behind.
        let done: Vec<Result<Netns>> = pending.into_iter().map(Pending::wait).collect();
        done.into_iter().collect()
    }

    fn spawn(name: &str, sysctls: Vec<(String, String)>) -> Result<Pending> {
        // Thread names cannot hold NUL (`Builder::spawn` would panic); the
        // loader refuses such names, this keeps any other caller safe.
        if name.contains('\0') {
            return Err(anyhow!("namespace name {name:?} contains NUL"));
        }
        crate::sys::rlimit::raise_nofile();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(libc::pid_t, u32)>>(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = thread::Builder::new()
            .name(format!("netns:{name}"))
            // Jobs are small closures; 256 KiB keeps 500 namespaces' stacks modest.
            .stack_size(256 << 10)
            .spawn(move || {
                match enter_new_namespace().and_then(|made| {
                    for (k, v) in &sysctls {
                        crate::sys::sysctl::write(k, v)?;
                    }
                    Ok(made)
                }) {
                    Ok((mut ctx, conn, first_free)) => {
                        // SAFETY: gettid has no preconditions.
                        let _ = ready_tx.send(Ok((unsafe { libc::gettid() }, first_free)));
                        for job in rx {
                            // A panicking job must not take the namespace thread
                            // down with it: the caller sees the panic as an error.
                            let _ = catch_unwind(AssertUnwindSafe(|| job(&mut ctx)));
                        }
                        // The connection is ended here rather than left to
                        // notice its handles are gone (it looks once, and the
                        // notification channel may close after that look), and
                        // waited for: its socket, and the socket's hold on the
                        // namespace, are gone when the namespace's drop returns.
                        drop(ctx);
                        conn.abort();
                        let _ = runtime().block_on(conn);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .context("spawning a namespace thread")?;
        Ok(Pending { name: name.to_string(), ready: ready_rx, tx, thread })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace fd, valid for the lifetime of `self` (for `IFLA_NET_NS_FD`,
    /// `setns` in a child process, ...), opened on first use; -1 if it
    /// cannot be opened (out of fds), which the call it is passed to reports.
    pub fn raw_fd(&self) -> RawFd {
        self.try_fd().unwrap_or(-1)
    }

    /// As [`Netns::raw_fd`], with why it could not be opened.
    pub fn try_fd(&self) -> Result<RawFd> {
        if let Some(fd) = self.fd.get() {
            return Ok(fd.as_raw_fd());
        }
        let path = self.ns_path();
        let fd: OwnedFd = std::fs::File::open(&path).with_context(|| format!("opening {path}"))?.into();
        // Two callers at once: one fd is kept, the other closed.
        Ok(self.fd.get_or_init(|| fd).as_raw_fd())
    }

    /// The namespace through its thread, for as long as the thread lives.
    fn ns_path(&self) -> String {
        format!("/proc/self/task/{}/ns/net", self.tid)
    }

    /// The ifindex the kernel would give the first link made here: one
    /// above every link the namespace was born with. A build that gives its
    /// links their indexes counts from it, so the kernel's own numbering of
    /// links made later (by a step) continues as if it had made them: the
    /// two ends of a veth then rarely share an index, which would make
    /// their carrier a non-urgent link-watch event (`linkwatch_urgent_event`:
    /// `ifindex != iflink`), handled up to a second later.
    pub fn first_free_index(&self) -> u32 {
        self.first_free
    }

    /// The thread that holds the namespace (for `IFLA_NET_NS_PID`).
    pub fn tid(&self) -> u32 {
        self.tid as u32
    }

    /// The namespace's nsfs inode (what `net->ns.inum` holds), without
    /// opening an fd.
    pub fn inode(&self) -> Result<u32> {
        use std::os::unix::fs::MetadataExt;
        let path = self.ns_path();
        Ok(std::fs::metadata(&path).with_context(|| format!("stat {path}"))?.ino() as u32)
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
        command_in(self.raw_fd(), program)
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

/// A command that runs inside the namespace of `fd` (see [`Netns::command`]).
pub fn command_in(fd: RawFd, program: &str) -> Command {
    let mut cmd = Command::new(program);
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

/// Starts `f` on a new thread in a new network namespace; joining gives
/// what it made there. The namespace lives as long as something `f`
/// returns holds it (a socket made in it, its fd); the thread ends with
/// `f`. The bare primitive `netrepro bench` builds its floor with.
pub fn fresh_namespace<T: Send + 'static>(
    f: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<thread::JoinHandle<Result<T>>> {
    thread::Builder::new()
        .name("netns:fresh".into())
        .stack_size(128 << 10)
        .spawn(move || {
            unshare(CloneFlags::CLONE_NEWNET).map_err(|e| anyhow!("unshare(CLONE_NEWNET): {e}"))?;
            f()
        })
        .context("spawning a namespace thread")
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

type NlConnection = rtnetlink::proto::Connection<netlink_packet_route::RouteNetlinkMessage>;

/// Unshares the calling thread into a new namespace and opens its netlink
/// socket there, driven by the shared runtime.
fn enter_new_namespace() -> Result<(NsCtx, tokio::task::JoinHandle<()>, u32)> {
    unshare(CloneFlags::CLONE_NEWNET).map_err(|e| {
        if e == nix::errno::Errno::EPERM {
            anyhow!("unshare(CLONE_NEWNET): EPERM — netrepro needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN)")
        } else {
            anyhow!("unshare(CLONE_NEWNET): {e}")
        }
    })?;
    let rt = runtime();
    // The socket is created here, on the namespace's thread, and registered
    // with the shared runtime's reactor.
    let _in_rt = rt.enter();
    let (mut conn, nl, events): (NlConnection, _, _) = rtnetlink::new_connection()?;
    use netlink_sys::AsyncSocket;
    let sock = conn.socket_mut().socket_mut();
    // Extended ACKs carry the kernel's own error text; CAP_ACK keeps the
    // echoed request short so the text is easy to find.
    sock.set_ext_ack(true)?;
    sock.set_cap_ack(true)?;
    let nl_fd = sock.as_raw_fd();
    roomy_receive_buffer(nl_fd);
    let conn = rt.spawn(conn);
    let ctx = NsCtx { nl, events, nl_fd };
    // lo is ifindex 1 in every namespace (LOOPBACK_IFINDEX, set in
    // loopback_net_init): up in one message, with no lookup.
    ctx.block_on(async { ctx.nl.link().set(rtnetlink::LinkUnspec::new_with_index(1).up().build()).execute().await })
        .context("bringing lo up")?;
    let first_free = ctx
        .block_on(async {
            use futures::TryStreamExt;
            let mut links = ctx.nl.link().get().execute();
            let mut top = 1;
            while let Some(l) = links.try_next().await? {
                top = top.max(l.header.index);
            }
            Ok::<_, rtnetlink::Error>(top + 1)
        })
        .map_err(|e| anyhow!("listing the new namespace's links: {e}"))?;
    Ok((ctx, conn, first_free))
}

/// Gives a netlink socket a 1 MiB receive buffer where allowed (root:
/// `SO_RCVBUFFORCE`; else what `rmem_max` allows), so that answers to a
/// batch of requests, and notifications beside them, are not dropped: an
/// answer the kernel cannot queue is lost. Memory is used only as filled.
pub fn roomy_receive_buffer(fd: RawFd) {
    let size: libc::c_int = 1 << 20;
    for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: setsockopt with an int on a socket the caller owns.
        let r = unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, opt, &size as *const _ as *const libc::c_void, 4) };
        if r == 0 {
            break;
        }
    }
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
