//! A frame's headers, parsed once from its bytes and kept apart from them
//! (smoltcp's `Repr` beside its `Packet`): the typed L2/L3/L4 fields the
//! evidence records and that matchers, summaries, the explainer and the
//! report read. The one-line [`Headers::summary`] is for people only;
//! nothing parses it back.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use etherparse::{
    ArpOperation, ArpPacketSlice, EtherType, LaxNetSlice, LaxSlicedPacket, LinkSlice, NetSlice, SlicedPacket,
    TransportSlice,
};
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
    /// IPv6 neighbour discovery (ICMPv6 133–137): the target and the
    /// link-layer address option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nd: Option<Nd>,
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
    /// Sender hardware address, `02:42:ac:11:00:01` (empty in records
    /// written before it was kept).
    #[serde(default)]
    pub sender_mac: String,
    /// Target hardware address (all zeros in a request).
    #[serde(default)]
    pub target_mac: String,
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
    /// IPv4 identification: tells apart datagrams with the same addresses
    /// and ports (a dropped packet from its captured frame).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
}

impl Ip {
    fn v4(hd: &etherparse::Ipv4HeaderSlice, proto: u8) -> Ip {
        Ip {
            version: 4,
            src: hd.source_addr().into(),
            dst: hd.destination_addr().into(),
            proto,
            id: Some(hd.identification()),
        }
    }

    fn v6(hd: &etherparse::Ipv6HeaderSlice, proto: u8) -> Ip {
        Ip { version: 6, src: hd.source_addr().into(), dst: hd.destination_addr().into(), proto, id: None }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Icmp {
    #[serde(rename = "type")]
    pub kind: u8,
    pub code: u8,
    /// Echo request/reply identifier (ICMP 8/0, ICMPv6 128/129).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<u16>,
    /// Echo request/reply sequence number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u16>,
}

/// What an NDP message says about whom (RFC 4861 section 4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Nd {
    /// The target address of a neighbour solicitation or advertisement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Ipv6Addr>,
    /// The source (solicitations) or target (advertisements) link-layer
    /// address option, `02:42:ac:11:00:01`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lladdr: Option<String>,
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

fn mac_of(b: &[u8]) -> String {
    <[u8; 6]>::try_from(b).map(mac).unwrap_or_default()
}

fn arp_of(a: &ArpPacketSlice) -> Option<Arp> {
    let (sender, target) = (v4(a.sender_protocol_addr())?, v4(a.target_protocol_addr())?);
    let op = match a.operation() {
        ArpOperation::REQUEST => ArpOp::Request,
        ArpOperation::REPLY => ArpOp::Reply,
        o => ArpOp::Other(o.0),
    };
    Some(Arp { op, sender, target, sender_mac: mac_of(a.sender_hw_addr()), target_mac: mac_of(a.target_hw_addr()) })
}

/// Echo id and sequence from the ICMP header's bytes 4..8.
fn echo(bytes5to8: [u8; 4]) -> (Option<u16>, Option<u16>) {
    (Some(u16::from_be_bytes([bytes5to8[0], bytes5to8[1]])), Some(u16::from_be_bytes([bytes5to8[2], bytes5to8[3]])))
}

/// The target and link-layer option of an NDP message (`icmp` from its
/// type on, as on the wire).
fn nd_of(icmp: &[u8]) -> Option<Nd> {
    let t = *icmp.first()?;
    let (target, options) = match t {
        135..=137 => (icmp.get(8..24).and_then(|b| <[u8; 16]>::try_from(b).ok()).map(Ipv6Addr::from), 24),
        133 => (None, 8),
        134 => (None, 16),
        _ => return None,
    };
    let mut lladdr = None;
    let mut rest = icmp.get(options..).unwrap_or_default();
    // Options: type, length in units of 8 bytes, data (RFC 4861 4.6).
    while rest.len() >= 8 {
        let len = rest[1] as usize * 8;
        if len == 0 || len > rest.len() {
            break;
        }
        if matches!(rest[0], 1 | 2) {
            lladdr = Some(mac_of(&rest[2..8]));
        }
        rest = &rest[len..];
    }
    Some(Nd { target, lladdr })
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
            Some(NetSlice::Arp(a)) => h.arp = arp_of(a),
            Some(NetSlice::Ipv4(ip)) => h.ip = Some(Ip::v4(&ip.header(), ip.payload().ip_number.0)),
            Some(NetSlice::Ipv6(ip)) => h.ip = Some(Ip::v6(&ip.header(), ip.payload().ip_number.0)),
            None => {}
        }
        h.transport(p.transport.as_ref());
        h
    }

    /// Parses what the kernel held from a packet's network header on
    /// (`skb->head + skb->network_header`) for a packet of EtherType
    /// `ethertype`, as far as the bytes go: the first bytes of a dropped
    /// packet, cut wherever the copy ended.
    pub fn parse_l3(ethertype: u16, bytes: &[u8]) -> Headers {
        let mut h = Headers::default();
        let p = LaxSlicedPacket::from_ether_type(EtherType(ethertype), bytes);
        match &p.net {
            Some(LaxNetSlice::Arp(a)) => h.arp = arp_of(a),
            Some(LaxNetSlice::Ipv4(ip)) => h.ip = Some(Ip::v4(&ip.header(), ip.payload().ip_number.0)),
            Some(LaxNetSlice::Ipv6(ip)) => h.ip = Some(Ip::v6(&ip.header(), ip.payload().ip_number.0)),
            None => {}
        }
        h.transport(p.transport.as_ref());
        // The copy ends early: a transport's payload length is what its
        // headers say, not what was copied.
        let be16 = |at: usize| bytes.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]) as u32);
        let (l4, total) = match h.ip.as_ref().map(|ip| ip.version) {
            Some(4) => {
                let ihl = (bytes.first().copied().unwrap_or(0) & 0x0f) as usize * 4;
                (ihl, be16(2).map(|t| t.saturating_sub(ihl as u32)))
            }
            // Only without extension headers (next header is the transport's).
            Some(6) if bytes.get(6).is_some_and(|n| matches!(n, 6 | 17)) => (40, be16(4)),
            _ => (0, None),
        };
        if let (Some(t), Some(total)) = (h.tcp.as_mut(), total) {
            let doff = bytes.get(l4 + 12).map(|b| (b >> 4) as u32 * 4).unwrap_or(20);
            t.len = total.saturating_sub(doff);
        }
        if let (Some(u), Some(ulen)) = (h.udp.as_mut(), be16(l4 + 4).filter(|_| total.is_some())) {
            u.len = ulen.saturating_sub(8);
        }
        h
    }

    fn transport(&mut self, t: Option<&TransportSlice>) {
        let h = self;
        match t {
            Some(TransportSlice::Icmpv4(i)) => {
                let (id, seq) = if matches!(i.type_u8(), 0 | 8) { echo(i.bytes5to8()) } else { (None, None) };
                h.icmp = Some(Icmp { kind: i.type_u8(), code: i.code_u8(), id, seq })
            }
            Some(TransportSlice::Icmpv6(i)) => {
                let (id, seq) = if matches!(i.type_u8(), 128 | 129) { echo(i.bytes5to8()) } else { (None, None) };
                h.icmp = Some(Icmp { kind: i.type_u8(), code: i.code_u8(), id, seq });
                h.nd = nd_of(i.slice());
            }
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
                ArpOp::Request => format!("ARP request who-has {} tell {}{}", a.target, a.sender, paren(&a.sender_mac)),
                ArpOp::Reply => format!("ARP reply {} is-at {} (to {})", a.sender, or_unknown(&a.sender_mac), a.target),
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
                _ => {
                    let mut line = format!("{word} {s} > {d}: ICMP6 {}", crate::wire::icmp::name6(i.kind, i.code));
                    if let Some(nd) = &self.nd {
                        let mac = nd.lladdr.as_deref().unwrap_or("");
                        match (i.kind, nd.target) {
                            (135, Some(t)) => line += &format!(" who-has {t}{}", paren(mac)),
                            (136, Some(t)) => line += &format!(" {t} is-at {}", or_unknown(mac)),
                            _ => line += &paren(mac),
                        }
                    }
                    line
                }
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
            // tcpdump -v's words for a checksum that does not verify.
            let bad = if u.csum_ok == Some(false) { " [bad udp cksum]" } else { "" };
            return format!("{word} {} > {}: UDP{bad}", SocketAddr::new(s, u.sport), SocketAddr::new(d, u.dport));
        }
        format!("{word} {s} > {d}")
    }
}

/// ` (02:42:…)`, or nothing for an unknown MAC.
fn paren(mac: &str) -> String {
    if mac.is_empty() {
        String::new()
    } else {
        format!(" ({mac})")
    }
}

fn or_unknown(mac: &str) -> &str {
    if mac.is_empty() {
        "(mac not recorded)"
    } else {
        mac
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

    #[test]
    fn arp_frames_say_their_macs() {
        let arp = |op, sha: [u8; 6], spa: [u8; 4], tha: [u8; 6], tpa: [u8; 4]| {
            let a = etherparse::ArpPacket::new(
                etherparse::ArpHardwareId::ETHERNET,
                etherparse::EtherType::IPV4,
                op,
                &sha,
                &spa,
                &tha,
                &tpa,
            )
            .unwrap();
            let mut out = Vec::new();
            PacketBuilder::ethernet2(sha, tha).arp(a).write(&mut out).unwrap();
            Headers::parse(LinkType::Ethernet, &out)
        };
        let gw = [0x02, 0x42, 0xac, 0x11, 0, 1];
        let c = [0x02, 0x42, 0xac, 0x11, 0, 2];
        let req = arp(ArpOperation::REQUEST, c, [172, 17, 0, 2], [0; 6], [172, 17, 0, 1]);
        assert_eq!(req.summary(42), "ARP request who-has 172.17.0.1 tell 172.17.0.2 (02:42:ac:11:00:02)");
        let rep = arp(ArpOperation::REPLY, gw, [172, 17, 0, 1], c, [172, 17, 0, 2]);
        assert_eq!(rep.summary(42), "ARP reply 172.17.0.1 is-at 02:42:ac:11:00:01 (to 172.17.0.2)");
        assert_eq!(rep.arp.as_ref().unwrap().target_mac, "02:42:ac:11:00:02");
        // A record written before MACs were kept still reads, and says so.
        let old: Arp =
            serde_json::from_value(serde_json::json!({"op": "reply", "sender": "172.17.0.1", "target": "172.17.0.2"}))
                .unwrap();
        let h = Headers { arp: Some(old), ..Default::default() };
        assert_eq!(h.summary(42), "ARP reply 172.17.0.1 is-at (mac not recorded) (to 172.17.0.2)");
    }

    #[test]
    fn icmpv6_frames_are_named_with_ndp_targets_and_macs() {
        let v6 = |icmp: Vec<u8>, dst: [u8; 16]| {
            let src = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
            let mut out = Vec::new();
            let t = etherparse::Icmpv6Type::Unknown {
                type_u8: icmp[0],
                code_u8: icmp[1],
                bytes5to8: icmp[4..8].try_into().unwrap(),
            };
            PacketBuilder::ethernet2([2; 6], [0x33; 6])
                .ipv6(src, dst, 255)
                .icmpv6(t)
                .write(&mut out, &icmp[8..])
                .unwrap();
            Headers::parse(LinkType::Ethernet, &out)
        };
        let target = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];
        let mut ns = vec![135, 0, 0, 0, 0, 0, 0, 0];
        ns.extend(target);
        ns.extend([1, 1, 0x02, 0x42, 0xac, 0x11, 0, 1]);
        let h = v6(ns, [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2]);
        assert_eq!(
            h.summary(86),
            "IP6 fe80::1 > ff02::1:ff00:2: ICMP6 neighbor-solicitation who-has fe80::2 (02:42:ac:11:00:01)"
        );
        let mut na = vec![136, 0, 0, 0, 0x60, 0, 0, 0];
        na.extend(target);
        na.extend([2, 1, 0x02, 0x42, 0xac, 0x11, 0, 2]);
        let h = v6(na, [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        assert_eq!(
            h.summary(86),
            "IP6 fe80::1 > fe80::1: ICMP6 neighbor-advertisement fe80::2 is-at 02:42:ac:11:00:02"
        );
        let rs = vec![133, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2, 0, 0, 0, 0, 9];
        let h = v6(rs, [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        assert_eq!(h.summary(70), "IP6 fe80::1 > ff02::2: ICMP6 router-solicitation (02:00:00:00:00:09)");
        let mld = vec![143, 0, 0, 0, 0, 0, 0, 1, 4, 0, 0, 0, 0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 2];
        let h = v6(mld, [0xff, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x16]);
        assert_eq!(h.summary(90), "IP6 fe80::1 > ff02::16: ICMP6 mldv2-report");
        let echo = vec![128, 0, 0, 0, 0x12, 0x34, 0, 7];
        let h = v6(echo, target);
        assert_eq!(h.summary(62), "IP6 fe80::1 > fe80::2: ICMP6 echo-request");
        assert_eq!((h.icmp.unwrap().id, h.icmp.unwrap().seq), (Some(0x1234), Some(7)));
    }

    #[test]
    fn the_first_bytes_of_a_dropped_packet_parse_as_far_as_they_go() {
        // An echo reply cut after 40 of its 84 bytes, as the drop monitor
        // copies it from the network header on.
        let mut out = Vec::new();
        PacketBuilder::ipv4([10, 2, 19, 80], [172, 17, 0, 2], 64)
            .icmpv4_echo_reply(0x4d2, 3)
            .write(&mut out, &[0u8; 56])
            .unwrap();
        let h = Headers::parse_l3(0x0800, &out[..40]);
        let ip = h.ip.as_ref().unwrap();
        assert_eq!((ip.version, ip.proto), (4, 1));
        let i = h.icmp.unwrap();
        assert_eq!((i.kind, i.id, i.seq), (0, Some(0x4d2), Some(3)));
        assert_eq!(h.summary(84), "IP 10.2.19.80 > 172.17.0.2: ICMP echo-reply");
        // A SYN cut inside its options still gives ports and flags... or
        // nothing at all, never a panic.
        let mut syn = Vec::new();
        PacketBuilder::ipv4([172, 17, 0, 2], [10, 2, 19, 80], 64)
            .tcp(40000, 8080, 9, 64240)
            .syn()
            .write(&mut syn, &[])
            .unwrap();
        let h = Headers::parse_l3(0x0800, &syn);
        assert!(h.tcp.as_ref().is_some_and(|t| t.flags.syn && t.dport == 8080 && t.len == 0), "{h:?}");
        // A data segment cut after 96 bytes still says its whole length.
        let mut data = Vec::new();
        PacketBuilder::ipv4([10, 2, 19, 80], [172, 17, 0, 2], 64)
            .tcp(5201, 40000, 9, 64)
            .ack(1)
            .write(&mut data, &[7u8; 1448])
            .unwrap();
        let h = Headers::parse_l3(0x0800, &data[..96]);
        assert_eq!(h.tcp.as_ref().map(|t| t.len), Some(1448), "{h:?}");
        let mut data6 = Vec::new();
        PacketBuilder::ipv6(
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
            [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2],
            64,
        )
        .udp(53, 5353)
        .write(&mut data6, &[0u8; 500])
        .unwrap();
        let h = Headers::parse_l3(0x86dd, &data6[..96]);
        assert_eq!(h.udp.as_ref().map(|u| u.len), Some(500), "{h:?}");
        for n in 0..syn.len() {
            let _ = Headers::parse_l3(0x0800, &syn[..n]);
            let _ = Headers::parse_l3(0x0806, &syn[..n]);
            let _ = Headers::parse_l3(0x86dd, &syn[..n]);
        }
    }
}
