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
    /// parameter problem.
    IcmpError,
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
            FrameKind::EchoRequest => Some(FrameKind::EchoReply),
            FrameKind::TcpSyn => Some(FrameKind::TcpSynAck),
            _ => None,
        }
    }
}
