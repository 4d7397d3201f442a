//! rtnetlink with nothing around it: one blocking socket, requests written
//! together in one `sendmsg` (the kernel handles them in order), their
//! acknowledgements read back. What `netrepro bench` measures the harness
//! against (the floor): no runtime, no thread per namespace, no lookups.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST};
use netlink_packet_route::link::{LinkAttribute, LinkMessage, State};
use netlink_packet_route::RouteNetlinkMessage;

use crate::sys::link::{ext_ack_text, Req};

/// A NETLINK_ROUTE socket of the calling thread's namespace, optionally
/// joined to the link notifications group.
pub struct RawNl {
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

/// `RTNLGRP_LINK`.
const LINK_GROUP: u32 = 1;
/// Requests whose answers are read only after all were sent: a link's
/// answer is ~1.5 KB, and an answer the socket's buffer cannot take is lost.
const AT_ONCE: usize = 64;
/// How long the kernel may take to answer before it is an error, not a hang.
const ANSWER_WITHIN: Duration = Duration::from_secs(30);

impl AsRawFd for RawNl {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.fd.as_raw_fd()
    }
}

impl RawNl {
    /// Opens the socket in the calling thread's namespace.
    pub fn open() -> Result<RawNl> {
        // SAFETY: plain socket(2); the fd is owned below.
        let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_ROUTE) };
        if raw < 0 {
            bail!("netlink socket: {}", std::io::Error::last_os_error());
        }
        // SAFETY: the kernel just returned this fd.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: a zeroed sockaddr_nl with the family and groups set.
        let r = unsafe {
            let mut a: libc::sockaddr_nl = std::mem::zeroed();
            a.nl_family = libc::AF_NETLINK as u16;

            libc::bind(raw, &a as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_nl>() as u32)
        };
        if r != 0 {
            bail!("binding a netlink socket: {}", std::io::Error::last_os_error());
        }
        for (opt, on) in [(libc::NETLINK_EXT_ACK, 1), (libc::NETLINK_CAP_ACK, 1)] {
            // SAFETY: setsockopt with an int on our socket.
            unsafe {
                libc::setsockopt(raw, libc::SOL_NETLINK, opt, &on as *const i32 as *const libc::c_void, 4);
            }
        }
        crate::sys::netns::roomy_receive_buffer(raw);
        Ok(RawNl { fd, seq: 0, buf: vec![0; 1 << 16] })
    }

    /// Writes every request in one `sendmsg` and reads every answer: one
    /// round trip. The first error (in request order) is the result.
    pub fn batch(&mut self, reqs: Vec<Req>) -> Result<()> {
        if reqs.is_empty() {
            return Ok(());
        }
        let first = self.seq.wrapping_add(1);
        let mut out = Vec::new();
        let mut whats = Vec::new();
        for r in reqs {
            let (msg, flags, what) = r.into_parts();
            self.seq = self.seq.wrapping_add(1);
            let mut m = NetlinkMessage::from(msg);
            m.header.flags = flags;
            m.header.sequence_number = self.seq;
            m.finalize();
            let at = out.len();
            out.resize(at + m.buffer_len(), 0);
            m.serialize(&mut out[at..]);
            whats.push(what);
        }
        self.send(&out)?;
        let mut errors: Vec<Option<String>> = vec![None; whats.len()];
        let mut left = whats.len();
        while left > 0 {
            let got = self.recv()?.ok_or_else(|| anyhow!("netlink answers lost (the socket's buffer overran)"))?;
            for m in got {
                let i = m.header.sequence_number.wrapping_sub(first) as usize;
                if let (NetlinkPayload::Error(e), true) = (&m.payload, i < whats.len()) {
                    if let Some(code) = e.code {
                        let errno = std::io::Error::from_raw_os_error(-code.get());
                        errors[i] = Some(match ext_ack_text(&e.header) {
                            Some(t) => format!("{}: {errno} (kernel: {t})", whats[i]),
                            None => format!("{}: {errno}", whats[i]),
                        });
                    }
                    left -= 1;
                }
            }
        }
        match errors.into_iter().flatten().next() {
            Some(e) => Err(anyhow!(e)),
            None => Ok(()),
        }
    }

    fn send(&self, b: &[u8]) -> Result<()> {
        // SAFETY: send(2) from a buffer we own.
        let n = unsafe { libc::send(self.fd.as_raw_fd(), b.as_ptr() as *const libc::c_void, b.len(), 0) };
        if n < 0 || n as usize != b.len() {
            bail!("netlink send: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    /// The messages of one datagram, waiting at most [`ANSWER_WITHIN`];
    /// None when the kernel says it dropped some (a full receive buffer).
    fn recv(&mut self) -> Result<Option<Vec<NetlinkMessage<RouteNetlinkMessage>>>> {
        if !self.readable(ANSWER_WITHIN) {
            bail!("no answer from the kernel within {ANSWER_WITHIN:?}");
        }
        loop {
            // SAFETY: recv(2) into our buffer.
            let n = unsafe {
                libc::recv(self.fd.as_raw_fd(), self.buf.as_mut_ptr() as *mut libc::c_void, self.buf.len(), 0)
            };
            if n < 0 {
                let e = std::io::Error::last_os_error();
                match e.raw_os_error() {
                    Some(libc::EINTR) => continue,
                    // Notifications overran the buffer: what they said is
                    // asked for again by the caller.
                    Some(libc::ENOBUFS) => return Ok(None),
                    _ => bail!("netlink recv: {e}"),
                }
            }
            return Ok(Some(parse(&self.buf[..n as usize])));
        }
    }

    /// Whether the socket has something to read within `wait`.
    fn readable(&self, wait: Duration) -> bool {
        let mut p = libc::pollfd { fd: self.fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        // SAFETY: one pollfd we own.
        unsafe { libc::poll(&mut p, 1, wait.as_millis().min(i32::MAX as u128) as i32) > 0 }
    }

    /// Waits, at most `within`, until every link of `want` is operationally
    /// up: the harness's rule ([`crate::sys::link::wait_oper_up`]) on one
    /// socket, notifications and per-link asks alike.
    pub fn wait_oper_up(&mut self, want: &[u32], within: Duration) -> Result<()> {
        // First ask without notifications: most links are up by now (the
        // asking runs their pending link watch), and the build's own
        // notifications stay out of the socket.
        let mut left = want.to_vec();
        for chunk in want.chunks(AT_ONCE) {
            for i in self.ask_up(chunk)? {
                left.retain(|x| *x != i);
            }
        }
        if left.is_empty() {
            return Ok(());
        }
        self.membership(libc::NETLINK_ADD_MEMBERSHIP)?;
        let waited = self.wait_joined(&left, within);
        self.membership(libc::NETLINK_DROP_MEMBERSHIP)?;
        waited
    }

    fn membership(&self, opt: libc::c_int) -> Result<()> {
        // SAFETY: setsockopt with a u32 group on our socket.
        let r = unsafe {
            libc::setsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_NETLINK,
                opt,
                &LINK_GROUP as *const u32 as *const libc::c_void,
                4,
            )
        };
        if r != 0 {
            bail!("netlink link notifications: {}", std::io::Error::last_os_error());
        }
        Ok(())
    }

    fn wait_joined(&mut self, want: &[u32], within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        let mut left: Vec<u32> = want.to_vec();
        let mut ask_at = Instant::now();
        while !left.is_empty() {
            let now = Instant::now();
            if now >= ask_at {
                let asked = left.clone();
                for chunk in asked.chunks(AT_ONCE) {
                    for i in self.ask_up(chunk)? {
                        left.retain(|x| *x != i);
                    }
                }
                if left.is_empty() {
                    break;
                }
                if now >= deadline {
                    bail!("no carrier within {within:?} on links {left:?}");
                }
                ask_at = (now + Duration::from_millis(20)).min(deadline);
            }
            if self.readable(ask_at.saturating_duration_since(Instant::now())) {
                let Some(got) = self.recv()? else {
                    // Notifications were lost: ask at once instead.
                    ask_at = Instant::now();
                    continue;
                };
                for m in got {
                    if let NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) = &m.payload {
                        if oper_up(l) {
                            left.retain(|x| *x != l.header.index);
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Which of `indexes` are up, asked link by link in one batch (which
    /// also runs their pending link watch, as for the harness).
    fn ask_up(&mut self, indexes: &[u32]) -> Result<Vec<u32>> {
        let first = self.seq.wrapping_add(1);
        let mut out = Vec::new();
        for &i in indexes {
            self.seq = self.seq.wrapping_add(1);
            let mut lm = LinkMessage::default();
            lm.header.index = i;
            let mut m = NetlinkMessage::from(RouteNetlinkMessage::GetLink(lm));
            m.header.flags = NLM_F_REQUEST | NLM_F_ACK;
            m.header.sequence_number = self.seq;
            m.finalize();
            let at = out.len();
            out.resize(at + m.buffer_len(), 0);
            m.serialize(&mut out[at..]);
        }
        self.send(&out)?;
        let (mut up, mut left) = (Vec::new(), indexes.len());
        while left > 0 {
            // Answers lost to an overrun: what came is what is known; the
            // caller asks again.
            let Some(got) = self.recv()? else { break };
            for m in got {
                let ours = m.header.sequence_number.wrapping_sub(first) < indexes.len() as u32;
                match &m.payload {
                    NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewLink(l)) if oper_up(l) => {
                        up.push(l.header.index);
                    }
                    NetlinkPayload::Error(_) if ours => left -= 1,
                    _ => {}
                }
            }
        }
        Ok(up)
    }
}

fn oper_up(m: &LinkMessage) -> bool {
    m.attributes.iter().any(|a| matches!(a, LinkAttribute::OperState(State::Up)))
}

fn parse(mut b: &[u8]) -> Vec<NetlinkMessage<RouteNetlinkMessage>> {
    let mut out = Vec::new();
    while b.len() >= 16 {
        let len = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]) as usize;
        if len < 16 || len > b.len() {
            break;
        }
        if let Ok(m) = NetlinkMessage::<RouteNetlinkMessage>::deserialize(&b[..len]) {
            out.push(m);
        }
        b = &b[((len + 3) & !3).min(b.len())..];
    }
    out
}
