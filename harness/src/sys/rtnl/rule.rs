//! `ip rule add | del` over rtnetlink: policy routing by source,
//! destination, fwmark and interface, to a table or a verdict.

use std::net::IpAddr;

use anyhow::Result;
use netlink_packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use netlink_packet_route::AddressFamily;

use crate::case::object::{RuleObj, RuleType};
use crate::sys::link::nl_error;
use crate::sys::netns::NsCtx;

fn message(r: &RuleObj) -> RuleMessage {
    let mut m = RuleMessage::default();
    m.header.family = if r.is_v6() { AddressFamily::Inet6 } else { AddressFamily::Inet };
    m.header.action = match r.kind {
        RuleType::Table => RuleAction::ToTable,
        RuleType::Blackhole => RuleAction::Blackhole,
        RuleType::Unreachable => RuleAction::Unreachable,
        RuleType::Prohibit => RuleAction::Prohibit,
    };
    if let Some(t) = r.table {
        m.header.table = if t < 256 { t as u8 } else { 252 };
        m.attributes.push(RuleAttribute::Table(t));
    }
    if let Some(p) = r.priority {
        m.attributes.push(RuleAttribute::Priority(p));
    }
    let prefix = |c: crate::case::syntax::Cidr| -> (IpAddr, u8) { (c.addr, c.prefix) };
    if let Some((a, l)) = r.from.map(prefix) {
        m.header.src_len = l;
        m.attributes.push(RuleAttribute::Source(a));
    }
    if let Some((a, l)) = r.to.map(prefix) {
        m.header.dst_len = l;
        m.attributes.push(RuleAttribute::Destination(a));
    }
    if let Some(v) = r.fwmark {
        m.attributes.push(RuleAttribute::FwMark(v));
        m.attributes.push(RuleAttribute::FwMask(r.fwmask.unwrap_or(u32::MAX)));
    }
    if let Some(d) = &r.iif {
        m.attributes.push(RuleAttribute::Iifname(d.clone()));
    }
    if let Some(d) = &r.oif {
        m.attributes.push(RuleAttribute::Oifname(d.clone()));
    }
    m
}

/// `ip rule add ...`.
pub fn add(ctx: &NsCtx, r: &RuleObj) -> Result<()> {
    let mut req = ctx.nl.rule().add();
    *req.message_mut() = message(r);
    ctx.block_on(req.execute()).map_err(|e| nl_error(&r.show("add"), e))
}

/// `ip rule del ...`.
pub fn del(ctx: &NsCtx, r: &RuleObj) -> Result<()> {
    ctx.block_on(ctx.nl.rule().del(message(r)).execute()).map_err(|e| nl_error(&r.show("del"), e))
}
