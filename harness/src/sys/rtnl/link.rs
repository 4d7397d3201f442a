//! `ip link add | set | del` over rtnetlink, for every kind a case names
//! ([`LinkKind`]), with the common attributes (`address`, `mtu`,
//! `txqueuelen`, `master`, `arp`, `promisc`, `up`), bridge options and
//! bridge-port flags.

use std::net::IpAddr;

use anyhow::{anyhow, Result};
use netlink_packet_route::link::{
    InfoBridge, InfoBridgePort, InfoData, InfoIpVlan, InfoKind, InfoMacVlan, InfoPortData, InfoPortKind, InfoVeth,
    InfoVlan, InfoVxlan, IpVlanMode, LinkAttribute, LinkInfo, LinkMessage, MacVlanMode,
};
use rtnetlink::{LinkMessageBuilder, LinkUnspec};

use crate::case::object::{LinkKind, LinkSet, LinkSpec, PortFlags};
use crate::sys::link::{index_of, nl_error};
use crate::sys::netns::NsCtx;

fn macvlan_mode(m: Option<&str>) -> MacVlanMode {
    match m {
        Some("private") => MacVlanMode::Private,
        Some("vepa") => MacVlanMode::Vepa,
        Some("passthru") => MacVlanMode::Passthrough,
        Some("source") => MacVlanMode::Source,
        _ => MacVlanMode::Bridge,
    }
}

fn ipvlan_mode(m: Option<&str>) -> IpVlanMode {
    match m {
        Some("l3") => IpVlanMode::L3,
        Some("l3s") => IpVlanMode::L3S,
        _ => IpVlanMode::L2,
    }
}

/// The message `ip link add` sends for `l`; `peer_ns_fd` is the veth peer's
/// namespace (or none: this one).
fn add_message(ctx: &NsCtx, l: &LinkSpec, peer_ns_fd: Option<i32>, netns_fd: Option<i32>) -> Result<LinkMessage> {
    let lower = |n: &Option<String>| -> Result<Option<u32>> { n.as_deref().map(|n| index_of(ctx, n)).transpose() };
    let kind = match l.kind {
        LinkKind::Veth => InfoKind::Veth,
        LinkKind::Bridge => InfoKind::Bridge,
        LinkKind::Macvlan => InfoKind::MacVlan,
        LinkKind::Ipvlan => InfoKind::IpVlan,
        LinkKind::Vlan => InfoKind::Vlan,
        LinkKind::Vxlan => InfoKind::Vxlan,
        LinkKind::Dummy => InfoKind::Dummy,
        LinkKind::Ifb => InfoKind::Ifb,
        LinkKind::Tun | LinkKind::Tap => InfoKind::Tun,
    };
    let mut b = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(kind).name(l.name.clone());
    let data = match l.kind {
        LinkKind::Veth => {
            let mut peer = LinkUnspec::new_with_name(l.peer.as_deref().unwrap_or_default()).build();
            if let Some(fd) = peer_ns_fd {
                peer.attributes.push(LinkAttribute::NetNsFd(fd));
            }
            Some(InfoData::Veth(InfoVeth::Peer(peer)))
        }
        LinkKind::Bridge => {
            let mut v = Vec::new();
            if let Some(x) = l.vlan_filtering {
                v.push(InfoBridge::VlanFiltering(x));
            }
            if let Some(x) = l.mcast_snooping {
                v.push(InfoBridge::MulticastSnooping(x));
            }
            if let Some(x) = l.nf_call_iptables {
                v.push(InfoBridge::NfCallIpTables(x));
            }
            (!v.is_empty()).then_some(InfoData::Bridge(v))
        }
        LinkKind::Macvlan => {
            b = b.link(lower(&l.link)?.unwrap_or_default());
            Some(InfoData::MacVlan(vec![InfoMacVlan::Mode(macvlan_mode(l.mode.as_deref()))]))
        }
        LinkKind::Ipvlan => {
            b = b.link(lower(&l.link)?.unwrap_or_default());
            Some(InfoData::IpVlan(vec![InfoIpVlan::Mode(ipvlan_mode(l.mode.as_deref()))]))
        }
        LinkKind::Vlan => {
            b = b.link(lower(&l.link)?.unwrap_or_default());
            Some(InfoData::Vlan(vec![InfoVlan::Id(l.id.unwrap_or_default() as u16)]))
        }
        LinkKind::Vxlan => {
            let mut v = vec![InfoVxlan::Id(l.id.unwrap_or_default())];
            if let Some(i) = lower(&l.link)? {
                v.push(InfoVxlan::Link(i));
            }
            match l.local {
                Some(IpAddr::V4(a)) => v.push(InfoVxlan::Local(a)),
                Some(IpAddr::V6(a)) => v.push(InfoVxlan::Local6(a)),
                None => {}
            }
            match l.remote.or(l.group) {
                Some(IpAddr::V4(a)) => v.push(InfoVxlan::Group(a)),
                Some(IpAddr::V6(a)) => v.push(InfoVxlan::Group6(a)),
                None => {}
            }
            v.push(InfoVxlan::Port(l.dstport.unwrap_or(4789)));
            if let Some(c) = l.udpcsum {
                v.push(InfoVxlan::UDPCsum(c));
            }
            if let Some(c) = l.learning {
                v.push(InfoVxlan::Learning(c));
            }
            Some(InfoData::Vxlan(v))
        }
        LinkKind::Dummy | LinkKind::Ifb | LinkKind::Tun | LinkKind::Tap => None,
    };
    if let Some(d) = data {
        b = b.set_info_data(d);
    }
    if let Some(a) = l.address {
        b = b.address(a.0.to_vec());
    }
    if let Some(m) = l.mtu {
        b = b.mtu(m);
    }
    if let Some(q) = l.txqueuelen {
        b = b.txqueuelen(q);
    }
    let mut msg = b.build();
    if let Some(fd) = netns_fd {
        msg.attributes.push(LinkAttribute::NetNsFd(fd));
    }
    Ok(msg)
}

/// `ip link add`: creates the link (a veth's peer straight in `peer_ns_fd`;
/// the link itself in `netns_fd` when its `netns` names another namespace).
/// The rest (`attach`) is for the namespace the link lives in.
pub fn add(ctx: &NsCtx, l: &LinkSpec, peer_ns_fd: Option<i32>, netns_fd: Option<i32>) -> Result<()> {
    if matches!(l.kind, LinkKind::Tun | LinkKind::Tap) {
        // The kernel makes tun/tap devices through /dev/net/tun only.
        add_tuntap(&l.name, l.kind == LinkKind::Tap).map_err(|e| anyhow!("{l}: {e}"))?;
        let attrs = LinkSet {
            ns: l.ns.clone(),
            dev: l.name.clone(),
            address: l.address,
            mtu: l.mtu,
            txqueuelen: l.txqueuelen,
            ..LinkSet::default()
        };
        self::set(ctx, &attrs, None)?;
    } else {
        let msg = add_message(ctx, l, peer_ns_fd, netns_fd)?;
        ctx.block_on(ctx.nl.link().add(msg).execute()).map_err(|e| nl_error(&l.to_string(), e))?;
    }
    Ok(())
}

/// `ip link set dev FROM name TO`.
pub fn rename(ctx: &NsCtx, from: &str, to: &str) -> Result<()> {
    let idx = index_of(ctx, from)?;
    let msg = LinkUnspec::new_with_index(idx).name(to.to_string()).build();
    ctx.block_on(ctx.nl.link().set(msg).execute()).map_err(|e| nl_error(&format!("link set dev {from} name {to}"), e))
}

/// After `add`, in the namespace the link lives in: master, port flags,
/// arp, promisc.
pub fn attach(ctx: &NsCtx, l: &LinkSpec) -> Result<()> {
    let set = LinkSet {
        ns: l.ns.clone(),
        dev: l.name.clone(),
        master: l.master.clone(),
        noarp: l.noarp,
        promisc: l.promisc,
        port: l.port.clone(),
        ..LinkSet::default()
    };
    self::set(ctx, &set, None)
}

/// `ip link set dev DEV ...`; `netns_fd` is the namespace `netns` names.
/// Up/down comes last, after everything else.
pub fn set(ctx: &NsCtx, s: &LinkSet, netns_fd: Option<i32>) -> Result<()> {
    let idx = index_of(ctx, &s.dev)?;
    let what = s.to_string();
    let send = |msg: LinkMessage| ctx.block_on(ctx.nl.link().set(msg).execute()).map_err(|e| nl_error(&what, e));
    let mut b = LinkUnspec::new_with_index(idx);
    let mut any = false;
    if let Some(a) = s.address {
        b = b.address(a.0.to_vec());
        any = true;
    }
    if let Some(m) = s.mtu {
        b = b.mtu(m);
        any = true;
    }
    if let Some(q) = s.txqueuelen {
        b = b.txqueuelen(q);
        any = true;
    }
    if let Some(v) = s.noarp {
        b = b.arp(!v);
        any = true;
    }
    if let Some(v) = s.promisc {
        b = b.promiscuous(v);
        any = true;
    }
    match s.master.as_deref() {
        Some("") => {
            b = b.nocontroller();
            any = true;
        }
        Some(m) => {
            b = b.controller(index_of(ctx, m)?);
            any = true;
        }
        None => {}
    }
    if any {
        send(b.build())?;
    }
    if let Some(p) = &s.port {
        set_port(ctx, idx, p).map_err(|e| anyhow!("{what}: {e}"))?;
    }
    if let Some(fd) = netns_fd {
        send(LinkUnspec::new_with_index(idx).setns_by_fd(fd).build())?;
        return Ok(());
    }
    match s.up {
        Some(false) => send(LinkUnspec::new_with_index(idx).down().build()),
        Some(true) => send(LinkUnspec::new_with_index(idx).up().build()),
        None => Ok(()),
    }
}

/// `ip tuntap add dev NAME mode tun|tap`: a persistent device, no process
/// attached (its carrier stays off: nothing reads it), in the calling
/// thread's namespace.
fn add_tuntap(name: &str, tap: bool) -> Result<()> {
    const TUNSETIFF: libc::c_ulong = 0x400454ca;
    const TUNSETPERSIST: libc::c_ulong = 0x400454cb;
    const IFF_TUN: libc::c_short = 0x0001;
    const IFF_TAP: libc::c_short = 0x0002;
    const IFF_NO_PI: libc::c_short = 0x1000;
    #[repr(C)]
    struct IfReq {
        name: [libc::c_char; libc::IFNAMSIZ],
        flags: libc::c_short,
        _pad: [u8; 22],
    }
    if name.len() >= libc::IFNAMSIZ {
        return Err(anyhow!("name {name:?} too long"));
    }
    // SAFETY: open/ioctl/close on a descriptor we own with a correctly
    // sized, zeroed ifreq.
    unsafe {
        let fd = libc::open(c"/dev/net/tun".as_ptr(), libc::O_RDWR | libc::O_CLOEXEC);
        if fd < 0 {
            return Err(anyhow!("/dev/net/tun: {}", std::io::Error::last_os_error()));
        }
        let mut req =
            IfReq { name: [0; libc::IFNAMSIZ], flags: if tap { IFF_TAP } else { IFF_TUN } | IFF_NO_PI, _pad: [0; 22] };
        for (i, b) in name.bytes().enumerate() {
            req.name[i] = b as libc::c_char;
        }
        let r = if libc::ioctl(fd, TUNSETIFF as _, &mut req) != 0
            || libc::ioctl(fd, TUNSETPERSIST as _, 1 as libc::c_ulong) != 0
        {
            Err(anyhow!("TUNSETIFF/TUNSETPERSIST: {}", std::io::Error::last_os_error()))
        } else {
            Ok(())
        };
        libc::close(fd);
        r
    }
}

/// Bridge-port flags: `bridge link set dev DEV hairpin on learning off isolated on`.
fn set_port(ctx: &NsCtx, idx: u32, p: &PortFlags) -> Result<()> {
    let mut v = Vec::new();
    if let Some(x) = p.hairpin {
        v.push(InfoBridgePort::HairpinMode(x));
    }
    if let Some(x) = p.learning {
        v.push(InfoBridgePort::Learning(x));
    }
    if let Some(x) = p.isolated {
        v.push(InfoBridgePort::Isolated(x));
    }
    let mut msg = LinkUnspec::new_with_index(idx).build();
    msg.attributes.push(LinkAttribute::LinkInfo(vec![
        LinkInfo::PortKind(InfoPortKind::Bridge),
        LinkInfo::PortData(InfoPortData::BridgePort(v)),
    ]));
    // RTM_NEWLINK without NLM_F_CREATE (`ip link set dev DEV type
    // bridge_slave hairpin on`): RTM_SETLINK's do_setlink() ignores
    // IFLA_INFO_SLAVE_DATA and acks, so the flags were silently not set.
    ctx.block_on(ctx.nl.link().set_port(msg).execute()).map_err(|e| nl_error("bridge port flags", e))
}

/// `ip link del dev DEV` (a veth takes its peer with it).
pub fn del(ctx: &NsCtx, dev: &str) -> Result<()> {
    let idx = index_of(ctx, dev)?;
    ctx.block_on(ctx.nl.link().del(idx).execute()).map_err(|e| nl_error(&format!("link del dev {dev}"), e))
}

/// Whether this kernel can create a link of `kind`: one is made in `ns` (a
/// throwaway namespace of the caller's), on a veth pair where the kind needs
/// a lower device. "Unknown device type" (`EOPNOTSUPP`: no driver, no module
/// to load) is `false`; any other refusal is the kind's, not the kernel's
/// lack, and counts as `true` (the run will report it).
pub fn can_create(ctx: &NsCtx, kind: LinkKind) -> Result<bool> {
    if matches!(kind, LinkKind::Veth | LinkKind::Bridge) {
        return Ok(true);
    }
    if matches!(kind, LinkKind::Tun | LinkKind::Tap) {
        return Ok(std::path::Path::new("/dev/net/tun").exists());
    }
    if index_of(ctx, "probe0").is_err() {
        let veth: LinkSpec = LinkSpec { peer: Some("probe1".into()), ..spec("probe0", LinkKind::Veth) };
        add(ctx, &veth, None, None)?;
    }
    let mut l = spec(&format!("probe-{}", kind.word()), kind);
    match kind {
        LinkKind::Macvlan | LinkKind::Ipvlan => l.link = Some("probe0".into()),
        LinkKind::Vlan => {
            l.link = Some("probe0".into());
            l.id = Some(19);
        }
        LinkKind::Vxlan => l.id = Some(19),
        _ => {}
    }
    let msg = add_message(ctx, &l, None, None)?;
    match ctx.block_on(ctx.nl.link().add(msg).execute()) {
        Ok(()) => Ok(true),
        Err(rtnetlink::Error::NetlinkError(m)) if m.to_io().raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(false),
        Err(_) => Ok(true),
    }
}

fn spec(name: &str, kind: LinkKind) -> LinkSpec {
    LinkSpec {
        ns: String::new(),
        name: name.into(),
        kind,
        link: None,
        mode: None,
        id: None,
        local: None,
        remote: None,
        group: None,
        dstport: None,
        udpcsum: None,
        learning: None,
        peer: None,
        peer_ns: None,
        netns: None,
        vlan_filtering: None,
        mcast_snooping: None,
        nf_call_iptables: None,
        address: None,
        up: Some(false),
        mtu: None,
        txqueuelen: None,
        master: None,
        noarp: None,
        promisc: None,
        port: None,
        addresses: Vec::new(),
        offloads: None,
    }
}

/// One link as the kernel has it now (`ip -d addr show`, reduced).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkNow {
    pub index: u32,
    pub name: String,
    /// `IFLA_INFO_KIND` (`veth`, `bridge`, `vxlan` …); `lo` and kindless
    /// devices have none.
    pub kind: Option<String>,
    pub mac: Option<String>,
    pub up: bool,
    pub master: Option<String>,
    pub addresses: Vec<String>,
}

/// Every link of the namespace with its kind, MAC, state, master and
/// addresses.
pub fn list(ctx: &NsCtx) -> Result<Vec<LinkNow>> {
    use futures::TryStreamExt;
    use netlink_packet_route::address::AddressAttribute;
    use netlink_packet_route::link::{LinkFlags, LinkInfo};
    let links: Vec<LinkMessage> = ctx
        .block_on(ctx.nl.link().get().execute().try_collect::<Vec<_>>())
        .map_err(|e| nl_error("dumping links", e))?;
    let addrs: Vec<_> = ctx
        .block_on(ctx.nl.address().get().execute().try_collect::<Vec<_>>())
        .map_err(|e| nl_error("dumping addresses", e))?;
    let name_of = |i: u32| {
        links.iter().find(|l| l.header.index == i).and_then(|l| {
            l.attributes.iter().find_map(|a| match a {
                LinkAttribute::IfName(n) => Some(n.clone()),
                _ => None,
            })
        })
    };
    let mut out = Vec::new();
    for l in &links {
        let mut now = LinkNow {
            index: l.header.index,
            name: String::new(),
            kind: None,
            mac: None,
            up: l.header.flags.contains(LinkFlags::Up),
            master: None,
            addresses: Vec::new(),
        };
        for a in &l.attributes {
            match a {
                LinkAttribute::IfName(n) => now.name = n.clone(),
                LinkAttribute::Address(m) if m.len() == 6 => {
                    now.mac = Some(m.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":"))
                }
                LinkAttribute::Controller(i) => now.master = name_of(*i),
                LinkAttribute::LinkInfo(infos) => {
                    for i in infos {
                        if let LinkInfo::Kind(k) = i {
                            now.kind = Some(k.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        for m in addrs.iter().filter(|m| m.header.index == l.header.index) {
            let a = m.attributes.iter().find_map(|a| match a {
                AddressAttribute::Address(a) => Some(*a),
                _ => None,
            });
            if let Some(a) = a {
                if !a.is_loopback() && !matches!(a, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80) {
                    now.addresses.push(format!("{a}/{}", m.header.prefix_len));
                }
            }
        }
        out.push(now);
    }
    Ok(out)
}
