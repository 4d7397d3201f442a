//! `connect`: one TCP connect (IPv4 or IPv6), optionally from a given
//! source address and port, after held connections.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

use super::{error_name, ms, Leftover};
use crate::evidence::outcome::ConnectOutcome;
use crate::sys::netns::Netns;

/// TCP connect from `from` to `to`, with a listener on `listen.1` in
/// `listen.0` if given, after `hold` connections that stay open while it
/// runs (and are handed back, both ends, to be closed after the phase).
pub fn connect(
    from: &Netns,
    to: SocketAddr,
    listen: Option<(&Netns, SocketAddr)>,
    timeout: Duration,
    hold: u32,
    src: Option<SocketAddr>,
) -> Result<(ConnectOutcome, Leftover)> {
    let listener = match listen {
        Some((ns, at)) => Some(ns.run(move |_| TcpListener::bind(at))?.map_err(|e| anyhow!("listening on {at}: {e}"))?),
        None => None,
    };
    let held = match (&listener, hold) {
        (_, 0) => Vec::new(),
        (Some(l), n) => hold_open(from, to, l, n, timeout)?,
        (None, _) => return Err(anyhow!("held connections need a listener")),
    };
    // connect_timeout creates the socket, so it runs on the namespace's thread.
    let (res, took) = from.run(move |_| {
        let t0 = Instant::now();
        let r = match src {
            None => TcpStream::connect_timeout(&to, timeout).map(drop),
            Some(src) => connect_from(src, to, timeout),
        };
        (r, t0.elapsed())
    })?;
    let outcome = ConnectOutcome {
        result: match res {
            Ok(()) => "ok".into(),
            Err(e) => error_name(&e),
        },
        elapsed_ms: ms(took),
        held: hold,
        src,
    };
    Ok((outcome, Leftover::new(held)))
}

/// Opens `n` connections and waits until the listener has accepted every
/// one: an accepted connection's final ACK has crossed everything on the
/// way (a conntrack entry in between is ASSURED by then, so the kernel
/// cannot early-drop it to make room).
fn hold_open(from: &Netns, to: SocketAddr, l: &TcpListener, n: u32, timeout: Duration) -> Result<Vec<TcpStream>> {
    let mut held = from.run(move |_| {
        (1..=n)
            .map(|i| {
                TcpStream::connect_timeout(&to, timeout)
                    .map_err(|e| anyhow!("held connection {i} of {n} to {to}: {}", error_name(&e)))
            })
            .collect::<Result<Vec<_>>>()
    })??;
    l.set_nonblocking(true)?;
    let deadline = Instant::now() + timeout;
    let mut accepted = 0;
    while accepted < n {
        match l.accept() {
            Ok((c, _)) => {
                held.push(c);
                accepted += 1;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(2))
            }
            Err(e) => return Err(anyhow!("the listener accepted {accepted} of {n} held connections: {e}")),
        }
    }
    Ok(held)
}

/// A connect bound to `src` first; a bind error (`EADDRNOTAVAIL`,
/// `EADDRINUSE`) is the connect's result too, as a client sees it.
fn connect_from(src: SocketAddr, to: SocketAddr, timeout: Duration) -> std::io::Result<()> {
    let s = socket2::Socket::new(socket2::Domain::for_address(to), socket2::Type::STREAM, None)?;
    s.bind(&src.into())?;
    s.connect_timeout(&to.into(), timeout)
}
