//! `dns`: a name resolved through a given server the way glibc's stub
//! resolver does it: one connected UDP socket, the A and AAAA queries sent
//! back to back from it (same source port, in parallel), `timeout` per
//! attempt and `attempts` tries (`options timeout:N attempts:M`), the
//! queries still unanswered sent again on the same socket. An ICMP
//! port-unreachable ends an attempt at once (`ECONNREFUSED`), as in glibc.
//!
//! `rounds` lookups are made one after another, each from a new socket (a
//! new source port: a new conntrack tuple), as each `getaddrinfo` call
//! opens one. `send` says how a lookup's first queries leave: back to back
//! from one thread (glibc's `sendmmsg`), from one thread per query on its
//! own CPU released together (two CPUs creating the same conntrack tuple at
//! once, the incident's race), or one query at a time, each on a new
//! socket (`single-request-reopen`, the workaround).

use std::collections::BTreeMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Result;

use super::{error_name, ms};
use crate::case::spec::DnsSend;
use crate::evidence::outcome::{dns_lookup_word, DnsOutcome, DnsQuery, DnsRounds};
use crate::sys::netns::Netns;
use crate::wire::dns::{self, QType};

pub struct DnsOpts {
    pub name: String,
    pub types: Vec<QType>,
    pub timeout: Duration,
    pub attempts: u32,
    pub src: Option<SocketAddr>,
    /// Lookups one after another, each from a new socket (at least 1).
    pub rounds: u32,
    pub send: DnsSend,
}

fn socket(server: SocketAddr, src: Option<SocketAddr>) -> std::io::Result<UdpSocket> {
    let s = socket2::Socket::new(socket2::Domain::for_address(server), socket2::Type::DGRAM, None)?;
    if let Some(a) = src {
        s.bind(&a.into())?;
    }
    s.connect(&server.into())?;
    Ok(s.into())
}

/// One lookup's result: its queries, socket address, and duration.
struct Lookup {
    queries: Vec<DnsQuery>,
    local: Option<SocketAddr>,
    elapsed: Duration,
}

pub fn dns(from: &Netns, server: SocketAddr, o: DnsOpts) -> Result<DnsOutcome> {
    let start = Instant::now();
    let cpus = allowed_cpus();
    let seed = (std::process::id() as u16) ^ (crate::sys::clock::now_ns() as u16);
    let mut lookups = Vec::with_capacity(o.rounds as usize);
    for r in 0..o.rounds.max(1) {
        let base = seed.wrapping_add((r as u16).wrapping_mul(o.types.len() as u16));
        let l = match o.send {
            DnsSend::SingleRequestReopen => {
                let (mut queries, mut local, mut elapsed) = (vec![], None, Duration::ZERO);
                for (i, t) in o.types.iter().enumerate() {
                    let one = lookup(from, server, &o, &[*t], base.wrapping_add(i as u16), &[])?;
                    local = local.or(one.local);
                    elapsed += one.elapsed;
                    queries.extend(one.queries);
                }
                Lookup { queries, local, elapsed }
            }
            DnsSend::BackToBack => lookup(from, server, &o, &o.types, base, &[])?,
            DnsSend::Threads => lookup(from, server, &o, &o.types, base, &cpus)?,
        };
        lookups.push(l);
    }
    let send = o.send.word().to_string();
    if lookups.len() == 1 {
        let l = lookups.pop().expect("one lookup");
        return Ok(DnsOutcome {
            queries: l.queries,
            local: l.local,
            elapsed_ms: ms(start.elapsed()),
            send,
            rounds: None,
        });
    }
    let rounds = summary(&lookups);
    let slowest = lookups.into_iter().max_by_key(|l| l.elapsed).expect("rounds >= 2");
    Ok(DnsOutcome {
        queries: slowest.queries,
        local: slowest.local,
        elapsed_ms: ms(start.elapsed()),
        send,
        rounds: Some(rounds),
    })
}

fn summary(lookups: &[Lookup]) -> DnsRounds {
    let mut results = BTreeMap::new();
    let mut lost = BTreeMap::new();
    for l in lookups {
        *results.entry(dns_lookup_word(&l.queries)).or_insert(0) += 1;
        for q in l.queries.iter().filter(|q| q.rcode.is_none()) {
            *lost.entry(q.qtype.clone()).or_insert(0) += 1;
        }
    }
    let mut lat: Vec<f64> = lookups.iter().map(|l| ms(l.elapsed)).collect();
    lat.sort_by(f64::total_cmp);
    let median = match lat.len() {
        0 => 0.0,
        n if n % 2 == 1 => lat[n / 2],
        n => (lat[n / 2 - 1] + lat[n / 2]) / 2.0,
    };
    DnsRounds {
        rounds: lookups.len() as u32,
        results,
        lost,
        latency_median_ms: median,
        latency_max_ms: lat.last().copied().unwrap_or(0.0),
    }
}

/// The CPUs this process may run on, in order (empty if unknown).
fn allowed_cpus() -> Vec<usize> {
    use nix::sched::{sched_getaffinity, CpuSet};
    let Ok(set) = sched_getaffinity(nix::unistd::Pid::from_raw(0)) else { return vec![] };
    (0..CpuSet::count()).filter(|&c| set.is_set(c).unwrap_or(false)).collect()
}

/// Sends `queries[i]` from thread `i`, pinned to `cpus[i % len]`; the
/// threads spin until all are ready, then send at once. Each send's time
/// and error, in order.
fn send_threads(sock: &UdpSocket, queries: &[Vec<u8>], cpus: &[usize]) -> Vec<(Instant, Option<String>)> {
    let ready = AtomicUsize::new(0);
    let n = queries.len();
    std::thread::scope(|s| {
        let handles: Vec<_> = queries
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let ready = &ready;
                s.spawn(move || {
                    if !cpus.is_empty() {
                        let mut set = nix::sched::CpuSet::new();
                        // Pinning is best effort: unpinned, the race is only rarer.
                        if set.set(cpus[i % cpus.len()]).is_ok() {
                            let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
                        }
                    }
                    ready.fetch_add(1, Ordering::AcqRel);
                    let mut spins = 0u32;
                    while ready.load(Ordering::Acquire) < n {
                        // Sharing a CPU, the other thread runs only if
                        // this one lets it.
                        spins += 1;
                        if spins % 4096 == 0 {
                            std::thread::yield_now();
                        } else {
                            std::hint::spin_loop();
                        }
                    }
                    let r = sock.send(q);
                    (Instant::now(), r.err().map(|e| error_name(&e)))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("dns sender thread")).collect()
    })
}

/// One lookup of `types` on a new socket; with `cpus` the first attempt's
/// queries leave from one thread each ([`send_threads`]).
fn lookup(from: &Netns, server: SocketAddr, o: &DnsOpts, types: &[QType], base: u16, cpus: &[usize]) -> Result<Lookup> {
    let src = o.src;
    let mut queries: Vec<DnsQuery> = types
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
            return Ok(Lookup { queries, local: None, elapsed: Duration::ZERO });
        }
    };
    let local = sock.local_addr().ok();
    let ids: Vec<u16> = (0..types.len()).map(|i| base.wrapping_add(i as u16)).collect();
    let wire: Vec<Vec<u8>> = (0..types.len()).map(|i| dns::query(ids[i], &o.name, types[i])).collect();
    let mut first_sent: BTreeMap<usize, Instant> = BTreeMap::new();
    let mut buf = [0u8; 4096];
    for attempt in 0..o.attempts {
        let open: Vec<usize> = (0..queries.len()).filter(|&i| queries[i].rcode.is_none()).collect();
        if open.is_empty() {
            break;
        }
        let mut refused = None;
        if attempt == 0 && !cpus.is_empty() && open.len() > 1 {
            for (i, (at, err)) in send_threads(&sock, &wire, cpus).into_iter().enumerate() {
                match err {
                    None => {
                        queries[i].sent += 1;
                        first_sent.entry(i).or_insert(at);
                    }
                    Some(e) => refused = Some(e),
                }
            }
        } else {
            for &i in &open {
                match sock.send(&wire[i]) {
                    Ok(_) => {
                        queries[i].sent += 1;
                        first_sent.entry(i).or_insert_with(Instant::now);
                    }
                    Err(e) => refused = Some(error_name(&e)),
                }
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
    // From the first send: the socket and the sender threads are not the
    // lookup's latency.
    let elapsed = first_sent.values().min().map_or(Duration::ZERO, |t| t.elapsed());
    Ok(Lookup { queries, local, elapsed })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(t: &str, rcode: Option<&str>, result: &str, sent: u32) -> DnsQuery {
        DnsQuery {
            qtype: t.into(),
            result: result.into(),
            rcode: rcode.map(Into::into),
            answers: vec![],
            sent,
            latency_ms: None,
        }
    }

    fn l(queries: Vec<DnsQuery>, ms: u64) -> Lookup {
        Lookup { queries, local: None, elapsed: Duration::from_millis(ms) }
    }

    #[test]
    fn rounds_are_summed_by_how_they_ended() {
        let lookups = vec![
            l(vec![q("A", Some("NOERROR"), "ok", 1), q("AAAA", Some("NOERROR"), "ok", 1)], 1),
            l(vec![q("A", Some("NOERROR"), "ok", 1), q("AAAA", Some("NXDOMAIN"), "NXDOMAIN", 1)], 2),
            l(vec![q("A", Some("NOERROR"), "ok", 1), q("AAAA", Some("NOERROR"), "ok", 2)], 500),
            l(vec![q("A", Some("NOERROR"), "ok", 1), q("AAAA", None, "timeout", 2)], 1000),
            l(vec![q("A", None, "ECONNREFUSED", 1), q("AAAA", None, "ECONNREFUSED", 1)], 3),
        ];
        let s = summary(&lookups);
        assert_eq!(s.rounds, 5);
        let want: BTreeMap<String, u32> =
            [("ok", 2), ("resent", 1), ("timeout", 1), ("ECONNREFUSED", 1)].map(|(k, v)| (k.into(), v)).into();
        assert_eq!(s.results, want);
        let lost: BTreeMap<String, u32> = [("A", 1), ("AAAA", 2)].map(|(k, v)| (k.into(), v)).into();
        assert_eq!(s.lost, lost);
        assert_eq!((s.latency_median_ms, s.latency_max_ms), (3.0, 1000.0));
    }
}
