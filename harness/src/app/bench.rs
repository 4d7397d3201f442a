//! `netrepro bench`: what the harness costs, beside the two ways to compare
//! it with, measured in the same run.
//!
//! - `bench [N]`: docker-bridge built, pinged once and torn down, N rounds
//!   of each side, alternated: the harness ([`Topology::build`]), the floor
//!   ([`Floor`]: the same requests over raw netlink, no bookkeeping) and the
//!   shell way (`ci/bench/docker-bridge.sh`: `ip netns`, iproute2,
//!   iptables). Medians, harness/shell, harness/floor, peak memory. Each
//!   side starts after an untimed pause ([`SETTLE`]), so that none pays
//!   for the kernel's freeing of the namespaces of the side before it.
//! - `bench --containers N`: docker-bridge with N containers on the bridge,
//!   built and torn down once by each side; per-container build and
//!   teardown, and the harness's fds, threads and memory at its peak.
//!
//! Every side's namespaces are invisible to the host guard of a suite
//! running beside the bench: the harness's and the floor's are held by fd
//! and never named; the shell's are named, so the script runs in a private
//! mount namespace with its own `/run` (where `ip netns` names them).

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::app::floor::Floor;
use crate::case::plan::load_fixture;
use crate::case::spec::FixtureFile;
use crate::run::topology::Topology;

/// What `netrepro bench` was asked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Args {
    /// docker-bridge, this many rounds per side.
    Rounds(usize),
    /// docker-bridge with this many containers, once per side.
    Containers(usize),
}

/// The most containers `--containers` builds (fds: ~1 per namespace).
pub const MAX_CONTAINERS: usize = 500;
/// Above this many containers the shell side is skipped: `ip netns add`
/// bind-mounts each name, and the script's time grows with the mounts.
pub const SHELL_MAX_CONTAINERS: usize = 100;

impl Args {
    /// `[N]` or `--containers N`.
    pub fn parse(args: &[String]) -> std::result::Result<Args, String> {
        match args {
            [] => Ok(Args::Rounds(30)),
            [n] => n.parse().map(Args::Rounds).map_err(|_| format!("bench: {n:?} is not a number of rounds")),
            [flag, n] if flag == "--containers" => match n.parse::<usize>() {
                Ok(n) if (1..=MAX_CONTAINERS).contains(&n) => Ok(Args::Containers(n)),
                _ => Err(format!("bench: --containers takes 1 to {MAX_CONTAINERS}, not {n:?}")),
            },
            _ => Err("usage: netrepro bench [N] | netrepro bench --containers N".into()),
        }
    }
}

/// Runs what was asked and returns the printout.
pub fn command(args: Args, fixtures: &Path, script: &Path) -> Result<String> {
    match args {
        Args::Rounds(n) => Ok(run(fixtures, script, n)?.to_string()),
        Args::Containers(n) => Ok(scale(fixtures, n)?.to_string()),
    }
}

pub struct BenchResult {
    pub rounds: usize,
    pub harness_ms: Vec<f64>,
    pub floor_ms: Vec<f64>,
    pub shell_ms: Vec<f64>,
    pub peak_rss_kib: u64,
}

pub fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if s.is_empty() {
        return f64::NAN;
    }
    let m = s.len() / 2;
    if s.len() % 2 == 0 {
        (s[m - 1] + s[m]) / 2.0
    } else {
        s[m]
    }
}

/// The untimed pause before each side: the kernel frees a namespace
/// asynchronously (`cleanup_net`, which takes RTNL across RCU grace
/// periods: up to ~150 ms for docker-bridge on an idle 2-CPU machine), and
/// that work would otherwise land on whichever side comes next (a build
/// right after a teardown took 5–180 ms where one 150 ms later took 5–7).
pub const SETTLE: Duration = Duration::from_millis(200);

/// The pause for `namespaces` namespaces going away.
fn settle(namespaces: usize) {
    std::thread::sleep(SETTLE + Duration::from_millis(2) * namespaces as u32);
}

/// docker-bridge's addresses: the container pings the external host.
const EXTERNAL: &str = "10.2.19.80";

/// The harness's own way: fixture over netlink, one echo, drop.
fn harness_once(fixture: &FixtureFile, i: usize) -> Result<f64> {
    let t = Instant::now();
    let topo = Topology::build(fixture, &format!("bench{i}"))?;
    let ping = crate::run::probe::ping(
        topo.ns("container")?,
        EXTERNAL.parse()?,
        1,
        Duration::from_millis(1),
        Duration::from_millis(1000),
    )?;
    if ping.replies != 1 {
        bail!("bench ping across the fixture got no reply: {ping:?}");
    }
    drop(topo);
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

/// The floor: the same fixture, one echo, drop.
fn floor_once(fixture: &FixtureFile) -> Result<f64> {
    let t = Instant::now();
    let floor = Floor::build(fixture, Some("container"))?;
    if !floor.ping(EXTERNAL.parse()?, Duration::from_millis(1000))? {
        bail!("the floor's ping across the fixture got no reply");
    }
    drop(floor);
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

/// `bash` running `script` (a file, or `-c` text) in a private mount
/// namespace whose `/run` is its own: the names `ip netns add` makes there
/// are no host's (a suite's host guard beside the bench lists the host's
/// `/run/netns`), and they go with the script however it ends.
fn private_bash() -> Command {
    let mut c = Command::new("bash");
    // SAFETY: only raw syscalls between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        c.pre_exec(|| {
            if libc::unshare(libc::CLONE_NEWNS) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            let root = c"/";
            if libc::mount(
                std::ptr::null(),
                root.as_ptr(),
                std::ptr::null(),
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            let (run, tmpfs, mode) = (c"/run", c"tmpfs", c"mode=0755");
            if libc::mount(tmpfs.as_ptr(), run.as_ptr(), tmpfs.as_ptr(), 0, mode.as_ptr() as *const libc::c_void) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    c
}

fn shell_once(script: &Path, i: usize) -> Result<f64> {
    let t = Instant::now();
    let out = private_bash().arg(script).arg(format!("{}-{i}", std::process::id())).output()?;
    if !out.status.success() {
        bail!("{} failed: {}", script.display(), String::from_utf8_lossy(&out.stderr));
    }
    Ok(t.elapsed().as_secs_f64() * 1e3)
}

/// Peak resident memory of this process so far (VmHWM).
pub fn peak_rss_kib() -> u64 {
    status_kib("VmHWM:")
}

fn status_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse().ok()))
        .unwrap_or(0)
}

fn count_dir(p: &str) -> usize {
    std::fs::read_dir(p).map(|d| d.count()).unwrap_or(0)
}

pub fn run(fixtures: &Path, script: &Path, n: usize) -> Result<BenchResult> {
    let fixture = load_fixture(&fixtures.join("docker-bridge.toml")).map_err(|e| anyhow!("{e}"))?;
    // One untimed round each: module loads, page cache.
    harness_once(&fixture, 0).context("warm-up")?;
    floor_once(&fixture).context("warm-up (floor)")?;
    shell_once(script, 0).context("warm-up (shell)")?;
    let mut r = BenchResult { rounds: n, harness_ms: vec![], floor_ms: vec![], shell_ms: vec![], peak_rss_kib: 0 };
    let ns = fixture.namespaces.len();
    for i in 1..=n {
        settle(ns);
        r.harness_ms.push(harness_once(&fixture, i)?);
        settle(ns);
        r.floor_ms.push(floor_once(&fixture).context("floor")?);
        settle(ns);
        r.shell_ms.push(shell_once(script, i)?);
    }
    r.peak_rss_kib = peak_rss_kib();
    Ok(r)
}

impl std::fmt::Display for BenchResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (h, fl, s) = (median(&self.harness_ms), median(&self.floor_ms), median(&self.shell_ms));
        writeln!(
            f,
            "docker-bridge build + 1 ping + teardown, {} rounds each, alternated, each after a {} ms pause:",
            self.rounds,
            SETTLE.as_millis()
        )?;
        writeln!(
            f,
            "  every side: 3 namespaces, the fixture's 12 sysctls before any link, docker0, 2 veths, offloads"
        )?;
        writeln!(
            f,
            "  off on the 4 veth ends while down, 3 addresses, 1 route, the MASQUERADE rule, 1 echo answered,"
        )?;
        writeln!(f, "  teardown; each side its own way:")?;
        writeln!(f, "  harness (Topology::build: a thread per namespace, batched rtnetlink, one SFEATURES ioctl per")?;
        writeln!(f, "           veth end, iptables beside, carrier wait; probe::ping; drop): median {h:.2} ms")?;
        writeln!(
            f,
            "  floor   (raw rtnetlink, one sendmsg per namespace and round, a thread per CPU, the same ioctl;"
        )?;
        writeln!(f, "           iptables beside, carrier wait; one echo on a raw socket; close): median {fl:.2} ms")?;
        writeln!(f, "  shell   (ci/bench/docker-bridge.sh: ip netns, ip, sysctl -w, ethtool -K, iptables, ping -W 1;")?;
        writeln!(f, "           ip netns del): median {s:.2} ms")?;
        writeln!(f, "  ratio harness/shell: {:.3}", h / s)?;
        writeln!(f, "  ratio harness/floor: {:.3}", h / fl)?;
        writeln!(f, "  harness peak RSS: {} KiB", self.peak_rss_kib)
    }
}

// ---- --containers N --------------------------------------------------------

/// docker-bridge with `n` containers: the same host and external
/// namespaces and sysctls, and per container a namespace `c<i>` with the
/// fixture container's sysctls, a veth `v<i>` on docker0 and `eth0` with an
/// address in 172.17.0.0/16, and a default route via the bridge.
pub fn scaled_fixture(base: &FixtureFile, n: usize) -> Result<FixtureFile> {
    let sysctls = |name: &str| -> Result<String> {
        let ns = base
            .namespaces
            .iter()
            .find(|x| x.name.get_ref() == name)
            .ok_or_else(|| anyhow!("docker-bridge has no namespace {name}"))?;
        let kv: Vec<String> = ns
            .sysctls
            .iter()
            .map(|(k, v)| match v.get_ref() {
                crate::case::spec::SysVal::Int(i) => format!("{k:?} = {i}"),
                crate::case::spec::SysVal::Text(t) => format!("{k:?} = {t:?}"),
            })
            .collect();
        Ok(format!("{{ {} }}", kv.join(", ")))
    };
    let mut t = format!(
        "description = \"docker-bridge with {n} containers\"\n\
         [[namespace]]\nname = \"host\"\nsysctls = {}\n\
         [[namespace]]\nname = \"external\"\nsysctls = {}\n\
         [[bridge]]\nns = \"host\"\nname = \"docker0\"\ntx_queue_len = 0\naddresses = [\"172.17.0.1/16\"]\n\
         [[veth]]\na = {{ ns = \"host\", name = \"eno1\", addresses = [\"10.2.19.78/24\"] }}\n\
         b = {{ ns = \"external\", name = \"eth0\", addresses = [\"10.2.19.80/24\"] }}\n\
         [[firewall]]\nns = \"host\"\niptables = [\"-t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\"]\n",
        sysctls("host")?,
        sysctls("external")?
    );
    let c = sysctls("container")?;
    for i in 0..n {
        let a = i + 2;
        t += &format!(
            "[[namespace]]\nname = \"c{i}\"\nsysctls = {c}\n\
             [[veth]]\na = {{ ns = \"host\", name = \"v{i}\", master = \"docker0\" }}\n\
             b = {{ ns = \"c{i}\", name = \"eth0\", addresses = [\"172.17.{}.{}/16\"] }}\n\
             [[route]]\nns = \"c{i}\"\nto = \"default\"\nvia = \"172.17.0.1\"\n",
            a / 256,
            a % 256
        );
    }
    toml::from_str(&t).context("the scaled fixture")
}

/// The shell way for `n` containers: the script prints `built` between
/// its build and its teardown. The work of the harness's build: every
/// namespace's sysctls of the fixture before its links, offloads off on
/// every veth end while it is down (`ethtool -K`).
fn scaled_script(n: usize, tag: &str) -> String {
    let guest = "net.ipv4.ip_forward=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1";
    let off = "rx off tx off sg off tso off gso off gro off >/dev/null";
    let mut s = format!(
        "set -euo pipefail\nh=nrb-{tag}-h e=nrb-{tag}-e\nip netns add $h\nip netns add $e\n\
         for x in $h $e; do ip -n $x link set lo up; done\n\
         ip netns exec $h sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
         net.ipv4.conf.default.rp_filter=0 net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 \
         net.ipv4.igmp_link_local_mcast_reports=0\n\
         ip netns exec $e sysctl -qw {guest}\n\
         ip -n $h link add docker0 txqueuelen 0 type bridge\nip -n $h addr add 172.17.0.1/16 dev docker0\n\
         ip -n $h link set docker0 up\n\
         ip -n $h link add eno1 type veth peer name eth0 netns $e\n\
         ip netns exec $h ethtool -K eno1 {off}\nip netns exec $e ethtool -K eth0 {off}\n\
         ip -n $h addr add 10.2.19.78/24 dev eno1\n\
         ip -n $h link set eno1 up\nip -n $e addr add 10.2.19.80/24 dev eth0\nip -n $e link set eth0 up\n\
         ip netns exec $h iptables -t nat -A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE\n"
    );
    s += &format!(
        "for i in $(seq 0 {}); do c=nrb-{tag}-c$i; a=$((i + 2)); ip netns add $c; ip -n $c link set lo up\n\
         ip netns exec $c sysctl -qw {guest}\n\
         ip -n $h link add v$i type veth peer name eth0 netns $c\n\
         ip netns exec $h ethtool -K v$i {off}\nip netns exec $c ethtool -K eth0 {off}\n\
         ip -n $h link set v$i master docker0 up\n\
         ip -n $c addr add 172.17.$((a / 256)).$((a % 256))/16 dev eth0\nip -n $c link set eth0 up\n\
         ip -n $c route add default via 172.17.0.1\ndone\necho built\n",
        n - 1
    );
    s += &format!(
        "for i in $(seq 0 {}); do ip netns del nrb-{tag}-c$i; done\nip netns del $h\nip netns del $e\n",
        n - 1
    );
    s
}

/// Build and teardown of one side, in ms.
#[derive(Debug, Clone, Copy)]
pub struct Side {
    pub build_ms: f64,
    pub teardown_ms: f64,
}

pub struct ScaleResult {
    pub containers: usize,
    pub harness: Side,
    pub floor: Side,
    /// None: skipped (see [`SHELL_MAX_CONTAINERS`]).
    pub shell: Option<Side>,
    /// The harness with its topology up: open fds, threads, resident memory.
    pub fds: usize,
    pub threads: usize,
    pub rss_kib: u64,
    /// Before anything was built.
    pub base_fds: usize,
    pub base_threads: usize,
    pub floor_fds: usize,
    pub nofile: (u64, u64),
}

pub fn scale(fixtures: &Path, n: usize) -> Result<ScaleResult> {
    let base = load_fixture(&fixtures.join("docker-bridge.toml")).map_err(|e| anyhow!("{e}"))?;
    let fixture = scaled_fixture(&base, n)?;
    let nofile = crate::sys::rlimit::nofile();
    // Warm-up: module loads, the netlink runtime, page cache.
    drop(Topology::build(&base, "scale-warm").context("warm-up")?);
    let (base_fds, base_threads) = (count_dir("/proc/self/fd"), count_dir("/proc/self/task"));
    let ns = fixture.namespaces.len();

    settle(ns);
    let t = Instant::now();
    let topo = Topology::build(&fixture, &format!("scale-{n}")).context("the harness's build")?;
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let (fds, threads, rss_kib) = (count_dir("/proc/self/fd"), count_dir("/proc/self/task"), status_kib("VmRSS:"));
    let last = format!("c{}", n - 1);
    let p = crate::run::probe::ping(
        topo.ns(&last)?,
        EXTERNAL.parse()?,
        1,
        Duration::from_millis(1),
        Duration::from_secs(1),
    )?;
    if p.replies != 1 {
        bail!("{last} could not ping the external host: {p:?}");
    }
    let t = Instant::now();
    drop(topo);
    let harness = Side { build_ms, teardown_ms: t.elapsed().as_secs_f64() * 1e3 };

    settle(ns);
    let t = Instant::now();
    let floor = Floor::build(&fixture, None).context("the floor's build")?;
    let build_ms = t.elapsed().as_secs_f64() * 1e3;
    let floor_fds = count_dir("/proc/self/fd");
    let t = Instant::now();
    drop(floor);
    let floor = Side { build_ms, teardown_ms: t.elapsed().as_secs_f64() * 1e3 };

    let shell = if n <= SHELL_MAX_CONTAINERS {
        settle(ns);
        Some(shell_scaled(n)?)
    } else {
        None
    };
    Ok(ScaleResult {
        containers: n,
        harness,
        floor,
        shell,
        fds,
        threads,
        rss_kib,
        base_fds,
        base_threads,
        floor_fds,
        nofile,
    })
}

fn shell_scaled(n: usize) -> Result<Side> {
    use std::io::BufRead;
    let tag = format!("{}s", std::process::id());
    let t = Instant::now();
    let mut child = private_bash()
        .arg("-c")
        .arg(scaled_script(n, &tag))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .context("bash")?;
    let out = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
    let mut built = None;
    for line in std::io::BufReader::new(out).lines() {
        if line? == "built" {
            built = Some(t.elapsed());
        }
    }
    let o = child.wait_with_output()?;
    let total = t.elapsed();
    let built = match (o.status.success(), built) {
        (true, Some(b)) => b,
        _ => bail!("the shell side failed ({}): {}", o.status, String::from_utf8_lossy(&o.stderr)),
    };
    Ok(Side { build_ms: built.as_secs_f64() * 1e3, teardown_ms: (total - built).as_secs_f64() * 1e3 })
}

impl std::fmt::Display for ScaleResult {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.containers as f64;
        let per =
            |s: &Side| format!("build {:7.3} ms, teardown {:7.3} ms per container", s.build_ms / n, s.teardown_ms / n);
        let total = |s: &Side| format!("(total {:.0} + {:.0} ms)", s.build_ms, s.teardown_ms);
        writeln!(
            f,
            "docker-bridge with {} containers (namespaces: {}), built and torn down once per side:",
            self.containers,
            self.containers + 2
        )?;
        writeln!(f, "  harness: {} {}", per(&self.harness), total(&self.harness))?;
        writeln!(f, "  floor:   {} {}", per(&self.floor), total(&self.floor))?;
        match &self.shell {
            Some(s) => writeln!(f, "  shell:   {} {}", per(s), total(s))?,
            None => writeln!(
                f,
                "  shell:   skipped above {SHELL_MAX_CONTAINERS} containers (`ip netns add` bind-mounts every name; run `bench --containers {SHELL_MAX_CONTAINERS}` for it)"
            )?,
        }
        writeln!(f, "  harness/floor build: {:.3}", self.harness.build_ms / self.floor.build_ms)?;
        if let Some(s) = &self.shell {
            writeln!(f, "  harness/shell build: {:.3}", self.harness.build_ms / s.build_ms)?;
        }
        writeln!(
            f,
            "  harness at its peak: {} fds ({} before: {:.2} per namespace), {} threads ({} before), RSS {} KiB",
            self.fds,
            self.base_fds,
            (self.fds - self.base_fds.min(self.fds)) as f64 / (n + 2.0),
            self.threads,
            self.base_threads,
            self.rss_kib
        )?;
        writeln!(f, "  floor at its peak: {} fds", self.floor_fds)?;
        writeln!(f, "  RLIMIT_NOFILE: soft {}, hard {}", self.nofile.0, self.nofile.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn arguments() {
        let a = |v: &[&str]| Args::parse(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(a(&[]), Ok(Args::Rounds(30)));
        assert_eq!(a(&["5"]), Ok(Args::Rounds(5)));
        assert_eq!(a(&["--containers", "200"]), Ok(Args::Containers(200)));
        assert!(a(&["--containers", "501"]).is_err() && a(&["--containers", "0"]).is_err() && a(&["x"]).is_err());
    }

    #[test]
    fn the_scaled_fixture_is_docker_bridge_with_n_containers() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/docker-bridge.toml");
        let base = load_fixture(&dir).unwrap();
        let f = scaled_fixture(&base, 300).unwrap();
        assert_eq!(f.namespaces.len(), 302);
        assert_eq!(f.veths.len(), 301);
        assert_eq!(f.routes.len(), 300);
        let last = &f.veths[300].b;
        assert_eq!(last.addresses[0].addr.to_string(), "172.17.1.45");
    }
}
