//! `ip route add | del` over rtnetlink: IPv4 and IPv6, via/dev/onlink,
//! types blackhole/unreachable/prohibit, table, metric, proto.

use std::net::IpAddr;

use anyhow::Result;
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteMessage, RouteProtocol, RouteScope, RouteType as NlType, RouteVia,
};
use netlink_packet_route::AddressFamily;

use crate::case::object::{RouteObj, RouteType};
use crate::case::spec::RouteDst;
use crate::sys::link::{index_of, nl_error};
use crate::sys::netns::NsCtx;

fn message(ctx: &NsCtx, r: &RouteObj) -> Result<RouteMessage> {
    let oif = match &r.dev {
        Some(d) => Some(index_of(ctx, d)?),
        None => None,
    };
    Ok(message_with(r, oif))
}

/// The `RTM_NEWROUTE`/`RTM_DELROUTE` body of `r`, out of interface `oif`
/// (the index of `r.dev`, which the caller knows or looked up).
pub fn message_with(r: &RouteObj, oif: Option<u32>) -> RouteMessage {
    let mut m = RouteMessage::default();
    let v6 = r.v6();
    m.header.address_family = if v6 { AddressFamily::Inet6 } else { AddressFamily::Inet };
    m.header.table = 254;
    m.header.protocol = match r.proto.as_deref() {
        Some("boot") => RouteProtocol::Boot,
        Some("kernel") => RouteProtocol::Kernel,
        Some("dhcp") => RouteProtocol::Dhcp,
        Some("ra") => RouteProtocol::Ra,
        Some(n) if n.parse::<u8>().is_ok() => RouteProtocol::from(n.parse::<u8>().unwrap_or(4)),
        _ => RouteProtocol::Static,
    };
    m.header.kind = match r.kind {
        RouteType::Unicast => NlType::Unicast,
        RouteType::Blackhole => NlType::BlackHole,
        RouteType::Unreachable => NlType::Unreachable,
        RouteType::Prohibit => NlType::Prohibit,
    };
    m.header.scope = match (r.kind, r.via) {
        (RouteType::Unicast, None) => RouteScope::Link,
        _ => RouteScope::Universe,
    };
    if let RouteDst::Net(c) = r.to {
        m.header.destination_prefix_length = c.prefix;
        m.attributes.push(RouteAttribute::Destination(addr(c.addr)));
    }
    match r.via {
        Some(IpAddr::V4(g)) => m.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet(g))),
        Some(IpAddr::V6(g)) if v6 => m.attributes.push(RouteAttribute::Gateway(RouteAddress::Inet6(g))),
        Some(IpAddr::V6(g)) => m.attributes.push(RouteAttribute::Via(RouteVia::Inet6(g))),
        None => {}
    }
    if let Some(i) = oif {
        m.attributes.push(RouteAttribute::Oif(i));
    }
    if r.onlink {
        m.header.flags |= RouteFlags::Onlink;
    }
    if let Some(t) = r.table {
        if t < 256 {
            m.header.table = t as u8;
        } else {
            m.header.table = 252; // RT_TABLE_COMPAT: the attribute carries it
        }
        m.attributes.push(RouteAttribute::Table(t));
    }
    if let Some(p) = r.metric {
        m.attributes.push(RouteAttribute::Priority(p));
    }
    m
}

fn addr(a: IpAddr) -> RouteAddress {
    match a {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

/// `ip route add ...`.
pub fn add(ctx: &NsCtx, r: &RouteObj) -> Result<()> {
    let m = message(ctx, r)?;
    ctx.block_on(ctx.nl.route().add(m).execute()).map_err(|e| nl_error(&r.show("add"), e))
}

/// `ip route del ...`.
pub fn del(ctx: &NsCtx, r: &RouteObj) -> Result<()> {
    let m = message(ctx, r)?;
    ctx.block_on(ctx.nl.route().del(m).execute()).map_err(|e| nl_error(&r.show("del"), e))
}
