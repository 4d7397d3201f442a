//! Crafted TCP segments, built from segments captured on the live flow and
//! sent as raw frames from a namespace's interface, as if its host sent them.

use std::net::Ipv4Addr;

use anyhow::{anyhow, bail, Context, Result};
use etherparse::{NetSlice, SlicedPacket, TcpOptionElement, TransportSlice};

use crate::case::spec::Segment;
use crate::evidence::outcome::Injected;
use crate::sys::netns::Netns;
use crate::wire::checksum::inet_checksum;
use crate::wire::packet::Frame;

/// How far past the client's window right edge a beyond-window segment goes.
pub const BEYOND: u32 = 1 << 30;

/// A TCP segment of the flow, with where its fields sit in the frame.
#[derive(Debug, Clone)]
struct Seg {
    frame: Vec<u8>,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    seq: u32,
    ack: u32,
    win: u16,
    syn: bool,
    wscale: Option<u8>,
    len: usize,
    /// Offsets of the IPv4 and TCP headers in `frame`.
    ip_off: usize,
    tcp_off: usize,
}

fn parse(frame: &[u8]) -> Option<Seg> {
    let p = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(NetSlice::Ipv4(ip)) = &p.net else { return None };
    let Some(TransportSlice::Tcp(t)) = &p.transport else { return None };
    let ip_off = ip.header().slice().as_ptr() as usize - frame.as_ptr() as usize;
    let tcp_off = t.slice().as_ptr() as usize - frame.as_ptr() as usize;
    let wscale = t.options_iterator().flatten().find_map(|o| match o {
        TcpOptionElement::WindowScale(s) => Some(s),
        _ => None,
    });
    Some(Seg {
        frame: frame.to_vec(),
        src: (ip.header().source_addr(), t.source_port()),
        dst: (ip.header().destination_addr(), t.destination_port()),
        seq: t.sequence_number(),
        ack: t.acknowledgment_number(),
        win: t.window_size(),
        syn: t.syn(),
        wscale,
        len: t.payload().len(),
        ip_off,
        tcp_off,
    })
}

/// Recomputes the TCP checksum of an IPv4 frame in place.
pub fn fix_tcp_checksum(frame: &mut [u8], ip_off: usize, tcp_off: usize) -> Result<()> {
    let total = u16::from_be_bytes([frame[ip_off + 2], frame[ip_off + 3]]) as usize;
    let tcp_len = total.checked_sub(tcp_off - ip_off).ok_or_else(|| anyhow!("bad IPv4 total length"))?;
    if frame.len() < tcp_off + tcp_len {
        bail!("frame shorter than its IPv4 length");
    }
    frame[tcp_off + 16] = 0;
    frame[tcp_off + 17] = 0;
    let mut pseudo = Vec::with_capacity(12 + tcp_len);
    pseudo.extend_from_slice(&frame[ip_off + 12..ip_off + 20]);
    pseudo.extend_from_slice(&[0, 6]);
    pseudo.extend_from_slice(&(tcp_len as u16).to_be_bytes());
    pseudo.extend_from_slice(&frame[tcp_off..tcp_off + tcp_len]);
    let c = inet_checksum(&pseudo);
    frame[tcp_off + 16..tcp_off + 18].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// Builds the frame to inject from `frames`, captured on the injecting
/// interface; `server` is the server's address and port.
pub fn craft(segment: Segment, frames: &[Frame], server: (Ipv4Addr, u16)) -> Result<(Vec<u8>, Injected)> {
    let segs: Vec<Seg> = frames.iter().filter_map(|f| parse(&f.data)).collect();
    let from_server: Vec<&Seg> = segs.iter().filter(|s| s.src == server && s.len > 0).collect();
    let to_server: Vec<&Seg> = segs.iter().filter(|s| s.dst == server).collect();
    let (mut frame, seg, right_edge) = match segment {
        Segment::ReplayFirst => {
            let first = from_server.first().ok_or_else(|| anyhow!("no data segment from {server:?} captured"))?;
            (first.frame.clone(), (*first).clone(), None)
        }
        Segment::BeyondWindow => {
            let last = from_server.last().ok_or_else(|| anyhow!("no data segment from {server:?} captured"))?;
            let wscale = to_server
                .iter()
                .find(|s| s.syn)
                .map(|s| s.wscale.unwrap_or(0))
                .ok_or_else(|| anyhow!("the client's SYN was not captured: cannot scale its window"))?;
            let acks: Vec<&&Seg> = to_server.iter().filter(|s| !s.syn).collect();
            let edge = acks
                .iter()
                .map(|s| s.ack.wrapping_add((s.win as u32) << wscale))
                .max_by(|a, b| (a.wrapping_sub(last.seq) as i32).cmp(&(b.wrapping_sub(last.seq) as i32)))
                .ok_or_else(|| anyhow!("no ACK from the client captured"))?;
            let max_window = acks.iter().map(|s| (s.win as u32) << wscale).max().unwrap_or(0);
            let mut s = (*last).clone();
            s.seq = edge.wrapping_add(BEYOND);
            let mut f = last.frame.clone();
            f[s.tcp_off + 4..s.tcp_off + 8].copy_from_slice(&s.seq.to_be_bytes());
            (f, s, Some((edge, max_window)))
        }
    };
    fix_tcp_checksum(&mut frame, seg.ip_off, seg.tcp_off).context("checksumming the injected segment")?;
    let info = Injected {
        segment,
        seq: seg.seq,
        ack: seg.ack,
        len: seg.len,
        right_edge: right_edge.map(|(e, _)| e),
        max_window: right_edge.map(|(_, w)| w),
        summary: crate::wire::headers::Headers::parse(crate::wire::linktype::LinkType::Ethernet, &frame)
            .summary(frame.len()),
    };
    Ok((frame, info))
}

/// Sends a raw Ethernet frame out of `dev` in `ns`.
pub fn send_frame(ns: &Netns, dev: &str, frame: Vec<u8>) -> Result<()> {
    let dev = dev.to_string();
    ns.run(move |_| -> Result<()> {
        let cname = std::ffi::CString::new(dev.clone())?;
        // SAFETY: plain libc calls on values we own; the fd is closed below.
        unsafe {
            let ifindex = libc::if_nametoindex(cname.as_ptr());
            if ifindex == 0 {
                bail!("no interface {dev} to inject on");
            }
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0);
            if fd < 0 {
                bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
            }
            let mut sll: libc::sockaddr_ll = std::mem::zeroed();
            sll.sll_family = libc::AF_PACKET as u16;
            sll.sll_ifindex = ifindex as i32;
            sll.sll_halen = 6;
            sll.sll_addr[..6].copy_from_slice(&frame[..6]);
            let n = libc::sendto(
                fd,
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            );
            let err = std::io::Error::last_os_error();
            libc::close(fd);
            if n < 0 {
                bail!("injecting on {dev}: {err}");
            }
        }
        Ok(())
    })?
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const SERVER: ([u8; 4], u16) = ([10, 2, 19, 80], 5201);
    const CLIENT: ([u8; 4], u16) = ([10, 2, 19, 78], 40000);

    fn seg(from_server: bool, seq: u32, ack: u32, win: u16, syn: bool, payload: &[u8]) -> Frame {
        let (s, d) = if from_server { (SERVER, CLIENT) } else { (CLIENT, SERVER) };
        let mut b = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(s.0, d.0, 64).tcp(s.1, d.1, seq, win).ack(ack);
        if syn {
            b = b.syn().options(&[TcpOptionElement::WindowScale(7)]).unwrap();
        }
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        let d = if from_server { crate::wire::packet::Direction::Out } else { crate::wire::packet::Direction::In };
        Frame::ethernet(0, d, out)
    }

    fn flow() -> Vec<Frame> {
        vec![
            seg(false, 1000, 0, 64240, true, &[]),
            seg(true, 5000, 1001, 65160, true, &[]),
            seg(true, 5001, 1001, 509, false, &[7u8; 100]),
            seg(false, 1001, 5101, 500, false, &[]),
            seg(true, 5101, 1001, 509, false, &[8u8; 100]),
            seg(false, 1001, 5201, 502, false, &[]),
        ]
    }

    fn checksum_ok(frame: &[u8]) -> bool {
        let s = parse(frame).unwrap();
        let mut f = frame.to_vec();
        fix_tcp_checksum(&mut f, s.ip_off, s.tcp_off).unwrap();
        f == frame
    }

    #[test]
    fn beyond_window_moves_seq_past_the_scaled_right_edge() {
        let (frame, info) = craft(Segment::BeyondWindow, &flow(), (Ipv4Addr::from(SERVER.0), SERVER.1)).unwrap();
        // Right edge: max(5101 + 500<<7, 5201 + 502<<7) = 5201 + 64256.
        assert_eq!(info.right_edge, Some(5201 + (502 << 7)));
        assert_eq!(info.max_window, Some(502 << 7));
        assert_eq!(info.seq, 5201 + (502 << 7) + BEYOND);
        assert_eq!(info.ack, 1001, "the current ACK of the latest server segment");
        assert_eq!(info.len, 100);
        assert!(checksum_ok(&frame));
        assert_eq!(&frame[54..], &[8u8; 100], "payload of the latest server segment");
    }

    #[test]
    fn replay_first_is_byte_for_byte() {
        let f = flow();
        let (frame, info) = craft(Segment::ReplayFirst, &f, (Ipv4Addr::from(SERVER.0), SERVER.1)).unwrap();
        assert_eq!(frame, f[2].data);
        assert_eq!((info.seq, info.ack), (5001, 1001));
    }

    #[test]
    fn missing_parts_of_the_flow_are_reported() {
        let server = (Ipv4Addr::from(SERVER.0), SERVER.1);
        let e = craft(Segment::BeyondWindow, &flow()[2..], server).unwrap_err().to_string();
        assert!(e.contains("client's SYN was not captured"), "{e}");
        let e = craft(Segment::ReplayFirst, &flow()[..2], server).unwrap_err().to_string();
        assert!(e.contains("no data segment"), "{e}");
    }
}
