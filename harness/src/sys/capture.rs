//! Packet capture on one interface of one namespace: an `AF_PACKET` socket
//! created on the namespace's thread, read by a capture thread that keeps the
//! frames in memory (for assertions) and writes them to a pcap file (for
//! people: `tcpdump -r`, Wireshark).

use std::io::BufWriter;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use crate::sys::clock::now_ns;
use crate::sys::netns::Netns;
use crate::wire::linktype::LinkType;
use crate::wire::packet::{Direction, Frame};

const ETH_P_ALL: u16 = 0x0003;
const SNAPLEN: usize = 65535;

/// A running capture; [`Capture::stop`] returns the frames.
pub struct Capture {
    pub label: String,
    pub path: PathBuf,
    stop: Arc<AtomicBool>,
    /// Last time the socket was seen empty: every frame the kernel queued
    /// before it has been read.
    drained_ns: Arc<AtomicU64>,
    frames: Arc<std::sync::Mutex<Vec<Frame>>>,
    thread: Option<thread::JoinHandle<Result<u64>>>,
    /// Frames the kernel could not queue for us: the capture is incomplete.
    dropped: u64,
}

impl Capture {
    /// Starts capturing `dev` in `ns`, writing to `path`; `label` names it
    /// in evidence (`host/eno1`).
    pub fn start(ns: &Netns, dev: &str, path: &Path, label: &str) -> Result<Capture> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
        Self::start_to(ns, dev, Box::new(file), path, label)
    }

    /// A capture kept in memory only (a probe watching its own flow).
    pub fn start_in_memory(ns: &Netns, dev: &str, label: &str) -> Result<Capture> {
        Self::start_to(ns, dev, Box::new(std::io::sink()), Path::new(""), label)
    }

    fn start_to(
        ns: &Netns,
        dev: &str,
        file: Box<dyn std::io::Write + Send>,
        path: &Path,
        label: &str,
    ) -> Result<Capture> {
        let label = label.to_string();
        let devname = dev.to_string();
        let fd = ns.run(move |_| open_packet_socket(&devname))??;
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: SNAPLEN as u32,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::native(),
        };
        let mut writer = PcapWriter::with_header(BufWriter::new(file), header)
            .map_err(|e| anyhow!("writing pcap header to {}: {e}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let drained_ns = Arc::new(AtomicU64::new(0));
        let frames = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (s, d, fr) = (stop.clone(), drained_ns.clone(), frames.clone());
        let thread = thread::Builder::new().name(format!("capture:{label}")).spawn(move || {
            let mut buf = vec![0u8; SNAPLEN];
            loop {
                match recv_frame(&fd, &mut buf)? {
                    Some(frame) => {
                        let ts = Duration::from_nanos(frame.ts_ns);
                        writer
                            .write_packet(&PcapPacket::new(ts, frame.data.len() as u32, &frame.data))
                            .map_err(|e| anyhow!("writing pcap: {e}"))?;
                        fr.lock().unwrap().push(frame);
                    }
                    None => {
                        d.store(now_ns(), Ordering::Release);
                        if s.load(Ordering::Acquire) {
                            break;
                        }
                        wait_readable(&fd, 5);
                    }
                }
            }
            use std::io::Write;
            writer.into_writer().flush()?;
            Ok(drops(&fd))
        })?;
        Ok(Capture { label, path: path.to_path_buf(), stop, drained_ns, frames, thread: Some(thread), dropped: 0 })
    }

    /// Waits until every frame queued before `t_ns` has been read (bounded by
    /// `within`), so a probe's window is complete before it is judged.
    pub fn sync(&self, t_ns: u64, within: Duration) -> Result<()> {
        let deadline = Instant::now() + within;
        while self.drained_ns.load(Ordering::Acquire) <= t_ns {
            if Instant::now() > deadline {
                bail!("capture {} did not drain within {:?}", self.label, within);
            }
            thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Frames seen so far with timestamps in `[from_ns, to_ns]`.
    pub fn window(&self, from_ns: u64, to_ns: u64) -> Vec<Frame> {
        self.frames.lock().unwrap().iter().filter(|f| f.ts_ns >= from_ns && f.ts_ns <= to_ns).cloned().collect()
    }

    /// Stops, flushes the pcap and returns every frame, and how many the
    /// kernel dropped because we did not read fast enough.
    pub fn stop(mut self) -> Result<(Vec<Frame>, u64)> {
        self.finish()?;
        Ok((std::mem::take(&mut *self.frames.lock().unwrap()), self.dropped))
    }

    fn finish(&mut self) -> Result<()> {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            self.dropped = t.join().map_err(|_| anyhow!("capture thread {} panicked", self.label))??;
        }
        Ok(())
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

fn open_packet_socket(dev: &str) -> Result<OwnedFd> {
    let cname = std::ffi::CString::new(dev)?;
    // SAFETY: plain libc calls on values we own.
    unsafe {
        let ifindex = libc::if_nametoindex(cname.as_ptr());
        if ifindex == 0 {
            bail!("no interface {dev} to capture on");
        }
        // Protocol 0 at creation so nothing is queued before the bind to one
        // interface; the bind then selects every protocol.
        let raw = libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK, 0);
        if raw < 0 {
            bail!("AF_PACKET socket: {}", std::io::Error::last_os_error());
        }
        let fd = OwnedFd::from_raw_fd(raw);
        let mut sll: libc::sockaddr_ll = std::mem::zeroed();
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = ifindex as i32;
        if libc::bind(raw, &sll as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_ll>() as u32)
            != 0
        {
            bail!("binding capture to {dev}: {}", std::io::Error::last_os_error());
        }
        let one: libc::c_int = 1;
        if libc::setsockopt(
            raw,
            libc::SOL_SOCKET,
            libc::SO_TIMESTAMPNS,
            &one as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        ) != 0
        {
            bail!("SO_TIMESTAMPNS: {}", std::io::Error::last_os_error());
        }
        let big: libc::c_int = 8 << 20;
        // FORCE needs CAP_NET_ADMIN over the host (not so in a user
        // namespace): then as much as rmem_max allows.
        for opt in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            if libc::setsockopt(
                raw,
                libc::SOL_SOCKET,
                opt,
                &big as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::c_int>() as u32,
            ) == 0
            {
                break;
            }
        }
        Ok(fd)
    }
}

/// Frames the kernel dropped for this socket (buffer full) since the last call.
fn drops(fd: &OwnedFd) -> u64 {
    let mut st = libc::tpacket_stats { tp_packets: 0, tp_drops: 0 };
    let mut len = std::mem::size_of::<libc::tpacket_stats>() as libc::socklen_t;
    // SAFETY: getsockopt into a struct we own, with its size.
    let r = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut st as *mut _ as *mut libc::c_void,
            &mut len,
        )
    };
    if r == 0 {
        st.tp_drops as u64
    } else {
        0
    }
}

/// One frame, or None when nothing is queued.
fn recv_frame(fd: &OwnedFd, buf: &mut [u8]) -> Result<Option<Frame>> {
    // SAFETY: recvmsg into buffers we own; cmsgs walked with libc's macros.
    unsafe {
        let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
        let mut addr: libc::sockaddr_ll = std::mem::zeroed();
        let mut cbuf = [0u64; 16];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_name = &mut addr as *mut _ as *mut libc::c_void;
        msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr() as *mut libc::c_void;
        msg.msg_controllen = std::mem::size_of_val(&cbuf);
        let n = libc::recvmsg(fd.as_raw_fd(), &mut msg, libc::MSG_DONTWAIT);
        if n < 0 {
            let e = std::io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::EAGAIN) | Some(libc::EINTR) => Ok(None),
                _ => Err(anyhow!("reading capture: {e}")),
            };
        }
        let mut ts_ns = now_ns();
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_TIMESTAMPNS {
                let ts = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                ts_ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        // The kernel's sll_pkttype: PACKET_OUTGOING is out, anything else
        // (host, broadcast, multicast, otherhost) in.
        let direction = if addr.sll_pkttype == libc::PACKET_OUTGOING { Direction::Out } else { Direction::In };
        let data = buf[..n as usize].to_vec();
        Ok(Some(Frame { ts_ns, direction, link: LinkType::Ethernet, wire_len: n as u32, data }))
    }
}

fn wait_readable(fd: &OwnedFd, ms: i32) {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one pollfd we own.
    unsafe {
        libc::poll(&mut p, 1, ms);
    }
}
