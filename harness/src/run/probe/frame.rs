//! `frame`: a crafted frame sent out of an interface (`AF_PACKET`), as if
//! that host had sent it: a gratuitous ARP, a SYN with a forged address.

use std::time::Instant;

use anyhow::{anyhow, Result};

use super::ms;
use crate::case::spec::{FrameArp, FrameIp, FrameTcp, FrameUdp};
use crate::evidence::outcome::FrameOutcome;
use crate::sys::netns::Netns;
use crate::wire::frame;

pub struct FrameOpts<'a> {
    pub count: u32,
    pub src_mac: Option<&'a str>,
    pub dst_mac: Option<&'a str>,
    pub arp: Option<&'a FrameArp>,
    pub ip: Option<&'a FrameIp>,
    pub tcp: Option<&'a FrameTcp>,
    pub udp: Option<&'a FrameUdp>,
}

/// The interface's own MAC (`SIOCGIFHWADDR`), on the namespace's thread.
fn own_mac(ns: &Netns, dev: &str) -> Result<[u8; 6]> {
    let dev = dev.to_string();
    ns.run(move |_| -> Result<[u8; 6]> {
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None)?;
        // SAFETY: an ifreq we own, its name NUL-terminated within IFNAMSIZ.
        unsafe {
            let mut req: libc::ifreq = std::mem::zeroed();
            for (i, b) in dev.bytes().take(libc::IFNAMSIZ - 1).enumerate() {
                req.ifr_name[i] = b as libc::c_char;
            }
            if libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(&s), libc::SIOCGIFHWADDR, &mut req) < 0 {
                return Err(anyhow!("reading {dev}'s address: {}", std::io::Error::last_os_error()));
            }
            let d = req.ifr_ifru.ifru_hwaddr.sa_data;
            Ok([d[0] as u8, d[1] as u8, d[2] as u8, d[3] as u8, d[4] as u8, d[5] as u8])
        }
    })?
}

pub fn send(ns: &Netns, dev: &str, o: FrameOpts) -> Result<FrameOutcome> {
    let t0 = Instant::now();
    let src = match o.src_mac.and_then(frame::mac) {
        Some(m) => m,
        None => own_mac(ns, dev)?,
    };
    let dst = o.dst_mac.and_then(frame::mac).unwrap_or([0xff; 6]);
    let spec = frame::Spec {
        src,
        dst,
        arp: o.arp.map(|a| frame::Arp {
            request: a.op == "request",
            sender: a.sender,
            target: a.target,
            sha: a.sha.as_deref().and_then(frame::mac),
            tha: a.tha.as_deref().and_then(frame::mac),
        }),
        ip: o.ip.map(|i| frame::Ip { src: i.src, dst: i.dst, ttl: i.ttl }),
        tcp: o.tcp.map(|t| frame::Tcp {
            sport: t.sport,
            dport: t.dport,
            flags: &t.flags,
            seq: t.seq,
            ack: t.ack,
            window: t.window,
        }),
        udp: o.udp.map(|u| frame::Udp { sport: u.sport, dport: u.dport, len: u.len }),
    };
    let bytes = frame::build(&spec).map_err(|e| anyhow!("crafting the frame: {e}"))?;
    let headers = crate::wire::headers::Headers::parse(crate::wire::linktype::LinkType::Ethernet, &bytes);
    let summary = headers.summary(bytes.len());
    let mut sent = 0;
    for _ in 0..o.count {
        crate::run::inject::send_frame(ns, dev, bytes.clone())?;
        sent += 1;
    }
    Ok(FrameOutcome { sent, len: bytes.len() as u32, summary, elapsed_ms: ms(t0.elapsed()) })
}
