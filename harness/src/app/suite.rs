//! Finding cases and running one the way both front ends (the `cases` test
//! target and the `netrepro` CLI) do.

use std::path::{Path, PathBuf};

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

/// Every `*.toml` case, sorted by file name, each loaded and validated.
pub fn discover(cases: &Path, fixtures: &Path) -> Vec<(String, Result<Plan, LoadError>)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(cases)
        .map(|d| {
            d.filter_map(|e| e.ok()).map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "toml")).collect()
        })
        .unwrap_or_default();
    files.retain(|p| p.file_name().is_some_and(|n| n != "Cargo.toml"));
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let id = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            (id, plan::load(&p, fixtures))
        })
        .collect()
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
