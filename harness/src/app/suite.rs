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

/// Runs a loaded case on the running kernel.
pub fn run(plan: &Plan) -> Verdict {
    if let Some(why) = crate::app::preflight::skip_reason(plan) {
        return Verdict::Skip(why);
    }
    let _turn = match take_turn(plan) {
        Ok(f) => f,
        Err(e) => return Verdict::Fail(format!("case {}: locking /proc/sys/net for its turn: {e}", plan.id())),
    };
    let (release, version) = match Version::running() {
        Ok(v) => v,
        Err(e) => return Verdict::Fail(format!("cannot read the kernel version: {e:#}")),
    };
    let root = artifacts_root();
    let ran = runner::run_case(plan, &release, version, &root);
    if let Ok((rec, _)) = &ran {
        crate::render::fragments::remember(&root, rec, crate::render::report::part(rec));
    }
    match ran {
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
