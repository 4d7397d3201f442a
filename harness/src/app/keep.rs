//! Kept topologies: `netrepro run CASE --keep` leaves a phase's topology up
//! for a person to poke at. A keeper process holds the namespaces (by fd and
//! thread, never by name or mount), so they still die with it, however it
//! dies; a state file under `/run/netrepro` says where to find them.
//! `shell` enters one of them, `down` ends the keepers, `status` lists them.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// `$NETREPRO_STATE`, else `/run/netrepro` (tmpfs: gone at reboot, as are
/// the namespaces it points at).
pub fn state_dir() -> PathBuf {
    std::env::var_os("NETREPRO_STATE").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/run/netrepro"))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NsRef {
    /// The keeper's fd on the namespace (`/proc/<pid>/fd/<fd>`).
    pub fd: i32,
    /// Its nsfs inode, to recognise it (and a reused pid or fd).
    pub inode: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct KeptState {
    pub case: String,
    pub phase: String,
    pub pid: u32,
    pub started_unix_ms: u64,
    pub kernel: String,
    pub evidence: PathBuf,
    pub namespaces: IndexMap<String, NsRef>,
}

fn state_file(dir: &Path, case: &str) -> PathBuf {
    dir.join(format!("{case}.json"))
}

impl KeptState {
    pub fn write(&self, dir: &Path) -> Result<PathBuf> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = state_file(dir, &self.case);
        let tmp = dir.join(format!(".{}.tmp", self.case));
        std::fs::write(&tmp, serde_json::to_string_pretty(self)?)?;
        std::fs::rename(&tmp, &path)?;
        Ok(path)
    }

    /// The keeper is still there and still holds what the file says.
    pub fn alive(&self) -> bool {
        self.namespaces.values().all(|n| {
            std::fs::read_link(format!("/proc/{}/fd/{}", self.pid, n.fd))
                .is_ok_and(|l| l.to_string_lossy() == format!("net:[{}]", n.inode))
        })
    }

    /// An fd on namespace `name`, checked to be the one the keeper holds.
    pub fn open(&self, name: &str) -> Result<OwnedFd> {
        let n = self.namespaces.get(name).ok_or_else(|| {
            let names: Vec<&str> = self.namespaces.keys().map(String::as_str).collect();
            anyhow!("kept {} has no namespace {name:?} (it has: {})", self.case, names.join(", "))
        })?;
        let f: OwnedFd = std::fs::File::open(format!("/proc/{}/fd/{}", self.pid, n.fd))
            .with_context(|| {
                format!("the keeper of {} (pid {}) is gone; `netrepro down` cleans up", self.case, self.pid)
            })?
            .into();
        let ino = nix::sys::stat::fstat(&f)?.st_ino;
        if ino != n.inode {
            bail!("pid {} no longer holds {}'s namespace {name}; `netrepro down` cleans up", self.pid, self.case);
        }
        Ok(f)
    }
}

/// Every state file, read.
pub fn list(dir: &Path) -> Vec<KeptState> {
    let mut out: Vec<KeptState> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .filter_map(|e| serde_json::from_slice(&std::fs::read(e.path()).ok()?).ok())
        .collect();
    out.sort_by(|a, b| a.case.cmp(&b.case));
    out
}

pub fn find(dir: &Path, case: &str) -> Result<KeptState> {
    let s = list(dir).into_iter().find(|s| s.case == case).ok_or_else(|| {
        anyhow!("{case} is not kept; `netrepro run {case} --keep [--phase NAME]` builds it and leaves it up")
    })?;
    if !s.alive() {
        bail!("the keeper of {case} (pid {}) is gone, and its namespaces with it; `netrepro down` cleans up", s.pid);
    }
    Ok(s)
}

/// Runs `argv` (a shell by default) inside namespace `ns` of kept `case`;
/// returns its exit code.
pub fn shell(dir: &Path, case: &str, ns: &str, argv: &[String]) -> Result<i32> {
    let s = find(dir, case)?;
    let fd = s.open(ns)?;
    let default = vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())];
    let argv = if argv.is_empty() { &default } else { argv };
    let mut cmd = std::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).env("NETREPRO_NS", format!("{case}:{ns}"));
    if argv.len() == 1 && argv == default.as_slice() {
        cmd.env("PS1", format!("[{case} {ns}] # "));
    }
    let raw = fd.as_raw_fd();
    // SAFETY: only an async-signal-safe syscall between fork and exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::setns(raw, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let st = cmd.status().with_context(|| format!("running {:?} in {case}:{ns}", argv[0]))?;
    Ok(st.code().unwrap_or(128 + nix::libc::SIGKILL))
}

/// Ends the keepers (of `case`, or all): SIGTERM, then SIGKILL after 5 s;
/// removes their state files. Returns what it ended.
pub fn down(dir: &Path, case: Option<&str>) -> Result<Vec<String>> {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    let mut done = Vec::new();
    for s in list(dir).into_iter().filter(|s| case.is_none_or(|c| c == s.case)) {
        if s.alive() {
            let pid = Pid::from_raw(s.pid as i32);
            let _ = kill(pid, Signal::SIGTERM);
            let end = Instant::now() + Duration::from_secs(5);
            while s.alive() && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(20));
            }
            if s.alive() {
                let _ = kill(pid, Signal::SIGKILL);
                while s.alive() && Instant::now() < end + Duration::from_secs(5) {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            if s.alive() {
                bail!("the keeper of {} (pid {}) does not exit", s.case, s.pid);
            }
            done.push(format!("{} ({}; pid {})", s.case, s.phase, s.pid));
        } else {
            done.push(format!("{} (keeper already gone)", s.case));
        }
        let _ = std::fs::remove_file(state_file(dir, &s.case));
        let _ = std::fs::remove_file(dir.join(format!("{}.log", s.case)));
    }
    // Leave no trace: logs of keepers that never kept anything, then the
    // directory once the last topology is gone.
    if list(dir).is_empty() {
        for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.path().extension().is_some_and(|x| x == "log") {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let _ = std::fs::remove_dir(dir);
    if let Some(c) = case {
        if done.is_empty() {
            bail!("{c} is not kept");
        }
    }
    Ok(done)
}

/// The `status` listing, one block per kept topology.
pub fn status(dir: &Path) -> String {
    let all = list(dir);
    if all.is_empty() {
        return "no kept topologies\n".into();
    }
    let now = crate::sys::clock::now_ns() / 1_000_000;
    let mut s = String::new();
    for k in all {
        let state = if k.alive() { "up" } else { "GONE (keeper died; `netrepro down` cleans up)" };
        s += &format!(
            "{} phase {}: {state}; pid {}, kernel {}, up {} s\n",
            k.case,
            k.phase,
            k.pid,
            k.kernel,
            now.saturating_sub(k.started_unix_ms) / 1000
        );
        for (n, r) in &k.namespaces {
            s += &format!("    {n:<12} net:[{}]   netrepro shell {} {n}\n", r.inode, k.case);
        }
        s += &format!("    evidence {}\n", k.evidence.display());
    }
    s
}

/// The last line a keeper prints once its topology is up: `pass` or `fail`.
const READY: &str = "netrepro: kept ";

/// `netrepro run CASE --keep [--phase P]`: starts a keeper in its own
/// session, relays what it prints, and returns once the topology is up
/// (exit code: 0 kept and the phases passed, 1 kept but failed, 2 not kept).
pub fn start(case: &str, phase: Option<&str>) -> Result<u8> {
    use std::io::BufRead;
    let dir = state_dir();
    if let Some(s) = list(&dir).into_iter().find(|s| s.case == case) {
        if s.alive() {
            bail!("{case} is kept already (phase {}, pid {}); `netrepro down {case}` first", s.phase, s.pid);
        }
        let _ = std::fs::remove_file(state_file(&dir, case));
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log = std::fs::File::create(dir.join(format!("{case}.log")))?;
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.args(["__keep", case, phase.unwrap_or("-")])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(log);
    // SAFETY: setsid is async-signal-safe. Its own session: a Ctrl-C or a
    // closed terminal does not end the kept topology; `down` does.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    let mut child = cmd.spawn().context("starting the keeper")?;
    let out = std::io::BufReader::new(child.stdout.take().expect("piped"));
    let mut verdict = None;
    for line in out.lines() {
        let line = line?;
        match line.strip_prefix(READY) {
            Some(v) => verdict = Some(v.to_string()),
            None => println!("{line}"),
        }
    }
    match verdict.as_deref() {
        Some("pass") => Ok(0),
        Some(_) => Ok(1),
        None => {
            let st = child.wait()?;
            let log_path = dir.join(format!("{case}.log"));
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            // Nothing kept, so nothing may stay behind.
            let _ = std::fs::remove_file(&log_path);
            let _ = std::fs::remove_dir(&dir);
            bail!(
                "the keeper exited ({st}) without keeping {case}{}",
                if log.is_empty() { String::new() } else { format!("\n{log}") }
            )
        }
    }
}

/// The keeper itself (`netrepro __keep CASE PHASE|-`): runs the case up to
/// the phase, keeps its topology, writes the state file and waits for
/// SIGTERM, SIGINT or SIGHUP. Must be called before any thread exists, so
/// every namespace thread inherits the blocked signals.
pub fn keeper(plan: &crate::case::plan::Plan, phase: Option<&str>) -> Result<()> {
    use nix::sys::signal::{SigSet, Signal};
    let mut sigs = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        sigs.add(s);
    }
    sigs.thread_block()?;
    let (release, version) = crate::case::kernel::Version::running()?;
    let phase = match phase {
        Some(p) => p.to_string(),
        None => {
            let chosen = plan.phases_for(version).map_err(|e| anyhow!(e))?;
            chosen.last().map(|p| p.name.clone()).ok_or_else(|| anyhow!("case {} has no phase", plan.id()))?
        }
    };
    let root = crate::evidence::record::artifacts_root();
    let (rec, path, kept) = crate::run::runner::run_case_until(plan, &release, version, &root, Some(&phase))?;
    let kept =
        kept.ok_or_else(|| anyhow!("phase {phase} did not build its topology:\n{}", rec.failure_report(&path)))?;
    if rec.passed() {
        println!("PASS {}: phases up to {phase} passed on {release}", plan.id());
    } else {
        println!("FAIL {}\n{}", plan.id(), rec.failure_report(&path));
    }
    for line in rec.why_lines() {
        println!("    {line}");
    }
    if let Ok(r) = crate::render::report::write(&root) {
        println!("report: {}", r.display());
    }
    let mut namespaces = IndexMap::new();
    for (name, ns) in &kept.topology.namespaces {
        let inode = crate::sys::netns::inode_of(ns.raw_fd())? as u64;
        namespaces.insert(name.clone(), NsRef { fd: ns.raw_fd(), inode });
    }
    let state = KeptState {
        case: plan.id().into(),
        phase: kept.phase.clone(),
        pid: std::process::id(),
        started_unix_ms: crate::sys::clock::now_ns() / 1_000_000,
        kernel: release,
        evidence: path,
        namespaces,
    };
    let dir = state_dir();
    let file = state.write(&dir)?;
    println!("kept {} after phase {phase} (keeper pid {}, state {}):", plan.id(), state.pid, file.display());
    for n in state.namespaces.keys() {
        println!("    netrepro shell {} {n} [-- COMMAND...]", plan.id());
    }
    println!("    netrepro status · netrepro down {}", plan.id());
    println!("{READY}{}", if rec.passed() { "pass" } else { "fail" });
    // Let `start` see the end of our output: stdout becomes /dev/null.
    use std::io::Write;
    std::io::stdout().flush()?;
    let null = std::fs::OpenOptions::new().write(true).open("/dev/null")?;
    nix::unistd::dup2_stdout(&null)?;
    let sig = sigs.wait()?;
    eprintln!("netrepro: {sig:?}: tearing {} down", plan.id());
    let _ = std::fs::remove_file(&file);
    drop(kept);
    Ok(())
}
