//! The record a run leaves behind (`evidence.json`, schema v1:
//! `docs/evidence.schema.json`, generated from these types) and where
//! artifacts go. Paths in it are relative to the artifacts root, so a copied
//! artifacts directory is still whole.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::case::cmp::Cmp;
use crate::case::spec::{Count, ProbeSpec, Window};
use crate::evidence::frames::WindowFrames;
use crate::evidence::outcome::Outcome;

use crate::sys::counters::Counters;
use crate::sys::link::Neighbour;

/// `$NETREPRO_ARTIFACTS`, else `<target dir>/netrepro` when running from a
/// cargo build (`$CARGO_TARGET_DIR`, or the `target/` this executable is
/// in), else the caller's own state directory: `$XDG_STATE_HOME/netrepro`,
/// `~/.local/state/netrepro` — never the working directory, which may be
/// `/tmp` or anyone's. Whichever it is, [`crate::evidence::store::Store`]
/// refuses it unless it is the caller's and writable by no one else.
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
    state_home().join("netrepro")
}

/// `$XDG_STATE_HOME` when absolute (the XDG rule), else `<home>/.local/state`
/// with `$HOME` or, without it, the user database's home of the caller.
fn state_home() -> PathBuf {
    let absolute = |v: Option<std::ffi::OsString>| v.map(PathBuf::from).filter(|p| p.is_absolute());
    if let Some(p) = absolute(std::env::var_os("XDG_STATE_HOME")) {
        return p;
    }
    let home = absolute(std::env::var_os("HOME"))
        .or_else(|| nix::unistd::User::from_uid(nix::unistd::geteuid()).ok().flatten().map(|u| u.dir))
        .unwrap_or_else(|| PathBuf::from("/root"));
    home.join(".local/state")
}

/// One expectation of one probe: what, expected vs observed, the verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct CheckRecord {
    /// The expectation as the case names it (`counter host: Ip.InAddrErrors`).
    pub what: String,
    pub expected: Expected,
    pub observed: Observed,
    pub ok: bool,
    /// The kernel cannot show this (a drop reason on a kernel without them):
    /// neither a pass nor a fail, and said so in every report.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub unavailable: bool,
}

/// What a check expects, typed; shown as the case wrote it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expected {
    /// A count (`3`, `>=1`) of replies, frames, bytes or entries.
    Count { cmp: Cmp, n: i64 },
    /// A change over the probe: counters, rule packets, qdisc drops.
    Delta { cmp: Cmp, n: i64 },
    /// A word: `ok`, an errno name, a qdisc kind, a neighbour state.
    Word { word: String },
    /// A number read back as it is (mtu, tx_queue_len, direct_qlen).
    Exact { value: u64 },
    /// A set of words, order ignored (ICMP errors `kind from address`).
    Set { items: Vec<String> },
    /// A time window, ms, and what it was derived from on this kernel.
    Window { window: Window, from: Option<String> },
}

/// What a probe's window showed for one check, typed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Observed {
    Count {
        n: i64,
    },
    Delta {
        n: i64,
    },
    Word {
        word: String,
    },
    Exact {
        value: u64,
    },
    Set {
        items: Vec<String>,
    },
    /// A duration, ms.
    Ms {
        ms: f64,
    },
    /// A connect's result and how long it took, ms.
    Result {
        word: String,
        after_ms: f64,
    },
    /// Kernel drops counted (packets), with where they were freed, and the
    /// matching drops left out as not the incident's (the probe's own,
    /// background), each with its label.
    Drops {
        n: u64,
        places: Vec<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        not_counted: Vec<String>,
    },
    /// Nothing to compare, and why (a counter this kernel lacks, a rule not
    /// there, a drop reason the kernel cannot show).
    Missing {
        why: String,
    },
}

impl Expected {
    pub fn count(c: Count) -> Expected {
        Expected::Count { cmp: c.cmp, n: c.n }
    }
    pub fn delta(c: Count) -> Expected {
        Expected::Delta { cmp: c.cmp, n: c.n }
    }
    pub fn word(w: impl Into<String>) -> Expected {
        Expected::Word { word: w.into() }
    }
}

impl Observed {
    pub fn word(w: impl Into<String>) -> Observed {
        Observed::Word { word: w.into() }
    }
    pub fn missing(why: impl Into<String>) -> Observed {
        Observed::Missing { why: why.into() }
    }
}

impl std::fmt::Display for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expected::Count { cmp, n } => Count { cmp: *cmp, n: *n }.fmt(f),
            Expected::Delta { cmp, n } => write!(f, "delta {}", Count { cmp: *cmp, n: *n }),
            Expected::Word { word } => f.write_str(word),
            Expected::Exact { value } => write!(f, "{value}"),
            Expected::Set { items } => write!(f, "{items:?}"),
            Expected::Window { window, from: None } => window.fmt(f),
            Expected::Window { window, from: Some(from) } => write!(f, "{window} (from {from})"),
        }
    }
}

impl std::fmt::Display for Observed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Observed::Count { n } => write!(f, "{n}"),
            Observed::Delta { n } => write!(f, "{n:+}"),
            Observed::Word { word } => f.write_str(word),
            Observed::Exact { value } => write!(f, "{value}"),
            Observed::Set { items } => write!(f, "{items:?}"),
            Observed::Ms { ms } => write!(f, "{ms} ms"),
            Observed::Result { word, after_ms } => write!(f, "{word} after {after_ms} ms"),
            Observed::Drops { n, places, not_counted } => {
                write!(f, "{n}")?;
                if !places.is_empty() {
                    write!(f, " ({})", places.join(", "))?;
                }
                for x in not_counted {
                    write!(f, "; not counted: {x}")?;
                }
                Ok(())
            }
            Observed::Missing { why } => f.write_str(why),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct ProbeRecord {
    /// The probe's name in the case file.
    pub name: String,
    /// The probe as the case wrote it (defaults filled in).
    pub spec: ProbeSpec,
    pub outcome: Outcome,
    /// Probe window, ns since the epoch (matches pcap timestamps).
    pub window_ns: (u64, u64),
    /// Counter deltas over the window, per namespace (only what moved).
    pub counter_deltas: BTreeMap<String, Counters>,
    /// Counters the case expects that this kernel does not have, per namespace.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counters_absent: BTreeMap<String, Vec<String>>,
    /// Frames per captured interface (`ns/dev`) in the window, typed, each
    /// with its number in the phase's pcapng.
    pub packets: BTreeMap<String, WindowFrames>,
    /// Frames in the window that match each `packets` expectation, by the
    /// key the case wrote (`ns/dev: matcher`), counted over every frame the
    /// capture saw (recorded or not).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub packet_counts: BTreeMap<String, i64>,
    pub neighbours: BTreeMap<String, Vec<Neighbour>>,
    /// The links of every namespace as they were at the probe (after the
    /// phase's steps): what a step made, moved, deleted or changed shows here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topology: Option<crate::evidence::topo::TopoView>,
    /// Route tables after the probe (not `local`), in namespaces `routes` names.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<String, Vec<crate::sys::routes::Route>>,
    /// Root qdiscs read back after the probe, for interfaces the checks name.
    pub qdiscs: BTreeMap<String, crate::sys::tc::QdiscInfo>,
    /// Qdisc drops during the probe, same interfaces.
    pub qdisc_drops: BTreeMap<String, i64>,
    /// Qdisc overlimits and requeues during the probe, same qdiscs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub qdisc_deltas: BTreeMap<String, BTreeMap<String, i64>>,
    /// Link settings read back after the probe, for interfaces the checks name.
    pub links: BTreeMap<String, BTreeMap<String, u64>>,
    /// iptables packet-counter deltas over the probe, in namespaces the
    /// checks name (`ns: rule`).
    pub rules: BTreeMap<String, i64>,
    /// `conntrack -L` after the probe, in namespaces the checks name.
    pub conntrack: BTreeMap<String, Vec<String>>,
    /// Values the probe defined for matchers (`injected_ack`, ...).
    pub vars: BTreeMap<String, u64>,
    /// An `elapsed_ms` window computed from the kernel's parameters in
    /// force, with the parameters it came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub derived_window: Option<DerivedWindow>,
    /// The kernel's drops in the case's namespaces during the window.
    #[serde(default)]
    pub drops: Vec<crate::sys::drops::Drop>,
    /// Drops the kernel did not let the monitor count during the window
    /// (any namespace): drop checks short by no more are not evidence.
    #[serde(default)]
    pub drops_missed: u64,
    pub checks: Vec<CheckRecord>,
    /// One line on why the probe's outcome differs from the baseline's
    /// (fails, succeeds where the baseline's failed, or is much slower),
    /// from the evidence above ([`crate::verdict::explain`]); none when it
    /// does what the baseline did, and in the baseline unless a check failed.
    #[serde(default)]
    pub why: Option<String>,
}

/// `elapsed_ms = { neigh_failure = "ns/dev" }` resolved: how long the kernel
/// takes to give up on a neighbour on that interface, from its own sysctls
/// (`neigh_timer_handler`: `mcast_solicit + app_solicit` probes,
/// `retrans_time_ms` apart).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct DerivedWindow {
    /// The interface whose `net.ipv4.neigh.<dev>.*` were read.
    pub interface: crate::case::spec::Iface,
    /// Multicast probes (packets).
    pub mcast_solicit: f64,
    /// Probes to the userspace ARP daemon (packets).
    pub app_solicit: f64,
    /// Time between probes, ms.
    pub retrans_time_ms: f64,
    /// `(mcast_solicit + app_solicit) × retrans_time_ms`, ms.
    pub expected_ms: f64,
    /// The window checked: one jiffy at HZ=100 early per probe, `tolerance_ms` late.
    pub window: Window,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct StepRecord {
    pub step: String,
    /// `replayed` for steps of an earlier phase replayed on this topology.
    pub origin: String,
    pub ok: bool,
    pub output: String,
    pub ms: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct Timings {
    pub setup_ms: f64,
    pub steps_ms: f64,
    pub probes_ms: f64,
    pub teardown_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct PhaseRecord {
    pub name: String,
    /// The kernel range of the variant chosen for this kernel, if gated.
    pub kernel_range: Option<String>,
    pub upstream: Option<String>,
    pub note: Option<String>,
    pub steps: Vec<StepRecord>,
    pub probes: Vec<ProbeRecord>,
    /// The phase's actors: what each did, how it ended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actors: Vec<ActorRecord>,
    /// `expect_actors`: each actor counter against its expectation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub actor_checks: Vec<CheckRecord>,
    /// Windows with no probe: the whole phase's (`expect_phase`, named
    /// `phase`) and each named span's (`[[phase.span]]`), in the order
    /// they closed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<WindowRecord>,
    /// The phase's capture, every interface in one file
    /// ([`crate::evidence::frames::pcapng_path`]), relative to the artifacts
    /// root; none without captures.
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
            actors: vec![],
            actor_checks: vec![],
            windows: vec![],
            pcapng: None,
            timings: Timings::default(),
            passed: false,
            error: None,
        }
    }
}

/// A window with no probe — the whole phase (`phase`) or a named span of
/// its steps — what the kernel did in it, and its checks.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct WindowRecord {
    /// `phase` (the whole phase: before its actors and steps to after its
    /// last probe and its actors' end) or the span's name.
    pub name: String,
    /// The steps it wraps, as written (a span's; none listed for the phase).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<String>,
    /// ns since the epoch (pcap timestamps).
    pub window_ns: (u64, u64),
    /// Counter deltas over the window, per namespace (only what moved).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub counter_deltas: BTreeMap<String, Counters>,
    /// Frames in the window matching each `packets` key, over every frame
    /// captured.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub packet_counts: BTreeMap<String, i64>,
    /// The kernel's drops in the case's namespaces during the window,
    /// labelled (no probe: only the harness's own and background are not
    /// the incident's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub drops: Vec<crate::sys::drops::Drop>,
    #[serde(default)]
    pub drops_missed: u64,
    /// Rule counter deltas over the window (`ns: rule`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub rules: BTreeMap<String, i64>,
    /// `conntrack -L` at the window's end, in namespaces the checks name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub conntrack: BTreeMap<String, Vec<String>>,
    pub checks: Vec<CheckRecord>,
    /// Its unmet expectations and the incident's drops and rules in it
    /// ([`crate::verdict::explain::why_window`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl WindowRecord {
    /// Its observations and checks, from a probe-less [`ProbeRecord`] the
    /// witnesses wrote (its spec and outcome are not kept).
    pub fn of(name: &str, steps: Vec<String>, rec: ProbeRecord) -> WindowRecord {
        WindowRecord {
            name: name.into(),
            steps,
            window_ns: rec.window_ns,
            counter_deltas: rec.counter_deltas,
            packet_counts: rec.packet_counts,
            drops: rec.drops,
            drops_missed: rec.drops_missed,
            rules: rec.rules,
            conntrack: rec.conntrack,
            checks: rec.checks,
            why: None,
        }
    }
}

/// One actor of a phase: what it is, when it was ready, what it counted,
/// how it ended, what it printed.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct ActorRecord {
    pub name: String,
    pub ns: String,
    /// `udp-echo`, `udp-sink`, `dns`, `tcp-server`, `ra` or `command`.
    pub kind: String,
    /// The command line, for `command` actors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// From start to ready, ms.
    pub ready_ms: Option<f64>,
    /// When it was started and when it had ended (stopped, killed and
    /// reaped, or found ended), ns since the epoch (pcap timestamps).
    #[serde(default)]
    pub started_ns: u64,
    #[serde(default)]
    pub ended_ns: u64,
    pub counters: BTreeMap<String, i64>,
    /// How it ended: `stopped at phase end`, `exited 0`, `exited 0; what it
    /// left running killed at phase end (with its PID namespace)`, `killed
    /// at phase end (SIGKILL to its PID namespace's init)`.
    pub end: String,
    /// The first 64 KiB a command printed on each stream, then `[… N bytes cut]`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stdout: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub stderr: String,
    /// Why it never got ready, or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The version of the `evidence.json` format this build writes and reads.
/// Bump it with any change a reader of the old format would misread.
pub const FORMAT_VERSION: u32 = 2;

/// One case run on one kernel: `<root>/<case>/evidence.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, JsonSchema)]
pub struct CaseRecord {
    /// [`FORMAT_VERSION`] of the writer.
    pub format_version: u32,
    pub id: String,
    pub title: String,
    pub urls: Vec<String>,
    /// The case file, relative to the artifacts root (`../../cases/x.toml`).
    pub case_file: PathBuf,
    pub fixture: String,
    /// `uname -r` of the kernel the case ran on.
    pub kernel_release: String,
    /// Wall clock at the start, ms since the Unix epoch.
    pub started_unix_ms: u64,
    /// The whole run, ms.
    pub duration_ms: f64,
    /// `pass` or `fail`.
    pub verdict: String,
    /// What the kernel's drop monitor could see on this run.
    #[serde(default)]
    pub drop_monitor: String,
    /// The fixture as built, for drawing.
    #[serde(default)]
    pub topology: crate::evidence::topo::TopoView,
    pub phases: Vec<PhaseRecord>,
}

impl ProbeRecord {
    /// `ping`, `connect` or `stream`.
    pub fn kind(&self) -> &'static str {
        self.outcome.kind()
    }
}

/// `path` relative to the artifacts `root` (both made absolute first, so
/// `a/../b` forms do not leak into the record).
pub fn relative_to_root(root: &Path, path: &Path) -> PathBuf {
    let abs = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| std::path::absolute(p).unwrap_or(p.into()));
    pathdiff::diff_paths(abs(path), abs(root)).unwrap_or_else(|| path.to_path_buf())
}

/// The JSON Schema of `evidence.json`, as shipped in `docs/evidence.schema.json`.
pub fn schema() -> schemars::Schema {
    schemars::schema_for!(CaseRecord)
}

impl CaseRecord {
    /// Reads `path`; errors name the file and, for a record of another
    /// format version, say which.
    pub fn read(path: &Path) -> anyhow::Result<CaseRecord> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let v: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        match v.get("format_version").and_then(|v| v.as_u64()) {
            Some(n) if n == u64::from(FORMAT_VERSION) => {}
            Some(n) => anyhow::bail!("{}: evidence format {n}, this netrepro reads {FORMAT_VERSION}", path.display()),
            None => anyhow::bail!(
                "{}: no format_version (written before evidence format {FORMAT_VERSION}); run the case again",
                path.display()
            ),
        }
        serde_json::from_value(v).with_context(|| format!("{}: not an evidence record", path.display()))
    }

    pub fn passed(&self) -> bool {
        self.verdict == "pass"
    }

    /// `phase probe: why` for every probe with a why-line: in a passing run,
    /// those whose outcome differs from the baseline's.
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
            for c in ph.windows.iter().flat_map(|w| &w.checks).chain(&ph.actor_checks).filter(|c| !c.ok) {
                s += &format!("  {}: expected {}, observed {}\n", c.what, c.expected, c.observed);
            }
            for a in ph.actors.iter().filter(|a| a.error.is_some() || ph.actor_checks.iter().any(|c| !c.ok)) {
                s += &format!("    actor {} ({} in {}): {}; counters {:?}", a.name, a.kind, a.ns, a.end, a.counters);
                if let Some(e) = &a.error {
                    s += &format!("; error: {e}");
                }
                s += "\n";
                for (stream, text) in [("stdout", &a.stdout), ("stderr", &a.stderr)] {
                    if !text.trim().is_empty() {
                        s += &format!("      {stream}: {}\n", text.trim().replace('\n', "\n        "));
                    }
                }
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
                    s += &format!("    outcome: {}\n", serde_json::to_string(&p.outcome).unwrap_or_default());
                    for (ns, d) in &p.counter_deltas {
                        if !d.is_empty() {
                            let shown: Vec<String> = d.iter().take(12).map(|(k, v)| format!("{k} {v:+}")).collect();
                            s += &format!("    counters moved in {ns}: {}\n", shown.join(", "));
                        }
                    }
                    // The incident's first; the rest say whose they are.
                    let mut drops: Vec<&crate::sys::drops::Drop> = p.drops.iter().collect();
                    drops.sort_by_key(|d| d.origin);
                    for d in drops {
                        let whose = match d.origin {
                            crate::sys::drops::Origin::Incident => String::new(),
                            o => format!(" [{}: {}]", o.word(), d.origin_why),
                        };
                        s += &format!(
                            "    kernel drop in {}{}: {} × {} {} in {}{whose}\n",
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
                // Recorded relative to the artifacts root, where the case's
                // directory (the evidence file's) sits.
                let root = evidence_path.parent().and_then(Path::parent).unwrap_or(Path::new("."));
                s += &format!("  pcapng: {}\n", root.join(pc).display());
            }
        }
        s += &format!("\nevidence: {}\n", evidence_path.display());
        s
    }
}

impl ProbeRecord {
    /// A probe that ran from `window_ns.0` to `window_ns.1` (ns since the
    /// epoch), with nothing yet observed around it.
    pub fn new(name: &str, spec: ProbeSpec, outcome: Outcome, window_ns: (u64, u64)) -> ProbeRecord {
        ProbeRecord {
            name: name.into(),
            spec,
            outcome,
            window_ns,
            counter_deltas: BTreeMap::new(),
            counters_absent: BTreeMap::new(),
            packets: BTreeMap::new(),
            packet_counts: BTreeMap::new(),
            neighbours: BTreeMap::new(),
            topology: None,
            routes: BTreeMap::new(),
            qdiscs: BTreeMap::new(),
            qdisc_drops: BTreeMap::new(),
            qdisc_deltas: BTreeMap::new(),
            links: BTreeMap::new(),
            rules: BTreeMap::new(),
            conntrack: BTreeMap::new(),
            vars: BTreeMap::new(),
            derived_window: None,
            drops: vec![],
            drops_missed: 0,
            checks: vec![],
            why: None,
        }
    }
}

#[cfg(test)]
impl ProbeRecord {
    /// A record with nothing observed yet, from the JSON a case file and a
    /// probe would give (`kind` is added to both): for tests of the readers.
    pub fn for_test(kind: &str, mut spec: serde_json::Value, mut outcome: serde_json::Value) -> ProbeRecord {
        spec["kind"] = kind.into();
        outcome["kind"] = kind.into();
        ProbeRecord::new(
            kind,
            serde_json::from_value(spec).expect("a probe spec"),
            serde_json::from_value(outcome).expect("a probe outcome"),
            (0, 0),
        )
    }
}
