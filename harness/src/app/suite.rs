//! Finding cases and running one the way both front ends (the `cases` test
//! target and the `netrepro` CLI) do.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::case::kernel::Version;
use crate::case::plan::{self, LoadError, Plan};
use crate::evidence::record::{artifacts_root, CaseRecord};
use crate::run::runner;

/// `$NETREPRO_CASES` or the repository's `cases/` (as built).
pub fn cases_dir() -> PathBuf {
    std::env::var_os("NETREPRO_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases"))
}

/// `$NETREPRO_FIXTURES` or the repository's `fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("NETREPRO_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures"))
}

/// Every case and whether it loaded.
pub type Discovered = Vec<(String, Result<Plan, LoadError>)>;

/// Every `*.toml` case, sorted by file name, each loaded and validated.
///
/// # Errors
/// The cases or the fixtures directory does not exist, is not a directory
/// or cannot be listed, or there is no case in it: each names the path
/// (a run that found nothing must not pass having checked nothing).
pub fn discover(cases: &Path, fixtures: &Path) -> anyhow::Result<Discovered> {
    for (what, env, dir) in [("cases", "NETREPRO_CASES", cases), ("fixtures", "NETREPRO_FIXTURES", fixtures)] {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{}: not a directory; the {what} directory must be one (${env})", dir.display()),
            Err(e) => bail!("{}: the {what} directory (${env}): {e}", dir.display()),
        }
    }
    let mut files = Vec::new();
    for e in std::fs::read_dir(cases).with_context(|| format!("{}: cannot list the cases", cases.display()))? {
        let p = e.with_context(|| format!("{}: cannot list the cases", cases.display()))?.path();
        if p.extension().is_some_and(|x| x == "toml") && p.file_name().is_some_and(|n| n != "Cargo.toml") {
            files.push(p);
        }
    }
    if files.is_empty() {
        bail!("{}: no case (*.toml) in this directory ($NETREPRO_CASES)", cases.display());
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|p| {
            let id = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            (id, plan::load(&p, fixtures))
        })
        .collect())
}

/// Puts the cases that take longest first, so that a suite running several
/// at once ends soon after its slowest case instead of starting it last
/// (alphabetically, `vxlan-csum-masquerade`'s 9 s began 3.2 s into a 12 s
/// suite). How long a case takes: its last run's `duration_ms` in `root`'s
/// evidence when there is one, else its [`Plan::worst_case_ms`]; a case
/// that did not load goes last. Stable: equal cases keep their order.
pub fn longest_first(cases: &mut Discovered, root: &Path) {
    /// Only the one field of a record (the rest is skipped unparsed).
    #[derive(serde::Deserialize)]
    struct Took {
        duration_ms: f64,
    }
    // Read as the report reads evidence: through the root's fd, no
    // symlink followed, bounded; a root not made yet is not made here.
    let store = root.is_dir().then(|| crate::evidence::store::Store::open(root).ok()).flatten();
    let took = |id: &str| -> Option<u64> {
        let dir = store.as_ref()?.dir().subdir(id, false).ok()??;
        let bytes = dir.read(crate::evidence::store::EVIDENCE, 1 << 30).ok()?;
        serde_json::from_slice::<Took>(&bytes).ok().map(|t| t.duration_ms as u64)
    };
    cases.sort_by_cached_key(|(id, loaded)| {
        std::cmp::Reverse(match loaded {
            Ok(plan) => took(id).unwrap_or_else(|| plan.worst_case_ms()),
            Err(_) => 0,
        })
    });
}

/// Whether CLI command `cmd` reads the cases (so that a cases or fixtures
/// directory that is missing is its error; `status`, `down`, `report` ...
/// do not need one).
pub fn needs_cases(cmd: Option<&str>) -> bool {
    matches!(cmd, Some("list" | "check" | "run" | "soak" | "__keep"))
}

/// The loaded plans of the `wanted` cases (all when none is named).
///
/// # Errors
/// An unknown id (exit code 2) or a case that does not load (1), with
/// what to say.
pub fn select(wanted: &[String], cases: Discovered) -> Result<Vec<Plan>, (u8, String)> {
    if let Some(w) = wanted.iter().find(|w| !cases.iter().any(|(id, _)| id == *w)) {
        return Err((2, format!("no case {w:?}; `netrepro list` shows them")));
    }
    let mut plans = Vec::new();
    for (_, loaded) in cases.into_iter().filter(|(id, _)| wanted.is_empty() || wanted.contains(id)) {
        match loaded {
            Ok(p) => plans.push(p),
            Err(e) => return Err((1, format!("INVALID {e}"))),
        }
    }
    Ok(plans)
}

pub enum Verdict {
    Pass(String),
    Fail(String),
    Skip(String),
}

/// How many cases the test target runs at once unless told
/// (`--test-threads`, `RUST_TEST_THREADS`): four per CPU. Cases spend most
/// of their time waiting on probe windows and timeouts (the host suite:
/// ~2.3 s of CPU for ~11 s of probe windows), so the suite's wall time is
/// its slowest case's plus how well the rest pack around it: on 2 CPUs,
/// 4 at once ended 1.8 s after the slowest case, 6 at once 1.0 s, 8 at
/// once 0.3 s, the slowest case no slower. Cases that change global
/// settings still run alone ([`run`]).
pub fn default_threads() -> Option<usize> {
    if std::env::var_os("RUST_TEST_THREADS").is_some() {
        return None;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some((4 * cpus).max(4))
}

/// Whether this case may share the machine: a case that changes a global
/// setting (one value for every namespace: `nf_conntrack_max`, the
/// neighbour table's thresholds, `netdev_max_backlog`) changes it under
/// every other case too, so it runs alone: an exclusive `flock` on
/// `/proc/sys/net`, which every other case holds shared while it runs.
/// The per-key lock of [`crate::safety::globals`] only keeps two writers
/// of one key apart. A lock on a directory of the kernel's, so that two
/// processes (two `cargo test`s) see the same lock, and nothing is created.
fn take_turn(plan: &Plan) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open("/proc/sys/net")?;
    let how = if plan.globals().is_empty() { libc::LOCK_SH } else { libc::LOCK_EX };
    // SAFETY: flock on an fd we own; released when the file is closed.
    if unsafe { libc::flock(f.as_raw_fd(), how) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(f)
}

/// A case run, with its record when it left one.
pub enum Ran {
    /// The record and its `evidence.json`.
    Recorded(Box<CaseRecord>, PathBuf),
    Skip(String),
    /// No evidence: the harness could not run the case (why).
    Error(String),
}

/// Runs a loaded case on the running kernel, into the artifacts root.
pub fn run_recorded(plan: &Plan) -> Ran {
    if let Some(why) = crate::app::preflight::skip_reason(plan) {
        return Ran::Skip(why);
    }
    let _turn = match take_turn(plan) {
        Ok(f) => f,
        Err(e) => return Ran::Error(format!("case {}: locking /proc/sys/net for its turn: {e}", plan.id())),
    };
    let (release, version) = match Version::running() {
        Ok(v) => v,
        Err(e) => return Ran::Error(format!("cannot read the kernel version: {e:#}")),
    };
    let root = artifacts_root();
    // The case's report part, rendered in its own time beside other cases
    // (the report that follows only assembles), goes in with its evidence.
    match runner::run_case_then(plan, &release, version, &root, &crate::render::report::cache_part) {
        Ok((rec, path)) => Ran::Recorded(Box::new(rec), path),
        Err(e) => Ran::Error(format!("case {}: harness error: {e:#}", plan.id())),
    }
}

/// Runs a loaded case on the running kernel.
pub fn run(plan: &Plan) -> Verdict {
    match run_recorded(plan) {
        Ran::Recorded(rec, path) if rec.passed() => {
            let mut s =
                format!("{} phases passed on {}; evidence {}", rec.phases.len(), rec.kernel_release, path.display());
            for line in rec.why_lines() {
                s += &format!("\n    {line}");
            }
            Verdict::Pass(s)
        }
        Ran::Recorded(rec, path) => Verdict::Fail(rec.failure_report(&path)),
        Ran::Skip(why) => Verdict::Skip(why),
        Ran::Error(e) => Verdict::Fail(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_cases_go_first_by_their_last_run_else_their_worst_case() {
        let worst = |c: &Discovered| -> Vec<u64> {
            c.iter().map(|(_, l)| l.as_ref().map_or(0, |p| p.worst_case_ms())).collect()
        };
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        // No evidence (and no root, which is not made): by worst case.
        let mut cases = discover(&cases_dir(), &fixtures_dir()).unwrap();
        longest_first(&mut cases, &root);
        assert!(!root.exists(), "ordering made the artifacts directory");
        let w = worst(&cases);
        assert!(w.windows(2).all(|p| p[0] >= p[1]), "{w:?}");
        // A last run that took longest puts its case first, whatever its worst case.
        let last = cases.last().unwrap().0.clone();
        std::fs::create_dir_all(root.join(&last)).unwrap();
        std::fs::write(root.join(&last).join("evidence.json"), r#"{"id":"x","duration_ms":1e12}"#).unwrap();
        longest_first(&mut cases, &root);
        assert_eq!(cases[0].0, last);
    }
}
