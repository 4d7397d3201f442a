//! `ping`: ICMP echo over a raw socket, `IPPROTO_ICMP` for IPv4 and
//! `IPPROTO_ICMPV6` for IPv6; replies, ICMP errors about our requests (named
//! in the one vocabulary of `wire/icmp`) and the errnos sending met.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};

use super::ms;
use crate::evidence::outcome::{IcmpError, PingOutcome};
use crate::sys::netns::Netns;
use crate::wire::checksum::inet_checksum;

/// An echo request: ICMP type 8 (IPv4) or ICMPv6 type 128. The ICMPv6
/// checksum is the kernel's (it covers a pseudo-header; raw ICMPv6 sockets
/// always fill it in), so ours only serves IPv4.
fn echo_request(v6: bool, id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![if v6 { 128u8 } else { 8 }, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend((0..56u8).map(|i| i.wrapping_add(0x10)));
    if !v6 {
        let c = inet_checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
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
                from: src.into(),
                seq: u16::from_be_bytes([q[6], q[7]]),
            });
        }
    }
    IcmpSeen::Other
}

/// Classifies one ICMPv6 message from `from` (a raw ICMPv6 socket hands
/// the message without its IPv6 header) against our echo id: an echo reply,
/// or an error (types below 128) quoting our echo request.
pub fn classify_icmp6(icmp: &[u8], from: Ipv6Addr, id: u16) -> IcmpSeen {
    if icmp.len() < 8 {
        return IcmpSeen::Other;
    }
    let (t, c) = (icmp[0], icmp[1]);
    if t == 129 {
        return if u16::from_be_bytes([icmp[4], icmp[5]]) == id {
            IcmpSeen::Reply { seq: u16::from_be_bytes([icmp[6], icmp[7]]) }
        } else {
            IcmpSeen::Other
        };
    }
    if crate::wire::icmp::is_error6(t) {
        // The error quotes as much of the offending packet as fits: its
        // 40-byte IPv6 header, then our echo request (next header 58).
        let inner = &icmp[8..];
        if inner.len() < 48 || inner[0] >> 4 != 6 || inner[6] != 58 {
            return IcmpSeen::Other;
        }
        let q = &inner[40..];
        if q[0] == 128 && u16::from_be_bytes([q[4], q[5]]) == id {
            return IcmpSeen::Error(IcmpError {
                kind: crate::wire::icmp::name6(t, c),
                from: from.into(),
                seq: u16::from_be_bytes([q[6], q[7]]),
            });
        }
    }
    IcmpSeen::Other
}

fn raw_icmp_socket(v6: bool) -> Result<OwnedFd> {
    let (family, proto) = if v6 { (libc::AF_INET6, libc::IPPROTO_ICMPV6) } else { (libc::AF_INET, libc::IPPROTO_ICMP) };
    // SAFETY: plain socket creation.
    let fd = unsafe { libc::socket(family, libc::SOCK_RAW | libc::SOCK_CLOEXEC, proto) };
    if fd < 0 {
        bail!("raw {} socket: {}", if v6 { "ICMPv6" } else { "ICMP" }, std::io::Error::last_os_error());
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
pub fn ping(from: &Netns, to: IpAddr, count: u32, interval: Duration, wait: Duration) -> Result<PingOutcome> {
    let v6 = to.is_ipv6();
    let fd = from.run(move |_| raw_icmp_socket(v6))??;
    let id = (std::process::id() as u16) ^ (crate::sys::clock::now_ns() as u16);
    let start = Instant::now();
    let later = |t: Instant, d: Duration| t.checked_add(d).ok_or_else(|| anyhow!("ping: {d:?} is too long a time"));
    let mut sent_at = Vec::new();
    let mut out = PingOutcome {
        sent: 0,
        replies: 0,
        errors: vec![],
        rtt_ms: vec![],
        elapsed_ms: 0.0,
        send_errors: Default::default(),
        id,
    };
    let mut seen = std::collections::BTreeSet::new();
    let mut next_send = start;
    let mut deadline = None;
    let mut buf = [0u8; 1500];
    loop {
        let now = Instant::now();
        if out.sent < count && now >= next_send {
            // Wraps past 65535 like ping(8)'s icmp_seq (a long soak sends that many).
            let seq = (out.sent as u16).wrapping_add(1);
            if let Some(e) = send_to(&fd, &echo_request(v6, id, seq), to)? {
                *out.send_errors.entry(e).or_insert(0) += 1;
            }
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
        let Some((n, sender)) = recv_from(&fd, &mut buf) else { continue };
        let seen_now = match sender {
            Some(IpAddr::V6(s)) if v6 => classify_icmp6(&buf[..n], s, id),
            _ if v6 => IcmpSeen::Other,
            _ => classify_icmp(&buf[..n], id),
        };
        match seen_now {
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

/// One datagram and its sender's address (for ICMPv6, whose raw sockets
/// hand no IP header).
fn recv_from(fd: &OwnedFd, buf: &mut [u8]) -> Option<(usize, Option<IpAddr>)> {
    // SAFETY: zeroed storage is a valid sockaddr_storage.
    let mut sa: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: reading into our buffer and our sockaddr_storage.
    let n = unsafe {
        libc::recvfrom(
            fd.as_raw_fd(),
            buf.as_mut_ptr() as *mut libc::c_void,
            buf.len(),
            libc::MSG_DONTWAIT,
            &mut sa as *mut _ as *mut libc::sockaddr,
            &mut len,
        )
    };
    if n <= 0 {
        return None;
    }
    let from = match sa.ss_family as i32 {
        libc::AF_INET6 => {
            // SAFETY: the family says it is a sockaddr_in6.
            let s6 = unsafe { &*(&sa as *const _ as *const libc::sockaddr_in6) };
            Some(IpAddr::V6(Ipv6Addr::from(s6.sin6_addr.s6_addr)))
        }
        libc::AF_INET => {
            // SAFETY: the family says it is a sockaddr_in.
            let s4 = unsafe { &*(&sa as *const _ as *const libc::sockaddr_in) };
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(s4.sin_addr.s_addr))))
        }
        _ => None,
    };
    Some((n as usize, from))
}

/// Sends one echo request; an errno the send met (`ENETUNREACH` when no
/// route leads to `to`) is an outcome, returned by name: the request counts
/// as sent and nothing will answer it. Only EPERM (no raw sockets) is a
/// harness fault.
/// One echo request on a raw ICMP socket already open (in its namespace):
/// whether its reply came within `wait`. What `netrepro bench`'s floor pings
/// with; probes use [`ping`].
pub fn ping_fd(fd: &OwnedFd, to: Ipv4Addr, wait: Duration) -> Result<bool> {
    let id = (std::process::id() as u16) ^ (crate::sys::clock::now_ns() as u16);
    if let Some(e) = send_to(fd, &echo_request(false, id, 1), IpAddr::V4(to))? {
        bail!("sending ICMP echo to {to}: {e}");
    }
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

fn send_to(fd: &OwnedFd, payload: &[u8], to: IpAddr) -> Result<Option<String>> {
    let sa: socket2::SockAddr = std::net::SocketAddr::new(to, 0).into();
    // SAFETY: sendto with a sockaddr we own, of its own length.
    let n = unsafe {
        libc::sendto(
            fd.as_raw_fd(),
            payload.as_ptr() as *const libc::c_void,
            payload.len(),
            0,
            sa.as_ptr() as *const libc::sockaddr,
            sa.len(),
        )
    };
    if n < 0 {
        let e = std::io::Error::last_os_error();
        if e.raw_os_error() == Some(libc::EPERM) {
            return Err(anyhow!("sending ICMP echo: {e}"));
        }
        return Ok(Some(super::error_name(&e)));
    }
    Ok(None)
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
        let p = echo_request(false, 0x1234, 3);
        assert_eq!(inet_checksum(&p), 0);
        assert_eq!(&p[4..8], &[0x12, 0x34, 0, 3]);
    }

    #[test]
    fn replies_and_errors_are_attributed_to_our_id() {
        let mut reply = echo_request(false, 77, 2);
        reply[0] = 0;
        let dg = ipv4([10, 2, 19, 80], [172, 17, 0, 2], &reply);
        assert_eq!(classify_icmp(&dg, 77), IcmpSeen::Reply { seq: 2 });
        assert_eq!(classify_icmp(&dg, 78), IcmpSeen::Other);

        let quoted = ipv4([172, 17, 0, 2], [172, 17, 0, 1], &echo_request(false, 77, 5)[..8]);
        let mut err = vec![3u8, 1, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&quoted);
        let dg = ipv4([172, 17, 0, 2], [172, 17, 0, 2], &err);
        assert_eq!(
            classify_icmp(&dg, 77),
            IcmpSeen::Error(IcmpError {
                kind: "host-unreachable".into(),
                from: Ipv4Addr::new(172, 17, 0, 2).into(),
                seq: 5
            })
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
    fn icmpv6_replies_and_errors_are_attributed_to_our_id() {
        let from: Ipv6Addr = "fd00::1".parse().unwrap();
        let mut reply = echo_request(true, 77, 2);
        reply[0] = 129;
        assert_eq!(classify_icmp6(&reply, from, 77), IcmpSeen::Reply { seq: 2 });
        assert_eq!(classify_icmp6(&reply, from, 78), IcmpSeen::Other);
        // no-route (1/0) quoting our request: IPv6 header, next header 58.
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 64, 58, 64];
        ip6.extend_from_slice(&[0; 32]);
        ip6.extend_from_slice(&echo_request(true, 77, 5));
        let mut err = vec![1u8, 0, 0, 0, 0, 0, 0, 0];
        err.extend_from_slice(&ip6);
        assert_eq!(
            classify_icmp6(&err, from, 77),
            IcmpSeen::Error(IcmpError { kind: "no-route".into(), from: from.into(), seq: 5 })
        );
        // A neighbour solicitation is nobody's answer.
        assert_eq!(classify_icmp6(&[135, 0, 0, 0, 0, 0, 0, 0], from, 77), IcmpSeen::Other);
    }
}
