//! Case file + fixture → a validated plan. Everything a run needs is checked
//! here, before any namespace exists: unknown keys, wrong types, namespaces,
//! interfaces and probes that do not exist, expectations that do not fit the
//! probe. Errors name the file, the line and the reason.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use indexmap::IndexMap;
use serde::de::DeserializeOwned;
use toml::Spanned;

use crate::case::kernel::{Range, Version};
use crate::case::spec::{CaseFile, Count, Expect, FixtureFile, ProbeSpec, Step};
use crate::wire::packet::Matcher;

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
        self.err(Some(s.span()), msg)
    }
    fn parse<T: DeserializeOwned>(&self) -> Result<T, LoadError> {
        toml::from_str(self.text).or_else(|e| self.err(e.span(), e.message().trim().to_string()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Iface {
    pub ns: String,
    pub dev: String,
}

impl fmt::Display for Iface {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.ns, self.dev)
    }
}

#[derive(Debug, Clone)]
pub struct CounterExp {
    pub ns: String,
    pub key: String,
    pub count: Count,
}

#[derive(Debug, Clone)]
pub struct PacketExp {
    pub at: Iface,
    pub matcher: Matcher,
    pub count: Count,
}

#[derive(Debug, Clone)]
pub struct DropExp {
    pub ns: String,
    pub dev: Option<String>,
    pub reason: String,
    pub count: Count,
}

#[derive(Debug, Clone)]
pub struct NeighExp {
    pub ns: String,
    pub ip: IpAddr,
    pub state: String,
}

#[derive(Debug, Clone)]
pub struct Check {
    pub probe: String,
    pub expect: Expect,
    pub counters: Vec<CounterExp>,
    pub packets: Vec<PacketExp>,
    pub neighbours: Vec<NeighExp>,
    pub drops: Vec<DropExp>,
}

#[derive(Debug, Clone)]
pub struct Phase {
    pub name: String,
    pub kernel: Option<Range>,
    pub upstream: Option<String>,
    pub note: Option<String>,
    pub after: Option<String>,
    pub steps: Vec<Step>,
    pub checks: Vec<Check>,
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
        &self.case.id
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

    /// Steps to replay before `phase`'s own, following its `after` chain.
    pub fn replay_for(&self, phase: &Phase, v: Version) -> Result<Vec<Step>, String> {
        let chosen = self.phases_for(v)?;
        let mut chain = Vec::new();
        let mut cur = phase.after.as_deref();
        while let Some(name) = cur {
            let p = chosen.iter().find(|p| p.name == name).ok_or_else(|| format!("phase {name:?} not found"))?;
            chain.push(p.steps.clone());
            cur = p.after.as_deref();
        }
        Ok(chain.into_iter().rev().flatten().collect())
    }
}

pub fn load_fixture(path: &Path) -> Result<FixtureFile, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|e| LoadError {
        file: path.into(),
        line: None,
        msg: format!("cannot read: {e}"),
    })?;
    let src = Src { file: path, text: &text };
    let f: FixtureFile = src.parse()?;
    validate_fixture(&src, &f)?;
    Ok(f)
}

fn validate_fixture(src: &Src, f: &FixtureFile) -> Result<(), LoadError> {
    let mut names = BTreeSet::new();
    for n in &f.namespaces {
        if !names.insert(n.name.as_str()) {
            return src.err(None, format!("namespace {:?} declared twice", n.name));
        }
        for k in n.sysctls.keys() {
            if crate::case::syntax::is_global(k) {
                return src.err(
                    None,
                    format!(
                        "namespace {:?}: sysctl {k} is global, not per namespace: a fixture may not change the host",
                        n.name
                    ),
                );
            }
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
        if name.is_empty() || name.len() >= 16 || name.contains(['/', ' ', ':']) {
            return src
                .at(ns, format!("{name:?} is not a valid interface name (1–15 characters, no '/', ':' or space)"));
        }
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
    for r in &f.routes {
        ns_ok(&r.ns)?;
        if r.to.get_ref() != "default" {
            match r.to.get_ref().parse::<crate::case::spec::Cidr>() {
                Ok(c) if c.addr.is_ipv4() => {}
                Ok(_) => return src.at(&r.to, "only IPv4 routes are supported"),
                Err(e) => return src.at(&r.to, format!("route `to`: {e}, or \"default\"")),
            }
        }
        if r.via.is_none() && r.dev.is_none() {
            return src.at(&r.to, "a route needs `via`, `dev` or both");
        }
    }
    for fw in &f.firewall {
        ns_ok(&fw.ns)?;
    }
    Ok(())
}

/// The interfaces a fixture creates, per namespace (plus `lo` everywhere).
pub fn fixture_devices(f: &FixtureFile) -> BTreeMap<String, BTreeSet<String>> {
    let mut m: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for n in &f.namespaces {
        m.entry(n.name.clone()).or_default().insert("lo".into());
    }
    for b in &f.bridges {
        m.entry(b.ns.get_ref().clone()).or_default().insert(b.name.clone());
    }
    for v in &f.veths {
        for e in [&v.a, &v.b] {
            m.entry(e.ns.get_ref().clone()).or_default().insert(e.name.clone());
        }
    }
    m
}

/// The longest case id: ids become file names (`<id>.json`, `<id>.log`,
/// artifact folders) and must stay well under NAME_MAX with any suffix.
pub const MAX_ID_LEN: usize = 64;

/// The one rule for case ids, wherever an id comes from (a case file, `new`,
/// a kept topology's state file, the command line): `[a-z0-9][a-z0-9-]*`, at
/// most [`MAX_ID_LEN`] characters. So an id is always a plain file name:
/// never empty, never `.`/`..`, no `/`, no leading `-` to be read as an option.
///
/// # Errors
/// Why `id` is not one, as a sentence that quotes it.
pub fn check_id(id: &str) -> Result<(), String> {
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if !first_ok || !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Err(format!("id {id:?}: use lower-case letters, digits and '-' (not first)"));
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!("id {id:?}: at most {MAX_ID_LEN} characters"));
    }
    Ok(())
}

/// Loads `case_path`, its fixture from `fixtures_dir`, and validates both.
pub fn load(case_path: &Path, fixtures_dir: &Path) -> Result<Plan, LoadError> {
    let text = std::fs::read_to_string(case_path).map_err(|e| LoadError {
        file: case_path.into(),
        line: None,
        msg: format!("cannot read: {e}"),
    })?;
    let src = Src { file: case_path, text: &text };
    let case: CaseFile = src.parse()?;

    let stem = case_path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
    if case.id != stem {
        return src
            .err(None, format!("id {:?} must match the file name ({stem}.toml): ids are stable handles", case.id));
    }
    if let Err(e) = check_id(&case.id) {
        return src.err(None, e);
    }
    if case.urls.is_empty() {
        return src.err(None, "urls: give at least one link to the report");
    }
    let fname = case.fixture.get_ref();
    let fixture_path = fixtures_dir.join(format!("{fname}.toml"));
    if !fixture_path.exists() {
        return src.at(&case.fixture, format!("fixture {fname:?}: no file {}", fixture_path.display()));
    }
    let fixture = load_fixture(&fixture_path)?;
    let devices = fixture_devices(&fixture);
    let ns_list = devices.keys().cloned().collect::<Vec<_>>().join(", ");
    let known_ns = |ns: &str| devices.contains_key(ns);

    let mut captures = Vec::new();
    for c in &case.capture {
        let iface = parse_iface(c.get_ref()).or_else(|e| src.at(c, e))?;
        match devices.get(&iface.ns) {
            None => {
                return src
                    .at(c, format!("capture {:?}: no namespace {:?} (fixture has {ns_list})", c.get_ref(), iface.ns))
            }
            Some(d) if !d.contains(&iface.dev) => {
                return src.at(
                    c,
                    format!(
                        "capture {:?}: namespace {:?} has no interface {:?} (it has {})",
                        c.get_ref(),
                        iface.ns,
                        iface.dev,
                        d.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )
            }
            _ => captures.push(iface),
        }
    }

    let check_step = |s: &Spanned<Step>| -> Result<Step, LoadError> {
        let step = s.get_ref();
        if let Some(ns) = step.ns() {
            if !known_ns(ns) {
                return src.at(s, format!("step `{step}`: no namespace {ns:?} (fixture has {ns_list})"));
            }
        }
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
            _ => {}
        }
        if let (Some(ns), Some(dev)) = (step.ns(), step.dev()) {
            if !devices[ns].contains(dev) {
                return src.at(s, format!("step `{step}`: namespace {ns:?} has no interface {dev:?}"));
            }
        }
        let tc_args = match step {
            Step::Htb { handle, default, .. } => {
                crate::case::syntax::parse_handle(handle).map(drop).and_then(|_| match default {
                    Some(d) => u32::from_str_radix(d, 16)
                        .map(drop)
                        .map_err(|_| anyhow::anyhow!("default {d:?} is not a hex class minor")),
                    None => Ok(()),
                })
            }
            Step::HtbClass { parent, classid, rate, .. } => crate::case::syntax::parse_handle(parent)
                .and_then(|_| crate::case::syntax::parse_handle(classid))
                .and_then(|_| crate::case::syntax::parse_rate(rate))
                .map(drop),
            _ => Ok(()),
        };
        if let Err(e) = tc_args {
            return src.at(s, format!("step `{step}`: {e}"));
        }
        Ok(step.clone())
    };
    let setup = case.setup.iter().map(check_step).collect::<Result<Vec<_>, _>>()?;

    let mut probes = IndexMap::new();
    for (name, p) in &case.probes {
        for ns in p.get_ref().namespaces() {
            if !known_ns(ns) {
                return src.at(p, format!("probe {name:?}: no namespace {ns:?} (fixture has {ns_list})"));
            }
        }
        if let ProbeSpec::Stream { inject: Some(i), direction, bytes, .. } = p.get_ref() {
            let at = parse_iface(&i.at).or_else(|m| src.at(p, format!("probe {name:?}: inject.at: {m}")))?;
            if !devices.get(&at.ns).is_some_and(|d| d.contains(&at.dev)) {
                return src.at(p, format!("probe {name:?}: inject.at {:?}: no such interface in the fixture", i.at));
            }
            if *direction != crate::case::spec::Direction::Download {
                return src.at(p, format!("probe {name:?}: inject needs direction = \"download\" (segments are crafted from the server's data)"));
            }
            if i.at_bytes == 0 || i.at_bytes >= *bytes {
                return src.at(p, format!("probe {name:?}: inject.at_bytes must be between 1 and bytes - 1"));
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
        let valid_name = pname == "baseline"
            || pname == "fault"
            || pname == "fix"
            || pname.strip_prefix("fault-").or(pname.strip_prefix("fix-")).is_some_and(|r| !r.is_empty());
        if !valid_name {
            return src.at(ph, format!("phase {pname:?}: name it baseline, fault, fault-<what>, fix or fix-<what>"));
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
        let after = match &spec.after {
            Some(a) if seen_names.contains(a.get_ref()) => Some(a.get_ref().clone()),
            Some(a) => {
                return src.at(a, format!("phase {pname:?}: after {:?}: no earlier phase of that name", a.get_ref()))
            }
            None => None,
        };
        let steps = spec.steps.iter().map(check_step).collect::<Result<Vec<_>, _>>()?;
        if spec.expect.is_empty() {
            return src.at(ph, format!("phase {pname:?}: expects nothing; a phase must assert something"));
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
            checks.push(check_expect(&src, e, pname, probe, p, &devices, &captures)?);
        }
        if !seen_names.contains(pname) {
            seen_names.push(pname.clone());
        }
        phases.push(Phase {
            name: pname.clone(),
            kernel,
            upstream: spec.upstream.clone(),
            note: spec.note.clone(),
            after,
            steps,
            checks,
        });
    }
    if phases.first().map(|p| p.name.as_str()) != Some("baseline") {
        return src.err(None, "the first phase must be `baseline`: prove the topology is healthy before breaking it");
    }
    Ok(Plan { path: case_path.into(), case, fixture_path, fixture, captures, setup, probes, phases })
}

pub fn parse_iface(s: &str) -> Result<Iface, String> {
    match s.split_once('/') {
        Some((ns, dev)) if !ns.trim().is_empty() && !dev.trim().is_empty() => {
            Ok(Iface { ns: ns.trim().into(), dev: dev.trim().into() })
        }
        _ => Err(format!("{s:?}: write namespace/interface, e.g. host/eno1")),
    }
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
    let here = format!("phase {phase:?}: expect.{probe}");
    let kind = p.kind();
    let misplaced = [
        ("replies", x.replies.is_some(), "ping"),
        ("icmp_errors", x.icmp_errors.is_some(), "ping"),
        ("result", x.result.is_some(), "connect"),
        ("bytes_received", x.bytes_received.is_some(), "stream"),
        ("client_error", x.client_error.is_some(), "stream"),
        ("server_error", x.server_error.is_some(), "stream"),
    ];
    for (key, given, for_kind) in misplaced {
        if given && for_kind != kind {
            return src.at(e, format!("{here}: `{key}` applies to {for_kind} probes; {probe:?} is a {kind} probe"));
        }
    }
    if x.elapsed_ms.is_some() && kind == "ping" {
        return src.at(e, format!("{here}: `elapsed_ms` applies to connect and stream probes"));
    }
    for r in [&x.result, &x.client_error, &x.server_error].into_iter().flatten() {
        let ok = r == "ok"
            || r == "none"
            || r == "timeout"
            || (r.len() > 1 && r.starts_with('E') && r.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()));
        if !ok {
            return src.at(
                e,
                format!(
                    "{here}: {r:?} is not an outcome: write ok, none, timeout or an errno name such as ECONNREFUSED"
                ),
            );
        }
    }
    for s in x.icmp_errors.iter().flatten() {
        let parts: Vec<&str> = s.split_whitespace().collect();
        if !matches!(parts.as_slice(), [_, "from", a] if a.parse::<IpAddr>().is_ok()) {
            return src.at(e, format!("{here}: icmp_errors entry {s:?}: write `<kind> from <address>`, e.g. \"host-unreachable from 172.17.0.2\""));
        }
    }
    let mut counters = Vec::new();
    for (k, c) in &x.counters {
        let Some((ns, key)) = k.split_once(':') else {
            return src.at(
                e,
                format!("{here}: counter {k:?}: write \"namespace: Group.Field\", e.g. \"host: Ip.InAddrErrors\""),
            );
        };
        let (ns, key) = (ns.trim(), key.trim());
        if !devices.contains_key(ns) {
            return src.at(e, format!("{here}: counter {k:?}: no namespace {ns:?}"));
        }
        let valid = key.split_once('.').is_some_and(|(g, f)| !g.is_empty() && !f.is_empty() && !f.contains('.'));
        if !valid {
            return src.at(e, format!("{here}: counter {k:?}: {key:?} is not Group.Field (Ip.InAddrErrors, TcpExt.TCPTimeouts, Conntrack.invalid)"));
        }
        counters.push(CounterExp { ns: ns.into(), key: key.into(), count: *c });
    }
    let mut packets = Vec::new();
    for (k, c) in &x.packets {
        let Some((at, m)) = k.split_once(':') else {
            return src.at(e, format!("{here}: packets {k:?}: write \"namespace/interface: matcher\", e.g. \"host/eno1: icmp echo-reply\""));
        };
        let at = parse_iface(at).or_else(|m| src.at(e, format!("{here}: packets {k:?}: {m}")))?;
        if !captures.contains(&at) {
            return src.at(e, format!("{here}: packets {k:?}: {at} is not captured; add it to `capture`"));
        }
        let matcher = Matcher::parse(m).or_else(|err| src.at(e, format!("{here}: packets {k:?}: {err}")))?;
        packets.push(PacketExp { at, matcher, count: *c });
    }
    for k in x.qdisc.keys().chain(x.links.keys()) {
        let at = parse_iface(k).or_else(|m| src.at(e, format!("{here}: {m}")))?;
        if !devices.get(&at.ns).is_some_and(|d| d.contains(&at.dev)) {
            return src.at(e, format!("{here}: {k:?}: no such interface in the fixture"));
        }
    }
    if let Some(w) = &x.elapsed_ms {
        match (&w.neigh_failure, w.tolerance_ms, w.min.or(w.max)) {
            (Some(n), Some(_), None) => {
                let at = parse_iface(n).or_else(|m| src.at(e, format!("{here}: elapsed_ms.neigh_failure: {m}")))?;
                if !devices.get(&at.ns).is_some_and(|d| d.contains(&at.dev)) {
                    return src
                        .at(e, format!("{here}: elapsed_ms.neigh_failure {n:?}: no such interface in the fixture"));
                }
            }
            (Some(_), None, _) => return src.at(e, format!("{here}: elapsed_ms.neigh_failure needs tolerance_ms")),
            (Some(_), _, Some(_)) => {
                return src.at(e, format!("{here}: elapsed_ms: give neigh_failure or min/max, not both"))
            }
            (None, Some(_), _) => return src.at(e, format!("{here}: elapsed_ms.tolerance_ms goes with neigh_failure")),
            (None, None, None) => return src.at(e, format!("{here}: elapsed_ms: give min, max or neigh_failure")),
            (None, None, Some(_)) => {}
        }
    }
    for k in x.rules.keys() {
        let source_ns =
            k.split_once(':').and_then(|(s, _)| crate::case::syntax::split_source(s).ok()).map(|(ns, _)| ns);
        match (source_ns, k.split_once(':')) {
            (Some(ns), Some((_, rule))) if devices.contains_key(ns) && !rule.trim().is_empty() => {}
            _ => {
                return src.at(e, format!("{here}: rules {k:?}: write \"namespace: -A CHAIN ...\" as iptables-save prints the rule, or \"namespace: policy <table> <CHAIN>\"; \"namespace (legacy): ...\" or \"namespace (nft): ...\" picks the backend"))
            }
        }
    }
    for k in x.conntrack.keys() {
        match k.split_once(':') {
            Some((ns, words)) if devices.contains_key(ns.trim()) && !words.trim().is_empty() => {}
            _ => return src.at(e, format!("{here}: conntrack {k:?}: write \"namespace: words of the entry\", e.g. \"host: dst=10.96.0.10 [UNREPLIED]\"")),
        }
    }
    let mut neighbours = Vec::new();
    for (k, state) in &x.neighbours {
        let parsed = k.split_once(':').and_then(|(ns, ip)| Some((ns.trim(), ip.trim().parse::<IpAddr>().ok()?)));
        let Some((ns, ip)) = parsed else {
            return src.at(e, format!("{here}: neighbours {k:?}: write \"namespace: address\""));
        };
        if !devices.contains_key(ns) {
            return src.at(e, format!("{here}: neighbours {k:?}: no namespace {ns:?}"));
        }
        const STATES: &[&str] =
            &["INCOMPLETE", "REACHABLE", "STALE", "DELAY", "PROBE", "FAILED", "NOARP", "PERMANENT", "NONE", "ABSENT"];
        if !STATES.contains(&state.as_str()) {
            return src.at(e, format!("{here}: neighbours {k:?}: state {state:?} is not one of {}", STATES.join(", ")));
        }
        neighbours.push(NeighExp { ns: ns.into(), ip, state: state.clone() });
    }
    let mut drops = Vec::new();
    for (k, c) in &x.drops {
        let parsed = k.split_once(':').map(|(at, r)| (at.trim(), r.trim()));
        let Some((at, reason)) = parsed.filter(|(_, r)| {
            !r.is_empty() && r.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        }) else {
            return src.at(e, format!("{here}: drops {k:?}: write \"namespace: REASON\" or \"namespace/interface: REASON\", REASON as the kernel names it without SKB_DROP_REASON_ (e.g. \"host/docker0: QDISC_DROP\")"));
        };
        let (ns, dev) = match at.split_once('/') {
            Some((n, d)) => (n.trim(), Some(d.trim().to_string())),
            None => (at, None),
        };
        if !devices.contains_key(ns) {
            return src.at(e, format!("{here}: drops {k:?}: no namespace {ns:?}"));
        }
        if let Some(d) = &dev {
            if !devices[ns].contains(d) {
                return src.at(e, format!("{here}: drops {k:?}: no interface {d:?} in namespace {ns:?}"));
            }
        }
        drops.push(DropExp { ns: ns.into(), dev, reason: reason.into(), count: *c });
    }
    Ok(Check { probe: probe.into(), expect: x.clone(), counters, packets, neighbours, drops })
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
        assert!(e.contains("`result` applies to connect probes"), "{e}");
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

    #[test]
    fn an_id_is_always_a_plain_file_name() {
        for ok in ["demo", "htb-direct-qlen", "0day", "a-"] {
            assert_eq!(check_id(ok), Ok(()), "{ok}");
        }
        let long = "a".repeat(MAX_ID_LEN + 1);
        for bad in ["", "-rf", "Demo", "a/b", "/etc/passwd", "..", ".", "a.b", "a b", "ä", &long] {
            assert!(check_id(bad).is_err(), "{bad:?} passed");
        }
    }
}
