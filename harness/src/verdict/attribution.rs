//! Whose drop is it: the kernel's drops during a probe, labelled
//! ([`Origin`]) from what the kernel gave for each (where it was freed, the
//! reason, the packet's first bytes) and what the probe was (its kind, its
//! namespace, its echo id, its address family, its window). Expectations,
//! why-lines and the report's colours see only `incident` drops; the
//! evidence keeps every drop under its label. And each dropped packet tied
//! to the captured frame it was, where one matches.
//!
//! The rules, each a fact of the kernel's code, not a guess:
//! - **the ping probe's own echo replies** (`probe_own`): the probe reads
//!   replies on a raw ICMP socket. `ip_local_deliver_finish` hands a clone to
//!   every raw socket (`raw_local_deliver`), then `icmp_rcv` passes the
//!   original to `ping_rcv`, which finds no ping socket for it and returns
//!   `SKB_DROP_REASON_NO_SOCKET`; `icmp_rcv` frees it with that reason (6.1:
//!   freed in `icmp_rcv` itself; before 5.17 without a reason). Told by its
//!   namespace (the probe's `from`), place, reason and, where the packet was
//!   read, an echo reply carrying the probe's echo id.
//! - **a socket's queue purged as it closed** (`probe_own`):
//!   `SKB_DROP_REASON_QUEUE_PURGE` from `skb_queue_purge_reason` /
//!   `__skb_queue_purge` (`tcp_disconnect`, `inet_sock_destruct`,
//!   `netlink_sock_destruct` …): packets that had arrived and waited in a
//!   socket's queue — the probe's, its listener's, or the harness's netlink
//!   sockets reading the namespace (no network header). Nothing was lost on
//!   the way.
//! - **the probe's own connection closing** (`probe_own`): a TCP FIN or RST
//!   freed after a connect or stream probe's outcome was settled (its
//!   elapsed time from the window's start), while its sockets close: the
//!   two sides' closes cross, and `tcp_v4_rcv` frees what arrives for a
//!   socket already gone.
//! - **IPv6 on an IPv4 probe's links** (`background`): MLD reports and NDP
//!   the kernel sends by itself when an address or forwarding changes
//!   (`mld_ifc_work`, `ndisc_send_*`), dropped as `NO_TX_TARGET` in
//!   `br_dev_xmit` (a bridge with no port for the group) or `NOT_SPECIFIED`
//!   in `ip6_mc_input`; and IGMP reports likewise for IPv4. Not the
//!   probe's traffic: its addresses are of the other family, or it sends no
//!   IGMP.
//! - **after the probe's window** (`background`): freed after the probe
//!   returned, while the harness read the namespaces' state.
//!
//! Everything else is `incident`: what the kernel did to the traffic under test.

use std::net::IpAddr;

use crate::case::spec::ProbeSpec;
use crate::evidence::outcome::Outcome;
use crate::evidence::record::ProbeRecord;
use crate::sys::drops::{Drop, DroppedPacket, FrameTie, Origin};
use crate::wire::headers::Headers;

/// Slack on the window's end and on a frame preceding its drop: the clocks
/// are the same (CLOCK_REALTIME) but read at different instants.
const SLACK_NS: u64 = 1_000_000;

/// What attribution needs to know of the probe.
struct Probe<'a> {
    from: &'a str,
    /// The ping probe's echo id.
    echo_id: Option<u16>,
    v4: bool,
    window_ns: (u64, u64),
    /// When a connect or stream probe's outcome was settled (connect
    /// returned, the transfer ended): what follows is its own closing.
    settled_ns: Option<u64>,
}

impl<'a> Probe<'a> {
    fn of(spec: &'a ProbeSpec, outcome: &Outcome, window_ns: (u64, u64)) -> Probe<'a> {
        let (from, v4) = match spec {
            ProbeSpec::Ping { from, .. } => (from.as_str(), true),
            ProbeSpec::Connect { from, to, .. } | ProbeSpec::Stream { from, to, .. } => (from.as_str(), to.is_ipv4()),
            // The other probes: their first namespace; v4 unless they say v6.
            other => (other.namespaces().first().copied().unwrap_or(""), true),
        };
        let echo_id = match outcome {
            Outcome::Ping(o) => Some(o.id),
            _ => None,
        };
        let settled_ns = match outcome {
            Outcome::Ping(_) => None,
            o => Some(window_ns.0 + (o.elapsed_ms() * 1e6) as u64),
        };
        Probe { from, echo_id, v4, window_ns, settled_ns }
    }
}

/// Freeing functions of a socket queue purge, for kernels without reasons.
const PURGE_AT: &[&str] = &[
    "skb_queue_purge_reason",
    "skb_queue_purge",
    "__skb_queue_purge",
    "__skb_queue_purge_reason",
    "tcp_disconnect",
    "tcp_write_queue_purge",
    "inet_sock_destruct",
    "netlink_sock_destruct",
];

/// The label of one drop of bucket `d`, from its packet where the kernel
/// gave it (`None`: counted, not seen), with the rule that decided.
fn rule(d: &Drop, pk: Option<&DroppedPacket>, p: &Probe) -> (Origin, String) {
    let h: Option<&Headers> = pk.map(|x| &x.headers);
    let echo_reply = h.and_then(|h| h.icmpv4()).filter(|i| i.kind == 0);
    // Own echo replies.
    if let Some(id) = p.echo_id {
        let place = matches!(d.at.as_str(), "ping_rcv" | "icmp_rcv") && matches!(d.reason.as_str(), "NO_SOCKET" | "");
        if place && d.ns == p.from {
            match (pk, echo_reply) {
                (Some(_), Some(r)) if r.id == Some(id) => {
                    return (
                        Origin::ProbeOwn,
                        format!(
                            "the ping probe's own echo reply (id {id}): its raw socket read a clone \
                             (raw_local_deliver), and ping_rcv, finding no ping socket, frees the original"
                        ),
                    )
                }
                (None, _) if d.protocol == "IPv4" => {
                    return (
                        Origin::ProbeOwn,
                        "an echo reply to the ping probe's raw socket, by where it was freed \
                         (the packet itself was not seen)"
                            .into(),
                    )
                }
                _ => {}
            }
        }
    }
    // A socket's queue purged at close.
    if d.reason == "QUEUE_PURGE" || (d.reason.is_empty() && PURGE_AT.contains(&d.at.as_str())) {
        let network = h.is_some_and(|h| h.ip.is_some() || h.arp.is_some())
            || (pk.is_none() && matches!(d.protocol.as_str(), "IPv4" | "IPv6" | "ARP"));
        let why = if network {
            format!("a socket's queue purged as the socket closed ({}): received, queued, then freed at close; not lost on the way", d.at)
        } else {
            format!(
                "a queue of non-IP data (a netlink socket of the harness reading the namespace) purged as it closed ({})",
                d.at
            )
        };
        return (Origin::ProbeOwn, why);
    }
    // The probe's own connection closing after its outcome: a FIN or RST
    // that arrives once its socket is gone (the other side's close crossing
    // ours) is freed by tcp_v4_rcv.
    if let (Some(settled), Some(t)) = (p.settled_ns, h.and_then(|h| h.tcp.as_ref())) {
        let when = pk.map(|x| x.t_ns).unwrap_or(0);
        if (t.flags.fin || t.flags.rst) && when > settled + SLACK_NS && when <= p.window_ns.1 + SLACK_NS {
            let ms = (when - settled) as f64 / 1e6;
            return (
                Origin::ProbeOwn,
                format!(
                    "the probe's own connection closing: a {} {ms:.1} ms after its outcome was settled",
                    if t.flags.rst { "RST" } else { "FIN" }
                ),
            );
        }
    }
    // The other family's, or IGMP's, link upkeep.
    let family = h.and_then(|h| h.ip.as_ref()).map(|ip| ip.version);
    let v6 = family == Some(6) || (pk.is_none() && d.protocol == "IPv6");
    if v6 && p.v4 {
        let what = h
            .and_then(|h| h.icmp.filter(|i| crate::wire::icmp::is_link_control_v6(i.kind)))
            .map(|i| format!("IPv6 {} the kernel sends by itself (MLD/NDP)", crate::wire::icmp::name6(i.kind, i.code)))
            .unwrap_or_else(|| "IPv6".into());
        return (Origin::Background, format!("{what}; this probe speaks IPv4"));
    }
    if h.and_then(|h| h.ip.as_ref()).is_some_and(|ip| ip.version == 4 && ip.proto == 2) {
        return (Origin::Background, "an IGMP membership report the kernel sends by itself".into());
    }
    // After the window.
    let t = pk.map(|x| x.t_ns).unwrap_or(d.first_ns);
    if p.window_ns.1 > 0 && t > p.window_ns.1 + SLACK_NS {
        let late = (t - p.window_ns.1) as f64 / 1e6;
        return (Origin::Background, format!("freed {late:.1} ms after the probe's window ended"));
    }
    (Origin::Incident, String::new())
}

/// Every drop labelled; a bucket whose packets fall under different rules
/// is split, one record per label (and rule), counts and times from its
/// packets, the packets the monitor did not see labelled by the bucket's
/// place alone.
pub fn label(drops: Vec<Drop>, spec: &ProbeSpec, outcome: &Outcome, window_ns: (u64, u64)) -> Vec<Drop> {
    label_as(drops, &Probe::of(spec, outcome, window_ns))
}

/// [`label`] for a window with no probe (the whole phase, a span of
/// steps): no echo id, connection or address family of a probe's, so only
/// socket queues purged at close, IGMP reports and what was freed after the
/// window are not the incident's.
pub fn label_window(drops: Vec<Drop>, window_ns: (u64, u64)) -> Vec<Drop> {
    label_as(drops, &Probe { from: "", echo_id: None, v4: false, window_ns, settled_ns: None })
}

/// A window's drops reconciled with what the probes inside it already
/// labelled (`known`, from their records): of a bucket the window calls
/// the incident's, as many as a probe called its own or background take
/// that label (a ping's echo replies freed by `ping_rcv` are its own over
/// the whole phase too), the rest stays the incident's.
pub fn relabel_known(mut drops: Vec<Drop>, known: &[Drop]) -> Vec<Drop> {
    let mut moved = Vec::new();
    for k in known.iter().filter(|k| k.origin != Origin::Incident) {
        let same = |d: &Drop| {
            d.origin == Origin::Incident
                && d.ns == k.ns
                && d.dev == k.dev
                && d.reason == k.reason
                && d.at == k.at
                && d.protocol == k.protocol
        };
        let mut left = k.count;
        for d in drops.iter_mut().filter(|d| same(d)) {
            let n = left.min(d.count);
            d.count -= n;
            left -= n;
        }
        let took = k.count - left;
        if took > 0 {
            moved.push(Drop { count: took, ..k.clone() });
        }
    }
    drops.retain(|d| d.count > 0);
    drops.extend(moved);
    drops
}

fn label_as(drops: Vec<Drop>, p: &Probe) -> Vec<Drop> {
    let mut out = Vec::new();
    for d in drops {
        // (origin, why) → packets, in first-seen order.
        let mut groups: Vec<((Origin, String), Vec<DroppedPacket>)> = Vec::new();
        for pk in &d.packets {
            let key = rule(&d, Some(pk), p);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(pk.clone()),
                None => groups.push((key, vec![pk.clone()])),
            }
        }
        let unseen = d.count.saturating_sub(d.packets.len() as u64);
        let mut records: Vec<Drop> = groups
            .into_iter()
            .map(|((origin, why), packets)| Drop {
                count: packets.len() as u64,
                first_ns: packets.first().map(|x| x.t_ns).unwrap_or(d.first_ns),
                last_ns: packets.last().map(|x| x.t_ns).unwrap_or(d.last_ns),
                origin,
                origin_why: why,
                packets,
                ..d.clone()
            })
            .collect();
        if unseen > 0 {
            let (origin, why) = rule(&d, None, p);
            match records.iter_mut().find(|r| r.origin == origin) {
                Some(r) => {
                    r.count += unseen;
                    r.first_ns = r.first_ns.min(d.first_ns);
                    r.last_ns = r.last_ns.max(d.last_ns);
                }
                None => records.push(Drop { origin, origin_why: why, packets: vec![], ..d.clone() }),
            }
        }
        out.extend(records);
    }
    out
}

/// The fields that tell one packet from another on the wire, as far as
/// they survive forwarding (not the MACs, not the TTL): ARP's operation
/// and addresses; IP's addresses, protocol and identification; the
/// transport's ports, sequence numbers and flags, ICMP's type, code, echo
/// id and sequence. `nat`: without addresses, ports and echo id, which NAT
/// rewrites (the identification, TCP sequence numbers and flags, ICMP
/// type, code and sequence it leaves).
fn identity(h: &Headers, nat: bool) -> Option<String> {
    if let Some(a) = &h.arp {
        return Some(format!("arp {:?} {} {} {}", a.op, a.sender, a.target, a.sender_mac));
    }
    let ip = h.ip.as_ref()?;
    let mut s = if nat {
        format!("ip {} {:?}", ip.proto, ip.id)
    } else {
        format!("ip {} {} {} {:?}", ip.src, ip.dst, ip.proto, ip.id)
    };
    if let Some(i) = h.icmp {
        let id = if nat { None } else { i.id };
        s += &format!(" icmp {} {} {id:?} {:?}", i.kind, i.code, i.seq);
    }
    if let Some(t) = &h.tcp {
        let ports = if nat { (0, 0) } else { (t.sport, t.dport) };
        s += &format!(" tcp {ports:?} {} {} {:?}", t.seq, t.ack, t.flags);
    }
    if let Some(u) = &h.udp {
        let ports = if nat { (0, 0) } else { (u.sport, u.dport) };
        s += &format!(" udp {ports:?} {}", u.len);
    }
    Some(s)
}

/// Ties each dropped packet to the captured frame it was: a frame of the
/// probe's window with the same [`identity`], seen no later than the drop
/// (plus [`SLACK_NS`]); on the drop's own interface if it was captured
/// there, else in its namespace, else anywhere; the latest such frame. A
/// packet NAT rewrote before it was dropped (a reply de-NATed in
/// PREROUTING, then dropped by routing) is tied by the fields NAT leaves,
/// on its own interface or namespace only. Frames must be numbered (the
/// phase's pcapng written) first.
pub fn tie_frames(p: &mut ProbeRecord) {
    struct Seen<'a> {
        lane: &'a str,
        t_ns: u64,
        n: u32,
        id: Option<String>,
        nat_id: Option<String>,
    }
    fn latest<'a>(fs: &[&'a Seen<'a>], pred: impl Fn(&str) -> bool) -> Option<&'a Seen<'a>> {
        fs.iter().copied().filter(|f| pred(f.lane)).max_by_key(|f| (f.t_ns, f.n))
    }
    let frames: Vec<Seen> = p
        .packets
        .iter()
        .flat_map(|(lane, w)| w.frames.iter().map(move |f| (lane.as_str(), f)))
        .map(|(lane, f)| Seen {
            lane,
            t_ns: f.t_ns,
            n: f.pcap_frame,
            id: identity(&f.headers, false),
            nat_id: identity(&f.headers, true),
        })
        .collect();
    let mut ties: Vec<Vec<Option<FrameTie>>> = Vec::new();
    for d in &p.drops {
        let lane = format!("{}/{}", d.ns, d.dev);
        let in_ns = format!("{}/", d.ns);
        let tie = |pk: &DroppedPacket| -> Option<FrameTie> {
            let before = |f: &&Seen| f.t_ns <= pk.t_ns + SLACK_NS;
            let id = identity(&pk.headers, false)?;
            let same: Vec<&Seen> = frames.iter().filter(|f| f.id.as_ref() == Some(&id)).filter(before).collect();
            let f = latest(&same, |l| l == lane)
                .or_else(|| latest(&same, |l| l.starts_with(&in_ns)))
                .or_else(|| latest(&same, |_| true))
                .or_else(|| {
                    let nat = identity(&pk.headers, true)?;
                    let same: Vec<&Seen> =
                        frames.iter().filter(|f| f.nat_id.as_ref() == Some(&nat)).filter(before).collect();
                    latest(&same, |l| l == lane).or_else(|| latest(&same, |l| l.starts_with(&in_ns)))
                })?;
            Some(FrameTie { iface: f.lane.to_string(), pcap_frame: f.n })
        };
        ties.push(d.packets.iter().map(tie).collect());
    }
    for (d, t) in p.drops.iter_mut().zip(ties) {
        for (pk, tie) in d.packets.iter_mut().zip(t) {
            pk.frame = tie;
        }
    }
}

/// The drops that are the incident's.
pub fn incident(drops: &[Drop]) -> impl Iterator<Item = &Drop> {
    drops.iter().filter(|d| d.origin == Origin::Incident)
}

/// Whether `addr` is one of the probe's traffic's, as the frames of its
/// window show them: an address seen in a frame there.
pub fn seen_in_window(p: &ProbeRecord, addr: IpAddr) -> bool {
    p.packets.values().flat_map(|w| &w.frames).any(|f| {
        f.headers.ip.as_ref().is_some_and(|ip| ip.src == addr || ip.dst == addr)
            || f.headers.arp.as_ref().is_some_and(|a| IpAddr::V4(a.sender) == addr || IpAddr::V4(a.target) == addr)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::frames::{FrameRecord, WindowFrames};
    use crate::wire::packet::{Direction, Frame};

    fn ping_spec() -> ProbeSpec {
        serde_json::from_value(serde_json::json!({"kind": "ping", "from": "container", "to": "172.17.0.1"})).unwrap()
    }

    fn ping_outcome(id: u16) -> Outcome {
        serde_json::from_value(serde_json::json!({"kind": "ping", "sent": 3, "replies": 3, "errors": [],
            "rtt_ms": [0.1, 0.1, 0.1], "elapsed_ms": 200.0, "id": id}))
        .unwrap()
    }

    fn echo(reply: bool, id: u16, seq: u16) -> Vec<u8> {
        let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4([172, 17, 0, 1], [172, 17, 0, 2], 64);
        let b = if reply { b.icmpv4_echo_reply(id, seq) } else { b.icmpv4_echo_request(id, seq) };
        let mut out = Vec::new();
        b.write(&mut out, &[0u8; 56]).unwrap();
        out
    }

    /// What the monitor records of a frame: its bytes from the IP header on.
    fn dropped(frame: &[u8], t_ns: u64) -> DroppedPacket {
        let headers = Headers::parse_l3(0x0800, &frame[14..14 + 96.min(frame.len() - 14)]);
        DroppedPacket { t_ns, summary: headers.summary(frame.len()), headers, frame: None }
    }

    fn bucket(ns: &str, dev: &str, reason: &str, at: &str, packets: Vec<DroppedPacket>, count: u64) -> Drop {
        Drop {
            ns: ns.into(),
            dev: dev.into(),
            reason: reason.into(),
            at: at.into(),
            protocol: "IPv4".into(),
            count,
            first_ns: packets.first().map(|p| p.t_ns).unwrap_or(1_000),
            last_ns: packets.last().map(|p| p.t_ns).unwrap_or(1_000),
            packets,
            ..Default::default()
        }
    }

    #[test]
    fn a_window_takes_the_labels_its_probes_gave_and_keeps_the_rest_the_incidents() {
        // Over the whole phase: 5 NO_SOCKET in ping_rcv, no packets seen
        // (the probe's window took them), 1 NETFILTER_DROP.
        let phase = label_window(
            vec![
                bucket("container", "", "NO_SOCKET", "ping_rcv", vec![], 5),
                bucket("host", "eno1", "NETFILTER_DROP", "nft_do_chain", vec![], 1),
            ],
            (0, 10_000),
        );
        assert!(phase.iter().all(|d| d.origin == Origin::Incident), "{phase:?}");
        // The ping probe inside it called 3 of them its own echo replies.
        let own = Drop {
            origin: Origin::ProbeOwn,
            origin_why: "the ping probe's own echo reply".into(),
            ..bucket("container", "", "NO_SOCKET", "ping_rcv", vec![], 3)
        };
        let got = relabel_known(phase, &[own]);
        let count =
            |o: Origin, r: &str| got.iter().filter(|d| d.origin == o && d.reason == r).map(|d| d.count).sum::<u64>();
        assert_eq!(count(Origin::Incident, "NO_SOCKET"), 2);
        assert_eq!(count(Origin::ProbeOwn, "NO_SOCKET"), 3);
        assert_eq!(count(Origin::Incident, "NETFILTER_DROP"), 1);
    }

    #[test]
    fn the_pings_own_replies_are_its_own_and_anothers_are_not() {
        let own = (1..=2).map(|s| dropped(&echo(true, 77, s), 1_000 + s as u64)).collect::<Vec<_>>();
        let other = dropped(&echo(true, 5, 1), 1_500);
        let mut packets = own.clone();
        packets.push(other);
        // Three seen (two ours, one not), one more counted and not seen.
        let d = bucket("container", "eth0", "NO_SOCKET", "ping_rcv", packets, 4);
        let out = label(vec![d], &ping_spec(), &ping_outcome(77), (0, 1_000_000_000));
        let shown: Vec<(Origin, u64)> = out.iter().map(|d| (d.origin, d.count)).collect();
        assert_eq!(shown, vec![(Origin::ProbeOwn, 3), (Origin::Incident, 1)], "{out:#?}");
        assert!(out[0].origin_why.contains("id 77"), "{}", out[0].origin_why);
        assert_eq!(out[1].packets[0].headers.icmp.unwrap().id, Some(5));
        // In another namespace, the same drop is not the probe's.
        let d = bucket("host", "eth0", "NO_SOCKET", "ping_rcv", own, 2);
        let out = label(vec![d], &ping_spec(), &ping_outcome(77), (0, 1_000_000_000));
        assert_eq!(out[0].origin, Origin::Incident);
    }

    #[test]
    fn purges_ipv6_upkeep_and_late_drops_are_not_the_incidents() {
        let spec: ProbeSpec =
            serde_json::from_value(serde_json::json!({"kind": "connect", "from": "container", "to": "10.0.0.1:80"}))
                .unwrap();
        let outcome: Outcome =
            serde_json::from_value(serde_json::json!({"kind": "connect", "result": "ok", "elapsed_ms": 1.0})).unwrap();
        let netlink = Drop {
            protocol: "0x0000".into(),
            ..bucket("host", "", "QUEUE_PURGE", "skb_queue_purge_reason", vec![], 2)
        };
        let mld =
            Drop { protocol: "IPv6".into(), ..bucket("host", "docker0", "NO_TX_TARGET", "br_dev_xmit", vec![], 1) };
        let late = bucket("host", "eno1", "IP_INADDRERRORS", "ip_error", vec![], 1);
        let real = Drop { first_ns: 5_000, ..bucket("host", "eno1", "IP_INADDRERRORS", "ip_error", vec![], 1) };
        let out = label(vec![netlink, mld, late, real], &spec, &outcome, (0, 900));
        // `late` was freed at 1000 ns, inside the slack; pushed 2 ms past the end it is background.
        let origins: Vec<Origin> = out.iter().map(|d| d.origin).collect();
        assert_eq!(origins, vec![Origin::ProbeOwn, Origin::Background, Origin::Incident, Origin::Incident]);
        let late = Drop { first_ns: 3_000_000, ..bucket("host", "eno1", "IP_INADDRERRORS", "ip_error", vec![], 1) };
        let out = label(vec![late], &spec, &outcome, (0, 900));
        assert_eq!(out[0].origin, Origin::Background);
        assert!(out[0].origin_why.contains("after the probe's window"), "{}", out[0].origin_why);
        // A RST of the connection freed after connect returned (1 ms into a
        // 10 ms window) is its closing; the same RST before is not.
        let rst = |t: u64| {
            let mut out = Vec::new();
            etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
                .tcp(80, 40000, 1, 0)
                .rst()
                .write(&mut out, &[])
                .unwrap();
            dropped(&out, t)
        };
        let closing = bucket("container", "eth0", "NOT_SPECIFIED", "tcp_v4_rcv", vec![rst(2_500_000), rst(500_000)], 2);
        let out = label(vec![closing], &spec, &outcome, (0, 10_000_000));
        let shown: Vec<(Origin, u64)> = out.iter().map(|d| (d.origin, d.count)).collect();
        assert_eq!(shown, vec![(Origin::ProbeOwn, 1), (Origin::Incident, 1)], "{out:#?}");
    }

    #[test]
    fn a_dropped_packet_is_tied_to_the_frame_it_was() {
        let mut p = ProbeRecord::for_test(
            "ping",
            serde_json::json!({"from": "container", "to": "172.17.0.1"}),
            serde_json::json!({"sent": 2, "replies": 0, "errors": [], "rtt_ms": [], "elapsed_ms": 1.0}),
        );
        let lane = |iface: &str, frames: Vec<(u64, Vec<u8>, u32)>| {
            let frames = frames
                .into_iter()
                .map(|(t, b, n)| {
                    let mut f = FrameRecord::of(&Frame::ethernet(t, Direction::In, b), iface);
                    f.pcap_frame = n;
                    f
                })
                .collect();
            WindowFrames { frames, truncated: 0 }
        };
        // Requests 1 and 2 seen on eth0 (frames 1, 3) and on the bridge (2, 4).
        p.packets.insert(
            "container/eth0".into(),
            lane("container/eth0", vec![(100, echo(false, 9, 1), 1), (10_000, echo(false, 9, 2), 3)]),
        );
        p.packets.insert(
            "host/br0".into(),
            lane("host/br0", vec![(110, echo(false, 9, 1), 2), (10_010, echo(false, 9, 2), 4)]),
        );
        // The second request dropped on the bridge 10 µs after it was seen there.
        p.drops.push(Drop {
            protocol: "IPv4".into(),
            ..bucket("host", "br0", "NETFILTER_DROP", "nf_hook_slow", vec![dropped(&echo(false, 9, 2), 10_020)], 1)
        });
        // A drop in a namespace without a capture: tied to its frame elsewhere.
        p.drops.push(bucket("host", "", "NETFILTER_DROP", "nft_do_chain", vec![dropped(&echo(false, 9, 1), 200)], 1));
        // A packet no capture saw stays untied.
        p.drops.push(bucket("host", "br0", "QDISC_DROP", "__dev_queue_xmit", vec![dropped(&echo(true, 9, 1), 300)], 1));
        // A reply to 10.2.19.78 seen on eno1, de-NATed to the container and
        // dropped by routing on eno1 (forwarding off): tied by the fields
        // NAT leaves, its echo id rewritten.
        let reply = |dst: [u8; 4], id: u16| {
            let mut out = Vec::new();
            etherparse::PacketBuilder::ethernet2([2; 6], [4; 6])
                .ipv4([10, 2, 19, 80], dst, 64)
                .icmpv4_echo_reply(id, 1)
                .write(&mut out, &[0u8; 56])
                .unwrap();
            // The sender's IP identification, which NAT keeps.
            out[18..20].copy_from_slice(&0x5eedu16.to_be_bytes());
            out
        };
        p.packets.insert("host/eno1".into(), lane("host/eno1", vec![(500, reply([10, 2, 19, 78], 1000), 9)]));
        p.drops.push(bucket(
            "host",
            "eno1",
            "IP_INADDRERRORS",
            "ip_error",
            vec![dropped(&reply([172, 17, 0, 2], 9), 510)],
            1,
        ));
        tie_frames(&mut p);
        let tie = |i: usize| p.drops[i].packets[0].frame.clone();
        assert_eq!(tie(0), Some(FrameTie { iface: "host/br0".into(), pcap_frame: 4 }));
        assert_eq!(tie(1), Some(FrameTie { iface: "host/br0".into(), pcap_frame: 2 }), "in its namespace first");
        assert_eq!(tie(2), None);
        assert_eq!(tie(3), Some(FrameTie { iface: "host/eno1".into(), pcap_frame: 9 }), "through NAT");
    }
}
