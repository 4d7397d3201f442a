//! `stream`: a TCP transfer between a client and a server, either family,
//! with an optional injection mid-flow.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use super::{error_name, ms, Leftover};
use crate::evidence::outcome::StreamOutcome;
use crate::sys::netns::Netns;

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
        let s = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::STREAM, None)?;
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
    Ok((outcome, Leftover::new(vec![receiver])))
}
