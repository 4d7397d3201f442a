//! Probes: what a user would run inside a container, reduced to exact,
//! comparable outcomes. Sockets are created on the source namespace's thread
//! and then used from the caller's thread (a socket keeps the namespace it was
//! born in).

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use crate::evidence::outcome::{ConnectOutcome, IcmpError, PingOutcome, StreamOutcome};
use crate::sys::netns::Netns;
use crate::wire::checksum::inet_checksum;

/// An errno as its name (`EHOSTUNREACH`), "timeout" for a deadline of ours.
pub fn error_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{:?}", nix::errno::Errno::from_raw(n)),
        None if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock => {
            "timeout".into()
        }
        None => format!("{:?}", e.kind()),
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

// ---------------------------------------------------------------- ping

fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![8u8, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..56u8).map(|i| i.wrapping_add(0x10)));
    let c = inet_checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// Classifies one IPv4 datagram read from a raw ICMP socket against our echo id.
#[derive(Debug, PartialEq)]
pub enum IcmpSeen {
    Reply { seq: u16 },
    Error(IcmpError),
    Other,
}

pub fn classify_icmp(ip: &[u8], id: u16) -> IcmpSeen {
    let Some(&vihl) = ip.first() else {
        return IcmpSeen::Other;
    };
    let ihl = ((vihl & 0x0f) as usize) * 4;
    if ip.len() < ihl + 8 || ip[9] != 1 {
        return IcmpSeen::Other;
    }
    let src = Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]);
    let icmp = &ip[ihl..];
    let (t, c) = (icmp[0], icmp[1]);
    if t == 0 {
        let rid = u16::from_be_bytes([icmp[4], icmp[5]]);
        return if rid == id {
            IcmpSeen::Reply { seq: u16::from_be_bytes([icmp[6], icmp[7]]) }
        } else {
            IcmpSeen::Other
        };
    }
    if matches!(t, 3 | 11 | 12) {
        // The error quotes the offending datagram: IP header + 8 bytes.
        let inner = &icmp[8..];
        let Some(&ivihl) = inner.first() else {
            return IcmpSeen::Other;
        };
        let iihl = ((ivihl & 0x0f) as usize) * 4;
        if inner.len() < iihl + 8 || inner[9] != 1 {
            return IcmpSeen::Other;
        }
        let q = &inner[iihl..];
        if q[0] == 8 && u16::from_be_bytes([q[4], q[5]]) == id {
            return IcmpSeen::Error(IcmpError {
                kind: crate::wire::icmp::name(t, c),
                from: src,
                seq: u16::from_be_bytes([q[6], q[7]]),
            });
        }
    }
    IcmpSeen::Other
}

fn raw_icmp_socket() -> Result<OwnedFd> {
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMP) };
    if fd < 0 {
        bail!("raw ICMP socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: fd was just returned by socket().
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Which request (0-based) a reply's sequence number answers, `sent`
/// requests out: sequence numbers are 16 bits and wrap (request `i` carries
/// `i + 1` mod 2^16), so the latest request with that number.
fn request_of(seq: u16, sent: usize) -> Option<usize> {
    let first = seq.wrapping_sub(1) as usize;
    (first < sent).then(|| first + (sent - 1 - first) / 65536 * 65536)
}

/// ICMP echo from `from` to `to`: `count` requests `interval` apart, then
/// listens `wait` more for replies and ICMP errors about our requests.
pub fn ping(from: &Netns, to: Ipv4Addr, count: u32, interval: Duration, wait: Duration) -> Result<PingOutcome> {
    let fd = from.run(|_| raw_icmp_socket())??;
    let id = (std::process::id() as u16) ^ (crate::sys::clock::now_ns() as u16);
    let start = Instant::now();
    let later = |t: Instant, d: Duration| t.checked_add(d).ok_or_else(|| anyhow!("ping: {d:?} is too long a time"));
    let mut sent_at = Vec::new();
    let mut out = PingOutcome { sent: 0, replies: 0, errors: vec![], rtt_ms: vec![], elapsed_ms: 0.0 };
    let mut seen = std::collections::BTreeSet::new();
    let mut next_send = start;
    let mut deadline = None;
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        if out.sent < count && now >= next_send {
            // Wraps past 65535 like ping(8)'s icmp_seq (a long soak sends that many).
            let seq = (out.sent as u16).wrapping_add(1);
            send_to(&fd, &echo_request(id, seq), to)?;
            sent_at.push(Instant::now());
            out.sent += 1;
            next_send = later(next_send, interval)?;
            continue;
        }
        // After the last request (at once for `count = 0`) the listening
        // window starts.
        let until = match deadline {
            _ if out.sent < count => next_send,
            Some(d) => d,
            None => *deadline.insert(later(now, wait)?),
        };
        if now >= until {
            if out.sent >= count {
                break;
            }
            continue;
        }
        if out.sent == count && seen.len() as u32 == count {
            break; // every request answered
        }
        // poll takes an int of ms: clamp, or a long wait turns negative (= forever).
        let wait_ms = (until - now).as_millis().clamp(1, i32::MAX as u128) as i32;
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd we own.
        if unsafe { libc::poll(&mut p, 1, wait_ms) } <= 0 {
            continue;
        }
        // SAFETY: reading into our buffer.
        let n =
            unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), libc::MSG_DONTWAIT) };
        if n <= 0 {
            continue;
        }
        match classify_icmp(&buf[..n as usize], id) {
            IcmpSeen::Reply { seq } => {
                if let Some(i) = request_of(seq, sent_at.len()).filter(|&i| seen.insert(i)) {
                    out.replies += 1;
                    out.rtt_ms.push(ms(sent_at[i].elapsed()));
                }
            }
            IcmpSeen::Error(e) => out.errors.push(e),
            IcmpSeen::Other => {}
        }
    }
    out.elapsed_ms = ms(start.elapsed());
    Ok(out)
}

/// One echo request on a raw ICMP socket already open (in its namespace):
/// whether its reply came within `wait`. What `netrepro bench`'s floor pings
/// with; probes use [`ping`].
pub fn ping_fd(fd: &OwnedFd, to: Ipv4Addr, wait: Duration) -> Result<bool> {
    let id = (std::process::id() as u16) ^ (crate::sys::clock::now_ns() as u16);
    send_to(fd, &echo_request(id, 1), to)?;
    let deadline = Instant::now() + wait;
    let mut buf = [0u8; 1500];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd we own.
        if unsafe { libc::poll(&mut p, 1, left.as_millis().clamp(1, i32::MAX as u128) as i32) } <= 0 {
            continue;
        }
        // SAFETY: reading into our buffer.
        let n =
            unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len(), libc::MSG_DONTWAIT) };
        if n > 0 && classify_icmp(&buf[..n as usize], id) == (IcmpSeen::Reply { seq: 1 }) {
            return Ok(true);
        }
    }
}

fn send_to(fd: &OwnedFd, payload: &[u8], to: Ipv4Addr) -> Result<()> {
    let sa = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr { s_addr: u32::from(to).to_be() },
        sin_zero: [0; 8],
    };
    // SAFETY: sendto with a sockaddr_in we own.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            payload.as_ptr() as *const libc::c_void,
            payload.len(),
            0,
            &sa as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        )
    };
    if n < 0 {
        // A send error (e.g. ENETUNREACH) is an outcome, not a harness fault:
        // the request counts as sent and nothing will answer it.
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            return Err(anyhow!("sending ICMP echo: {e}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- connect

/// TCP connect from `from` to `to`, with a listener on `listen.1` in
/// `listen.0` if given, after `hold` connections that stay open while it
/// runs (and are handed back, both ends, to be closed after the phase).
pub fn connect(
    from: &Netns,
    to: SocketAddr,
    listen: Option<(&Netns, SocketAddr)>,
    timeout: Duration,
    hold: u32,
) -> Result<(ConnectOutcome, Leftover)> {
    let listener = match listen {
        Some((ns, at)) => Some(ns.run(move |_| TcpListener::bind(at))?.map_err(|e| anyhow!("listening on {at}: {e}"))?),
        None => None,
    };
    let held = match (&listener, hold) {
        (_, 0) => Vec::new(),
        (Some(l), n) => hold_open(from, to, l, n, timeout)?,
        (None, _) => return Err(anyhow!("held connections need a listener")),
    };
    // connect_timeout creates the socket, so it runs on the namespace's thread.
    let (res, took) = from.run(move |_| {
        let t0 = Instant::now();
        let r = TcpStream::connect_timeout(&to, timeout);
        (r.map(drop), t0.elapsed())
    })?;
    let outcome = ConnectOutcome {
        result: match res {
            Ok(()) => "ok".into(),
            Err(e) => error_name(&e),
        },
        elapsed_ms: ms(took),
        held: hold,
    };
    Ok((outcome, Leftover(held)))
}

/// Opens `n` connections and waits until the listener has accepted every
/// one: an accepted connection's final ACK has crossed everything on the
/// way (a conntrack entry in between is ASSURED by then, so the kernel
/// cannot early-drop it to make room).
fn hold_open(from: &Netns, to: SocketAddr, l: &TcpListener, n: u32, timeout: Duration) -> Result<Vec<TcpStream>> {
    let mut held = from.run(move |_| {
        (1..=n)
            .map(|i| {
                TcpStream::connect_timeout(&to, timeout)
                    .map_err(|e| anyhow!("held connection {i} of {n} to {to}: {}", error_name(&e)))
            })
            .collect::<Result<Vec<_>>>()
    })??;
    l.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    let mut accepted = 0;
    while accepted < n {
        match l.accept() {
            Ok((c, _)) => {
                held.push(c);
                accepted += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => return Err(anyhow!("the listener accepted {accepted} of {n} held connections: {e}")),
        }
    }
    Ok(held)
}

// ---------------------------------------------------------------- stream

/// A segment to inject while the flow is paused.
pub struct Injection<'a> {
    pub ns: &'a Netns,
    pub dev: String,
    pub segment: crate::case::spec::Segment,
    pub count: u32,
    /// The sender pauses after this many bytes; the receiver has them all
    /// (the flow is quiet) when the segment goes out.
    pub at_bytes: u64,
    /// How long the paused flow waits at most after the injection before
    /// resuming (it resumes as soon as the injection's outcome is decided).
    pub settle: Duration,
    /// The case's drop watch: the kernel dropping the segment decides its
    /// outcome too.
    pub drops: Option<&'a crate::sys::drops::Watch>,
}

/// After an answer or a drop has decided an injection's outcome, how long
/// a RST may still come before the flow resumes. A RST follows what caused
/// it within microseconds on an idle machine; under load the softirq that
/// carries it can wait for a busy CPU, for milliseconds.
pub const SETTLE_GRACE: Duration = Duration::from_millis(50);

/// How often the drop monitor is read while an injection is undecided (the
/// capture wakes the wait by itself; the monitor's map cannot).
const DROP_POLL: Duration = Duration::from_millis(5);

/// What decided an injection's outcome, or not yet.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Settled {
    /// A RST came back towards the server: the flow is reset.
    Reset,
    /// The segment was answered from the client's side, or dropped.
    Ended,
    Open,
}

/// Waits, at most `settle`, until the injected segment's fate is known:
/// a RST towards the server ends the wait at once; an answer from the
/// client's side or a kernel drop since `sent_ns` ends it [`SETTLE_GRACE`]
/// later (unless a RST comes first). The capture wakes the wait when frames
/// arrive; the drop monitor is read every [`DROP_POLL`].
fn settle(
    watch: &crate::sys::capture::Capture,
    i: &Injection,
    server: (Ipv4Addr, u16),
    sent_ns: u64,
    mark: Option<&crate::sys::drops::Mark>,
) {
    use crate::wire::packet::Matcher;
    let rst = Matcher::parse("tcp rst in").expect("static matcher");
    let answer = Matcher::parse(&format!("tcp in dst {} port {}", server.0, server.1))
        .expect("matcher from an address and port");
    let end = Instant::now() + i.settle;
    let mut decided_at: Option<Instant> = None;
    loop {
        let now = Instant::now();
        if now >= end || decided_at.is_some_and(|t| now >= t + SETTLE_GRACE) {
            return;
        }
        let until = match decided_at {
            Some(t) => (t + SETTLE_GRACE).min(end),
            None if mark.is_some() => (now + DROP_POLL).min(end),
            None => end,
        };
        let mut state = Settled::Open;
        watch.wait_for(until, |frames| {
            // Frames are in arrival order: the ones since the injection are at the end.
            let since =
                frames.iter().rev().take_while(|f| f.ts_ns + 1_000_000 >= sent_ns).filter(|f| f.ts_ns >= sent_ns);
            for f in since {
                if rst.matches(f) {
                    state = Settled::Reset;
                    return true;
                }
                if answer.matches(f) {
                    state = Settled::Ended;
                }
            }
            state == Settled::Ended && decided_at.is_none()
        });
        if state == Settled::Reset {
            return;
        }
        let dropped = || matches!((i.drops, mark), (Some(w), Some(m)) if w.counted_since(m));
        if decided_at.is_none() && (state == Settled::Ended || dropped()) {
            decided_at = Some(Instant::now());
        }
    }
}

pub struct StreamOpts<'a> {
    pub bytes: u64,
    pub timeout: Duration,
    /// The server sends (a download) instead of the client.
    pub download: bool,
    /// SO_RCVBUF of the receiving side, set before connect so the window
    /// scale follows it.
    pub rcvbuf: Option<u32>,
    pub inject: Option<Injection<'a>>,
}

/// Writes `total` bytes, pausing after `pause_at` until `resume` says so.
fn send_side(
    mut s: TcpStream,
    total: u64,
    pause_at: Option<u64>,
    paused: std::sync::mpsc::Sender<()>,
    resume: std::sync::mpsc::Receiver<()>,
    deadline: Instant,
) -> (u64, String) {
    let chunk = vec![0x5au8; 64 * 1024];
    let mut sent = 0u64;
    let mut pause = pause_at;
    while sent < total {
        if pause == Some(sent) {
            pause = None;
            let _ = paused.send(());
            if resume.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_err() {
                return (sent, "timeout".into());
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (sent, "timeout".into());
        }
        s.set_write_timeout(Some(left)).ok();
        let limit = pause.unwrap_or(total).min(total);
        let n = (limit - sent).min(chunk.len() as u64) as usize;
        match s.write(&chunk[..n]) {
            Ok(k) => sent += k as u64,
            Err(e) => return (sent, error_name(&e)),
        }
    }
    let _ = s.shutdown(Shutdown::Write);
    (sent, "none".into())
}

/// Reads to EOF, an error or the deadline, publishing progress. The socket
/// is handed back open: closing it is not part of what the probe observes.
fn receive_side(
    mut s: TcpStream,
    progress: &std::sync::atomic::AtomicU64,
    deadline: Instant,
) -> (u64, String, TcpStream) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut got = 0u64;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return (got, "timeout".into(), s);
        }
        s.set_read_timeout(Some(left)).ok();
        match s.read(&mut buf) {
            Ok(0) => return (got, "none".into(), s),
            Ok(n) => {
                got += n as u64;
                progress.store(got, std::sync::atomic::Ordering::Release);
            }
            // Our own read deadline, not an error the peer caused.
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                return (got, "timeout".into(), s)
            }
            Err(e) => return (got, error_name(&e), s),
        }
    }
}

/// Sockets a probe leaves open so that their closing (FINs, and whatever
/// answers them) happens after the phase's probes and captures are done:
/// it is not what the probe observed. (Two vCPUs can reorder a closing
/// handshake, and a stale ACK then draws an RST that is no part of the
/// incident.)
#[derive(Default)]
pub struct Leftover(#[allow(dead_code)] Vec<TcpStream>);

/// A TCP transfer between a client in `from` and a server in `server_in`.
pub fn stream(from: &Netns, server_in: &Netns, to: SocketAddr, o: StreamOpts) -> Result<(StreamOutcome, Leftover)> {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{mpsc, Arc};
    let listener = server_in.run(move |_| TcpListener::bind(to))?.map_err(|e| anyhow!("listening on {to}: {e}"))?;
    // The probe watches its own flow where it will inject, from the SYN on.
    let watch = match &o.inject {
        Some(i) => Some(crate::sys::capture::Capture::start(i.ns, &i.dev, "inject")?),
        None => None,
    };
    let start = Instant::now();
    let deadline = start + o.timeout;
    let client_rcvbuf = if o.download { o.rcvbuf } else { None };
    let client = from.run(move |_| -> std::io::Result<TcpStream> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        if let Some(b) = client_rcvbuf {
            s.set_recv_buffer_size(b as usize)?;
        }
        s.connect_timeout(&to.into(), o.timeout)?;
        Ok(s.into())
    })?;
    let client = match client {
        Ok(c) => c,
        Err(e) => {
            let outcome = StreamOutcome {
                bytes_sent: 0,
                bytes_received: 0,
                client_error: error_name(&e),
                server_error: "none".into(),
                elapsed_ms: ms(start.elapsed()),
                injected: vec![],
            };
            return Ok((outcome, Leftover::default()));
        }
    };
    listener.set_nonblocking(true)?;
    let server = loop {
        match listener.accept() {
            Ok((c, _)) => break c,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => bail!("the server never saw the connection: {e}"),
        }
    };
    server.set_nonblocking(false)?;
    if let (Some(b), false) = (o.rcvbuf, o.download) {
        socket2::SockRef::from(&server).set_recv_buffer_size(b as usize)?;
    }
    let (sender, receiver) = if o.download { (server, client) } else { (client, server) };
    let progress = Arc::new(AtomicU64::new(0));
    let (paused_tx, paused_rx) = mpsc::channel();
    let (resume_tx, resume_rx) = mpsc::channel();
    let pause_at = o.inject.as_ref().map(|i| i.at_bytes);
    let total = o.bytes;
    let send_t = std::thread::spawn(move || send_side(sender, total, pause_at, paused_tx, resume_rx, deadline));
    let p = progress.clone();
    let recv_t = std::thread::spawn(move || receive_side(receiver, &p, deadline));

    let mut injected = Vec::new();
    if let (Some(i), Some(watch)) = (&o.inject, &watch) {
        let quiet = paused_rx.recv_timeout(o.timeout).is_ok() && {
            while progress.load(Ordering::Acquire) < i.at_bytes && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            progress.load(Ordering::Acquire) >= i.at_bytes
        };
        if !quiet {
            let _ = resume_tx.send(());
            bail!("the flow never reached {} bytes before the deadline; nothing injected", i.at_bytes);
        }
        let now = crate::sys::clock::now_ns();
        watch.sync(now, Duration::from_secs(2))?;
        let server_addr = match to {
            SocketAddr::V4(a) => (*a.ip(), a.port()),
            SocketAddr::V6(_) => bail!("injection supports IPv4 flows"),
        };
        let (frame, info) = crate::run::inject::craft(i.segment, &watch.window(0, now), server_addr)?;
        let mark = i.drops.map(|w| w.mark());
        let sent_at = crate::sys::clock::now_ns();
        for _ in 0..i.count {
            crate::run::inject::send_frame(i.ns, &i.dev, frame.clone())?;
            injected.push(info.clone());
        }
        settle(watch, i, server_addr, sent_at, mark.as_ref());
        let _ = resume_tx.send(());
    }
    let (bytes_sent, send_err) = send_t.join().map_err(|_| anyhow!("stream sender panicked"))?;
    let (bytes_received, recv_err, receiver) = recv_t.join().map_err(|_| anyhow!("stream receiver panicked"))?;
    let (client_error, server_error) = if o.download { (recv_err, send_err) } else { (send_err, recv_err) };
    let outcome = StreamOutcome {
        bytes_sent,
        bytes_received,
        client_error,
        server_error,
        elapsed_ms: ms(start.elapsed()),
        injected,
    };
    Ok((outcome, Leftover(vec![receiver])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ipv4(src: [u8; 4], dst: [u8; 4], payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x45, 0, 0, 0, 0, 0, 0, 0, 64, 1, 0, 0];
        h.extend_from_slice(&src);
        h.extend_from_slice(&dst);
        let len = (h.len() + payload.len()) as u16;
        h[2..4].copy_from_slice(&len.to_be_bytes());
        h.extend_from_slice(payload);
        h
    }

    #[test]
    fn echo_request_checksum_verifies() {
        let p = echo_request(0x1234, 3);
        assert_eq!(inet_checksum(&p), 0);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 3]);
    }

    #[test]
    fn replies_and_errors_are_attributed_to_our_id() {
        let mut reply = echo_request(77, 2);
        reply[0] = 0;
        let dg = ipv4([10, 2, 19, 80], [172, 17, 0, 2], &reply);
        assert_eq!(classify_icmp(&dg, 77), IcmpSeen::Reply { seq: 2 });
        assert_eq!(classify_icmp(&dg, 78), IcmpSeen::Other);

        let quoted = ipv4([172, 17, 0, 2], [172, 17, 0, 1], &echo_request(77, 5)[..8]);
        let mut err = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&quoted);
        let dg = ipv4([172, 17, 0, 2], [172, 17, 0, 2], &err);
        assert_eq!(
            classify_icmp(&dg, 77),
            IcmpSeen::Error(IcmpError { kind: "host-unreachable".into(), from: Ipv4Addr::new(172, 17, 0, 2), seq: 5 })
        );
    }

    #[test]
    fn sequence_numbers_wrap_to_the_latest_request() {
        assert_eq!(request_of(1, 0), None);
        assert_eq!(request_of(1, 1), Some(0));
        assert_eq!(request_of(3, 2), None);
        assert_eq!(request_of(0, 65536), Some(65535));
        // Request 65536 carries seq 1 again; a reply to seq 1 is its.
        assert_eq!(request_of(1, 65537), Some(65536));
        assert_eq!(request_of(2, 65537), Some(1));
        assert_eq!(request_of(1, 3 * 65536 + 5), Some(3 * 65536));
    }

    #[test]
    fn errno_names() {
        assert_eq!(error_name(&std::io::Error::from_raw_os_error(libc::EHOSTUNREACH)), "EHOSTUNREACH");
        assert_eq!(error_name(&std::io::Error::from(std::io::ErrorKind::TimedOut)), "timeout");
    }
}
