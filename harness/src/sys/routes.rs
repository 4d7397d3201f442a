//! The route tables of a namespace, read over rtnetlink (IPv4 and IPv6, every
//! table but `local`), each entry as `ip route` shows it:
//! `default via fe80::1 dev eno1 proto ra metric 1024`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use anyhow::{anyhow, Result};
use futures::TryStreamExt;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteProtocol};
use rtnetlink::RouteMessageBuilder;
use serde::{Deserialize, Serialize};

use crate::sys::netns::NsCtx;

/// `RT_TABLE_LOCAL`: the addresses of the namespace itself, not routes a
/// case speaks of.
const TABLE_LOCAL: u32 = 255;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Route {
    /// `default` or `prefix/len`.
    pub dst: String,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// `kernel`, `boot`, `static`, `ra`, `dhcp`, `redirect` … as `ip route`.
    pub proto: String,
    pub metric: Option<u32>,
    pub table: u32,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.dst)?;
        if let Some(v) = self.via {
            write!(f, " via {v}")?;
        }
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        write!(f, " proto {}", self.proto)?;
        if let Some(m) = self.metric {
            write!(f, " metric {m}")?;
        }
        if self.table != 254 {
            write!(f, " table {}", self.table)?;
        }
        Ok(())
    }
}

pub fn proto_name(p: RouteProtocol) -> String {
    match p {
        RouteProtocol::IcmpRedirect => "redirect".into(),
        RouteProtocol::DnRouted => "dnrouted".into(),
        RouteProtocol::KeepAlived => "keepalived".into(),
        RouteProtocol::Other(n) => n.to_string(),
        p => format!("{p:?}").to_lowercase(),
    }
}

fn addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn entry(ctx: &NsCtx, m: &RouteMessage) -> Route {
    let mut r = Route {
        dst: "default".into(),
        via: None,
        dev: None,
        proto: proto_name(m.header.protocol),
        metric: None,
        table: m.header.table as u32,
    };
    for a in &m.attributes {
        match a {
            RouteAttribute::Destination(d) => {
                if let Some(ip) = addr(d) {
                    r.dst = format!("{ip}/{}", m.header.destination_prefix_length);
                }
            }
            RouteAttribute::Gateway(g) => r.via = addr(g),
            RouteAttribute::Oif(i) => {
                r.dev = Some(crate::sys::link::link_name(ctx, *i).unwrap_or_else(|_| i.to_string()))
            }
            RouteAttribute::Priority(p) => r.metric = Some(*p),
            RouteAttribute::Table(t) => r.table = *t,
            _ => {}
        }
    }
    r
}

/// Every IPv4 and IPv6 route of the namespace (the `local` table left out).
pub fn routes(ctx: &NsCtx) -> Result<Vec<Route>> {
    let mut out = Vec::new();
    for msg in [RouteMessageBuilder::<Ipv4Addr>::new().build(), RouteMessageBuilder::<Ipv6Addr>::new().build()] {
        let msgs: Vec<RouteMessage> = ctx
            .block_on(ctx.nl.route().get(msg).execute().try_collect::<Vec<_>>())
            .map_err(|e| anyhow!("dumping routes: {e}"))?;
        out.extend(msgs.iter().map(|m| entry(ctx, m)).filter(|r| r.table != TABLE_LOCAL));
    }
    Ok(out)
}
