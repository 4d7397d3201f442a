//! `bridge fdb replace | del` over rtnetlink: forwarding entries of a vxlan
//! device (MAC → remote VTEP) or of a bridge port.

use anyhow::Result;
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::AddressFamily;

use crate::case::object::FdbSpec;
use crate::sys::link::{index_of, nl_error};
use crate::sys::netns::NsCtx;

fn flags(f: &FdbSpec) -> NeighbourFlags {
    if f.master {
        NeighbourFlags::Controller
    } else {
        NeighbourFlags::Own
    }
}

fn dst(f: &FdbSpec) -> Option<NeighbourAttribute> {
    f.dst.map(|d| {
        NeighbourAttribute::Destination(match d {
            std::net::IpAddr::V4(a) => NeighbourAddress::Inet(a),
            std::net::IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        })
    })
}

/// `bridge fdb replace MAC dev DEV [dst IP] self|master`.
pub fn add(ctx: &NsCtx, f: &FdbSpec) -> Result<()> {
    let idx = index_of(ctx, &f.dev)?;
    let mut req = ctx.nl.neighbours().add_bridge(idx, &f.lladdr.0).flags(flags(f)).replace();
    if let Some(d) = dst(f) {
        req.message_mut().attributes.push(d);
    }
    ctx.block_on(req.execute()).map_err(|e| nl_error(&f.show("replace"), e))
}

/// `bridge fdb del MAC dev DEV [dst IP] self|master`.
pub fn del(ctx: &NsCtx, f: &FdbSpec) -> Result<()> {
    let idx = index_of(ctx, &f.dev)?;
    let mut m = NeighbourMessage::default();
    m.header.family = AddressFamily::Bridge;
    m.header.ifindex = idx;
    m.header.state = NeighbourState::Permanent;
    m.header.flags = flags(f);
    m.attributes.push(NeighbourAttribute::LinkLayerAddress(f.lladdr.0.to_vec()));
    m.attributes.extend(dst(f));
    ctx.block_on(ctx.nl.neighbours().del(m).execute()).map_err(|e| nl_error(&f.show("del"), e))
}
