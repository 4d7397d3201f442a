//! Offloads off through `SIOCETHTOOL`, so that captures hold the frames the
//! wire would carry (no GSO super-frames, no partial checksums) and
//! injected frames are judged as real ones.
//!
//! One `ETHTOOL_SFEATURES` per device, with the feature bits each of the
//! six legacy commands (`-K rx tx sg tso gso gro off`) clears, found by
//! name in the kernel's feature strings once per process: each ethtool call
//! takes RTNL, and six per veth end were most of a large topology's
//! offload time. Where the strings cannot be read, the six legacy calls.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use anyhow::{anyhow, Result};

use crate::case::object::Feature;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_SRXCSUM: u32 = 0x15;
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_SSG: u32 = 0x19;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_GSTRINGS: u32 = 0x1b;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_SGRO: u32 = 0x2c;
const ETHTOOL_GSSET_INFO: u32 = 0x37;
const ETHTOOL_GFEATURES: u32 = 0x3a;
const ETHTOOL_SFEATURES: u32 = 0x3b;
const ETH_SS_FEATURES: u32 = 4;
const ETH_GSTRING_LEN: usize = 32;

/// The features the legacy commands clear (`ethtool_get_feature_mask`):
/// STXCSUM the checksum features, SSG scatter-gather (and fraglist), STSO
/// every TSO, SGSO, SGRO, SRXCSUM.
const OFF: &[&str] = &[
    "tx-checksum-ipv4",
    "tx-checksum-ip-generic",
    "tx-checksum-ipv6",
    "tx-checksum-fcoe-crc",
    "tx-checksum-sctp",
    "tx-scatter-gather",
    "tx-scatter-gather-fraglist",
    "tx-tcp-segmentation",
    "tx-tcp-ecn-segmentation",
    "tx-tcp-mangleid-segmentation",
    "tx-tcp6-segmentation",
    "tx-generic-segmentation",
    "rx-gro",
    "rx-checksum",
];

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// A datagram socket for ethtool ioctls in the calling thread's namespace.
struct Sock(i32);

impl Sock {
    fn new() -> Result<Sock> {
        // SAFETY: plain socket(2); closed on drop.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd < 0 {
            return Err(anyhow!("socket for ethtool: {}", std::io::Error::last_os_error()));
        }
        Ok(Sock(fd))
    }

    /// `SIOCETHTOOL` on `dev` with `data` (a command struct).
    fn ioctl(&self, dev: &str, data: *mut libc::c_void) -> std::io::Result<()> {
        ioctl_on(self.0, dev, data)
    }
}

/// `SIOCETHTOOL` on `dev` through `fd`, a socket of any family in the
/// device's namespace (the kernel hands socket ioctls its protocol does not
/// know to `dev_ioctl`, in the socket's namespace).
fn ioctl_on(fd: i32, dev: &str, data: *mut libc::c_void) -> std::io::Result<()> {
    {
        let mut ifr = IfReq { name: [0; libc::IFNAMSIZ], data, _pad: [0; 16] };
        for (i, b) in dev.bytes().enumerate() {
            ifr.name[i] = b as libc::c_char;
        }
        // SAFETY: an ifreq we own pointing at a command struct the caller owns.
        // (SFEATURES answers with flags: any non-negative value is success.)
        if unsafe { libc::ioctl(fd, SIOCETHTOOL as _, &mut ifr) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(())
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        // SAFETY: our fd.
        unsafe { libc::close(self.0) };
    }
}

/// How many features this kernel has and their names by bit
/// (`ETH_SS_FEATURES`: the same for every device), read through `lo` once
/// per process.
fn feature_bits() -> Option<&'static (usize, BTreeMap<String, u32>)> {
    static BITS: OnceLock<Option<(usize, BTreeMap<String, u32>)>> = OnceLock::new();
    BITS.get_or_init(|| {
        let s = Sock::new().ok()?;
        // struct ethtool_sset_info with one u32 of data.
        let mut info = [0u32; 5];
        info[0] = ETHTOOL_GSSET_INFO;
        info[2] = 1 << ETH_SS_FEATURES; // sset_mask (u64, low half)
        s.ioctl("lo", info.as_mut_ptr() as *mut libc::c_void).ok()?;
        let n = info[4] as usize;
        if n == 0 || n > 4096 {
            return None;
        }
        // struct ethtool_gstrings: cmd, string_set, len, then the strings.
        let mut g = vec![0u8; 12 + n * ETH_GSTRING_LEN];
        g[0..4].copy_from_slice(&ETHTOOL_GSTRINGS.to_ne_bytes());
        g[4..8].copy_from_slice(&ETH_SS_FEATURES.to_ne_bytes());
        g[8..12].copy_from_slice(&(n as u32).to_ne_bytes());
        s.ioctl("lo", g.as_mut_ptr() as *mut libc::c_void).ok()?;
        let names = g[12..].chunks(ETH_GSTRING_LEN).enumerate().filter_map(|(i, raw)| {
            let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
            let name = std::str::from_utf8(&raw[..end]).ok()?;
            (!name.is_empty()).then(|| (name.to_string(), i as u32))
        });
        Some((n, names.collect()))
    })
    .as_ref()
}

/// Switches rx/tx checksum offload, scatter-gather, TSO, GSO and GRO off on
/// `dev` in the calling thread's namespace: what `ethtool -K dev rx off tx
/// off sg off tso off gso off gro off` asks, in one call.
pub fn offloads_off(dev: &str) -> Result<()> {
    let s = Sock::new()?;
    offloads_off_via(s.0, dev)
}

/// As [`offloads_off`], through `fd`: any socket in `dev`'s namespace (the
/// bench's floor uses the netlink socket that holds its namespace).
pub fn offloads_off_via(fd: std::os::fd::RawFd, dev: &str) -> Result<()> {
    if dev.len() >= libc::IFNAMSIZ {
        return Err(anyhow!("interface name {dev:?} too long"));
    }
    let Some((count, bits)) = feature_bits() else { return legacy_off_via(fd, dev) };
    // The kernel wants exactly its number of words.
    let words = count.div_ceil(32);
    // struct ethtool_sfeatures: cmd, size, then {valid, requested} per word.
    let mut req = vec![0u32; 2 + 2 * words];
    req[0] = ETHTOOL_SFEATURES;
    req[1] = words as u32;
    for name in OFF {
        if let Some(&b) = bits.get(*name) {
            req[2 + 2 * (b as usize / 32)] |= 1 << (b % 32);
        }
    }
    // A device lacking some of them (EOPNOTSUPP per feature in the legacy
    // calls) gets the rest: the kernel says so in the result's flags.
    ioctl_on(fd, dev, req.as_mut_ptr() as *mut libc::c_void).map_err(|e| anyhow!("ethtool features off on {dev}: {e}"))
}

/// The six legacy calls, one per feature group.
pub fn legacy_off(dev: &str) -> Result<()> {
    set_features(dev, &Feature::ALL.map(|f| (f, false)))
}

fn legacy_off_via(fd: std::os::fd::RawFd, dev: &str) -> Result<()> {
    set_features_via(fd, dev, &Feature::ALL.map(|f| (f, false)))
}

fn cmd_of(f: Feature) -> u32 {
    match f {
        Feature::GenericReceiveOffload => ETHTOOL_SGRO,
        Feature::GenericSegmentationOffload => ETHTOOL_SGSO,
        Feature::TcpSegmentationOffload => ETHTOOL_STSO,
        Feature::ScatterGather => ETHTOOL_SSG,
        Feature::TxChecksumming => ETHTOOL_STXCSUM,
        Feature::RxChecksumming => ETHTOOL_SRXCSUM,
    }
}

/// Sets each feature on `dev` in the calling thread's namespace, in order,
/// with the legacy command of each (a device that lacks one is left as it
/// is): a link's `offloads` as its case gives them.
pub fn set_features(dev: &str, features: &[(Feature, bool)]) -> Result<()> {
    let s = Sock::new()?;
    set_features_via(s.0, dev, features)
}

fn set_features_via(fd: std::os::fd::RawFd, dev: &str, features: &[(Feature, bool)]) -> Result<()> {
    if dev.len() >= libc::IFNAMSIZ {
        return Err(anyhow!("interface name {dev:?} too long"));
    }
    for &(feature, on) in features {
        let cmd = cmd_of(feature);
        let mut val = EthtoolValue { cmd, data: u32::from(on) };
        if let Err(e) = ioctl_on(fd, dev, &mut val as *mut EthtoolValue as *mut libc::c_void) {
            // Not every device implements every toggle (EOPNOTSUPP).
            if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                return Err(anyhow!("ethtool cmd 0x{cmd:x} on {dev}: {e}"));
            }
        }
    }
    Ok(())
}

/// The features active on `dev` (`ETHTOOL_GFEATURES`), one bit each.
pub fn active_features(dev: &str) -> Result<Vec<u32>> {
    let words = 4usize;
    // struct ethtool_gfeatures: cmd, size, then {available, requested, active, never_changed}.
    let mut req = vec![0u32; 2 + 4 * words];
    req[0] = ETHTOOL_GFEATURES;
    req[1] = words as u32;
    Sock::new()?.ioctl(dev, req.as_mut_ptr() as *mut libc::c_void).map_err(|e| anyhow!("ethtool on {dev}: {e}"))?;
    Ok((0..words).map(|w| req[2 + 4 * w + 2]).collect())
}

#[cfg(test)]
mod tests {
    use crate::sys::link::{batch, new_veth, LinkOpts, PeerNs};

    /// One `ETHTOOL_SFEATURES` leaves a veth with the features the six
    /// legacy calls leave.
    #[test]
    fn one_call_does_what_the_six_did() {
        let Ok(ns) = crate::sys::netns::Netns::new("ethtool") else { return };
        let tid = ns.tid();
        let (legacy, one) = ns
            .run(move |ctx| -> anyhow::Result<(Vec<u32>, Vec<u32>)> {
                let o = |index| LinkOpts { index, ..Default::default() };
                batch(
                    ctx,
                    vec![
                        new_veth("a0", &o(100), "a1", &o(101), PeerNs::Thread(tid)),
                        new_veth("b0", &o(102), "b1", &o(103), PeerNs::Thread(tid)),
                    ],
                )?;
                super::legacy_off("a0")?;
                super::offloads_off("b0")?;
                Ok((super::active_features("a0")?, super::active_features("b0")?))
            })
            .unwrap()
            .unwrap();
        assert_eq!(legacy, one);
    }
}
