//! `netrepro`: list, check and run incident cases.

use std::process::ExitCode;

use netrepro::hostguard::HostState;
use netrepro::suite::{self, Verdict};

const USAGE: &str = "\
netrepro — Linux container-networking incidents as tests on a real kernel

usage:
  netrepro list                 every case with its report title and URLs
  netrepro check [ID...]        load and validate cases (all by default); builds nothing
  netrepro run ID... | --all    run cases on this kernel (needs root); exit 1 on any failure
  netrepro matrix DIR           the kernel x case table of a ci/kernel-matrix run (DIR/<release>/...)

environment:
  NETREPRO_CASES, NETREPRO_FIXTURES   case and fixture directories (default: the repository's)
  NETREPRO_ARTIFACTS                  where pcaps and evidence go (default: target/netrepro)";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cases = suite::discover(&suite::cases_dir(), &suite::fixtures_dir());
    match args.first().map(String::as_str) {
        Some("list") => {
            for (id, loaded) in &cases {
                match loaded {
                    Ok(p) => {
                        println!("{id}\n    {}\n    fixture: {}", p.case.title, p.case.fixture.get_ref());
                        for u in &p.case.urls {
                            println!("    {u}");
                        }
                    }
                    Err(e) => println!("{id}\n    INVALID: {e}"),
                }
            }
            ExitCode::SUCCESS
        }
        Some("check") => {
            let wanted = &args[1..];
            let mut bad = 0;
            for (id, loaded) in cases.iter().filter(|(id, _)| wanted.is_empty() || wanted.contains(id)) {
                match loaded {
                    Ok(p) => println!("ok      {id} ({} phases, fixture {})", p.phases.len(), p.case.fixture.get_ref()),
                    Err(e) => {
                        bad += 1;
                        println!("INVALID {e}");
                    }
                }
            }
            if bad > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Some("run") if args.len() > 1 => run(&args[1..], cases),
        Some("matrix") if args.len() == 2 => {
            let runs = netrepro::matrix::load(std::path::Path::new(&args[1]));
            if runs.is_empty() {
                eprintln!("no kernel results under {}", args[1]);
                return ExitCode::from(2);
            }
            print!("{}", netrepro::matrix::table(&runs));
            ExitCode::SUCCESS
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

fn run(wanted: &[String], cases: Vec<(String, Result<netrepro::plan::Plan, netrepro::plan::LoadError>)>) -> ExitCode {
    let all = wanted.iter().any(|w| w == "--all");
    for w in wanted.iter().filter(|w| *w != "--all") {
        if !cases.iter().any(|(id, _)| id == w) {
            eprintln!("no case {w:?}; `netrepro list` shows them");
            return ExitCode::from(2);
        }
    }
    if let Some(p) = suite::privilege_problem() {
        eprintln!("{p}");
        return ExitCode::from(2);
    }
    let before = match HostState::capture() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("host guard: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let mut failed = 0;
    for (id, loaded) in cases.into_iter().filter(|(id, _)| all || wanted.contains(id)) {
        let plan = match loaded {
            Ok(p) => p,
            Err(e) => {
                failed += 1;
                println!("INVALID {e}");
                continue;
            }
        };
        match suite::run(&plan) {
            Verdict::Pass(s) => println!("PASS {id}: {s}"),
            Verdict::Skip(s) => println!("SKIP {id}: {s}"),
            Verdict::Fail(report) => {
                failed += 1;
                println!("FAIL {id}\n{report}");
            }
        }
    }
    match HostState::capture() {
        Ok(after) => {
            let diff = HostState::diff(&before, &after);
            if !diff.is_empty() {
                eprintln!("HOST GUARD: the run changed the host's own network state:");
                for d in diff {
                    eprintln!("  {d}");
                }
                return ExitCode::FAILURE;
            }
        }
        Err(e) => {
            eprintln!("host guard: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
