//! What a device's frames start with: the kernel's ARPHRD type (as
//! `AF_PACKET` reports it in `sll_hatype`) mapped to the LINKTYPE a pcapng
//! Interface Description Block declares (tcpdump.org's link-layer header
//! types registry), the way libpcap maps them for `SOCK_RAW` captures.

use serde::{Deserialize, Serialize};

/// How a captured frame's bytes begin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum LinkType {
    /// An Ethernet II header (veth, bridge, loopback, macvlan, vxlan...).
    Ethernet,
    /// No link-layer header: the frame is an IPv4 or IPv6 packet (tun in
    /// IP mode, wireguard, ipip, sit).
    RawIp,
}

// include/uapi/linux/if_arp.h
const ARPHRD_ETHER: u16 = 1;
const ARPHRD_TUNNEL: u16 = 768;
const ARPHRD_TUNNEL6: u16 = 769;
const ARPHRD_LOOPBACK: u16 = 772;
const ARPHRD_RAWIP: u16 = 519;
const ARPHRD_NONE: u16 = 0xfffe;

impl LinkType {
    /// The link type of a device whose `dev->type` is `arphrd`; `None` for
    /// one whose frames this harness cannot parse (say so, do not guess).
    pub fn from_arphrd(arphrd: u16) -> Option<LinkType> {
        match arphrd {
            // Loopback frames carry an Ethernet header with zero addresses.
            ARPHRD_ETHER | ARPHRD_LOOPBACK => Some(LinkType::Ethernet),
            ARPHRD_NONE | ARPHRD_RAWIP | ARPHRD_TUNNEL | ARPHRD_TUNNEL6 => Some(LinkType::RawIp),
            _ => None,
        }
    }

    /// The LINKTYPE_ number: LINKTYPE_ETHERNET (1), LINKTYPE_RAW (101).
    pub fn linktype(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIp => 101,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_map_as_libpcap_maps_them() {
        assert_eq!(LinkType::from_arphrd(1).map(LinkType::linktype), Some(1));
        assert_eq!(LinkType::from_arphrd(772), Some(LinkType::Ethernet));
        assert_eq!(LinkType::from_arphrd(0xfffe).map(LinkType::linktype), Some(101));
        assert_eq!(LinkType::from_arphrd(32), None, "infiniband: not parsed here");
    }
}
