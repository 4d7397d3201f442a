//! Preflight: whether a case can run here at all (tools, kernel features,
//! global settings, privileges). A case that cannot is a skip with the
//! reason, never a pass.

use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};

use crate::case::object::LinkKind;
use crate::case::plan::Plan;
use crate::case::spec::Step;

/// The link kinds a case creates (fixture `[[link]]`, `link-add` steps).
pub fn link_kinds(plan: &Plan) -> Vec<LinkKind> {
    let steps = plan.setup.iter().chain(plan.phases.iter().flat_map(|p| &p.steps));
    let mut kinds: Vec<LinkKind> = plan.fixture.links.iter().map(|l| l.get_ref().kind).collect();
    kinds.extend(steps.filter_map(|s| match s {
        Step::LinkAdd(l) => Some(l.kind),
        _ => None,
    }));
    kinds.sort();
    kinds.dedup();
    kinds
}

/// Whether this kernel creates `kind`, probed once per process in a
/// throwaway namespace (where modules load on demand, the probe loads it).
/// Without the privilege to probe, the kind counts as available: the run
/// itself says what is missing.
pub fn kernel_has(kind: LinkKind) -> bool {
    static SEEN: OnceLock<Mutex<BTreeMap<LinkKind, bool>>> = OnceLock::new();
    let seen = SEEN.get_or_init(|| Mutex::new(BTreeMap::new()));
    if let Some(v) = seen.lock().unwrap().get(&kind) {
        return *v;
    }
    let probe = || -> anyhow::Result<bool> {
        let ns = crate::sys::netns::Netns::new("kind-probe")?;
        ns.run(move |ctx| crate::sys::rtnl::link::can_create(ctx, kind))?
    };
    let has = probe().unwrap_or(true);
    seen.lock().unwrap().insert(kind, has);
    has
}

/// Why a case cannot run here (missing tool, feature, privilege): a skip,
/// never a pass.
pub fn skip_reason(plan: &Plan) -> Option<String> {
    if let Some(why) = crate::safety::globals::skip_reason(&plan.globals()) {
        return Some(why);
    }
    for k in link_kinds(plan) {
        if !kernel_has(k) {
            return Some(format!(
                "needs link kind {} ({}), which this kernel cannot create: it runs in the kernel matrix's guests",
                k.word(),
                k.config()
            ));
        }
    }
    let mut tools: Vec<String> = plan.case.requires.clone();
    if plan.fixture.firewall.iter().any(|f| !f.iptables.is_empty()) && !tools.iter().any(|t| t == "iptables") {
        tools.push("iptables".into());
    }
    // The tool of every ruleset the fixture or a step loads.
    let steps = plan.setup.iter().chain(plan.phases.iter().flat_map(|p| &p.steps));
    let sets = plan.fixture.firewall.iter().flat_map(|f| f.rulesets.clone()).chain(steps.filter_map(|s| s.ruleset()));
    for r in sets {
        if !tools.iter().any(|t| t == r.tool()) {
            tools.push(r.tool().into());
        }
    }
    for t in &tools {
        // A kernel feature seen through its sysctl (a module not loaded).
        if let Some(key) = t.strip_prefix("sysctl:") {
            if crate::case::syntax::path_of(key).map(|p| !p.exists()).unwrap_or(true) {
                return Some(format!(
                    "needs sysctl {key}, which this kernel does not have{}",
                    crate::sys::sysctl::module_hint(key)
                ));
            }
            continue;
        }
        if crate::sys::cmd::which(t).is_none() {
            return Some(format!(
                "needs `{t}`, not found on PATH: install Debian package `{}`",
                crate::sys::cmd::package_for(t)
            ));
        }
    }
    None
}

/// One line saying what is missing when namespaces cannot be created here.
pub fn privilege_problem() -> Option<String> {
    crate::sys::netns::can_create_namespaces().err().map(|e| {
        format!("netrepro cannot create network namespaces here ({e}); run as root, e.g. `sudo -E cargo test`")
    })
}
