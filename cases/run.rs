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
    let args = Arguments::from_args();
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
                match suite::run(&plan) {
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
