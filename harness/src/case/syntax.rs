//! The notations a case borrows from the tools it replaces, parsed once here:
//! tc(8) handles and rates, sysctl(8) keys (and which are global), and the
//! `ns (backend)` source of iptables counters. Pure.

use std::path::PathBuf;

use anyhow::{anyhow, bail, Result};
use netlink_packet_route::tc::TcHandle;

/// `tc`'s handle notation: `1:`, `1:10`, `root`. Numbers are hex, as in tc.
pub fn parse_handle(s: &str) -> Result<TcHandle> {
    if s == "root" {
        return Ok(TcHandle::ROOT);
    }
    let (maj, min) =
        s.split_once(':').ok_or_else(|| anyhow!("handle {s:?}: write major:[minor] in hex, e.g. 1: or 1:10"))?;
    let hex = |x: &str| -> Result<u16> {
        if x.is_empty() {
            Ok(0)
        } else {
            u16::from_str_radix(x, 16).map_err(|_| anyhow!("handle {s:?}: {x:?} is not hex"))
        }
    };
    Ok(TcHandle { major: hex(maj)?, minor: hex(min)? })
}

pub fn handle_text(h: TcHandle) -> String {
    if h == TcHandle::ROOT {
        "root".into()
    } else if h.minor == 0 {
        format!("{:x}:", h.major)
    } else {
        format!("{:x}:{:x}", h.major, h.minor)
    }
}

/// The fastest rate a case may give: the 32-bit `rate` of `struct
/// tc_ratespec`, in bytes/s (about 34.4 Gbit/s). Past it HTB needs
/// `TCA_HTB_RATE64`, which the harness does not send: refusing is truer
/// than clamping in silence.
pub const RATE_MAX: u64 = u32::MAX as u64;

/// A rate as tc writes it (`1gbit`, `100mbit`, `800kbit`, `5000bit`,
/// `10mbps` = bytes) in bytes per second, from 1 to [`RATE_MAX`].
pub fn parse_rate(s: &str) -> Result<u64> {
    let s = s.trim().to_ascii_lowercase();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| anyhow!("rate {s:?}: no number"))?;
    let bits = match unit {
        "bit" | "" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "bps" => 8.0,
        "kbps" => 8e3,
        "mbps" => 8e6,
        "gbps" => 8e9,
        u => bail!("rate {s:?}: unknown unit {u:?} (bit, kbit, mbit, gbit, bps, kbps, mbps, gbps)"),
    };
    // Compared as a float before the cast: `as u64` would saturate a huge
    // number (1e30 bit) into a plausible-looking one.
    let bytes = (n * bits / 8.0).round();
    if bytes.is_nan() || bytes > RATE_MAX as f64 {
        bail!("rate {s:?} is above {RATE_MAX} bytes/s (the 32-bit tc rate): write at most 34gbit");
    }
    if bytes < 1.0 {
        bail!("rate {s:?} is zero: write at least 8bit (1 byte/s)");
    }
    Ok(bytes as u64)
}

/// A tc handle as a case writes it (`1:`, `1:10`), parsed when the file is
/// read; shown as tc prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle(pub TcHandle);

/// An HTB class minor in hex, as tc's `default 10` writes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Minor(pub u32);

/// A tc rate as the case wrote it (`100mbit`), and its value in bytes/s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rate {
    pub text: String,
    pub bytes_per_s: u64,
}

impl std::fmt::Display for Handle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&handle_text(self.0))
    }
}

impl std::fmt::Display for Minor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:x}", self.0)
    }
}

impl std::fmt::Display for Rate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Handle {
    type Err = String;
    fn from_str(s: &str) -> Result<Handle, String> {
        parse_handle(s).map(Handle).map_err(|e| e.to_string())
    }
}

impl std::str::FromStr for Minor {
    type Err = String;
    fn from_str(s: &str) -> Result<Minor, String> {
        u32::from_str_radix(s, 16).map(Minor).map_err(|_| format!("default {s:?} is not a hex class minor"))
    }
}

impl std::str::FromStr for Rate {
    type Err = String;
    fn from_str(s: &str) -> Result<Rate, String> {
        parse_rate(s).map(|bytes_per_s| Rate { text: s.to_string(), bytes_per_s }).map_err(|e| e.to_string())
    }
}

/// Serde (as the string the case writes) and JSON Schema (a string) for the
/// notations above, so that a bad one fails when the file is read, at its line.
macro_rules! as_string {
    ($($t:ty),*) => {$(
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
        impl schemars::JsonSchema for $t {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                stringify!($t).into()
            }
            fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
                schemars::json_schema!({ "type": "string" })
            }
        }
    )*};
}
as_string!(Handle, Minor, Rate);

/// A sysctl key as sysctl(8) writes it (`net.ipv4.ip_forward`, or with
/// slashes where an interface name has dots) → its `/proc/sys` path. Only
/// `net.*`: nothing else under `/proc/sys` belongs to a network namespace, so
/// anything else would change the host (`kernel.ostype`).
pub fn path_of(key: &str) -> Result<PathBuf> {
    if !(key.starts_with("net.") || key.starts_with("net/")) {
        bail!("sysctl {key:?} is not a network setting: only net.* is per network namespace; write a key under net. (e.g. net.ipv4.ip_forward)");
    }
    if key.contains("..")
        || key.contains("//")
        || key.ends_with(['.', '/'])
        || !key.bytes().all(|b| b.is_ascii_graphic())
    {
        bail!("bad sysctl name {key:?}: write dotted words (net.ipv4.conf.eth0.forwarding), or a/b/c where an interface name has dots");
    }
    // Interface names may contain dots; accept "a/b/c" as the unambiguous form.
    let rel = if key.contains('/') { key.to_string() } else { key.replace('.', "/") };
    Ok(PathBuf::from("/proc/sys").join(rel))
}

/// The longest namespace name, in bytes.
pub const NS_NAME_MAX: usize = 32;

/// A fixture's namespace name. Names go into every `ns: ...` and `ns/dev`
/// notation, thread names and pcap file names, so only letters, digits,
/// '-' and '_' (no '/', ':', NUL or white space to break them).
pub fn check_ns_name(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= NS_NAME_MAX
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!("namespace name {name:?}: write 1–{NS_NAME_MAX} letters, digits, '-' or '_' (e.g. \"container\")"))
    }
}

/// `IFNAMSIZ - 1`: the longest interface name the kernel takes.
pub const IFNAME_MAX: usize = 15;

/// An interface name as the kernel's `dev_valid_name` takes it (1–15 bytes,
/// not `.` or `..`, no '/', ':' or white space), and printable ASCII so that
/// it reads back the same in evidence and reports.
pub fn check_ifname(name: &str) -> std::result::Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= IFNAME_MAX
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_graphic() && b != b'/' && b != b':');
    if ok {
        Ok(())
    } else {
        Err(format!("interface name {name:?}: write 1–{IFNAME_MAX} printable characters without '/', ':' or spaces (IFNAMSIZ), e.g. \"eth0\""))
    }
}

/// A link to the report a case reproduces: the report renders it as a link,
/// so only `http://` and `https://` with something after the scheme.
pub fn check_url(url: &str) -> std::result::Result<(), String> {
    let lower = url.to_ascii_lowercase();
    let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
    match rest {
        Some(r) if !r.is_empty() && url.bytes().all(|b| b.is_ascii_graphic()) => Ok(()),
        _ => Err(format!("url {url:?}: write an http:// or https:// link without spaces (e.g. \"https://github.com/moby/moby/issues/1\")")),
    }
}

/// Settings that are global, not per namespace: one value for every
/// namespace, the host's included ([`crate::safety::globals`] changes them).
pub const GLOBAL: &[&str] = &[
    "net.netfilter.nf_conntrack_max",
    "net.nf_conntrack_max",
    "net.core.netdev_max_backlog",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.core.optmem_max",
    "net.ipv4.tcp_mem",
    "net.ipv4.udp_mem",
    "net.ipv4.neigh.default.gc_thresh1",
    "net.ipv4.neigh.default.gc_thresh2",
    "net.ipv4.neigh.default.gc_thresh3",
    "net.ipv6.neigh.default.gc_thresh1",
    "net.ipv6.neigh.default.gc_thresh2",
    "net.ipv6.neigh.default.gc_thresh3",
];

pub fn is_global(key: &str) -> bool {
    GLOBAL.contains(&key.replace('/', ".").as_str())
}

/// Splits a counter source, `host` or `host (legacy)` / `host (nft)`, into
/// the namespace and the iptables backend to read (None: whatever
/// `iptables-save` is on this system).
pub fn split_source(source: &str) -> Result<(&str, Option<&str>)> {
    let s = source.trim();
    match s.split_once('(') {
        None => Ok((s, None)),
        Some((ns, rest)) => match rest.trim().strip_suffix(')').map(str::trim) {
            Some(b @ ("legacy" | "nft")) => Ok((ns.trim(), Some(b))),
            _ => bail!("{source:?}: write \"namespace\", \"namespace (legacy)\" or \"namespace (nft)\""),
        },
    }
}

/// The longest case id: ids become file names (`<id>.json`, `<id>.log`,
/// artifact folders) and must stay well under NAME_MAX with any suffix.
pub const MAX_ID_LEN: usize = 64;

/// The one rule for case ids, wherever an id comes from (a case file, `new`,
/// a kept topology's state file, the command line): `[a-z0-9][a-z0-9-]*`, at
/// most [`MAX_ID_LEN`] characters. So an id is always a plain file name:
/// never empty, never `.`/`..`, no `/`, no leading `-` to be read as an option.
///
/// # Errors
/// Why `id` is not one, as a sentence that quotes it.
pub fn check_id(id: &str) -> Result<(), String> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(format!("id {id:?}: use lower-case letters, digits and '-' (not first)"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("id {id:?}: at most {MAX_ID_LEN} characters"));
    }
    Ok(())
}

// ------------------------------------------------------------ addresses (ip(8))

/// `address/prefix`, e.g. `172.17.0.1/16`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Cidr {
    pub addr: std::net::IpAddr,
    pub prefix: u8,
}

impl std::str::FromStr for Cidr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, p) = s.split_once('/').ok_or_else(|| format!("{s:?} is not address/prefix (e.g. 172.17.0.1/16)"))?;
        let addr: std::net::IpAddr = a.parse().map_err(|_| format!("{a:?} in {s:?} is not an IP address"))?;
        let prefix: u8 = p.parse().map_err(|_| format!("prefix {p:?} in {s:?} is not a number"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max {
            return Err(format!("prefix /{prefix} in {s:?} is longer than /{max}"));
        }
        Ok(Cidr { addr, prefix })
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl<'de> serde::Deserialize<'de> for Cidr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// A route's destination: `default` or a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteDst {
    Default,
    Net(Cidr),
}

impl std::str::FromStr for RouteDst {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "default" {
            return Ok(RouteDst::Default);
        }
        s.parse().map(RouteDst::Net).map_err(|e| format!("route `to`: {e}, or \"default\""))
    }
}

impl std::fmt::Display for RouteDst {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteDst::Default => f.write_str("default"),
            RouteDst::Net(c) => c.fmt(f),
        }
    }
}

impl serde::Serialize for RouteDst {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for RouteDst {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        <String as serde::Deserialize>::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

// ------------------------------------------------------------ sizes (tc)

/// A size in bytes as tc reads it (`get_size`, units case-insensitive):
/// `1500`, `1500b`, `15k`/`15kb` (KiB), `256mb` (MiB: `256Mb` is bytes, not
/// bits), `1g`, `8kbit`, `10mbit`, `1gbit` (bits: 1024-based, divided by 8).
/// Written as a number (bytes) or a string.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Size {
    pub text: String,
    pub bytes: u32,
}

impl std::str::FromStr for Size {
    type Err = String;
    fn from_str(s: &str) -> Result<Size, String> {
        let t = s.trim().to_ascii_lowercase();
        let split = t.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(t.len());
        let (num, unit) = t.split_at(split);
        let n: f64 = num.parse().map_err(|_| {
            format!("size {s:?}: write bytes, or a number with k, m, g, kbit, mbit, gbit as tc reads it")
        })?;
        let mult = match unit {
            "" | "b" => 1.0,
            "k" | "kb" => 1024.0,
            "m" | "mb" => 1024.0 * 1024.0,
            "g" | "gb" => 1024.0 * 1024.0 * 1024.0,
            "kbit" => 1024.0 / 8.0,
            "mbit" => 1024.0 * 1024.0 / 8.0,
            "gbit" => 1024.0 * 1024.0 * 1024.0 / 8.0,
            _ => return Err(format!("size {s:?}: unit {unit:?}: write b, k, m, g, kbit, mbit or gbit (as tc)")),
        };
        let bytes = n * mult;
        if !(1.0..=u32::MAX as f64).contains(&bytes) {
            return Err(format!("size {s:?}: write 1 byte to 4 GiB - 1"));
        }
        Ok(Size { text: s.trim().to_string(), bytes: bytes as u32 })
    }
}

impl std::fmt::Display for Size {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl<'de> serde::Deserialize<'de> for Size {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(serde::Deserialize)]
        #[serde(untagged)]
        enum Raw {
            N(u64),
            S(String),
        }
        let text = match Raw::deserialize(d)? {
            Raw::N(n) => n.to_string(),
            Raw::S(s) => s,
        };
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_names_map_to_proc_paths() {
        assert_eq!(
            path_of("net.ipv4.conf.eno1.forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eno1/forwarding")
        );
        assert_eq!(
            path_of("net/ipv4/conf/eth0.100/forwarding").unwrap(),
            PathBuf::from("/proc/sys/net/ipv4/conf/eth0.100/forwarding")
        );
        assert!(path_of("net..x").is_err());
        assert!(path_of("").is_err());
        assert!(path_of("kernel.ostype").unwrap_err().to_string().contains("only net.*"));
        assert!(path_of("net").is_err() && path_of("net.").is_err() && path_of("net.ipv4.x\0").is_err());
    }

    #[test]
    fn rates_overflow_into_an_error() {
        assert_eq!(parse_rate("1gbit").unwrap(), 125_000_000);
        assert_eq!(parse_rate("34gbit").unwrap(), 4_250_000_000);
        for huge in ["99999999999999999999gbit", "35gbit", &"9".repeat(400)] {
            assert!(parse_rate(huge).unwrap_err().to_string().contains("write at most 34gbit"), "{huge}");
        }
        assert!(parse_rate("0.001bit").unwrap_err().to_string().contains("zero"));
    }

    #[test]
    fn names_and_urls() {
        assert!(check_ns_name("container").is_ok() && check_ns_name("br_a-1").is_ok());
        for bad in ["", "a\0", "a b", "a/b", "a:b", "a\tb", "é", &"n".repeat(NS_NAME_MAX + 1)] {
            assert!(check_ns_name(bad).is_err(), "{bad:?}");
        }
        assert!(
            check_ifname("eth0").is_ok() && check_ifname("eth0.100").is_ok() && check_ifname(&"x".repeat(15)).is_ok()
        );
        for bad in ["", ".", "..", "a/b", "a:b", "a b", "a\0", "\u{7f}", &"x".repeat(16)] {
            assert!(check_ifname(bad).is_err(), "{bad:?}");
        }
        assert!(check_url("https://github.com/moby/moby/issues/1").is_ok() && check_url("http://x").is_ok());
        for bad in ["javascript:alert(1)", "https://", "ftp://x", "https://a b", " https://x", "//x"] {
            assert!(check_url(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn global_settings_are_recognised() {
        assert!(is_global("net.netfilter.nf_conntrack_max"));
        assert!(is_global("net.ipv4.neigh.default.gc_thresh3"));
        assert!(!is_global("net.ipv4.conf.all.forwarding"));
        assert!(!is_global("net.netfilter.nf_conntrack_tcp_be_liberal"));
    }

    #[test]
    fn sources_name_a_backend() {
        assert_eq!(split_source("host").unwrap(), ("host", None));
        assert_eq!(split_source(" host (legacy) ").unwrap(), ("host", Some("legacy")));
        assert_eq!(split_source("host (nft)").unwrap(), ("host", Some("nft")));
        assert!(split_source("host (ebtables)").is_err());
    }

    #[test]
    fn an_id_is_always_a_plain_file_name() {
        for ok in ["demo", "htb-direct-qlen", "0day", "a-"] {
            assert_eq!(check_id(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(MAX_ID_LEN + 1);
        for bad in ["", "-rf", "Demo", "a/b", "/etc/passwd", "..", ".", "a.b", "a b", "ä", &long] {
            assert!(check_id(bad).is_err(), "{bad:?} passed");
        }
    }

    #[test]
    fn sizes_read_like_tc() {
        let b = |s: &str| s.parse::<Size>().map(|z| z.bytes);
        assert_eq!(b("15k"), Ok(15 * 1024));
        assert_eq!(b("256Mb"), Ok(256 << 20), "tc: mb is megabytes, not bits");
        assert_eq!(b("10mbit"), Ok(1_310_720));
        assert_eq!(b("1250000"), Ok(1_250_000));
        assert!(b("5 parsecs").is_err() && b("0").is_err() && b("8g").is_err());
    }
}
