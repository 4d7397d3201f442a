//! The two file formats, as written by people: fixtures (`fixtures/*.toml`,
//! topologies) and cases (`cases/*.toml`, incidents). Parsing rejects unknown
//! keys and wrong types with the file, line and reason; [`crate::case::plan`] then
//! checks every cross-reference before anything is built.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::str::FromStr;

use indexmap::IndexMap;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};
use toml::Spanned;

pub use crate::case::syntax::{Cidr, Handle, Minor, Rate, RouteDst};

use crate::case::cmp::Cmp;

/// A sysctl value as written: `0`, `1` or `"4096 87380 6291456"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SysVal {
    Int(i64),
    Text(String),
}

impl fmt::Display for SysVal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SysVal::Int(i) => write!(f, "{i}"),
            SysVal::Text(t) => write!(f, "{t}"),
        }
    }
}

// ------------------------------------------------------------ fixtures

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureFile {
    pub description: String,
    #[serde(rename = "namespace")]
    pub namespaces: Vec<NsSpec>,
    #[serde(default, rename = "bridge")]
    pub bridges: Vec<BridgeSpec>,
    #[serde(default, rename = "veth")]
    pub veths: Vec<VethSpec>,
    #[serde(default, rename = "route")]
    pub routes: Vec<RouteSpec>,
    #[serde(default, rename = "firewall")]
    pub firewall: Vec<FirewallSpec>,
    /// Links of any kind, created in order after the bridges and veths.
    #[serde(default, rename = "link")]
    pub links: Vec<Spanned<crate::case::object::LinkSpec>>,
    /// Addresses with flags (`nodad`), added after the links.
    #[serde(default, rename = "address")]
    pub addresses: Vec<Spanned<crate::case::object::AddrSpec>>,
    /// Neighbour entries (`ip neigh replace`), after the addresses.
    #[serde(default, rename = "neighbour")]
    pub neighbours: Vec<Spanned<crate::case::object::NeighSpec>>,
    /// Forwarding entries (`bridge fdb replace`), after the neighbours.
    #[serde(default, rename = "fdb")]
    pub fdb: Vec<Spanned<crate::case::object::FdbSpec>>,
    /// Policy-routing rules (`ip rule add`), after the routes.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Spanned<crate::case::object::RuleObj>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NsSpec {
    pub name: Spanned<String>,
    /// Per-namespace sysctls set right after creation (spanned: the loader
    /// names the line of a bad one).
    #[serde(default)]
    pub sysctls: IndexMap<String, Spanned<SysVal>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BridgeSpec {
    pub ns: Spanned<String>,
    pub name: String,
    #[serde(default)]
    pub tx_queue_len: Option<u32>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub addresses: Vec<Cidr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VethSpec {
    pub a: VethEnd,
    pub b: VethEnd,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VethEnd {
    pub ns: Spanned<String>,
    pub name: String,
    #[serde(default)]
    pub addresses: Vec<Cidr>,
    /// A bridge in the same namespace to enslave this end to.
    #[serde(default)]
    pub master: Option<Spanned<String>>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub tx_queue_len: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    pub ns: Spanned<String>,
    /// `default` or a prefix such as `10.0.0.0/8`.
    pub to: Spanned<RouteDst>,
    /// The gateway, IPv4 or IPv6.
    #[serde(default)]
    pub via: Option<IpAddr>,
    #[serde(default)]
    pub dev: Option<String>,
    #[serde(default)]
    pub onlink: bool,
    /// `unicast` (default), `blackhole`, `unreachable`, `prohibit`.
    #[serde(default, rename = "type")]
    pub kind: crate::case::object::RouteType,
    #[serde(default)]
    pub table: Option<u32>,
    #[serde(default)]
    pub metric: Option<u32>,
    #[serde(default)]
    pub proto: Option<String>,
}

impl RouteSpec {
    /// The typed route, as a step would add it.
    pub fn obj(&self) -> crate::case::object::RouteObj {
        crate::case::object::RouteObj {
            ns: self.ns.get_ref().clone(),
            to: *self.to.get_ref(),
            via: self.via,
            dev: self.dev.clone(),
            onlink: self.onlink,
            kind: self.kind,
            table: self.table,
            metric: self.metric,
            proto: self.proto.clone(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FirewallSpec {
    pub ns: Spanned<String>,
    /// Each entry is the argument list of one `iptables` call, split into
    /// words as a POSIX shell would (`--comment "kubernetes service"` is one
    /// argument); checked at load.
    #[serde(default)]
    pub iptables: Vec<String>,
    /// An `iptables-restore` file, relative to the fixture file; loaded
    /// before the `iptables` lines.
    #[serde(default)]
    pub iptables_restore: Option<Spanned<String>>,
    /// The backend `iptables_restore` goes to (`legacy` or `nft`); default:
    /// the system's `iptables-restore`.
    #[serde(default)]
    pub backend: Option<crate::case::object::RestoreBackend>,
    /// An nft ruleset file (`nft -f`), relative to the fixture file; loaded
    /// after the iptables rules.
    #[serde(default)]
    pub nft_file: Option<Spanned<String>>,
    /// An inline nft ruleset, loaded last.
    #[serde(default)]
    pub nft: Option<String>,
    /// The rulesets above, read by the loader, in the order they load.
    #[serde(skip)]
    pub rulesets: Vec<crate::case::object::Ruleset>,
}

// ------------------------------------------------------------ cases

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseFile {
    pub id: Spanned<String>,
    pub title: String,
    pub urls: Spanned<Vec<Spanned<String>>>,
    /// What the user saw, in their words.
    pub symptom: String,
    /// The documented fix, in words.
    pub fix: String,
    pub fixture: Spanned<String>,
    /// Userspace tools the case runs (`iptables`, `nft`, `tc`), kernel
    /// features as `sysctl:<key>`, CPUs as `cpus:N`: missing ones make the
    /// case a skip with that reason.
    #[serde(default)]
    pub requires: Vec<String>,
    /// Interfaces captured in every phase, `ns/dev`.
    #[serde(default)]
    pub capture: Vec<Spanned<String>>,
    /// Steps applied after the fixture in every phase (e.g. shorter timers).
    #[serde(default)]
    pub setup: Vec<Spanned<Step>>,
    /// None when every phase observes through `expect_phase`, spans and actors.
    #[serde(default)]
    pub probes: IndexMap<String, Spanned<ProbeSpec>>,
    #[serde(rename = "phase")]
    pub phases: Vec<Spanned<PhaseSpec>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    /// `baseline`, `fault`, `fault-*`, `fix` or `fix-*`.
    pub name: String,
    /// Kernel range this variant of the phase applies to (`>=6.1`).
    #[serde(default)]
    pub kernel: Option<Spanned<String>>,
    /// The upstream change that makes kernels differ here.
    #[serde(default)]
    pub upstream: Option<String>,
    /// A kernel range this case was never run on (no guest of it): why the
    /// behaviour there is not claimed. Such a variant runs nothing and
    /// asserts nothing; on a kernel it covers the whole case is a skip with
    /// this reason, never a pass.
    #[serde(default)]
    pub unchecked: Option<Spanned<String>>,
    /// Why this phase exists / what it shows, for the report.
    #[serde(default)]
    pub note: Option<String>,
    /// Phases whose steps are replayed first on the fresh topology (a fix
    /// phase replays the fault).
    #[serde(default)]
    pub after: Option<Spanned<String>>,
    #[serde(default)]
    pub steps: Vec<Spanned<Step>>,
    /// Processes that run through the phase, by name: started after the
    /// setup steps (before the phase's steps), ended when the phase ends.
    #[serde(default)]
    pub actors: IndexMap<String, Spanned<ActorSpec>>,
    /// What the actors must have counted by the phase's end:
    /// `"name: counter" = count`.
    #[serde(default)]
    pub expect_actors: IndexMap<String, Count>,
    /// Expectations over the whole phase: from before its actors start and
    /// its steps run to after its last probe and its actors' end.
    #[serde(default)]
    pub expect_phase: Option<Spanned<PhaseExpect>>,
    /// Named spans of steps with expectations of their own, after the
    /// phase's own steps.
    #[serde(default)]
    pub span: Vec<Spanned<SpanSpec>>,
    #[serde(default)]
    pub expect: IndexMap<String, Spanned<Expect>>,
}

/// A neighbour expectation: a state alone, or a state and/or a link-layer address.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum NeighWant {
    State(String),
    Entry(NeighEntry),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighEntry {
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub lladdr: Option<String>,
}

/// Expectations over a window with no probe: the whole phase
/// (`[phase.expect_phase]`) or a named span of its steps
/// (`[[phase.span]]`'s `expect`). The keys mean what they mean under a
/// probe, over that window instead.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseExpect {
    /// Counter deltas, `"ns: Group.Field" = count`.
    #[serde(default)]
    pub counters: IndexMap<String, Count>,
    /// Captured frames, `"ns/dev: matcher" = count`.
    #[serde(default)]
    pub packets: IndexMap<String, Count>,
    /// The kernel's drops by reason, the incident's only, `"ns[/dev]: REASON" = count`.
    #[serde(default)]
    pub drops: IndexMap<String, Count>,
    /// iptables/nft rule counter deltas, `"ns: <rule as iptables -S prints it>" = count`.
    #[serde(default)]
    pub rules: IndexMap<String, Count>,
    /// Conntrack entries at the window's end, `"ns: word word" = count`.
    #[serde(default)]
    pub conntrack: IndexMap<String, Count>,
}

/// `[[phase.span]]`: a named span of steps, run after the phase's own
/// steps (spans in file order), with expectations over exactly their
/// window: from before its first step to after its last.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpanSpec {
    pub name: String,
    #[serde(default)]
    pub steps: Vec<Spanned<Step>>,
    pub expect: Spanned<PhaseExpect>,
}

/// A process that runs through a phase in a namespace: a built-in (a
/// thread of the harness) or a literal command line.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ActorSpec {
    /// Reads datagrams on `listen` and sends each back. Counters: `received`, `echoed`.
    UdpEcho { ns: String, listen: SocketAddr },
    /// Reads datagrams on `listen`. Counter: `received`.
    UdpSink { ns: String, listen: SocketAddr },
    /// A DNS server on `listen` answering A/AAAA from `answers` (name →
    /// addresses; any other name NXDOMAIN), losing the first `drop_a` A and
    /// `drop_aaaa` AAAA queries. Counters: `received`, `answered`, `dropped`.
    Dns {
        ns: String,
        listen: SocketAddr,
        #[serde(default)]
        answers: IndexMap<String, Vec<IpAddr>>,
        #[serde(default)]
        drop_a: u32,
        #[serde(default)]
        drop_aaaa: u32,
    },
    /// A TCP listener on `listen` with `backlog`; `on_accept`: `hold` (keep
    /// the connection), `close` (FIN), `reset` (RST, SO_LINGER 0) or `never`
    /// (do not accept). Counters: `accepted`.
    TcpServer {
        ns: String,
        listen: SocketAddr,
        #[serde(default = "defaults::backlog")]
        backlog: u32,
        #[serde(default)]
        on_accept: AcceptPolicy,
    },
    /// IPv6 router advertisements out of `dev` to ff02::1 every
    /// `interval_ms`: `router_lifetime` s (0: not a default router) and, if
    /// given, a prefix (on-link, autonomous). Counter: `sent`.
    Ra {
        ns: String,
        dev: String,
        #[serde(default)]
        prefix: Option<Cidr>,
        #[serde(default = "defaults::router_lifetime")]
        router_lifetime: u16,
        #[serde(default = "defaults::ra_interval_ms")]
        interval_ms: u64,
    },
    /// A literal command line (`dnsmasq -k …`, `socat …`), through `sh -c
    /// "exec …"` in the namespace, in its own process group; ready when
    /// `ready_listening` (`tcp:53`, `udp:5353`) has a socket in the
    /// namespace, killed with its group when the phase ends. Counters:
    /// `exited` (1 if it ended by itself), `exit_code`.
    Command {
        ns: String,
        run: String,
        #[serde(default)]
        ready_listening: Option<String>,
        #[serde(default = "defaults::ready_timeout_ms")]
        ready_timeout_ms: u64,
    },
}

impl ActorSpec {
    pub fn ns(&self) -> &str {
        match self {
            ActorSpec::UdpEcho { ns, .. }
            | ActorSpec::UdpSink { ns, .. }
            | ActorSpec::Dns { ns, .. }
            | ActorSpec::TcpServer { ns, .. }
            | ActorSpec::Ra { ns, .. }
            | ActorSpec::Command { ns, .. } => ns,
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            ActorSpec::UdpEcho { .. } => "udp-echo",
            ActorSpec::UdpSink { .. } => "udp-sink",
            ActorSpec::Dns { .. } => "dns",
            ActorSpec::TcpServer { .. } => "tcp-server",
            ActorSpec::Ra { .. } => "ra",
            ActorSpec::Command { .. } => "command",
        }
    }

    /// The counters this kind of actor keeps.
    pub fn counters(&self) -> &'static [&'static str] {
        match self {
            ActorSpec::UdpEcho { .. } => &["received", "echoed"],
            ActorSpec::UdpSink { .. } => &["received"],
            ActorSpec::Dns { .. } => &["received", "answered", "dropped"],
            ActorSpec::TcpServer { .. } => &["accepted"],
            ActorSpec::Ra { .. } => &["sent"],
            ActorSpec::Command { .. } => &["exited", "exit_code"],
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum AcceptPolicy {
    #[default]
    Hold,
    Close,
    Reset,
    Never,
}

/// A change applied to the topology.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Step {
    /// Write a per-namespace sysctl.
    Sysctl { ns: String, key: String, value: SysVal },
    /// Write a global setting (`net.netfilter.nf_conntrack_max`, the
    /// neighbour table's `gc_thresh*`): shared with the host, so only where
    /// allowed, and put back when the phase ends or the run dies
    /// ([`crate::safety::globals`]).
    GlobalSysctl { key: String, value: SysVal },
    /// A literal command line, as a customer ran it, through `sh -c` inside
    /// the namespace; it must exit 0.
    Sh { ns: String, run: String },
    /// An HTB root qdisc, over netlink: `tc qdisc add dev DEV root handle
    /// HANDLE htb [default DEFAULT] [direct_qlen N]` (`default` in hex, as tc).
    Htb {
        ns: String,
        dev: String,
        #[serde(default = "defaults::htb_handle")]
        handle: Handle,
        #[serde(default)]
        default: Option<Minor>,
        #[serde(default)]
        direct_qlen: Option<u32>,
    },
    /// An HTB class: `tc class add dev DEV parent P classid C htb rate R`.
    HtbClass { ns: String, dev: String, parent: Handle, classid: Handle, rate: Rate },
    /// `tc qdisc del dev DEV root`.
    QdiscDel { ns: String, dev: String },
    /// Link settings over netlink.
    Link {
        ns: String,
        dev: String,
        #[serde(default)]
        tx_queue_len: Option<u32>,
        #[serde(default)]
        mtu: Option<u32>,
    },
    /// An nft ruleset, `nft -f`: inline (`ruleset`) or a `file` relative to
    /// the case file (read when the case loads).
    Nft {
        ns: String,
        #[serde(default)]
        ruleset: Option<String>,
        #[serde(default)]
        file: Option<String>,
    },
    /// An `iptables-restore` file relative to the case file, into the
    /// system's backend or the one named (`legacy`, `nft`); `noflush` keeps
    /// the tables' other rules.
    IptablesRestore {
        ns: String,
        file: String,
        #[serde(default)]
        backend: Option<crate::case::object::RestoreBackend>,
        #[serde(default)]
        noflush: bool,
        /// The file's text, read by the loader.
        #[serde(skip)]
        text: String,
    },
    /// A TBF root qdisc, over netlink: `tc qdisc add dev DEV root handle H
    /// tbf rate R burst B latency L` (burst in tc's sizes: `15k`, `256mb`).
    Tbf {
        ns: String,
        dev: String,
        #[serde(default = "defaults::htb_handle")]
        handle: Handle,
        rate: Rate,
        burst: crate::case::syntax::Size,
        #[serde(default = "defaults::tbf_latency_ms")]
        latency_ms: u32,
    },
    /// `tc qdisc add dev DEV handle ffff: ingress`.
    Ingress { ns: String, dev: String },
    /// `tc filter add dev DEV parent ffff: protocol all u32 match u32 0 0
    /// action mirred egress redirect dev TO` (needs `ingress` on DEV first).
    Redirect { ns: String, dev: String, to: String },
    /// `ip link add`: a link of any kind ([`crate::case::object::LinkSpec`]).
    LinkAdd(crate::case::object::LinkSpec),
    /// `ip link set dev DEV ...`, moves to another namespace included.
    LinkSet(crate::case::object::LinkSet),
    /// `ip link del dev DEV` (a veth's peer goes with it).
    LinkDel { ns: String, dev: String },
    /// `ip addr add ADDR dev DEV [nodad]`.
    AddrAdd(crate::case::object::AddrSpec),
    /// `ip addr del ADDR dev DEV`.
    AddrDel(crate::case::object::AddrSpec),
    /// `ip neigh replace ADDR lladdr MAC dev DEV nud STATE`.
    NeighAdd(crate::case::object::NeighSpec),
    /// `ip neigh del ADDR dev DEV`.
    NeighDel(crate::case::object::NeighSpec),
    /// `bridge fdb replace MAC dev DEV [dst IP] self|master`.
    FdbAdd(crate::case::object::FdbSpec),
    /// `bridge fdb del MAC dev DEV ...`.
    FdbDel(crate::case::object::FdbSpec),
    /// `ip rule add ...`.
    RuleAdd(crate::case::object::RuleObj),
    /// `ip rule del ...`.
    RuleDel(crate::case::object::RuleObj),
    /// `ip route add ...`.
    RouteAdd(crate::case::object::RouteObj),
    /// `ip route del ...`.
    RouteDel(crate::case::object::RouteObj),
}

impl Step {
    /// The ruleset a firewall step loads, with its text (the loader has
    /// read any file by then).
    pub fn ruleset(&self) -> Option<crate::case::object::Ruleset> {
        use crate::case::object::{Ruleset, RulesetKind};
        match self {
            Step::Nft { ns, ruleset, file } => Some(Ruleset {
                ns: ns.clone(),
                kind: RulesetKind::Nft,
                origin: file.clone().unwrap_or_else(|| "inline".into()),
                text: ruleset.clone().unwrap_or_default(),
            }),
            Step::IptablesRestore { ns, file, backend, noflush, text } => Some(Ruleset {
                ns: ns.clone(),
                kind: RulesetKind::IptablesRestore { backend: *backend, noflush: *noflush },
                origin: file.clone(),
                text: text.clone(),
            }),
            _ => None,
        }
    }

    /// The namespace the step acts in; none for a global setting.
    pub fn ns(&self) -> Option<&str> {
        match self {
            Step::Sysctl { ns, .. }
            | Step::Sh { ns, .. }
            | Step::Htb { ns, .. }
            | Step::HtbClass { ns, .. }
            | Step::QdiscDel { ns, .. }
            | Step::Link { ns, .. }
            | Step::Nft { ns, .. }
            | Step::IptablesRestore { ns, .. }
            | Step::LinkDel { ns, .. }
            | Step::Tbf { ns, .. }
            | Step::Ingress { ns, .. }
            | Step::Redirect { ns, .. } => Some(ns),
            Step::LinkAdd(l) => Some(&l.ns),
            Step::LinkSet(l) => Some(&l.ns),
            Step::AddrAdd(a) | Step::AddrDel(a) => Some(&a.ns),
            Step::RouteAdd(r) | Step::RouteDel(r) => Some(&r.ns),
            Step::NeighAdd(n) | Step::NeighDel(n) => Some(&n.ns),
            Step::RuleAdd(r) | Step::RuleDel(r) => Some(&r.ns),
            Step::FdbAdd(x) | Step::FdbDel(x) => Some(&x.ns),
            Step::GlobalSysctl { .. } => None,
        }
    }

    /// The longest the step may run, in ms: an `sh` step until the runner
    /// kills it; the others are single netlink or `/proc` writes, counted as 0.
    pub fn worst_case_ms(&self) -> u64 {
        match self {
            Step::Sh { .. } => limits::SH_STEP_MS,
            _ => 0,
        }
    }

    /// The interface the step acts on, if any.
    pub fn dev(&self) -> Option<&str> {
        match self {
            Step::Htb { dev, .. }
            | Step::HtbClass { dev, .. }
            | Step::QdiscDel { dev, .. }
            | Step::Link { dev, .. }
            | Step::LinkDel { dev, .. }
            | Step::Tbf { dev, .. }
            | Step::Ingress { dev, .. }
            | Step::Redirect { dev, .. } => Some(dev),
            Step::LinkSet(l) => Some(&l.dev),
            Step::AddrAdd(a) | Step::AddrDel(a) => Some(&a.dev),
            Step::RouteAdd(r) | Step::RouteDel(r) => r.dev.as_deref(),
            Step::NeighAdd(n) | Step::NeighDel(n) => Some(&n.dev),
            Step::FdbAdd(x) | Step::FdbDel(x) => Some(&x.dev),
            _ => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Step::Sysctl { ns, key, value } => write!(f, "[{ns}] sysctl -w {key}={value}"),
            Step::GlobalSysctl { key, value } => write!(f, "[global] sysctl -w {key}={value}"),
            Step::Sh { ns, run } => write!(f, "[{ns}] {run}"),
            Step::Htb { ns, dev, handle, default, direct_qlen } => {
                write!(f, "[{ns}] qdisc add dev {dev} root handle {handle} htb")?;
                if let Some(d) = default {
                    write!(f, " default {d}")?;
                }
                if let Some(q) = direct_qlen {
                    write!(f, " direct_qlen {q}")?;
                }
                write!(f, " (netlink)")
            }
            Step::HtbClass { ns, dev, parent, classid, rate } => {
                write!(f, "[{ns}] class add dev {dev} parent {parent} classid {classid} htb rate {rate} (netlink)")
            }
            Step::QdiscDel { ns, dev } => write!(f, "[{ns}] qdisc del dev {dev} root (netlink)"),
            Step::Link { ns, dev, tx_queue_len, mtu } => {
                write!(f, "[{ns}] link set dev {dev}")?;
                if let Some(q) = tx_queue_len {
                    write!(f, " txqueuelen {q}")?;
                }
                if let Some(m) = mtu {
                    write!(f, " mtu {m}")?;
                }
                write!(f, " (netlink)")
            }
            Step::Nft { .. } | Step::IptablesRestore { .. } => match self.ruleset() {
                Some(r) if r.origin == "inline" => {
                    let first = r.text.lines().map(str::trim).find(|l| !l.is_empty() && !l.starts_with('#'));
                    write!(
                        f,
                        "[{}] nft -f - <<< '{}{}'",
                        r.ns,
                        first.unwrap_or_default(),
                        if r.text.trim().lines().count() > 1 { " ..." } else { "" }
                    )
                }
                Some(r) => write!(f, "[{}] {} < {}", r.ns, r.argv().join(" "), r.origin),
                None => Ok(()),
            },
            Step::Tbf { ns, dev, handle, rate, burst, latency_ms } => write!(
                f,
                "[{ns}] qdisc add dev {dev} root handle {handle} tbf rate {rate} burst {burst} latency {latency_ms}ms (netlink)"
            ),
            Step::Ingress { ns, dev } => write!(f, "[{ns}] qdisc add dev {dev} handle ffff: ingress (netlink)"),
            Step::Redirect { ns, dev, to } => write!(
                f,
                "[{ns}] filter add dev {dev} parent ffff: protocol all u32 match u32 0 0 action mirred egress redirect dev {to} (netlink)"
            ),
            Step::LinkAdd(l) => l.fmt(f),
            Step::LinkSet(l) => l.fmt(f),
            Step::LinkDel { ns, dev } => write!(f, "[{ns}] link del dev {dev} (netlink)"),
            Step::AddrAdd(a) => f.write_str(&a.show("add")),
            Step::AddrDel(a) => f.write_str(&a.show("del")),
            Step::RouteAdd(r) => f.write_str(&r.show("add")),
            Step::NeighAdd(n) => f.write_str(&n.show("replace")),
            Step::RuleAdd(r) => f.write_str(&r.show("add")),
            Step::RuleDel(r) => f.write_str(&r.show("del")),
            Step::NeighDel(n) => f.write_str(&n.show("del")),
            Step::FdbAdd(x) => f.write_str(&x.show("replace")),
            Step::FdbDel(x) => f.write_str(&x.show("del")),
            Step::RouteDel(r) => f.write_str(&r.show("del")),
        }
    }
}

/// An interface of a namespace, written `ns/dev` (`host/eno1`) everywhere a
/// case names one; parsed once, when the file is read.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Iface {
    pub ns: String,
    pub dev: String,
}

impl std::fmt::Display for Iface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.ns, self.dev)
    }
}

/// `ns/dev` → [`Iface`].
///
/// # Errors
/// A sentence saying how to write it, quoting `s`.
pub fn parse_iface(s: &str) -> Result<Iface, String> {
    match s.split_once('/') {
        Some((ns, dev)) if !ns.trim().is_empty() && !dev.trim().is_empty() => {
            Ok(Iface { ns: ns.trim().into(), dev: dev.trim().into() })
        }
        _ => Err(format!("{s:?}: write namespace/interface, e.g. host/eno1")),
    }
}

impl std::str::FromStr for Iface {
    type Err = String;
    fn from_str(s: &str) -> Result<Iface, String> {
        parse_iface(s)
    }
}

impl Serialize for Iface {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Iface {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        parse_iface(&s).map_err(de::Error::custom)
    }
}

impl schemars::JsonSchema for Iface {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Iface".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({ "type": "string", "description": "`namespace/interface`", "pattern": "^[^/]+/[^/]+$" })
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ProbeSpec {
    /// ICMP echo (ICMPv6 echo to an IPv6 address).
    Ping {
        from: String,
        to: IpAddr,
        #[serde(default = "defaults::count")]
        count: u32,
        #[serde(default = "defaults::interval_ms")]
        interval_ms: u64,
        /// How long to listen after the last request.
        #[serde(default = "defaults::wait_ms")]
        wait_ms: u64,
    },
    /// TCP connect, with an optional listener.
    Connect {
        from: String,
        to: SocketAddr,
        #[serde(default)]
        listen_in: Option<String>,
        /// Where the listener binds, when not `to` (a service VIP whose
        /// backend listens on its own address).
        #[serde(default)]
        listen_on: Option<SocketAddr>,
        #[serde(default = "defaults::timeout_ms")]
        timeout_ms: u64,
        /// Connections opened first and held open until the probe ends (each
        /// must succeed and be accepted: they fill per-connection state such
        /// as conntrack entries); the probe's own connect comes after them.
        #[serde(default)]
        hold: u32,
        /// The source the probe's own connect binds first (`addr:port`, port
        /// 0 = any): a client pinned to one address or port.
        #[serde(default)]
        src: Option<SocketAddr>,
    },
    /// `bind(2)` of a TCP or UDP socket: the errno is the outcome.
    Bind {
        from: String,
        addr: SocketAddr,
        #[serde(default)]
        proto: Proto,
        /// `IP_FREEBIND`/`IPV6_FREEBIND`: bind an address the namespace does not (yet) have.
        #[serde(default)]
        freebind: bool,
        /// `IP_TRANSPARENT` (needs CAP_NET_ADMIN).
        #[serde(default)]
        transparent: bool,
        /// TCP only: `listen(2)` after a successful bind.
        #[serde(default)]
        listen: bool,
    },
    /// UDP datagrams from `from` to `to`, `count` of them `interval_ms`
    /// apart; a harness listener in `listen_in` counts them (and echoes them
    /// when `echo`), and ICMP errors come back through `IP_RECVERR`.
    Udp {
        from: String,
        to: SocketAddr,
        /// The sender's source `addr:port` (port 0 = any).
        #[serde(default)]
        src: Option<SocketAddr>,
        #[serde(default)]
        listen_in: Option<String>,
        #[serde(default)]
        listen_on: Option<SocketAddr>,
        #[serde(default)]
        echo: bool,
        #[serde(default = "defaults::count")]
        count: u32,
        /// Payload bytes per datagram (at least 2: the sequence number).
        #[serde(default = "defaults::udp_size")]
        size: u32,
        #[serde(default = "defaults::interval_ms")]
        interval_ms: u64,
        #[serde(default = "defaults::wait_ms")]
        wait_ms: u64,
    },
    /// A name resolved through `server` as glibc does: A and AAAA in
    /// parallel from one socket, `timeout_ms` per attempt, `attempts` tries.
    Dns {
        from: String,
        server: SocketAddr,
        name: String,
        #[serde(default = "defaults::dns_types")]
        types: Vec<DnsType>,
        /// glibc `options timeout:N`, in ms (glibc's default 5 s).
        #[serde(default = "defaults::dns_timeout_ms")]
        timeout_ms: u64,
        /// glibc `options attempts:M` (default 2).
        #[serde(default = "defaults::dns_attempts")]
        attempts: u32,
        #[serde(default)]
        src: Option<SocketAddr>,
        /// Lookups one after another, each from a new socket (a new source
        /// port), as glibc opens one per `getaddrinfo` call (default 1).
        #[serde(default = "defaults::one")]
        rounds: u32,
        /// How a lookup sends its queries (default `back-to-back`).
        #[serde(default)]
        send: DnsSend,
    },
    /// A crafted frame sent `count` times out of `at` (an `AF_PACKET` send,
    /// as if that host sent it): Ethernet, then ARP, or IPv4/IPv6 with TCP
    /// or UDP, every field from the case.
    Frame {
        at: Iface,
        #[serde(default = "defaults::one")]
        count: u32,
        /// Ethernet source; default the interface's own address.
        #[serde(default)]
        src_mac: Option<String>,
        /// Ethernet destination; default broadcast.
        #[serde(default)]
        dst_mac: Option<String>,
        #[serde(default)]
        arp: Option<FrameArp>,
        #[serde(default)]
        ip: Option<FrameIp>,
        #[serde(default)]
        tcp: Option<FrameTcp>,
        #[serde(default)]
        udp: Option<FrameUdp>,
    },
    /// `count` concurrent TCP connects to a listener with backlog `backlog`
    /// that accepts (`accept = true`) or never does.
    Burst {
        from: String,
        to: SocketAddr,
        listen_in: String,
        #[serde(default)]
        listen_on: Option<SocketAddr>,
        #[serde(default = "defaults::one")]
        backlog: u32,
        #[serde(default)]
        accept: bool,
        #[serde(default = "defaults::burst_count")]
        count: u32,
        #[serde(default = "defaults::timeout_ms")]
        timeout_ms: u64,
    },
    /// A TCP transfer between a client and a server.
    Stream {
        from: String,
        to: SocketAddr,
        server_in: String,
        #[serde(default = "defaults::bytes")]
        bytes: u64,
        #[serde(default = "defaults::timeout_ms")]
        timeout_ms: u64,
        /// `upload` (client sends, the default) or `download`.
        #[serde(default)]
        direction: Direction,
        /// SO_RCVBUF of the receiving side, set before connect.
        #[serde(default)]
        rcvbuf: Option<u32>,
        /// A crafted segment injected mid-flow.
        #[serde(default)]
        inject: Option<InjectSpec>,
    },
}

/// `arp = { op = "request", sender = "172.17.0.2", target = "172.17.0.2" }`:
/// a gratuitous ARP when sender = target. `sha` defaults to the frame's
/// source MAC, `tha` to zeros (request) or the destination MAC (reply).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameArp {
    #[serde(default = "defaults::arp_op")]
    pub op: String,
    pub sender: Ipv4Addr,
    pub target: Ipv4Addr,
    #[serde(default)]
    pub sha: Option<String>,
    #[serde(default)]
    pub tha: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameIp {
    pub src: IpAddr,
    pub dst: IpAddr,
    #[serde(default = "defaults::ttl")]
    pub ttl: u8,
}

/// `tcp = { sport = 40000, dport = 80, flags = "S", seq = 1 }`: flags in
/// tcpdump's letters (`S`, `S.`, `R`, `F.`, `P.`), `.` being ACK.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameTcp {
    pub sport: u16,
    pub dport: u16,
    #[serde(default = "defaults::syn")]
    pub flags: String,
    #[serde(default)]
    pub seq: u32,
    #[serde(default)]
    pub ack: u32,
    #[serde(default = "defaults::window")]
    pub window: u16,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FrameUdp {
    pub sport: u16,
    pub dport: u16,
    /// Payload bytes (zeros).
    #[serde(default)]
    pub len: u16,
}

/// How the `dns` probe sends a lookup's queries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum DnsSend {
    /// One thread, one `send` after the other on one socket, as glibc's
    /// `sendmmsg` of A and AAAA.
    #[default]
    BackToBack,
    /// One thread per query, each on its own CPU, released together (a
    /// spin barrier), on one socket: both datagrams reach conntrack at the
    /// same instant on two CPUs, as in the incident.
    Threads,
    /// `options single-request-reopen` as the incident's workaround: one
    /// query at a time, each from a new socket, the next sent after the
    /// previous one's answer or timeout.
    SingleRequestReopen,
}

impl DnsSend {
    pub fn word(self) -> &'static str {
        match self {
            DnsSend::BackToBack => "back-to-back",
            DnsSend::Threads => "threads",
            DnsSend::SingleRequestReopen => "single-request-reopen",
        }
    }
}

/// A DNS query type the `dns` probe asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
pub enum DnsType {
    A,
    #[serde(rename = "AAAA")]
    Aaaa,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Proto {
    #[default]
    Tcp,
    Udp,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    #[default]
    Upload,
    Download,
}

/// Which segment to inject, as a function of the flow seen so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Segment {
    /// The latest data segment from the server with the current ACK, its
    /// SEQ moved 1 GiB past the right edge of the client's advertised
    /// window: far beyond the overshoot conntrack tolerates from sloppy TCPs
    /// (up to the receiver's max window, newer kernels), and beyond the real
    /// edge even if the capture missed the latest window update. INVALID on
    /// every kernel.
    BeyondWindow,
    /// The flow's first data segment from the server, replayed byte for
    /// byte long after the client acknowledged it: "overly delayed".
    ReplayFirst,
}

/// `inject = { at = "external/eth0", segment = "beyond-window", at_bytes = 1048576 }`:
/// the sender pauses after `at_bytes`, and once the receiver has them all a
/// segment crafted from the captured flow is sent out of `at`, `count`
/// times; the flow resumes when a RST comes back or `settle_ms` pass.
#[derive(PartialEq, Debug, Clone, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InjectSpec {
    pub at: Iface,
    pub segment: Segment,
    pub at_bytes: u64,
    #[serde(default = "defaults::one")]
    pub count: u32,
    #[serde(default = "defaults::settle_ms")]
    pub settle_ms: u64,
}

impl ProbeSpec {
    pub fn kind(&self) -> &'static str {
        match self {
            ProbeSpec::Ping { .. } => "ping",
            ProbeSpec::Connect { .. } => "connect",
            ProbeSpec::Stream { .. } => "stream",
            ProbeSpec::Bind { .. } => "bind",
            ProbeSpec::Udp { .. } => "udp",
            ProbeSpec::Burst { .. } => "burst",
            ProbeSpec::Dns { .. } => "dns",
            ProbeSpec::Frame { .. } => "frame",
        }
    }

    /// The longest the probe can run, in ms, by how `run::probe` waits:
    /// ping sends `count` requests `interval_ms` apart and listens `wait_ms`;
    /// connect opens `hold` connections one after another, waits up to a
    /// timeout for the listener to accept them, then connects once more; a
    /// stream ends by its deadline, `timeout_ms` after it starts — with an
    /// injection, up to one more timeout for the flow to pause, 2 s for the
    /// capture to catch up and the settle window with 1 s of capture sync.
    pub fn worst_case_ms(&self) -> u64 {
        match self {
            ProbeSpec::Ping { count, interval_ms, wait_ms, .. } => {
                (*count as u64).saturating_mul(*interval_ms).saturating_add(*wait_ms)
            }
            ProbeSpec::Connect { timeout_ms, hold: 0, .. } => *timeout_ms,
            ProbeSpec::Connect { timeout_ms, hold, .. } => (*hold as u64 + 2).saturating_mul(*timeout_ms),
            ProbeSpec::Stream { timeout_ms, inject: None, .. } => *timeout_ms,
            ProbeSpec::Stream { timeout_ms, inject: Some(i), .. } => {
                timeout_ms.saturating_mul(2).saturating_add(i.settle_ms).saturating_add(3_000)
            }
            ProbeSpec::Bind { .. } => 0,
            ProbeSpec::Udp { count, interval_ms, wait_ms, .. } => {
                (*count as u64).saturating_mul(*interval_ms).saturating_add(*wait_ms)
            }
            ProbeSpec::Burst { timeout_ms, .. } => *timeout_ms,
            ProbeSpec::Dns { timeout_ms, attempts, rounds, send, types, .. } => {
                // single-request-reopen waits for each query in turn.
                let serial = if *send == DnsSend::SingleRequestReopen { types.len().max(1) as u64 } else { 1 };
                timeout_ms.saturating_mul(*attempts as u64).saturating_mul(*rounds as u64).saturating_mul(serial)
            }
            ProbeSpec::Frame { .. } => 0,
        }
    }

    /// Refuses counts and durations that are zero where that means nothing,
    /// or beyond [`limits`], saying what to write instead.
    pub fn check_bounds(&self) -> Result<(), String> {
        use limits::{BYTES_MAX, COUNT_MAX, MS_MAX, PROBE_MS_MAX};
        let count = |key: &str, n: u32, min: u32| match n {
            n if (min..=COUNT_MAX).contains(&n) => Ok(()),
            _ => Err(format!("{key} = {n}: write {min} to {COUNT_MAX}")),
        };
        let ms = |key: &str, v: u64, min: u64| match v {
            v if (min..=MS_MAX).contains(&v) => Ok(()),
            _ => Err(format!("{key} = {v}: write {min} to {MS_MAX} (ms; 10 min)")),
        };
        let formula = match self {
            ProbeSpec::Ping { count: n, interval_ms, wait_ms, .. } => {
                count("count", *n, 1)?;
                ms("interval_ms", *interval_ms, 0)?;
                ms("wait_ms", *wait_ms, 0)?;
                "count × interval_ms + wait_ms"
            }
            ProbeSpec::Connect { timeout_ms, hold, .. } => {
                ms("timeout_ms", *timeout_ms, 1)?;
                count("hold", *hold, 0)?;
                "(hold + 2) × timeout_ms"
            }
            ProbeSpec::Stream { timeout_ms, bytes, inject, .. } => {
                ms("timeout_ms", *timeout_ms, 1)?;
                if !(1..=BYTES_MAX).contains(bytes) {
                    return Err(format!("bytes = {bytes}: write 1 to {BYTES_MAX} (1 GiB)"));
                }
                if let Some(i) = inject {
                    count("inject.count", i.count, 1)?;
                    ms("inject.settle_ms", i.settle_ms, 0)?;
                }
                "2 × timeout_ms + inject.settle_ms + 3000"
            }
            ProbeSpec::Bind { proto, listen, .. } => {
                if *listen && *proto == Proto::Udp {
                    return Err("listen applies to proto = \"tcp\"".into());
                }
                "0"
            }
            ProbeSpec::Udp { count: n, size, interval_ms, wait_ms, echo, listen_in, listen_on, .. } => {
                if listen_in.is_none() && (*echo || listen_on.is_some()) {
                    return Err("echo and listen_on need listen_in (the namespace the harness listens in)".into());
                }
                count("count", *n, 1)?;
                if !(2..=65_000).contains(size) {
                    return Err(format!("size = {size}: write 2 to 65000 (bytes of payload)"));
                }
                ms("interval_ms", *interval_ms, 0)?;
                ms("wait_ms", *wait_ms, 0)?;
                "count × interval_ms + wait_ms"
            }
            ProbeSpec::Burst { count: n, backlog, timeout_ms, .. } => {
                count("count", *n, 1)?;
                if *n > limits::BURST_MAX {
                    return Err(format!("count = {n}: write 1 to {} (concurrent connects)", limits::BURST_MAX));
                }
                count("backlog", *backlog, 0)?;
                ms("timeout_ms", *timeout_ms, 1)?;
                "timeout_ms"
            }
            ProbeSpec::Dns { name, types, timeout_ms, attempts, rounds, src, .. } => {
                if !crate::wire::dns::valid_name(name) {
                    return Err(format!("name = {name:?}: not a domain name (labels of 1 to 63 ASCII bytes)"));
                }
                if types.is_empty() {
                    return Err("types = []: ask for \"A\", \"AAAA\" or both".into());
                }
                ms("timeout_ms", *timeout_ms, 1)?;
                count("attempts", *attempts, 1)?;
                count("rounds", *rounds, 1)?;
                if *rounds > limits::DNS_ROUNDS_MAX {
                    return Err(format!("rounds = {rounds}: write 1 to {}", limits::DNS_ROUNDS_MAX));
                }
                if let Some(a) = src.filter(|a| a.port() != 0 && *rounds > 1) {
                    return Err(format!(
                        "src = \"{a}\" with rounds = {rounds}: every round would reuse one source port, so one conntrack entry; write port 0"
                    ));
                }
                "timeout_ms × attempts × rounds (× types with single-request-reopen)"
            }
            ProbeSpec::Frame { count: n, src_mac, dst_mac, arp, ip, tcp, udp, .. } => {
                count("count", *n, 1)?;
                let mac = |k: &str, m: &Option<String>| match m {
                    Some(m) if crate::wire::frame::mac(m).is_none() => {
                        Err(format!("{k} = {m:?}: not a MAC address (02:42:ac:11:00:02)"))
                    }
                    _ => Ok(()),
                };
                mac("src_mac", src_mac)?;
                mac("dst_mac", dst_mac)?;
                match (arp, ip) {
                    (Some(_), Some(_)) => return Err("give arp or ip, not both".into()),
                    (None, None) => return Err("give arp = { … } or ip = { … }".into()),
                    (Some(a), None) => {
                        if tcp.is_some() || udp.is_some() {
                            return Err("tcp and udp go with ip, not arp".into());
                        }
                        if a.op != "request" && a.op != "reply" {
                            return Err(format!("arp.op = {:?}: write request or reply", a.op));
                        }
                        mac("arp.sha", &a.sha)?;
                        mac("arp.tha", &a.tha)?;
                    }
                    (None, Some(i)) => {
                        if i.src.is_ipv4() != i.dst.is_ipv4() {
                            return Err("ip.src and ip.dst must be of one family".into());
                        }
                        if tcp.is_some() && udp.is_some() {
                            return Err("give tcp or udp, not both".into());
                        }
                        if let Some(t) = tcp {
                            crate::wire::frame::tcp_flags(&t.flags)?;
                        }
                    }
                }
                "0"
            }
        };
        match self.worst_case_ms() {
            w if w <= PROBE_MS_MAX => Ok(()),
            w => Err(format!(
                "it could run {w} ms ({formula}), more than {PROBE_MS_MAX} ms (10 min): write smaller values"
            )),
        }
    }

    pub fn namespaces(&self) -> Vec<&str> {
        match self {
            ProbeSpec::Ping { from, .. } | ProbeSpec::Bind { from, .. } | ProbeSpec::Dns { from, .. } => vec![from],
            ProbeSpec::Frame { at, .. } => vec![at.ns.as_str()],
            ProbeSpec::Udp { from, listen_in, .. } => {
                let mut v = vec![from.as_str()];
                v.extend(listen_in.as_deref());
                v
            }
            ProbeSpec::Burst { from, listen_in, .. } => vec![from.as_str(), listen_in.as_str()],
            ProbeSpec::Connect { from, listen_in, .. } => {
                let mut v = vec![from.as_str()];
                v.extend(listen_in.as_deref());
                v
            }
            ProbeSpec::Stream { from, server_in, inject, .. } => {
                let mut v = vec![from.as_str(), server_in.as_str()];
                v.extend(inject.as_ref().map(|i| i.at.ns.as_str()));
                v
            }
        }
    }
}

/// Bounds on what a case may ask for, so that every case that loads ends
/// in bounded time (issue 18); `docs/cases.md` lists them. Each is far
/// beyond what an incident needs: a larger value is a typo or an attack.
pub mod limits {
    /// Ping requests, held connections, injected segments.
    pub const COUNT_MAX: u32 = 10_000;
    /// Any one duration in ms: intervals, waits, timeouts, settle windows,
    /// `elapsed_ms` bounds and tolerances.
    pub const MS_MAX: u64 = 600_000;
    /// A probe's worst case, all its waits together
    /// ([`super::ProbeSpec::worst_case_ms`]).
    pub const PROBE_MS_MAX: u64 = 600_000;
    /// Bytes one stream probe transfers.
    pub const BYTES_MAX: u64 = 1 << 30;
    /// How long an `sh` step runs before it is killed; the runner uses it.
    /// A first iptables in a TCG guest loads modules over 9p for 20 s and more.
    pub const SH_STEP_MS: u64 = 60_000;
    /// Concurrent connects of one burst probe (each an fd).
    pub const BURST_MAX: u32 = 1_000;
    /// Lookups of one dns probe, one after another.
    pub const DNS_ROUNDS_MAX: u32 = 10_000;
    /// A whole case's worst case ([`crate::case::plan::Plan::worst_case_ms`]).
    pub const CASE_MS_MAX: u64 = 3_600_000;
}

pub mod defaults {
    pub fn count() -> u32 {
        3
    }
    pub fn interval_ms() -> u64 {
        100
    }
    pub fn wait_ms() -> u64 {
        500
    }
    pub fn timeout_ms() -> u64 {
        1000
    }
    pub fn bytes() -> u64 {
        1 << 20
    }
    pub fn one() -> u32 {
        1
    }
    pub fn udp_size() -> u32 {
        64
    }
    pub fn burst_count() -> u32 {
        8
    }
    pub fn arp_op() -> String {
        "request".into()
    }
    pub fn ttl() -> u8 {
        64
    }
    pub fn syn() -> String {
        "S".into()
    }
    pub fn window() -> u16 {
        64240
    }
    pub fn backlog() -> u32 {
        128
    }
    pub fn router_lifetime() -> u16 {
        1800
    }
    pub fn ra_interval_ms() -> u64 {
        1000
    }
    pub fn ready_timeout_ms() -> u64 {
        5000
    }
    pub fn dns_types() -> Vec<super::DnsType> {
        vec![super::DnsType::A, super::DnsType::Aaaa]
    }
    pub fn dns_timeout_ms() -> u64 {
        5000
    }
    pub fn dns_attempts() -> u32 {
        2
    }
    pub fn settle_ms() -> u64 {
        300
    }
    pub fn tbf_latency_ms() -> u32 {
        25
    }
    pub fn htb_handle() -> super::Handle {
        super::Handle(netlink_packet_route::tc::TcHandle { major: 1, minor: 0 })
    }
}

/// What one probe must show in one phase. Every key is optional; the ones
/// given must all hold.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// ping: echo replies received; udp: echoes received.
    #[serde(default)]
    pub replies: Option<Count>,
    /// ping: the set of distinct ICMP errors received about our requests,
    /// each `kind from address` (`host-unreachable from 172.17.0.2`); `[]`
    /// means none at all.
    #[serde(default)]
    pub icmp_errors: Option<Vec<String>>,
    /// ping: the set of distinct errnos `sendto(2)` met (`ENETUNREACH`);
    /// `[]` means every request went out.
    #[serde(default)]
    pub send_errors: Option<Vec<String>>,
    /// connect, bind: `ok`, an errno name, or `timeout`.
    #[serde(default)]
    pub result: Option<String>,
    /// udp: datagrams the harness listener read.
    #[serde(default)]
    pub received: Option<Count>,
    /// burst: connects by result, `{ ok = 2, ECONNREFUSED = 0, timeout = ">=1" }`.
    #[serde(default)]
    pub results: IndexMap<String, Count>,
    /// burst: the listener namespace's `TcpExt.ListenOverflows` delta.
    #[serde(default)]
    pub listen_overflows: Option<Count>,
    /// dns: each query type's result, `{ A = "ok", AAAA = "timeout" }`.
    #[serde(default)]
    pub queries: IndexMap<String, String>,
    /// dns: each query type's answer addresses, as a set; `[]` = none.
    #[serde(default)]
    pub answers: IndexMap<String, Vec<IpAddr>>,
    /// dns: lookups by how they ended, `{ ok = 400, resent = 0, timeout = 0 }`
    /// (`ok`: every query answered at its first send; `resent`: answered,
    /// some only after a resend; `timeout`: some query never answered; or
    /// an errno name). A word not seen counts 0.
    #[serde(default)]
    pub rounds: IndexMap<String, Count>,
    /// connect/stream: elapsed time window.
    #[serde(default)]
    pub elapsed_ms: Option<Window>,
    /// stream: bytes the server received.
    #[serde(default)]
    pub bytes_received: Option<Count>,
    /// stream: `none`, an errno name or `timeout`.
    #[serde(default)]
    pub client_error: Option<String>,
    #[serde(default)]
    pub server_error: Option<String>,
    /// Counter deltas over the probe, `"ns: Group.Field" = count`.
    #[serde(default)]
    pub counters: IndexMap<String, Count>,
    /// Captured frames in the probe's window, `"ns/dev: matcher" = count`.
    #[serde(default)]
    pub packets: IndexMap<String, Count>,
    /// Neighbour entries after the probe, `"ns: address" = "FAILED"` or
    /// `{ state = "REACHABLE", lladdr = "02:42:ac:11:00:02" }`.
    #[serde(default)]
    pub neighbours: IndexMap<String, NeighWant>,
    /// Route table entries after the probe, as `ip route` writes them:
    /// `"ns: default via fe80::1 dev eno1 proto ra" = "present"` (or `"absent"`).
    #[serde(default)]
    pub routes: IndexMap<String, String>,
    /// The root qdisc of an interface after the probe, `"ns/dev" = { ... }`.
    #[serde(default)]
    pub qdisc: IndexMap<String, QdiscExpect>,
    /// Link settings read back after the probe, `"ns/dev" = { tx_queue_len = 1000 }`.
    #[serde(default)]
    pub links: IndexMap<String, LinkExpect>,
    /// iptables packet counters over the probe: `"ns: <rule as iptables-save
    /// prints it>" = count`, or `"ns: policy <table> <CHAIN>"`.
    #[serde(default)]
    pub rules: IndexMap<String, Count>,
    /// Conntrack entries after the probe (`conntrack -L`): `"ns: words" =
    /// count` counts the entries whose line contains every word.
    #[serde(default)]
    pub conntrack: IndexMap<String, Count>,
    /// The kernel's drops during the probe, by reason: `"ns: REASON" = count`
    /// or `"ns/dev: REASON"`, REASON as the kernel names it without
    /// `SKB_DROP_REASON_` (`QDISC_DROP`). On a kernel without drop reasons
    /// the expectation is recorded as not available there, never as a pass.
    #[serde(default)]
    pub drops: IndexMap<String, Count>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct QdiscExpect {
    /// `htb`, `noqueue`, ...
    #[serde(default)]
    pub kind: Option<String>,
    /// HTB's direct queue length as the kernel reports it.
    #[serde(default)]
    pub direct_qlen: Option<u32>,
    /// HTB's default class minor, hex as tc prints it (`"10"`, `"0"`).
    #[serde(default)]
    pub default_class: Option<String>,
    /// Drops counted by the qdisc during the probe.
    #[serde(default)]
    pub drops: Option<Count>,
    /// Overlimits (a shaper held a packet back) and requeues during the probe.
    #[serde(default)]
    pub overlimits: Option<Count>,
    #[serde(default)]
    pub requeues: Option<Count>,
    /// Bytes queued after the probe.
    #[serde(default)]
    pub backlog: Option<Count>,
    /// Decoded options after the probe (tbf: `rate` bytes/s, `burst`,
    /// `limit` bytes).
    #[serde(default)]
    pub options: IndexMap<String, u64>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LinkExpect {
    #[serde(default)]
    pub tx_queue_len: Option<u32>,
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Bridge-port flags as the kernel reports them for a port
    /// (IFLA_BRPORT_MODE, IFLA_BRPORT_LEARNING, IFLA_BRPORT_ISOLATED;
    /// `bridge -d link show`).
    #[serde(default)]
    pub hairpin: Option<bool>,
    #[serde(default)]
    pub learning: Option<bool>,
    #[serde(default)]
    pub isolated: Option<bool>,
}

/// An exact count (`3`) or a comparison (`">=1"`, `"<=2"`, `">0"`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Count {
    pub cmp: Cmp,
    pub n: i64,
}

impl Count {
    pub fn exactly(n: i64) -> Count {
        Count { cmp: Cmp::Eq, n }
    }

    pub fn holds(&self, v: i64) -> bool {
        self.cmp.holds(v, self.n)
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cmp {
            Cmp::Eq => write!(f, "{}", self.n),
            c => write!(f, "{}{}", c.symbol(), self.n),
        }
    }
}

impl FromStr for Count {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (cmp, rest) = Cmp::split(s);
        rest.parse()
            .map(|n| Count { cmp: cmp.unwrap_or(Cmp::Eq), n })
            .map_err(|_| format!("{s:?} is not a count: write 3, \"=3\", \">=1\", \">0\", \"<=2\" or \"<5\""))
    }
}

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(i64),
            S(String),
        }
        match Raw::deserialize(d).map_err(|_| de::Error::custom("expected a count: 3 or a string like \">=1\""))? {
            Raw::N(n) => Ok(Count::exactly(n)),
            Raw::S(s) => s.parse().map_err(de::Error::custom),
        }
    }
}

/// A time window in ms: `{ min = 900, max = 1500 }` (either may be left
/// out), or derived from the kernel's own parameters in force:
/// `{ neigh_failure = "container/eth0", tolerance_ms = 40 }` is the time a
/// neighbour resolution on that interface takes to fail,
/// `(mcast_solicit + app_solicit) × retrans_time_ms`, read from the
/// namespace when the probe runs; the window is `[t, t + tolerance]`.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub neigh_failure: Option<Iface>,
    #[serde(default)]
    pub tolerance_ms: Option<f64>,
}

impl Window {
    pub fn holds(&self, v: f64) -> bool {
        self.min.is_none_or(|m| v >= m) && self.max.is_none_or(|m| v <= m)
    }

    /// Bounds are finite ms within [`limits::MS_MAX`], the lower below the upper.
    pub fn check_bounds(&self) -> Result<(), String> {
        let max = limits::MS_MAX as f64;
        for (key, v) in [("min", self.min), ("max", self.max), ("tolerance_ms", self.tolerance_ms)] {
            match v {
                Some(v) if !(0.0..=max).contains(&v) => {
                    return Err(format!("elapsed_ms.{key} = {v}: write a number of ms from 0 to {max}"))
                }
                _ => {}
            }
        }
        match (self.min, self.max) {
            (Some(a), Some(b)) if a > b => {
                Err(format!("elapsed_ms {{ min = {a}, max = {b} }} holds for no time: write min ≤ max, e.g. {{ min = {b}, max = {a} }}"))
            }
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Window {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (Some(a), Some(b)) => write!(f, "{a}..={b} ms"),
            (Some(a), None) => write!(f, ">= {a} ms"),
            (None, Some(b)) => write!(f, "<= {b} ms"),
            (None, None) => write!(f, "any time"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_parse_and_reject_with_reasons() {
        assert_eq!("172.17.0.1/16".parse::<Cidr>().unwrap().prefix, 16);
        assert!("172.17.0.1".parse::<Cidr>().unwrap_err().contains("address/prefix"));
        assert!("172.17.0.300/16".parse::<Cidr>().unwrap_err().contains("not an IP address"));
        assert!("10.0.0.1/33".parse::<Cidr>().unwrap_err().contains("longer than /32"));
    }

    #[test]
    fn counts_parse() {
        assert_eq!("3".parse::<Count>().unwrap(), Count::exactly(3));
        assert_eq!(">=1".parse::<Count>().unwrap(), Count { cmp: Cmp::Ge, n: 1 });
        assert_eq!("> 0".parse::<Count>().unwrap(), Count { cmp: Cmp::Gt, n: 0 });
        assert_eq!("<=2".parse::<Count>().unwrap().to_string(), "<=2");
        assert_eq!("=3".parse::<Count>().unwrap().to_string(), "3");
        assert!("lots".parse::<Count>().is_err());
    }
}
