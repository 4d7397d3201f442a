//! The record a run leaves behind (`evidence.json`) and where artifacts go.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::evidence::frames::WindowFrames;
use crate::sys::counters::Counters;
use crate::sys::link::Neighbour;

/// `$NETREPRO_ARTIFACTS`, else `<target dir>/netrepro` when running from a
/// cargo build, else `./netrepro-artifacts`.
pub fn artifacts_root() -> PathBuf {
    if let Some(p) = std::env::var_os("NETREPRO_ARTIFACTS") {
        return PathBuf::from(p);
    }
    if let Some(p) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(p).join("netrepro");
    }
    if let Ok(exe) = std::env::current_exe() {
        // target/<profile>/netrepro or target/<profile>/deps/cases-<hash>
        if let Some(t) = exe.ancestors().find(|a| a.file_name().is_some_and(|n| n == "target")) {
            return t.join("netrepro");
        }
    }
    PathBuf::from("netrepro-artifacts")
}

/// An exclusive `flock` on `<root>/.<id>.lock`, held while the case runs.
pub fn lock_case(root: &Path, id: &str) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(root.join(format!(".{id}.lock")))?;
    // SAFETY: flock on an fd we own; released when the file is closed.
    if unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(f)
}

pub fn case_dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckRecord {
    pub what: String,
    pub expected: String,
    pub observed: String,
    pub ok: bool,
    /// The kernel cannot show this (a drop reason on a kernel without them):
    /// neither a pass nor a fail, and said so in every report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unavailable: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeRecord {
    pub name: String,
    pub kind: String,
    pub spec: serde_json::Value,
    pub outcome: serde_json::Value,
    /// Probe window, ns since the epoch (matches pcap timestamps).
    pub window_ns: (u64, u64),
    /// Counter deltas over the window, per namespace (only what moved).
    pub counter_deltas: BTreeMap<String, Counters>,
    /// Frames per captured interface (`ns/dev`) in the window, typed, each
    /// with its number in the phase's pcapng.
    pub packets: BTreeMap<String, WindowFrames>,
    pub neighbours: BTreeMap<String, Vec<Neighbour>>,
    /// Root qdiscs read back after the probe, for interfaces the checks name.
    pub qdiscs: BTreeMap<String, crate::sys::tc::QdiscInfo>,
    /// Qdisc drops during the probe, same interfaces.
    pub qdisc_drops: BTreeMap<String, i64>,
    /// Link settings read back after the probe, for interfaces the checks name.
    pub links: BTreeMap<String, BTreeMap<String, u64>>,
    /// iptables packet-counter deltas over the probe, in namespaces the
    /// checks name (`ns: rule`).
    pub rules: BTreeMap<String, i64>,
    /// `conntrack -L` after the probe, in namespaces the checks name.
    pub conntrack: BTreeMap<String, Vec<String>>,
    /// Values the probe defined for matchers (`injected_ack`, ...).
    pub vars: BTreeMap<String, u64>,
    /// Expectations computed from the kernel's parameters in force, with the
    /// parameters they came from.
    pub derived: BTreeMap<String, serde_json::Value>,
    /// The kernel's drops in the case's namespaces during the window.
    #[serde(default)]
    pub drops: Vec<crate::sys::drops::Drop>,
    /// Drops the kernel did not let the monitor count during the window
    /// (any namespace): drop checks short by no more are not evidence.
    #[serde(default)]
    pub drops_missed: u64,
    pub checks: Vec<CheckRecord>,
    /// One line on why the probe failed, from the evidence above
    /// ([`crate::verdict::explain`]); none when it behaved as a healthy network does.
    #[serde(default)]
    pub why: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepRecord {
    pub step: String,
    /// `replayed` for steps of an earlier phase replayed on this topology.
    pub origin: String,
    pub ok: bool,
    pub output: String,
    pub ms: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timings {
    pub setup_ms: f64,
    pub steps_ms: f64,
    pub probes_ms: f64,
    pub teardown_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseRecord {
    pub name: String,
    /// The kernel range of the variant chosen for this kernel, if gated.
    pub kernel_range: Option<String>,
    pub upstream: Option<String>,
    pub note: Option<String>,
    pub steps: Vec<StepRecord>,
    pub probes: Vec<ProbeRecord>,
    /// The phase's capture, every interface in one file
    /// ([`crate::evidence::frames::pcapng_path`]); none without captures.
    pub pcapng: Option<PathBuf>,
    pub timings: Timings,
    pub passed: bool,
    /// A harness error that stopped the phase (not an unmet expectation).
    pub error: Option<String>,
}

impl PhaseRecord {
    /// A phase with nothing recorded yet (not passed until shown to pass).
    pub fn new(name: &str) -> PhaseRecord {
        PhaseRecord {
            name: name.into(),
            kernel_range: None,
            upstream: None,
            note: None,
            steps: vec![],
            probes: vec![],
            pcapng: None,
            timings: Timings::default(),
            passed: false,
            error: None,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseRecord {
    pub id: String,
    pub title: String,
    pub urls: Vec<String>,
    pub case_file: PathBuf,
    pub fixture: String,
    pub kernel_release: String,
    pub started_unix_ms: u64,
    pub duration_ms: f64,
    pub verdict: String,
    /// What the kernel's drop monitor could see on this run.
    #[serde(default)]
    pub drop_monitor: String,
    /// The fixture as built, for drawing.
    #[serde(default)]
    pub topology: crate::evidence::topo::TopoView,
    pub phases: Vec<PhaseRecord>,
}

impl CaseRecord {
    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }

    /// `phase probe: why` for every probe that failed as the incident does.
    pub fn why_lines(&self) -> Vec<String> {
        self.phases
            .iter()
            .flat_map(|ph| {
                ph.probes.iter().filter_map(move |p| Some(format!("{} {}: {}", ph.name, p.name, p.why.as_ref()?)))
            })
            .collect()
    }

    /// Expected vs observed for every unmet expectation, with the evidence
    /// and pcapng paths: what a person debugging needs first.
    pub fn failure_report(&self, evidence_path: &Path) -> String {
        let mut s = format!("case {} on kernel {}: {}\n", self.id, self.kernel_release, self.title);
        for ph in self.phases.iter().filter(|p| !p.passed) {
            let gate = ph.kernel_range.as_ref().map(|r| format!(" (kernel {r})")).unwrap_or_default();
            s += &format!("\nphase {}{gate} FAILED\n", ph.name);
            if let Some(e) = &ph.error {
                s += &format!("  error: {e}\n");
            }
            for st in ph.steps.iter().filter(|s| !s.ok) {
                s += &format!("  step failed: {}: {}\n", st.step, st.output);
            }
            for p in &ph.probes {
                for c in p.checks.iter().filter(|c| !c.ok) {
                    s += &format!("  {} {}: expected {}, observed {}\n", p.name, c.what, c.expected, c.observed);
                }
                if p.checks.iter().any(|c| !c.ok) {
                    match &p.why {
                        Some(w) => s += &format!("    why: {w}\n"),
                        None => s += "    why: the probe saw what a healthy network does\n",
                    }
                    s += &format!("    outcome: {}\n", p.outcome);
                    for (ns, d) in &p.counter_deltas {
                        if !d.is_empty() {
                            let shown: Vec<String> = d.iter().take(12).map(|(k, v)| format!("{k} {v:+}")).collect();
                            s += &format!("    counters moved in {ns}: {}\n", shown.join(", "));
                        }
                    }
                    for d in &p.drops {
                        s += &format!(
                            "    kernel drop in {}{}: {} × {} {} in {}\n",
                            d.ns,
                            if d.dev.is_empty() { String::new() } else { format!("/{}", d.dev) },
                            d.count,
                            d.protocol,
                            if d.reason.is_empty() { "(no reason on this kernel)" } else { &d.reason },
                            d.at
                        );
                    }
                    for (iface, pk) in &p.packets {
                        s += &format!("    {iface}: {} frames in window", pk.total());
                        for f in pk.frames.iter().take(6) {
                            let t_ms = f.t_ns.saturating_sub(p.window_ns.0) as f64 / 1e6;
                            s += &format!(
                                "\n      #{} +{t_ms:.3}ms {:<3} {}",
                                f.pcap_frame,
                                f.direction.word(),
                                f.summary
                            );
                        }
                        if pk.total() > 6 {
                            s += &format!("\n      … {} more", pk.total() - 6);
                        }
                        s += "\n";
                    }
                }
            }
            if let Some(pc) = &ph.pcapng {
                s += &format!("  pcapng: {}\n", pc.display());
            }
        }
        s += &format!("\nevidence: {}\n", evidence_path.display());
        s
    }
}
