//! rtnetlink operations the fixture's bridges and veths use, lookups by
//! name and index, the neighbour table and link counters, run on a
//! namespace's own thread (see [`crate::sys::netns`]). Typed objects of
//! every kind go through [`crate::sys::rtnl`].

use std::net::{IpAddr, Ipv4Addr};

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use futures::{StreamExt, TryStreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL, NLM_F_REQUEST};
use netlink_packet_route::link::{LinkAttribute, LinkMessage, State};
use netlink_packet_route::neighbour::{NeighbourAddress, NeighbourAttribute, NeighbourState};
use netlink_packet_route::RouteNetlinkMessage;
use rtnetlink::{AddressMessageBuilder, LinkBridge, LinkUnspec, LinkVeth};
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

// ---- batches: a topology in few round trips -----------------------------

/// One request of a [`batch`], and what it does (for its error).
pub struct Req {
    msg: RouteNetlinkMessage,
    flags: u16,
    what: String,
}

impl Req {
    /// The message, its netlink flags and what it does (for its error).
    pub fn into_parts(self) -> (RouteNetlinkMessage, u16, String) {
        (self.msg, self.flags, self.what)
    }
}

const CREATE: u16 = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL;
const CHANGE: u16 = NLM_F_REQUEST | NLM_F_ACK;

/// What a new or changed link gets in its one message.
#[derive(Debug, Clone, Default)]
pub struct LinkOpts {
    /// The ifindex it is created with (`ifi_index`: the kernel honours it
    /// since 3.7), so that nothing has to look it up afterwards.
    pub index: u32,
    pub mtu: Option<u32>,
    pub tx_queue_len: Option<u32>,
    /// The index of a bridge in the same namespace.
    pub master: Option<u32>,
    pub up: bool,
}

fn with_opts(mut m: LinkMessage, o: &LinkOpts) -> LinkMessage {
    m.header.index = o.index;
    if o.up {
        m.header.flags |= netlink_packet_route::link::LinkFlags::Up;
        m.header.change_mask |= netlink_packet_route::link::LinkFlags::Up;
    }
    if let Some(v) = o.mtu {
        m.attributes.push(LinkAttribute::Mtu(v));
    }
    if let Some(v) = o.tx_queue_len {
        m.attributes.push(LinkAttribute::TxQueueLen(v));
    }
    if let Some(v) = o.master {
        m.attributes.push(LinkAttribute::Controller(v));
    }
    m
}

/// `ip link add NAME index I [txqueuelen Q] type bridge [up]`. An MTU is
/// set with [`set_link`] afterwards: through `ndo_change_mtu` the bridge
/// keeps it when ports join (at creation it would be auto-adjusted).
pub fn new_bridge(name: &str, o: &LinkOpts) -> Req {
    let o = LinkOpts { mtu: None, master: None, ..o.clone() };
    Req {
        msg: RouteNetlinkMessage::NewLink(with_opts(LinkBridge::new(name).build(), &o)),
        flags: CREATE,
        what: format!("creating bridge {name}"),
    }
}

/// Where a veth's peer is born.
#[derive(Debug, Clone, Copy)]
pub enum PeerNs {
    /// The namespace of this thread (`IFLA_NET_NS_PID` takes a tid): no fd.
    Thread(u32),
    /// The namespace of this fd (`IFLA_NET_NS_FD`).
    Fd(i32),
}

/// A veth pair in one message: this end with `o` (master, up and all), the
/// peer with `peer_o`'s MTU and queue length, born in `peer_ns`. The peer cannot be
/// brought up in the same message (the kernel opens it before the pair is
/// joined: `ENOTCONN`); [`set_link`] does it afterwards, from its own
/// namespace, once this end is up (both ends opening at the same moment
/// from two namespaces could each miss the other's carrier).
pub fn new_veth(name: &str, o: &LinkOpts, peer: &str, peer_o: &LinkOpts, peer_ns: PeerNs) -> Req {
    let mut msg = with_opts(LinkVeth::new(name, peer).build(), o);
    use netlink_packet_route::link::{InfoData, InfoVeth, LinkInfo};
    for attr in msg.attributes.iter_mut() {
        if let LinkAttribute::LinkInfo(infos) = attr {
            for info in infos.iter_mut() {
                if let LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(p))) = info {
                    let mut pm = with_opts(std::mem::take(p), &LinkOpts { master: None, up: false, ..peer_o.clone() });
                    pm.attributes.push(match peer_ns {
                        PeerNs::Thread(tid) => LinkAttribute::NetNsPid(tid),
                        PeerNs::Fd(fd) => LinkAttribute::NetNsFd(fd),
                    });
                    *p = pm;
                }
            }
        }
    }
    Req { msg: RouteNetlinkMessage::NewLink(msg), flags: CREATE, what: format!("creating veth {name} (peer {peer})") }
}

/// `ip link set` of an existing link by index: master, mtu, queue length
/// and up together, as the kernel takes them in one message.
pub fn set_link(name: &str, o: &LinkOpts) -> Req {
    let mut what = format!("setting {name}:");
    if let Some(m) = o.master {
        what += &format!(" master (index {m})");
    }
    if let Some(m) = o.mtu {
        what += &format!(" mtu {m}");
    }
    if let Some(q) = o.tx_queue_len {
        what += &format!(" tx_queue_len {q}");
    }
    if o.up {
        what += " up";
    }
    Req { msg: RouteNetlinkMessage::SetLink(with_opts(LinkMessage::default(), o)), flags: CHANGE, what }
}

/// `ip addr add IP/PREFIX dev <index>`.
pub fn new_address(index: u32, dev: &str, ip: IpAddr, prefix: u8) -> Req {
    let msg = match ip {
        IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new().index(index).address(a, prefix).build(),
        IpAddr::V6(a) => AddressMessageBuilder::<std::net::Ipv6Addr>::new().index(index).address(a, prefix).build(),
    };
    Req { msg: RouteNetlinkMessage::NewAddress(msg), flags: CREATE, what: format!("adding {ip}/{prefix} to {dev}") }
}

/// `ip route add` of a message built by [`crate::sys::rtnl::route`];
/// `what` names it in an error.
pub fn new_route(msg: netlink_packet_route::route::RouteMessage, what: String) -> Req {
    Req { msg: RouteNetlinkMessage::NewRoute(msg), flags: CREATE, what }
}

/// Sends every request at once, in order, then reads every answer: a batch
/// costs about one round trip, and since the kernel handles a socket's
/// requests in the order sent, later ones may rely on earlier ones. The
/// first failure is the error (later ones often only follow from it).
pub fn batch(ctx: &NsCtx, reqs: Vec<Req>) -> Result<()> {
    let mut pending = Vec::with_capacity(reqs.len());
    for r in reqs {
        let mut m = NetlinkMessage::from(r.msg);
        m.header.flags = r.flags;
        let answers = ctx.nl.clone().request(m).map_err(|e| nl_error(&r.what, e))?;
        pending.push((r.what, answers));
    }
    ctx.block_on(within(async {
        let mut first: Option<anyhow::Error> = None;
        for (what, mut answers) in pending {
            while let Some(m) = answers.next().await {
                if let NetlinkPayload::Error(e) = m.payload {
                    if e.code.is_some() && first.is_none() {
                        first = Some(nl_error(&what, rtnetlink::Error::NetlinkError(e)));
                    }
                }
            }
        }
        first.map_or(Ok(()), Err)
    }))
}

/// Whether a link message says the link is operationally up: carrier, and
/// the kernel's link watch has run for it (which is also what gives its
/// transmit queues their real qdisc instead of `noop`, which drops).
fn oper_up(m: &LinkMessage) -> bool {
    m.attributes.iter().any(|a| matches!(a, LinkAttribute::OperState(State::Up)))
}

/// Which of `indexes` the kernel says are operationally up, asked link by
/// link (pipelined). Asking for one link makes the kernel first run that
/// link's pending link-watch event (`rtnl_getlink` → `linkwatch_sync_dev`,
/// 6.x): a carrier that came while the link was still down, or once its
/// qdisc was already in place, is otherwise handled up to a second later.
fn up_now(ctx: &NsCtx, indexes: &[u32]) -> Result<Vec<u32>> {
    let mut up = Vec::new();
    // A link's answer is ~1.5 KB: asked ASK_AT_ONCE at a time, the answers
    // fit the socket's buffer even before they are read.
    for chunk in indexes.chunks(ASK_AT_ONCE) {
        let asked: Vec<_> = chunk.iter().map(|&i| (i, ctx.nl.link().get().match_index(i).execute())).collect();
        ctx.block_on(within(async {
            for (i, mut answer) in asked {
                while let Some(m) = answer.try_next().await.map_err(|e| nl_error(&format!("reading link {i}"), e))? {
                    if oper_up(&m) {
                        up.push(m.header.index);
                    }
                }
            }
            Ok(())
        }))?;
    }
    Ok(up)
}

/// Links asked for at once by [`wait_oper_up`].
const ASK_AT_ONCE: usize = 64;

/// How long the kernel may take to answer a batch before it is an error
/// rather than a hang (an answer the kernel could not queue is lost).
pub const ANSWER_WITHIN: Duration = Duration::from_secs(30);

async fn within<T>(f: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(ANSWER_WITHIN, f)
        .await
        .map_err(|_| anyhow!("no answer from the kernel within {ANSWER_WITHIN:?}"))?
}

/// How often [`wait_oper_up`] asks again while notifications are late.
const ASK_EVERY: Duration = Duration::from_millis(20);

/// Waits, at most `within`, until every link of `want` (index → name) is
/// operationally up: carrier, and the kernel's link watch has run for it,
/// which is what gives its transmit queues their real qdisc instead of
/// `noop` (which drops). It asks for each link, which also runs the link's
/// pending link watch ([`up_now`]); for the links not up yet it joins the
/// namespace's link notifications (the one that says UP is sent after the
/// qdiscs are attached) and asks again: what happened before joining is in
/// the answers, what happens after in the notifications. Joining only then
/// keeps the build's own notifications (hundreds at scale) out of the
/// socket, where they could crowd out the answers to its requests. Lost
/// notifications (a full buffer) are made up for by asking again.
pub fn wait_oper_up(ctx: &mut NsCtx, want: &BTreeMap<u32, String>, within: Duration) -> Result<()> {
    // First ask without notifications: most links are up by now (asking
    // runs their pending link watch).
    let mut want = want.clone();
    for i in up_now(ctx, &want.keys().copied().collect::<Vec<_>>())? {
        want.remove(&i);
    }
    if want.is_empty() {
        return Ok(());
    }
    ctx.join_links(true)?;
    let waited = wait_joined(ctx, &want, within);
    ctx.join_links(false)?;
    waited
}

fn wait_joined(ctx: &mut NsCtx, want: &BTreeMap<u32, String>, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    let mut left = want.clone();
    let mut ask_at = Instant::now();
    while !left.is_empty() {
        let now = Instant::now();
        if now >= ask_at {
            for i in up_now(ctx, &left.keys().copied().collect::<Vec<_>>())? {
                left.remove(&i);
            }
            if left.is_empty() {
                break;
            }
            if now >= deadline {
                let names: Vec<&str> = left.values().map(String::as_str).collect();
                bail!("no carrier within {within:?} on {}", names.join(", "));
            }
            ask_at = (now + ASK_EVERY).min(deadline);
        }
        if let Some(m) = ctx.next_event(ask_at) {
            match m.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) if oper_up(&l) => {
                    left.remove(&l.header.index);
                }
                NetlinkPayload::Overrun(_) => ask_at = Instant::now(),
                _ => {}
            }
        }
    }
    Ok(())
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
    // Device names from one dump, not one lookup per entry.
    let names: BTreeMap<u32, String> = if msgs.is_empty() { BTreeMap::new() } else { link_names_by_index(ctx)? };
    for m in msgs {
        let ip = m.attributes.iter().find_map(|a| match a {
            NeighbourAttribute::Destination(NeighbourAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
            NeighbourAttribute::Destination(NeighbourAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
            _ => None,
        });
        let Some(ip) = ip else { continue };
        let dev = names.get(&m.header.ifindex).cloned().unwrap_or_else(|| m.header.ifindex.to_string());
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

/// Every link's name by index, from one dump.
pub fn link_names_by_index(ctx: &NsCtx) -> Result<BTreeMap<u32, String>> {
    let msgs: Vec<_> = ctx
        .block_on(ctx.nl.link().get().execute().try_collect::<Vec<_>>())
        .map_err(|e| nl_error("dumping links", e))?;
    Ok(msgs
        .iter()
        .filter_map(|m| {
            m.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some((m.header.index, n.clone())),
                _ => None,
            })
        })
        .collect())
}

/// All link names in the namespace, by index.
pub fn link_names(ctx: &NsCtx) -> Result<Vec<String>> {
    Ok(link_names_by_index(ctx)?.into_values().collect())
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
