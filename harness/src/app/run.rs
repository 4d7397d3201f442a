//! `netrepro run`: the chosen cases one after another, each a
//! [`CaseResult`], printed as lines, one JSON document or a TAP 13 stream,
//! and written as JUnit when asked; then the report and the host guard.
//! SIGINT or SIGTERM ([`crate::sys::signals`]) stops the run after the
//! current phase: what ran is reported, the rest is not run, exit 130.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::case::kernel::Version;
use crate::case::plan::Plan;
use crate::evidence::record::CaseRecord;
use crate::evidence::result::{CaseResult, Status};
use crate::safety::hostguard::Guard;
use crate::sys::signals;

/// Runs a loaded case on the running kernel: a skip (with its reason) when
/// it cannot run here, else what its evidence says.
pub fn run_one(plan: &Plan, root: &Path) -> CaseResult {
    run_one_with_record(plan, root).0
}

/// As [`run_one`], with the record written to `evidence.json` when the case
/// ran (the file itself may be another run's by the time it is read: runs
/// take turns per case, not per reader).
pub fn run_one_with_record(plan: &Plan, root: &Path) -> (CaseResult, Option<CaseRecord>) {
    if let Some(why) = crate::app::preflight::skip_reason(plan) {
        return (CaseResult::skipped(plan.id(), why), None);
    }
    // A case that changes a global setting runs alone, beside no other
    // case of this or any other process (`cargo test` runs several at once).
    let _turn = match crate::app::suite::take_turn(plan) {
        Ok(f) => f,
        Err(e) => {
            let why = format!("case {}: locking /proc/sys/net for its turn: {e}", plan.id());
            return (CaseResult::failed(plan.id(), why), None);
        }
    };
    let (release, version) = match Version::running() {
        Ok(v) => v,
        Err(e) => return (CaseResult::failed(plan.id(), format!("cannot read the kernel version: {e:#}")), None),
    };
    // The report part goes in with the evidence (one swap): rendered after
    // the swap, a run killed between the two left a case without it.
    match crate::run::runner::run_case_then(plan, &release, version, root, &crate::render::report::cache_part) {
        Ok((rec, path)) => (CaseResult::of_record(&rec, &path, root), Some(rec)),
        Err(e) => (CaseResult::failed(plan.id(), format!("case {}: harness error: {e:#}", plan.id())), None),
    }
}

/// `PASS id: …`, `SKIP id: reason` or `FAIL id` and its report, as the
/// person running reads it.
pub fn human(r: &CaseResult, root: &Path) -> String {
    match r.verdict {
        Status::Pass => {
            let mut s = format!(
                "PASS {}: {} phases passed on {}; evidence {}",
                r.id,
                r.phases.len(),
                r.kernel_release.as_deref().unwrap_or("?"),
                r.evidence.as_ref().map(|e| root.join(e).display().to_string()).unwrap_or_default()
            );
            for line in &r.why {
                s += &format!("\n    {line}");
            }
            for na in &r.not_available {
                s += &format!("\n    {na}");
            }
            s
        }
        Status::Skip => format!("SKIP {}: {}", r.id, r.skip_reason.as_deref().unwrap_or("")),
        Status::Fail => format!("FAIL {}\n{}", r.id, r.report.as_deref().unwrap_or("")),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `PASS`/`SKIP`/`FAIL` lines.
    Lines,
    /// One JSON document on stdout at the end.
    Json,
    /// TAP version 13 on stdout as the run goes; kselftest's exit codes.
    Tap,
}

pub struct Options {
    pub format: Format,
    /// Also write JUnit XML here.
    pub junit: Option<PathBuf>,
}

/// The JSON document of `run --json`.
#[derive(Serialize)]
struct RunJson<'a> {
    kernel_release: String,
    /// Root of a private user namespace, not real root (no BPF).
    rootless: bool,
    /// Paths in `cases` are relative to this.
    artifacts: &'a Path,
    report: Option<PathBuf>,
    /// `SIGINT` or `SIGTERM` when the run was stopped.
    stopped_by: Option<String>,
    /// The host guard's finding when the run changed the host.
    host_changed: Option<String>,
    cases: &'a [CaseResult],
}

/// The exit code of a run: 130 when stopped by a signal, 1 when any case
/// failed or the host changed; with TAP, kselftest's: 4 when nothing passed
/// (all skipped, or nothing ran).
fn exit_code(format: Format, results: &[CaseResult], stopped: bool, host_ok: bool) -> u8 {
    if !host_ok {
        1
    } else if stopped {
        signals::STOPPED_EXIT
    } else if results.iter().any(|r| r.verdict == Status::Fail) {
        1
    } else if format == Format::Tap && !results.iter().any(|r| r.verdict == Status::Pass) {
        4
    } else {
        0
    }
}

/// Runs `plans`, prints and writes as `opts` asks, writes the report,
/// checks the host with `guard`; the process's exit code.
pub fn run(plans: &[Plan], opts: &Options, guard: Guard) -> u8 {
    let root = crate::evidence::record::artifacts_root();
    // A JUnit file that cannot be written is refused before anything runs.
    if let Some(j) = &opts.junit {
        if let Err(e) = std::fs::File::create(j) {
            eprintln!("--junit {}: {e}", j.display());
            return 2;
        }
    }
    let release = Version::running().map(|(r, _)| r).unwrap_or_default();
    let mut out = std::io::stdout().lock();
    if opts.format == Format::Tap {
        let _ = out.write_all(crate::render::tap::header(plans.len()).as_bytes());
        if crate::sys::netns::rootless() {
            let _ = writeln!(out, "# rootless: root of a private user namespace, not real root (no BPF drop monitor)");
        }
        let _ = out.flush();
    }
    let mut results = Vec::new();
    for plan in plans {
        if signals::stop_requested() {
            break;
        }
        let r = run_one(plan, &root);
        match opts.format {
            Format::Lines => {
                let _ = writeln!(out, "{}", human(&r, &root));
            }
            Format::Tap => {
                let _ = out.write_all(crate::render::tap::point(results.len() + 1, &r).as_bytes());
            }
            Format::Json => {}
        }
        let _ = out.flush();
        results.push(r);
    }
    let ran = results.len();
    let stopped = signals::stop_signal().map(|s| s.as_str().to_string());
    if let Some(sig) = &stopped {
        let why = format!("stopped by {sig}: {ran} of {} cases run, the rest not run", plans.len());
        eprintln!("netrepro: {why}");
        if opts.format == Format::Tap && ran < plans.len() {
            let _ = out.write_all(crate::render::tap::bail_out(&why).as_bytes());
        }
        for p in &plans[ran..] {
            results.push(CaseResult::skipped(p.id(), format!("not run: the run was {why}")));
        }
    }
    let report = match crate::render::report::write(&root) {
        Ok(p) => {
            match opts.format {
                Format::Lines => {
                    let _ = writeln!(out, "report: {}", p.display());
                }
                Format::Tap => {
                    let _ = writeln!(out, "# report: {}", p.display());
                }
                Format::Json => {}
            }
            Some(p)
        }
        Err(e) => {
            eprintln!("writing the report: {e:#}");
            None
        }
    };
    let host_changed = guard.check().err();
    if let Some(h) = &host_changed {
        eprintln!("{h}");
        if opts.format == Format::Tap {
            let _ = out.write_all(crate::render::tap::diagnostics(h, "").as_bytes());
        }
    } else if stopped.is_some() {
        eprintln!("netrepro: host guard: the host's network state is as before the run");
    }
    let mut code = exit_code(opts.format, &results[..ran], stopped.is_some(), host_changed.is_none());
    if opts.format == Format::Json {
        let doc = RunJson {
            kernel_release: release.clone(),
            rootless: crate::sys::netns::rootless(),
            artifacts: &root,
            report,
            stopped_by: stopped.clone(),
            host_changed,
            cases: &results,
        };
        match serde_json::to_string_pretty(&doc) {
            Ok(s) => {
                let _ = writeln!(out, "{s}");
            }
            Err(e) => {
                eprintln!("--json: {e}");
                code = code.max(1);
            }
        }
    }
    let _ = out.flush();
    if let Some(j) = &opts.junit {
        if let Err(e) = write_junit(j, "netrepro", &release, stopped.as_deref(), &results) {
            eprintln!("--junit {}: {e:#}", j.display());
            code = code.max(1);
        }
    }
    code
}

/// `results` as JUnit XML at `path`.
pub fn write_junit(
    path: &Path,
    suite: &str,
    release: &str,
    stopped: Option<&str>,
    results: &[CaseResult],
) -> Result<()> {
    let mut props = vec![("kernel", release.to_string()), ("rootless", crate::sys::netns::rootless().to_string())];
    if let Some(s) = stopped {
        props.push(("stopped-by", s.to_string()));
    }
    let xml = crate::render::junit::write(suite, &props, results)?;
    std::fs::write(path, xml).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let pass = || {
            let mut r = CaseResult::failed("a", "");
            r.verdict = Status::Pass;
            r
        };
        let skip = || CaseResult::skipped("b", "why");
        let fail = || CaseResult::failed("c", "report");
        for (format, results, stopped, host_ok, want) in [
            (Format::Tap, vec![pass(), skip()], false, true, 0),
            (Format::Tap, vec![pass(), fail(), skip()], false, true, 1),
            (Format::Tap, vec![skip()], false, true, 4),
            (Format::Tap, vec![], false, true, 4),
            (Format::Lines, vec![skip()], false, true, 0),
            (Format::Lines, vec![pass(), fail()], false, true, 1),
            (Format::Json, vec![pass()], true, true, 130),
            (Format::Lines, vec![pass()], true, false, 1),
            (Format::Lines, vec![pass()], false, false, 1),
        ] {
            assert_eq!(
                exit_code(format, &results, stopped, host_ok),
                want,
                "{format:?} stopped {stopped} host {host_ok}"
            );
        }
    }
}
