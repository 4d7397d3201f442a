//! Finding cases and running one the way both front ends (the `cases` test
//! target and the `netrepro` CLI) do.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::case::kernel::Version;
use crate::case::plan::{self, LoadError, Plan};
use crate::evidence::record::artifacts_root;
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

/// Whether CLI command `cmd` reads the cases (so that a cases or fixtures
/// directory that is missing is its error; `status`, `down`, `report` ...
/// do not need one).
pub fn needs_cases(cmd: Option<&str>) -> bool {
    matches!(cmd, Some("list" | "check" | "run" | "soak" | "__keep"))
}

pub enum Verdict {
    Pass(String),
    Fail(String),
    Skip(String),
}

/// Runs a loaded case on the running kernel.
pub fn run(plan: &Plan) -> Verdict {
    if let Some(why) = crate::app::preflight::skip_reason(plan) {
        return Verdict::Skip(why);
    }
    let (release, version) = match Version::running() {
        Ok(v) => v,
        Err(e) => return Verdict::Fail(format!("cannot read the kernel version: {e:#}")),
    };
    match runner::run_case(plan, &release, version, &artifacts_root()) {
        Ok((rec, path)) if rec.passed() => {
            let mut s = format!("{} phases passed on {release}; evidence {}", rec.phases.len(), path.display());
            for line in rec.why_lines() {
                s += &format!("\n    {line}");
            }
            Verdict::Pass(s)
        }
        Ok((rec, path)) => Verdict::Fail(rec.failure_report(&path)),
        Err(e) => Verdict::Fail(format!("case {}: harness error: {e:#}", plan.id())),
    }
}
