//! Preflight: whether a case can run here at all (privileges, global
//! settings, tools, kernel features seen through their sysctls). A case that
//! cannot is a skip naming everything it lacks at once, each with what
//! brings it (a Debian package, a module, a setting), never a pass.

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

/// Everything `plan` needs that this machine lacks, one line each, with
/// what brings it: the privilege to create namespaces, permission to change
/// global settings, every tool missing from PATH (and its package), every
/// `sysctl:` feature missing (and the module and kernel option behind it).
pub fn missing(plan: &Plan) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = privilege_problem_once() {
        out.push(p.to_string());
    }
    if let Some(why) = crate::safety::globals::skip_reason(&plan.globals()) {
        out.push(why);
    }
    // A kernel range the case was never run on: nothing claimed there.
    if let Some(why) = crate::case::kernel::Version::running().ok().and_then(|(_, v)| plan.unchecked_on(v)) {
        out.push(why);
    }
    for k in link_kinds(plan) {
        if !kernel_has(k) {
            out.push(format!(
                "link kind {} ({}), which this kernel cannot create: it runs in the kernel matrix's guests",
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
    let mut seen = std::collections::BTreeSet::new();
    tools.retain(|t| seen.insert(t.clone()));
    for t in &tools {
        // CPUs a race needs to run at once (checked at load: a number).
        if let Some(n) = t.strip_prefix("cpus:") {
            let want: usize = n.parse().unwrap_or(usize::MAX);
            let have = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
            if have < want {
                out.push(format!(
                    "{want} CPUs (this machine lets the run use {have}): what it races needs them at once"
                ));
            }
            continue;
        }
        // A kernel feature seen through its sysctl (a module not loaded).
        if let Some(key) = t.strip_prefix("sysctl:") {
            if crate::case::syntax::path_of(key).map(|p| !p.exists()).unwrap_or(true) {
                out.push(format!(
                    "sysctl {key}, which this kernel does not have: {}",
                    crate::sys::sysctl::module_hint(key)
                ));
            }
            continue;
        }
        if crate::sys::cmd::which(t).is_none() {
            let get = match crate::sys::cmd::package_for(t) {
                Some(p) => format!("install Debian package `{p}`"),
                None => "no known Debian package provides it".to_string(),
            };
            out.push(format!("`{t}`, not found on PATH: {get}"));
        }
    }
    out
}

/// Why a case cannot run here: everything it lacks ([`missing`]) in one
/// line; a skip, never a pass.
pub fn skip_reason(plan: &Plan) -> Option<String> {
    match missing(plan).as_slice() {
        [] => None,
        [one] => Some(format!("cannot run here: {one}")),
        many => Some(format!("cannot run here, {} things missing: {}", many.len(), many.join("; "))),
    }
}

/// One line saying what is missing when namespaces cannot be created here.
pub fn privilege_problem() -> Option<String> {
    crate::sys::netns::can_create_namespaces().err().map(|e| {
        format!("netrepro cannot create network namespaces here ({e}); run as root, e.g. `sudo -E cargo test`")
    })
}

/// [`privilege_problem`], asked once per process (it creates a namespace).
fn privilege_problem_once() -> Option<&'static str> {
    static P: OnceLock<Option<String>> = OnceLock::new();
    P.get_or_init(privilege_problem).as_deref()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_unchecked_on_this_kernel_makes_the_case_a_skip() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = "description = \"d\"\n[[namespace]]\nname = \"a\"\n";
        // `>=0` holds on every kernel, this one included.
        let case = "id = \"t\"\ntitle = \"t\"\nurls = [\"https://example.org/issue\"]\nsymptom = \"s\"\nfix = \"f\"\nfixture = \"f\"\n\
             [probes]\nping = { kind = \"ping\", from = \"a\", to = \"10.0.0.2\" }\n\
             [[phase]]\nname = \"baseline\"\n[phase.expect.ping]\nreplies = 0\n\
             [[phase]]\nname = \"fault\"\nkernel = \">=0\"\nupstream = \"u\"\nunchecked = \"never run\"\n";
        std::fs::write(dir.path().join("f.toml"), fixture).unwrap();
        std::fs::write(dir.path().join("t.toml"), case).unwrap();
        let plan = crate::case::plan::load(&dir.path().join("t.toml"), dir.path()).unwrap();
        let why = skip_reason(&plan).unwrap();
        assert!(
            why.contains("phase fault is not checked on kernel") && why.contains("(its variant >=0): never run"),
            "{why}"
        );
    }

    #[test]
    fn a_skip_names_every_missing_tool_and_sysctl_with_what_brings_it() {
        let dir = tempfile::tempdir().unwrap();
        let fixture = "description = \"d\"\n[[namespace]]\nname = \"a\"\n";
        // ip_vs's sysctl, or (where ip_vs is loaded) a key under it that no
        // kernel has: the module comes from the prefix either way.
        let key = if std::path::Path::new("/proc/sys/net/ipv4/vs/conn_reuse_mode").exists() {
            "net.ipv4.vs.netrepro_no_such_key"
        } else {
            "net.ipv4.vs.conn_reuse_mode"
        };
        let case = format!(
            "id = \"t\"\ntitle = \"t\"\nurls = [\"https://example.org/issue\"]\nsymptom = \"s\"\nfix = \"f\"\nfixture = \"f\"\n\
             requires = [\"netrepro-no-such-tool\", \"ipvsadm\", \"sysctl:{key}\", \"sh\", \"cpus:4096\", \"cpus:1\"]\n\
             [probes]\nping = {{ kind = \"ping\", from = \"a\", to = \"10.0.0.2\" }}\n[[phase]]\nname = \"baseline\"\n[phase.expect.ping]\nreplies = 0\n"
        );
        std::fs::write(dir.path().join("f.toml"), fixture).unwrap();
        std::fs::write(dir.path().join("t.toml"), case).unwrap();
        let plan = crate::case::plan::load(&dir.path().join("t.toml"), dir.path()).unwrap();
        let m = missing(&plan);
        let has_ipvsadm = crate::sys::cmd::which("ipvsadm").is_some();
        let privileged = privilege_problem_once().is_none();
        assert_eq!(m.len(), 3 + usize::from(!has_ipvsadm) + usize::from(!privileged), "{m:#?}");
        let why = skip_reason(&plan).unwrap();
        assert!(
            why.contains("`netrepro-no-such-tool`, not found on PATH: no known Debian package provides it"),
            "{why}"
        );
        if !has_ipvsadm {
            assert!(why.contains("`ipvsadm`, not found on PATH: install Debian package `ipvsadm`"), "{why}");
        }
        assert!(
            why.contains(&format!(
                "sysctl {key}, which this kernel does not have: module ip_vs (CONFIG_IP_VS) brings it"
            )),
            "{why}"
        );
        assert!(why.contains("4096 CPUs (this machine lets the run use "), "{why}");
        assert!(
            !why.contains("1 CPUs") && !why.contains("the package that provides it") && !why.contains("`sh`"),
            "{why}"
        );
    }
}
