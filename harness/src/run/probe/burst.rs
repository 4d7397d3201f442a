//! `burst`: `count` concurrent TCP connects against a listener whose backlog
//! is `backlog` and that accepts or never does; connects counted by result,
//! and the listener namespace's accept-queue overflow counters over the
//! burst. Every socket stays open until the phase ends.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use socket2::{Domain, Socket, Type};

use super::{error_name, ms, Leftover};
use crate::evidence::outcome::BurstOutcome;
use crate::sys::netns::Netns;

pub struct BurstOpts {
    pub backlog: u32,
    pub accept: bool,
    pub count: u32,
    pub timeout: Duration,
}

fn listener(at: SocketAddr, backlog: u32) -> std::io::Result<Socket> {
    let s = Socket::new(Domain::for_address(at), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.bind(&at.into())?;
    s.listen(backlog as i32)?;
    Ok(s)
}

fn counter(ns: &Netns, key: &'static str) -> Result<i64> {
    let c = ns.run(|_| crate::sys::counters::read_thread_ns())??;
    Ok(c.get(key).copied().unwrap_or(0))
}

pub fn burst(
    from: &Netns,
    to: SocketAddr,
    server_in: &Netns,
    at: SocketAddr,
    o: BurstOpts,
) -> Result<(BurstOutcome, Leftover)> {
    let l = server_in.run(move |_| listener(at, o.backlog))?.map_err(|e| anyhow!("listening on {at}: {e}"))?;
    let (over0, drops0) = (counter(server_in, "TcpExt.ListenOverflows")?, counter(server_in, "TcpExt.ListenDrops")?);
    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU32::new(0));
    let acceptor = if o.accept {
        let (stop, accepted) = (stop.clone(), accepted.clone());
        let l = l.try_clone()?;
        l.set_nonblocking(true)?;
        Some(std::thread::spawn(move || {
            let mut held = Vec::new();
            while !stop.load(Ordering::Acquire) {
                match l.accept() {
                    Ok((c, _)) => {
                        held.push(c);
                        accepted.fetch_add(1, Ordering::AcqRel);
                    }
                    Err(_) => {
                        let mut p = libc::pollfd { fd: l.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                        // SAFETY: one pollfd we own; wakes as soon as a connection is queued.
                        unsafe { libc::poll(&mut p, 1, 10) };
                    }
                }
            }
            held
        }))
    } else {
        None
    };
    let start = Instant::now();
    let n = o.count;
    let socks = from.run(move |_| {
        (0..n)
            .map(|_| {
                let s = Socket::new(Domain::for_address(to), Type::STREAM, None)?;
                s.set_nonblocking(true)?;
                Ok(s)
            })
            .collect::<std::io::Result<Vec<Socket>>>()
    })??;
    let mut result: Vec<Option<String>> = vec![None; socks.len()];
    for (i, s) in socks.iter().enumerate() {
        match s.connect(&to.into()) {
            Ok(()) => result[i] = Some("ok".into()),
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
            Err(e) => result[i] = Some(error_name(&e)),
        }
    }
    let deadline = start + o.timeout;
    while result.iter().any(Option::is_none) {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let idx: Vec<usize> = (0..socks.len()).filter(|&i| result[i].is_none()).collect();
        let mut fds: Vec<libc::pollfd> =
            idx.iter().map(|&i| libc::pollfd { fd: socks[i].as_raw_fd(), events: libc::POLLOUT, revents: 0 }).collect();
        let wait = (deadline - now).as_millis().clamp(1, i32::MAX as u128) as i32;
        // SAFETY: pollfds we own.
        if unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait) } <= 0 {
            continue;
        }
        for (k, p) in fds.iter().enumerate() {
            if p.revents != 0 {
                let i = idx[k];
                result[i] = Some(match socks[i].take_error() {
                    Ok(None) => "ok".into(),
                    Ok(Some(e)) | Err(e) => error_name(&e),
                });
            }
        }
    }
    let elapsed = start.elapsed();
    let mut results = BTreeMap::new();
    for r in &result {
        *results.entry(r.clone().unwrap_or_else(|| "timeout".into())).or_insert(0u32) += 1;
    }
    // Give the listener's side a moment to settle what the last ACKs did.
    std::thread::sleep(Duration::from_millis(20));
    let listen_overflows = counter(server_in, "TcpExt.ListenOverflows")? - over0;
    let listen_drops = counter(server_in, "TcpExt.ListenDrops")? - drops0;
    stop.store(true, Ordering::Release);
    let mut keep: Vec<TcpStream> = socks.into_iter().map(TcpStream::from).collect();
    if let Some(t) = acceptor {
        keep.extend(t.join().map_err(|_| anyhow!("acceptor panicked"))?.into_iter().map(TcpStream::from));
    }
    keep.push(TcpStream::from(l));
    let outcome = BurstOutcome {
        results,
        listen_overflows,
        listen_drops,
        accepted: accepted.load(Ordering::Acquire),
        elapsed_ms: ms(elapsed),
    };
    Ok((outcome, Leftover::new(keep)))
}
