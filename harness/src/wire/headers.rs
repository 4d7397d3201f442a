//! A frame's headers, parsed once from its bytes and kept apart from them
//! (smoltcp's `Repr` beside its `Packet`): the typed L2/L3/L4 fields the
//! evidence records and that matchers, summaries, the explainer and the
//! report read. The one-line [`Headers::summary`] is for people only;
//! nothing parses it back.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use etherparse::{ArpOperation, LinkSlice, NetSlice, SlicedPacket, TransportSlice};
use serde::{Deserialize, Serialize};

use crate::wire::linktype::LinkType;

/// Everything parsed from one frame; a layer that is absent or could not be
/// parsed is `None`.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Headers {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eth: Option<Eth>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arp: Option<Arp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip: Option<Ip>,
    /// ICMP for IPv4, ICMPv6 for IPv6 (see [`Ip::version`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icmp: Option<Icmp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tcp: Option<Tcp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub udp: Option<Udp>,
}

/// The Ethernet II header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Eth {
    /// Source MAC, `02:42:ac:11:00:02`.
    pub src: String,
    /// Destination MAC, same form.
    pub dst: String,
    /// The header's EtherType (0x0800 IPv4, 0x0806 ARP, 0x86dd IPv6, 0x8100 VLAN).
    pub ethertype: u16,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ArpOp {
    Request,
    Reply,
    /// Any other operation code (RARP and friends).
    Other(u16),
}

/// An ARP packet for IPv4 over Ethernet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Arp {
    pub op: ArpOp,
    /// Sender protocol address.
    pub sender: Ipv4Addr,
    /// Target protocol address.
    pub target: Ipv4Addr,
    /// Sender and target hardware addresses (`02:42:ac:11:00:02`).
    #[serde(default)]
    pub sha: String,
    #[serde(default)]
    pub tha: String,
}

/// The IP header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Ip {
    /// 4 or 6.
    pub version: u8,
    pub src: IpAddr,
    pub dst: IpAddr,
    /// IANA protocol number of the payload (after IPv6 extension headers):
    /// 1 ICMP, 6 TCP, 17 UDP, 58 ICMPv6.
    pub proto: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Icmp {
    #[serde(rename = "type")]
    pub kind: u8,
    pub code: u8,
}

/// TCP header flags (RFC 9293 section 3.1; ECE and CWR from RFC 3168).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TcpFlags {
    #[serde(default, skip_serializing_if = "is_false")]
    pub syn: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ack: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub fin: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub rst: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub psh: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub urg: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub ece: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub cwr: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub flags: TcpFlags,
    /// The advertised window as sent (unscaled).
    pub window: u16,
    /// Payload, bytes.
    pub len: u32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Udp {
    pub sport: u16,
    pub dport: u16,
    /// Payload, bytes.
    pub len: u32,
    /// Whether the checksum verifies over the pseudo-header; `None` when
    /// there is none (0 over IPv4) or the capture cut the datagram short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub csum_ok: Option<bool>,
}

/// Verifies a UDP checksum (RFC 768, RFC 8200 §8.1) over the pseudo-header.
fn udp_csum_ok(ip: &Ip, seg: &[u8], len: u16, csum: u16) -> Option<bool> {
    if (csum == 0 && ip.version == 4) || seg.len() < len as usize || len < 8 {
        return None;
    }
    let mut p = Vec::with_capacity(40 + len as usize);
    match (ip.src, ip.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, 17]);
            p.extend_from_slice(&len.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 17]);
        }
        _ => return None,
    }
    p.extend_from_slice(&seg[..len as usize]);
    Some(crate::wire::checksum::inet_checksum(&p) == 0)
}

fn v4(b: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from)
}

fn mac(m: [u8; 6]) -> String {
    m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

impl Headers {
    /// Parses a frame that begins as `link` says. Layers that do not parse
    /// are left out; the Ethernet header is read even when what follows it
    /// does not parse.
    pub fn parse(link: LinkType, frame: &[u8]) -> Headers {
        let mut h = Headers::default();
        let sliced = match link {
            LinkType::Ethernet => {
                if let Some(e) = frame.get(..14) {
                    h.eth = Some(Eth {
                        dst: mac(e[0..6].try_into().unwrap_or_default()),
                        src: mac(e[6..12].try_into().unwrap_or_default()),
                        ethertype: u16::from_be_bytes([e[12], e[13]]),
                    });
                }
                SlicedPacket::from_ethernet(frame)
            }
            LinkType::RawIp => SlicedPacket::from_ip(frame),
        };
        let Ok(p) = sliced else { return h };
        if let Some(LinkSlice::Ethernet2(e)) = &p.link {
            h.eth = Some(Eth { src: mac(e.source()), dst: mac(e.destination()), ethertype: e.ether_type().0 });
        }
        match &p.net {
            Some(NetSlice::Arp(a)) => {
                if let (Some(sender), Some(target)) = (v4(a.sender_protocol_addr()), v4(a.target_protocol_addr())) {
                    let op = match a.operation() {
                        ArpOperation::REQUEST => ArpOp::Request,
                        ArpOperation::REPLY => ArpOp::Reply,
                        o => ArpOp::Other(o.0),
                    };
                    let hw = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":");
                    h.arp = Some(Arp { op, sender, target, sha: hw(a.sender_hw_addr()), tha: hw(a.target_hw_addr()) });
                }
            }
            Some(NetSlice::Ipv4(ip)) => {
                h.ip = Some(Ip {
                    version: 4,
                    src: ip.header().source_addr().into(),
                    dst: ip.header().destination_addr().into(),
                    proto: ip.payload().ip_number.0,
                })
            }
            Some(NetSlice::Ipv6(ip)) => {
                h.ip = Some(Ip {
                    version: 6,
                    src: ip.header().source_addr().into(),
                    dst: ip.header().destination_addr().into(),
                    proto: ip.payload().ip_number.0,
                })
            }
            None => {}
        }
        match &p.transport {
            Some(TransportSlice::Icmpv4(i)) => h.icmp = Some(Icmp { kind: i.type_u8(), code: i.code_u8() }),
            Some(TransportSlice::Icmpv6(i)) => h.icmp = Some(Icmp { kind: i.type_u8(), code: i.code_u8() }),
            Some(TransportSlice::Tcp(t)) => {
                h.tcp = Some(Tcp {
                    sport: t.source_port(),
                    dport: t.destination_port(),
                    seq: t.sequence_number(),
                    ack: t.acknowledgment_number(),
                    flags: TcpFlags {
                        syn: t.syn(),
                        ack: t.ack(),
                        fin: t.fin(),
                        rst: t.rst(),
                        psh: t.psh(),
                        urg: t.urg(),
                        ece: t.ece(),
                        cwr: t.cwr(),
                    },
                    window: t.window_size(),
                    len: t.payload().len() as u32,
                })
            }
            Some(TransportSlice::Udp(u)) => {
                let csum_ok = h.ip.as_ref().and_then(|ip| udp_csum_ok(ip, u.slice(), u.length(), u.checksum()));
                h.udp = Some(Udp {
                    sport: u.source_port(),
                    dport: u.destination_port(),
                    len: u.payload().len() as u32,
                    csum_ok,
                })
            }
            _ => {}
        }
        h
    }

    /// The IPv4 addresses, when the frame is IPv4.
    pub fn ipv4(&self) -> Option<(Ipv4Addr, Ipv4Addr)> {
        match self.ip.as_ref()? {
            Ip { src: IpAddr::V4(s), dst: IpAddr::V4(d), .. } => Some((*s, *d)),
            _ => None,
        }
    }

    /// ICMP (for IPv4) type and code, the ones matchers and names speak of.
    pub fn icmpv4(&self) -> Option<Icmp> {
        self.icmp.filter(|_| self.ip.as_ref().is_some_and(|ip| ip.version == 4))
    }

    /// ICMPv6 type and code, when the frame is IPv6.
    pub fn icmpv6(&self) -> Option<Icmp> {
        self.icmp.filter(|_| self.ip.as_ref().is_some_and(|ip| ip.version == 6))
    }

    /// The IP addresses, either family.
    pub fn addrs(&self) -> Option<(IpAddr, IpAddr)> {
        self.ip.as_ref().map(|ip| (ip.src, ip.dst))
    }

    /// One line in tcpdump's spirit, e.g.
    /// `IP 10.2.19.80 > 10.2.19.78: ICMP echo-reply`; `len` is the frame's
    /// length in bytes, said when nothing else is known. For people only.
    pub fn summary(&self, len: usize) -> String {
        if let Some(a) = &self.arp {
            return match a.op {
                ArpOp::Request => format!("ARP request who-has {} tell {}", a.target, a.sender),
                ArpOp::Reply => format!("ARP reply {} is-at (to {})", a.sender, a.target),
                ArpOp::Other(op) => format!("ARP op {op} {} > {}", a.sender, a.target),
            };
        }
        let Some(ip) = &self.ip else {
            return match self.eth.as_ref().map(|e| e.ethertype) {
                Some(0x86dd) => format!("IPv6, {len} bytes"),
                Some(t) => format!("ethertype 0x{t:04x}, {len} bytes"),
                None => format!("{len} bytes"),
            };
        };
        let (s, d, word) = (ip.src, ip.dst, if ip.version == 6 { "IP6" } else { "IP" });
        if let Some(i) = self.icmp {
            return match ip.version {
                4 => format!("{word} {s} > {d}: ICMP {}", crate::wire::icmp::name(i.kind, i.code)),
                _ => format!("{word} {s} > {d}: ICMP6 {}", crate::wire::icmp::name6(i.kind, i.code)),
            };
        }
        if let Some(t) = &self.tcp {
            let f = t.flags;
            let mut flags = String::new();
            for (on, ch) in [(f.syn, 'S'), (f.fin, 'F'), (f.rst, 'R'), (f.psh, 'P'), (f.ack, '.')] {
                if on {
                    flags.push(ch);
                }
            }
            let (a, b) = (SocketAddr::new(s, t.sport), SocketAddr::new(d, t.dport));
            return format!(
                "{word} {a} > {b}: TCP [{flags}] seq {} ack {} win {} len {}",
                t.seq, t.ack, t.window, t.len
            );
        }
        if let Some(u) = &self.udp {
            return format!("{word} {} > {}: UDP", SocketAddr::new(s, u.sport), SocketAddr::new(d, u.dport));
        }
        format!("{word} {s} > {d}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    #[test]
    fn every_layer_is_parsed_into_its_fields() {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
            .ipv4([10, 2, 19, 78], [10, 2, 19, 80], 64)
            .tcp(40000, 8080, 100, 512)
            .syn()
            .ack(7)
            .write(&mut out, &[1, 2, 3])
            .unwrap();
        let h = Headers::parse(LinkType::Ethernet, &out);
        let e = h.eth.as_ref().unwrap();
        assert_eq!((e.src.as_str(), e.dst.as_str(), e.ethertype), ("02:00:00:00:00:01", "02:00:00:00:00:02", 0x0800));
        let ip = h.ip.as_ref().unwrap();
        assert_eq!((ip.version, ip.proto), (4, 6));
        assert_eq!(h.ipv4(), Some(([10, 2, 19, 78].into(), [10, 2, 19, 80].into())));
        let t = h.tcp.as_ref().unwrap();
        assert_eq!((t.sport, t.dport, t.seq, t.ack, t.window, t.len), (40000, 8080, 100, 7, 512, 3));
        assert!(t.flags.syn && t.flags.ack && !t.flags.rst);
        assert_eq!(h.summary(out.len()), "IP 10.2.19.78:40000 > 10.2.19.80:8080: TCP [S.] seq 100 ack 7 win 512 len 3");
        let json = serde_json::to_value(&h).unwrap();
        assert_eq!(json["tcp"]["flags"], serde_json::json!({"syn": true, "ack": true}));
        assert_eq!(serde_json::from_value::<Headers>(json).unwrap(), h);
    }

    #[test]
    fn raw_ip_and_ipv6_and_garbage() {
        let mut out = Vec::new();
        PacketBuilder::ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            255,
        )
        .udp(546, 547)
        .write(&mut out, &[0; 4])
        .unwrap();
        let h = Headers::parse(LinkType::RawIp, &out);
        assert!(h.eth.is_none());
        assert_eq!(h.ip.as_ref().map(|i| (i.version, i.proto)), Some((6, 17)));
        assert_eq!(h.ipv4(), None);
        assert_eq!(h.summary(out.len()), "IP6 [fe80::1]:546 > [ff02::2]:547: UDP");
        let junk = [0xffu8; 20];
        let h = Headers::parse(LinkType::Ethernet, &junk);
        assert_eq!(h.eth.as_ref().map(|e| e.ethertype), Some(0xffff));
        assert_eq!(h.summary(20), "ethertype 0xffff, 20 bytes");
    }
}
