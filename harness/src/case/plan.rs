//! Case file + fixture → a validated plan. Everything a run needs is checked
//! here, before any namespace exists: unknown keys, wrong types, namespaces,
//! interfaces and probes that do not exist, expectations that do not fit the
//! probe. Errors name the file, the line and the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::case::expect::{
    self, ConntrackExp, CounterExp, DropExp, LinkExp, NeighExp, OutcomeExp, PacketExp, QdiscExp, RuleExp,
};
use crate::case::ifaces::Ifaces;
use crate::case::kernel::{Range, Version};
use crate::case::object::{read_relative, Ruleset, RulesetKind};
use crate::case::spec::limits::CASE_MS_MAX;
pub use crate::case::spec::Iface;
use crate::case::spec::{parse_iface, CaseFile, Expect, FixtureFile, PhaseSpec, ProbeSpec, Step};

#[derive(Debug, Clone, PartialEq)]
pub struct LoadError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub msg: String,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file.display(), self.msg),
            None => write!(f, "{}: {}", self.file.display(), self.msg),
        }
    }
}

impl std::error::Error for LoadError {}

/// Source text with the means to turn byte offsets into line numbers.
struct Src<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Src<'_> {
    fn line(&self, offset: usize) -> usize {
        self.text[..offset.min(self.text.len())].bytes().filter(|&b| b == b'\n').count() + 1
    }
    fn err<T>(&self, span: Option<std::ops::Range<usize>>, msg: impl Into<String>) -> Result<T, LoadError> {
        Err(LoadError { file: self.file.to_path_buf(), line: span.map(|s| self.line(s.start)), msg: msg.into() })
    }
    fn at<T, U>(&self, s: &Spanned<U>, msg: impl Into<String>) -> Result<T, LoadError> {
        Err(self.error_at(s, msg))
    }
    fn error_at<U>(&self, s: &Spanned<U>, msg: impl Into<String>) -> LoadError {
        LoadError { file: self.file.to_path_buf(), line: Some(self.line(s.span().start)), msg: msg.into() }
    }
    fn parse<T: DeserializeOwned>(&self) -> Result<T, LoadError> {
        toml::from_str(self.text).or_else(|e| self.err(e.span(), e.message().trim().to_string()))
    }
}

/// One probe's run in one phase and everything it must show, typed
/// ([`crate::case::expect`]): nothing here is parsed again.
#[derive(Debug, Clone)]
pub struct Check {
    pub probe: String,
    pub outcome: OutcomeExp,
    pub counters: Vec<CounterExp>,
    pub packets: Vec<PacketExp>,
    pub neighbours: Vec<NeighExp>,
    pub routes: Vec<expect::RouteExp>,
    pub qdiscs: Vec<QdiscExp>,
    pub links: Vec<LinkExp>,
    pub rules: Vec<RuleExp>,
    pub conntrack: Vec<ConntrackExp>,
    pub drops: Vec<DropExp>,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub kernel: Option<Range>,
    pub upstream: Option<String>,
    /// `unchecked`: this variant's kernels were never run; why nothing is
    /// claimed there (the case skips on them).
    pub unchecked: Option<String>,
    pub note: Option<String>,
    pub after: Option<String>,
    pub steps: Vec<Step>,
    pub checks: Vec<Check>,
    /// The interfaces when the phase's probes run (after its steps).
    pub ifaces: Ifaces,
    /// Actors by name, in file order.
    pub actors: Vec<(String, crate::case::spec::ActorSpec)>,
    /// `"name: counter" = count` over the phase.
    pub actor_checks: Vec<crate::case::expect::ActorExp>,
    /// `[phase.expect_phase]`: over the whole phase (a check without a
    /// probe, named `phase`).
    pub whole: Option<Check>,
    /// `[[phase.span]]`: named spans of steps after the phase's own, each
    /// with a check over its window.
    pub spans: Vec<Span>,
}

/// A named span of steps and the check over its window.
#[derive(Debug, Clone)]
pub struct Span {
    pub name: String,
    pub steps: Vec<Step>,
    pub check: Check,
}

impl Phase {
    /// The phase's own steps, then its spans', in the order they run (and
    /// are replayed by a phase `after` it).
    pub fn all_steps(&self) -> Vec<Step> {
        self.steps.iter().chain(self.spans.iter().flat_map(|s| &s.steps)).cloned().collect()
    }
}

impl Check {
    /// Whether it expects nothing at all.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
            && self.packets.is_empty()
            && self.neighbours.is_empty()
            && self.routes.is_empty()
            && self.qdiscs.is_empty()
            && self.links.is_empty()
            && self.rules.is_empty()
            && self.conntrack.is_empty()
            && self.drops.is_empty()
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub path: PathBuf,
    pub case: CaseFile,
    pub fixture_path: PathBuf,
    pub fixture: FixtureFile,
    pub captures: Vec<Iface>,
    pub setup: Vec<Step>,
    pub probes: IndexMap<String, ProbeSpec>,
    pub phases: Vec<Phase>,
}

impl Plan {
    pub fn id(&self) -> &str {
        self.case.id.get_ref()
    }

    /// The reports the case reproduces.
    pub fn urls(&self) -> Vec<String> {
        self.case.urls.get_ref().iter().map(|u| u.get_ref().clone()).collect()
    }

    /// The global settings the case changes, in the order it first does.
    pub fn globals(&self) -> Vec<&str> {
        let mut keys = Vec::new();
        for s in self.setup.iter().chain(self.phases.iter().flat_map(|p| &p.steps)) {
            if let Step::GlobalSysctl { key, .. } = s {
                if !keys.contains(&key.as_str()) {
                    keys.push(key.as_str());
                }
            }
        }
        keys
    }

    /// The phases that apply on kernel `v`, in order: for each phase name
    /// the one variant whose range holds `v`.
    pub fn phases_for(&self, v: Version) -> Result<Vec<&Phase>, String> {
        let mut names: Vec<&str> = Vec::new();
        for p in &self.phases {
            if !names.contains(&p.name.as_str()) {
                names.push(&p.name);
            }
        }
        names
            .into_iter()
            .map(|n| {
                let variants: Vec<&Phase> = self.phases.iter().filter(|p| p.name == n).collect();
                let fits: Vec<&&Phase> =
                    variants.iter().filter(|p| p.kernel.as_ref().is_none_or(|r| r.contains(v))).collect();
                match fits.as_slice() {
                    [one] => Ok(**one),
                    [] => Err(format!(
                        "phase {n:?} has no variant for kernel {v}; ranges given: {}",
                        variants
                            .iter()
                            .filter_map(|p| p.kernel.as_ref().map(|r| r.text()))
                            .collect::<Vec<_>>()
                            .join(" | ")
                    )),
                    _ => Err(format!("phase {n:?} has {} variants that all hold on kernel {v}", fits.len())),
                }
            })
            .collect()
    }

    /// Why the case claims nothing on kernel `v`: a phase whose variant for
    /// `v` is `unchecked` (that range was never run). `None` when every
    /// phase has a checked variant there, or none at all (a run error).
    pub fn unchecked_on(&self, v: Version) -> Option<String> {
        let chosen = self.phases_for(v).ok()?;
        let p = chosen.into_iter().find(|p| p.unchecked.is_some())?;
        Some(format!(
            "phase {} is not checked on kernel {v} (its variant {}): {}",
            p.name,
            p.kernel.as_ref().map_or("", |r| r.text()),
            p.unchecked.as_deref().unwrap_or_default()
        ))
    }

    /// Steps to replay before `phase`'s own, following its `after` chain.
    /// The loader refuses circles; a plan made otherwise gets an error
    /// here, never an endless chain.
    pub fn replay_for(&self, phase: &Phase, v: Version) -> Result<Vec<Step>, String> {
        let chosen = self.phases_for(v)?;
        let mut chain = Vec::new();
        let mut walked = vec![phase.name.as_str()];
        let mut cur = phase.after.as_deref();
        while let Some(name) = cur {
            if walked.contains(&name) {
                return Err(format!(
                    "phase {:?}: `after` leads around a circle: {} → {name}",
                    phase.name,
                    walked.join(" → ")
                ));
            }
            walked.push(name);
            let p = chosen.iter().find(|p| p.name == name).ok_or_else(|| format!("phase {name:?} not found"))?;
            chain.push(p.all_steps());
            cur = p.after.as_deref();
        }
        Ok(chain.into_iter().rev().flatten().collect())
    }

    /// The longest the case's own work may take on any kernel, in ms: for
    /// every phase variant its setup, replayed and own steps
    /// ([`Step::worst_case_ms`]) and the probes it runs
    /// ([`ProbeSpec::worst_case_ms`]). Building and tearing down topologies
    /// and the harness's own reads come on top. The loader refuses a case
    /// above [`CASE_MS_MAX`].
    pub fn worst_case_ms(&self) -> u64 {
        self.worst_case_by_phase().into_iter().fold(0, u64::saturating_add)
    }

    /// [`Plan::worst_case_ms`] per phase variant, in file order; `u64::MAX`
    /// for every phase if `after` leads around a circle.
    fn worst_case_by_phase(&self) -> Vec<u64> {
        let Ok(order) = after_order(&self.phases) else {
            return vec![u64::MAX; self.phases.len()];
        };
        let steps_ms = |steps: &[Step]| steps.iter().map(Step::worst_case_ms).fold(0, u64::saturating_add);
        // The costliest replay behind each name, over its variants; `order`
        // puts every name after the ones it replays.
        let mut replay: BTreeMap<&str, u64> = BTreeMap::new();
        let behind = |replay: &BTreeMap<&str, u64>, p: &Phase| {
            p.after.as_deref().and_then(|a| replay.get(a)).copied().unwrap_or(0)
        };
        for name in order {
            let worst = self
                .phases
                .iter()
                .filter(|p| p.name == name)
                .map(|p| steps_ms(&p.all_steps()).saturating_add(behind(&replay, p)))
                .max();
            replay.insert(name, worst.unwrap_or(0));
        }
        let setup = steps_ms(&self.setup);
        self.phases
            .iter()
            .map(|p| {
                let probes = p.checks.iter().filter_map(|c| self.probes.get(&c.probe)).map(ProbeSpec::worst_case_ms);
                [setup, behind(&replay, p), steps_ms(&p.all_steps())]
                    .into_iter()
                    .chain(probes)
                    .fold(0, u64::saturating_add)
            })
            .collect()
    }
}

pub fn load_fixture(path: &Path) -> Result<FixtureFile, LoadError> {
    let text = read_text(path)?;
    let src = Src { file: path, text: &text };
    let mut f: FixtureFile = src.parse()?;
    validate_fixture(&src, &f)?;
    read_rulesets(&src, &mut f)?;
    Ok(f)
}

/// Reads each `[[firewall]]`'s rulesets (files relative to the fixture) into
/// typed [`Ruleset`]s, in the order they load.
fn read_rulesets(src: &Src, f: &mut FixtureFile) -> Result<(), LoadError> {
    for fw in &mut f.firewall {
        let ns = fw.ns.get_ref().clone();
        let mut sets = Vec::new();
        if let Some(rule) = fw.iptables.iter().find(|r| shlex::split(r).is_none()) {
            return src.at(&fw.ns, format!("firewall: iptables line {rule:?} has an unclosed quote (a line is split into words as a shell would)"));
        }
        if fw.backend.is_some() && fw.iptables_restore.is_none() {
            return src.at(&fw.ns, "firewall: `backend` says where `iptables_restore` goes: write iptables_restore = \"<file>\" or drop backend");
        }
        if let Some(file) = &fw.iptables_restore {
            let text =
                read_relative(src.file, file.get_ref()).or_else(|e| src.at(file, format!("iptables_restore {e}")))?;
            sets.push(Ruleset {
                ns: ns.clone(),
                kind: RulesetKind::IptablesRestore { backend: fw.backend, noflush: true },
                origin: file.get_ref().clone(),
                text,
            });
        }
        if let Some(file) = &fw.nft_file {
            let text = read_relative(src.file, file.get_ref()).or_else(|e| src.at(file, format!("nft_file {e}")))?;
            sets.push(Ruleset { ns: ns.clone(), kind: RulesetKind::Nft, origin: file.get_ref().clone(), text });
        }
        if let Some(text) = &fw.nft {
            sets.push(Ruleset { ns: ns.clone(), kind: RulesetKind::Nft, origin: "inline".into(), text: text.clone() });
        }
        fw.rulesets = sets;
    }
    Ok(())
}

fn validate_fixture(src: &Src, f: &FixtureFile) -> Result<(), LoadError> {
    let mut names = BTreeSet::new();
    for n in &f.namespaces {
        let name = n.name.get_ref();
        crate::case::syntax::check_ns_name(name).or_else(|e| src.at(&n.name, e))?;
        if !names.insert(name.as_str()) {
            return src.at(&n.name, format!("namespace {name:?} declared twice: give each [[namespace]] its own name"));
        }
        for (k, v) in &n.sysctls {
            if crate::case::syntax::is_global(k) {
                return src.at(
                    v,
                    format!("namespace {name:?}: sysctl {k} is global, not per namespace: a fixture may not change the host; set it in a case with `global-sysctl`"),
                );
            }
            crate::case::syntax::path_of(k).or_else(|e| src.at(v, format!("namespace {name:?}: {e}")))?;
        }
    }
    let ns_ok = |s: &Spanned<String>| -> Result<(), LoadError> {
        if names.contains(s.get_ref().as_str()) {
            Ok(())
        } else {
            src.at(
                s,
                format!(
                    "no namespace {:?} (declared: {})",
                    s.get_ref(),
                    names.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        }
    };
    let mut devs: BTreeSet<(String, String)> = BTreeSet::new();
    let mut add_dev = |ns: &Spanned<String>, name: &str| -> Result<(), LoadError> {
        crate::case::syntax::check_ifname(name).or_else(|e| src.at(ns, e))?;
        if !devs.insert((ns.get_ref().clone(), name.to_string())) {
            return src.at(ns, format!("interface {name:?} declared twice in namespace {:?}", ns.get_ref()));
        }
        Ok(())
    };
    for b in &f.bridges {
        ns_ok(&b.ns)?;
        add_dev(&b.ns, &b.name)?;
    }
    for v in &f.veths {
        for end in [&v.a, &v.b] {
            ns_ok(&end.ns)?;
            add_dev(&end.ns, &end.name)?;
        }
    }
    for v in &f.veths {
        for end in [&v.a, &v.b] {
            if let Some(m) = &end.master {
                if !f.bridges.iter().any(|b| b.name == *m.get_ref() && b.ns.get_ref() == end.ns.get_ref()) {
                    return src.at(
                        m,
                        format!("master {:?}: no bridge of that name in namespace {:?}", m.get_ref(), end.ns.get_ref()),
                    );
                }
            }
        }
    }
    // [[link]] in order, each checked against what exists before it.
    let mut now = Ifaces::of_fixture(&FixtureFile { links: Vec::new(), ..f.clone() });
    for l in &f.links {
        now.add_link(l.get_ref()).or_else(|e| src.at(l, e))?;
    }
    for a in &f.addresses {
        let x = a.get_ref();
        if !now.has(&x.ns, &x.dev) {
            return src.at(
                a,
                format!(
                    "address {}: namespace {:?} has no interface {:?} (it has {})",
                    x.address,
                    x.ns,
                    x.dev,
                    now.list(&x.ns)
                ),
            );
        }
    }
    for n in &f.neighbours {
        let x = n.get_ref();
        if !now.has(&x.ns, &x.dev) {
            return src.at(
                n,
                format!(
                    "neighbour {}: namespace {:?} has no interface {:?} (it has {})",
                    x.address,
                    x.ns,
                    x.dev,
                    now.list(&x.ns)
                ),
            );
        }
    }
    for e in &f.fdb {
        let x = e.get_ref();
        if !now.has(&x.ns, &x.dev) {
            return src.at(
                e,
                format!(
                    "fdb {}: namespace {:?} has no interface {:?} (it has {})",
                    x.lladdr,
                    x.ns,
                    x.dev,
                    now.list(&x.ns)
                ),
            );
        }
    }
    for r in &f.routes {
        ns_ok(&r.ns)?;
        r.obj().check().or_else(|e| src.at(&r.to, e))?;
        if let Some(d) = &r.dev {
            if d != "lo" && !now.has(r.ns.get_ref(), d) {
                return src.at(
                    &r.to,
                    format!(
                        "route dev {d:?}: no interface of that name in namespace {:?} (it has {})",
                        r.ns.get_ref(),
                        now.list(r.ns.get_ref())
                    ),
                );
            }
        }
    }
    for r in &f.rules {
        let x = r.get_ref();
        if !names.contains(x.ns.as_str()) {
            return src.at(r, format!("rule: no namespace {:?}", x.ns));
        }
        x.check().or_else(|e| src.at(r, e))?;
    }
    for fw in &f.firewall {
        ns_ok(&fw.ns)?;
    }
    Ok(())
}

/// A case or fixture file's text; bytes that are not UTF-8 are refused at
/// their line.
fn read_text(path: &Path) -> Result<String, LoadError> {
    let fail = |line, msg| LoadError { file: path.into(), line, msg };
    let bytes = std::fs::read(path).map_err(|e| fail(None, format!("cannot read: {e}")))?;
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let line = e.as_bytes()[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        fail(Some(line), "not UTF-8 text: write the file in UTF-8".into())
    })
}

/// The interfaces a fixture creates, per namespace (plus `lo` everywhere).
pub fn fixture_devices(f: &FixtureFile) -> BTreeMap<String, BTreeSet<String>> {
    Ifaces::of_fixture(f).devs
}

/// Every interface that exists at some point of some phase, by a first walk
/// of the steps (a step that cannot apply is left for the real walk to
/// refuse at its line).
fn walk_phases(after_setup: &Ifaces, phases: &[Spanned<PhaseSpec>]) -> Ifaces {
    let mut ever = after_setup.clone();
    let mut at_end: BTreeMap<&str, Ifaces> = BTreeMap::new();
    for ph in phases {
        let spec = ph.get_ref();
        let start = spec.after.as_ref().and_then(|a| at_end.get(a.get_ref().as_str()));
        let mut now = start.cloned().unwrap_or_else(|| after_setup.clone());
        for s in &spec.steps {
            let _ = now.apply(s.get_ref());
            ever.union(&now);
        }
        at_end.entry(spec.name.as_str()).or_insert_with(|| now.clone()).union(&now);
    }
    ever
}

/// Loads `case_path`, its fixture from `fixtures_dir`, and validates both.
pub fn load(case_path: &Path, fixtures_dir: &Path) -> Result<Plan, LoadError> {
    let text = read_text(case_path)?;
    let src = Src { file: case_path, text: &text };
    let case: CaseFile = src.parse()?;

    let stem = case_path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    let id = case.id.get_ref();
    if id != stem {
        return src
            .at(&case.id, format!("id {id:?} must match the file name: write id = {stem:?} (ids are stable handles)"));
    }
    if let Err(e) = crate::case::syntax::check_id(id) {
        return src.at(&case.id, format!("{e} (and rename the file)"));
    }
    if case.urls.get_ref().is_empty() {
        return src.at(&case.urls, "urls: give at least one link to the report");
    }
    for u in case.urls.get_ref() {
        crate::case::syntax::check_url(u.get_ref()).or_else(|e| src.at(u, e))?;
    }
    if let Some(bad) = case
        .requires
        .iter()
        .find(|r| r.strip_prefix("cpus:").is_some_and(|n| !n.parse::<usize>().is_ok_and(|n| (1..=4096).contains(&n))))
    {
        return src.at(&case.id, format!("requires {bad:?}: write cpus:N with N a number of CPUs, 1 to 4096"));
    }
    let fixture_path = fixture_in(&src, &case.fixture, fixtures_dir)?;
    let fixture = load_fixture(&fixture_path)?;
    let devices = fixture_devices(&fixture);
    let ns_list = devices.keys().cloned().collect::<Vec<_>>().join(", ");
    let known_ns = |ns: &str| devices.contains_key(ns);

    let mut captures = Vec::new();
    for c in &case.capture {
        let iface = parse_iface(c.get_ref()).or_else(|e| src.at(c, e))?;
        if !known_ns(&iface.ns) {
            return src
                .at(c, format!("capture {:?}: no namespace {:?} (fixture has {ns_list})", c.get_ref(), iface.ns));
        }
        captures.push(iface);
    }
    // Every interface that exists at some point of some phase: a capture
    // follows its link as it appears, moves away or goes.
    let mut ever = Ifaces::of_fixture(&fixture);

    let check_step = |s: &Spanned<Step>, now: &mut Ifaces| -> Result<Step, LoadError> {
        let step = s.get_ref();
        if let Some(ns) = step.ns() {
            if !known_ns(ns) {
                return src.at(s, format!("step `{step}`: no namespace {ns:?} (fixture has {ns_list})"));
            }
        }
        if let Step::RouteAdd(r) | Step::RouteDel(r) = step {
            r.check().or_else(|e| src.at(s, format!("step `{step}`: {e}")))?;
        }
        if let Step::RuleAdd(r) | Step::RuleDel(r) = step {
            r.check().or_else(|e| src.at(s, format!("step `{step}`: {e}")))?;
            for d in r.iif.iter().chain(&r.oif) {
                if !now.has(&r.ns, d) {
                    return src.at(
                        s,
                        format!(
                            "step `{step}`: namespace {:?} has no interface {d:?} at this point (it has {})",
                            r.ns,
                            now.list(&r.ns)
                        ),
                    );
                }
            }
        }
        now.apply(step).or_else(|e| src.at(s, format!("step `{step}`: {e}")))?;
        match step {
            Step::Sysctl { key, .. } if crate::case::syntax::is_global(key) => {
                return src.at(
                    s,
                    format!(
                        "step `{step}`: {key} is a global setting, not per namespace: write it with `global-sysctl = {{ key = \"{key}\", value = ... }}`"
                    ),
                );
            }
            Step::GlobalSysctl { key, .. } if !crate::case::syntax::is_global(key) => {
                return src.at(
                    s,
                    format!("step `{step}`: {key} is not one of the global settings netrepro knows ({}); a per-namespace one is `sysctl = {{ ns = ..., key = \"{key}\", value = ... }}`", crate::case::syntax::GLOBAL.join(", ")),
                );
            }
            Step::Sysctl { key, .. } => {
                crate::case::syntax::path_of(key).or_else(|e| src.at(s, format!("step `{step}`: {e}")))?;
            }
            Step::Nft { ns, ruleset, file } => {
                let text = match (ruleset, file) {
                    (Some(t), None) => t.clone(),
                    (None, Some(f)) => read_relative(case_path, f).or_else(|e| src.at(s, format!("nft file {e}")))?,
                    _ => {
                        return src.at(
                            s,
                            "nft: write either ruleset = \"\"\"...\"\"\" or file = \"<path relative to the case>\"",
                        )
                    }
                };
                return Ok(Step::Nft { ns: ns.clone(), ruleset: Some(text), file: file.clone() });
            }
            Step::IptablesRestore { ns, file, backend, noflush, .. } => {
                let text =
                    read_relative(case_path, file).or_else(|e| src.at(s, format!("iptables-restore file {e}")))?;
                return Ok(Step::IptablesRestore {
                    ns: ns.clone(),
                    file: file.clone(),
                    backend: *backend,
                    noflush: *noflush,
                    text,
                });
            }
            _ => {}
        }
        Ok(step.clone())
    };
    let mut after_setup = Ifaces::of_fixture(&fixture);
    let setup = case.setup.iter().map(|s| check_step(s, &mut after_setup)).collect::<Result<Vec<_>, _>>()?;
    ever.union(&after_setup);
    ever.union(&walk_phases(&after_setup, &case.phases));
    for (c, iface) in case.capture.iter().zip(&captures) {
        if !ever.has(&iface.ns, &iface.dev) {
            return src.at(
                c,
                format!(
                    "capture {:?}: namespace {:?} has no interface {:?} at any point of any phase (it has {})",
                    c.get_ref(),
                    iface.ns,
                    iface.dev,
                    ever.list(&iface.ns)
                ),
            );
        }
    }
    // The interfaces at the end of each phase name (all its variants).
    let mut at_end: BTreeMap<String, Ifaces> = BTreeMap::new();

    let mut probes = IndexMap::new();
    for (name, p) in &case.probes {
        p.get_ref().check_bounds().or_else(|e| src.at(p, format!("probe {name:?}: {e}")))?;
        for ns in p.get_ref().namespaces() {
            if !known_ns(ns) {
                return src.at(p, format!("probe {name:?}: no namespace {ns:?} (fixture has {ns_list})"));
            }
        }
        if let ProbeSpec::Stream { inject: Some(i), direction, bytes, .. } = p.get_ref() {
            let at = &i.at;
            if !devices.get(&at.ns).is_some_and(|d| d.contains(&at.dev)) {
                return src.at(p, format!("probe {name:?}: inject.at \"{at}\": no such interface in the fixture"));
            }
            if *direction != crate::case::spec::Direction::Download {
                return src.at(p, format!("probe {name:?}: inject needs direction = \"download\" (segments are crafted from the server's data)"));
            }
            if i.at_bytes == 0 || i.at_bytes >= *bytes {
                return src.at(p, format!("probe {name:?}: inject.at_bytes must be between 1 and bytes - 1"));
            }
        }
        if let ProbeSpec::Frame { at, .. } = p.get_ref() {
            if !devices.get(&at.ns).is_some_and(|d| d.contains(&at.dev)) {
                return src.at(p, format!("probe {name:?}: at \"{at}\": no such interface in the fixture"));
            }
        }
        if let ProbeSpec::Connect { hold, listen_in: None, .. } = p.get_ref() {
            if *hold > 0 {
                return src.at(p, format!("probe {name:?}: hold needs listen_in (held connections count only once the listener has accepted them)"));
            }
        }
        probes.insert(name.clone(), p.get_ref().clone());
    }

    let mut phases = Vec::new();
    let mut seen_names: Vec<String> = Vec::new();
    for ph in &case.phases {
        let spec = ph.get_ref();
        let pname = &spec.name;
        // A phase name is a file name too (`<case>/<phase>.pcapng`): <what>
        // follows the id rule, so no `/`, `..` or space can leave the case's
        // directory.
        let valid_name = pname == "baseline"
            || pname == "fault"
            || pname == "fix"
            || pname
                .strip_prefix("fault-")
                .or(pname.strip_prefix("fix-"))
                .is_some_and(|r| crate::case::syntax::check_id(r).is_ok());
        if !valid_name {
            return src.at(
                ph,
                format!(
                    "phase {pname:?}: name it baseline, fault, fault-<what>, fix or fix-<what> \
                     (<what>: lower-case letters, digits and '-')"
                ),
            );
        }
        let kernel = match &spec.kernel {
            Some(k) => Some(Range::parse(k.get_ref()).or_else(|e| src.at(k, format!("phase {pname:?}: kernel: {e}")))?),
            None => None,
        };
        if kernel.is_some() && spec.upstream.is_none() {
            return src.at(
                ph,
                format!(
                    "phase {pname:?}: a kernel-gated phase must name the `upstream` change that makes kernels differ"
                ),
            );
        }
        if let Some(u) = &spec.unchecked {
            if kernel.is_none() {
                return src.at(
                    u,
                    format!(
                        "phase {pname:?}: unchecked needs the `kernel` range it is about (e.g. kernel = \"<5.10\")"
                    ),
                );
            }
            if u.get_ref().trim().is_empty() {
                return src.at(u, format!("phase {pname:?}: unchecked: say why these kernels are not claimed"));
            }
            if !spec.steps.is_empty()
                || !spec.actors.is_empty()
                || !spec.expect.is_empty()
                || !spec.expect_actors.is_empty()
                || spec.expect_phase.is_some()
                || !spec.span.is_empty()
                || spec.after.is_some()
            {
                return src.at(
                    u,
                    format!("phase {pname:?}: an unchecked variant runs and asserts nothing: remove its after, steps, spans, actors and expectations (the case skips on its kernels)"),
                );
            }
        }
        let after = match &spec.after {
            Some(a) if seen_names.contains(a.get_ref()) => Some(a.get_ref().clone()),
            Some(a) => {
                return src.at(a, format!("phase {pname:?}: after {:?}: no earlier phase of that name", a.get_ref()))
            }
            None => None,
        };
        let mut now = match &after {
            Some(a) => at_end.get(a).cloned().unwrap_or_else(|| after_setup.clone()),
            None => after_setup.clone(),
        };
        let mut steps = Vec::new();
        for s in &spec.steps {
            steps.push(check_step(s, &mut now)?);
        }
        let mut spans: Vec<Span> = Vec::new();
        for sp in &spec.span {
            let x = sp.get_ref();
            let what = format!("span {:?}", x.name);
            if crate::case::syntax::check_id(&x.name).is_err() || x.name == "phase" {
                return src.at(sp, format!("phase {pname:?}: {what}: name it with lower-case letters, digits and '-' (not \"phase\": the whole phase's window is called that)"));
            }
            if spans.iter().any(|o| o.name == x.name) {
                return src.at(sp, format!("phase {pname:?}: {what}: a second span of that name"));
            }
            if x.steps.is_empty() {
                return src.at(sp, format!("phase {pname:?}: {what}: no steps; a span is the window of its steps"));
            }
            let mut span_steps = Vec::new();
            for s in &x.steps {
                span_steps.push(check_step(s, &mut now)?);
            }
            let check = window_check(&src, &x.expect, pname, &what, &x.name, &now.devs, &captures)?;
            if check.is_empty() {
                return src.at(&x.expect, format!("phase {pname:?}: {what}: expects nothing"));
            }
            spans.push(Span { name: x.name.clone(), steps: span_steps, check });
        }
        let devices = &now.devs;
        if spec.unchecked.is_none()
            && spec.expect.is_empty()
            && spec.expect_actors.is_empty()
            && spec.expect_phase.is_none()
            && spans.is_empty()
        {
            return src.at(ph, format!("phase {pname:?}: expects nothing; a phase must assert something"));
        }
        let mut actors = Vec::new();
        for (name, a) in &spec.actors {
            crate::case::expect::actor(name, a.get_ref(), devices)
                .or_else(|m| src.at(a, format!("phase {pname:?}: actor {name:?}: {m}")))?;
            actors.push((name.clone(), a.get_ref().clone()));
        }
        let whole = match &spec.expect_phase {
            Some(pe) => Some(window_check(&src, pe, pname, "expect_phase", "phase", devices, &captures)?),
            None => None,
        };
        let mut actor_checks = Vec::new();
        for (k, c) in &spec.expect_actors {
            let x = crate::case::expect::actor_count(k, *c, &actors)
                .or_else(|m| src.at(ph, format!("phase {pname:?}: expect_actors: {m}")))?;
            actor_checks.push(x);
        }
        let mut checks = Vec::new();
        for (probe, e) in &spec.expect {
            let Some(p) = probes.get(probe) else {
                return src.at(
                    e,
                    format!(
                        "phase {pname:?}: expect.{probe}: no probe named {probe:?} (probes: {})",
                        probes.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                );
            };
            checks.push(check_expect(&src, e, pname, probe, p, devices, &captures)?);
        }
        at_end.entry(pname.clone()).or_insert_with(|| now.clone()).union(&now);
        if !seen_names.contains(pname) {
            seen_names.push(pname.clone());
        }
        phases.push(Phase {
            name: pname.clone(),
            kernel,
            upstream: spec.upstream.clone(),
            unchecked: spec.unchecked.as_ref().map(|u| u.get_ref().clone()),
            note: spec.note.clone(),
            after,
            steps,
            checks,
            ifaces: now,
            actors,
            actor_checks,
            whole,
            spans,
        });
    }
    check_variants(&src, &case.phases, &phases)?;
    if let Err((i, circle)) = after_order(&phases) {
        let (name, after) = (&phases[i].name, phases[i].after.as_deref().unwrap_or_default());
        let at = case.phases[i].get_ref().after.as_ref().map_or(case.phases[i].span(), |a| a.span());
        return src.err(
            Some(at),
            format!(
                "phase {name:?}: after {after:?} closes a circle ({}): its replay would never end; write after = the phase whose steps come first (a fix names its fault), never one that leads back here",
                circle.join(" → ")
            ),
        );
    }
    if phases.first().map(|p| p.name.as_str()) != Some("baseline") {
        let at = case.phases.first().map(|p| p.span());
        return src.err(at, "the first phase must be `baseline`: prove the topology is healthy before breaking it");
    }
    let plan = Plan { path: case_path.into(), case, fixture_path, fixture, captures, setup, probes, phases };
    let mut total = 0u64;
    for (i, w) in plan.worst_case_by_phase().into_iter().enumerate() {
        total = total.saturating_add(w);
        if total > CASE_MS_MAX {
            return src.err(
                Some(plan.case.phases[i].span()),
                format!(
                    "phase {:?}: with it the case could run {total} ms at worst (probes at their worst case, sh steps at their {} s deadline), more than {CASE_MS_MAX} ms (1 h): write fewer or shorter probes and steps",
                    plan.phases[i].name,
                    crate::case::spec::limits::SH_STEP_MS / 1000
                ),
            );
        }
    }
    Ok(plan)
}

/// Variants of one phase name (kernel-gated expectations) must never both
/// hold: on a kernel where two do, the run cannot choose and fails.
fn check_variants(src: &Src, specs: &[Spanned<PhaseSpec>], phases: &[Phase]) -> Result<(), LoadError> {
    for (j, b) in phases.iter().enumerate() {
        for (i, a) in phases[..j].iter().enumerate().filter(|(_, a)| a.name == b.name) {
            let line = src.line(specs[i].span().start);
            match (&a.kernel, &b.kernel, &specs[j].get_ref().kernel) {
                (Some(ra), Some(rb), Some(at)) => {
                    if let Some(v) = ra.overlap(rb) {
                        return src.at(
                            at,
                            format!(
                                "phase {:?}: kernel {:?} overlaps {:?} (line {line}) from {v} on: make the ranges disjoint, e.g. \"<6.1\" and \">=6.1\"",
                                b.name,
                                rb.text(),
                                ra.text()
                            ),
                        );
                    }
                }
                _ => {
                    return src.at(
                        &specs[j],
                        format!(
                            "phase {:?} is written twice (also line {line}) and not every variant has a `kernel` range, so both would run: give each variant its own `kernel` and `upstream`, or name this one {}",
                            b.name,
                            match b.name.split('-').next() {
                                Some("fix") => "fix-<what>",
                                Some("fault") => "fault-<what>",
                                _ => "fault-<what> or fix-<what>",
                            }
                        ),
                    )
                }
            }
        }
    }
    Ok(())
}

/// Phase names in an order where each comes after every name its variants'
/// `after` points to — or, if `after` leads around a circle, the index of
/// the phase to blame and the circle. All variants count at once: any of
/// them may be the one a kernel chooses. Iterative, so no input can
/// overflow the stack.
fn after_order(phases: &[Phase]) -> Result<Vec<&str>, (usize, Vec<String>)> {
    let mut edges: IndexMap<&str, Vec<(usize, &str)>> = IndexMap::new();
    for (i, p) in phases.iter().enumerate() {
        let out = edges.entry(p.name.as_str()).or_default();
        out.extend(p.after.as_deref().map(|a| (i, a)));
    }
    let (mut order, mut done, mut on_stack) = (Vec::new(), BTreeSet::new(), BTreeSet::new());
    for &root in edges.keys() {
        if done.contains(root) {
            continue;
        }
        // Depth-first: each entry is a name and how many of its edges are walked.
        let mut stack = vec![(root, 0usize)];
        on_stack.insert(root);
        while let Some(top) = stack.last_mut() {
            let (name, k) = *top;
            match edges.get(name).and_then(|out| out.get(k)) {
                Some(&(_, to)) => {
                    top.1 += 1;
                    if on_stack.contains(to) {
                        let from = stack.iter().position(|(n, _)| *n == to).unwrap_or_default();
                        let circle: Vec<&str> = stack[from..].iter().map(|(n, _)| *n).collect();
                        return Err(blame(&edges, &circle));
                    }
                    if !done.contains(to) {
                        stack.push((to, 0));
                        on_stack.insert(to);
                    }
                }
                None => {
                    stack.pop();
                    on_stack.remove(name);
                    done.insert(name);
                    order.push(name);
                }
            }
        }
    }
    Ok(order)
}

/// The `after` in `circle` (names, each replaying the next, the last the
/// first) written last in the file — the one that closed it as the file was
/// written — and the circle told from its phase.
fn blame(edges: &IndexMap<&str, Vec<(usize, &str)>>, circle: &[&str]) -> (usize, Vec<String>) {
    let n = circle.len();
    let (k, i) = (0..n)
        .flat_map(|k| {
            let (from, to) = (circle[k], circle[(k + 1) % n]);
            edges.get(from).into_iter().flatten().filter(move |(_, t)| *t == to).map(move |&(i, _)| (k, i))
        })
        .max_by_key(|&(_, i)| i)
        .unwrap_or_default();
    (i, (0..=n).map(|j| circle[(k + j) % n].to_string()).collect())
}

/// The fixture file `name` stands for: `<fixtures_dir>/<name>.toml`, and
/// there in fact once symlinks and `..` are resolved — a case must not read
/// (and report on) files elsewhere.
fn fixture_in(src: &Src, name: &Spanned<String>, fixtures_dir: &Path) -> Result<PathBuf, LoadError> {
    let fname = name.get_ref();
    let write = "write the file's name without .toml, e.g. fixture = \"docker-bridge\"";
    if fname.is_empty() || Path::new(fname).is_absolute() {
        return src.at(name, format!("fixture {fname:?}: {write}, for a file in {}", fixtures_dir.display()));
    }
    let path = fixtures_dir.join(format!("{fname}.toml"));
    let (Ok(real), Ok(dir)) = (path.canonicalize(), fixtures_dir.canonicalize()) else {
        return src.at(name, format!("fixture {fname:?}: no file {}", path.display()));
    };
    if !real.starts_with(&dir) {
        return src
            .at(name, format!("fixture {fname:?} resolves to {}, outside {}: {write}", real.display(), dir.display()));
    }
    Ok(path)
}

fn check_expect(
    src: &Src,
    e: &Spanned<Expect>,
    phase: &str,
    probe: &str,
    p: &ProbeSpec,
    devices: &BTreeMap<String, BTreeSet<String>>,
    captures: &[Iface],
) -> Result<Check, LoadError> {
    let x = e.get_ref();
    let ctx = expect::Ctx { devices, captures, kind: p.kind() };
    let at = |m: String| src.error_at(e, format!("phase {phase:?}: expect.{probe}: {m}"));
    fn all<K, V, T>(
        m: &IndexMap<K, V>,
        f: impl Fn(&K, &V) -> Result<T, String>,
        at: &impl Fn(String) -> LoadError,
    ) -> Result<Vec<T>, LoadError> {
        m.iter().map(|(k, v)| f(k, v).map_err(at)).collect()
    }
    Ok(Check {
        probe: probe.into(),
        outcome: expect::outcome(x, &ctx).map_err(at)?,
        counters: all(&x.counters, |k, c| expect::counter(k, *c, &ctx), &at)?,
        packets: all(&x.packets, |k, c| expect::packets(k, *c, &ctx), &at)?,
        neighbours: all(&x.neighbours, |k, s| expect::neighbour(k, s, &ctx), &at)?,
        routes: all(&x.routes, |k, s| expect::route(k, s, &ctx), &at)?,
        qdiscs: all(&x.qdisc, |k, q| expect::qdisc(k, q, &ctx), &at)?,
        links: all(&x.links, |k, l| expect::link(k, l, &ctx), &at)?,
        rules: all(&x.rules, |k, c| expect::rule(k, *c, &ctx), &at)?,
        conntrack: all(&x.conntrack, |k, c| expect::conntrack(k, *c, &ctx), &at)?,
        drops: all(&x.drops, |k, c| expect::drop(k, *c, &ctx), &at)?,
    })
}

/// A check over a window with no probe (the whole phase, a span):
/// `what` says where in errors, `name` is the check's.
fn window_check(
    src: &Src,
    e: &Spanned<crate::case::spec::PhaseExpect>,
    phase: &str,
    what: &str,
    name: &str,
    devices: &BTreeMap<String, BTreeSet<String>>,
    captures: &[Iface],
) -> Result<Check, LoadError> {
    let x = e.get_ref();
    let ctx = expect::Ctx { devices, captures, kind: "phase" };
    let at = |m: String| src.error_at(e, format!("phase {phase:?}: {what}: {m}"));
    fn all<V: Copy, T>(
        m: &IndexMap<String, V>,
        f: impl Fn(&str, V) -> Result<T, String>,
        at: &impl Fn(String) -> LoadError,
    ) -> Result<Vec<T>, LoadError> {
        m.iter().map(|(k, v)| f(k, *v).map_err(at)).collect()
    }
    Ok(Check {
        probe: name.into(),
        outcome: OutcomeExp::default(),
        counters: all(&x.counters, |k, c| expect::counter(k, c, &ctx), &at)?,
        packets: all(&x.packets, |k, c| expect::packets(k, c, &ctx), &at)?,
        neighbours: vec![],
        routes: vec![],
        qdiscs: vec![],
        links: vec![],
        rules: all(&x.rules, |k, c| expect::rule(k, c, &ctx), &at)?,
        conntrack: all(&x.conntrack, |k, c| expect::conntrack(k, c, &ctx), &at)?,
        drops: all(&x.drops, |k, c| expect::drop(k, c, &ctx), &at)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIXTURE: &str = r#"
description = "two namespaces on a veth"
[[namespace]]
name = "a"
[[namespace]]
name = "b"
[[veth]]
a = { ns = "a", name = "eth0", addresses = ["10.0.0.1/24"] }
b = { ns = "b", name = "eth0", addresses = ["10.0.0.2/24"] }
"#;

    const CASE: &str = r#"id = "demo"
title = "t"
urls = ["https://example.invalid/1"]
symptom = "s"
fix = "f"
fixture = "pair"
capture = ["b/eth0"]

[probes]
ping = { kind = "ping", from = "a", to = "10.0.0.2" }

[[phase]]
name = "baseline"
[phase.expect.ping]
replies = 3
packets = { "b/eth0: icmp echo-request" = 3 }
"#;

    /// Writes the fixture and a case (as `demo.toml`) into a temp dir and loads it.
    fn load_with(case: &str, fixture: &str) -> Result<Plan, LoadError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pair.toml"), fixture).unwrap();
        let p = dir.path().join("demo.toml");
        std::fs::write(&p, case).unwrap();
        load(&p, dir.path())
    }

    fn err(case: &str) -> String {
        load_with(case, FIXTURE).unwrap_err().to_string()
    }

    #[test]
    fn a_good_case_loads_with_its_checks() {
        let p = load_with(CASE, FIXTURE).unwrap();
        assert_eq!(p.phases.len(), 1);
        assert_eq!(p.phases[0].checks[0].packets[0].at.to_string(), "b/eth0");
        assert_eq!(p.captures, vec![Iface { ns: "b".into(), dev: "eth0".into() }]);
    }

    #[test]
    fn unknown_key_names_file_line_and_key() {
        let e = err(&CASE.replace("replies = 3", "replies = 3\nreplys = 3"));
        assert!(e.contains("demo.toml:16:"), "{e}");
        assert!(e.contains("unknown field `replys`"), "{e}");
    }

    #[test]
    fn fixture_iptables_lines_are_shell_words() {
        let fw = |line: &str| format!("{FIXTURE}[[firewall]]\nns = \"a\"\niptables = ['{line}']\n");
        let quoted = r#"-A INPUT -m comment --comment "kubernetes service portals" -j ACCEPT"#;
        let p = load_with(CASE, &fw(quoted)).unwrap();
        let words = shlex::split(&p.fixture.firewall[0].iptables[0]).unwrap();
        assert_eq!(words[5], "kubernetes service portals");
        let e = load_with(CASE, &fw(r#"-A INPUT -m comment --comment "unclosed -j ACCEPT"#)).unwrap_err().to_string();
        assert!(e.contains("pair.toml:11:") && e.contains("unclosed quote"), "{e}");
    }

    #[test]
    fn requires_cpus_takes_a_number() {
        let with = |r: &str| CASE.replace("fixture = \"pair\"", &format!("fixture = \"pair\"\nrequires = [\"{r}\"]"));
        assert!(load_with(&with("cpus:2"), FIXTURE).is_ok());
        let e = load_with(&with("cpus:two"), FIXTURE).unwrap_err().to_string();
        assert!(e.contains("demo.toml:1:") && e.contains("cpus:N"), "{e}");
    }

    #[test]
    fn missing_field_is_named() {
        let e = err(&CASE.replace("symptom = \"s\"\n", ""));
        assert!(e.contains("demo.toml") && e.contains("missing field `symptom`"), "{e}");
    }

    #[test]
    fn bad_address_in_a_probe_is_rejected_with_its_line() {
        let e = err(&CASE.replace("to = \"10.0.0.2\"", "to = \"10.0.0.256\""));
        assert!(e.contains("demo.toml:10:"), "{e}");
        assert!(e.to_lowercase().contains("invalid"), "{e}");
    }

    #[test]
    fn bad_address_in_a_fixture_names_the_fixture() {
        let e = load_with(CASE, &FIXTURE.replace("10.0.0.1/24", "10.0.0.1/40")).unwrap_err().to_string();
        assert!(e.contains("pair.toml:8:") && e.contains("longer than /32"), "{e}");
    }

    #[test]
    fn unknown_namespace_in_probe_and_capture() {
        let e = err(&CASE.replace("from = \"a\"", "from = \"c\""));
        assert!(e.contains("demo.toml:10:") && e.contains("no namespace \"c\""), "{e}");
        let e = err(&CASE.replace("capture = [\"b/eth0\"]", "capture = [\"b/eth9\"]"));
        assert!(e.contains("demo.toml:7:") && e.contains("has no interface \"eth9\""), "{e}");
    }

    #[test]
    fn drop_expectations_are_checked_before_anything_runs() {
        let with = |d: &str| CASE.replace("replies = 3", &format!("replies = 3\ndrops = {{ {d} = 1 }}"));
        let ok = load_with(&with("\"b/eth0: QDISC_DROP\""), FIXTURE).unwrap();
        let d = &ok.phases[0].checks[0].drops[0];
        assert_eq!((d.ns.as_str(), d.dev.as_deref(), d.reason.as_str()), ("b", Some("eth0"), "QDISC_DROP"));
        let e = err(&with("\"b: qdisc_drop\""));
        assert!(e.contains("demo.toml:") && e.contains("without SKB_DROP_REASON_"), "{e}");
        let e = err(&with("\"c: QDISC_DROP\""));
        assert!(e.contains("no namespace \"c\""), "{e}");
        let e = err(&with("\"b/eth9: QDISC_DROP\""));
        assert!(e.contains("no interface \"eth9\" in namespace \"b\""), "{e}");
    }

    #[test]
    fn expectation_of_the_wrong_kind_or_type() {
        let e = err(&CASE.replace("replies = 3", "result = \"ok\""));
        assert!(e.contains("`result` applies to connect and bind probes"), "{e}");
        let e = err(&CASE.replace("replies = 3", "replies = \"many\""));
        assert!(e.contains("demo.toml:15:") && e.contains("not a count"), "{e}");
        let e = err(&CASE.replace("icmp echo-request", "icmp echo-requests"));
        assert!(e.contains("unknown word `echo-requests`"), "{e}");
    }

    #[test]
    fn packets_need_a_capture_and_probes_must_exist() {
        let e = err(&CASE.replace("capture = [\"b/eth0\"]", "capture = []"));
        assert!(e.contains("b/eth0 is not captured"), "{e}");
        let e = err(&CASE.replace("[phase.expect.ping]", "[phase.expect.pnig]"));
        assert!(e.contains("no probe named \"pnig\" (probes: ping)"), "{e}");
    }

    #[test]
    fn global_sysctls_and_ungated_kernel_phases_are_refused() {
        let step = "\nsteps = [{ sysctl = { ns = \"a\", key = \"net.core.netdev_max_backlog\", value = 10 } }]\n[phase.expect.ping]";
        let e = err(&CASE.replacen("\n[phase.expect.ping]", step, 1));
        assert!(e.contains("global setting"), "{e}");
        let gated = CASE.replace("name = \"baseline\"", "name = \"baseline\"\nkernel = \">=6.1\"");
        assert!(err(&gated).contains("must name the `upstream` change"));
    }

    #[test]
    fn global_settings_are_written_with_global_sysctl_only() {
        let step =
            |s: &str| CASE.replacen("\n[phase.expect.ping]", &format!("\nsteps = [{{ {s} }}]\n[phase.expect.ping]"), 1);
        let p = load_with(&step("global-sysctl = { key = \"net.netfilter.nf_conntrack_max\", value = 16 }"), FIXTURE)
            .unwrap();
        assert_eq!(p.globals(), ["net.netfilter.nf_conntrack_max"]);
        let e = err(&step("global-sysctl = { key = \"net.ipv4.conf.all.forwarding\", value = 0 }"));
        assert!(e.contains("not one of the global settings"), "{e}");
        let e = err(&step("sysctl = { ns = \"a\", key = \"net.netfilter.nf_conntrack_max\", value = 16 }"));
        assert!(e.contains("global-sysctl"), "{e}");
        // Held connections count once accepted: they need a listener.
        let hold = CASE.replace(
            "ping = { kind = \"ping\", from = \"a\", to = \"10.0.0.2\" }",
            "ping = { kind = \"connect\", from = \"a\", to = \"10.0.0.2:80\", hold = 4 }",
        );
        assert!(err(&hold).contains("hold needs listen_in"), "{}", err(&hold));
    }

    #[test]
    fn kernel_variants_are_chosen_per_kernel() {
        let extra = r#"
[[phase]]
name = "fault"
kernel = "<6.1"
upstream = "6e250dcbff1d"
[phase.expect.ping]
replies = 0

[[phase]]
name = "fault"
kernel = ">=6.1"
upstream = "6e250dcbff1d"
[phase.expect.ping]
replies = 3
"#;
        let p = load_with(&format!("{CASE}{extra}"), FIXTURE).unwrap();
        let old = p.phases_for(Version(5, 10, 0)).unwrap();
        let new = p.phases_for(Version(6, 18, 0)).unwrap();
        assert_eq!(old[1].kernel.as_ref().unwrap().text(), "<6.1");
        assert_eq!(new[1].kernel.as_ref().unwrap().text(), ">=6.1");
        let gap = format!("{CASE}{}", extra.replace(">=6.1\"", ">=6.2\""));
        let p = load_with(&gap, FIXTURE).unwrap();
        assert!(p.phases_for(Version(6, 1, 5)).unwrap_err().contains("no variant for kernel 6.1.5"));
    }

    #[test]
    fn id_must_match_the_file_name() {
        let e = err(&CASE.replace("id = \"demo\"", "id = \"other\""));
        assert!(e.contains("must match the file name"), "{e}");
    }

    // ---- issue 18: every accepted input ends, every refusal has file:line

    /// The 1-based line of the only occurrence of `needle` in `text`.
    fn line_of(text: &str, needle: &str) -> usize {
        assert_eq!(text.matches(needle).count(), 1, "{needle:?} must occur once");
        text[..text.find(needle).unwrap()].matches('\n').count() + 1
    }

    /// Asserts that `case` (with `fixture`) fails at `file:line` of `needle`
    /// in the file it belongs to, with `phrase` in the message.
    fn fails_at(case: &str, fixture: &str, in_fixture: bool, needle: &str, phrase: &str) {
        let e = load_with(case, fixture).unwrap_err();
        let (file, text) = if in_fixture { ("pair.toml", fixture) } else { ("demo.toml", case) };
        assert!(e.file.ends_with(file), "{e}");
        assert_eq!(e.line, Some(line_of(text, needle)), "{e}");
        assert!(e.msg.contains(phrase), "{e}");
    }

    fn case_fails_at(case: &str, needle: &str, phrase: &str) {
        fails_at(case, FIXTURE, false, needle, phrase)
    }

    fn fixture_fails_at(fixture: &str, needle: &str, phrase: &str) {
        fails_at(CASE, fixture, true, needle, phrase)
    }

    /// A phase appended to CASE.
    fn phase(name: &str, extra: &str) -> String {
        format!("\n[[phase]]\nname = \"{name}\"\n{extra}\n[phase.expect.ping]\nreplies = 3\n")
    }

    const OLD: &str = "kernel = \"<6.1\"\nupstream = \"u\"";
    const NEW: &str = "kernel = \">=6.1\"\nupstream = \"u\"";

    #[test]
    fn an_unchecked_variant_claims_nothing_and_skips_its_kernels() {
        let unchecked = "\n[[phase]]\nname = \"fault\"\nkernel = \"<6.1\"\nupstream = \"u\"\nunchecked = \"no guest older than 6.1\"\n";
        let p = load_with(&format!("{CASE}{unchecked}{}", phase("fault", NEW)), FIXTURE).unwrap();
        let why = p.unchecked_on(Version(5, 10, 0)).unwrap();
        assert_eq!(why, "phase fault is not checked on kernel 5.10.0 (its variant <6.1): no guest older than 6.1");
        assert_eq!(p.unchecked_on(Version(6, 1, 0)), None);
        // It asserts nothing, runs nothing, and needs its range.
        let with_expect = format!("{CASE}{}", phase("fault", "kernel = \"<6.1\"\nupstream = \"u\"\nunchecked = \"x\""));
        case_fails_at(&with_expect, "unchecked = \"x\"", "runs and asserts nothing");
        let bare = format!("{CASE}\n[[phase]]\nname = \"fault\"\nunchecked = \"y\"\n");
        case_fails_at(&bare, "unchecked = \"y\"", "needs the `kernel` range");
        let empty =
            format!("{CASE}\n[[phase]]\nname = \"fault\"\nkernel = \"<6.1\"\nupstream = \"u\"\nunchecked = \" \"\n");
        case_fails_at(&empty, "unchecked = \" \"", "say why");
    }

    #[test]
    fn after_circles_are_refused_at_the_after_that_closes_them() {
        // A variant that replays its own name.
        let own = format!("{CASE}{}{}", phase("fault", OLD), phase("fault", &format!("{NEW}\nafter = \"fault\"")));
        case_fails_at(&own, "after = \"fault\"", "closes a circle (fault → fault)");
        // fault → fix → fault through the second variant of fault.
        let two = format!(
            "{CASE}{}{}{}",
            phase("fault", OLD),
            phase("fix", "after = \"fault\""),
            phase("fault", &format!("{NEW}\nafter = \"fix\""))
        );
        case_fails_at(&two, "after = \"fix\"", "(fault → fix → fault)");
        // Longer: fault → fix-b → fix-a → fault.
        let long = format!(
            "{CASE}{}{}{}{}",
            phase("fault", OLD),
            phase("fix-a", "after = \"fault\""),
            phase("fix-b", "after = \"fix-a\""),
            phase("fault", &format!("{NEW}\nafter = \"fix-b\""))
        );
        case_fails_at(&long, "after = \"fix-b\"", "fault → fix-b → fix-a → fault");
        // A chain without a circle still loads, and replays in order.
        let ok = format!("{CASE}{}{}", phase("fault", ""), phase("fix", "after = \"fault\""));
        assert!(load_with(&ok, FIXTURE).is_ok());
    }

    #[test]
    fn replay_never_loops_even_on_a_plan_with_a_circle() {
        let ok = format!("{CASE}{}{}", phase("fault", ""), phase("fix", "after = \"fault\""));
        let mut p = load_with(&ok, FIXTURE).unwrap();
        assert!(p.worst_case_ms() < CASE_MS_MAX);
        p.phases[1].after = Some("fix".into()); // not through the loader
        let fix = p.phases[2].clone();
        let e = p.replay_for(&fix, Version(6, 1, 0)).unwrap_err();
        assert!(e.contains("circle: fix → fault → fix"), "{e}");
        assert_eq!(p.worst_case_ms(), u64::MAX);
    }

    #[test]
    fn probe_counts_and_durations_are_bounded() {
        let ping = "ping = { kind = \"ping\", from = \"a\", to = \"10.0.0.2\" }";
        let with = |fields: &str| {
            CASE.replace(ping, &format!("ping = {{ kind = \"ping\", from = \"a\", to = \"10.0.0.2\", {fields} }}"))
        };
        for (fields, phrase) in [
            ("count = 0", "count = 0: write 1 to 10000"),
            ("count = 4294967295", "count = 4294967295: write 1 to 10000"),
            ("count = 65536, interval_ms = 0", "count = 65536"),
            ("wait_ms = 9223372036854775807", "wait_ms = 9223372036854775807: write 0 to 600000"),
            ("count = 10000, interval_ms = 100", "(count × interval_ms + wait_ms), more than 600000 ms"),
        ] {
            case_fails_at(&with(fields), "ping = {", phrase);
        }
        assert!(load_with(&with("count = 10000, interval_ms = 59, wait_ms = 600"), FIXTURE).is_ok());
        let connect = |fields: &str| {
            CASE.replace(
                ping,
                &format!(
                    "ping = {{ kind = \"connect\", from = \"a\", to = \"10.0.0.2:80\", listen_in = \"b\", {fields} }}"
                ),
            )
            .replace("replies = 3\npackets = { \"b/eth0: icmp echo-request\" = 3 }", "result = \"ok\"")
        };
        case_fails_at(&connect("timeout_ms = 0"), "ping = {", "timeout_ms = 0: write 1 to 600000");
        case_fails_at(&connect("timeout_ms = 1000, hold = 1000"), "ping = {", "(hold + 2) × timeout_ms");
        assert!(load_with(&connect("timeout_ms = 1000, hold = 16"), FIXTURE).is_ok());
        let stream = CASE
            .replace(
                ping,
                "ping = { kind = \"stream\", from = \"a\", to = \"10.0.0.2:80\", server_in = \"b\", bytes = 0 }",
            )
            .replace("replies = 3\npackets = { \"b/eth0: icmp echo-request\" = 3 }", "client_error = \"none\"");
        case_fails_at(&stream, "ping = {", "bytes = 0: write 1 to 1073741824");
    }

    #[test]
    fn elapsed_windows_must_hold_for_some_time() {
        let connect = CASE
            .replace(
                "kind = \"ping\", from = \"a\", to = \"10.0.0.2\"",
                "kind = \"connect\", from = \"a\", to = \"10.0.0.2:80\"",
            )
            .replace("replies = 3\npackets = { \"b/eth0: icmp echo-request\" = 3 }", "elapsed_ms = WINDOW");
        for (w, phrase) in [
            ("{ min = 900, max = 100 }", "holds for no time: write min ≤ max"),
            ("{ min = -1 }", "elapsed_ms.min = -1"),
            ("{ max = nan }", "elapsed_ms.max = NaN"),
            ("{ max = 1e30 }", "write a number of ms from 0 to 600000"),
            ("{ neigh_failure = \"a/eth0\", tolerance_ms = inf }", "elapsed_ms.tolerance_ms = inf"),
        ] {
            // Expectation errors point at the probe's table, as all of them do.
            case_fails_at(&connect.replace("WINDOW", w), "[phase.expect.ping]", phrase);
        }
        assert!(load_with(&connect.replace("WINDOW", "{ min = 100, max = 900 }"), FIXTURE).is_ok());
    }

    #[test]
    fn names_must_be_names() {
        for bad in
            ["\"\"", "\"a\\u0000\"", "\"a b\"", "\"a/b\"", "\"a:b\"", "\"é\"", &format!("\"{}\"", "n".repeat(33))]
        {
            let f = FIXTURE.replacen("name = \"a\"", &format!("name = {bad}"), 1);
            fixture_fails_at(&f, &format!("name = {bad}"), "namespace name");
        }
        for bad in ["\"\"", "\"eth\\t0\"", "\"sixteen-bytes-xx\"", "\"..\"", "\"et/h0\"", "\"eth\\u0000\""] {
            let f = FIXTURE.replacen("name = \"eth0\"", &format!("name = {bad}"), 1);
            fixture_fails_at(&f, &format!("name = {bad}"), "1–15 printable characters");
        }
        let f = FIXTURE.replacen("name = \"eth0\"", "name = \"fifteen-bytes-x\"", 1);
        assert!(load_with(CASE, &f).is_ok());
    }

    #[test]
    fn phase_names_are_plain_file_names() {
        // `<case>/<phase>.pcapng`: a phase name must not leave the directory.
        for bad in ["fault-../../../etc/x", "fix-a/b", "fault-A", "fix-", "fault- x"] {
            let e = err(&format!("{CASE}{}", phase(bad, "")));
            assert!(e.contains(&format!("phase {bad:?}: name it baseline")), "{e}");
        }
        assert!(load_with(&format!("{CASE}{}", phase("fault-delayed-2", "")), FIXTURE).is_ok());
    }

    #[test]
    fn fixture_errors_that_had_no_line_have_one() {
        let dup = FIXTURE.replace("name = \"b\"\n", "name = \"b\"\n[[namespace]]\nname = \"a\" # again\n");
        fixture_fails_at(&dup, "name = \"a\" # again", "namespace \"a\" declared twice");
        let global = FIXTURE.replace("name = \"b\"\n", "name = \"b\"\nsysctls = { \"net.core.rmem_max\" = 1 }\n");
        fixture_fails_at(&global, "sysctls", "is global, not per namespace");
        let host = FIXTURE.replace("name = \"b\"\n", "name = \"b\"\nsysctls = { \"kernel.ostype\" = \"x\" }\n");
        fixture_fails_at(&host, "sysctls", "only net.* is per network namespace");
        let route = format!("{FIXTURE}[[route]]\nns = \"a\"\nto = \"default\"\ndev = \"eth9\"\n");
        fixture_fails_at(&route, "to = \"default\"", "route dev \"eth9\"");
    }

    #[test]
    fn ids_urls_and_the_first_phase_are_refused_with_their_line() {
        case_fails_at(&CASE.replace("id = \"demo\"", "id = \"other\""), "id = ", "write id = \"demo\"");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("pair.toml"), FIXTURE).unwrap();
        let upper = dir.path().join("Demo.toml");
        let text = CASE.replace("id = \"demo\"", "id = \"Demo\"");
        std::fs::write(&upper, &text).unwrap();
        let e = load(&upper, dir.path()).unwrap_err();
        assert_eq!(e.line, Some(1), "{e}");
        assert!(e.msg.contains("lower-case letters"), "{e}");

        let urls = |u: &str| CASE.replace("urls = [\"https://example.invalid/1\"]", &format!("urls = {u}"));
        case_fails_at(&urls("[]"), "urls = ", "at least one link");
        for bad in ["javascript:alert(1)", "ftp://x", "https://", "https://a b", "data:text/html,x"] {
            case_fails_at(
                &urls(&format!("[\"https://ok.invalid\", \"{bad}\"]")),
                "urls = ",
                "write an http:// or https:// link",
            );
        }
        assert!(load_with(&urls("[\"HTTP://example.invalid/x\"]"), FIXTURE).is_ok());

        case_fails_at(&CASE.replace("name = \"baseline\"", "name = \"fault\""), "[[phase]]", "must be `baseline`");
    }

    #[test]
    fn fixtures_resolve_inside_the_fixtures_dir() {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = dir.path().join("fixtures");
        std::fs::create_dir(&fixtures).unwrap();
        std::fs::write(fixtures.join("pair.toml"), FIXTURE).unwrap();
        std::fs::write(dir.path().join("outside.toml"), FIXTURE).unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.toml"), fixtures.join("link.toml")).unwrap();
        let try_fixture = |name: &str| {
            let p = dir.path().join("demo.toml");
            let text = CASE.replace("fixture = \"pair\"", &format!("fixture = {name:?}"));
            std::fs::write(&p, &text).unwrap();
            load(&p, &fixtures)
        };
        assert!(try_fixture("pair").is_ok());
        assert!(try_fixture("../fixtures/pair").is_ok());
        let outside = dir.path().join("outside").display().to_string();
        for (name, phrase) in [
            (outside.as_str(), "write the file's name without .toml"),
            ("../outside", "outside"),
            ("link", "outside"),
            ("", "write the file's name"),
        ] {
            let e = try_fixture(name).unwrap_err();
            assert_eq!(e.line, Some(6), "{e}");
            assert!(e.msg.contains(phrase), "{name}: {e}");
        }
    }

    #[test]
    fn duplicate_and_overlapping_variants_are_refused() {
        let twice = format!("{CASE}{}", phase("baseline", ""));
        case_fails_at(&twice, "[[phase]]\nname = \"baseline\"\n\n", "written twice (also line 12)");
        // One gated and one not: both hold on >=6.1.
        let half = format!("{CASE}{}{}", phase("fault", ""), phase("fault", NEW));
        let e = load_with(&half, FIXTURE).unwrap_err();
        assert!(e.msg.contains("not every variant has a `kernel` range"), "{e}");
        let overlap =
            format!("{CASE}{}{}", phase("fault", NEW), phase("fault", "kernel = \">=5.4\"\nupstream = \"u\""));
        case_fails_at(&overlap, "kernel = \">=5.4\"", "overlaps \">=6.1\" (line 18) from 6.1.0 on");
        let empty = format!("{CASE}{}", phase("fault", "kernel = \">=6.1, <4.10\"\nupstream = \"u\""));
        case_fails_at(&empty, "kernel = ", "holds for no kernel");
        assert!(load_with(&format!("{CASE}{}{}", phase("fault", OLD), phase("fault", NEW)), FIXTURE).is_ok());
    }

    #[test]
    fn steps_touch_only_the_namespace_and_rates_fit_tc() {
        let step =
            |s: &str| CASE.replacen("\n[phase.expect.ping]", &format!("\nsteps = [{{ {s} }}]\n[phase.expect.ping]"), 1);
        let ostype = step("sysctl = { ns = \"a\", key = \"kernel.ostype\", value = \"x\" }");
        case_fails_at(&ostype, "steps = ", "write a key under net.");
        let rate = step("htb-class = { ns = \"a\", dev = \"eth0\", parent = \"1:\", classid = \"1:10\", rate = \"99999999999999999999gbit\" }");
        case_fails_at(&rate, "steps = ", "write at most 34gbit");
    }

    #[test]
    fn rulesets_are_read_at_load_and_nft_rule_keys_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("u.nft"), "table inet filter {}\n").unwrap();
        std::fs::write(dir.path().join("rules.v4"), "*filter\nCOMMIT\n").unwrap();
        let fixture = format!("{FIXTURE}[[firewall]]\nns = \"a\"\nnft_file = \"u.nft\"\nnft = \"add table ip t\"\n");
        std::fs::write(dir.path().join("pair.toml"), &fixture).unwrap();
        let write = |case: &str| {
            let p = dir.path().join("demo.toml");
            std::fs::write(&p, case).unwrap();
            load(&p, dir.path())
        };
        let steps = "steps = [{ nft = { ns = \"a\", file = \"u.nft\" } }, { iptables-restore = { ns = \"b\", file = \"rules.v4\", backend = \"legacy\", noflush = true } }]";
        let rules =
            "rules = { \"a: inet filter forward handle 4\" = 0, \"a: inet filter forward comment \\\"x y\\\"\" = 0 }";
        let case = CASE.replacen("\n[phase.expect.ping]", &format!("\n{steps}\n[phase.expect.ping]\n{rules}"), 1);
        let p = write(&case).unwrap();
        let sets = &p.fixture.firewall[0].rulesets;
        assert_eq!(sets.iter().map(|r| r.origin.as_str()).collect::<Vec<_>>(), ["u.nft", "inline"]);
        assert_eq!(sets[0].text, "table inet filter {}\n");
        let shown: Vec<String> = p.phases[0].steps.iter().map(|s| s.to_string()).collect();
        assert_eq!(shown, ["[a] nft -f - < u.nft", "[b] iptables-legacy-restore --noflush < rules.v4"]);
        assert_eq!(p.phases[0].steps[1].ruleset().unwrap().text, "*filter\nCOMMIT\n");
        assert!(p.phases[0].checks[0].rules.iter().all(|r| r.nft && r.source() == "a (nft ruleset)"));
        // A missing file, at the step's line; an nft policy, with what to write instead.
        let missing = case.replace("file = \"u.nft\"", "file = \"v.nft\"");
        let e = write(&missing).unwrap_err();
        assert!(e.line == Some(line_of(&missing, "steps = ")) && e.msg.contains("cannot read"), "{e}");
        let policy = case.replace("forward handle 4", "forward policy");
        let e = write(&policy).unwrap_err();
        assert!(
            e.msg.contains("nft counts no packets for a chain's policy") && e.msg.contains("NETFILTER_DROP"),
            "{e}"
        );
        let e = write(&case.replace("forward handle 4", "forward handle four")).unwrap_err();
        assert!(e.msg.contains("handle <n>"), "{e}");
        std::fs::write(dir.path().join("pair.toml"), fixture.replace("u.nft", "/etc/u.nft")).unwrap();
        let e = write(&case).unwrap_err();
        assert!(e.file.ends_with("pair.toml") && e.msg.contains("relative"), "{e}");
    }

    #[test]
    fn a_case_that_could_run_over_an_hour_is_refused() {
        let ten_min = CASE.replace(
            "ping = { kind = \"ping\", from = \"a\", to = \"10.0.0.2\" }",
            "ping = { kind = \"ping\", from = \"a\", to = \"10.0.0.2\", count = 5000, interval_ms = 100, wait_ms = 100000 }",
        );
        let six = format!("{ten_min}{}", (1..6).map(|i| phase(&format!("fault-{i}"), "")).collect::<String>());
        assert_eq!(load_with(&six, FIXTURE).unwrap().worst_case_ms(), CASE_MS_MAX);
        let seven = format!("{six}{}", phase("fault-x", ""));
        case_fails_at(&seven, "[[phase]]\nname = \"fault-x\"", "could run 4200000 ms at worst");
    }
}
