//! Probes: what a user would run inside a container, reduced to exact,
//! comparable outcomes. Sockets are created on the source namespace's thread
//! and then used from the caller's thread (a socket keeps the namespace it was
//! born in). One file per probe kind; every address may be IPv4 or IPv6.

mod bind;
mod burst;
mod connect;
mod dns;
mod frame;
mod ping;
mod stream;
mod udp;

pub use bind::{bind, BindOpts};
pub use burst::{burst, BurstOpts};
pub use connect::connect;
pub use dns::{dns, DnsOpts};
pub use frame::{send as frame, FrameOpts};
pub use ping::{classify_icmp, classify_icmp6, ping, ping_fd, IcmpSeen};
pub use stream::{stream, Injection, StreamOpts};
pub use udp::{udp, UdpOpts};

use std::net::TcpStream;
use std::time::Duration;

/// An errno as its name (`EHOSTUNREACH`), "timeout" for a deadline of ours.
pub fn error_name(e: &std::io::Error) -> String {
    match e.raw_os_error() {
        Some(n) => format!("{:?}", nix::errno::Errno::from_raw(n)),
        None if e.kind() == std::io::ErrorKind::TimedOut || e.kind() == std::io::ErrorKind::WouldBlock => {
            "timeout".into()
        }
        None => format!("{:?}", e.kind()),
    }
}

/// A duration in ms, to the microsecond.
pub fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Sockets a probe leaves open so that their closing (FINs, and whatever
/// answers them) happens after the phase's probes and captures are done:
/// it is not what the probe observed. (Two vCPUs can reorder a closing
/// handshake, and a stale ACK then draws an RST that is no part of the
/// incident.)
#[derive(Default)]
pub struct Leftover(#[allow(dead_code)] Vec<TcpStream>);

impl Leftover {
    pub fn new(s: Vec<TcpStream>) -> Leftover {
        Leftover(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names() {
        assert_eq!(error_name(&std::io::Error::from_raw_os_error(libc::EHOSTUNREACH)), "EHOSTUNREACH");
        assert_eq!(error_name(&std::io::Error::from(std::io::ErrorKind::TimedOut)), "timeout");
    }
}
