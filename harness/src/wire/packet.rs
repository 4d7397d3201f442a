//! What a captured frame is, in the few words a case uses to count it, and a
//! one-line summary in tcpdump's spirit for evidence and failure messages.
//!
//! Matcher grammar (all terms must hold):
//! `arp | ip | icmp | tcp | udp`, `request | reply` (ARP),
//! every ICMP word of [`crate::wire::icmp::NAMES`] (`echo-reply`,
//! `host-prohibited`, `admin-prohibited`, `frag-needed` …),
//! `syn | syn-ack | rst | fin | ack-only` (TCP), `src A`, `dst A`, `port N`,
//! `seq N` (TCP sequence number; `N` may be a probe variable such as
//! `$injected_ack`), `in | out` (direction on the capturing interface).

use std::net::Ipv4Addr;

use anyhow::{anyhow, bail, Result};
use etherparse::{ArpOperation, NetSlice, SlicedPacket, TransportSlice};
use serde::Serialize;

/// One captured frame.
#[derive(Debug, Clone)]
pub struct Frame {
    /// Kernel receive timestamp, ns since the Unix epoch.
    pub ts_ns: u64,
    pub outgoing: bool,
    pub data: Vec<u8>,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct View {
    pub arp: Option<Arp>,
    pub src: Option<Ipv4Addr>,
    pub dst: Option<Ipv4Addr>,
    pub icmp: Option<(u8, u8)>,
    pub tcp: Option<Tcp>,
    pub udp: Option<(u16, u16)>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Arp {
    pub request: bool,
    pub sender: Ipv4Addr,
    pub target: Ipv4Addr,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tcp {
    pub sport: u16,
    pub dport: u16,
    pub seq: u32,
    pub ack: u32,
    pub syn: bool,
    pub ackf: bool,
    pub rst: bool,
    pub fin: bool,
    pub psh: bool,
    pub window: u16,
    pub len: usize,
}

fn v4(b: &[u8]) -> Option<Ipv4Addr> {
    <[u8; 4]>::try_from(b).ok().map(Ipv4Addr::from)
}

pub fn view(eth: &[u8]) -> View {
    let mut v = View::default();
    let Ok(p) = SlicedPacket::from_ethernet(eth) else {
        return v;
    };
    match &p.net {
        Some(NetSlice::Arp(a)) => {
            if let (Some(s), Some(t)) = (v4(a.sender_protocol_addr()), v4(a.target_protocol_addr())) {
                v.arp = Some(Arp { request: a.operation() == ArpOperation::REQUEST, sender: s, target: t });
            }
        }
        Some(NetSlice::Ipv4(ip)) => {
            v.src = Some(ip.header().source_addr());
            v.dst = Some(ip.header().destination_addr());
        }
        _ => {}
    }
    match &p.transport {
        Some(TransportSlice::Icmpv4(i)) => v.icmp = Some((i.type_u8(), i.code_u8())),
        Some(TransportSlice::Tcp(t)) => {
            v.tcp = Some(Tcp {
                sport: t.source_port(),
                dport: t.destination_port(),
                seq: t.sequence_number(),
                ack: t.acknowledgment_number(),
                syn: t.syn(),
                ackf: t.ack(),
                rst: t.rst(),
                fin: t.fin(),
                psh: t.psh(),
                window: t.window_size(),
                len: t.payload().len(),
            })
        }
        Some(TransportSlice::Udp(u)) => v.udp = Some((u.source_port(), u.destination_port())),
        _ => {}
    }
    v
}

/// A one-line description, e.g. `IP 10.2.19.80 > 10.2.19.78: ICMP echo-reply`.
pub fn summary(eth: &[u8]) -> String {
    let v = view(eth);
    if let Some(a) = &v.arp {
        return if a.request {
            format!("ARP request who-has {} tell {}", a.target, a.sender)
        } else {
            format!("ARP reply {} is-at (to {})", a.sender, a.target)
        };
    }
    let (Some(s), Some(d)) = (v.src, v.dst) else {
        let ethertype = eth.get(12..14).map(|b| u16::from_be_bytes([b[0], b[1]])).unwrap_or(0);
        return match ethertype {
            0x86dd => format!("IPv6, {} bytes", eth.len()),
            t => format!("ethertype 0x{t:04x}, {} bytes", eth.len()),
        };
    };
    if let Some((t, c)) = v.icmp {
        return format!("IP {s} > {d}: ICMP {}", crate::wire::icmp::name(t, c));
    }
    if let Some(t) = &v.tcp {
        let mut flags = String::new();
        for (on, ch) in [(t.syn, 'S'), (t.fin, 'F'), (t.rst, 'R'), (t.psh, 'P'), (t.ackf, '.')] {
            if on {
                flags.push(ch);
            }
        }
        return format!(
            "IP {s}:{} > {d}:{}: TCP [{flags}] seq {} ack {} win {} len {}",
            t.sport, t.dport, t.seq, t.ack, t.window, t.len
        );
    }
    if let Some((sp, dp)) = v.udp {
        return format!("IP {s}:{sp} > {d}:{dp}: UDP");
    }
    format!("IP {s} > {d}")
}

#[derive(Debug, Clone, PartialEq)]
enum Term {
    Arp,
    Ip,
    Icmp,
    Tcp,
    Udp,
    Request,
    Reply,
    IcmpType(u8, Option<u8>),
    Syn,
    SynAck,
    Rst,
    Fin,
    AckOnly,
    Src(Ipv4Addr),
    Dst(Ipv4Addr),
    Port(u16),
    Seq(SeqRef),
    In,
    Out,
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
            let mut addr = |kind: &str| -> Result<Ipv4Addr> {
                let a = words.next().ok_or_else(|| anyhow!("`{kind}` needs an IPv4 address"))?;
                a.parse().map_err(|_| anyhow!("`{kind} {a}`: not an IPv4 address"))
            };
            terms.push(match w {
                "arp" => Term::Arp,
                "ip" => Term::Ip,
                "icmp" => Term::Icmp,
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
                other => match crate::wire::icmp::parse(other) {
                    Some((ty, code)) => Term::IcmpType(ty, code),
                    None => bail!(
                        "unknown word `{other}` (known: arp ip icmp tcp udp request reply {} \
                         syn syn-ack rst fin ack-only src A dst A port N seq N in out)",
                        crate::wire::icmp::words()
                    ),
                },
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
        let v = view(&f.data);
        self.terms.iter().all(|t| match t {
            Term::Arp => v.arp.is_some(),
            Term::Ip => v.src.is_some(),
            Term::Icmp => v.icmp.is_some(),
            Term::Tcp => v.tcp.is_some(),
            Term::Udp => v.udp.is_some(),
            Term::Request => v.arp.as_ref().is_some_and(|a| a.request),
            Term::Reply => v.arp.as_ref().is_some_and(|a| !a.request),
            Term::IcmpType(ty, code) => v.icmp.is_some_and(|(t, c)| t == *ty && code.is_none_or(|k| k == c)),
            Term::Syn => v.tcp.as_ref().is_some_and(|t| t.syn && !t.ackf),
            Term::SynAck => v.tcp.as_ref().is_some_and(|t| t.syn && t.ackf),
            Term::Rst => v.tcp.as_ref().is_some_and(|t| t.rst),
            Term::Fin => v.tcp.as_ref().is_some_and(|t| t.fin),
            Term::AckOnly => v.tcp.as_ref().is_some_and(|t| t.ackf && !t.syn && !t.rst && !t.fin && t.len == 0),
            Term::Src(a) => v.src == Some(*a) || v.arp.as_ref().is_some_and(|x| x.sender == *a),
            Term::Dst(a) => v.dst == Some(*a) || v.arp.as_ref().is_some_and(|x| x.target == *a),
            Term::Port(p) => {
                v.tcp.as_ref().is_some_and(|t| t.sport == *p || t.dport == *p)
                    || v.udp.is_some_and(|(s, d)| s == *p || d == *p)
            }
            Term::Seq(s) => {
                let want = match s {
                    SeqRef::Lit(n) => Some(*n as u64),
                    SeqRef::Var(name) => vars.get(name).copied(),
                };
                v.tcp.as_ref().is_some_and(|t| want == Some(t.seq as u64))
            }
            Term::In => !f.outgoing,
            Term::Out => f.outgoing,
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

    fn frame(data: Vec<u8>) -> Frame {
        Frame { ts_ns: 0, outgoing: false, data }
    }

    #[test]
    fn echo_reply_is_matched_and_summarised() {
        let f = frame(icmp_echo([10, 2, 19, 80], [10, 2, 19, 78], true));
        assert!(Matcher::parse("icmp echo-reply").unwrap().matches(&f));
        assert!(Matcher::parse("icmp echo-reply src 10.2.19.80 in").unwrap().matches(&f));
        assert!(!Matcher::parse("icmp echo-request").unwrap().matches(&f));
        assert!(!Matcher::parse("echo-reply out").unwrap().matches(&f));
        assert!(!Matcher::parse("arp").unwrap().matches(&f));
        assert_eq!(summary(&f.data), "IP 10.2.19.80 > 10.2.19.78: ICMP echo-reply");
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
        assert!(summary(&f.data).contains("TCP [R] seq 100"), "{}", summary(&f.data));
    }

    #[test]
    fn bad_matchers_say_what_is_wrong() {
        let e = Matcher::parse("icmp echo-replies").unwrap_err().to_string();
        assert!(e.contains("unknown word `echo-replies`"), "{e}");
        let e = Matcher::parse("src 10.2.19").unwrap_err().to_string();
        assert!(e.contains("not an IPv4 address"), "{e}");
        assert!(Matcher::parse("  ").is_err());
        assert!(Matcher::parse("port").is_err());
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
        let f = Frame { ts_ns: 0, outgoing: false, data };
        assert!(Matcher::parse("icmp host-prohibited").unwrap().matches(&f));
        assert!(Matcher::parse("icmp unreachable").unwrap().matches(&f));
        assert!(!Matcher::parse("icmp admin-prohibited").unwrap().matches(&f));
        assert!(summary(&f.data).ends_with("ICMP host-prohibited"), "{}", summary(&f.data));
    }
}
