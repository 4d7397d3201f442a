//! Built-in actors: a thread each, its socket born in the actor's
//! namespace; ready once the socket is bound; stopped by a flag it polls
//! every 20 ms.

use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, UdpSocket};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::{bump, Tally};
use crate::case::spec::{AcceptPolicy, ActorSpec};
use crate::sys::netns::Netns;

const TICK: Duration = Duration::from_millis(20);

fn udp(ns: &Netns, at: SocketAddr) -> Result<UdpSocket> {
    let s = ns.run(move |_| UdpSocket::bind(at))?.map_err(|e| anyhow!("binding {at}: {e}"))?;
    s.set_read_timeout(Some(TICK))?;
    Ok(s)
}

pub fn start(ns: &Netns, spec: &ActorSpec, stop: Arc<AtomicBool>, tally: Tally) -> Result<JoinHandle<()>> {
    let running = move || !stop.load(Ordering::Acquire);
    Ok(match spec.clone() {
        ActorSpec::UdpEcho { listen, .. } | ActorSpec::UdpSink { listen, .. } => {
            let echo = matches!(spec, ActorSpec::UdpEcho { .. });
            let s = udp(ns, listen)?;
            std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while running() {
                    if let Ok((n, peer)) = s.recv_from(&mut buf) {
                        bump(&tally, "received");
                        if echo && s.send_to(&buf[..n], peer).is_ok() {
                            bump(&tally, "echoed");
                        }
                    }
                }
            })
        }
        ActorSpec::Dns { listen, answers, drop_a, drop_aaaa, .. } => {
            let s = udp(ns, listen)?;
            let answers: Vec<(String, Vec<IpAddr>)> =
                answers.into_iter().map(|(k, v)| (k.trim_end_matches('.').to_ascii_lowercase(), v)).collect();
            std::thread::spawn(move || {
                let (mut lost_a, mut lost_aaaa) = (0, 0);
                let mut buf = [0u8; 1500];
                while running() {
                    let Ok((n, peer)) = s.recv_from(&mut buf) else { continue };
                    let Some((_, name, qtype)) = crate::wire::dns::parse_query(&buf[..n]) else { continue };
                    bump(&tally, "received");
                    let lose = match qtype {
                        1 if lost_a < drop_a => {
                            lost_a += 1;
                            true
                        }
                        28 if lost_aaaa < drop_aaaa => {
                            lost_aaaa += 1;
                            true
                        }
                        _ => false,
                    };
                    if lose {
                        bump(&tally, "dropped");
                        continue;
                    }
                    let name = name.to_ascii_lowercase();
                    let (rcode, addrs) = match answers.iter().find(|(k, _)| *k == name) {
                        Some((_, a)) => (0, a.as_slice()),
                        None => (3, &[][..]),
                    };
                    if let Some(r) = crate::wire::dns::answer(&buf[..n], rcode, addrs) {
                        if s.send_to(&r, peer).is_ok() {
                            bump(&tally, "answered");
                        }
                    }
                }
            })
        }
        ActorSpec::TcpServer { listen, backlog, on_accept, .. } => {
            let l = ns
                .run(move |_| -> std::io::Result<TcpListener> {
                    let s = socket2::Socket::new(socket2::Domain::for_address(listen), socket2::Type::STREAM, None)?;
                    s.set_reuse_address(true)?;
                    s.bind(&listen.into())?;
                    s.listen(backlog as i32)?;
                    Ok(s.into())
                })?
                .map_err(|e| anyhow!("listening on {listen}: {e}"))?;
            l.set_nonblocking(true)?;
            std::thread::spawn(move || {
                let mut held = Vec::new();
                while running() {
                    if on_accept == AcceptPolicy::Never {
                        std::thread::sleep(TICK);
                        continue;
                    }
                    match l.accept() {
                        Ok((c, _)) => {
                            bump(&tally, "accepted");
                            match on_accept {
                                AcceptPolicy::Hold | AcceptPolicy::Never => held.push(c),
                                AcceptPolicy::Close => drop(c),
                                AcceptPolicy::Reset => {
                                    let _ = socket2::SockRef::from(&c).set_linger(Some(Duration::ZERO));
                                    drop(c);
                                }
                            }
                        }
                        Err(_) => {
                            let mut p = libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                            // SAFETY: one pollfd we own.
                            unsafe { libc::poll(&mut p, 1, TICK.as_millis() as i32) };
                        }
                    }
                }
            })
        }
        ActorSpec::Ra { dev, prefix, router_lifetime, interval_ms, .. } => {
            let prefix = prefix.map(|c| match c.addr {
                IpAddr::V6(a) => (a, c.prefix),
                IpAddr::V4(_) => (Ipv6Addr::UNSPECIFIED, 0),
            });
            let msg = router_advertisement(router_lifetime, prefix);
            let d = dev.clone();
            let (sock, ifindex) = ns.run(move |_| ra_socket(&d))??;
            let interval = Duration::from_millis(interval_ms);
            // Ready once the first RA is out: a step that follows (forwarding
            // on, accept_ra) acts on a host that has heard it.
            let to = std::net::SocketAddrV6::new("ff02::1".parse().expect("static"), 0, 0, ifindex);
            sock.send_to(&msg, &to.into()).map_err(|e| anyhow!("sending the first RA out of {dev}: {e}"))?;
            bump(&tally, "sent");
            std::thread::spawn(move || {
                let mut next = Instant::now() + interval;
                while running() {
                    if Instant::now() >= next {
                        if sock.send_to(&msg, &to.into()).is_ok() {
                            bump(&tally, "sent");
                        }
                        next += interval;
                    }
                    std::thread::sleep(next.saturating_duration_since(Instant::now()).min(TICK));
                }
            })
        }
        ActorSpec::Command { .. } => return Err(anyhow!("a command actor is not a built-in")),
    })
}

/// A raw ICMPv6 socket bound to `dev`, multicast hop limit 255 (RFC 4861
/// §6.1.2: receivers drop an RA with any other), and `dev`'s index.
fn ra_socket(dev: &str) -> Result<(socket2::Socket, u32)> {
    let s = socket2::Socket::new(socket2::Domain::IPV6, socket2::Type::RAW, Some(socket2::Protocol::ICMPV6))?;
    s.bind_device(Some(dev.as_bytes()))?;
    s.set_multicast_hops_v6(255)?;
    s.set_unicast_hops_v6(255)?;
    let ifindex = nix::net::if_::if_nametoindex(dev).map_err(|e| anyhow!("{dev}: {e}"))?;
    s.set_multicast_if_v6(ifindex)?;
    Ok((s, ifindex))
}

/// An RA (RFC 4861 §4.2): hop limit 64, no M/O flags, `lifetime` s as a
/// default router, and a Prefix Information option (on-link, autonomous,
/// valid 86400 s, preferred 14400 s) when given. The kernel fills the
/// checksum.
pub fn router_advertisement(lifetime: u16, prefix: Option<(Ipv6Addr, u8)>) -> Vec<u8> {
    let mut m = vec![134u8, 0, 0, 0, 64, 0];
    m.extend_from_slice(&lifetime.to_be_bytes());
    m.extend_from_slice(&[0; 8]); // reachable time, retrans timer: unspecified
    if let Some((p, len)) = prefix {
        m.extend_from_slice(&[3, 4, len, 0xc0]);
        m.extend_from_slice(&86_400u32.to_be_bytes());
        m.extend_from_slice(&14_400u32.to_be_bytes());
        m.extend_from_slice(&[0; 4]);
        m.extend_from_slice(&p.octets());
    }
    m
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_ra_with_a_prefix_is_48_bytes_and_says_its_lifetime() {
        let m = super::router_advertisement(1800, Some(("2001:db8:1::".parse().unwrap(), 64)));
        assert_eq!(m.len(), 16 + 32);
        assert_eq!((m[0], u16::from_be_bytes([m[6], m[7]])), (134, 1800));
        assert_eq!((m[16], m[17], m[18], m[19]), (3, 4, 64, 0xc0));
        assert_eq!(super::router_advertisement(0, None).len(), 16);
    }
}
