//! Qdiscs over rtnetlink. rtnetlink has no typed HTB, so its attributes are
//! encoded here (`TCA_HTB_INIT`, `TCA_HTB_DIRECT_QLEN`, `TCA_HTB_PARMS`) and
//! sent as raw `TcMessage`s; dumps are decoded back for assertions.

use anyhow::{anyhow, Result};
use futures::{StreamExt, TryStreamExt};
use netlink_packet_core::{
    DefaultNla, NetlinkMessage, NetlinkPayload, Nla, NlasIterator, NLA_TYPE_MASK, NLM_F_ACK, NLM_F_CREATE, NLM_F_EXCL,
    NLM_F_REQUEST,
};
use netlink_packet_route::tc::{TcAttribute, TcHandle, TcMessage, TcOption, TcStats2};
use netlink_packet_route::RouteNetlinkMessage;
use serde::Serialize;

use crate::case::syntax::handle_text;
use crate::sys::link::{index_of, nl_error};
use crate::sys::netns::NsCtx;

const TCA_HTB_PARMS: u16 = 1;
const TCA_HTB_INIT: u16 = 2;
const TCA_HTB_DIRECT_QLEN: u16 = 5;
const TC_HTB_PROTOVER: u32 = 3;
const TC_LINKLAYER_ETHERNET: u8 = 1;
/// `PSCHED_SHIFT`: HTB buffers are in units of 64 ns.
const PSCHED_TICK_NS: u64 = 64;

/// `struct tc_htb_glob` + `TCA_HTB_DIRECT_QLEN`, as the nested options of
/// an HTB qdisc. `direct_qlen` None leaves the kernel default (the device's
/// `tx_queue_len`).
pub fn htb_qdisc_options(defcls: u32, r2q: u32, direct_qlen: Option<u32>) -> Vec<TcOption> {
    let mut glob = Vec::with_capacity(20);
    for v in [TC_HTB_PROTOVER, r2q, defcls, 0 /* debug */, 0 /* direct_pkts */] {
        glob.extend_from_slice(&v.to_ne_bytes());
    }
    let mut opts = vec![TcOption::Other(DefaultNla::new(TCA_HTB_INIT, glob))];
    if let Some(q) = direct_qlen {
        opts.push(TcOption::Other(DefaultNla::new(TCA_HTB_DIRECT_QLEN, q.to_ne_bytes().to_vec())));
    }
    opts
}

/// `struct tc_ratespec` for an Ethernet link at `rate` bytes/s (32-bit
/// field; HTB takes `TCA_HTB_RATE64` beyond that, not needed here).
fn ratespec(rate: u64) -> Vec<u8> {
    let mut b = vec![3u8 /* cell_log */, TC_LINKLAYER_ETHERNET];
    b.extend_from_slice(&0u16.to_ne_bytes()); // overhead
    b.extend_from_slice(&(-1i16).to_ne_bytes()); // cell_align
    b.extend_from_slice(&0u16.to_ne_bytes()); // mpu
    b.extend_from_slice(&(rate.min(u32::MAX as u64) as u32).to_ne_bytes());
    b
}

/// `struct tc_htb_opt` for a class with `rate` = `ceil` bytes/s and a burst
/// of `buffer_ticks` (64 ns units, as tc computes them).
pub fn htb_class_options(rate: u64, buffer_ticks: u32) -> Vec<TcOption> {
    let mut p = ratespec(rate);
    p.extend(ratespec(rate));
    for v in [buffer_ticks, buffer_ticks, 0 /* quantum */, 0 /* level */, 0 /* prio */] {
        p.extend_from_slice(&v.to_ne_bytes());
    }
    vec![TcOption::Other(DefaultNla::new(TCA_HTB_PARMS, p))]
}

/// The burst tc gives by default — one MTU plus rate/HZ, with the 1 GHz
/// "HZ" of high-resolution psched — as transmit time in ticks.
/// In u128 and saturating: no rate, however absurd, overflows it.
pub fn default_buffer_ticks(rate: u64, mtu: u32) -> u32 {
    let burst = mtu as u128 + rate as u128 / 1_000_000_000;
    let ticks = burst * 1_000_000_000 / rate.max(1) as u128 / PSCHED_TICK_NS as u128;
    ticks.min(u32::MAX as u128) as u32
}

async fn send(ctx: &NsCtx, msg: RouteNetlinkMessage, flags: u16, what: &str) -> Result<()> {
    let mut req = NetlinkMessage::from(msg);
    req.header.flags = flags;
    let mut h = ctx.nl.clone();
    let mut resp = h.request(req).map_err(|e| nl_error(what, e))?;
    while let Some(m) = resp.next().await {
        if let NetlinkPayload::Error(e) = m.payload {
            if e.code.is_some() {
                return Err(nl_error(what, rtnetlink::Error::NetlinkError(e)));
            }
        }
    }
    Ok(())
}

/// Creates a qdisc or class; an existing one is an error, as with `tc ... add`.
fn create(ctx: &NsCtx, msg: RouteNetlinkMessage, what: &str) -> Result<()> {
    ctx.block_on(send(ctx, msg, NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE, what))
}

/// `tc qdisc add dev DEV root handle MAJOR: htb [default DEFCLS] [direct_qlen N]`.
pub fn add_htb(ctx: &NsCtx, dev: &str, handle: TcHandle, defcls: u32, direct_qlen: Option<u32>) -> Result<()> {
    let idx = index_of(ctx, dev)?;
    let mut m = TcMessage::with_index(idx as i32);
    m.header.handle = handle;
    m.header.parent = TcHandle::ROOT;
    m.attributes.push(TcAttribute::Kind("htb".into()));
    m.attributes.push(TcAttribute::Options(htb_qdisc_options(defcls, 10, direct_qlen)));
    let what = format!("adding htb qdisc {} on {dev}", handle_text(handle));
    create(ctx, RouteNetlinkMessage::NewQueueDiscipline(m), &what)
}

/// `tc class add dev DEV parent P classid C htb rate R`.
pub fn add_htb_class(ctx: &NsCtx, dev: &str, parent: TcHandle, classid: TcHandle, rate: u64) -> Result<()> {
    let idx = index_of(ctx, dev)?;
    let mtu = crate::sys::link::link_counters(ctx, dev)?
        .iter()
        .find(|(k, _)| k == "mtu")
        .map(|(_, v)| *v as u32)
        .unwrap_or(1500);
    let mut m = TcMessage::with_index(idx as i32);
    m.header.handle = classid;
    m.header.parent = parent;
    m.attributes.push(TcAttribute::Kind("htb".into()));
    m.attributes.push(TcAttribute::Options(htb_class_options(rate, default_buffer_ticks(rate, mtu))));
    let what = format!("adding htb class {} on {dev}", handle_text(classid));
    create(ctx, RouteNetlinkMessage::NewTrafficClass(m), &what)
}

const TCA_TBF_PARMS: u16 = 1;
const TCA_TBF_BURST: u16 = 6;

/// `struct tc_tbf_qopt` (`TCA_TBF_PARMS`) and `TCA_TBF_BURST` for a TBF at
/// `rate` bytes/s with a bucket of `burst` bytes and a queue of `limit`
/// bytes, as tc computes them (buffer: the bucket's transmit time in 64 ns
/// ticks, capped at 32 bits).
pub fn tbf_options(rate: u64, burst: u32, limit: u32) -> Vec<TcOption> {
    let ticks = (burst as u128 * 1_000_000_000 / rate.max(1) as u128 / PSCHED_TICK_NS as u128).min(u32::MAX as u128);
    let mut p = ratespec(rate);
    p.extend_from_slice(&[0u8; 12]); // no peak rate
    for v in [limit, ticks as u32, 0 /* mtu */] {
        p.extend_from_slice(&v.to_ne_bytes());
    }
    vec![
        TcOption::Other(DefaultNla::new(TCA_TBF_PARMS, p)),
        TcOption::Other(DefaultNla::new(TCA_TBF_BURST, burst.to_ne_bytes().to_vec())),
    ]
}

/// `tc qdisc add dev DEV root handle H tbf rate R burst B latency L`: the
/// queue holds what arrives in `latency_ms` at the rate, plus the bucket.
pub fn add_tbf(ctx: &NsCtx, dev: &str, handle: TcHandle, rate: u64, burst: u32, latency_ms: u32) -> Result<()> {
    let idx = index_of(ctx, dev)?;
    let limit = (rate as u128 * latency_ms as u128 / 1000 + burst as u128).min(u32::MAX as u128) as u32;
    let mut m = TcMessage::with_index(idx as i32);
    m.header.handle = handle;
    m.header.parent = TcHandle::ROOT;
    m.attributes.push(TcAttribute::Kind("tbf".into()));
    m.attributes.push(TcAttribute::Options(tbf_options(rate, burst, limit)));
    let what = format!("adding tbf qdisc {} on {dev}", handle_text(handle));
    create(ctx, RouteNetlinkMessage::NewQueueDiscipline(m), &what)
}

/// `tc qdisc add dev DEV handle ffff: ingress`.
pub fn add_ingress(ctx: &NsCtx, dev: &str) -> Result<()> {
    let idx = index_of(ctx, dev)?;
    ctx.block_on(ctx.nl.qdisc().add(idx as i32).ingress().execute())
        .map_err(|e| nl_error(&format!("adding ingress qdisc on {dev}"), e))
}

/// `tc filter add dev DEV parent ffff: protocol all u32 match u32 0 0
/// action mirred egress redirect dev TO`: all DEV receives goes out of TO
/// (an ifb, as CNI's bandwidth plugin shapes a pod's egress).
pub fn add_redirect(ctx: &NsCtx, dev: &str, to: &str) -> Result<()> {
    let idx = index_of(ctx, dev)?;
    let dst = index_of(ctx, to)?;
    let what = format!("redirecting ingress of {dev} to {to}");
    let req = ctx
        .nl
        .traffic_filter(idx as i32)
        .add()
        .parent(0xffff_0000)
        .protocol(0x0003u16.to_be()) // ETH_P_ALL, in network order as tc sends it
        .redirect(dst)
        .map_err(|e| nl_error(&what, e))?;
    ctx.block_on(req.execute()).map_err(|e| nl_error(&what, e))
}

/// `tc qdisc del dev DEV root`.
pub fn del_root(ctx: &NsCtx, dev: &str) -> Result<()> {
    let idx = index_of(ctx, dev)?;
    let mut m = TcMessage::with_index(idx as i32);
    m.header.parent = TcHandle::ROOT;
    let what = format!("deleting the root qdisc of {dev}");
    ctx.block_on(send(ctx, RouteNetlinkMessage::DelQueueDiscipline(m), NLM_F_REQUEST | NLM_F_ACK, &what))
}

/// A qdisc as read back from the kernel.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize, PartialEq, schemars::JsonSchema)]
pub struct QdiscInfo {
    pub kind: String,
    pub handle: String,
    pub parent: String,
    pub packets: u64,
    pub drops: u64,
    pub overlimits: u64,
    pub qlen: u64,
    pub backlog: u64,
    #[serde(default)]
    pub requeues: u64,
    /// Decoded options of kinds netrepro knows (tbf: `rate` bytes/s,
    /// `burst` bytes, `limit` bytes), as tc shows them.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub options: std::collections::BTreeMap<String, u64>,
    /// HTB only.
    pub direct_qlen: Option<u32>,
    pub default_class: Option<String>,
    pub direct_packets: Option<u32>,
}

/// Decodes HTB's qdisc options as a dump carries them into `info`.
/// netlink-packet-route keeps the options of kinds it does not know as one
/// opaque `TCA_OPTIONS` attribute; its value is the nest of HTB attributes.
pub fn decode_htb(opts: &[TcOption], info: &mut QdiscInfo) {
    for o in opts {
        let TcOption::Other(nest) = o else { continue };
        let mut v = vec![0u8; nest.value_len()];
        nest.emit_value(&mut v);
        for nla in NlasIterator::new(&v[..]).flatten() {
            let val = nla.value();
            let u32_at = |i: usize| val.get(i..i + 4).map(|b| u32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
            match nla.kind() & NLA_TYPE_MASK {
                TCA_HTB_INIT => {
                    info.default_class = u32_at(8).map(|d| format!("{d:x}"));
                    info.direct_packets = u32_at(16);
                }
                TCA_HTB_DIRECT_QLEN => info.direct_qlen = u32_at(0),
                _ => {}
            }
        }
    }
}

/// Decodes TBF's `TCA_TBF_PARMS` (and `TCA_TBF_RATE64`) into `options`:
/// rate in bytes/s, limit in bytes, burst in bytes (the bucket's time at
/// the rate, as tc prints it).
pub fn decode_tbf(opts: &[TcOption], info: &mut QdiscInfo) {
    const TCA_TBF_RATE64: u16 = 4;
    let mut rate64 = None;
    let mut parms = None;
    for o in opts {
        let TcOption::Other(nest) = o else { continue };
        let mut v = vec![0u8; nest.value_len()];
        nest.emit_value(&mut v);
        for nla in NlasIterator::new(&v[..]).flatten() {
            let val = nla.value().to_vec();
            match nla.kind() & NLA_TYPE_MASK {
                TCA_TBF_PARMS if val.len() >= 36 => parms = Some(val),
                TCA_TBF_RATE64 if val.len() >= 8 => {
                    rate64 = Some(u64::from_ne_bytes(val[..8].try_into().unwrap_or_default()))
                }
                _ => {}
            }
        }
    }
    let Some(p) = parms else { return };
    let u32_at = |i: usize| u32::from_ne_bytes([p[i], p[i + 1], p[i + 2], p[i + 3]]) as u64;
    let rate = rate64.unwrap_or(u32_at(8));
    let buffer_ticks = u32_at(28);
    info.options.insert("rate".into(), rate);
    info.options.insert("limit".into(), u32_at(24));
    // Rounded: the ticks were rounded down from the burst's time at the rate.
    let burst = (buffer_ticks as u128 * PSCHED_TICK_NS as u128 * rate as u128 + 500_000_000) / 1_000_000_000;
    info.options.insert("burst".into(), burst.min(u64::MAX as u128) as u64);
}

/// The qdisc of `dev` with `handle` (tc's notation, `ffff:`), or its root.
pub fn qdisc_of(ctx: &NsCtx, dev: &str, handle: Option<&str>) -> Result<QdiscInfo> {
    match handle {
        None => root_qdisc(ctx, dev),
        Some(h) => qdiscs(ctx, dev)?
            .into_iter()
            .find(|q| q.handle == h)
            .ok_or_else(|| anyhow!("{dev} has no qdisc with handle {h}")),
    }
}

/// Every qdisc on `dev`.
pub fn qdiscs(ctx: &NsCtx, dev: &str) -> Result<Vec<QdiscInfo>> {
    let idx = index_of(ctx, dev)? as i32;
    let msgs: Vec<TcMessage> = ctx
        .block_on(ctx.nl.qdisc().get().index(idx).execute().try_collect::<Vec<_>>())
        .map_err(|e| nl_error(&format!("dumping qdiscs of {dev}"), e))?;
    let mut out = Vec::new();
    for m in msgs.into_iter().filter(|m| m.header.index == idx) {
        let mut q = QdiscInfo {
            handle: handle_text(m.header.handle),
            parent: handle_text(m.header.parent),
            ..Default::default()
        };
        for a in &m.attributes {
            match a {
                TcAttribute::Kind(k) => q.kind = k.clone(),
                TcAttribute::Stats2(s) => {
                    for x in s {
                        match x {
                            TcStats2::Basic(b) => q.packets = b.packets as u64,
                            TcStats2::Queue(qs) => {
                                q.drops = qs.drops as u64;
                                q.overlimits = qs.overlimits as u64;
                                q.qlen = qs.qlen as u64;
                                q.backlog = qs.backlog as u64;
                                q.requeues = qs.requeues as u64;
                            }
                            _ => {}
                        }
                    }
                }
                _ => {}
            }
        }
        if q.kind == "tbf" {
            if let Some(opts) = m.attributes.iter().find_map(|a| match a {
                TcAttribute::Options(o) => Some(o),
                _ => None,
            }) {
                decode_tbf(opts, &mut q);
            }
        }
        if q.kind == "htb" {
            if let Some(opts) = m.attributes.iter().find_map(|a| match a {
                TcAttribute::Options(o) => Some(o),
                _ => None,
            }) {
                decode_htb(opts, &mut q);
            }
        }
        out.push(q);
    }
    Ok(out)
}

/// The root qdisc of `dev`.
pub fn root_qdisc(ctx: &NsCtx, dev: &str) -> Result<QdiscInfo> {
    qdiscs(ctx, dev)?.into_iter().find(|q| q.parent == "root").ok_or_else(|| anyhow!("{dev} has no root qdisc"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::syntax::{parse_handle, parse_rate};
    use netlink_packet_core::Emitable;

    /// `tc qdisc add dev br0 root handle 1: htb default 10 direct_qlen 0`
    /// (iproute2 6.1), its TCA_OPTIONS attribute as sent, from strace.
    const TC_QDISC_OPTIONS: [u8; 36] = [
        0x24, 0x00, 0x02, 0x00, 0x18, 0x00, 0x02, 0x00, 0x03, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x10, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x05, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    /// `tc class add dev br0 parent 1: classid 1:10 htb rate 1gbit`: the
    /// TCA_HTB_PARMS attribute (tc also sends rate tables, which kernels
    /// ignore for Ethernet link-layer ratespecs).
    const TC_CLASS_PARMS: [u8; 48] = [
        0x30, 0x00, 0x01, 0x00, 0x03, 0x01, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x40, 0x59, 0x73, 0x07, 0x03, 0x01,
        0x00, 0x00, 0xff, 0xff, 0x00, 0x00, 0x40, 0x59, 0x73, 0x07, 0xbb, 0x00, 0x00, 0x00, 0xbb, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    ];

    fn emit(a: &TcAttribute) -> Vec<u8> {
        let mut b = vec![0u8; a.buffer_len()];
        a.emit(&mut b);
        b
    }

    #[test]
    fn htb_qdisc_options_match_tc_byte_for_byte() {
        let ours = emit(&TcAttribute::Options(htb_qdisc_options(0x10, 10, Some(0))));
        // Our nest may carry NLA_F_NESTED; tc's does not. Compare the rest.
        assert_eq!(ours.len(), TC_QDISC_OPTIONS.len());
        assert_eq!(&ours[..2], &TC_QDISC_OPTIONS[..2]);
        assert_eq!(u16::from_ne_bytes([ours[2], ours[3]]) & 0x3fff, 2);
        assert_eq!(&ours[4..], &TC_QDISC_OPTIONS[4..]);
    }

    #[test]
    fn htb_class_parms_match_tc_byte_for_byte() {
        let rate = parse_rate("1gbit").unwrap();
        assert_eq!(rate, 125_000_000);
        let TcOption::Other(nla) = &htb_class_options(rate, 0xbb)[0] else { unreachable!() };
        let mut b = vec![0u8; nla.buffer_len()];
        nla.emit(&mut b);
        assert_eq!(b, TC_CLASS_PARMS);
    }

    /// Parses a TCA_OPTIONS attribute the way a qdisc dump is parsed.
    fn decode(options_attr: &[u8]) -> QdiscInfo {
        use netlink_packet_core::{NlaBuffer, ParseableParametrized};
        let attr = TcAttribute::parse_with_param(&NlaBuffer::new(options_attr), "htb").unwrap();
        let TcAttribute::Options(opts) = attr else { panic!("not options: {attr:?}") };
        let mut q = QdiscInfo::default();
        decode_htb(&opts, &mut q);
        q
    }

    #[test]
    fn htb_options_decode_from_tc_bytes_and_from_ours() {
        let q = decode(&TC_QDISC_OPTIONS);
        assert_eq!(q.direct_qlen, Some(0));
        assert_eq!(q.default_class.as_deref(), Some("10"));
        assert_eq!(q.direct_packets, Some(0));
        let q = decode(&emit(&TcAttribute::Options(htb_qdisc_options(0, 10, None))));
        assert_eq!(q.direct_qlen, None);
        assert_eq!(q.default_class.as_deref(), Some("0"));
        let q = decode(&emit(&TcAttribute::Options(htb_qdisc_options(0x20, 10, Some(1000)))));
        assert_eq!(q.direct_qlen, Some(1000));
        assert_eq!(q.default_class.as_deref(), Some("20"));
    }

    #[test]
    fn handles_and_rates_parse_like_tc() {
        assert_eq!(parse_handle("1:").unwrap(), TcHandle { major: 1, minor: 0 });
        assert_eq!(parse_handle("1:10").unwrap(), TcHandle { major: 1, minor: 0x10 });
        assert_eq!(handle_text(parse_handle("ffff:a").unwrap()), "ffff:a");
        assert!(parse_handle("1").is_err());
        assert_eq!(parse_rate("100mbit").unwrap(), 12_500_000);
        assert_eq!(parse_rate("10mbps").unwrap(), 10_000_000);
        assert!(parse_rate("fast").is_err());
        // tc gave 0xbb ticks for 1gbit with a 1500-byte MTU.
        assert_eq!(default_buffer_ticks(125_000_000, 1500), 0xbb);
        // Extremes saturate instead of overflowing (issue 18).
        assert_eq!(default_buffer_ticks(u64::MAX, u32::MAX), 0);
        assert_eq!(default_buffer_ticks(1, 1500), u32::MAX);
    }

    #[test]
    fn tbf_parms_carry_the_bucket_as_tc_computes_it() {
        // tc qdisc add ... tbf rate 10mbit burst 268435455 latency 25ms:
        // 1250000 B/s, buffer 214.748 s = 3355443187 ticks, limit 268466705.
        let opts = tbf_options(1_250_000, 268_435_455, 268_466_705);
        let TcOption::Other(p) = &opts[0] else { panic!() };
        let mut v = vec![0u8; p.value_len()];
        p.emit_value(&mut v);
        assert_eq!(v.len(), 36);
        assert_eq!(u32::from_ne_bytes(v[8..12].try_into().unwrap()), 1_250_000);
        assert_eq!(u32::from_ne_bytes(v[24..28].try_into().unwrap()), 268_466_705);
        assert_eq!(u32::from_ne_bytes(v[28..32].try_into().unwrap()), 3_355_443_187);
    }
}
