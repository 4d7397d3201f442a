//! Offloads off through the legacy `SIOCETHTOOL` commands, so that captures
//! hold the frames the wire would carry (no GSO super-frames, no partial
//! checksums) and injected frames are judged as real ones.

use anyhow::{anyhow, Result};

use crate::case::object::Feature;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_SRXCSUM: u32 = 0x15;
const ETHTOOL_STXCSUM: u32 = 0x17;
const ETHTOOL_SSG: u32 = 0x19;
const ETHTOOL_STSO: u32 = 0x1f;
const ETHTOOL_SGSO: u32 = 0x24;
const ETHTOOL_SGRO: u32 = 0x2c;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut EthtoolValue,
    _pad: [u8; 16],
}

/// Switches rx/tx checksum offload, scatter-gather, TSO, GSO and GRO off on
/// `dev` in the calling thread's namespace.
pub fn offloads_off(dev: &str) -> Result<()> {
    set_features(dev, &Feature::ALL.map(|f| (f, false)))
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

/// Sets each feature on `dev` in the calling thread's namespace, in order
/// (a device that lacks one is left as it is).
pub fn set_features(dev: &str, features: &[(Feature, bool)]) -> Result<()> {
    if dev.len() >= libc::IFNAMSIZ {
        return Err(anyhow!("interface name {dev:?} too long"));
    }
    // SAFETY: plain socket + ioctl on stack-owned, correctly sized structs.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return Err(anyhow!("socket for ethtool: {}", std::io::Error::last_os_error()));
        }
        let mut result = Ok(());
        for &(feature, on) in features {
            let cmd = cmd_of(feature);
            let mut val = EthtoolValue { cmd, data: u32::from(on) };
            let mut ifr = IfReq { name: [0; libc::IFNAMSIZ], data: &mut val, _pad: [0; 16] };
            for (i, b) in dev.bytes().enumerate() {
                ifr.name[i] = b as libc::c_char;
            }
            if libc::ioctl(fd, SIOCETHTOOL as _, &mut ifr) != 0 {
                let e = std::io::Error::last_os_error();
                // Not every device implements every toggle (EOPNOTSUPP).
                if e.raw_os_error() != Some(libc::EOPNOTSUPP) {
                    result = Err(anyhow!("ethtool cmd 0x{cmd:x} on {dev}: {e}"));
                    break;
                }
            }
        }
        libc::close(fd);
        result
    }
}
