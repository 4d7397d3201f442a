//! Helpers shared by the self-tests, and their runner: each test file is a
//! libtest-mimic target (`harness = false`) whose tests that need root or
//! namespaces are skipped as skips, decided when tests are listed, with the
//! reason, like the cases (`cases/run.rs`).
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// What a test needs of this machine.
#[derive(Clone)]
pub enum Need {
    /// To create network namespaces (root, or a user namespace where allowed).
    Namespaces,
    /// Real root (uid 0), and why.
    Root(&'static str),
}

impl Need {
    /// Why this machine does not meet it.
    fn missing(&self) -> Option<String> {
        match self {
            Need::Namespaces => netrepro::app::preflight::privilege_problem(),
            Need::Root(why) => (!nix::unistd::Uid::effective().is_root()).then(|| format!("not root: {why}")),
        }
    }
}

/// One test of a file.
pub struct Test {
    name: &'static str,
    run: fn(),
    needs: Vec<Need>,
}

impl Test {
    pub fn new(name: &'static str, run: fn()) -> Test {
        Test { name, run, needs: vec![] }
    }

    pub fn needs(mut self, need: Need) -> Test {
        self.needs.push(need);
        self
    }
}

/// `common::test!(f)`: the test `f`, named as the function.
macro_rules! test {
    ($f:ident) => {
        crate::common::Test::new(stringify!($f), $f)
    };
}
pub(crate) use test;

/// Runs the file's tests as libtest does (same arguments). A test whose
/// needs this machine does not meet is ignored with its reason, decided
/// when tests are listed, so cargo test counts it as ignored and nextest
/// as skipped; run anyway (`--ignored`, `--include-ignored`, `nextest
/// --run-ignored`), it fails saying why instead of passing without running.
pub fn run(tests: Vec<Test>) -> ExitCode {
    let args = libtest_mimic::Arguments::from_args();
    let trials = tests
        .into_iter()
        .map(|t| {
            let why = t.needs.iter().find_map(Need::missing);
            if let (Some(why), false) = (&why, args.list) {
                eprintln!("{}: skipped: {why}", t.name);
            }
            let (name, run, ignored) = (t.name, t.run, why.is_some());
            libtest_mimic::Trial::test(name, move || match why {
                Some(why) => Err(format!(
                    "{name} cannot run here: {why}\nIt is listed as ignored for that reason; run anyway \
                     (--ignored, --include-ignored, nextest --run-ignored) it fails, because a test that \
                     did not run must never count as passed."
                )
                .into()),
                None => {
                    run();
                    Ok(())
                }
            })
            .with_ignored_flag(ignored)
        })
        .collect();
    libtest_mimic::run(&args, trials).exit_code()
}

/// The pids of every process whose environment holds `var` (`KEY=value`):
/// a run's own processes, found by a value only it was given.
pub fn processes_with_env(var: &str) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else { continue };
        if environ_has(pid, var) {
            out.push(pid);
        }
    }
    out
}

/// Whether process `pid`'s environment holds `var` (`NAME=value`).
pub fn environ_has(pid: u32, var: &str) -> bool {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
    environ.split(|b| *b == 0).any(|v| v == var.as_bytes())
}

/// Asserts that the run `pid` (alive) carries `marker`: the leak checks of
/// [`wait_unreachable_by_run`] find a run's processes by it, and would
/// find none if it did not match. Its environment may read empty for a
/// moment after `Command::spawn` returns: exec closes the fd spawn waits
/// on (`begin_new_exec`) before the new stack holds the environment.
pub fn assert_marked(pid: u32, marker: &str) {
    let end = Instant::now() + Duration::from_secs(2);
    let environ = loop {
        let e = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        if !e.is_empty() || Instant::now() > end {
            break e;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(
        environ.split(|b| *b == 0).any(|v| v == marker.as_bytes()),
        "process {pid} lacks {marker:?} in its environment: the leak check would miss it"
    );
}

/// The ids of the BPF programs process `pid` holds (by prog fd or link fd,
/// `prog_id` in its fdinfo): its own, whatever else runs on the machine.
pub fn bpf_programs_of(pid: u32) -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fdinfo")) else { return out };
    for fd in fds.flatten() {
        let info = std::fs::read_to_string(fd.path()).unwrap_or_default();
        for l in info.lines() {
            if let Some(id) = l.strip_prefix("prog_id:").and_then(|v| v.trim().parse().ok()) {
                out.insert(id);
            }
        }
    }
    out
}

fn ns_of_link(target: &Path) -> Option<String> {
    let l = std::fs::read_link(target).ok()?;
    let s = l.to_string_lossy().into_owned();
    s.starts_with("net:[").then_some(s)
}

/// The network namespaces `pid`'s threads are in.
pub fn namespaces_of(pid: u32) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for t in tasks.flatten() {
            out.extend(ns_of_link(&t.path().join("ns/net")));
        }
    }
    out
}

/// Every network namespace something on this machine can still reach: a
/// thread in it, an fd on it, or an nsfs mount of it.
pub fn reachable_namespaces() -> BTreeSet<String> {
    let pids: Vec<u32> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| p.file_name().to_string_lossy().parse().ok())
        .collect();
    reachable_namespaces_of(&pids)
}

/// The network namespaces processes `pids` can reach: a thread in it, an fd
/// on it, or an nsfs mount of it in their mount namespace. Namespace inode
/// numbers are reused at once, so "a namespace of that run is still
/// reachable" must ask the run's own processes (and the host's mounts), not
/// every process: a test or a loop beside makes namespaces that take the
/// freed numbers.
pub fn reachable_namespaces_of(pids: &[u32]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for pid in pids {
        let p = Path::new("/proc").join(pid.to_string());
        if let Ok(tasks) = std::fs::read_dir(p.join("task")) {
            for t in tasks.flatten() {
                out.extend(ns_of_link(&t.path().join("ns/net")));
            }
        }
        if let Ok(fds) = std::fs::read_dir(p.join("fd")) {
            for fd in fds.flatten() {
                out.extend(ns_of_link(&fd.path()));
            }
        }
        if let Ok(mi) = std::fs::read_to_string(p.join("mountinfo")) {
            for l in mi.lines() {
                if let Some(i) = l.find("net:[") {
                    let end = l[i..].find(']').map(|j| i + j + 1).unwrap_or(l.len());
                    out.insert(l[i..end].to_string());
                }
            }
        }
    }
    out
}

/// Waits (bounded) until none of `ns` is reachable by a process of the run
/// whose environment holds `marker` nor mounted on the host (this process's
/// mount namespace); returns the ones left. A process counts as the run's
/// unless its environment can be read and lacks `marker`: one exiting has
/// no environment left to read but may still hold its namespaces a moment
/// (`do_exit` drops the mm before the fds and nsproxy), so it counts. A
/// process of the run that replaced its environment (`env -i`) is not
/// seen: callers check the run carries `marker` ([`assert_marked`]).
pub fn wait_unreachable_by_run(ns: &BTreeSet<String>, marker: &str, within: Duration) -> BTreeSet<String> {
    let end = Instant::now() + within;
    loop {
        let theirs = |pid: &u32| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|e| !e.is_empty() && !e.split(|b| *b == 0).any(|v| v == marker.as_bytes()))
        };
        let pids: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .flatten()
            .filter_map(|p| p.file_name().to_string_lossy().parse().ok())
            .filter(|p| !theirs(p))
            .collect();
        let mut reach = reachable_namespaces_of(&pids);
        let host_mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        reach.extend(ns.iter().filter(|n| host_mounts.contains(n.as_str())).cloned());
        let left: BTreeSet<String> = reach.intersection(ns).cloned().collect();
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// What marks the processes of a run the tests started with `artifacts`
/// as its `NETREPRO_ARTIFACTS` (a fresh directory each): every process it
/// starts inherits it; for [`wait_unreachable_by_run`].
pub fn run_marker(artifacts: &Path) -> String {
    format!("NETREPRO_ARTIFACTS={}", artifacts.display())
}

/// Waits (bounded) until none of `ns` is reachable by any process; returns
/// the ones left. Only for namespaces this process made: another test's
/// namespace may take a freed inode number at once (see
/// [`reachable_namespaces_of`]); a run's are asked of the run
/// ([`wait_unreachable_by_run`]).
pub fn wait_unreachable(ns: &BTreeSet<String>, within: Duration) -> BTreeSet<String> {
    let end = Instant::now() + within;
    loop {
        let left: BTreeSet<String> = reachable_namespaces().intersection(ns).cloned().collect();
        if left.is_empty() || Instant::now() > end {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The namespace of the calling thread (the host's, in these tests).
pub fn own_namespace() -> String {
    ns_of_link(Path::new("/proc/thread-self/ns/net")).unwrap()
}

/// Writes case `<dir>/<id>.toml` on the docker-bridge fixture: a baseline
/// ping and a `fault` phase whose one step is `sh` in `host` running
/// `step`, then the same ping (so it passes when the step exits 0). For
/// tests that need a case of their own (`NETREPRO_CASES=<dir>`).
pub fn write_sh_case(dir: &Path, id: &str, step: &str) {
    let text = format!(
        r#"id = "{id}"
title = "An sh step: {id}"
urls = ["https://example.invalid/{id}"]
symptom = "none"
fix = "none"
fixture = "docker-bridge"
capture = ["host/eno1"]

[probes]
ping = {{ kind = "ping", from = "external", to = "10.2.19.78", count = 1, interval_ms = 50, wait_ms = 300 }}

[[phase]]
name = "baseline"
[phase.expect.ping]
replies = 1

[[phase]]
name = "fault"
steps = [{{ sh = {{ ns = "host", run = {step:?} }} }}]
[phase.expect.ping]
replies = 1
"#
    );
    std::fs::write(dir.join(format!("{id}.toml")), text).unwrap();
}

/// `netrepro <args>` on the cases in `cases` (the repository's fixtures),
/// artifacts into `artifacts`.
pub fn netrepro(args: &[&str], cases: &Path, artifacts: &Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_netrepro"));
    cmd.args(args)
        .env("NETREPRO_CASES", cases)
        .env("NETREPRO_FIXTURES", netrepro::app::suite::fixtures_dir())
        .env("NETREPRO_ARTIFACTS", artifacts)
        .stdin(std::process::Stdio::null());
    cmd
}

/// One Enhanced Packet Block of a pcapng, as read back with pcap-file.
pub struct PcapngFrame {
    /// 1-based, file order: Wireshark's `frame.number`.
    pub number: u32,
    /// The `if_name` of its interface (`ns/dev`).
    pub iface: String,
    /// The `epb_flags` direction bits, when set.
    pub direction: Option<netrepro::wire::packet::Direction>,
    /// ns since the epoch (the file's `if_tsresol` is 9).
    pub t_ns: u64,
    pub data: Vec<u8>,
}

/// Every frame of the pcapng at `path`, in file order.
pub fn read_pcapng(path: &Path) -> Vec<PcapngFrame> {
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketOption;
    use pcap_file::pcapng::blocks::interface_description::InterfaceDescriptionOption;
    use pcap_file::pcapng::{Block, PcapNgReader};
    let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut r = PcapNgReader::new(&data[..]).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (mut names, mut out) = (Vec::new(), Vec::new());
    while let Some(b) = r.next_block() {
        match b.unwrap_or_else(|e| panic!("{}: {e}", path.display())) {
            Block::InterfaceDescription(i) => names.push(
                i.options
                    .iter()
                    .find_map(|o| match o {
                        InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                        _ => None,
                    })
                    .unwrap_or_default(),
            ),
            Block::EnhancedPacket(e) => {
                let flags = e.options.iter().find_map(|o| match o {
                    EnhancedPacketOption::Flags(f) => Some(*f),
                    _ => None,
                });
                out.push(PcapngFrame {
                    number: out.len() as u32 + 1,
                    iface: names[e.interface_id as usize].clone(),
                    direction: flags.and_then(netrepro::wire::pcapng::direction_of_flags),
                    t_ns: e.timestamp.as_nanos() as u64,
                    data: e.data.into_owned(),
                });
            }
            _ => {}
        }
    }
    out
}
