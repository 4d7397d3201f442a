//! The kernel's own account of dropped packets. A BPF program on the
//! `kfree_skb` raw tracepoint counts every freed-as-dropped skb by
//! (network namespace, device, reason, code location, protocol), but only
//! for namespaces a running case has registered: attribution is by
//! namespace, so cases running side by side never see each other's drops.
//!
//! Beside the counts, every counted drop is also pushed, one event each, to
//! a BPF queue map (4.20 on): when, which skb, and the first
//! [`HEADER_BYTES`] bytes from its network header on (`skb->head +
//! skb->network_header`, the IP or ARP header and what follows). From those
//! bytes a drop can be told apart from the probe's own traffic (an echo
//! reply with the probe's echo id) and tied to the captured frame it was.
//! The queue holds [`QUEUE_EVENTS`] events; past that, the oldest are
//! overwritten and a drop keeps its count without all its packets.
//!
//! Struct offsets and reason names come from the running kernel's BTF
//! (`/sys/kernel/btf/vmlinux`), never from a table in this code. The program
//! is attached by `BPF_RAW_TRACEPOINT_OPEN`: no tracefs mount, and it is
//! detached when the process exits, however it exits.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Mutex, OnceLock};

use crate::sys::btf::{kind, Btf, TypeHdr};
use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};

/// `kfree_skb` gained its `reason` argument in 5.17.
pub const NO_REASON_NOTE: &str =
    "this kernel's kfree_skb tracepoint has no drop reason (added in 5.17, upstream c504e5c2f964); the counters carry the evidence";

/// One (namespace, device, reason, location, protocol) bucket.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct Drop {
    pub ns: String,
    /// Empty when the skb had no device (a socket-level drop).
    pub dev: String,
    /// The kernel's name without `SKB_DROP_REASON_`; empty on kernels
    /// without reasons.
    pub reason: String,
    /// Kernel function that freed the skb (`kallsyms`), `+offset` omitted.
    pub at: String,
    /// EtherType of the skb: `ARP`, `IPv4`, `IPv6` or hex.
    pub protocol: String,
    pub count: u64,
    /// CLOCK_REALTIME ns (comparable with pcap timestamps).
    pub first_ns: u64,
    pub last_ns: u64,
    /// Whose drop this is ([`Origin`]): only `incident` drops are checked
    /// by expectations, explained in why-lines and drawn in colour.
    #[serde(default)]
    pub origin: Origin,
    /// The rule that labelled it, in a few words (empty for `incident`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub origin_why: String,
    /// The dropped packets themselves, in time order, as far as the kernel
    /// let the monitor see them (at most [`MAX_PACKETS_PER_DROP`]); fewer
    /// than `count` when the queue overflowed or on kernels without it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub packets: Vec<DroppedPacket>,
}

/// Whose drop it is.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    /// What the kernel did to the traffic under test: the default, and
    /// what every drop is unless a rule says otherwise.
    #[default]
    Incident,
    /// The probe's (or the harness's) own traffic and sockets: the copy of
    /// an echo reply its raw socket already read, a socket's queue purged as
    /// it closed.
    ProbeOwn,
    /// Neither: packets the kernel sends by itself (IPv6 MLD and NDP on an
    /// IPv4 probe's links), or drops after the probe's window ended.
    Background,
}

impl Origin {
    pub fn word(self) -> &'static str {
        match self {
            Origin::Incident => "incident",
            Origin::ProbeOwn => "probe_own",
            Origin::Background => "background",
        }
    }
}

/// Packets kept per drop record; the count says how many there were.
pub const MAX_PACKETS_PER_DROP: usize = 64;

/// One dropped packet, as the kernel held it when it freed it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct DroppedPacket {
    /// When it was freed, CLOCK_REALTIME ns (the pcapng's clock).
    pub t_ns: u64,
    /// Parsed from the first [`HEADER_BYTES`] bytes at its network header;
    /// empty when the skb had none (a socket's queue of non-IP data).
    pub headers: crate::wire::headers::Headers,
    /// One line for people; never parsed.
    pub summary: String,
    /// The captured frame it is, where one in the probe's window has the
    /// same addresses, identification and transport fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frame: Option<FrameTie>,
}

/// A captured frame of the probe's window: its interface and its number in
/// the phase's pcapng.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct FrameTie {
    pub iface: String,
    pub pcap_frame: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Debug)]
struct Key {
    inum: u32,
    ifindex: u32,
    reason: u32,
    proto: u16,
    _pad: u16,
    location: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Default, Debug)]
struct Value {
    count: u64,
    first: u64,
    last: u64,
}

/// Bytes copied per drop event from the skb's network header on: an IPv6
/// header and a TCP header with its options, or an ICMP error with the
/// datagram it quotes.
pub const HEADER_BYTES: usize = 96;

/// Events the queue map holds between two reads.
pub const QUEUE_EVENTS: u32 = 8192;

/// One drop as the program pushes it to the queue map.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
struct Event {
    /// CLOCK_MONOTONIC ns.
    ts: u64,
    /// The skb's address (never recorded; clones have their own).
    skb: u64,
    location: u64,
    inum: u32,
    ifindex: u32,
    reason: u32,
    proto: u16,
    /// Bytes of `hdr` read (0: no network header, or the read failed).
    hdr_len: u16,
    hdr: [u8; HEADER_BYTES],
}

impl Default for Event {
    fn default() -> Event {
        Event {
            ts: 0,
            skb: 0,
            location: 0,
            inum: 0,
            ifindex: 0,
            reason: 0,
            proto: 0,
            hdr_len: 0,
            hdr: [0; HEADER_BYTES],
        }
    }
}

impl Event {
    fn key(&self) -> Key {
        Key {
            inum: self.inum,
            ifindex: self.ifindex,
            reason: self.reason,
            proto: self.proto,
            _pad: 0,
            location: self.location,
        }
    }
}

/// The loaded program and what it was built from.
pub struct Monitor {
    watch: OwnedFd,
    counts: OwnedFd,
    /// The per-drop queue, where the kernel has queue maps.
    events: Option<OwnedFd>,
    /// Events read from the queue and not yet taken by a watch.
    pending: Mutex<Vec<Event>>,
    prog: OwnedFd,
    _link: OwnedFd,
    pub has_reason: bool,
    reasons: BTreeMap<u32, String>,
    lock: Mutex<()>,
}

static MONITOR: OnceLock<std::result::Result<Monitor, String>> = OnceLock::new();

/// The process's drop monitor, loaded on first use; `Err` says why there is
/// none here (no BTF, no privilege for BPF).
pub fn monitor() -> std::result::Result<&'static Monitor, &'static str> {
    MONITOR.get_or_init(|| Monitor::load().map_err(|e| format!("{e:#}"))).as_ref().map_err(|e| e.as_str())
}

/// What drop expectations can be checked against here.
#[derive(Debug, Clone)]
pub enum Support {
    /// The kernel's reason names.
    Reasons(std::collections::BTreeSet<String>),
    /// The kernel reports no reasons: say so, rely on the counters.
    NoReasons(String),
    /// Not allowed to load BPF (a rootless run).
    NotPermitted(String),
    /// Should have worked and did not: a failure, not a pass.
    Broken(String),
}

pub fn support() -> &'static Support {
    static S: OnceLock<Support> = OnceLock::new();
    S.get_or_init(|| match monitor() {
        Ok(m) if m.has_reason => Support::Reasons(m.reasons.values().cloned().collect()),
        Ok(_) => Support::NoReasons(NO_REASON_NOTE.into()),
        // A kernel built without BTF cannot say where its fields are or
        // what its reasons are called: a fact about the kernel.
        Err(e) if e.starts_with("reading the kernel's BTF") => {
            Support::NoReasons(format!("this kernel has no BTF (CONFIG_DEBUG_INFO_BTF), so no drop monitor: {e}"))
        }
        // Only a run without real root may go without: as root, a failure
        // is a failure, never a silent "not available".
        Err(e) if !in_initial_user_namespace() => {
            Support::NotPermitted(format!("BPF needs real root; this run is in a user namespace: {e}"))
        }
        Err(e) => Support::Broken(e.into()),
    })
}

fn in_initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map")
        .is_ok_and(|m| m.split_whitespace().collect::<Vec<_>>() == ["0", "0", "4294967295"])
}

/// A one-line account of what this kernel's drop monitor can say.
pub fn describe() -> String {
    match monitor() {
        Ok(m) if m.has_reason => {
            format!("kfree_skb raw tracepoint; {} reason names from this kernel's BTF", m.reasons.len())
        }
        Ok(_) => format!("kfree_skb raw tracepoint, locations only: {NO_REASON_NOTE}"),
        Err(e) => format!("unavailable: {e}"),
    }
}

impl Monitor {
    fn load() -> Result<Monitor> {
        let mut btf = Btf::vmlinux().context("reading the kernel's BTF")?;
        btf.index_names(&BTF_NAMES);
        let off = Offsets::from_btf(&btf)?;
        let reasons = drop_reasons(&btf);
        let nargs = tracepoint_args(&btf, "kfree_skb").unwrap_or(2);
        let has_reason = nargs >= 3 && !reasons.is_empty();
        // Before 5.11, BPF maps are charged to RLIMIT_MEMLOCK (64 KiB by
        // default): without this, map creation fails with EPERM even as root.
        let unlimited = libc::rlimit { rlim_cur: libc::RLIM_INFINITY, rlim_max: libc::RLIM_INFINITY };
        // SAFETY: setrlimit with a valid struct; affects this process only.
        unsafe { libc::setrlimit(libc::RLIMIT_MEMLOCK, &unlimited) };
        let watch = map_create(1, 4, 4, 4096)?;
        let counts = map_create(1, std::mem::size_of::<Key>() as u32, std::mem::size_of::<Value>() as u32, 8192)?;
        // BPF_MAP_TYPE_QUEUE (4.20): without it, counts only.
        let events = map_create(22, 0, std::mem::size_of::<Event>() as u32, QUEUE_EVENTS).ok();
        let load = |events: Option<&OwnedFd>, helper| {
            let maps =
                Maps { watch: watch.as_raw_fd(), counts: counts.as_raw_fd(), events: events.map(|e| e.as_raw_fd()) };
            prog_load(&program(&off, has_reason, nargs >= 4, maps, helper))
        };
        // bpf_probe_read_kernel came in 5.5; before it, bpf_probe_read.
        let load_any = |events: Option<&OwnedFd>| {
            load(events, PROBE_READ_KERNEL).or_else(|e| load(events, PROBE_READ).map_err(|_| e))
        };
        let (prog, events) = match events {
            Some(ev) => match load_any(Some(&ev)) {
                Ok(p) => (p, Some(ev)),
                // A verifier that refuses the event half still counts.
                Err(_) => (load_any(None)?, None),
            },
            None => (load_any(None)?, None),
        };
        let link = raw_tracepoint_open("kfree_skb", prog.as_raw_fd())?;
        Ok(Monitor {
            watch,
            counts,
            events,
            pending: Mutex::new(Vec::new()),
            prog,
            _link: link,
            has_reason,
            reasons,
            lock: Mutex::new(()),
        })
    }

    /// Whether `name` is a drop reason of this kernel.
    pub fn knows(&self, reason: &str) -> bool {
        self.reasons.values().any(|r| r == reason)
    }

    pub fn reason_names(&self) -> impl Iterator<Item = &str> {
        self.reasons.values().map(String::as_str)
    }

    /// Counts drops in the namespace whose nsfs inode is `inum` from now on.
    pub fn watch(&self, inum: u32) -> Result<()> {
        map_update(&self.watch, &inum.to_ne_bytes(), &1u32.to_ne_bytes())
    }

    /// Stops counting in `inum` and forgets its buckets and events (an
    /// inode number can be reused by a later namespace).
    pub fn unwatch(&self, inum: u32) {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let _ = map_delete(&self.watch, &inum.to_ne_bytes());
        for k in self.keys().into_iter().filter(|k| k.inum == inum) {
            let _ = map_delete(&self.counts, as_bytes(&k));
        }
        self.drain();
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).retain(|e| e.inum != inum);
    }

    /// Whether drops come with their packets here (a queue map was made
    /// and the program that fills it loaded).
    pub fn has_packets(&self) -> bool {
        self.events.is_some()
    }

    /// Moves every queued event to `pending` (at most the queue's size:
    /// what the kernel pushes meanwhile waits for the next read).
    fn drain(&self) {
        let Some(q) = &self.events else { return };
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for _ in 0..QUEUE_EVENTS {
            let mut ev = Event::default();
            if !map_pop(q, &mut ev) {
                break;
            }
            pending.push(ev);
        }
        // Events of namespaces nobody watches any more go with their inodes
        // (`unwatch`); this bounds what a burst can leave behind.
        let excess = pending.len().saturating_sub(4 * QUEUE_EVENTS as usize);
        pending.drain(..excess);
    }

    /// Takes the pending events of `inums` (after a fresh read).
    fn take_events(&self, inums: &BTreeMap<u32, String>) -> Vec<Event> {
        self.drain();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let (mine, rest): (Vec<Event>, Vec<Event>) = pending.drain(..).partition(|e| inums.contains_key(&e.inum));
        *pending = rest;
        mine
    }

    fn keys(&self) -> Vec<Key> {
        let mut out = Vec::new();
        let mut prev: Option<Key> = None;
        loop {
            let mut next = Key::default();
            let prev_ptr = prev.as_ref().map(|k| k as *const Key as u64).unwrap_or(0);
            if !map_next_key(&self.counts, prev_ptr, &mut next) {
                break;
            }
            out.push(next);
            prev = Some(next);
        }
        out
    }

    /// Runs the kernel skipped because the program was already running on
    /// that CPU (a drop in a softirq that interrupted it): those drops are
    /// counted nowhere. `recursion_misses` of the program's info (5.12+;
    /// raw tracepoints check since 6.2), 0 where the kernel does not say.
    fn misses(&self) -> u64 {
        let mut info = [0u8; 256];
        let mut a = [0u64; 16];
        a[0] = pair(self.prog.as_raw_fd() as u32, info.len() as u32);
        a[1] = info.as_mut_ptr() as u64;
        if bpf(15 /* BPF_OBJ_GET_INFO_BY_FD */, &mut a).is_err() {
            return 0;
        }
        // struct bpf_prog_info: recursion_misses after run_time_ns, run_cnt.
        u64::from_ne_bytes(info[208..216].try_into().expect("8 bytes"))
    }

    /// Buckets of the given namespaces (inode → case's name for it).
    fn snapshot(&self, inums: &BTreeMap<u32, String>) -> BTreeMap<Key, Value> {
        let _g = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = BTreeMap::new();
        for k in self.keys().into_iter().filter(|k| inums.contains_key(&k.inum)) {
            let mut v = Value::default();
            if map_lookup(&self.counts, as_bytes(&k), &mut v) {
                out.insert(k, v);
            }
        }
        out
    }

    fn reason_name(&self, r: u32) -> String {
        if !self.has_reason {
            return String::new();
        }
        self.reasons.get(&r).cloned().unwrap_or_else(|| format!("reason {r:#x}"))
    }
}

/// The namespaces of one topology, registered with the monitor for as long
/// as this lives.
pub struct Watch {
    /// nsfs inode → namespace name in the case.
    inums: BTreeMap<u32, String>,
}

impl Watch {
    /// Registers `(name, inode)` pairs; without a monitor, a watch of nothing.
    pub fn new(namespaces: impl IntoIterator<Item = (String, u32)>) -> Watch {
        let inums: BTreeMap<u32, String> = namespaces.into_iter().map(|(n, i)| (i, n)).collect();
        if let Ok(m) = monitor() {
            for i in inums.keys() {
                let _ = m.watch(*i);
            }
        }
        Watch { inums }
    }

    /// Everything counted so far, to diff against later. The packets of
    /// drops before now are let go: they are not the next window's.
    pub fn mark(&self) -> Mark {
        match monitor() {
            Ok(m) => {
                let mark = Mark { counts: m.snapshot(&self.inums), misses: m.misses() };
                m.take_events(&self.inums);
                mark
            }
            Err(_) => Mark::default(),
        }
    }

    /// Whether any drop was counted since `since` (no names resolved: a
    /// cheap question to ask while waiting).
    pub fn counted_since(&self, since: &Mark) -> bool {
        let Ok(m) = monitor() else { return false };
        m.snapshot(&self.inums).iter().any(|(k, v)| v.count > since.counts.get(k).map_or(0, |b| b.count))
    }

    /// Drops the kernel did not let the program count since `since`, in
    /// any namespace: a shortfall up to this many is not evidence.
    pub fn missed_since(&self, since: &Mark) -> u64 {
        monitor().map(|m| m.misses().saturating_sub(since.misses)).unwrap_or(0)
    }

    /// Drops since `since`, with device names from `dev_name(ns, ifindex)`.
    pub fn since(&self, since: &Mark, dev_name: impl Fn(&str, u32) -> Option<String>) -> Vec<Drop> {
        let Ok(m) = monitor() else { return vec![] };
        let now = m.snapshot(&self.inums);
        let counted: Vec<u64> = now
            .iter()
            .filter(|(k, v)| v.count > since.counts.get(k).map(|b| b.count).unwrap_or(0))
            .map(|(k, _)| k.location)
            .collect();
        let syms = if counted.is_empty() { BTreeMap::new() } else { symbol_names(&counted) };
        // CLOCK_REALTIME - CLOCK_MONOTONIC now, to put drops on the pcap
        // clock: taken at each read, as NTP slews the two apart over a
        // long run.
        let offset = clock(libc::CLOCK_REALTIME) as i64 - clock(libc::CLOCK_MONOTONIC) as i64;
        let real = |t: u64| (t as i64 + offset).max(0) as u64;
        // The packets of each bucket, in the order the kernel freed them.
        let mut packets: BTreeMap<Key, Vec<DroppedPacket>> = BTreeMap::new();
        let mut events = m.take_events(&self.inums);
        events.sort_by_key(|e| e.ts);
        for e in events {
            let list = packets.entry(e.key()).or_default();
            if list.len() < MAX_PACKETS_PER_DROP {
                list.push(e.packet(real(e.ts)));
            }
        }
        let mut out = Vec::new();
        for (k, v) in now {
            let before = since.counts.get(&k).map(|b| b.count).unwrap_or(0);
            if v.count <= before {
                continue;
            }
            let ns = self.inums[&k.inum].clone();
            let dev = if k.ifindex == 0 {
                String::new()
            } else {
                dev_name(&ns, k.ifindex).unwrap_or(format!("if{}", k.ifindex))
            };
            out.push(Drop {
                dev,
                reason: m.reason_name(k.reason),
                at: syms.get(&k.location).cloned().unwrap_or_else(|| format!("{:#x}", k.location)),
                protocol: ethertype_name(u16::from_be(k.proto)),
                count: v.count - before,
                first_ns: real(if before == 0 { v.first } else { v.last }),
                last_ns: real(v.last),
                ns,
                origin: Origin::Incident,
                origin_why: String::new(),
                packets: packets.remove(&k).unwrap_or_default(),
            });
        }
        out.sort_by(|a, b| (&a.ns, &a.dev, &a.reason, &a.at).cmp(&(&b.ns, &b.dev, &b.reason, &b.at)));
        out
    }
}

impl std::ops::Drop for Watch {
    fn drop(&mut self) {
        if let Ok(m) = monitor() {
            for i in self.inums.keys() {
                m.unwatch(*i);
            }
        }
    }
}

impl Event {
    /// The packet as the evidence records it, freed at `t_ns` (realtime).
    fn packet(&self, t_ns: u64) -> DroppedPacket {
        let bytes = &self.hdr[..(self.hdr_len as usize).min(HEADER_BYTES)];
        let proto = u16::from_be(self.proto);
        let headers = match proto {
            0x0800 | 0x0806 | 0x86dd if !bytes.is_empty() => crate::wire::headers::Headers::parse_l3(proto, bytes),
            _ => crate::wire::headers::Headers::default(),
        };
        let summary = if headers.ip.is_some() || headers.arp.is_some() {
            headers.summary(bytes.len())
        } else {
            format!("{} (no network header)", ethertype_name(proto))
        };
        DroppedPacket { t_ns, headers, summary, frame: None }
    }
}

/// What a watch had counted at one moment, and the program's misses.
#[derive(Default)]
pub struct Mark {
    counts: BTreeMap<Key, Value>,
    misses: u64,
}

fn ethertype_name(p: u16) -> String {
    match p {
        0x0800 => "IPv4".into(),
        0x0806 => "ARP".into(),
        0x86dd => "IPv6".into(),
        p => format!("{p:#06x}"),
    }
}

fn as_bytes<T>(v: &T) -> &[u8] {
    // SAFETY: plain-old-data repr(C) structs, read as bytes for the syscall.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, std::mem::size_of::<T>()) }
}

fn clock(id: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(id, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

// ---- kernel symbols ------------------------------------------------------

/// `/proc/kallsyms` (122k lines, 40-50 ms of the kernel's formatting),
/// read once per process and kept.
static KALLSYMS: OnceLock<String> = OnceLock::new();

fn kallsyms() -> &'static str {
    KALLSYMS.get_or_init(|| std::fs::read_to_string("/proc/kallsyms").unwrap_or_default())
}

/// Reads `/proc/kallsyms` now, on the calling thread (the monitor's loader,
/// beside the first topology's build and probe): nearly every run counts
/// a drop (a healthy ping's own replies are `NO_SOCKET` drops), and read
/// when the first drop needs its name, it was 40-50 ms on the first
/// probe's account (`forwarding-off`'s baseline).
pub fn read_symbols_ahead() {
    kallsyms();
}

/// Names of kernel text addresses (the function a drop happened in), each
/// resolved the first time a counted drop needs it, then remembered for the
/// process; later new addresses are found in the text kept in memory.
fn symbol_names(addrs: &[u64]) -> BTreeMap<u64, String> {
    static KNOWN: Mutex<BTreeMap<u64, String>> = Mutex::new(BTreeMap::new());
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let missing: Vec<u64> = addrs.iter().copied().filter(|a| !known.contains_key(a)).collect();
    if !missing.is_empty() {
        let text = kallsyms();
        let found = resolve(text, &missing);
        for a in missing {
            known.insert(a, found.get(&a).cloned().unwrap_or_else(|| format!("{a:#x}")));
        }
    }
    addrs.iter().map(|a| (*a, known[a].clone())).collect()
}

/// For each of `addrs`, the text symbol (`t`/`T`) at or below it in
/// `kallsyms` text, without `+offset`; addresses with none are left out
/// (addresses hidden as zeros by `kptr_restrict` match nothing).
///
/// Lines are `%px %c %s[\t[module]]`: a fixed-width hex address, so
/// addresses compare as text and only a line that wins is parsed.
fn resolve(kallsyms: &str, addrs: &[u64]) -> BTreeMap<u64, String> {
    let want: Vec<(u64, String)> = addrs.iter().map(|a| (*a, format!("{a:016x}"))).collect();
    let mut best: Vec<Option<(&[u8], &str)>> = vec![None; addrs.len()];
    const ZERO: &[u8] = b"0000000000000000";
    for line in kallsyms.split('\n') {
        let b = line.as_bytes();
        if b.len() < 20 || b[16] != b' ' || !matches!(b[17], b't' | b'T') || b[18] != b' ' {
            continue;
        }
        let at = &b[..16];
        if at == ZERO {
            continue;
        }
        for (i, (_, hex)) in want.iter().enumerate() {
            if at <= hex.as_bytes() && best[i].is_none_or(|(prev, _)| at > prev) {
                best[i] = Some((at, &line[19..]));
            }
        }
    }
    want.iter()
        .zip(best)
        .filter_map(|((a, _), b)| {
            let name = b?.1;
            Some((*a, name.split(['\t', ' ']).next().unwrap_or(name).to_string()))
        })
        .collect()
}

// ---- BTF -----------------------------------------------------------------

/// Every name the monitor looks up in the BTF, found in one pass.
const BTF_NAMES: [&str; 6] = ["sk_buff", "net_device", "sock", "net", "skb_drop_reason", "btf_trace_kfree_skb"];

/// Byte offsets the program follows: skb → dev → nd_net → ns.inum, or
/// skb → sk → skc_net when the skb has no device.
#[derive(Debug, Clone, Copy)]
struct Offsets {
    skb_dev: u32,
    skb_sk: u32,
    skb_protocol: u32,
    skb_head: u32,
    /// `__u16`, from `head`; `~0` when unset.
    skb_network_header: u32,
    dev_ifindex: u32,
    dev_net: u32,
    sk_net: u32,
    net_inum: u32,
}

impl Offsets {
    fn from_btf(btf: &Btf) -> Result<Offsets> {
        Ok(Offsets {
            skb_dev: member_offset(btf, "sk_buff", &["dev"])?,
            skb_sk: member_offset(btf, "sk_buff", &["sk"])?,
            skb_protocol: member_offset(btf, "sk_buff", &["protocol"])?,
            skb_head: member_offset(btf, "sk_buff", &["head"])?,
            skb_network_header: member_offset(btf, "sk_buff", &["network_header"])?,
            dev_ifindex: member_offset(btf, "net_device", &["ifindex"])?,
            dev_net: member_offset(btf, "net_device", &["nd_net", "net"])?,
            sk_net: member_offset(btf, "sock", &["__sk_common", "skc_net", "net"])?,
            net_inum: member_offset(btf, "net", &["ns", "inum"])?,
        })
    }
}

fn named_struct(btf: &Btf, name: &str) -> Result<TypeHdr> {
    for id in btf.ids_named(name) {
        if let Some(h) = btf.hdr(id).filter(|h| h.kind == kind::STRUCT && h.vlen > 0) {
            return Ok(h);
        }
    }
    bail!("BTF has no struct {name}")
}

/// Follows typedefs and qualifiers to a struct or union.
fn as_struct(btf: &Btf, mut t: TypeHdr) -> Option<TypeHdr> {
    for _ in 0..16 {
        match t.kind {
            kind::STRUCT | kind::UNION => return Some(t),
            kind::TYPEDEF | kind::CONST | kind::VOLATILE | kind::RESTRICT | kind::TYPE_TAG => t = btf.target(&t)?,
            _ => return None,
        }
    }
    None
}

/// Byte offset of `path` inside struct `ty`, looking through anonymous
/// structs and unions (where `sk_buff` keeps `dev` and `protocol`).
fn member_offset(btf: &Btf, ty: &str, path: &[&str]) -> Result<u32> {
    fn find(btf: &Btf, s: &TypeHdr, name: &str) -> Option<(u32, TypeHdr)> {
        for m in btf.members(s) {
            let mname = btf.str_at(m.name_off);
            let mt = btf.hdr(m.ty)?;
            if mname == name {
                return Some((m.bit_offset, mt));
            }
            if mname.is_empty() {
                if let Some(inner) = as_struct(btf, mt) {
                    if let Some((o, t)) = find(btf, &inner, name) {
                        return Some((m.bit_offset + o, t));
                    }
                }
            }
        }
        None
    }
    let mut s = named_struct(btf, ty)?;
    let mut bits = 0;
    for (i, part) in path.iter().enumerate() {
        let (o, t) = find(btf, &s, part).ok_or_else(|| anyhow!("BTF: struct {ty} has no member {}", path.join(".")))?;
        bits += o;
        if i + 1 < path.len() {
            s = as_struct(btf, t).ok_or_else(|| anyhow!("BTF: {ty}.{part} is not a struct"))?;
        }
    }
    if bits % 8 != 0 {
        bail!("BTF: {ty}.{} is a bitfield", path.join("."));
    }
    Ok(bits / 8)
}

/// `enum skb_drop_reason` as value → name without the prefix; empty where
/// the kernel has no such enum.
fn drop_reasons(btf: &Btf) -> BTreeMap<u32, String> {
    let mut out = BTreeMap::new();
    for h in btf.ids_named("skb_drop_reason").into_iter().filter_map(|id| btf.hdr(id)) {
        for (n, v) in btf.enum_values(&h) {
            let n = n.strip_prefix("SKB_DROP_REASON_").unwrap_or(n);
            if !n.is_empty() && n != "MAX" {
                out.insert(v, n.to_string());
            }
        }
    }
    out
}

/// Arguments of a tracepoint, from its `btf_trace_<name>` typedef (a
/// pointer to a function whose first parameter is the probe's data).
fn tracepoint_args(btf: &Btf, tp: &str) -> Option<usize> {
    let t = btf.hdr(*btf.ids_named(&format!("btf_trace_{tp}")).first()?)?;
    let mut t = btf.target(&t)?;
    for _ in 0..4 {
        match t.kind {
            kind::FUNC_PROTO => return Some(btf.params(&t)?.saturating_sub(1)),
            kind::PTR | kind::TYPEDEF | kind::CONST => t = btf.target(&t)?,
            _ => return None,
        }
    }
    None
}

// ---- the program ---------------------------------------------------------

mod asm {
    //! Just enough eBPF encoding for one program.
    #[derive(Clone, Copy)]
    #[repr(C)]
    pub struct Insn {
        code: u8,
        regs: u8,
        off: i16,
        imm: i32,
    }
    pub const FP: u8 = 10;
    fn i(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
        Insn { code, regs: (src << 4) | dst, off, imm }
    }
    pub fn mov(dst: u8, src: u8) -> Insn {
        i(0xbf, dst, src, 0, 0)
    }
    pub fn mov_imm(dst: u8, imm: i32) -> Insn {
        i(0xb7, dst, 0, 0, imm)
    }
    pub fn add_imm(dst: u8, imm: i32) -> Insn {
        i(0x07, dst, 0, 0, imm)
    }
    /// `dst += src` (64-bit).
    pub fn add(dst: u8, src: u8) -> Insn {
        i(0x0f, dst, src, 0, 0)
    }
    /// `dst = *(size *)(src + off)`, size in bytes.
    pub fn ldx(size: u8, dst: u8, src: u8, off: i16) -> Insn {
        i(0x61 | sz(size), dst, src, off, 0)
    }
    pub fn stx(size: u8, dst: u8, off: i16, src: u8) -> Insn {
        i(0x63 | sz(size), dst, src, off, 0)
    }
    pub fn st_imm(size: u8, dst: u8, off: i16, imm: i32) -> Insn {
        i(0x62 | sz(size), dst, 0, off, imm)
    }
    /// `lock *(u64 *)(dst + off) += src`
    pub fn xadd64(dst: u8, off: i16, src: u8) -> Insn {
        i(0xdb, dst, src, off, 0)
    }
    fn sz(bytes: u8) -> u8 {
        match bytes {
            4 => 0x00,
            2 => 0x08,
            1 => 0x10,
            _ => 0x18,
        }
    }
    /// Jump targets are label numbers until [`link`] resolves them.
    pub fn jeq_imm(dst: u8, imm: i32, label: i16) -> Insn {
        i(0x15, dst, 0, label, imm)
    }
    pub fn jne_imm(dst: u8, imm: i32, label: i16) -> Insn {
        i(0x55, dst, 0, label, imm)
    }
    pub fn ja(label: i16) -> Insn {
        i(0x05, 0, 0, label, 0)
    }
    pub fn call(helper: i32) -> Insn {
        i(0x85, 0, 0, 0, helper)
    }
    pub fn exit() -> Insn {
        i(0x95, 0, 0, 0, 0)
    }
    pub fn ld_map_fd(dst: u8, fd: i32) -> [Insn; 2] {
        [i(0x18, dst, 1, 0, fd), i(0, 0, 0, 0, 0)]
    }

    pub enum Item {
        I(Insn),
        Label(i16),
    }

    /// Replaces label numbers in jumps with relative offsets.
    pub fn link(items: Vec<Item>) -> Vec<Insn> {
        let mut at = std::collections::HashMap::new();
        let mut n = 0i16;
        for it in &items {
            match it {
                Item::Label(l) => {
                    at.insert(*l, n);
                }
                Item::I(_) => n += 1,
            }
        }
        let mut out = Vec::new();
        for it in items {
            if let Item::I(mut x) = it {
                if matches!(x.code, 0x15 | 0x55 | 0x05) {
                    x.off = at[&x.off] - out.len() as i16 - 1;
                }
                out.push(x);
            }
        }
        out
    }
}

const PROBE_READ_KERNEL: i32 = 113;
const PROBE_READ: i32 = 4;
const MAP_LOOKUP: i32 = 1;
const MAP_UPDATE: i32 = 2;
const KTIME_GET_NS: i32 = 5;
const MAP_PUSH_ELEM: i32 = 87;
/// For a queue map: when full, overwrite the oldest.
const BPF_EXIST: i32 = 2;

/// The maps the program uses.
#[derive(Clone, Copy)]
struct Maps {
    watch: i32,
    counts: i32,
    /// The queue of per-drop events; none: counts only.
    events: Option<i32>,
}

/// The program. `rx_sk`: the tracepoint passes the receiving socket as a
/// fourth argument (6.12 on), the namespace of a drop on a socket's receive
/// path whose skb no longer has a device or owner.
fn program(o: &Offsets, has_reason: bool, rx_sk: bool, maps: Maps, read_helper: i32) -> Vec<asm::Insn> {
    let (watch_fd, counts_fd) = (maps.watch, maps.counts);
    use asm::Item::{Label, I};
    use asm::*;
    // Stack: key at fp-24 (inum -24, ifindex -20, reason -16, proto -12,
    // location -8), value at fp-48, scratch at fp-56, the event at
    // fp-(56 + size of Event) (ts, skb, location, inum, ifindex, reason,
    // proto, hdr_len, hdr: `struct Event`).
    const KEY: i16 = -24;
    const VAL: i16 = -48;
    const TMP: i16 = -56;
    const EV_SIZE: i16 = std::mem::size_of::<Event>() as i16;
    const EV: i16 = TMP - EV_SIZE;
    const EVENT: i16 = 7;
    const PUSH: i16 = 8;
    const NO_DEV: i16 = 1;
    const HAVE_NET: i16 = 2;
    const NEW: i16 = 3;
    const OUT: i16 = 4;
    const RX_SK: i16 = 5;
    const HAVE_SK: i16 = 6;
    // r3 = base + off; probe_read_kernel(fp+TMP, size, r3)
    let read = |size: i32, base: u8, off: u32| -> Vec<asm::Item> {
        vec![
            I(mov(3, base)),
            I(add_imm(3, off as i32)),
            I(mov(1, FP)),
            I(add_imm(1, TMP as i32)),
            I(mov_imm(2, size)),
            I(call(read_helper)),
        ]
    };
    let mut p: Vec<asm::Item> = vec![
        I(mov(6, 1)),
        I(st_imm(8, FP, KEY, 0)),
        I(st_imm(8, FP, KEY + 8, 0)),
        I(st_imm(8, FP, KEY + 16, 0)),
        I(st_imm(8, FP, TMP, 0)),
        I(ldx(8, 7, 6, 0)),
        I(ldx(8, 1, 6, 8)),
        I(stx(8, FP, KEY + 16, 1)),
    ];
    if has_reason {
        p.extend([I(ldx(8, 1, 6, 16)), I(stx(4, FP, KEY + 8, 1))]);
    }
    p.extend(read(8, 7, o.skb_dev));
    p.extend([I(ldx(8, 8, FP, TMP)), I(jeq_imm(8, 0, NO_DEV))]);
    p.extend(read(4, 8, o.dev_ifindex));
    p.extend([I(ldx(4, 1, FP, TMP)), I(stx(4, FP, KEY + 4, 1))]);
    p.extend(read(8, 8, o.dev_net));
    p.extend([I(ldx(8, 9, FP, TMP)), I(ja(HAVE_NET)), Label(NO_DEV)]);
    p.extend(read(8, 7, o.skb_sk));
    p.extend([I(ldx(8, 8, FP, TMP)), I(jeq_imm(8, 0, if rx_sk { RX_SK } else { OUT })), I(ja(HAVE_SK))]);
    p.extend([Label(RX_SK)]);
    if rx_sk {
        p.extend([I(ldx(8, 8, 6, 24)), I(jeq_imm(8, 0, OUT))]);
    }
    p.extend([Label(HAVE_SK)]);
    p.extend(read(8, 8, o.sk_net));
    p.extend([I(ldx(8, 9, FP, TMP)), Label(HAVE_NET), I(jeq_imm(9, 0, OUT))]);
    p.extend(read(4, 9, o.net_inum));
    p.extend([I(ldx(4, 1, FP, TMP)), I(stx(4, FP, KEY, 1))]);
    p.extend(read(2, 7, o.skb_protocol));
    p.extend([I(ldx(2, 1, FP, TMP)), I(stx(2, FP, KEY + 12, 1))]);
    // Only the namespaces of running cases.
    let [a, b] = ld_map_fd(1, watch_fd);
    p.extend([I(a), I(b), I(mov(2, FP)), I(add_imm(2, KEY as i32)), I(call(MAP_LOOKUP)), I(jeq_imm(0, 0, OUT))]);
    let [a, b] = ld_map_fd(1, counts_fd);
    p.extend([I(a), I(b), I(mov(2, FP)), I(add_imm(2, KEY as i32)), I(call(MAP_LOOKUP)), I(jeq_imm(0, 0, NEW))]);
    p.extend([
        I(mov(8, 0)),
        I(mov_imm(1, 1)),
        I(xadd64(8, 0, 1)),
        I(call(KTIME_GET_NS)),
        I(stx(8, 8, 16, 0)),
        I(ja(EVENT)),
        Label(NEW),
        I(call(KTIME_GET_NS)),
        I(st_imm(8, FP, VAL, 1)),
        I(stx(8, FP, VAL + 8, 0)),
        I(stx(8, FP, VAL + 16, 0)),
    ]);
    let [a, b] = ld_map_fd(1, counts_fd);
    p.extend([
        I(a),
        I(b),
        I(mov(2, FP)),
        I(add_imm(2, KEY as i32)),
        I(mov(3, FP)),
        I(add_imm(3, VAL as i32)),
        I(mov_imm(4, 0)),
        I(call(MAP_UPDATE)),
        Label(EVENT),
    ]);
    if let Some(events_fd) = maps.events {
        // One event per drop: zeroed (the helper reads every byte of it),
        // then when, which skb, the key's fields, and the first bytes from
        // the network header on.
        for off in (0..EV_SIZE).step_by(8) {
            p.push(I(st_imm(8, FP, EV + off, 0)));
        }
        p.extend([I(call(KTIME_GET_NS)), I(stx(8, FP, EV, 0)), I(stx(8, FP, EV + 8, 7))]);
        p.extend([I(ldx(8, 1, FP, KEY + 16)), I(stx(8, FP, EV + 16, 1))]);
        p.extend([I(ldx(4, 1, FP, KEY)), I(stx(4, FP, EV + 24, 1))]);
        p.extend([I(ldx(4, 1, FP, KEY + 4)), I(stx(4, FP, EV + 28, 1))]);
        p.extend([I(ldx(4, 1, FP, KEY + 8)), I(stx(4, FP, EV + 32, 1))]);
        p.extend([I(ldx(2, 1, FP, KEY + 12)), I(stx(2, FP, EV + 36, 1))]);
        p.extend(read(8, 7, o.skb_head));
        p.extend([I(ldx(8, 8, FP, TMP)), I(jeq_imm(8, 0, PUSH))]);
        p.extend(read(2, 7, o.skb_network_header));
        // network_header is (u16)~0 while unset.
        p.extend([I(ldx(2, 1, FP, TMP)), I(jeq_imm(1, 0xffff, PUSH)), I(add(8, 1))]);
        p.extend([
            I(mov(3, 8)),
            I(mov(1, FP)),
            I(add_imm(1, (EV + 40) as i32)),
            I(mov_imm(2, HEADER_BYTES as i32)),
            I(call(read_helper)),
            I(jne_imm(0, 0, PUSH)),
            I(st_imm(2, FP, EV + 38, HEADER_BYTES as i32)),
            Label(PUSH),
        ]);
        let [a, b] = ld_map_fd(1, events_fd);
        p.extend([
            I(a),
            I(b),
            I(mov(2, FP)),
            I(add_imm(2, EV as i32)),
            I(mov_imm(3, BPF_EXIST)),
            I(call(MAP_PUSH_ELEM)),
        ]);
    }
    p.extend([Label(OUT), I(mov_imm(0, 0)), I(exit())]);
    link(p)
}

// ---- bpf(2) --------------------------------------------------------------

fn bpf(cmd: u32, attr: &mut [u64; 16]) -> std::io::Result<i64> {
    // SAFETY: attr is a zeroed, large-enough bpf_attr for every command used.
    let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, attr.as_mut_ptr(), std::mem::size_of_val(attr)) };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

fn fd_of(r: i64) -> OwnedFd {
    // SAFETY: the kernel just handed us this fd.
    unsafe { OwnedFd::from_raw_fd(r as i32) }
}

fn pair(lo: u32, hi: u32) -> u64 {
    lo as u64 | (hi as u64) << 32
}

/// `kind`: 1 BPF_MAP_TYPE_HASH, 22 BPF_MAP_TYPE_QUEUE (key size 0).
fn map_create(kind: u32, key: u32, value: u32, max: u32) -> Result<OwnedFd> {
    let mut a = [0u64; 16];
    a[0] = pair(kind, key);
    a[1] = pair(value, max);
    bpf(0, &mut a).map(fd_of).context("bpf(BPF_MAP_CREATE)")
}

fn prog_load(insns: &[asm::Insn]) -> Result<OwnedFd> {
    let license = c"GPL";
    let mut log = vec![0u8; 64 * 1024];
    let mut a = [0u64; 16];
    a[0] = pair(17 /* BPF_PROG_TYPE_RAW_TRACEPOINT */, insns.len() as u32);
    a[1] = insns.as_ptr() as u64;
    a[2] = license.as_ptr() as u64;
    a[3] = pair(1, log.len() as u32);
    a[4] = log.as_mut_ptr() as u64;
    // prog_name, so a leak would be recognisable (see `loaded`).
    let mut name = [0u8; 16];
    name[..PROG_NAME.len()].copy_from_slice(PROG_NAME.as_bytes());
    a[6] = u64::from_ne_bytes(name[..8].try_into().expect("8 bytes"));
    a[7] = u64::from_ne_bytes(name[8..].try_into().expect("8 bytes"));
    match bpf(5, &mut a) {
        Ok(fd) => Ok(fd_of(fd)),
        Err(e) => {
            let text = String::from_utf8_lossy(&log);
            let text = text.trim_end_matches('\0').trim();
            let tail: Vec<&str> = text.lines().rev().take(6).collect();
            bail!("bpf(BPF_PROG_LOAD): {e}; verifier: {}", tail.into_iter().rev().collect::<Vec<_>>().join(" | "))
        }
    }
}

/// The name our program is loaded under.
pub const PROG_NAME: &str = "netrepro_drops";

/// Ids of the BPF programs loaded on this machine under [`PROG_NAME`]: what
/// a test checks to show none outlives its process.
pub fn loaded() -> Vec<u32> {
    let mut out = Vec::new();
    let mut id = 0u32;
    loop {
        let mut a = [0u64; 16];
        a[0] = id as u64;
        if bpf(11 /* BPF_PROG_GET_NEXT_ID */, &mut a).is_err() {
            break;
        }
        id = (a[0] >> 32) as u32;
        let mut a = [0u64; 16];
        a[0] = id as u64;
        let Ok(fd) = bpf(13 /* BPF_PROG_GET_FD_BY_ID */, &mut a).map(fd_of) else { continue };
        let mut info = [0u8; 256];
        let mut a = [0u64; 16];
        a[0] = pair(fd.as_raw_fd() as u32, info.len() as u32);
        a[1] = info.as_mut_ptr() as u64;
        if bpf(15 /* BPF_OBJ_GET_INFO_BY_FD */, &mut a).is_ok() {
            let name = &info[64..80];
            let end = name.iter().position(|&b| b == 0).unwrap_or(16);
            if &name[..end] == PROG_NAME.as_bytes() {
                out.push(id);
            }
        }
    }
    out
}

fn raw_tracepoint_open(name: &str, prog: i32) -> Result<OwnedFd> {
    let name = std::ffi::CString::new(name)?;
    let mut a = [0u64; 16];
    a[0] = name.as_ptr() as u64;
    a[1] = prog as u32 as u64;
    bpf(17, &mut a).map(fd_of).context("bpf(BPF_RAW_TRACEPOINT_OPEN, kfree_skb)")
}

fn map_update(map: &OwnedFd, key: &[u8], value: &[u8]) -> Result<()> {
    let mut a = [0u64; 16];
    a[0] = map.as_raw_fd() as u32 as u64;
    a[1] = key.as_ptr() as u64;
    a[2] = value.as_ptr() as u64;
    bpf(2, &mut a).map(|_| ()).context("bpf(BPF_MAP_UPDATE_ELEM)")
}

fn map_delete(map: &OwnedFd, key: &[u8]) -> std::io::Result<()> {
    let mut a = [0u64; 16];
    a[0] = map.as_raw_fd() as u32 as u64;
    a[1] = key.as_ptr() as u64;
    bpf(3, &mut a).map(|_| ())
}

fn map_lookup<V>(map: &OwnedFd, key: &[u8], value: &mut V) -> bool {
    let mut a = [0u64; 16];
    a[0] = map.as_raw_fd() as u32 as u64;
    a[1] = key.as_ptr() as u64;
    a[2] = value as *mut V as u64;
    bpf(1, &mut a).is_ok()
}

/// Pops the oldest event of a queue map (BPF_MAP_LOOKUP_AND_DELETE_ELEM);
/// false when it is empty.
fn map_pop(map: &OwnedFd, value: &mut Event) -> bool {
    let mut a = [0u64; 16];
    a[0] = map.as_raw_fd() as u32 as u64;
    a[1] = 0;
    a[2] = value as *mut Event as u64;
    bpf(21, &mut a).is_ok()
}

fn map_next_key(map: &OwnedFd, prev: u64, next: &mut Key) -> bool {
    let mut a = [0u64; 16];
    a[0] = map.as_raw_fd() as u32 as u64;
    a[1] = prev;
    a[2] = next as *mut Key as u64;
    bpf(4, &mut a).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_and_reasons_come_from_this_kernels_btf() {
        let Ok(btf) = Btf::vmlinux() else { return };
        let o = Offsets::from_btf(&btf).unwrap();
        assert!(o.skb_dev < 256 && o.net_inum > 0, "{o:?}");
        let r = drop_reasons(&btf);
        if tracepoint_args(&btf, "kfree_skb").unwrap_or(2) >= 3 {
            assert!(r.values().any(|n| n == "NOT_SPECIFIED"), "{r:?}");
        }
    }

    /// The in-place reader agrees with a full BTF library on this kernel:
    /// every offset, every reason, the tracepoint's arity.
    #[test]
    fn the_btf_reader_agrees_with_btf_rs() {
        let Ok(bytes) = std::fs::read(crate::sys::btf::VMLINUX) else { return };
        let ours = Btf::parse(bytes.clone()).unwrap();
        let lib = btf_rs::Btf::from_bytes(&bytes).unwrap();
        let lib_offset = |ty: &str, path: &[&str]| -> u32 {
            fn strukt(lib: &btf_rs::Btf, mut t: btf_rs::Type) -> Option<btf_rs::Struct> {
                for _ in 0..16 {
                    match t {
                        btf_rs::Type::Struct(s) | btf_rs::Type::Union(s) => return Some(s),
                        btf_rs::Type::Typedef(_)
                        | btf_rs::Type::Const(_)
                        | btf_rs::Type::Volatile(_)
                        | btf_rs::Type::Restrict(_)
                        | btf_rs::Type::TypeTag(_) => t = lib.resolve_chained_type(t.as_btf_type()?).ok()?,
                        _ => return None,
                    }
                }
                None
            }
            fn find(lib: &btf_rs::Btf, s: &btf_rs::Struct, name: &str) -> Option<(u32, btf_rs::Type)> {
                for m in &s.members {
                    let n = lib.resolve_name(m).unwrap_or_default();
                    let t = lib.resolve_chained_type(m).ok()?;
                    if n == name {
                        return Some((m.bit_offset(), t));
                    }
                    if n.is_empty() {
                        if let Some((o, t)) = strukt(lib, t).and_then(|i| find(lib, &i, name)) {
                            return Some((m.bit_offset() + o, t));
                        }
                    }
                }
                None
            }
            let mut s = lib
                .resolve_types_by_name(ty)
                .unwrap()
                .into_iter()
                .find_map(|t| match t {
                    btf_rs::Type::Struct(s) if !s.members.is_empty() => Some(s),
                    _ => None,
                })
                .unwrap();
            let mut bits = 0;
            for (i, p) in path.iter().enumerate() {
                let (o, t) = find(&lib, &s, p).unwrap();
                bits += o;
                if i + 1 < path.len() {
                    s = strukt(&lib, t).unwrap();
                }
            }
            bits / 8
        };
        for (ty, path) in [
            ("sk_buff", &["dev"][..]),
            ("sk_buff", &["sk"][..]),
            ("sk_buff", &["protocol"][..]),
            ("sk_buff", &["head"][..]),
            ("sk_buff", &["network_header"][..]),
            ("net_device", &["ifindex"][..]),
            ("net_device", &["nd_net", "net"][..]),
            ("sock", &["__sk_common", "skc_net", "net"][..]),
            ("net", &["ns", "inum"][..]),
        ] {
            assert_eq!(member_offset(&ours, ty, path).unwrap(), lib_offset(ty, path), "{ty}.{}", path.join("."));
        }
        let mut lib_reasons = BTreeMap::new();
        for t in lib.resolve_types_by_name("skb_drop_reason").unwrap_or_default() {
            if let btf_rs::Type::Enum(e) = t {
                for m in &e.members {
                    let n = lib.resolve_name(m).unwrap();
                    let n = n.strip_prefix("SKB_DROP_REASON_").unwrap_or(&n).to_string();
                    if n != "MAX" {
                        lib_reasons.insert(m.val(), n);
                    }
                }
            }
        }
        assert_eq!(drop_reasons(&ours), lib_reasons);
        let lib_args = {
            let t = lib.resolve_types_by_name("btf_trace_kfree_skb").unwrap().into_iter().next().unwrap();
            let mut t = lib.resolve_chained_type(t.as_btf_type().unwrap()).unwrap();
            loop {
                match t {
                    btf_rs::Type::FuncProto(p) => break p.parameters.len() - 1,
                    _ => t = lib.resolve_chained_type(t.as_btf_type().unwrap()).unwrap(),
                }
            }
        };
        assert_eq!(tracepoint_args(&ours, "kfree_skb"), Some(lib_args));
    }

    #[test]
    fn the_loaded_program_is_found_by_name() {
        if monitor().is_err() {
            return; // not root: nothing to list
        }
        assert!(!loaded().is_empty(), "{}", describe());
    }

    #[test]
    fn the_program_loads_with_either_read_helper() {
        let Ok(m) = monitor() else { return };
        let btf = Btf::vmlinux().unwrap();
        let off = Offsets::from_btf(&btf).unwrap();
        // What a kernel before 5.5 gets; this one must accept it too.
        let nargs = tracepoint_args(&btf, "kfree_skb").unwrap_or(2);
        let maps = Maps {
            watch: m.watch.as_raw_fd(),
            counts: m.counts.as_raw_fd(),
            events: m.events.as_ref().map(|e| e.as_raw_fd()),
        };
        prog_load(&program(&off, m.has_reason, nargs >= 4, maps, PROBE_READ)).unwrap();
        assert!(m.has_packets(), "this kernel has queue maps (4.20): drops come with their packets");
    }

    #[test]
    fn kallsyms_names_the_text_symbol_at_or_below() {
        let text = "ffffffff81000000 T _stext\nffffffff81000100 t ping_rcv\nffffffff81000180 d some_data\n\
                    ffffffff81000200 T icmp_rcv\t[mod]\n0000000000000000 T hidden\n";
        let got = resolve(text, &[0xffffffff81000150, 0xffffffff81000200, 0xffffffff81000250, 0x10]);
        assert_eq!(got.get(&0xffffffff81000150).map(String::as_str), Some("ping_rcv"));
        assert_eq!(got.get(&0xffffffff81000200).map(String::as_str), Some("icmp_rcv"));
        assert_eq!(got.get(&0xffffffff81000250).map(String::as_str), Some("icmp_rcv"));
        assert_eq!(got.get(&0x10), None);
    }

    #[test]
    fn jumps_are_linked_to_their_labels() {
        use asm::Item::{Label, I};
        let p = asm::link(vec![I(asm::jeq_imm(1, 0, 7)), I(asm::mov_imm(0, 1)), Label(7), I(asm::exit())]);
        assert_eq!(p.len(), 3);
        // SAFETY: reading the off field of a repr(C) insn.
        let off = unsafe { *((&p[0] as *const asm::Insn as *const u8).add(2) as *const i16) };
        assert_eq!(off, 1);
    }
}
