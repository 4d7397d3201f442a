//! `ip addr add | del ADDR/PREFIX dev DEV [nodad]` over rtnetlink.

use anyhow::Result;
use netlink_packet_route::address::{AddressAttribute, AddressFlags};

use crate::case::spec::Cidr;
use crate::sys::link::{index_of, nl_error};
use crate::sys::netns::NsCtx;

/// Adds `a` to `dev`; `nodad` skips IPv6 duplicate address detection so
/// the address is usable at once.
pub fn add(ctx: &NsCtx, dev: &str, a: Cidr, nodad: bool) -> Result<()> {
    let idx = index_of(ctx, dev)?;
    let mut req = ctx.nl.address().add(idx, a.addr, a.prefix);
    if nodad {
        req.message_mut().attributes.push(AddressAttribute::Flags(AddressFlags::Nodad));
    }
    ctx.block_on(req.execute()).map_err(|e| nl_error(&format!("addr add {a} dev {dev}"), e))
}

/// Deletes `a` from `dev`.
pub fn del(ctx: &NsCtx, dev: &str, a: Cidr) -> Result<()> {
    let idx = index_of(ctx, dev)?;
    let msg = {
        let mut m = netlink_packet_route::address::AddressMessage::default();
        m.header.index = idx;
        m.header.prefix_len = a.prefix;
        m.header.family = match a.addr {
            std::net::IpAddr::V4(_) => netlink_packet_route::AddressFamily::Inet,
            std::net::IpAddr::V6(_) => netlink_packet_route::AddressFamily::Inet6,
        };
        m.attributes.push(AddressAttribute::Address(a.addr));
        if a.addr.is_ipv4() {
            m.attributes.push(AddressAttribute::Local(a.addr));
        }
        m
    };
    ctx.block_on(ctx.nl.address().del(msg).execute()).map_err(|e| nl_error(&format!("addr del {a} dev {dev}"), e))
}

/// Addresses of the namespace still tentative (IPv6 duplicate address
/// detection not finished, even when disabled: the kernel completes it from
/// a workqueue after the link comes up), as `addr dev`.
pub fn tentative(ctx: &NsCtx) -> Result<Vec<String>> {
    use futures::TryStreamExt;
    let msgs: Vec<_> = ctx
        .block_on(ctx.nl.address().get().execute().try_collect::<Vec<_>>())
        .map_err(|e| nl_error("dumping addresses", e))?;
    let mut out = Vec::new();
    for m in msgs {
        let flags = m.attributes.iter().find_map(|a| match a {
            AddressAttribute::Flags(f) => Some(*f),
            _ => None,
        });
        if flags.is_some_and(|f| f.contains(AddressFlags::Tentative) && !f.contains(AddressFlags::Dadfailed)) {
            let a = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(a) => Some(*a),
                _ => None,
            });
            out.push(format!("{} (ifindex {})", a.map(|a| a.to_string()).unwrap_or_default(), m.header.index));
        }
    }
    Ok(out)
}
