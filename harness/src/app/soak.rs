//! `netrepro soak N [ID...]`: the chosen cases (all by default) N times in
//! a row; every case that ever failed is reported with the evidence of each
//! failing run, kept.
//!
//! A run of a case replaces `<root>/<case>/`, so the evidence of a failing
//! run would be gone by the next pass. Each failing run's directory is kept
//! as `<root>/soak/<n>/<case>/` ([`crate::evidence::store::Store::keep_soak`]):
//! `soak/<n>/` is an artifacts root of its own (the pcapng paths in the
//! evidence, relative to the root, still hold; `netrepro report
//! <root>/soak/<n>` draws it). A soak starts by removing the `soak/` of the
//! one before, and holds `.soak.lock` while it runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use crate::app::suite::{self, Discovered, Ran};
use crate::evidence::store::Store;
use crate::safety::hostguard::Guard;

/// One failing run of a case.
struct Failure {
    run: u32,
    /// The kept evidence file, when the run left one and it was kept.
    evidence: Option<PathBuf>,
    /// The failure report (expected vs observed, why), or why there is none.
    report: String,
}

/// The `soak` command: the cases `ids` (all when empty) `n` times.
pub fn command(n: u32, ids: &[String], cases: Discovered) -> ExitCode {
    let plans = match suite::select(ids, cases) {
        Ok(p) => p,
        Err((code, said)) => {
            eprintln!("{said}");
            return ExitCode::from(code);
        }
    };
    if let Some(p) = crate::app::preflight::privilege_problem() {
        eprintln!("{p}");
        return ExitCode::from(2);
    }
    let guard = match Guard::start() {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    let root = crate::evidence::record::artifacts_root();
    let store = match Store::open(&root) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("soak: {e:#}");
            return guard.exit_code(false);
        }
    };
    let _lock = match store.lock("soak", "netrepro soak").and_then(|l| store.clear_soak().map(|()| l)) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("soak: {e:#}");
            return guard.exit_code(false);
        }
    };
    let started = Instant::now();
    let mut failures: BTreeMap<String, Vec<Failure>> = BTreeMap::new();
    let (mut passed, mut skipped) = (0, 0);
    for i in 1..=n {
        for p in &plans {
            let verdict = match suite::run_recorded(p) {
                Ran::Recorded(rec, _) if rec.passed() => {
                    passed += 1;
                    "pass"
                }
                Ran::Recorded(rec, path) => {
                    let f = match store.keep_soak(p.id(), i, &rec) {
                        Ok(kept) => Failure { run: i, report: rec.failure_report(&kept), evidence: Some(kept) },
                        Err(e) => Failure {
                            run: i,
                            report: format!("{}\n(not kept: {e:#})", rec.failure_report(&path)),
                            evidence: None,
                        },
                    };
                    failures.entry(p.id().to_string()).or_default().push(f);
                    "FAIL"
                }
                Ran::Error(e) => {
                    failures.entry(p.id().to_string()).or_default().push(Failure { run: i, evidence: None, report: e });
                    "FAIL"
                }
                Ran::Skip(_) => {
                    skipped += 1;
                    "skip"
                }
            };
            let failed: usize = failures.values().map(Vec::len).sum();
            eprintln!(
                "soak: run {i}/{n} · {} {verdict} · {:.0} s · so far {passed} passed, {failed} failed, {skipped} skipped",
                p.id(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    for (id, fs) in &failures {
        let kept: Vec<String> = fs
            .iter()
            .map(|f| match &f.evidence {
                Some(e) => format!("run {}: {}", f.run, e.parent().unwrap_or(e).display()),
                None => format!("run {}: no evidence", f.run),
            })
            .collect();
        println!(
            "FLAKY {id}: failed in {} of {n} runs (runs {:?}); evidence kept: {}",
            fs.len(),
            fs.iter().map(|f| f.run).collect::<Vec<_>>(),
            kept.join(", ")
        );
        for f in fs {
            println!("--- {id}, run {}:\n{}", f.run, f.report.trim_end());
        }
    }
    println!(
        "soak: {n} runs x {} cases in {:.0} s: {passed} passed, {} failures, {skipped} skipped",
        plans.len(),
        started.elapsed().as_secs_f64(),
        failures.values().map(Vec::len).sum::<usize>()
    );
    guard.exit_code(failures.is_empty())
}
