//! `ip neigh replace | del` over rtnetlink.

use anyhow::Result;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::AddressFamily;

use crate::case::object::{NeighSpec, NudState};
use crate::sys::link::{index_of, nl_error};
use crate::sys::netns::NsCtx;

fn state(n: NudState) -> NeighbourState {
    match n {
        NudState::Permanent => NeighbourState::Permanent,
        NudState::Reachable => NeighbourState::Reachable,
        NudState::Stale => NeighbourState::Stale,
        NudState::Noarp => NeighbourState::Noarp,
    }
}

/// `ip neigh replace ADDR [lladdr MAC] dev DEV nud STATE`.
pub fn add(ctx: &NsCtx, n: &NeighSpec) -> Result<()> {
    let idx = index_of(ctx, &n.dev)?;
    let mut req = ctx.nl.neighbours().add(idx, n.address).state(state(n.nud)).replace();
    if n.proxy {
        req = req.flags(NeighbourFlags::Proxy);
    }
    if let Some(m) = n.lladdr {
        req = req.link_layer_address(&m.0);
    }
    ctx.block_on(req.execute()).map_err(|e| nl_error(&n.show("replace"), e))
}

/// `ip neigh del ADDR dev DEV`.
pub fn del(ctx: &NsCtx, n: &NeighSpec) -> Result<()> {
    let idx = index_of(ctx, &n.dev)?;
    let mut m = NeighbourMessage::default();
    m.header.family = if n.address.is_ipv4() { AddressFamily::Inet } else { AddressFamily::Inet6 };
    m.header.ifindex = idx;
    if n.proxy {
        m.header.flags = NeighbourFlags::Proxy;
    }
    m.attributes.push(NeighbourAttribute::Destination(match n.address {
        std::net::IpAddr::V4(a) => NeighbourAddress::Inet(a),
        std::net::IpAddr::V6(a) => NeighbourAddress::Inet6(a),
    }));
    ctx.block_on(ctx.nl.neighbours().del(m).execute()).map_err(|e| nl_error(&n.show("del"), e))
}
