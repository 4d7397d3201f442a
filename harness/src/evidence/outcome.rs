//! What a probe saw, as typed records: the outcome half of the evidence.
//! Probes (`run::probe`) produce them; checks, why-lines and the report read
//! their fields by name in code, never from JSON.

use std::collections::BTreeMap;
use std::net::IpAddr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::case::spec::Segment;

/// A probe's outcome, tagged by the probe's kind as in the case file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Outcome {
    Ping(PingOutcome),
    Connect(ConnectOutcome),
    Stream(StreamOutcome),
    Bind(BindOutcome),
    Udp(UdpOutcome),
    Burst(BurstOutcome),
    Dns(DnsOutcome),
    Frame(FrameOutcome),
}

impl Outcome {
    /// `ping`, `connect` or `stream`.
    pub fn kind(&self) -> &'static str {
        match self {
            Outcome::Ping(_) => "ping",
            Outcome::Connect(_) => "connect",
            Outcome::Stream(_) => "stream",
            Outcome::Bind(_) => "bind",
            Outcome::Udp(_) => "udp",
            Outcome::Burst(_) => "burst",
            Outcome::Dns(_) => "dns",
            Outcome::Frame(_) => "frame",
        }
    }

    /// Wall time the probe took, ms.
    pub fn elapsed_ms(&self) -> f64 {
        match self {
            Outcome::Ping(o) => o.elapsed_ms,
            Outcome::Connect(o) => o.elapsed_ms,
            Outcome::Stream(o) => o.elapsed_ms,
            Outcome::Bind(o) => o.elapsed_ms,
            Outcome::Udp(o) => o.elapsed_ms,
            Outcome::Burst(o) => o.elapsed_ms,
            Outcome::Dns(o) => o.elapsed_ms,
            Outcome::Frame(o) => o.elapsed_ms,
        }
    }
}

/// An ICMP error a probe received about its own traffic.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct IcmpError {
    /// A name of the one ICMP vocabulary ([`crate::wire::icmp::NAMES`],
    /// [`crate::wire::icmp::NAMES6`] for IPv6), e.g. `host-unreachable`,
    /// `admin-prohibited`, `no-route`.
    pub kind: String,
    /// The address that sent the error (IPv4 or IPv6).
    pub from: IpAddr,
    /// The echo sequence number it quotes (udp: the datagram's number,
    /// from 1, which the payload carries).
    pub seq: u16,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
/// `ping`: echo requests over a raw ICMP (IPv4) or ICMPv6 (IPv6) socket.
pub struct PingOutcome {
    /// Echo requests sent (packets).
    pub sent: u32,
    /// Echo replies received with our id (packets).
    pub replies: u32,
    pub errors: Vec<IcmpError>,
    /// Round-trip time of each reply, ms, in arrival order.
    pub rtt_ms: Vec<f64>,
    /// From the first request to the end of the wait after the last, ms.
    pub elapsed_ms: f64,
    /// The echo identifier of its requests: its replies, and the kernel's
    /// drops of their copies, are told by it.
    #[serde(default)]
    pub id: u16,
    /// Requests whose `sendto(2)` failed, by errno name (`ENETUNREACH`:
    /// no route, refused at once); empty when every send went out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub send_errors: BTreeMap<String, u32>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
/// `connect`: one TCP connect, after `hold` held connections.
pub struct ConnectOutcome {
    /// `ok`, an errno name (`ECONNREFUSED`, `EHOSTUNREACH`), or `timeout`.
    pub result: String,
    /// From `connect(2)` to its result, ms.
    pub elapsed_ms: f64,
    /// Connections held open (established and accepted) during the connect.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub held: u32,
    /// The source the connect was bound to, when the probe gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<std::net::SocketAddr>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
/// `bind`: one `bind(2)` (and `listen(2)` when asked).
pub struct BindOutcome {
    /// `ok` or the errno name (`EADDRNOTAVAIL`, `EADDRINUSE`, `EACCES`).
    pub result: String,
    /// The call that failed: `socket`, `setsockopt`, `bind` or `listen`; `none` when ok.
    pub failed: String,
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
/// `udp`: datagrams sent, what the listener read, echoes, ICMP errors.
pub struct UdpOutcome {
    /// Datagrams `sendto(2)` accepted.
    pub sent: u32,
    /// Datagrams the harness listener read; `None` without a listener.
    pub received: Option<u32>,
    /// Echoes the sender read back (packets).
    pub replies: u32,
    /// ICMP errors about our datagrams (`IP_RECVERR`), kind and sender.
    pub errors: Vec<IcmpError>,
    /// Datagrams whose `sendto(2)` failed, by errno name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub send_errors: BTreeMap<String, u32>,
    /// The sender's local address and port.
    pub local: Option<std::net::SocketAddr>,
    /// From the first datagram to the end of the wait, ms.
    pub elapsed_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
/// `burst`: concurrent connects against a listener's backlog.
pub struct BurstOutcome {
    /// Connects by result: `ok`, an errno name or `timeout` → how many.
    pub results: BTreeMap<String, u32>,
    /// The listener namespace's `TcpExt.ListenOverflows` delta (the accept
    /// queue was full), and `TcpExt.ListenDrops`.
    pub listen_overflows: i64,
    pub listen_drops: i64,
    /// Connections the listener accepted (0 when `accept = false`).
    pub accepted: u32,
    pub elapsed_ms: f64,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
/// `stream`: a TCP transfer, with optional injection mid-flow.
pub struct StreamOutcome {
    /// Bytes the sender wrote.
    pub bytes_sent: u64,
    /// Bytes the receiver read.
    pub bytes_received: u64,
    /// `none`, an errno name or `timeout`, as each side saw it.
    pub client_error: String,
    pub server_error: String,
    /// From connect to both sides done, ms.
    pub elapsed_ms: f64,
    /// The segments injected mid-flow, if any.
    pub injected: Vec<Injected>,
}

/// What was injected, for the evidence and for matchers (`$injected_ack`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Injected {
    pub segment: Segment,
    /// The crafted segment's TCP sequence and acknowledgment numbers.
    pub seq: u32,
    pub ack: u32,
    /// Its TCP payload, bytes.
    pub len: usize,
    /// The client's window right edge the SEQ was moved past (beyond-window).
    pub right_edge: Option<u32>,
    /// The largest window the client advertised, scaled (beyond-window).
    pub max_window: Option<u32>,
    /// For display only; never parsed.
    pub summary: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
/// `dns`: one lookup, glibc's way; one entry per query type. With
/// `rounds` > 1, `queries` and `local` are those of the slowest lookup and
/// `rounds` sums them all up.
pub struct DnsOutcome {
    pub queries: Vec<DnsQuery>,
    /// The resolver socket's address and port (both queries leave from it).
    pub local: Option<std::net::SocketAddr>,
    /// From the first query to the last answer or the last timeout, ms
    /// (every round's).
    pub elapsed_ms: f64,
    /// How the queries were sent: `back-to-back`, `threads`,
    /// `single-request-reopen`.
    #[serde(default)]
    pub send: String,
    /// Every lookup's outcome summed up, when the probe made more than one.
    #[serde(default)]
    pub rounds: Option<DnsRounds>,
}

/// How one lookup ended, in the words of [`DnsRounds::results`]: `ok`,
/// `resent`, `timeout`, or the errno name a query met.
pub fn dns_lookup_word(queries: &[DnsQuery]) -> String {
    if let Some(q) = queries.iter().find(|q| q.rcode.is_none() && q.result != "timeout") {
        return q.result.clone();
    }
    if queries.iter().any(|q| q.rcode.is_none()) {
        "timeout".into()
    } else if queries.iter().any(|q| q.sent > 1) {
        "resent".into()
    } else {
        "ok".into()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
/// The lookups of a `dns` probe with `rounds`, each from a new socket.
pub struct DnsRounds {
    /// Lookups made.
    pub rounds: u32,
    /// Lookups by how they ended: `ok` (every query answered at its first
    /// send), `resent` (every query answered, some only after a resend:
    /// the incident's 5 s), `timeout` (some query never answered), or the
    /// errno name a query met.
    pub results: BTreeMap<String, u32>,
    /// Queries never answered, by type (`A`, `AAAA`).
    pub lost: BTreeMap<String, u32>,
    /// A lookup's latency (first send to its last answer, the unanswered
    /// counted at their timeout), ms: the median and the largest.
    pub latency_median_ms: f64,
    pub latency_max_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct DnsQuery {
    /// `A` or `AAAA`.
    pub qtype: String,
    /// `ok` (NOERROR), an rcode name (`NXDOMAIN`, `SERVFAIL`), `timeout`
    /// after every attempt, or an errno name (`ECONNREFUSED`).
    pub result: String,
    /// The response's rcode, when one came.
    pub rcode: Option<String>,
    /// Addresses in the answer section.
    pub answers: Vec<std::net::IpAddr>,
    /// Times the query was sent (1 + retries).
    pub sent: u32,
    /// From the query's first send to its answer, ms.
    pub latency_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
/// `frame`: a crafted frame sent out of an interface.
pub struct FrameOutcome {
    /// Times it was sent.
    pub sent: u32,
    /// Its length, bytes.
    pub len: u32,
    /// What it was, for people (never parsed).
    pub summary: String,
    pub elapsed_ms: f64,
}
