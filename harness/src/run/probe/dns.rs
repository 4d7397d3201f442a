//! `dns`: a name resolved through a given server the way glibc's stub
//! resolver does it: one connected UDP socket, the A and AAAA queries sent
//! back to back from it (same source port, in parallel), `timeout` per
//! attempt and `attempts` tries (`options timeout:N attempts:M`), the
//! queries still unanswered sent again on the same socket. An ICMP
//! port-unreachable ends an attempt at once (`ECONNREFUSED`), as in glibc.

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{error_name, ms};
use crate::evidence::outcome::{DnsOutcome, DnsQuery};
use crate::sys::netns::Netns;
use crate::wire::dns::{self, QType};

pub struct DnsOpts {
    pub name: String,
    pub types: Vec<QType>,
    pub timeout: Duration,
    pub attempts: u32,
    pub src: Option<SocketAddr>,
}

fn socket(server: SocketAddr, src: Option<SocketAddr>) -> std::io::Result<UdpSocket> {
    let s = socket2::Socket::new(socket2::Domain::for_address(server), socket2::Type::DGRAM, None)?;
    if let Some(a) = src {
        s.bind(&a.into())?;
    }
    s.connect(&server.into())?;
    Ok(s.into())
}

pub fn dns(from: &Netns, server: SocketAddr, o: DnsOpts) -> Result<DnsOutcome> {
    let src = o.src;
    let start = Instant::now();
    let mut queries: Vec<DnsQuery> = o
        .types
        .iter()
        .map(|t| DnsQuery {
            qtype: t.word().into(),
            result: "timeout".into(),
            rcode: None,
            answers: vec![],
            sent: 0,
            latency_ms: None,
        })
        .collect();
    let sock = match from.run(move |_| socket(server, src))? {
        Ok(s) => s,
        Err(e) => {
            for q in &mut queries {
                q.result = error_name(&e);
            }
            return Ok(DnsOutcome { queries, local: None, elapsed_ms: ms(start.elapsed()) });
        }
    };
    let local = sock.local_addr().ok();
    let base = (std::process::id() as u16) ^ (crate::sys::clock::now_ns() as u16);
    let ids: Vec<u16> = (0..o.types.len()).map(|i| base.wrapping_add(i as u16)).collect();
    let mut first_sent: BTreeMap<usize, Instant> = BTreeMap::new();
    let mut buf = [0u8; 4096];
    for _ in 0..o.attempts {
        let open: Vec<usize> = (0..queries.len()).filter(|&i| queries[i].rcode.is_none()).collect();
        if open.is_empty() {
            break;
        }
        let mut refused = None;
        for &i in &open {
            match sock.send(&dns::query(ids[i], &o.name, o.types[i])) {
                Ok(_) => {
                    queries[i].sent += 1;
                    first_sent.entry(i).or_insert_with(Instant::now);
                }
                Err(e) => refused = Some(error_name(&e)),
            }
        }
        let deadline = Instant::now() + o.timeout;
        while refused.is_none() && queries.iter().any(|q| q.rcode.is_none()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            sock.set_read_timeout(Some(left))?;
            match sock.recv(&mut buf) {
                Ok(n) => {
                    let Some(r) = dns::parse_response(&buf[..n]) else { continue };
                    let Some(i) = ids.iter().position(|&id| id == r.id) else { continue };
                    if queries[i].rcode.is_some() {
                        continue;
                    }
                    let q = &mut queries[i];
                    q.rcode = Some(dns::rcode_name(r.rcode));
                    q.result = if r.rcode == 0 { "ok".into() } else { dns::rcode_name(r.rcode) };
                    q.answers = r.answers;
                    q.latency_ms = first_sent.get(&i).map(|t| ms(t.elapsed()));
                }
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => break,
                Err(e) => refused = Some(error_name(&e)),
            }
        }
        if let Some(errno) = refused {
            for q in queries.iter_mut().filter(|q| q.rcode.is_none()) {
                q.result = errno.clone();
            }
        }
    }
    Ok(DnsOutcome { queries, local, elapsed_ms: ms(start.elapsed()) })
}
