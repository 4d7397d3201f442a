//! Typed objects shared by fixtures and steps. Today: firewall rulesets (an
//! `nft -f` ruleset, inline or from a file, or an `iptables-restore` file),
//! read when the file is loaded so a plan that loads can run.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The iptables backend an `iptables-restore` file goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreBackend {
    Legacy,
    Nft,
}

impl RestoreBackend {
    /// The tool that loads a file into this backend; `None`: the system's
    /// `iptables-restore`.
    pub fn tool(b: Option<RestoreBackend>) -> &'static str {
        match b {
            None => "iptables-restore",
            Some(RestoreBackend::Legacy) => "iptables-legacy-restore",
            Some(RestoreBackend::Nft) => "iptables-nft-restore",
        }
    }
}

/// What a ruleset is and which tool loads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RulesetKind {
    /// `nft -f -`.
    Nft,
    /// `iptables-restore [--noflush]` (of a backend).
    IptablesRestore { backend: Option<RestoreBackend>, noflush: bool },
}

/// A firewall ruleset with its text, loaded into one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ruleset {
    pub ns: String,
    pub kind: RulesetKind,
    /// Where it came from: the path as written, or `inline`.
    pub origin: String,
    pub text: String,
}

impl Ruleset {
    /// The command that loads it (the text goes to its stdin).
    pub fn argv(&self) -> Vec<&'static str> {
        match self.kind {
            RulesetKind::Nft => vec!["nft", "-f", "-"],
            RulesetKind::IptablesRestore { backend, noflush } => {
                let mut v = vec![RestoreBackend::tool(backend)];
                if noflush {
                    v.push("--noflush");
                }
                v
            }
        }
    }

    /// The tool a case needs for it (preflight).
    pub fn tool(&self) -> &'static str {
        self.argv()[0]
    }
}

impl fmt::Display for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self.text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).count();
        write!(f, "[{}] {} < {} ({lines} lines)", self.ns, self.argv().join(" "), self.origin)
    }
}

/// Reads a ruleset file named relative to the file that names it (`base`
/// is that file). Absolute paths are refused: a case and its rulesets move
/// together.
///
/// # Errors
/// A sentence saying what to write instead.
pub fn read_relative(base: &Path, rel: &str) -> Result<String, String> {
    let p = Path::new(rel);
    if p.is_absolute() {
        return Err(format!("{rel:?}: write a path relative to {}", base.display()));
    }
    let dir = base.parent().unwrap_or(Path::new("."));
    let full = dir.join(p);
    std::fs::read_to_string(&full)
        .map_err(|e| format!("{rel:?}: cannot read {} ({e}): write a path relative to this file", full.display()))
}

// ------------------------------------------------------------ links

/// A link kind netrepro creates, with the kernel option that provides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    Veth,
    Bridge,
    Macvlan,
    Ipvlan,
    Vlan,
    Vxlan,
    Dummy,
    Ifb,
    Tun,
    Tap,
}

impl LinkKind {
    pub const ALL: [LinkKind; 10] = [
        LinkKind::Veth,
        LinkKind::Bridge,
        LinkKind::Macvlan,
        LinkKind::Ipvlan,
        LinkKind::Vlan,
        LinkKind::Vxlan,
        LinkKind::Dummy,
        LinkKind::Ifb,
        LinkKind::Tun,
        LinkKind::Tap,
    ];

    /// As `ip link add ... type <word>` names it.
    pub fn word(self) -> &'static str {
        match self {
            LinkKind::Veth => "veth",
            LinkKind::Bridge => "bridge",
            LinkKind::Macvlan => "macvlan",
            LinkKind::Ipvlan => "ipvlan",
            LinkKind::Vlan => "vlan",
            LinkKind::Vxlan => "vxlan",
            LinkKind::Dummy => "dummy",
            LinkKind::Ifb => "ifb",
            LinkKind::Tun => "tun",
            LinkKind::Tap => "tap",
        }
    }

    /// The kernel configuration option that provides the kind.
    pub fn config(self) -> &'static str {
        match self {
            LinkKind::Veth => "CONFIG_VETH",
            LinkKind::Bridge => "CONFIG_BRIDGE",
            LinkKind::Macvlan => "CONFIG_MACVLAN",
            LinkKind::Ipvlan => "CONFIG_IPVLAN",
            LinkKind::Vlan => "CONFIG_VLAN_8021Q",
            LinkKind::Vxlan => "CONFIG_VXLAN",
            LinkKind::Dummy => "CONFIG_DUMMY",
            LinkKind::Ifb => "CONFIG_IFB",
            LinkKind::Tun | LinkKind::Tap => "CONFIG_TUN",
        }
    }
}

/// A MAC address, `02:00:00:00:00:01`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mac(pub [u8; 6]);

impl std::str::FromStr for Mac {
    type Err = String;
    fn from_str(s: &str) -> Result<Mac, String> {
        let parts: Vec<&str> = s.split(':').collect();
        let bytes: Option<Vec<u8>> =
            parts.iter().map(|p| if p.len() == 2 { u8::from_str_radix(p, 16).ok() } else { None }).collect();
        match bytes {
            Some(b) if b.len() == 6 => Ok(Mac([b[0], b[1], b[2], b[3], b[4], b[5]])),
            _ => Err(format!("address {s:?}: write a MAC address, six hex pairs, e.g. \"02:42:ac:11:00:02\"")),
        }
    }
}

impl fmt::Display for Mac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(f, "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}", b[0], b[1], b[2], b[3], b[4], b[5])
    }
}

impl<'de> Deserialize<'de> for Mac {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

impl Serialize for Mac {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The offloads a link has: `"off"` (the default on links a case creates:
/// captures hold what the wire carries), `"as-shipped"` (what the driver
/// enables), or a table of the ethtool features to set, the others off:
/// `{ tx-checksumming = true }`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Offloads {
    Word(OffloadWord),
    Set(std::collections::BTreeMap<Feature, bool>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OffloadWord {
    Off,
    AsShipped,
}

/// An ethtool feature, as `ethtool -k` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    TxChecksumming,
    RxChecksumming,
    ScatterGather,
    TcpSegmentationOffload,
    GenericSegmentationOffload,
    GenericReceiveOffload,
}

impl Feature {
    /// The short name `ethtool -K` takes (`tx`, `rx`, `sg`, `tso`, `gso`, `gro`).
    pub fn ethtool_word(self) -> &'static str {
        match self {
            Feature::TxChecksumming => "tx",
            Feature::RxChecksumming => "rx",
            Feature::ScatterGather => "sg",
            Feature::TcpSegmentationOffload => "tso",
            Feature::GenericSegmentationOffload => "gso",
            Feature::GenericReceiveOffload => "gro",
        }
    }

    pub const ALL: [Feature; 6] = [
        Feature::GenericReceiveOffload,
        Feature::GenericSegmentationOffload,
        Feature::TcpSegmentationOffload,
        Feature::ScatterGather,
        Feature::TxChecksumming,
        Feature::RxChecksumming,
    ];
}

impl Offloads {
    /// What a `link-set` changes: a table sets the features it lists and
    /// leaves the others; `"off"` all of them; `"as-shipped"` none (a
    /// driver's defaults cannot be asked back).
    pub fn changes(o: &Offloads) -> Vec<(Feature, bool)> {
        match o {
            Offloads::Word(OffloadWord::Off) => Feature::ALL.iter().map(|f| (*f, false)).collect(),
            Offloads::Word(OffloadWord::AsShipped) => Vec::new(),
            Offloads::Set(m) => m.iter().map(|(f, v)| (*f, *v)).collect(),
        }
    }

    /// The value of every feature to set; `None`: leave the driver's.
    pub fn settings(o: Option<&Offloads>) -> Option<Vec<(Feature, bool)>> {
        match o {
            None | Some(Offloads::Word(OffloadWord::Off)) => Some(Feature::ALL.iter().map(|f| (*f, false)).collect()),
            Some(Offloads::Word(OffloadWord::AsShipped)) => None,
            Some(Offloads::Set(m)) => {
                Some(Feature::ALL.iter().map(|f| (*f, m.get(f).copied().unwrap_or(false))).collect())
            }
        }
    }
}

/// Bridge-port flags of a link enslaved to a bridge (`bridge link set`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortFlags {
    #[serde(default)]
    pub hairpin: Option<bool>,
    #[serde(default)]
    pub learning: Option<bool>,
    #[serde(default)]
    pub isolated: Option<bool>,
}

/// `[[link]]` in a fixture, `link-add` in a step: a link of any kind, with
/// its kind's attributes and the common ones, as `ip link add` takes them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    pub ns: String,
    pub name: String,
    pub kind: LinkKind,
    // -- kind attributes
    /// macvlan, ipvlan, vlan: the lower device; vxlan: the underlay device.
    #[serde(default)]
    pub link: Option<String>,
    /// macvlan: private, vepa, bridge, passthru, source; ipvlan: l2, l3, l3s.
    #[serde(default)]
    pub mode: Option<String>,
    /// vlan: the VLAN id; vxlan: the VNI.
    #[serde(default)]
    pub id: Option<u32>,
    /// vxlan: source address, unicast remote, multicast group, UDP port,
    /// outer UDP checksum, learning.
    #[serde(default)]
    pub local: Option<std::net::IpAddr>,
    #[serde(default)]
    pub remote: Option<std::net::IpAddr>,
    #[serde(default)]
    pub group: Option<std::net::IpAddr>,
    #[serde(default)]
    pub dstport: Option<u16>,
    #[serde(default)]
    pub udpcsum: Option<bool>,
    #[serde(default)]
    pub learning: Option<bool>,
    /// veth: the peer's name and namespace (default: this one).
    #[serde(default)]
    pub peer: Option<String>,
    #[serde(default)]
    pub peer_ns: Option<String>,
    /// Created in `ns` (where its lower device is) and put straight into
    /// this namespace, as `ip link add link eno1 name eth0 netns container
    /// type ipvlan` does (IFLA_NET_NS_FD in the RTM_NEWLINK): Docker's and
    /// CNI's macvlan/ipvlan endpoints. Its master, addresses and state
    /// apply there. Not for veth (`peer_ns`) or tun/tap.
    #[serde(default)]
    pub netns: Option<String>,
    /// bridge options.
    #[serde(default)]
    pub vlan_filtering: Option<bool>,
    #[serde(default)]
    pub mcast_snooping: Option<bool>,
    #[serde(default)]
    pub nf_call_iptables: Option<bool>,
    // -- common attributes
    #[serde(default)]
    pub address: Option<Mac>,
    /// Brought up once created (default true).
    #[serde(default)]
    pub up: Option<bool>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub txqueuelen: Option<u32>,
    /// A bridge in the same namespace.
    #[serde(default)]
    pub master: Option<String>,
    #[serde(default)]
    pub noarp: Option<bool>,
    #[serde(default)]
    pub promisc: Option<bool>,
    /// Bridge-port flags (with `master`).
    #[serde(default)]
    pub port: Option<PortFlags>,
    /// IPv4/IPv6 addresses, `10.0.0.1/24`, `fd00::1/64` (added `nodad`).
    #[serde(default)]
    pub addresses: Vec<crate::case::syntax::Cidr>,
    #[serde(default)]
    pub offloads: Option<Offloads>,
}

impl LinkSpec {
    /// The namespace the link lives in once made: `netns` if given, else `ns`.
    pub fn home(&self) -> &str {
        self.netns.as_deref().unwrap_or(&self.ns)
    }

    /// Attributes that belong to another kind, missing ones this kind
    /// needs, modes that do not exist: a sentence saying what to write.
    pub fn check(&self) -> Result<(), String> {
        use LinkKind::*;
        let k = self.kind;
        let (name, kind) = (&self.name, k.word());
        let given: [(&str, bool, &[LinkKind]); 15] = [
            ("link", self.link.is_some(), &[Macvlan, Ipvlan, Vlan, Vxlan]),
            ("mode", self.mode.is_some(), &[Macvlan, Ipvlan]),
            ("id", self.id.is_some(), &[Vlan, Vxlan]),
            ("local", self.local.is_some(), &[Vxlan]),
            ("remote", self.remote.is_some(), &[Vxlan]),
            ("group", self.group.is_some(), &[Vxlan]),
            ("dstport", self.dstport.is_some(), &[Vxlan]),
            ("udpcsum", self.udpcsum.is_some(), &[Vxlan]),
            ("learning", self.learning.is_some(), &[Vxlan]),
            ("peer", self.peer.is_some(), &[Veth]),
            ("peer_ns", self.peer_ns.is_some(), &[Veth]),
            ("netns", self.netns.is_some(), &[Macvlan, Ipvlan, Vlan, Vxlan, Dummy, Ifb, Bridge]),
            ("vlan_filtering", self.vlan_filtering.is_some(), &[Bridge]),
            ("mcast_snooping", self.mcast_snooping.is_some(), &[Bridge]),
            ("nf_call_iptables", self.nf_call_iptables.is_some(), &[Bridge]),
        ];
        for (key, set, kinds) in given {
            if set && !kinds.contains(&k) {
                let ks: Vec<&str> = kinds.iter().map(|k| k.word()).collect();
                return Err(format!("link {name:?} ({kind}): `{key}` is an attribute of {}, not of {kind}: remove it or write kind = \"{}\"", ks.join(", "), ks[0]));
            }
        }
        let need = |key: &str, v: bool| if v { Ok(()) } else { Err(format!("link {name:?} ({kind}) needs `{key}`")) };
        match k {
            Macvlan => {
                need("link", self.link.is_some())?;
                mode_in(self, &["private", "vepa", "bridge", "passthru", "source"])
            }
            Ipvlan => {
                need("link", self.link.is_some())?;
                mode_in(self, &["l2", "l3", "l3s"])
            }
            Vlan => {
                need("link", self.link.is_some())?;
                need("id", matches!(self.id, Some(1..=4094))).map_err(|e| format!("{e} (1 to 4094)"))
            }
            Vxlan => {
                need("id", matches!(self.id, Some(0..=0xff_ffff)))
                    .map_err(|e| format!("{e} (the VNI, 0 to 16777215)"))?;
                if self.remote.is_some() && self.group.is_some() {
                    return Err(format!("link {name:?} (vxlan): write `remote` or `group`, not both"));
                }
                Ok(())
            }
            Veth => need("peer", self.peer.is_some()),
            _ => Ok(()),
        }?;
        if self.port.is_some() && self.master.is_none() {
            return Err(format!("link {name:?}: `port` flags are a bridge port's: add master = \"<bridge>\""));
        }
        Ok(())
    }
}

fn mode_in(l: &LinkSpec, modes: &[&str]) -> Result<(), String> {
    match &l.mode {
        Some(m) if !modes.contains(&m.as_str()) => {
            Err(format!("link {:?} ({}): mode {m:?}: write one of {}", l.name, l.kind.word(), modes.join(", ")))
        }
        _ => Ok(()),
    }
}

impl fmt::Display for LinkSpec {
    /// As `ip link add` would be written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if matches!(self.kind, LinkKind::Tun | LinkKind::Tap) {
            return write!(f, "[{}] tuntap add dev {} mode {} (ioctl)", self.ns, self.name, self.kind.word());
        }
        write!(f, "[{}] link add {}", self.ns, self.name)?;
        if let Some(l) = &self.link {
            if self.kind != LinkKind::Vxlan {
                write!(f, " link {l}")?;
            }
        }
        if let Some(n) = &self.netns {
            write!(f, " netns {n}")?;
        }
        if let Some(a) = &self.address {
            write!(f, " address {a}")?;
        }
        if let Some(m) = self.mtu {
            write!(f, " mtu {m}")?;
        }
        if let Some(q) = self.txqueuelen {
            write!(f, " txqueuelen {q}")?;
        }
        write!(f, " type {}", self.kind.word())?;
        if let Some(p) = &self.peer {
            write!(f, " peer name {p}")?;
            if let Some(n) = &self.peer_ns {
                write!(f, " netns {n}")?;
            }
        }
        if let Some(m) = &self.mode {
            write!(f, " mode {m}")?;
        }
        if let Some(i) = self.id {
            write!(f, " id {i}")?;
        }
        if let Some(a) = self.local {
            write!(f, " local {a}")?;
        }
        if let Some(a) = self.remote {
            write!(f, " remote {a}")?;
        }
        if let Some(a) = self.group {
            write!(f, " group {a}")?;
        }
        if self.kind == LinkKind::Vxlan {
            if let Some(l) = &self.link {
                write!(f, " dev {l}")?;
            }
        }
        if let Some(p) = self.dstport {
            write!(f, " dstport {p}")?;
        }
        if let Some(c) = self.udpcsum {
            write!(f, " {}udpcsum", if c { "" } else { "no" })?;
        }
        if let Some(c) = self.learning {
            write!(f, " {}learning", if c { "" } else { "no" })?;
        }
        for (k, v) in [
            ("vlan_filtering", self.vlan_filtering),
            ("mcast_snooping", self.mcast_snooping),
            ("nf_call_iptables", self.nf_call_iptables),
        ] {
            if let Some(v) = v {
                write!(f, " {k} {}", u8::from(v))?;
            }
        }
        write!(f, " (netlink)")
    }
}

/// `link-set`: what `ip link set dev DEV ...` changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkSet {
    pub ns: String,
    pub dev: String,
    #[serde(default)]
    pub up: Option<bool>,
    #[serde(default)]
    pub mtu: Option<u32>,
    #[serde(default)]
    pub txqueuelen: Option<u32>,
    #[serde(default)]
    pub address: Option<Mac>,
    /// A bridge of the namespace, or `""` for nomaster.
    #[serde(default)]
    pub master: Option<String>,
    #[serde(default)]
    pub noarp: Option<bool>,
    #[serde(default)]
    pub promisc: Option<bool>,
    #[serde(default)]
    pub port: Option<PortFlags>,
    /// Move the link into this namespace (it keeps its name, loses its
    /// addresses and goes down, as `ip link set netns` does).
    #[serde(default)]
    pub netns: Option<String>,
    #[serde(default)]
    pub offloads: Option<Offloads>,
}

impl fmt::Display for LinkSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] link set dev {}", self.ns, self.dev)?;
        if let Some(n) = &self.netns {
            write!(f, " netns {n}")?;
        }
        if let Some(a) = &self.address {
            write!(f, " address {a}")?;
        }
        if let Some(m) = self.mtu {
            write!(f, " mtu {m}")?;
        }
        if let Some(q) = self.txqueuelen {
            write!(f, " txqueuelen {q}")?;
        }
        match self.master.as_deref() {
            Some("") => write!(f, " nomaster")?,
            Some(m) => write!(f, " master {m}")?,
            None => {}
        }
        if let Some(v) = self.noarp {
            write!(f, " arp {}", if v { "off" } else { "on" })?;
        }
        if let Some(v) = self.promisc {
            write!(f, " promisc {}", if v { "on" } else { "off" })?;
        }
        if let Some(v) = self.up {
            write!(f, " {}", if v { "up" } else { "down" })?;
        }
        write!(f, " (netlink)")?;
        let changes = self.offloads.as_ref().map(Offloads::changes).unwrap_or_default();
        if !changes.is_empty() {
            write!(f, "; ethtool -K {}", self.dev)?;
            for (feature, on) in changes {
                write!(f, " {} {}", feature.ethtool_word(), if on { "on" } else { "off" })?;
            }
            write!(f, " (SIOCETHTOOL)")?;
        }
        Ok(())
    }
}

/// `addr-add` / `addr-del`: `ip addr add ADDR dev DEV [nodad]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddrSpec {
    pub ns: String,
    pub dev: String,
    pub address: crate::case::syntax::Cidr,
    /// IPv6: no duplicate address detection (usable at once).
    #[serde(default)]
    pub nodad: bool,
}

impl AddrSpec {
    /// As `ip addr VERB` would be written.
    pub fn show(&self, verb: &str) -> String {
        let nodad = if self.nodad { " nodad" } else { "" };
        format!("[{}] addr {verb} {} dev {}{nodad} (netlink)", self.ns, self.address, self.dev)
    }
}

// ------------------------------------------------------------ routes

/// A route's type, as `ip route add TYPE PREFIX` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RouteType {
    #[default]
    Unicast,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// `route-add` / `route-del` (and a fixture's `[[route]]`): `ip route add
/// [TYPE] TO [via GW] [dev DEV] [onlink] [table T] [metric M] [proto P]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteObj {
    pub ns: String,
    /// `default` (IPv4; IPv6 with a v6 `via`, or write `::/0`) or a prefix.
    pub to: crate::case::syntax::RouteDst,
    #[serde(default)]
    pub via: Option<std::net::IpAddr>,
    #[serde(default)]
    pub dev: Option<String>,
    #[serde(default)]
    pub onlink: bool,
    #[serde(default, rename = "type")]
    pub kind: RouteType,
    #[serde(default)]
    pub table: Option<u32>,
    #[serde(default)]
    pub metric: Option<u32>,
    /// `static` (the default), `boot`, `kernel`, `dhcp`, `ra` or a number.
    #[serde(default)]
    pub proto: Option<String>,
}

impl RouteObj {
    /// Whether the route is IPv6: by its prefix, else by its gateway.
    pub fn v6(&self) -> bool {
        match self.to {
            crate::case::syntax::RouteDst::Net(c) => c.addr.is_ipv6(),
            crate::case::syntax::RouteDst::Default => self.via.is_some_and(|v| v.is_ipv6()),
        }
    }

    /// What a route needs and what goes together, as sentences.
    pub fn check(&self) -> Result<(), String> {
        if let (crate::case::syntax::RouteDst::Net(c), Some(v)) = (self.to, self.via) {
            if c.addr.is_ipv4() != v.is_ipv4() {
                return Err(format!("route {}: via {v} is not of the prefix's family", self.to));
            }
        }
        match self.kind {
            RouteType::Unicast if self.via.is_none() && self.dev.is_none() => {
                Err(format!("route {}: a route needs `via`, `dev` or both", self.to))
            }
            RouteType::Unicast => Ok(()),
            t if self.via.is_some() => Err(format!("route {}: a {t:?} route has no `via`", self.to).to_lowercase()),
            _ => Ok(()),
        }?;
        if self.onlink && self.via.is_none() {
            return Err(format!("route {}: onlink says the gateway is on the link: add via = ...", self.to));
        }
        match self.proto.as_deref() {
            None | Some("static" | "boot" | "kernel" | "dhcp" | "ra") => Ok(()),
            Some(p) if p.parse::<u8>().is_ok() => Ok(()),
            Some(p) => Err(format!("route {}: proto {p:?}: write static, boot, kernel, dhcp, ra or a number", self.to)),
        }
    }

    /// As `ip route` would be written.
    pub fn show(&self, verb: &str) -> String {
        let mut s = format!("[{}] route {verb}", self.ns);
        if self.v6() {
            s = format!("[{}] -6 route {verb}", self.ns);
        }
        if self.kind != RouteType::Unicast {
            s += &format!(" {:?}", self.kind).to_lowercase();
        }
        s += &format!(" {}", self.to);
        if let Some(v) = self.via {
            s += &format!(" via {v}");
        }
        if let Some(d) = &self.dev {
            s += &format!(" dev {d}");
        }
        if self.onlink {
            s += " onlink";
        }
        if let Some(t) = self.table {
            s += &format!(" table {t}");
        }
        if let Some(m) = self.metric {
            s += &format!(" metric {m}");
        }
        if let Some(p) = &self.proto {
            s += &format!(" proto {p}");
        }
        s + " (netlink)"
    }
}

// ------------------------------------------------------------ neighbours, fdb

/// A neighbour entry's state, as `ip neigh ... nud STATE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NudState {
    #[default]
    Permanent,
    Reachable,
    Stale,
    Noarp,
}

/// `neigh-add` (as `ip neigh replace ADDR lladdr MAC dev DEV nud STATE`),
/// `neigh-del`, a fixture's `[[neighbour]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NeighSpec {
    pub ns: String,
    pub dev: String,
    pub address: std::net::IpAddr,
    #[serde(default)]
    pub lladdr: Option<Mac>,
    #[serde(default)]
    pub nud: NudState,
    /// A proxy entry (`ip neigh add proxy ADDR dev DEV`): the namespace
    /// answers neighbour solicitations for ADDR on DEV (IPv6 with
    /// `proxy_ndp`).
    #[serde(default)]
    pub proxy: bool,
}

impl NeighSpec {
    pub fn show(&self, verb: &str) -> String {
        if self.proxy {
            return format!("[{}] neigh {verb} proxy {} dev {} (netlink)", self.ns, self.address, self.dev);
        }
        let ll = self.lladdr.map(|m| format!(" lladdr {m}")).unwrap_or_default();
        let nud = format!("{:?}", self.nud).to_lowercase();
        format!("[{}] neigh {verb} {}{ll} dev {} nud {nud} (netlink)", self.ns, self.address, self.dev)
    }
}

/// `fdb-add` (as `bridge fdb replace MAC dev DEV [dst IP] self`, the
/// forwarding entry of a vxlan or a bridge port), `fdb-del`, a fixture's
/// `[[fdb]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FdbSpec {
    pub ns: String,
    pub dev: String,
    pub lladdr: Mac,
    /// vxlan: the remote VTEP for this MAC.
    #[serde(default)]
    pub dst: Option<std::net::IpAddr>,
    /// The entry goes to the bridge the port is on (`master`), not the
    /// device's own table (`self`, the default).
    #[serde(default)]
    pub master: bool,
}

impl FdbSpec {
    pub fn show(&self, verb: &str) -> String {
        let dst = self.dst.map(|d| format!(" dst {d}")).unwrap_or_default();
        let whose = if self.master { "master" } else { "self" };
        format!("[{}] bridge fdb {verb} {} dev {}{dst} {whose} (netlink)", self.ns, self.lladdr, self.dev)
    }
}

// ------------------------------------------------------------ rules (ip rule)

/// What a rule does: look up a table, or a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuleType {
    #[default]
    Table,
    Blackhole,
    Unreachable,
    Prohibit,
}

/// `rule-add` / `rule-del` and a fixture's `[[rule]]`: `ip [-6] rule add
/// [priority P] [from PREFIX] [to PREFIX] [fwmark M[/MASK]] [iif DEV]
/// [oif DEV] (table T | blackhole | unreachable | prohibit)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleObj {
    pub ns: String,
    #[serde(default)]
    pub priority: Option<u32>,
    #[serde(default)]
    pub from: Option<crate::case::syntax::Cidr>,
    #[serde(default)]
    pub to: Option<crate::case::syntax::Cidr>,
    #[serde(default)]
    pub fwmark: Option<u32>,
    #[serde(default)]
    pub fwmask: Option<u32>,
    #[serde(default)]
    pub iif: Option<String>,
    #[serde(default)]
    pub oif: Option<String>,
    /// The table to look up (`type = "table"`, the default): a number
    /// (254 = main).
    #[serde(default)]
    pub table: Option<u32>,
    #[serde(default, rename = "type")]
    pub kind: RuleType,
    /// IPv6 (as `ip -6 rule`); implied by an IPv6 `from` or `to`.
    #[serde(default)]
    pub v6: bool,
}

impl RuleObj {
    pub fn is_v6(&self) -> bool {
        self.v6 || self.from.is_some_and(|c| c.addr.is_ipv6()) || self.to.is_some_and(|c| c.addr.is_ipv6())
    }

    pub fn check(&self) -> Result<(), String> {
        if let (Some(f), Some(t)) = (self.from, self.to) {
            if f.addr.is_ipv4() != t.addr.is_ipv4() {
                return Err("rule: from and to are of different families".into());
            }
        }
        if self.v6 && (self.from.is_some_and(|c| c.addr.is_ipv4()) || self.to.is_some_and(|c| c.addr.is_ipv4())) {
            return Err("rule: v6 = true with an IPv4 prefix".into());
        }
        match (self.kind, self.table) {
            (RuleType::Table, None) => Err("rule: write table = <number> (254 is main) or a type".into()),
            (RuleType::Table, Some(_)) => Ok(()),
            (_, Some(_)) => Err("rule: a blackhole, unreachable or prohibit rule has no table".into()),
            _ => Ok(()),
        }
    }

    pub fn show(&self, verb: &str) -> String {
        let mut s = format!("[{}] {}rule {verb}", self.ns, if self.is_v6() { "-6 " } else { "" });
        if let Some(p) = self.priority {
            s += &format!(" priority {p}");
        }
        if let Some(c) = self.from {
            s += &format!(" from {c}");
        }
        if let Some(c) = self.to {
            s += &format!(" to {c}");
        }
        match (self.fwmark, self.fwmask) {
            (Some(m), Some(k)) => s += &format!(" fwmark {m:#x}/{k:#x}"),
            (Some(m), None) => s += &format!(" fwmark {m:#x}"),
            _ => {}
        }
        if let Some(d) = &self.iif {
            s += &format!(" iif {d}");
        }
        if let Some(d) = &self.oif {
            s += &format!(" oif {d}");
        }
        match (self.kind, self.table) {
            (RuleType::Table, Some(t)) => s += &format!(" table {t}"),
            (k, _) => s += &format!(" {k:?}").to_lowercase(),
        }
        s + " (netlink)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rulesets_show_their_command_and_origin() {
        let r = Ruleset {
            ns: "host".into(),
            kind: RulesetKind::IptablesRestore { backend: Some(RestoreBackend::Legacy), noflush: true },
            origin: "rules.v4".into(),
            text: "# c\n*filter\nCOMMIT\n".into(),
        };
        assert_eq!(r.to_string(), "[host] iptables-legacy-restore --noflush < rules.v4 (2 lines)");
        let n = Ruleset { kind: RulesetKind::Nft, origin: "inline".into(), ..r };
        assert_eq!(n.argv(), ["nft", "-f", "-"]);
    }

    #[test]
    fn link_set_shows_its_offloads_as_ethtool_does() {
        let on = [(Feature::TxChecksumming, true), (Feature::RxChecksumming, true)].into_iter().collect();
        let l = LinkSet {
            ns: "dhcp".into(),
            dev: "ns-dhcp".into(),
            offloads: Some(Offloads::Set(on)),
            ..Default::default()
        };
        assert_eq!(
            l.to_string(),
            "[dhcp] link set dev ns-dhcp (netlink); ethtool -K ns-dhcp tx on rx on (SIOCETHTOOL)"
        );
        let shipped = LinkSet { offloads: Some(Offloads::Word(OffloadWord::AsShipped)), ..l.clone() };
        assert_eq!(shipped.to_string(), "[dhcp] link set dev ns-dhcp (netlink)");
        let off = LinkSet { offloads: Some(Offloads::Word(OffloadWord::Off)), ..l };
        assert!(off.to_string().ends_with("-K ns-dhcp gro off gso off tso off sg off tx off rx off (SIOCETHTOOL)"));
    }

    #[test]
    fn ruleset_files_are_relative_to_their_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("x.nft"), "table inet t {}\n").unwrap();
        let base = d.path().join("case.toml");
        assert_eq!(read_relative(&base, "x.nft").unwrap(), "table inet t {}\n");
        assert!(read_relative(&base, "/etc/x.nft").unwrap_err().contains("relative"));
        assert!(read_relative(&base, "y.nft").unwrap_err().contains("cannot read"));
    }
}
