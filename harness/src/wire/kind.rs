//! The kinds of frame a person tells apart on a timeline, and which kind
//! answers which: one vocabulary for the explainer ("ARP request seen, no
//! ARP reply") and the report's colours and legend.

use crate::wire::headers::{ArpOp, Headers};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FrameKind {
    ArpRequest,
    ArpReply,
    EchoRequest,
    EchoReply,
    /// ICMP (IPv4) destination unreachable, redirect, time exceeded,
    /// parameter problem; ICMPv6 errors (types below 128).
    IcmpError,
    /// NDP neighbor solicitation (ICMPv6 135): IPv6's ARP request.
    NeighSolicit,
    /// NDP neighbor advertisement (ICMPv6 136).
    NeighAdvert,
    /// SYN without ACK: a connection asked for.
    TcpSyn,
    TcpSynAck,
    TcpRst,
    /// Any other TCP segment (data, ACKs, FINs).
    Tcp,
    Other,
}

impl FrameKind {
    pub fn of(h: &Headers) -> FrameKind {
        if let Some(a) = &h.arp {
            return match a.op {
                ArpOp::Request => FrameKind::ArpRequest,
                ArpOp::Reply => FrameKind::ArpReply,
                ArpOp::Other(_) => FrameKind::Other,
            };
        }
        if let Some(i) = h.icmpv4() {
            return match i.kind {
                8 => FrameKind::EchoRequest,
                0 => FrameKind::EchoReply,
                3 | 5 | 11 | 12 => FrameKind::IcmpError,
                _ => FrameKind::Other,
            };
        }
        if let Some(i) = h.icmpv6() {
            return match i.kind {
                128 => FrameKind::EchoRequest,
                129 => FrameKind::EchoReply,
                135 => FrameKind::NeighSolicit,
                136 => FrameKind::NeighAdvert,
                t if crate::wire::icmp::is_error6(t) => FrameKind::IcmpError,
                _ => FrameKind::Other,
            };
        }
        if let Some(t) = &h.tcp {
            let f = t.flags;
            return match () {
                _ if f.rst => FrameKind::TcpRst,
                _ if f.syn && f.ack => FrameKind::TcpSynAck,
                _ if f.syn && !f.fin => FrameKind::TcpSyn,
                _ => FrameKind::Tcp,
            };
        }
        FrameKind::Other
    }

    /// How a person names it (`ARP request`, `TCP SYN-ACK`).
    pub fn name(self) -> &'static str {
        match self {
            FrameKind::ArpRequest => "ARP request",
            FrameKind::ArpReply => "ARP reply",
            FrameKind::EchoRequest => "ICMP echo-request",
            FrameKind::EchoReply => "ICMP echo-reply",
            FrameKind::IcmpError => "ICMP error",
            FrameKind::NeighSolicit => "NDP neighbor-solicitation",
            FrameKind::NeighAdvert => "NDP neighbor-advertisement",
            FrameKind::TcpSyn => "TCP SYN",
            FrameKind::TcpSynAck => "TCP SYN-ACK",
            FrameKind::TcpRst => "TCP RST",
            FrameKind::Tcp => "TCP",
            FrameKind::Other => "other",
        }
    }

    /// The kind a healthy network answers this one with, if any.
    pub fn answer(self) -> Option<FrameKind> {
        match self {
            FrameKind::ArpRequest => Some(FrameKind::ArpReply),
            FrameKind::NeighSolicit => Some(FrameKind::NeighAdvert),
            FrameKind::EchoRequest => Some(FrameKind::EchoReply),
            FrameKind::TcpSyn => Some(FrameKind::TcpSynAck),
            _ => None,
        }
    }
}
