//! Packet capture on one interface of one namespace: an `AF_PACKET` socket
//! created on the namespace's thread, read by a capture thread that keeps the
//! frames in memory, in arrival order, for assertions and for the phase's
//! pcapng (written by the runner once every capture has stopped).
//!
//! Each capture thread sleeps in `poll` on its socket and an eventfd: the
//! kernel wakes it for frames, [`Capture::sync`] and [`Capture::stop`] for
//! everything else. Nothing polls on a timer.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::sys::clock::now_ns;
use crate::sys::netns::Netns;
use crate::wire::linktype::LinkType;
use crate::wire::packet::{Direction, Frame};

const ETH_P_ALL: u16 = 0x0003;
/// Bytes kept of each frame: libpcap's default, above a veth's largest GSO
/// frame (64 KiB of payload plus headers), so frames are kept whole.
pub const SNAPLEN: usize = 262_144;

/// What a capture's threads share: the frames so far and, per socket, the
/// last time it was seen empty (every frame the kernel queued before it has
/// been read), changed together under one lock and announced on `changed`.
#[derive(Default)]
struct Seen {
    frames: Vec<Frame>,
    drained_ns: Vec<u64>,
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Seen>,
    changed: Condvar,
    stop: AtomicBool,
}

/// One socket's reading thread and the eventfd it polls beside the socket.
struct Reader {
    wake: Arc<OwnedFd>,
    thread: thread::JoinHandle<Result<u64>>,
}

fn kick(wake: &OwnedFd) {
    let one: u64 = 1;
    // SAFETY: an 8-byte write to our eventfd; a full counter only means
    // the thread has a wake-up pending already.
    unsafe { libc::write(wake.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
}

/// A running capture; [`Capture::stop`] returns the frames. It follows its
/// interface by name: [`Capture::follow`] (after each step) opens a socket on
/// the link when it appears or is recreated (a new ifindex); a link that goes
/// down or away leaves its socket silent, never failing (the kernel reports
/// `ENETDOWN` once, and resumes the socket when the same link comes up).
pub struct Capture {
    /// `ns/dev`, as evidence and the pcapng name the interface.
    pub label: String,
    /// The device's link type, from the kernel (`sll_hatype`); Ethernet
    /// until the link first exists.
    pub link: LinkType,
    dev: String,
    /// The ifindex of the latest socket's link.
    ifindex: Option<u32>,
    /// The latest socket (owned by its reading thread, which lives until
    /// [`Capture::stop`]), to ask whether its link is still there.
    sock: Option<std::os::fd::RawFd>,
    shared: Arc<Shared>,
    readers: Vec<Reader>,
    /// Frames the kernel could not queue for us: the capture is incomplete.
    dropped: u64,
}
/// What a stopped capture saw.
pub struct Captured {
    pub label: String,
    pub link: LinkType,
    /// Every frame, in arrival order (the index is the one
    /// [`Capture::window_indexed`] gave).
    pub frames: Vec<Frame>,
    /// Frames the kernel dropped because we did not read fast enough.
    pub dropped: u64,
}

impl Capture {
    /// Starts capturing `dev` in `ns`; `label` names it in evidence and in
    /// the pcapng (`host/eno1`). Frames are kept in memory until [`Capture::stop`].
    pub fn start(ns: &Netns, dev: &str, label: &str) -> Result<Capture> {
        let mut c = Capture::pending(dev, label);
        c.follow(ns)?;
        if c.ifindex.is_none() {
            bail!("no interface {dev} to capture on ({label})");
        }
        Ok(c)
    }

    /// A capture of a link that may not exist yet: it starts at the first
    /// [`Capture::follow`] that finds it.
    pub fn pending(dev: &str, label: &str) -> Capture {
        Capture {
            label: label.to_string(),
            link: LinkType::Ethernet,
            dev: dev.to_string(),
            ifindex: None,
            sock: None,
            shared: Arc::new(Shared::default()),
            readers: Vec::new(),
            dropped: 0,
        }
    }

    /// Opens a socket on the link when it exists in `ns` under another
    /// ifindex than the one captured (it appeared, moved in, or was deleted
    /// and made again), or under the same one while the captured link is
    /// gone (made again with its old index, which the kernel may give it
    /// when links were created with explicit indexes); otherwise nothing.
    pub fn follow(&mut self, ns: &Netns) -> Result<()> {
        // The link's index first: a socket opened only to find the link
        // unchanged would be closed at once, and closing a bound packet
        // socket waits for an RCU grace period (8-20 ms, after every step).
        let devname = self.dev.clone();
        let idx = ns.run(move |_| -> Result<u32> {
            let cname = std::ffi::CString::new(devname.as_str())?;
            // SAFETY: a plain libc call on a C string we own.
            Ok(unsafe { libc::if_nametoindex(cname.as_ptr()) })
        })??;
        if idx == 0 || (self.ifindex == Some(idx) && self.sock.is_some_and(|s| bound_ifindex(s) == Some(idx))) {
            return Ok(());
        }
        let devname = self.dev.clone();
        // None: gone again since it was looked up, as if never there.
        let opened = ns.run(move |_| open_packet_socket(&devname))??;
        let Some((fd, hatype, idx)) = opened else { return Ok(()) };
        let label = self.label.clone();
        let link = LinkType::from_arphrd(hatype).ok_or_else(|| {
            anyhow!("cannot capture on {label}: its link type (ARPHRD {hatype}) is not one netrepro parses")
        })?;
        self.link = link;
        self.ifindex = Some(idx);
        self.sock = Some(fd.as_raw_fd());
        // SAFETY: eventfd with flags; the fd is owned below.
        let wake = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if wake < 0 {
            bail!("eventfd for the capture of {label}: {}", std::io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(wake) });
        let slot = {
            let mut seen = self.shared.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.drained_ns.push(0);
            seen.drained_ns.len() - 1
        };
        let (sh, w) = (self.shared.clone(), wake.clone());
        let thread = thread::Builder::new()
            .name(format!("capture:{label}"))
            .spawn(move || read_until_stopped(&fd, &w, &sh, slot, link))?;
        self.readers.push(Reader { wake, thread });
        Ok(())
    }

    fn kick_all(&self) {
        for r in &self.readers {
            kick(&r.wake);
        }
    }

    /// Waits until every frame queued before `t_ns` has been read (bounded by
    /// `within`), so a probe's window is complete before it is judged.
    pub fn sync(&self, t_ns: u64, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let mut seen = self.shared.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.drained_ns.iter().all(|&d| d > t_ns) {
            return Ok(());
        }
        // The threads sleep until the kernel or we wake them: ask for a pass
        // over each socket, which ends with the socket seen empty after now.
        self.kick_all();
        while seen.drained_ns.iter().any(|&d| d <= t_ns) {
            if self.readers.iter().any(|r| r.thread.is_finished()) {
                bail!("capture {} stopped reading (its socket failed)", self.label);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                bail!("capture {} did not drain within {:?}", self.label, within);
            }
            // Bounded, so a thread that ended on an error is seen.
            let nap = left.min(Duration::from_millis(50));
            seen = self.shared.changed.wait_timeout(seen, nap).unwrap_or_else(|e| e.into_inner()).0;
        }
        Ok(())
    }

    /// Waits until `until` for the frames seen so far to satisfy `done`
    /// (checked now and whenever frames arrive); whether they did.
    pub fn wait_for(&self, until: Instant, mut done: impl FnMut(&[Frame]) -> bool) -> bool {
        let mut seen = self.shared.seen.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if done(&seen.frames) {
                return true;
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            seen = self.shared.changed.wait_timeout(seen, left).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Frames seen so far with timestamps in `[from_ns, to_ns]`.
    pub fn window(&self, from_ns: u64, to_ns: u64) -> Vec<Frame> {
        self.window_indexed(from_ns, to_ns).into_iter().map(|(_, f)| f).collect()
    }

    /// As [`Capture::window`], each frame with its index in arrival order
    /// (stable: frames are only ever appended).
    pub fn window_indexed(&self, from_ns: u64, to_ns: u64) -> Vec<(usize, Frame)> {
        let seen = self.shared.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.ts_ns >= from_ns && f.ts_ns <= to_ns)
            .map(|(i, f)| (i, f.clone()))
            .collect()
    }

    /// Tells the capture thread to finish (read what is queued, close the
    /// socket, exit) without waiting for it: stopping several captures,
    /// signal them all first, then [`Capture::stop`] each, so the kernel's
    /// socket teardowns (an RCU grace period each) overlap.
    pub fn signal_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        self.kick_all();
    }

    /// Stops and returns every frame, and how many the kernel dropped.
    pub fn stop(mut self) -> Result<Captured> {
        self.finish()?;
        let frames = std::mem::take(&mut self.shared.seen.lock().unwrap_or_else(|e| e.into_inner()).frames);
        Ok(Captured { label: self.label.clone(), link: self.link, frames, dropped: self.dropped })
    }

    fn finish(&mut self) -> Result<()> {
        self.signal_stop();
        let mut first_err = None;
        for r in self.readers.drain(..) {
            match r.thread.join().map_err(|_| anyhow!("capture thread {} panicked", self.label)).and_then(|r| r) {
                Ok(d) => self.dropped += d,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

/// Stops every capture, all at once, and returns what each saw.
pub fn stop_all(caps: Vec<Capture>) -> Vec<Result<Captured>> {
    for c in &caps {
        c.signal_stop();
    }
    caps.into_iter().map(Capture::stop).collect()
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// A capture thread: read everything queued, publish it with the time
/// the socket was seen empty (in `slot`), sleep until the kernel or a kick
/// on `wake` wakes it.
fn read_until_stopped(fd: &OwnedFd, wake: &OwnedFd, sh: &Shared, slot: usize, link: LinkType) -> Result<u64> {
    let mut buf = vec![0u8; SNAPLEN];
    loop {
        let mut got = Vec::new();
        let empty_at = loop {
            // Taken before the read that finds the socket empty: every frame
            // queued before it has been read by then.
            let t = now_ns();
            match recv_frame(fd, &mut buf, link)? {
                Some(frame) => got.push(frame),
                None => break t,
            }
        };
        {
            let mut seen = sh.seen.lock().unwrap_or_else(|e| e.into_inner());
            seen.frames.append(&mut got);
            seen.drained_ns[slot] = empty_at;
        }
        sh.changed.notify_all();
        if sh.stop.load(Ordering::Acquire) {
            return Ok(drops(fd));
        }
        let mut p = [
            libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: wake.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        // SAFETY: two pollfds we own; no timeout: the kernel or a kick wakes us.
        unsafe { libc::poll(p.as_mut_ptr(), 2, -1) };
        if p[1].revents != 0 {
            let mut n = 0u64;
            // SAFETY: an 8-byte read from our eventfd resets it.
            unsafe { libc::read(wake.as_raw_fd(), &mut n as *mut u64 as *mut libc::c_void, 8) };
        }
    }
}

/// A packet socket bound to `dev` (every protocol, timestamps in ns): the
/// socket, the link's `ARPHRD_*` type and the index it is bound to; `None`
/// when there is no such link.
fn open_packet_socket(dev: &str) -> Result<Option<(OwnedFd, u16, u32)>> {
    let cname = std::ffi::CString::new(dev)?;
    // SAFETY: plain libc calls on values we own.
    unsafe {
        let ifindex = libc::if_nametoindex(cname.as_ptr());
        if ifindex == 0 {
            return Ok(None);
        }
        // Protocol 0 at creation so nothing is queued before the bind to one
        // interface; the bind then selects every protocol.
        let raw = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0);
        if raw < 0 {
            bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(raw);
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex as i32;
        if libc::bind(raw, &sll as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_ll>() as u32)
            != 0
        {
            let e = std::io::Error::last_os_error();
            // Deleted since it was looked up: as if it had not been there.
            if e.raw_os_error() == Some(libc::ENODEV) {
                return Ok(None);
            }
            bail!("binding capture to {dev}: {e}");
        }
        let one: libc::c_int = 1;
        if libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        ) != 0
        {
            bail!("SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
        }
        // The kernel's per-frame status (tpacket_auxdata) with each frame:
        // TP_STATUS_CSUMNOTREADY marks a CHECKSUM_PARTIAL skb.
        if libc::setsockopt(
            raw,
            libc::SOL_PACKET,
            libc::PACKET_AUXDATA,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        ) != 0
        {
            bail!("PACKET_AUXDATA: {}", std::io::Error::last_os_error());
        }
        let big: libc::c_int = 8 << 20;
        // FORCE needs CAP_NET_ADMIN over the host (not so in a user
        // namespace): then as much as rmem_max allows.
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            if libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                opt,
                &big as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            ) == 0
            {
                break;
            }
        }
        // The kernel's packet_getname() fills sll_hatype with the bound
        // device's dev->type (valid in any namespace, unlike /sys/class/net
        // read from the host).
        let mut name: libc::sockaddr_ll = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        if libc::getsockname(raw, &mut name as *mut _ as *mut libc::sockaddr, &mut len) != 0 {
            bail!("getsockname on the capture of {dev}: {}", std::io::Error::last_os_error());
        }
        Ok(Some((fd, name.sll_hatype, ifindex)))
    }
}

/// Frames the kernel dropped for this socket (buffer full) since the last call.
fn drops(fd: &OwnedFd) -> u64 {
    let mut st = libc::tpacket_stats { tp_packets: 0, tp_drops: 0 };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: getsockopt into a struct we own, with its size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut st as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if r == 0 {
        st.tp_drops as u64
    } else {
        0
    }
}

/// One frame, or None when nothing is queued. Its direction is the kernel's
/// `sll_pkttype`: `PACKET_OUTGOING` is out, anything else (host, broadcast,
/// multicast, otherhost) in.
fn recv_frame(fd: &OwnedFd, buf: &mut [u8], link: LinkType) -> Result<Option<Frame>> {
    // SAFETY: recvmsg into buffers we own; cmsgs walked with libc's macros.
    unsafe {
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        // Room for SCM_TIMESTAMPNS and PACKET_AUXDATA (16 + 20 bytes of data).
        let mut cbuf = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &mut addr as *mut _ as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        // MSG_TRUNC: the length on the wire, even past the buffer.
        let n = libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT | libc::MSG_TRUNC);
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                // ENETDOWN: the link went down or away (reported once);
                // the socket resumes when the same link comes up again.
                Some(libc::EAGAIN) | Some(libc::EINTR) | Some(libc::ENETDOWN) => Ok(None),
                _ => Err(anyhow!("reading capture: {e}")),
            };
        }
        let mut ts_ns = now_ns();
        let mut csum_not_ready = false;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                ts_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            }
            if (*c).cmsg_level == libc::SOL_PACKET && (*c).cmsg_type == libc::PACKET_AUXDATA {
                let aux = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::tpacket_auxdata);
                csum_not_ready = aux.tp_status & libc::TP_STATUS_CSUMNOTREADY != 0;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        let direction = if addr.sll_pkttype == libc::PACKET_OUTGOING { Direction::Out } else { Direction::In };
        let kept = (n as usize).min(buf.len());
        Ok(Some(Frame { ts_ns, direction, link, data: buf[..kept].to_vec(), wire_len: n as u32, csum_not_ready }))
    }
}

/// The ifindex a packet socket is bound to, or None once its device is
/// gone: on `NETDEV_UNREGISTER` the kernel unbinds it (`po->ifindex = -1`,
/// `packet_notifier`), which `getsockname` shows.
fn bound_ifindex(fd: std::os::fd::RawFd) -> Option<u32> {
    // SAFETY: sockaddr_ll is plain data; getsockname writes at most `len` bytes.
    let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: fd is a live packet socket (its thread holds it until stop).
    let r = unsafe { libc::getsockname(fd, &mut sll as *mut libc::sockaddr_ll as *mut libc::sockaddr, &mut len) };
    (r == 0 && sll.sll_ifindex > 0).then_some(sll.sll_ifindex as u32)
}
