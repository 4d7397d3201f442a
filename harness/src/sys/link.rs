//! rtnetlink operations the fixture's bridges and veths use, lookups by
//! name and index, the neighbour table and link counters, run on a
//! namespace's own thread (see [`crate::sys::netns`]). Typed objects of
//! every kind go through [`crate::sys::rtnl`].

use std::net::IpAddr;

use anyhow::{anyhow, Result};
use futures::TryStreamExt;
use netlink_packet_route::link::{LinkAttribute, LinkMessage};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};
use rtnetlink::{LinkBridge, LinkUnspec, LinkVeth};
use serde::Serialize;

use crate::sys::netns::NsCtx;

/// Turns an rtnetlink error into one that carries the kernel's extended-ACK
/// text ("Error: ...") when the kernel gave one.
pub fn nl_error(what: &str, e: rtnetlink::Error) -> anyhow::Error {
    match &e {
        rtnetlink::Error::NetlinkError(msg) => {
            let errno = msg.to_io();
            match ext_ack_text(&msg.header) {
                Some(t) => anyhow!("{what}: {errno} (kernel: {t})"),
                None => anyhow!("{what}: {errno}"),
            }
        }
        _ => anyhow!("{what}: {e}"),
    }
}

/// `NLMSGERR_ATTR_MSG` from the bytes that follow the error code. With
/// `NETLINK_CAP_ACK` they are the 16-byte request header, then TLVs.
pub fn ext_ack_text(after_code: &[u8]) -> Option<String> {
    let mut tlvs = after_code.get(16..)?;
    while tlvs.len() >= 4 {
        let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
        let kind = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
        if len < 4 || len > tlvs.len() {
            return None;
        }
        if kind == 1 {
            let text = &tlvs[4..len];
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            return Some(String::from_utf8_lossy(&text[..end]).into_owned());
        }
        let next = ((len + 3) & !3).min(tlvs.len());
        tlvs = &tlvs[next..];
    }
    None
}

pub fn get_link(ctx: &NsCtx, name: &str) -> Result<LinkMessage> {
    let mut req = ctx.nl.link().get().match_name(name.to_string()).execute();
    ctx.block_on(async { req.try_next().await })
        .map_err(|e| nl_error(&format!("looking up link {name}"), e))?
        .ok_or_else(|| anyhow!("no link named {name}"))
}

/// Whether the kernel has seen `name`'s carrier (operstate UP). The
/// linkwatch work that sets it (`rfc2863_policy`) then activates the
/// device's qdisc (`dev_activate`); until then a frame sent is dropped by
/// `noop_qdisc`.
pub fn oper_up(ctx: &NsCtx, name: &str) -> Result<bool> {
    use netlink_packet_route::link::State;
    Ok(get_link(ctx, name)?.attributes.iter().any(|a| matches!(a, LinkAttribute::OperState(State::Up))))
}

pub fn index_of(ctx: &NsCtx, name: &str) -> Result<u32> {
    Ok(get_link(ctx, name)?.header.index)
}

pub fn set_up_by_name(ctx: &NsCtx, name: &str) -> Result<()> {
    let idx = index_of(ctx, name)?;
    let msg = LinkUnspec::new_with_index(idx).up().build();
    ctx.block_on(ctx.nl.link().set(msg).execute()).map_err(|e| nl_error(&format!("setting {name} up"), e))
}

pub fn add_bridge(ctx: &NsCtx, name: &str, tx_queue_len: Option<u32>) -> Result<()> {
    let mut b = LinkBridge::new(name);
    if let Some(q) = tx_queue_len {
        b = b.txqueuelen(q);
    }
    ctx.block_on(ctx.nl.link().add(b.build()).execute()).map_err(|e| nl_error(&format!("creating bridge {name}"), e))
}

/// Creates a veth pair whose peer is born directly in another namespace.
pub fn add_veth(ctx: &NsCtx, name: &str, peer: &str, peer_ns_fd: i32) -> Result<()> {
    let mut msg = LinkVeth::new(name, peer).build();
    // The builder puts the peer's name in InfoVeth::Peer; add the namespace
    // to that same peer message.
    use netlink_packet_route::link::{InfoData, InfoVeth, LinkInfo};
    for attr in msg.attributes.iter_mut() {
        if let LinkAttribute::LinkInfo(infos) = attr {
            for info in infos.iter_mut() {
                if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) = info {
                    p.attributes.push(LinkAttribute::NetNsFd(peer_ns_fd));
                }
            }
        }
    }
    ctx.block_on(ctx.nl.link().add(msg).execute())
        .map_err(|e| nl_error(&format!("creating veth {name} (peer {peer})"), e))
}

pub fn set_master(ctx: &NsCtx, name: &str, master: &str) -> Result<()> {
    let idx = index_of(ctx, name)?;
    let m = index_of(ctx, master)?;
    let msg = LinkUnspec::new_with_index(idx).controller(m).build();
    ctx.block_on(ctx.nl.link().set(msg).execute()).map_err(|e| nl_error(&format!("attaching {name} to {master}"), e))
}

pub fn set_mtu(ctx: &NsCtx, name: &str, mtu: u32) -> Result<()> {
    let idx = index_of(ctx, name)?;
    let msg = LinkUnspec::new_with_index(idx).mtu(mtu).build();
    ctx.block_on(ctx.nl.link().set(msg).execute()).map_err(|e| nl_error(&format!("setting mtu {mtu} on {name}"), e))
}

pub fn set_tx_queue_len(ctx: &NsCtx, name: &str, len: u32) -> Result<()> {
    let idx = index_of(ctx, name)?;
    let msg = LinkUnspec::new_with_index(idx).txqueuelen(len).build();
    ctx.block_on(ctx.nl.link().set(msg).execute())
        .map_err(|e| nl_error(&format!("setting tx_queue_len {len} on {name}"), e))
}

pub fn add_address(ctx: &NsCtx, name: &str, ip: IpAddr, prefix: u8) -> Result<()> {
    let idx = index_of(ctx, name)?;
    ctx.block_on(ctx.nl.address().add(idx, ip, prefix).execute())
        .map_err(|e| nl_error(&format!("adding {ip}/{prefix} to {name}"), e))
}

#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Neighbour {
    pub ip: IpAddr,
    pub dev: String,
    pub state: String,
    /// The link-layer address (`02:42:ac:11:00:02`), when the entry has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lladdr: Option<String>,
}

/// The namespace's IPv4/IPv6 neighbour table.
pub fn neighbours(ctx: &NsCtx) -> Result<Vec<Neighbour>> {
    let msgs: Vec<_> = ctx
        .block_on(ctx.nl.neighbours().get().execute().try_collect::<Vec<_>>())
        .map_err(|e| nl_error("dumping neighbours", e))?;
    let mut out = Vec::new();
    for m in msgs {
        let ip = m.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
            _ => None,
        });
        let Some(ip) = ip else { continue };
        let dev = link_name(ctx, m.header.ifindex).unwrap_or_else(|_| m.header.ifindex.to_string());
        let lladdr = m.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::LinkLayerAddress(b) if !b.is_empty() => {
                Some(b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":"))
            }
            _ => None,
        });
        out.push(Neighbour { ip, dev, state: neigh_state_name(m.header.state), lladdr });
    }
    Ok(out)
}

pub fn neigh_state_name(s: NeighbourState) -> String {
    match s {
        NeighbourState::Incomplete => "INCOMPLETE".into(),
        NeighbourState::Reachable => "REACHABLE".into(),
        NeighbourState::Stale => "STALE".into(),
        NeighbourState::Delay => "DELAY".into(),
        NeighbourState::Probe => "PROBE".into(),
        NeighbourState::Failed => "FAILED".into(),
        NeighbourState::Noarp => "NOARP".into(),
        NeighbourState::Permanent => "PERMANENT".into(),
        NeighbourState::None => "NONE".into(),
        NeighbourState::Other(v) => format!("0x{v:x}"),
        _ => format!("{s:?}").to_uppercase(),
    }
}

pub fn link_name(ctx: &NsCtx, index: u32) -> Result<String> {
    let mut req = ctx.nl.link().get().match_index(index).execute();
    let msg = ctx
        .block_on(async { req.try_next().await })
        .map_err(|e| nl_error("looking up link by index", e))?
        .ok_or_else(|| anyhow!("no link with index {index}"))?;
    msg.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .ok_or_else(|| anyhow!("link {index} has no name"))
}

/// Per-link counters that witness drops: (name, value) pairs from IFLA_STATS64.
pub fn link_counters(ctx: &NsCtx, name: &str) -> Result<Vec<(String, u64)>> {
    let msg = get_link(ctx, name)?;
    let mut out = Vec::new();
    for a in &msg.attributes {
        match a {
            LinkAttribute::Stats64(s) => {
                out.push(("rx_packets".into(), s.rx_packets));
                out.push(("tx_packets".into(), s.tx_packets));
                out.push(("rx_dropped".into(), s.rx_dropped));
                out.push(("tx_dropped".into(), s.tx_dropped));
                out.push(("rx_errors".into(), s.rx_errors));
                out.push(("tx_errors".into(), s.tx_errors));
            }
            LinkAttribute::TxQueueLen(q) => out.push(("tx_queue_len".into(), *q as u64)),
            LinkAttribute::Mtu(m) => out.push(("mtu".into(), *m as u64)),
            LinkAttribute::LinkInfo(infos) => out.extend(port_flags(infos)),
            _ => {}
        }
    }
    Ok(out)
}

/// A bridge port's flags (IFLA_INFO_SLAVE_DATA of kind "bridge"), 0 or 1.
fn port_flags(infos: &[netlink_packet_route::link::LinkInfo]) -> Vec<(String, u64)> {
    use netlink_packet_route::link::{InfoBridgePort, InfoPortData, LinkInfo};
    let mut out = Vec::new();
    for i in infos {
        if let LinkInfo::PortData(InfoPortData::BridgePort(port)) = i {
            for a in port {
                match a {
                    InfoBridgePort::HairpinMode(x) => out.push(("hairpin".into(), u64::from(*x))),
                    InfoBridgePort::Learning(x) => out.push(("learning".into(), u64::from(*x))),
                    InfoBridgePort::Isolated(x) => out.push(("isolated".into(), u64::from(*x))),
                    _ => {}
                }
            }
        }
    }
    out
}

/// All link names in the namespace.
pub fn link_names(ctx: &NsCtx) -> Result<Vec<String>> {
    let msgs: Vec<_> = ctx
        .block_on(ctx.nl.link().get().execute().try_collect::<Vec<_>>())
        .map_err(|e| nl_error("dumping links", e))?;
    Ok(msgs
        .iter()
        .filter_map(|m| {
            m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ext_ack_text_is_found_after_the_echoed_header() {
        let mut b = vec![0u8; 16];
        let msg = b"Exclusivity flag on, cannot modify\0";
        let len = (4 + msg.len()) as u16;
        b.extend_from_slice(&len.to_ne_bytes());
        b.extend_from_slice(&1u16.to_ne_bytes());
        b.extend_from_slice(msg);
        assert_eq!(ext_ack_text(&b).as_deref(), Some("Exclusivity flag on, cannot modify"));
        assert_eq!(ext_ack_text(&b[..16]), None);
    }
}
