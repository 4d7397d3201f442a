//! Frames crafted from a case's fields (the `frame` probe), with etherparse:
//! Ethernet, then ARP, or IPv4/IPv6 with TCP or UDP.

use std::net::IpAddr;

use etherparse::{ArpHardwareId, ArpOperation, ArpPacket, EtherType, PacketBuilder};

/// An ARP body: a gratuitous ARP when sender = target.
pub struct Arp {
    pub request: bool,
    pub sender: std::net::Ipv4Addr,
    pub target: std::net::Ipv4Addr,
    pub sha: Option<[u8; 6]>,
    pub tha: Option<[u8; 6]>,
}

pub struct Ip {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub ttl: u8,
}

pub struct Tcp<'a> {
    pub sport: u16,
    pub dport: u16,
    pub flags: &'a str,
    pub seq: u32,
    pub ack: u32,
    pub window: u16,
}

pub struct Udp {
    pub sport: u16,
    pub dport: u16,
    pub len: u16,
}

/// `02:42:ac:11:00:02` → its bytes.
pub fn mac(s: &str) -> Option<[u8; 6]> {
    let v: Vec<u8> = s
        .split(':')
        .map(|p| (p.len() == 2).then(|| u8::from_str_radix(p, 16).ok()).flatten())
        .collect::<Option<_>>()?;
    v.try_into().ok()
}

/// TCP flags in tcpdump's letters → (syn, fin, rst, psh, ack).
pub fn tcp_flags(f: &str) -> Result<(bool, bool, bool, bool, bool), String> {
    let mut out = (false, false, false, false, false);
    for c in f.chars() {
        match c {
            'S' => out.0 = true,
            'F' => out.1 = true,
            'R' => out.2 = true,
            'P' => out.3 = true,
            '.' => out.4 = true,
            _ => return Err(format!("tcp.flags = {f:?}: letters S F R P and . (ACK), as tcpdump prints them")),
        }
    }
    Ok(out)
}

pub struct Spec<'a> {
    pub src: [u8; 6],
    pub dst: [u8; 6],
    pub arp: Option<Arp>,
    pub ip: Option<Ip>,
    pub tcp: Option<Tcp<'a>>,
    pub udp: Option<Udp>,
}

/// The frame's bytes.
pub fn build(s: &Spec) -> Result<Vec<u8>, String> {
    let eth = PacketBuilder::ethernet2(s.src, s.dst);
    let mut out = Vec::new();
    if let Some(a) = &s.arp {
        let request = a.request;
        let sha = a.sha.unwrap_or(s.src);
        let tha = a.tha.unwrap_or(if request { [0; 6] } else { s.dst });
        let op = if request { ArpOperation::REQUEST } else { ArpOperation::REPLY };
        let p = ArpPacket::new(
            ArpHardwareId::ETHERNET,
            EtherType::IPV4,
            op,
            &sha,
            &a.sender.octets(),
            &tha,
            &a.target.octets(),
        )
        .map_err(|e| e.to_string())?;
        eth.arp(p).write(&mut out).map_err(|e| e.to_string())?;
        return Ok(out);
    }
    let ip = s.ip.as_ref().ok_or("no ip")?;
    let l3 = match (ip.src, ip.dst) {
        (IpAddr::V4(a), IpAddr::V4(b)) => eth.ipv4(a.octets(), b.octets(), ip.ttl),
        (IpAddr::V6(a), IpAddr::V6(b)) => eth.ipv6(a.octets(), b.octets(), ip.ttl),
        _ => return Err("ip.src and ip.dst must be of one family".into()),
    };
    match (&s.tcp, &s.udp) {
        (Some(t), _) => {
            let (syn, fin, rst, psh, ack) = tcp_flags(t.flags)?;
            let mut b = l3.tcp(t.sport, t.dport, t.seq, t.window);
            if syn {
                b = b.syn();
            }
            if fin {
                b = b.fin();
            }
            if rst {
                b = b.rst();
            }
            if psh {
                b = b.psh();
            }
            if ack {
                b = b.ack(t.ack);
            }
            b.write(&mut out, &[]).map_err(|e| e.to_string())?;
        }
        (None, Some(u)) => {
            l3.udp(u.sport, u.dport).write(&mut out, &vec![0u8; u.len as usize]).map_err(|e| e.to_string())?
        }
        (None, None) => return Err("an ip frame needs tcp = { … } or udp = { … }".into()),
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::linktype::LinkType;
    use crate::wire::packet::{Direction, Frame, Matcher};

    #[test]
    fn a_gratuitous_arp_and_a_forged_syn_match_their_words() {
        let src = mac("02:42:ac:11:00:02").unwrap();
        let arp = Arp {
            request: true,
            sender: "172.17.0.2".parse().unwrap(),
            target: "172.17.0.2".parse().unwrap(),
            sha: None,
            tha: None,
        };
        let spec = Spec { src, dst: [0xff; 6], arp: Some(arp), ip: None, tcp: None, udp: None };
        let f = Frame::ethernet(0, Direction::Out, build(&spec).unwrap());
        assert!(Matcher::parse(
            "arp request src 172.17.0.2 dst 172.17.0.2 arp-sha 02:42:ac:11:00:02 dst-mac ff:ff:ff:ff:ff:ff"
        )
        .unwrap()
        .matches(&f));
        let ip = Ip { src: "10.0.0.9".parse().unwrap(), dst: "10.96.0.10".parse().unwrap(), ttl: 64 };
        let tcp = Tcp { sport: 40000, dport: 80, flags: "S", seq: 7, ack: 0, window: 1024 };
        let spec = Spec { src, dst: [4; 6], arp: None, ip: Some(ip), tcp: Some(tcp), udp: None };
        let f = Frame {
            ts_ns: 0,
            direction: Direction::Out,
            link: LinkType::Ethernet,
            wire_len: 54,
            data: build(&spec).unwrap(),
            csum_not_ready: false,
        };
        assert!(Matcher::parse("tcp syn src 10.0.0.9 dst 10.96.0.10 port 80 seq 7").unwrap().matches(&f));
        assert!(tcp_flags("SX").is_err());
        assert_eq!(mac("02:42"), None);
    }
}
