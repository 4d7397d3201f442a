//! `cargo test --test cases [-- <id>]`: every `cases/*.toml` as one trial,
//! with the host's network state checked before and after the run.
//!
//! A case that cannot run here is an ignored trial with its reason, decided
//! when trials are listed, so every runner (cargo test, cargo-nextest, which
//! lists first) counts it as skipped. Run anyway (`--ignored`,
//! `--include-ignored`, `nextest --run-ignored`), it fails saying why: it is
//! never reported passed without having run.
//!
//! `NETREPRO_TAP=FILE` writes the run as TAP 13 (as it goes, phases as
//! subtests), `NETREPRO_JUNIT=FILE` as JUnit XML at the end: every trial this
//! invocation selected, skips with their reasons. The kernel matrix reads
//! these, never the human output.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use libtest_mimic::{Arguments, Failed, Trial};
use netrepro::evidence::result::{CaseResult, Status};
use netrepro::safety::hostguard::Guard;

/// The results of this invocation, and the TAP stream they go to as they come.
#[derive(Default)]
struct Results {
    done: Vec<CaseResult>,
    tap: Option<std::fs::File>,
}

impl Results {
    fn add(&mut self, r: CaseResult) {
        if let Some(f) = &mut self.tap {
            let _ = f.write_all(netrepro::render::tap::point(self.done.len() + 1, &r).as_bytes());
            let _ = f.flush();
        }
        self.done.push(r);
    }
}

fn main() -> ExitCode {
    // As a normal user: root of a private user namespace (before any thread).
    let rootless = netrepro::sys::netns::become_userns_root();
    let mut args = Arguments::from_args();
    // Cases mostly wait: more at once than CPUs (suite::default_threads),
    // with the fds that takes.
    args.test_threads = args.test_threads.or_else(netrepro::app::suite::default_threads);
    netrepro::sys::rlimit::raise_nofile();
    match &rootless {
        Ok(true) => eprintln!("netrepro: not root: running in a private user namespace"),
        Ok(false) => {}
        Err(e) => eprintln!("netrepro: {e:#}"),
    }
    let started = Instant::now();
    let cases =
        match netrepro::app::suite::discover(&netrepro::app::suite::cases_dir(), &netrepro::app::suite::fixtures_dir())
        {
            Ok(c) => c,
            Err(e) => {
                eprintln!("netrepro: {e:#}");
                return ExitCode::FAILURE;
            }
        };
    let listing = args.list;
    let root = netrepro::evidence::record::artifacts_root();
    // Several run at once: the longest start first.
    let mut cases = cases;
    netrepro::app::suite::longest_first(&mut cases, &root);
    let results: Arc<Mutex<Results>> = Arc::default();
    // Skips are decided here, at listing time too, so that every runner
    // (cargo test, cargo-nextest, which lists first) reports them as skipped.
    let no_privileges = netrepro::app::preflight::privilege_problem();
    if let (Some(p), false) = (&no_privileges, listing) {
        eprintln!("{p}");
    }
    let mut skips = BTreeMap::new();
    let trials: Vec<Trial> = cases
        .into_iter()
        .map(|(id, loaded)| {
            let skip = match &loaded {
                // Everything the case lacks at once, the privilege included.
                Ok(plan) => netrepro::app::preflight::skip_reason(plan),
                Err(_) => None,
            };
            if let (Some(why), false) = (&skip, listing) {
                eprintln!("netrepro: skip {id}: {why}");
                skips.insert(id.clone(), why.clone());
            }
            let ignored = skip.is_some();
            let (results, root, name) = (results.clone(), root.clone(), id.clone());
            Trial::test(id, move || {
                let r = trial(&name, loaded, skip, &root);
                let failed = match r.verdict {
                    Status::Fail => Some(r.report.clone().unwrap_or_default()),
                    _ => None,
                };
                results.lock().unwrap_or_else(|e| e.into_inner()).add(r);
                failed.map_or(Ok(()), |report| Err(Failed::from(report)))
            })
            .with_ignored_flag(ignored)
        })
        .collect();

    let (tap, junit) = if listing {
        (None, None)
    } else {
        (std::env::var_os("NETREPRO_TAP").map(PathBuf::from), std::env::var_os("NETREPRO_JUNIT").map(PathBuf::from))
    };
    if let Some(path) = &tap {
        let selected = trials.iter().filter(|t| !args.is_filtered_out(t)).count();
        match std::fs::File::create(path) {
            Ok(mut f) => {
                let _ = f.write_all(netrepro::render::tap::header(selected).as_bytes());
                results.lock().unwrap().tap = Some(f);
            }
            Err(e) => {
                eprintln!("NETREPRO_TAP={}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    // The trials libtest-mimic will report as ignored without running them.
    for t in trials.iter().filter(|t| !args.is_filtered_out(t) && args.is_ignored(t)) {
        let why = skips.get(t.name()).cloned().unwrap_or_default();
        results.lock().unwrap().add(CaseResult::skipped(t.name(), why));
    }

    let guard = if listing || no_privileges.is_some() {
        None
    } else {
        match Guard::start() {
            Ok(g) => Some(g),
            Err(e) => {
                eprintln!("{e:#}");
                return ExitCode::FAILURE;
            }
        }
    };
    let conclusion = libtest_mimic::run(&args, trials);
    let mut code = conclusion.exit_code();
    if let Some(Err(report)) = guard.map(Guard::check) {
        eprintln!("{report}");
        if let Some(f) = &mut results.lock().unwrap().tap {
            let _ = f.write_all(netrepro::render::tap::diagnostics(&report, "").as_bytes());
        }
        code = ExitCode::FAILURE;
    }
    if !listing && no_privileges.is_none() {
        match netrepro::render::report::write(&root) {
            Ok(p) => eprintln!("netrepro: report {}", p.display()),
            Err(e) => eprintln!("netrepro: writing the report: {e:#}"),
        }
    }
    if let Some(path) = &junit {
        let mut done = std::mem::take(&mut results.lock().unwrap().done);
        done.sort_by(|a, b| a.id.cmp(&b.id));
        let release = netrepro::case::kernel::Version::running().map(|(r, _)| r).unwrap_or_default();
        if let Err(e) = netrepro::app::run::write_junit(path, "cases", &release, None, &done) {
            eprintln!("NETREPRO_JUNIT: {e:#}");
            code = ExitCode::FAILURE;
        }
    }
    if !listing {
        eprintln!("netrepro: suite wall time {:.2} s", started.elapsed().as_secs_f64());
    }
    code
}

/// One trial: the case's result. A case skipped when listed and run anyway,
/// or one that cannot run now though it could when listed, fails.
fn trial(
    id: &str,
    loaded: Result<netrepro::case::plan::Plan, netrepro::case::plan::LoadError>,
    skip: Option<String>,
    root: &std::path::Path,
) -> CaseResult {
    if let Some(why) = skip {
        return CaseResult::failed(
            id,
            format!(
                "{id} cannot run here: {why}\n\
                 It is listed as ignored for that reason; run anyway (--ignored, --include-ignored, \
                 nextest --run-ignored) it fails, because a case that did not run must never count as passed."
            ),
        );
    }
    let plan = match loaded {
        Ok(p) => p,
        Err(e) => return CaseResult::failed(id, e.to_string()),
    };
    let (r, record) = netrepro::app::run::run_one_with_record(&plan, root);
    if r.verdict == Status::Skip {
        return CaseResult::failed(
            id,
            format!(
                "{id} was listed to run but cannot run now: {}",
                r.skip_reason.as_deref().unwrap_or("(no reason given)")
            ),
        );
    }
    // The record as written to evidence.json (the file may already be a
    // concurrent run's: two suites take turns per case).
    let Some(evidence) = r.evidence.as_ref().map(|e| root.join(e)) else { return r };
    match record.map(|rec| schema_check(&evidence, &rec)) {
        Some(Err(e)) => CaseResult { verdict: Status::Fail, report: Some(e), ..r },
        _ => r,
    }
}

/// The shipped schema (compiled in: the kernel matrix's guests run this
/// binary without the repository beside it).
const SCHEMA: &str = include_str!("../docs/evidence.schema.json");

/// Every run's `evidence.json` (at `path`, written from `rec`) is valid
/// against `docs/evidence.schema.json`.
fn schema_check(path: &std::path::Path, rec: &netrepro::evidence::record::CaseRecord) -> Result<(), String> {
    let schema: serde_json::Value =
        serde_json::from_str(SCHEMA).map_err(|e| format!("docs/evidence.schema.json: {e}"))?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| format!("docs/evidence.schema.json: {e}"))?;
    // The same serialization the runner wrote.
    let record = serde_json::to_value(rec).map_err(|e| format!("{}: {e}", path.display()))?;
    let errors: Vec<String> =
        validator.iter_errors(&record).take(10).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{} does not match docs/evidence.schema.json:\n  {}", path.display(), errors.join("\n  ")))
    }
}
