//! `cargo test --test cases [-- <id>]`: every `cases/*.toml` as one trial,
//! with the host's network state checked before and after the run.

use std::process::ExitCode;
use std::time::Instant;

use libtest_mimic::{Arguments, Completion, Failed, Trial};
use netrepro::app::suite::{self, Verdict};
use netrepro::safety::hostguard::Guard;

fn main() -> ExitCode {
    // As a normal user: root of a private user namespace (before any thread).
    let rootless = netrepro::sys::netns::become_userns_root();
    let mut args = Arguments::from_args();
    // Cases mostly wait: more at once than CPUs (suite::default_threads),
    // with the fds that takes.
    args.test_threads = args.test_threads.or_else(suite::default_threads);
    netrepro::sys::rlimit::raise_nofile();
    match &rootless {
        Ok(true) => eprintln!("netrepro: not root: running in a private user namespace"),
        Ok(false) => {}
        Err(e) => eprintln!("netrepro: {e:#}"),
    }
    let started = Instant::now();
    let cases = suite::discover(&suite::cases_dir(), &suite::fixtures_dir());
    let listing = args.list;
    // Skips are decided here, at listing time too, so that every runner
    // (cargo test, cargo-nextest, which lists first) reports them as skipped.
    let no_privileges = netrepro::app::preflight::privilege_problem();
    if let (Some(p), false) = (&no_privileges, listing) {
        eprintln!("{p}");
    }
    let trials: Vec<Trial> = cases
        .into_iter()
        .map(|(id, loaded)| {
            let skip = match &loaded {
                Ok(plan) => no_privileges.clone().or_else(|| netrepro::app::preflight::skip_reason(plan)),
                Err(_) => None,
            };
            if let (Some(why), false) = (&skip, listing) {
                eprintln!("netrepro: skip {id}: {why}");
            }
            let ignored = skip.is_some();
            Trial::ignorable_test(id, move || {
                let plan = loaded.map_err(|e| Failed::from(e.to_string()))?;
                if let Some(why) = skip {
                    return Ok(Completion::ignored_with(why));
                }
                let verdict = suite::run(&plan);
                if !matches!(verdict, Verdict::Skip(_)) {
                    schema_check(&netrepro::evidence::record::artifacts_root().join(plan.id()).join("evidence.json"))?;
                }
                match verdict {
                    Verdict::Pass(_) => Ok(Completion::Completed),
                    Verdict::Skip(why) => Ok(Completion::ignored_with(why)),
                    Verdict::Fail(report) => Err(report.into()),
                }
            })
            .with_ignored_flag(ignored)
        })
        .collect();

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
        code = ExitCode::FAILURE;
    }
    if !listing && no_privileges.is_none() {
        match netrepro::render::report::write(&netrepro::evidence::record::artifacts_root()) {
            Ok(p) => eprintln!("netrepro: report {}", p.display()),
            Err(e) => eprintln!("netrepro: writing the report: {e:#}"),
        }
    }
    if !listing {
        eprintln!("netrepro: suite wall time {:.2} s", started.elapsed().as_secs_f64());
    }
    code
}

/// The shipped schema (compiled in: the kernel matrix's guests run this
/// binary without the repository beside it).
const SCHEMA: &str = include_str!("../docs/evidence.schema.json");

/// Every run's `evidence.json` is valid against `docs/evidence.schema.json`.
fn schema_check(path: &std::path::Path) -> Result<(), Failed> {
    let schema: serde_json::Value =
        serde_json::from_str(SCHEMA).map_err(|e| format!("docs/evidence.schema.json: {e}"))?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| format!("docs/evidence.schema.json: {e}"))?;
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let record: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    let errors: Vec<String> =
        validator.iter_errors(&record).take(10).map(|e| format!("{} at {}", e, e.instance_path())).collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(format!("{} does not match docs/evidence.schema.json:\n  {}", path.display(), errors.join("\n  ")).into())
    }
}
