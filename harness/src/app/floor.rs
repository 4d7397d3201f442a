//! The floor `netrepro bench` measures the harness against: a fixture built
//! the cheapest way this kernel allows, with nothing the harness keeps
//! beside it. The same requests as [`Topology::build`] (one
//! [`topology::plan`]), the same namespaces with the same sysctls, the
//! same `iptables` command lines run beside the netlink work, the same
//! wait for carrier; but one blocking netlink socket per namespace (which
//! alone holds it), each namespace's requests of a round in one `sendmsg`
//! (`lo` up with its first, a namespace's routes with its last), the
//! namespaces shared among one thread per CPU; offloads off on every veth
//! end with the harness's one `ETHTOOL_SFEATURES` ioctl, at the same point
//! of the build (through the namespace's netlink socket). Not done: a
//! thread per namespace, a runtime, drop watches, evidence.
//!
//! [`Topology::build`]: crate::run::topology::Topology::build

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

use crate::case::spec::FixtureFile;
use crate::run::topology::{self, LinkReq, CARRIER_WITHIN};
use crate::sys::link::{LinkOpts, PeerNs, Req};
use crate::sys::rawnl::RawNl;

/// How many requests go in one `sendmsg`, and so how many peer namespaces
/// are reached by fd at once (fds held beside one socket per namespace).
const CHUNK: usize = 64;

/// A built floor: one socket per namespace holds it; dropping it ends them.
pub struct Floor {
    pub namespaces: Vec<(String, RawNl)>,
    /// A raw ICMP socket in the namespace asked for at build.
    icmp: Option<OwnedFd>,
}

/// `SIOCGSKNS`: an fd for the namespace of a socket (4.9+), so that a
/// namespace held only by its socket can still be named to the kernel.
const SIOCGSKNS: libc::c_ulong = 0x894c;

fn ns_fd(socket: std::os::fd::RawFd) -> Result<OwnedFd> {
    // SAFETY: an ioctl that returns a new fd, owned below.
    let fd = unsafe { libc::ioctl(socket, SIOCGSKNS as _) };
    if fd < 0 {
        bail!("SIOCGSKNS: {}", std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

impl Floor {
    /// Builds `f`; with `ping_from`, also opens a raw ICMP socket there.
    pub fn build(f: &FixtureFile, ping_from: Option<&str>) -> Result<Floor> {
        // Indexes from 100, above whatever a new namespace holds (lo,
        // fallback tunnels): the floor makes no link after the build, so
        // where the kernel's own numbering would go does not matter here.
        let plan = topology::plan(f, &|_| 100, &|ns, dev| Err(anyhow!("the floor makes no {dev} in {ns}")))?;
        // Namespaces all at once, each made by a short-lived thread that
        // writes its sysctls and opens its socket(s) there.
        let mut namespaces = Vec::new();
        let mut icmp = None;
        let names: Vec<&String> = plan.work.keys().collect();
        for chunk in names.chunks(names.len().max(1)) {
            let started = chunk
                .iter()
                .map(|&name| {
                    let sysctls = plan.work[name.as_str()].sysctls.clone();
                    let wants_icmp = ping_from == Some(name.as_str());
                    crate::sys::netns::fresh_namespace(move || {
                        for (k, v) in &sysctls {
                            crate::sys::sysctl::write(k, v)?;
                        }
                        let nl = RawNl::open()?;
                        let icmp = if wants_icmp { Some(raw_icmp()?) } else { None };
                        Ok((nl, icmp))
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            for (&name, t) in chunk.iter().zip(started) {
                let (nl, i) = t.join().map_err(|_| anyhow!("namespace {name} panicked"))??;
                namespaces.push((name.clone(), nl));
                icmp = icmp.or(i);
            }
        }
        let mut floor = Floor { namespaces, icmp };
        std::thread::scope(|s| {
            // The fixture's iptables, beside the netlink work, as the harness does.
            let mut fw = Vec::new();
            for spec in &f.firewall {
                let nl = floor.namespaces.iter().find(|(n, _)| n == spec.ns.get_ref()).map(|(_, nl)| nl);
                let fd = ns_fd(nl.ok_or_else(|| anyhow!("no namespace {}", spec.ns.get_ref()))?.as_raw_fd())?;
                let rules = spec.iptables.clone();
                fw.push(s.spawn(move || -> Result<()> {
                    for rule in rules {
                        let mut c = crate::sys::netns::command_in(fd.as_raw_fd(), "iptables");
                        c.args(shlex::split(&rule).unwrap_or_default()).stdout(std::process::Stdio::null());
                        let st = c.status().context("iptables")?;
                        if !st.success() {
                            bail!("iptables {rule}: {st}");
                        }
                    }
                    Ok(())
                }));
            }
            let built = floor.rounds(&plan);
            for t in fw {
                t.join().map_err(|_| anyhow!("iptables thread panicked"))??;
            }
            built
        })?;
        Ok(floor)
    }

    /// The harness's three rounds, each namespace's requests of a round in
    /// one `sendmsg` (CHUNK at most), the namespaces shared among one
    /// thread per CPU; then the wait for carrier.
    fn rounds(&mut self, plan: &topology::BuildPlan) -> Result<()> {
        let sockets: BTreeMap<String, RawFd> =
            self.namespaces.iter().map(|(n, nl)| (n.clone(), nl.as_raw_fd())).collect();
        // What a namespace sends in round r. lo goes up with its first
        // requests; routes go with the round that brings its last links up.
        let of = |r: usize, w: &topology::NsWork| -> Vec<LinkReq> {
            match r {
                0 => [w.bridges.clone(), w.veths.clone()].concat(),
                1 if w.ups.is_empty() => [w.peers.clone(), w.routes.clone()].concat(),
                1 => w.peers.clone(),
                _ if w.ups.is_empty() => vec![],
                _ => [w.ups.clone(), w.routes.clone()].concat(),
            }
        };
        let first_round = |w: &topology::NsWork| (0..3).find(|&r| !of(r, w).is_empty()).unwrap_or(0);
        for r in 0..3 {
            each(&mut self.namespaces, |name, nl| {
                let w = &plan.work[name];
                let reqs = of(r, w);
                let lo = r == first_round(w);
                let mut parts: Vec<&[LinkReq]> = reqs.chunks(CHUNK).collect();
                if parts.is_empty() && lo {
                    parts.push(&[]);
                }
                for (i, part) in parts.into_iter().enumerate() {
                    // A veth names its peer's namespace by fd, CHUNK at a time.
                    let fds = part
                        .iter()
                        .filter_map(LinkReq::peer_ns)
                        .map(|ns| Ok((ns.to_string(), ns_fd(sockets[ns])?)))
                        .collect::<Result<BTreeMap<String, OwnedFd>>>()?;
                    let peer = |ns: &str| PeerNs::Fd(fds.get(ns).map_or(-1, |f| f.as_raw_fd()));
                    let mut batch: Vec<Req> = Vec::new();
                    if lo && i == 0 {
                        batch.push(crate::sys::link::set_link(
                            "lo",
                            &LinkOpts { index: 1, up: true, ..Default::default() },
                        ));
                    }
                    batch.extend(part.iter().map(|r| r.build(&peer)));
                    // The peers' offloads go off before they come up, as
                    // the harness does (a running veth's GRO off waits for RCU).
                    if r == 1 && i == 0 {
                        for d in &w.offloads[1] {
                            crate::sys::ethtool::offloads_off_via(nl.as_raw_fd(), d)?;
                        }
                    }
                    nl.batch(batch)?;
                }
                // The first ends' offloads, once they exist (still down).
                if r == 0 {
                    for d in &w.offloads[0] {
                        crate::sys::ethtool::offloads_off_via(nl.as_raw_fd(), d)?;
                    }
                }
                Ok(())
            })?;
        }
        each(&mut self.namespaces, |name, nl| {
            let want: Vec<u32> = plan.work[name].carrier.keys().copied().collect();
            nl.wait_oper_up(&want, CARRIER_WITHIN)
        })
    }

    /// One ICMP echo from the namespace given at build: whether it was answered within `wait`.
    pub fn ping(&self, to: std::net::Ipv4Addr, wait: Duration) -> Result<bool> {
        let fd = self.icmp.as_ref().ok_or_else(|| anyhow!("the floor was built without a ping socket"))?;
        crate::run::probe::ping_fd(fd, to, wait)
    }
}

/// Runs `f` for every namespace, the namespaces shared among one thread
/// per CPU; the first error is the result.
fn each(nss: &mut [(String, RawNl)], f: impl Fn(&str, &mut RawNl) -> Result<()> + Sync) -> Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, nss.len().max(1));
    let size = nss.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let f = &f;
        let done: Vec<_> = nss
            .chunks_mut(size)
            .map(|c| {
                s.spawn(move || {
                    c.iter_mut().try_for_each(|(n, nl)| f(n, nl).with_context(|| format!("in namespace {n}")))
                })
            })
            .collect();
        done.into_iter().try_for_each(|t| t.join().map_err(|_| anyhow!("a floor thread panicked"))?)
    })
}

fn raw_icmp() -> Result<OwnedFd> {
    // SAFETY: plain socket creation, owned below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::IPPROTO_ICMP) };
    if fd < 0 {
        bail!("raw ICMP socket: {}", std::io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}
