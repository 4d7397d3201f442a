//! `udp`: datagrams from a given source to a target, a harness listener that
//! counts (and optionally echoes) them, and the ICMP errors the kernel hands
//! the sender through `IP_RECVERR`/`IPV6_RECVERR` (port-unreachable,
//! admin-prohibited …), each attributed to its datagram by the sequence
//! number the payload carries.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, SockaddrStorage};

use super::{error_name, ms};
use crate::evidence::outcome::{IcmpError, UdpOutcome};
use crate::sys::netns::Netns;

pub struct UdpOpts {
    pub src: Option<SocketAddr>,
    pub count: u32,
    pub size: u32,
    pub interval: Duration,
    pub wait: Duration,
    pub echo: bool,
}

/// A listener thread in its namespace: counts datagrams, echoes them if asked.
struct Listener {
    stop: Arc<AtomicBool>,
    got: Arc<AtomicU32>,
    thread: std::thread::JoinHandle<()>,
}

impl Listener {
    fn start(ns: &Netns, at: SocketAddr, echo: bool) -> Result<Listener> {
        let sock = ns.run(move |_| UdpSocket::bind(at))?.map_err(|e| anyhow!("udp listener on {at}: {e}"))?;
        sock.set_read_timeout(Some(Duration::from_millis(20)))?;
        let (stop, got) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU32::new(0)));
        let (s2, g2) = (stop.clone(), got.clone());
        let thread = std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !s2.load(Ordering::Acquire) {
                if let Ok((n, peer)) = sock.recv_from(&mut buf) {
                    g2.fetch_add(1, Ordering::AcqRel);
                    if echo {
                        let _ = sock.send_to(&buf[..n], peer);
                    }
                }
            }
        });
        Ok(Listener { stop, got, thread })
    }

    fn finish(self) -> u32 {
        self.stop.store(true, Ordering::Release);
        let _ = self.thread.join();
        self.got.load(Ordering::Acquire)
    }
}

fn sender(to: SocketAddr, src: Option<SocketAddr>) -> std::io::Result<UdpSocket> {
    let s = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::DGRAM, None)?;
    match to {
        SocketAddr::V4(_) => nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv4RecvErr, &true),
        SocketAddr::V6(_) => nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::Ipv6RecvErr, &true),
    }
    .map_err(std::io::Error::from)?;
    if let Some(a) = src {
        s.bind(&a.into())?;
    }
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// Reads one message of the error queue: the ICMP error about one of ours.
fn read_error(sock: &UdpSocket) -> Option<Option<IcmpError>> {
    let mut buf = [0u8; 2048];
    let mut iov = [std::io::IoSliceMut::new(&mut buf)];
    let mut cmsg = nix::cmsg_space!(libc::sock_extended_err, libc::sockaddr_in6);
    let msg = recvmsg::<SockaddrStorage>(sock.as_raw_fd(), &mut iov, Some(&mut cmsg), MsgFlags::MSG_ERRQUEUE).ok()?;
    let mut found = None;
    for c in msg.cmsgs().ok()? {
        let (ee, from): (libc::sock_extended_err, Option<IpAddr>) = match c {
            ControlMessageOwned::Ipv4RecvErr(ee, a) => {
                (ee, a.map(|a| IpAddr::V4(std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)))))
            }
            ControlMessageOwned::Ipv6RecvErr(ee, a) => {
                (ee, a.map(|a| IpAddr::V6(std::net::Ipv6Addr::from(a.sin6_addr.s6_addr))))
            }
            _ => continue,
        };
        let kind = match ee.ee_origin {
            libc::SO_EE_ORIGIN_ICMP => crate::wire::icmp::name(ee.ee_type, ee.ee_code),
            libc::SO_EE_ORIGIN_ICMP6 => crate::wire::icmp::name6(ee.ee_type, ee.ee_code),
            // A local error (EMSGSIZE from PMTU): named by its errno.
            _ => format!("local-{}", error_name(&std::io::Error::from_raw_os_error(ee.ee_errno as i32))),
        };
        let data = msg.iovs().next().map(|d| d.to_vec()).unwrap_or_default();
        let seq = data.get(..2).map(|b| u16::from_be_bytes([b[0], b[1]])).unwrap_or(0);
        let from = from.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        found = Some(IcmpError { kind, from, seq });
    }
    Some(found)
}

pub fn udp(from: &Netns, to: SocketAddr, listen: Option<(&Netns, SocketAddr)>, o: UdpOpts) -> Result<UdpOutcome> {
    let listener = match listen {
        Some((ns, at)) => Some(Listener::start(ns, at, o.echo)?),
        None => None,
    };
    let src = o.src;
    let sock = match from.run(move |_| sender(to, src))? {
        Ok(s) => s,
        Err(e) => {
            let received = listener.map(Listener::finish);
            let send_errors = BTreeMap::from([(error_name(&e), o.count)]);
            return Ok(UdpOutcome {
                sent: 0,
                received,
                replies: 0,
                errors: vec![],
                send_errors,
                local: None,
                elapsed_ms: 0.0,
            });
        }
    };
    let start = Instant::now();
    let mut out = UdpOutcome {
        sent: 0,
        received: None,
        replies: 0,
        errors: vec![],
        send_errors: BTreeMap::new(),
        local: sock.local_addr().ok(),
        elapsed_ms: 0.0,
    };
    let mut next = start;
    let mut deadline: Option<Instant> = None;
    let mut tried = 0u32;
    let mut buf = vec![0u8; 65536];
    loop {
        let now = Instant::now();
        if tried < o.count && now >= next {
            tried += 1;
            let mut payload = vec![0x5au8; o.size as usize];
            payload[..2].copy_from_slice(&(tried as u16).to_be_bytes());
            match sock.send_to(&payload, to) {
                Ok(_) => out.sent += 1,
                Err(e) => *out.send_errors.entry(error_name(&e)).or_insert(0) += 1,
            }
            if out.local.is_none_or(|l| l.port() == 0) {
                out.local = sock.local_addr().ok();
            }
            next += o.interval;
            continue;
        }
        let until = match deadline {
            _ if tried < o.count => next,
            Some(d) => d,
            None => *deadline.insert(now + o.wait),
        };
        if now >= until {
            if tried >= o.count {
                break;
            }
            continue;
        }
        let wait_ms = (until - now).as_millis().clamp(1, i32::MAX as u128) as i32;
        let mut p = libc::pollfd { fd: sock.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd we own.
        if unsafe { libc::poll(&mut p, 1, wait_ms) } <= 0 {
            continue;
        }
        if p.revents & libc::POLLERR != 0 {
            if let Some(Some(e)) = read_error(&sock) {
                out.errors.push(e);
            }
            continue;
        }
        match sock.recv_from(&mut buf) {
            Ok((_, peer)) if peer == to || listen.is_some_and(|(_, at)| at == peer) => out.replies += 1,
            Ok(_) => {}
            // ECONNREFUSED and friends surface here too; the error queue has them.
            Err(_) => {
                if let Some(Some(e)) = read_error(&sock) {
                    out.errors.push(e);
                }
            }
        }
    }
    // Errors that came after the last poll.
    while let Some(Some(e)) = read_error(&sock) {
        out.errors.push(e);
    }
    out.elapsed_ms = ms(start.elapsed());
    out.received = listener.map(Listener::finish);
    Ok(out)
}
