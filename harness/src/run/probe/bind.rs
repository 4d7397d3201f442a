//! `bind`: one `bind(2)` of a TCP or UDP socket, with `IP_FREEBIND` or
//! `IP_TRANSPARENT` if asked, and `listen(2)`: the errno is the outcome
//! (a service that cannot bind its VIP, a port taken).

use std::net::SocketAddr;
use std::time::Instant;

use anyhow::Result;
use socket2::{Domain, Socket, Type};

use super::{error_name, ms};
use crate::case::spec::Proto;
use crate::evidence::outcome::BindOutcome;
use crate::sys::netns::Netns;

pub struct BindOpts {
    pub proto: Proto,
    pub freebind: bool,
    pub transparent: bool,
    pub listen: bool,
}

/// Binds in `from`'s namespace; the socket is closed when the probe ends.
pub fn bind(from: &Netns, addr: SocketAddr, o: BindOpts) -> Result<BindOutcome> {
    let (r, took) = from.run(move |_| {
        let t0 = Instant::now();
        (attempt(addr, &o), t0.elapsed())
    })?;
    let (result, failed) = match r {
        Ok(()) => ("ok".to_string(), "none".to_string()),
        Err((call, e)) => (error_name(&e), call.to_string()),
    };
    Ok(BindOutcome { result, failed, elapsed_ms: ms(took) })
}

fn attempt(addr: SocketAddr, o: &BindOpts) -> Result<(), (&'static str, std::io::Error)> {
    let ty = match o.proto {
        Proto::Tcp => Type::STREAM,
        Proto::Udp => Type::DGRAM,
    };
    let s = Socket::new(Domain::for_address(addr), ty, None).map_err(|e| ("socket", e))?;
    if o.freebind {
        match addr {
            SocketAddr::V4(_) => s.set_freebind_v4(true),
            SocketAddr::V6(_) => s.set_freebind_v6(true),
        }
        .map_err(|e| ("setsockopt", e))?;
    }
    if o.transparent {
        match addr {
            SocketAddr::V4(_) => s.set_ip_transparent_v4(true),
            SocketAddr::V6(_) => s.set_ip_transparent_v6(true),
        }
        .map_err(|e| ("setsockopt", e))?;
    }
    s.bind(&addr.into()).map_err(|e| ("bind", e))?;
    if o.listen {
        s.listen(16).map_err(|e| ("listen", e))?;
    }
    Ok(())
}
