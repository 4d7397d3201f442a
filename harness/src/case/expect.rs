//! What a probe must show, typed: one struct per kind of evidence, parsed
//! once by the loader from the `[phase.expect.<probe>]` table's strings
//! (`"host/eno1: icmp echo-reply"`, `"host (nft): -A FORWARD ..."`), so that
//! nothing after the loader parses a case's string again. Each kind has its
//! parser here, its witness in `run/witness/` (what is read from the kernel
//! around the probe) and its judge in `verdict/check/`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use crate::case::spec::{parse_iface, Count, Iface, LinkExpect, QdiscExpect, Window};
use crate::wire::packet::Matcher;

/// The interfaces of each namespace, as the fixture builds them.
pub type Devices = BTreeMap<String, BTreeSet<String>>;

/// What the loader knows while it parses one probe's expectations.
pub struct Ctx<'a> {
    pub devices: &'a Devices,
    /// Interfaces the case captures.
    pub captures: &'a [Iface],
    /// `ping`, `connect` or `stream`.
    pub kind: &'static str,
}

impl Ctx<'_> {
    fn ns(&self, ns: &str) -> Result<(), String> {
        if self.devices.contains_key(ns) {
            Ok(())
        } else {
            Err(format!(
                "no namespace {ns:?} (the fixture has {})",
                self.devices.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        }
    }

    fn iface(&self, at: &Iface) -> Result<(), String> {
        self.ns(&at.ns)?;
        if self.devices[&at.ns].contains(&at.dev) {
            Ok(())
        } else {
            let have: Vec<&str> = self.devices[&at.ns].iter().map(String::as_str).collect();
            Err(format!("no interface {:?} in namespace {:?} (it has {})", at.dev, at.ns, have.join(", ")))
        }
    }
}

/// The probe's own outcome fields; each applies to one probe kind.
#[derive(Debug, Clone, Default)]
pub struct OutcomeExp {
    /// ping: echo replies received.
    pub replies: Option<Count>,
    /// ping: the distinct ICMP errors received, `(name, sender)`; empty = none.
    pub icmp_errors: Option<Vec<(String, IpAddr)>>,
    /// ping: the distinct errnos sending met; empty = none.
    pub send_errors: Option<Vec<String>>,
    /// connect, bind: `ok`, an errno name or `timeout`.
    pub result: Option<String>,
    /// udp: datagrams the listener read.
    pub received: Option<Count>,
    /// burst: connects by result word.
    pub results: Vec<(String, Count)>,
    /// dns: lookups by how they ended (`ok`, `resent`, `timeout`, errno).
    pub rounds: Vec<(String, Count)>,
    /// burst: `TcpExt.ListenOverflows` delta in the listener's namespace.
    pub listen_overflows: Option<Count>,
    /// dns: query type → result word.
    pub queries: Vec<(String, String)>,
    /// dns: query type → answer addresses (a set).
    pub answers: Vec<(String, Vec<IpAddr>)>,
    /// connect/stream: how long the probe took, ms.
    pub elapsed_ms: Option<Window>,
    /// stream: bytes the receiver read.
    pub bytes_received: Option<Count>,
    /// stream: `none`, an errno name or `timeout`, per side.
    pub client_error: Option<String>,
    pub server_error: Option<String>,
}

/// `"ns: Group.Field" = count`: a counter's delta over the probe.
#[derive(Debug, Clone)]
pub struct CounterExp {
    pub ns: String,
    /// `Group.Field`, as nstat names it without the prefix join.
    pub key: String,
    pub count: Count,
}

/// `"ns/dev: matcher" = count`: captured frames in the probe's window.
#[derive(Debug, Clone)]
pub struct PacketExp {
    pub at: Iface,
    pub matcher: Matcher,
    pub count: Count,
}

impl PacketExp {
    /// The key the case wrote, as the evidence names the count.
    pub fn key(&self) -> String {
        format!("{}: {}", self.at, self.matcher.text())
    }
}

/// `"ns: address" = "STATE"` or `{ state, lladdr }`: a neighbour entry
/// after the probe.
#[derive(Debug, Clone)]
pub struct NeighExp {
    pub ns: String,
    pub ip: IpAddr,
    /// A kernel NUD state name, or `ABSENT`; `None`: any state.
    pub state: Option<String>,
    /// The link-layer address the entry must hold (lower case).
    pub lladdr: Option<String>,
}

/// `"ns/dev" = { kind, direct_qlen, default_class, drops }`: the root qdisc.
#[derive(Debug, Clone)]
pub struct QdiscExp {
    pub at: Iface,
    /// The qdisc by its handle as tc prints it (`ffff:`); `None`: the root.
    pub handle: Option<String>,
    pub want: QdiscExpect,
}

impl QdiscExp {
    /// How the evidence names it: `ns/dev` (root) or `ns/dev handle H`.
    pub fn label(&self) -> String {
        match &self.handle {
            None => self.at.to_string(),
            Some(h) => format!("{} handle {h}", self.at),
        }
    }
}

/// `"ns/dev" = { tx_queue_len, mtu }`: link settings read back.
#[derive(Debug, Clone)]
pub struct LinkExp {
    pub at: Iface,
    pub want: LinkExpect,
}

/// Which `iptables-save` reads a namespace's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Backend {
    Legacy,
    Nft,
}

impl Backend {
    /// The word the case writes, and the `iptables-<word>-save` binary.
    pub fn word(self) -> &'static str {
        match self {
            Backend::Legacy => "legacy",
            Backend::Nft => "nft",
        }
    }
}

/// `"ns (backend): -A CHAIN ..." = count`: an iptables rule's packet delta.
#[derive(Debug, Clone)]
pub struct RuleExp {
    /// The key as the case wrote it, for messages.
    pub key: String,
    pub ns: String,
    /// `None`: whatever `iptables-save` this system has.
    pub backend: Option<Backend>,
    /// The rule as `iptables-save` prints it, or `policy <table> <CHAIN>`;
    /// for an nft rule `<family> <table> <chain> handle <n>` or
    /// `<family> <table> <chain> comment "<text>"`.
    pub rule: String,
    /// An nft rule's counter (`nft -j list ruleset`), not iptables'.
    pub nft: bool,
    pub count: Count,
}

impl RuleExp {
    /// The source the counters are read from: `ns` or `ns (backend)`.
    pub fn source(&self) -> String {
        match self.backend {
            _ if self.nft => format!("{} (nft ruleset)", self.ns),
            Some(b) => format!("{} ({})", self.ns, b.word()),
            None => self.ns.clone(),
        }
    }
}

/// `"ns: words" = count`: `conntrack -L` entries containing every word.
#[derive(Debug, Clone)]
pub struct ConntrackExp {
    pub key: String,
    pub ns: String,
    pub words: Vec<String>,
    pub count: Count,
}

/// `"ns[/dev]: REASON" = count`: the kernel's drops over the probe.
#[derive(Debug, Clone)]
pub struct DropExp {
    pub ns: String,
    pub dev: Option<String>,
    /// `SKB_DROP_REASON_*` without the prefix.
    pub reason: String,
    pub count: Count,
}

pub fn outcome(x: &crate::case::spec::Expect, ctx: &Ctx) -> Result<OutcomeExp, String> {
    let kind = ctx.kind;
    let misplaced: [(&str, bool, &[&str]); 13] = [
        ("queries", !x.queries.is_empty(), &["dns"]),
        ("rounds", !x.rounds.is_empty(), &["dns"]),
        ("answers", !x.answers.is_empty(), &["dns"]),
        ("replies", x.replies.is_some(), &["ping", "udp"]),
        ("icmp_errors", x.icmp_errors.is_some(), &["ping", "udp"]),
        ("send_errors", x.send_errors.is_some(), &["ping", "udp"]),
        ("result", x.result.is_some(), &["connect", "bind"]),
        ("bytes_received", x.bytes_received.is_some(), &["stream"]),
        ("client_error", x.client_error.is_some(), &["stream"]),
        ("server_error", x.server_error.is_some(), &["stream"]),
        ("received", x.received.is_some(), &["udp"]),
        ("results", !x.results.is_empty(), &["burst"]),
        ("listen_overflows", x.listen_overflows.is_some(), &["burst"]),
    ];
    for (key, given, for_kinds) in misplaced {
        if given && !for_kinds.contains(&kind) {
            return Err(format!("`{key}` applies to {} probes; this is a {kind} probe", for_kinds.join(" and ")));
        }
    }
    for (t, r) in &x.queries {
        if crate::wire::dns::QType::parse(t).is_none() {
            return Err(format!("queries key {t:?}: write A or AAAA"));
        }
        if !(r == "ok" || r == "timeout" || is_errno(r) || crate::wire::dns::rcode_of(r).is_some()) {
            return Err(format!(
                "queries.{t} = {r:?}: write ok, timeout, an errno name or an rcode (NXDOMAIN, SERVFAIL, REFUSED …)"
            ));
        }
    }
    for t in x.answers.keys() {
        if crate::wire::dns::QType::parse(t).is_none() {
            return Err(format!("answers key {t:?}: write A or AAAA"));
        }
    }
    for w in x.rounds.keys() {
        if !(w == "ok" || w == "resent" || w == "timeout" || is_errno(w)) {
            return Err(format!("rounds key {w:?}: write ok, resent, timeout or an errno name such as ECONNREFUSED"));
        }
    }
    for w in x.results.keys() {
        if !(w == "ok" || w == "timeout" || is_errno(w)) {
            return Err(format!("results key {w:?}: write ok, timeout or an errno name such as ECONNREFUSED"));
        }
    }
    if x.elapsed_ms.is_some() && kind == "ping" {
        return Err("`elapsed_ms` applies to every probe but ping".into());
    }
    for e in x.send_errors.iter().flatten() {
        if !is_errno(e) {
            return Err(format!("send_errors entry {e:?} is not an errno name such as ENETUNREACH"));
        }
    }
    for r in [&x.result, &x.client_error, &x.server_error].into_iter().flatten() {
        let ok = r == "ok" || r == "none" || r == "timeout" || is_errno(r);
        if !ok {
            return Err(format!(
                "{r:?} is not an outcome: write ok, none, timeout or an errno name such as ECONNREFUSED"
            ));
        }
    }
    let icmp_errors = match &x.icmp_errors {
        None => None,
        Some(list) => Some(list.iter().map(|s| icmp_error(s)).collect::<Result<Vec<_>, _>>()?),
    };
    if let Some(w) = &x.elapsed_ms {
        w.check_bounds()?;
        match (&w.neigh_failure, w.tolerance_ms, w.min.or(w.max)) {
            (Some(n), Some(_), None) => ctx.iface(n).map_err(|m| format!("elapsed_ms.neigh_failure \"{n}\": {m}"))?,
            (Some(_), None, _) => return Err("elapsed_ms.neigh_failure needs tolerance_ms".into()),
            (Some(_), _, Some(_)) => return Err("elapsed_ms: give neigh_failure or min/max, not both".into()),
            (None, Some(_), _) => return Err("elapsed_ms.tolerance_ms goes with neigh_failure".into()),
            (None, None, None) => return Err("elapsed_ms: give min, max or neigh_failure".into()),
            (None, None, Some(_)) => {}
        }
    }
    Ok(OutcomeExp {
        replies: x.replies,
        icmp_errors,
        send_errors: x.send_errors.clone(),
        result: x.result.clone(),
        received: x.received,
        results: x.results.iter().map(|(k, c)| (k.clone(), *c)).collect(),
        rounds: x.rounds.iter().map(|(k, c)| (k.clone(), *c)).collect(),
        listen_overflows: x.listen_overflows,
        queries: x.queries.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        answers: x.answers.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        elapsed_ms: x.elapsed_ms.clone(),
        bytes_received: x.bytes_received,
        client_error: x.client_error.clone(),
        server_error: x.server_error.clone(),
    })
}

/// `EHOSTUNREACH`, `ENETUNREACH`: upper case, `E` first.
pub fn is_errno(r: &str) -> bool {
    r.len() > 1 && r.starts_with('E') && r.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// `host-unreachable from 172.17.0.2`, `no-route from fd00::1` → its name
/// (from the one ICMP vocabulary, either family) and sender.
fn icmp_error(s: &str) -> Result<(String, IpAddr), String> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    let [name, "from", addr] = parts.as_slice() else {
        return Err(format!(
            "icmp_errors entry {s:?}: write `<kind> from <address>`, e.g. \"host-unreachable from 172.17.0.2\""
        ));
    };
    let addr: IpAddr = addr.parse().map_err(|_| format!("icmp_errors entry {s:?}: {addr:?} is not an address"))?;
    let family_has = match addr {
        IpAddr::V4(_) => crate::wire::icmp::parse(name).is_some(),
        IpAddr::V6(_) => crate::wire::icmp::parse6(name).is_some(),
    };
    if !family_has {
        return Err(format!(
            "icmp_errors entry {s:?}: {name:?} is not an ICMP error name (known: {})",
            crate::wire::icmp::words()
        ));
    }
    Ok((name.to_string(), addr))
}

pub fn counter(k: &str, count: Count, ctx: &Ctx) -> Result<CounterExp, String> {
    let Some((ns, key)) = k.split_once(':') else {
        return Err(format!("counter {k:?}: write \"namespace: Group.Field\", e.g. \"host: Ip.InAddrErrors\""));
    };
    let (ns, key) = (ns.trim(), key.trim());
    ctx.ns(ns).map_err(|m| format!("counter {k:?}: {m}"))?;
    let valid = key.split_once('.').is_some_and(|(g, f)| !g.is_empty() && !f.is_empty() && !f.contains('.'));
    if !valid {
        return Err(format!(
            "counter {k:?}: {key:?} is not Group.Field (Ip.InAddrErrors, TcpExt.TCPTimeouts, Conntrack.invalid)"
        ));
    }
    Ok(CounterExp { ns: ns.into(), key: key.into(), count })
}

pub fn packets(k: &str, count: Count, ctx: &Ctx) -> Result<PacketExp, String> {
    let Some((at, m)) = k.split_once(':') else {
        return Err(format!(
            "packets {k:?}: write \"namespace/interface: matcher\", e.g. \"host/eno1: icmp echo-reply\""
        ));
    };
    let at = parse_iface(at).map_err(|m| format!("packets {k:?}: {m}"))?;
    if !ctx.captures.contains(&at) {
        return Err(format!("packets {k:?}: {at} is not captured; add it to `capture`"));
    }
    let matcher = Matcher::parse(m).map_err(|err| format!("packets {k:?}: {err}"))?;
    Ok(PacketExp { at, matcher, count })
}

pub fn qdisc(k: &str, want: &QdiscExpect, ctx: &Ctx) -> Result<QdiscExp, String> {
    let (iface, handle) = match k.split_once(' ') {
        None => (k, None),
        Some((i, "ingress")) => (i, Some("ffff:".to_string())),
        Some((i, rest)) => match rest.trim().strip_prefix("handle ") {
            Some(h) => {
                let h = crate::case::syntax::parse_handle(h.trim()).map_err(|e| format!("qdisc {k:?}: {e}"))?;
                (i, Some(crate::case::syntax::handle_text(h)))
            }
            None => {
                return Err(format!(
                    "qdisc {k:?}: write \"ns/dev\" (the root qdisc), \"ns/dev handle 1:\" or \"ns/dev ingress\""
                ))
            }
        },
    };
    let at = parse_iface(iface)?;
    ctx.iface(&at).map_err(|m| format!("qdisc {k:?}: {m}"))?;
    Ok(QdiscExp { at, handle, want: want.clone() })
}

pub fn link(k: &str, want: &LinkExpect, ctx: &Ctx) -> Result<LinkExp, String> {
    let at = parse_iface(k)?;
    ctx.iface(&at).map_err(|m| format!("links {k:?}: {m}"))?;
    Ok(LinkExp { at, want: want.clone() })
}

pub fn rule(k: &str, count: Count, ctx: &Ctx) -> Result<RuleExp, String> {
    let how = "write \"namespace: -A CHAIN ...\" as iptables-save prints the rule, or \"namespace: policy <table> <CHAIN>\"; \"namespace (legacy): ...\" or \"namespace (nft): ...\" picks the backend";
    let Some((source, rule)) = k.split_once(':').filter(|(_, r)| !r.trim().is_empty()) else {
        return Err(format!("rules {k:?}: {how}"));
    };
    let (ns, backend) = crate::case::syntax::split_source(source).map_err(|e| format!("rules {k:?}: {e}"))?;
    ctx.ns(ns).map_err(|m| format!("rules {k:?}: {m}"))?;
    let backend = match backend {
        None => None,
        Some("legacy") => Some(Backend::Legacy),
        Some(_) => Some(Backend::Nft),
    };
    let rule = rule.trim();
    let nft = NFT_FAMILIES.contains(&rule.split_whitespace().next().unwrap_or_default());
    if nft {
        nft_rule_key(rule).map_err(|e| format!("rules {k:?}: {e}"))?;
        if backend.is_some() {
            return Err(format!("rules {k:?}: an nft rule is read from the nft ruleset: write \"{ns}: {rule}\""));
        }
    }
    Ok(RuleExp { key: k.into(), ns: ns.into(), backend, rule: rule.into(), nft, count })
}

/// The address families of nft tables: a `rules` key whose rule starts with
/// one names an nft rule.
pub const NFT_FAMILIES: [&str; 6] = ["ip", "ip6", "inet", "arp", "bridge", "netdev"];

/// Checks `<family> <table> <chain> handle <n>` / `... comment "<text>"`.
fn nft_rule_key(rule: &str) -> Result<(), String> {
    let how = "write \"<family> <table> <chain> handle <n>\" (the handle `nft -a list ruleset` prints) or \"<family> <table> <chain> comment \\\"<text>\\\"\"; the rule needs a `counter`";
    let words: Vec<&str> = rule.splitn(5, ' ').collect();
    match words.as_slice() {
        [_, _, _, "handle", n] if n.parse::<u64>().is_ok() => Ok(()),
        [_, _, _, "comment", c] if c.len() >= 2 && c.starts_with('"') && c.ends_with('"') => Ok(()),
        [_, _, _, "policy"] => Err(format!(
            "nft counts no packets for a chain's policy: count the policy's drops with drops = {{ \"ns/dev: NETFILTER_DROP\" = n }}, or {how}"
        )),
        _ => Err(how.into()),
    }
}

pub fn conntrack(k: &str, count: Count, ctx: &Ctx) -> Result<ConntrackExp, String> {
    let parsed = k.split_once(':').map(|(ns, w)| (ns.trim(), w)).filter(|(_, w)| !w.trim().is_empty());
    let Some((ns, words)) = parsed else {
        return Err(format!(
            "conntrack {k:?}: write \"namespace: words of the entry\", e.g. \"host: dst=10.96.0.10 [UNREPLIED]\""
        ));
    };
    ctx.ns(ns).map_err(|m| format!("conntrack {k:?}: {m}"))?;
    Ok(ConntrackExp {
        key: k.into(),
        ns: ns.into(),
        words: words.split_whitespace().map(String::from).collect(),
        count,
    })
}

/// The states `ip neigh` shows (`NUD_*` without the prefix), and `ABSENT`.
pub const NEIGH_STATES: &[&str] =
    &["INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "NOARP", "PERMANENT", "NONE", "ABSENT"];

pub fn neighbour(k: &str, want: &crate::case::spec::NeighWant, ctx: &Ctx) -> Result<NeighExp, String> {
    use crate::case::spec::NeighWant;
    let (state, lladdr) = match want {
        NeighWant::State(s) => (Some(s.as_str()), None),
        NeighWant::Entry(e) => (e.state.as_deref(), e.lladdr.as_deref()),
    };
    if state.is_none() && lladdr.is_none() {
        return Err(format!("neighbours {k:?}: give state, lladdr or both"));
    }
    let lladdr = match lladdr {
        None => None,
        Some(m) => {
            let parts: Vec<&str> = m.split(':').collect();
            if parts.is_empty() || !parts.iter().all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit())) {
                return Err(format!("neighbours {k:?}: lladdr {m:?} is not a link-layer address (02:42:ac:11:00:02)"));
            }
            Some(m.to_ascii_lowercase())
        }
    };
    let mut x = neighbour_state(k, state.unwrap_or("REACHABLE"), ctx)?;
    if state.is_none() {
        x.state = None;
    }
    x.lladdr = lladdr;
    Ok(x)
}

fn neighbour_state(k: &str, state: &str, ctx: &Ctx) -> Result<NeighExp, String> {
    let parsed = k.split_once(':').and_then(|(ns, ip)| Some((ns.trim(), ip.trim().parse::<IpAddr>().ok()?)));
    let Some((ns, ip)) = parsed else {
        return Err(format!("neighbours {k:?}: write \"namespace: address\""));
    };
    ctx.ns(ns).map_err(|m| format!("neighbours {k:?}: {m}"))?;
    if !NEIGH_STATES.contains(&state) {
        return Err(format!("neighbours {k:?}: state {state:?} is not one of {}", NEIGH_STATES.join(", ")));
    }
    Ok(NeighExp { ns: ns.into(), ip, state: Some(state.into()), lladdr: None })
}

pub fn drop(k: &str, count: Count, ctx: &Ctx) -> Result<DropExp, String> {
    let parsed = k.split_once(':').map(|(at, r)| (at.trim(), r.trim()));
    let Some((at, reason)) = parsed
        .filter(|(_, r)| !r.is_empty() && r.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))
    else {
        return Err(format!("drops {k:?}: write \"namespace: REASON\" or \"namespace/interface: REASON\", REASON as the kernel names it without SKB_DROP_REASON_ (e.g. \"host/docker0: QDISC_DROP\")"));
    };
    let (ns, dev) = match at.split_once('/') {
        Some((n, d)) => (n.trim(), Some(d.trim().to_string())),
        None => (at, None),
    };
    match &dev {
        Some(d) => ctx.iface(&Iface { ns: ns.into(), dev: d.clone() }),
        None => ctx.ns(ns),
    }
    .map_err(|m| format!("drops {k:?}: {m}"))?;
    Ok(DropExp { ns: ns.into(), dev, reason: reason.into(), count })
}

/// `"name: counter" = count`: what an actor counted by the phase's end.
#[derive(Debug, Clone)]
pub struct ActorExp {
    pub actor: String,
    pub counter: String,
    pub count: Count,
}

impl ActorExp {
    pub fn key(&self) -> String {
        format!("{}: {}", self.actor, self.counter)
    }
}

/// An actor's namespace, interface and settings make sense in this fixture.
pub fn actor(name: &str, a: &crate::case::spec::ActorSpec, devices: &Devices) -> Result<(), String> {
    use crate::case::spec::ActorSpec;
    let ok_name = !name.is_empty()
        && name.len() <= 32
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok_name {
        return Err("actor names are 1-32 letters, digits, - or _".into());
    }
    let ns = a.ns();
    let Some(devs) = devices.get(ns) else {
        return Err(format!(
            "no namespace {ns:?} (the fixture has {})",
            devices.keys().cloned().collect::<Vec<_>>().join(", ")
        ));
    };
    match a {
        ActorSpec::Ra { dev, prefix, interval_ms, .. } => {
            if !devs.contains(dev) {
                return Err(format!("no interface {dev:?} in namespace {ns:?}"));
            }
            if prefix.is_some_and(|p| !p.addr.is_ipv6() || p.prefix > 128) {
                return Err("prefix: an IPv6 prefix such as \"2001:db8:1::/64\"".into());
            }
            if !(10..=600_000).contains(interval_ms) {
                return Err(format!("interval_ms = {interval_ms}: write 10 to 600000"));
            }
        }
        ActorSpec::Dns { answers, .. } => {
            for n in answers.keys() {
                if !crate::wire::dns::valid_name(n) {
                    return Err(format!("answers: {n:?} is not a domain name"));
                }
            }
        }
        ActorSpec::Command { run, ready_listening, ready_timeout_ms, .. } => {
            if run.trim().is_empty() {
                return Err("run is empty".into());
            }
            if let Some(r) = ready_listening {
                parse_listening(r)?;
            }
            if !(1..=60_000).contains(ready_timeout_ms) {
                return Err(format!("ready_timeout_ms = {ready_timeout_ms}: write 1 to 60000"));
            }
        }
        _ => {}
    }
    Ok(())
}

/// `tcp:53` / `udp:5353` → (is tcp, port).
pub fn parse_listening(r: &str) -> Result<(bool, u16), String> {
    let bad = || format!("ready_listening {r:?}: write tcp:PORT or udp:PORT");
    let (proto, port) = r.split_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    match proto {
        "tcp" => Ok((true, port)),
        "udp" => Ok((false, port)),
        _ => Err(bad()),
    }
}

pub fn actor_count(
    k: &str,
    count: Count,
    actors: &[(String, crate::case::spec::ActorSpec)],
) -> Result<ActorExp, String> {
    let Some((name, counter)) = k.split_once(':').map(|(a, c)| (a.trim(), c.trim())) else {
        return Err(format!("{k:?}: write \"actor: counter\", e.g. \"ra: sent\""));
    };
    let Some((_, a)) = actors.iter().find(|(n, _)| n == name) else {
        let names: Vec<&str> = actors.iter().map(|(n, _)| n.as_str()).collect();
        return Err(format!("{k:?}: no actor {name:?} in this phase (actors: {})", names.join(", ")));
    };
    if !a.counters().contains(&counter) {
        return Err(format!("{k:?}: a {} actor counts {}", a.kind(), a.counters().join(", ")));
    }
    Ok(ActorExp { actor: name.into(), counter: counter.into(), count })
}

/// `"ns: DST [via A] [dev D] [proto P] [metric M] [table T]" = "present" |
/// "absent"`: a route after the probe; the fields given must all match.
#[derive(Debug, Clone)]
pub struct RouteExp {
    pub key: String,
    pub ns: String,
    pub dst: String,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    pub proto: Option<String>,
    pub metric: Option<u32>,
    pub table: Option<u32>,
    pub present: bool,
}

pub fn route(k: &str, want: &str, ctx: &Ctx) -> Result<RouteExp, String> {
    let how = "write \"namespace: default|PREFIX [via ADDR] [dev IF] [proto ra|kernel|static|…] [metric N] [table N]\" = \"present\" or \"absent\"";
    let Some((ns, spec)) = k.split_once(':').map(|(n, s)| (n.trim(), s.trim())) else {
        return Err(format!("routes {k:?}: {how}"));
    };
    ctx.ns(ns).map_err(|m| format!("routes {k:?}: {m}"))?;
    let present = match want {
        "present" => true,
        "absent" => false,
        _ => return Err(format!("routes {k:?} = {want:?}: {how}")),
    };
    let mut words = spec.split_whitespace();
    let dst = match words.next() {
        Some("default") => "default".to_string(),
        Some(p) => {
            let c: crate::case::spec::Cidr = p.parse().map_err(|e| format!("routes {k:?}: {e}"))?;
            format!("{}/{}", c.addr, c.prefix)
        }
        None => return Err(format!("routes {k:?}: {how}")),
    };
    let mut r = RouteExp {
        key: k.into(),
        ns: ns.into(),
        dst,
        via: None,
        dev: None,
        proto: None,
        metric: None,
        table: None,
        present,
    };
    while let Some(w) = words.next() {
        let v = words.next().ok_or_else(|| format!("routes {k:?}: `{w}` needs a value"))?;
        let bad = |what: &str| format!("routes {k:?}: `{w} {v}`: not {what}");
        match w {
            "via" => r.via = Some(v.parse().map_err(|_| bad("an address"))?),
            "dev" => {
                if !ctx.devices[ns].contains(v) {
                    return Err(format!("routes {k:?}: no interface {v:?} in namespace {ns:?}"));
                }
                r.dev = Some(v.into())
            }
            "proto" => r.proto = Some(v.into()),
            "metric" => r.metric = Some(v.parse().map_err(|_| bad("a number"))?),
            "table" => r.table = Some(v.parse().map_err(|_| bad("a table number"))?),
            _ => return Err(format!("routes {k:?}: unknown word `{w}`; {how}")),
        }
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qdiscs_are_named_by_root_handle_or_ingress() {
        let devices: Devices =
            [("host".to_string(), ["veth0".to_string()].into_iter().collect())].into_iter().collect();
        let ctx = Ctx { devices: &devices, captures: &[], kind: "ping" };
        let w = QdiscExpect::default();
        assert_eq!(qdisc("host/veth0", &w, &ctx).unwrap().label(), "host/veth0");
        assert_eq!(qdisc("host/veth0 ingress", &w, &ctx).unwrap().label(), "host/veth0 handle ffff:");
        assert_eq!(qdisc("host/veth0 handle 1:", &w, &ctx).unwrap().label(), "host/veth0 handle 1:");
        assert!(qdisc("host/veth0 root", &w, &ctx).unwrap_err().contains("ns/dev handle 1:"));
        assert!(qdisc("host/veth9", &w, &ctx).unwrap_err().contains("no interface \"veth9\""));
    }
}
