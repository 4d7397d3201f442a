//! A captured frame, its direction, and the few words a case uses to count
//! frames (matchers), read from the frame's parsed [`Headers`].
//!
//! Matcher grammar (all terms must hold):
//! `arp | ip | ip6 | icmp | icmp6 | tcp | udp`, `request | reply` (ARP),
//! every ICMP word of [`crate::wire::icmp::NAMES`] (`echo-reply`,
//! `host-prohibited`, `admin-prohibited`, `frag-needed` …) and ICMPv6 word
//! of [`crate::wire::icmp::NAMES6`] (`no-route`, `packet-too-big`,
//! `neighbor-solicitation`, `router-advertisement` …), `ndp` (ICMPv6
//! 133–137), `syn | syn-ack | rst | fin | ack-only` (TCP), `src A`, `dst A`
//! (IPv4 or IPv6; IPv4 also the ARP sender/target), `port N`,
//! `seq N` (TCP sequence number; `N` may be a probe variable such as
//! `$injected_ack`), `in | out` (direction on the capturing interface).
//! `src-mac M`, `dst-mac M` (Ethernet), `arp-sha M`, `arp-tha M` (ARP
//! hardware addresses), `good-csum | bad-csum` (UDP checksum over the
//! pseudo-header), `csum-not-ready` (the kernel's `TP_STATUS_CSUMNOTREADY`
//! for the frame: a partial checksum left for offload), `vxlan` (UDP 4789 or 8472 carrying a VXLAN header) and
//! `inner …`: every word after it applies to the frame a VXLAN datagram
//! carries (`vxlan inner tcp syn`).
//! `ip` and `icmp` speak of IPv4, `ip6` and `icmp6` of IPv6, as tcpdump's
//! words do; an ICMP word alone matches whichever family has it
//! (`port-unreachable` is 3/3 in IPv4 and 1/4 in IPv6).

use std::net::IpAddr;

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Serialize};

use crate::wire::headers::{ArpOp, Headers};
use crate::wire::linktype::LinkType;

/// Which way a frame crossed the interface it was captured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Received by the interface (every `sll_pkttype` but `PACKET_OUTGOING`).
    In,
    /// Sent by the interface (`sll_pkttype` = `PACKET_OUTGOING`).
    Out,
}

impl Direction {
    pub fn word(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
        }
    }
}

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Kernel receive timestamp, ns since the Unix epoch.
    pub ts_ns: u64,
    pub direction: Direction,
    /// How `data` begins (the capturing device's link type).
    pub link: LinkType,
    /// The frame as captured (at most the snap length).
    pub data: Vec<u8>,
    /// Its length on the wire, bytes (more than `data` when cut at the snap length).
    pub wire_len: u32,
    /// The kernel's `TP_STATUS_CSUMNOTREADY` (`PACKET_AUXDATA`): the frame
    /// was `CHECKSUM_PARTIAL` when the capture saw it, its L4 checksum field
    /// holds only the pseudo-header sum, left for a device to finish. What a
    /// client reading the flag (busybox udhcpc) uses to accept it.
    pub csum_not_ready: bool,
}

impl Frame {
    /// An Ethernet frame, captured whole.
    pub fn ethernet(ts_ns: u64, direction: Direction, data: Vec<u8>) -> Frame {
        Frame { ts_ns, direction, link: LinkType::Ethernet, wire_len: data.len() as u32, data, csum_not_ready: false }
    }

    pub fn headers(&self) -> Headers {
        Headers::parse(self.link, &self.data)
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Arp,
    Ip,
    Ip6,
    Icmp,
    Icmp6,
    Ndp,
    Tcp,
    Udp,
    Request,
    Reply,
    /// The word's `(type, code)` in IPv4 and in IPv6, where it has one.
    IcmpType(Option<(u8, Option<u8>)>, Option<(u8, Option<u8>)>),
    Syn,
    SynAck,
    Rst,
    Fin,
    AckOnly,
    Src(IpAddr),
    Dst(IpAddr),
    Port(u16),
    Seq(SeqRef),
    In,
    Out,
    SrcMac(String),
    DstMac(String),
    ArpSha(String),
    ArpTha(String),
    GoodCsum,
    BadCsum,
    CsumNotReady,
    Vxlan,
    /// The rest of the matcher, over the frame a VXLAN datagram carries.
    Inner(Box<Matcher>),
}

/// UDP ports VXLAN is sent to: IANA's 4789, and 8472 (Linux's default, flannel).
const VXLAN_PORTS: [u16; 2] = [4789, 8472];

/// The Ethernet frame a VXLAN datagram in `f` carries (RFC 7348: 8 bytes of
/// VXLAN header, its I flag set), as a frame of its own.
fn vxlan_inner(f: &Frame) -> Option<Frame> {
    let sliced = match f.link {
        LinkType::Ethernet => etherparse::SlicedPacket::from_ethernet(&f.data),
        LinkType::RawIp => etherparse::SlicedPacket::from_ip(&f.data),
    }
    .ok()?;
    let Some(etherparse::TransportSlice::Udp(u)) = sliced.transport else { return None };
    if !VXLAN_PORTS.contains(&u.destination_port()) {
        return None;
    }
    let p = u.payload();
    if p.len() < 8 + 14 || p[0] & 0x08 == 0 {
        return None;
    }
    Some(Frame::ethernet(f.ts_ns, f.direction, p[8..].to_vec()))
}

fn mac_word(w: &str) -> Option<String> {
    let parts: Vec<&str> = w.split(':').collect();
    (parts.len() == 6 && parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit())))
        .then(|| w.to_ascii_lowercase())
}

#[derive(Debug, Clone, PartialEq)]
enum SeqRef {
    Lit(u32),
    Var(String),
}

/// Variables a probe defines for matchers (`$injected_ack`, ...).
pub type Vars = std::collections::BTreeMap<String, u64>;

/// The variables matchers may name.
pub const KNOWN_VARS: &[&str] = &["injected_seq", "injected_ack", "injected_end"];

/// A parsed matcher such as `icmp echo-reply src 10.2.19.80`.
#[derive(Debug, Clone, PartialEq)]
pub struct Matcher {
    text: String,
    terms: Vec<Term>,
}

impl Matcher {
    pub fn parse(text: &str) -> Result<Matcher> {
        let mut terms = Vec::new();
        let mut words = text.split_whitespace();
        while let Some(w) = words.next() {
            let mut addr = |kind: &str| -> Result<IpAddr> {
                let a = words.next().ok_or_else(|| anyhow!("`{kind}` needs an IPv4 or IPv6 address"))?;
                a.parse().map_err(|_| anyhow!("`{kind} {a}`: not an IPv4 or IPv6 address"))
            };
            terms.push(match w {
                "arp" => Term::Arp,
                "ip" => Term::Ip,
                "ip6" => Term::Ip6,
                "icmp" => Term::Icmp,
                "icmp6" => Term::Icmp6,
                "ndp" => Term::Ndp,
                "tcp" => Term::Tcp,
                "udp" => Term::Udp,
                "request" => Term::Request,
                "reply" => Term::Reply,
                "syn" => Term::Syn,
                "syn-ack" => Term::SynAck,
                "rst" => Term::Rst,
                "fin" => Term::Fin,
                "ack-only" => Term::AckOnly,
                "src" => Term::Src(addr("src")?),
                "dst" => Term::Dst(addr("dst")?),
                "port" => {
                    let p = words.next().ok_or_else(|| anyhow!("`port` needs a number"))?;
                    Term::Port(p.parse().map_err(|_| anyhow!("`port {p}`: not a port number"))?)
                }
                "seq" => {
                    let v = words.next().ok_or_else(|| anyhow!("`seq` needs a number or a $variable"))?;
                    match v.strip_prefix('$') {
                        Some(name) if KNOWN_VARS.contains(&name) => Term::Seq(SeqRef::Var(name.into())),
                        Some(name) => bail!("`seq ${name}`: unknown variable (known: {})", KNOWN_VARS.join(", ")),
                        None => {
                            Term::Seq(SeqRef::Lit(v.parse().map_err(|_| anyhow!("`seq {v}`: not a sequence number"))?))
                        }
                    }
                }
                "in" => Term::In,
                "out" => Term::Out,
                "src-mac" | "dst-mac" | "arp-sha" | "arp-tha" => {
                    let m = words.next().ok_or_else(|| anyhow!("`{w}` needs a MAC address"))?;
                    let m = mac_word(m).ok_or_else(|| anyhow!("`{w} {m}`: not a MAC address (02:42:ac:11:00:02)"))?;
                    match w {
                        "src-mac" => Term::SrcMac(m),
                        "dst-mac" => Term::DstMac(m),
                        "arp-sha" => Term::ArpSha(m),
                        _ => Term::ArpTha(m),
                    }
                }
                "good-csum" => Term::GoodCsum,
                "bad-csum" => Term::BadCsum,
                "csum-not-ready" => Term::CsumNotReady,
                "vxlan" => Term::Vxlan,
                "inner" => {
                    let rest: Vec<&str> = words.by_ref().collect();
                    Term::Inner(Box::new(Matcher::parse(&rest.join(" ")).map_err(|e| anyhow!("after `inner`: {e}"))?))
                }
                other if crate::wire::icmp::known(other) => {
                    Term::IcmpType(crate::wire::icmp::parse(other), crate::wire::icmp::parse6(other))
                }
                other => bail!(
                    "unknown word `{other}` (known: arp ip ip6 icmp icmp6 ndp tcp udp request reply {} \
                     syn syn-ack rst fin ack-only src A dst A port N seq N in out src-mac M dst-mac M arp-sha M arp-tha M \
                     good-csum bad-csum csum-not-ready vxlan inner …)",
                    crate::wire::icmp::words()
                ),
            });
        }
        if terms.is_empty() {
            bail!("empty packet matcher");
        }
        Ok(Matcher { text: text.trim().to_string(), terms })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn matches(&self, f: &Frame) -> bool {
        self.matches_with(f, &Vars::new())
    }

    /// Like [`Matcher::matches`]; `$variables` take their values from `vars`
    /// (an undefined one matches nothing).
    pub fn matches_with(&self, f: &Frame, vars: &Vars) -> bool {
        let h = f.headers();
        let v4 = h.ipv4();
        let addrs = h.addrs();
        let icmp = h.icmpv4();
        let icmp6 = h.icmpv6();
        let is = |i: Option<crate::wire::headers::Icmp>, want: &Option<(u8, Option<u8>)>| {
            i.is_some_and(|i| want.is_some_and(|(ty, code)| i.kind == ty && code.is_none_or(|k| k == i.code)))
        };
        let tcp = h.tcp.as_ref().map(|t| (t, t.flags));
        self.terms.iter().all(|t| match t {
            Term::Arp => h.arp.is_some(),
            Term::Ip => v4.is_some(),
            Term::Ip6 => h.ip.as_ref().is_some_and(|ip| ip.version == 6),
            Term::Icmp => icmp.is_some(),
            Term::Icmp6 => icmp6.is_some(),
            Term::Ndp => icmp6.is_some_and(|i| (133..=137).contains(&i.kind)),
            Term::Tcp => tcp.is_some(),
            Term::Udp => h.udp.is_some(),
            Term::Request => h.arp.as_ref().is_some_and(|a| a.op == ArpOp::Request),
            Term::Reply => h.arp.as_ref().is_some_and(|a| a.op != ArpOp::Request),
            Term::IcmpType(w4, w6) => is(icmp, w4) || is(icmp6, w6),
            Term::Syn => tcp.is_some_and(|(_, f)| f.syn && !f.ack),
            Term::SynAck => tcp.is_some_and(|(_, f)| f.syn && f.ack),
            Term::Rst => tcp.is_some_and(|(_, f)| f.rst),
            Term::Fin => tcp.is_some_and(|(_, f)| f.fin),
            Term::AckOnly => tcp.is_some_and(|(t, f)| f.ack && !f.syn && !f.rst && !f.fin && t.len == 0),
            Term::Src(a) => {
                addrs.is_some_and(|(s, _)| s == *a) || h.arp.as_ref().is_some_and(|x| IpAddr::V4(x.sender) == *a)
            }
            Term::Dst(a) => {
                addrs.is_some_and(|(_, d)| d == *a) || h.arp.as_ref().is_some_and(|x| IpAddr::V4(x.target) == *a)
            }
            Term::Port(p) => {
                tcp.is_some_and(|(t, _)| t.sport == *p || t.dport == *p)
                    || h.udp.as_ref().is_some_and(|u| u.sport == *p || u.dport == *p)
            }
            Term::Seq(s) => {
                let want = match s {
                    SeqRef::Lit(n) => Some(*n as u64),
                    SeqRef::Var(name) => vars.get(name).copied(),
                };
                tcp.is_some_and(|(t, _)| want == Some(t.seq as u64))
            }
            Term::In => f.direction == Direction::In,
            Term::Out => f.direction == Direction::Out,
            Term::SrcMac(m) => h.eth.as_ref().is_some_and(|e| &e.src == m),
            Term::DstMac(m) => h.eth.as_ref().is_some_and(|e| &e.dst == m),
            Term::ArpSha(m) => h.arp.as_ref().is_some_and(|a| &a.sender_mac == m),
            Term::ArpTha(m) => h.arp.as_ref().is_some_and(|a| &a.target_mac == m),
            Term::GoodCsum => h.udp.as_ref().is_some_and(|u| u.csum_ok == Some(true)),
            Term::BadCsum => h.udp.as_ref().is_some_and(|u| u.csum_ok == Some(false)),
            Term::CsumNotReady => f.csum_not_ready,
            Term::Vxlan => vxlan_inner(f).is_some(),
            Term::Inner(m) => vxlan_inner(f).is_some_and(|inner| m.matches_with(&inner, vars)),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    pub fn icmp_echo(src: [u8; 4], dst: [u8; 4], reply: bool) -> Vec<u8> {
        let b = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
        let b = if reply { b.icmpv4_echo_reply(7, 1) } else { b.icmpv4_echo_request(7, 1) };
        let mut out = Vec::new();
        b.write(&mut out, &[0u8; 8]).unwrap();
        out
    }

    /// An ARP request from `sender` for `target`.
    pub fn arp_request(sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
        let arp = etherparse::ArpPacket::new(
            etherparse::ArpHardwareId::ETHERNET,
            etherparse::EtherType::IPV4,
            etherparse::ArpOperation::REQUEST,
            &[2; 6],
            &sender,
            &[0; 6],
            &target,
        )
        .unwrap();
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2; 6], [0xff; 6]).arp(arp).write(&mut out).unwrap();
        out
    }

    /// An ARP reply from `sender` (MAC 04:..) to `target` (MAC 02:..), unicast.
    pub fn arp_reply(sender: [u8; 4], target: [u8; 4]) -> Vec<u8> {
        let arp = etherparse::ArpPacket::new(
            etherparse::ArpHardwareId::ETHERNET,
            etherparse::EtherType::IPV4,
            etherparse::ArpOperation::REPLY,
            &[4; 6],
            &sender,
            &[2; 6],
            &target,
        )
        .unwrap();
        let mut out = Vec::new();
        PacketBuilder::ethernet2([4; 6], [2; 6]).arp(arp).write(&mut out).unwrap();
        out
    }

    /// A TCP segment with `flags` in tcpdump's letters (`S`, `S.`, `R`, `F.`).
    pub fn tcp_segment(src: [u8; 4], sport: u16, dst: [u8; 4], dport: u16, flags: &str) -> Vec<u8> {
        let mut b = PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64).tcp(sport, dport, 1, 5);
        for c in flags.chars() {
            b = match c {
                'S' => b.syn(),
                'F' => b.fin(),
                'R' => b.rst(),
                'P' => b.psh(),
                '.' => b.ack(2),
                _ => panic!("flag {c}"),
            };
        }
        let mut out = Vec::new();
        b.write(&mut out, &[]).unwrap();
        out
    }

    fn frame(data: Vec<u8>) -> Frame {
        Frame::ethernet(0, Direction::In, data)
    }

    fn summary(f: &Frame) -> String {
        f.headers().summary(f.data.len())
    }

    #[test]
    fn echo_reply_is_matched_and_summarised() {
        let f = frame(icmp_echo([10, 2, 19, 80], [10, 2, 19, 78], true));
        assert!(Matcher::parse("icmp echo-reply").unwrap().matches(&f));
        assert!(Matcher::parse("icmp echo-reply src 10.2.19.80 in").unwrap().matches(&f));
        assert!(!Matcher::parse("icmp echo-request").unwrap().matches(&f));
        assert!(!Matcher::parse("echo-reply out").unwrap().matches(&f));
        assert!(!Matcher::parse("arp").unwrap().matches(&f));
        assert_eq!(summary(&f), "IP 10.2.19.80 > 10.2.19.78: ICMP echo-reply");
    }

    #[test]
    fn tcp_flags_are_told_apart() {
        let mut out = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 2, 19, 78], [10, 2, 19, 80], 64)
            .tcp(40000, 8080, 100, 512)
            .rst()
            .write(&mut out, &[])
            .unwrap();
        let f = frame(out);
        assert!(Matcher::parse("tcp rst dst 10.2.19.80 port 8080").unwrap().matches(&f));
        assert!(Matcher::parse("tcp rst seq 100").unwrap().matches(&f));
        let m = Matcher::parse("tcp rst seq $injected_ack").unwrap();
        assert!(!m.matches(&f), "an undefined variable matches nothing");
        assert!(m.matches_with(&f, &Vars::from([("injected_ack".to_string(), 100)])));
        assert!(!m.matches_with(&f, &Vars::from([("injected_ack".to_string(), 101)])));
        assert!(Matcher::parse("seq $nope").unwrap_err().to_string().contains("unknown variable"));
        assert!(!Matcher::parse("tcp syn").unwrap().matches(&f));
        assert!(summary(&f).contains("TCP [R] seq 100"), "{}", summary(&f));
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        let e = Matcher::parse("icmp echo-replies").unwrap_err().to_string();
        assert!(e.contains("unknown word `echo-replies`"), "{e}");
        let e = Matcher::parse("src 10.2.19").unwrap_err().to_string();
        assert!(e.contains("not an IPv4 or IPv6 address"), "{e}");
        assert!(Matcher::parse("  ").is_err());
        assert!(Matcher::parse("port").is_err());
    }

    #[test]
    fn mac_arp_hardware_checksum_and_vxlan_words() {
        let arp = frame(arp_request([172, 17, 0, 2], [172, 17, 0, 1]));
        assert!(Matcher::parse("arp src-mac 02:02:02:02:02:02 dst-mac ff:ff:ff:ff:ff:ff").unwrap().matches(&arp));
        assert!(Matcher::parse("arp-sha 02:02:02:02:02:02 arp-tha 00:00:00:00:00:00").unwrap().matches(&arp));
        assert!(!Matcher::parse("arp-sha 02:42:AC:11:00:02").unwrap().matches(&arp));
        assert!(Matcher::parse("src-mac 02:42").unwrap_err().to_string().contains("not a MAC address"));
        // UDP with a good and a broken checksum.
        let mut good = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .udp(68, 67)
            .write(&mut good, &[1, 2, 3, 4])
            .unwrap();
        let mut bad = good.clone();
        let at = bad.len() - 4 - 2; // the checksum is the UDP header's last 2 bytes
        bad[at] ^= 0xff;
        assert!(Matcher::parse("udp good-csum").unwrap().matches(&frame(good.clone())));
        assert!(Matcher::parse("udp bad-csum port 67").unwrap().matches(&frame(bad.clone())));
        assert!(!Matcher::parse("bad-csum").unwrap().matches(&frame(good)));
        // The kernel's flag, independent of the bytes: a partial checksum
        // (CHECKSUM_PARTIAL) does not verify, yet the kernel vouches for it.
        let partial = Frame { csum_not_ready: true, ..frame(bad.clone()) };
        assert!(Matcher::parse("udp bad-csum csum-not-ready").unwrap().matches(&partial));
        assert!(!Matcher::parse("csum-not-ready").unwrap().matches(&frame(bad)));
        // A VXLAN datagram carrying a SYN.
        let inner = tcp_segment([10, 244, 1, 2], 40000, [10, 244, 2, 3], 80, "S");
        let mut payload = vec![0x08, 0, 0, 0, 0, 0, 1, 0];
        payload.extend_from_slice(&inner);
        let mut outer = Vec::new();
        PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([192, 168, 0, 1], [192, 168, 0, 2], 64)
            .udp(50000, 8472)
            .write(&mut outer, &payload)
            .unwrap();
        let f = frame(outer);
        assert!(Matcher::parse("vxlan inner tcp syn dst 10.244.2.3 port 80").unwrap().matches(&f));
        assert!(Matcher::parse("udp src 192.168.0.1 vxlan").unwrap().matches(&f));
        assert!(!Matcher::parse("vxlan inner tcp rst").unwrap().matches(&f));
        assert!(!Matcher::parse("inner tcp").unwrap().matches(&frame(inner)));
        assert!(Matcher::parse("vxlan inner").unwrap_err().to_string().contains("after `inner`"));
    }

    #[test]
    fn icmpv6_and_ndp_words_and_ipv6_addresses() {
        let (a, b): ([u8; 16], [u8; 16]) = (
            "fd00::1".parse::<std::net::Ipv6Addr>().unwrap().octets(),
            "fd00::2".parse::<std::net::Ipv6Addr>().unwrap().octets(),
        );
        let build = |t: etherparse::Icmpv6Type| {
            let mut out = Vec::new();
            PacketBuilder::ethernet2([2; 6], [4; 6]).ipv6(a, b, 64).icmpv6(t).write(&mut out, &[0u8; 48]).unwrap();
            frame(out)
        };
        let no_route =
            build(etherparse::Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::NoRoute));
        assert!(Matcher::parse("icmp6 no-route src fd00::1 dst fd00::2").unwrap().matches(&no_route));
        assert!(Matcher::parse("ip6 unreachable").unwrap().matches(&no_route));
        assert!(!Matcher::parse("icmp no-route").unwrap().matches(&no_route), "icmp is IPv4");
        assert!(!Matcher::parse("icmp6 admin-prohibited").unwrap().matches(&no_route));
        assert!(!Matcher::parse("ip").unwrap().matches(&no_route));
        assert!(!Matcher::parse("src fd00::2").unwrap().matches(&no_route));
        assert_eq!(summary(&no_route), "IP6 fd00::1 > fd00::2: ICMP6 no-route");
        let port = build(etherparse::Icmpv6Type::DestinationUnreachable(etherparse::icmpv6::DestUnreachableCode::Port));
        assert!(Matcher::parse("port-unreachable").unwrap().matches(&port));
        let ns = build(etherparse::Icmpv6Type::Unknown { type_u8: 135, code_u8: 0, bytes5to8: [0; 4] });
        assert!(Matcher::parse("icmp6 ndp neighbor-solicitation").unwrap().matches(&ns));
        assert!(!Matcher::parse("ndp").unwrap().matches(&no_route));
        // A solicitation built without a target: the summary shows the empty one.
        assert_eq!(ns.headers().summary(0), "IP6 fd00::1 > fd00::2: ICMP6 neighbor-solicitation who-has ::");
        let echo = build(etherparse::Icmpv6Type::EchoReply(etherparse::IcmpEchoHeader { id: 1, seq: 1 }));
        assert!(Matcher::parse("echo-reply").unwrap().matches(&echo));
        assert!(!Matcher::parse("icmp echo-reply").unwrap().matches(&echo));
        for (_, _, n) in crate::wire::icmp::NAMES6 {
            Matcher::parse(&format!("icmp6 {n}")).unwrap_or_else(|e| panic!("icmp6 {n}: {e}"));
        }
    }

    #[test]
    fn every_icmp_name_is_a_matcher_word_and_a_summary() {
        for (_, _, n) in crate::wire::icmp::NAMES {
            Matcher::parse(&format!("icmp {n}")).unwrap_or_else(|e| panic!("icmp {n}: {e}"));
        }
        // A host-prohibited error (type 3 code 10), as REJECT
        // --reject-with icmp-host-prohibited sends it.
        let ip = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
            .ipv4([172, 17, 0, 1], [172, 17, 0, 2], 64)
            .icmpv4(etherparse::Icmpv4Type::DestinationUnreachable(
                etherparse::icmpv4::DestUnreachableHeader::HostProhibited,
            ));
        let mut data = Vec::new();
        ip.write(&mut data, &[0u8; 28]).unwrap();
        let f = Frame::ethernet(0, Direction::In, data);
        assert!(Matcher::parse("icmp host-prohibited").unwrap().matches(&f));
        assert!(Matcher::parse("icmp unreachable").unwrap().matches(&f));
        assert!(!Matcher::parse("icmp admin-prohibited").unwrap().matches(&f));
        assert!(summary(&f).ends_with("ICMP host-prohibited"), "{}", summary(&f));
    }
}
