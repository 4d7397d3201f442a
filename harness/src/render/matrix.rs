//! The kernel × case table of a kernel-matrix run: one column per kernel
//! directory (`<dir>/<release>/`), one row per case and per phase, each cell
//! the verdict and, for kernel-gated phases, the range whose expectation the
//! kernel was held to.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use std::fmt::Write as _;

use crate::evidence::record::CaseRecord;
use crate::evidence::result::Status;
use crate::render::report::{esc, STYLE};

/// Each kernel's JUnit file, written by the cases binary (`NETREPRO_JUNIT`).
pub const RESULTS_JUNIT: &str = "results.xml";

/// One kernel's results as the matrix left them.
#[derive(Debug, Default)]
pub struct KernelRun {
    pub release: String,
    /// None: the guest never reported (boot failure or hang).
    pub exit_code: Option<i32>,
    pub cases: BTreeMap<String, CaseRecord>,
    /// Cases the test binary reported as skipped, with the reason.
    pub skipped: BTreeMap<String, String>,
    /// Cases the test binary reported as failed.
    pub failed: BTreeSet<String>,
    /// The results file could not be read (said in the table).
    pub unreadable: Option<String>,
    /// Boots that died before the suite started and were tried again
    /// (`boot-retries`, one line each).
    pub failed_boots: Vec<String>,
}

pub fn load(dir: &Path) -> Vec<KernelRun> {
    let mut runs = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return runs };
    let mut kernels: Vec<_> = entries.flatten().filter(|e| e.path().is_dir()).collect();
    kernels.sort_by_key(|e| crate::case::kernel::Version::parse(&e.file_name().to_string_lossy()).ok());
    for k in kernels {
        let p = k.path();
        let mut run = KernelRun { release: k.file_name().to_string_lossy().into_owned(), ..Default::default() };
        run.exit_code = std::fs::read_to_string(p.join("exit-code")).ok().and_then(|s| s.trim().parse().ok());
        run.failed_boots = std::fs::read_to_string(p.join("boot-retries"))
            .unwrap_or_default()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(String::from)
            .collect();
        if let Ok(rd) = std::fs::read_dir(p.join("artifacts")) {
            for c in rd.flatten() {
                let ev = c.path().join("evidence.json");
                if let Ok(rec) = CaseRecord::read(&ev) {
                    run.cases.insert(rec.id.clone(), rec);
                }
            }
        }
        // The cases binary's own JUnit (NETREPRO_JUNIT): skips with their
        // reasons, failures; never its human output.
        match std::fs::read_to_string(p.join(RESULTS_JUNIT)) {
            // A guest that never reported has no results: its row says so.
            Err(_) if run.exit_code.is_none() => {}
            Err(e) => run.unreadable = Some(format!("{RESULTS_JUNIT}: {e}")),
            Ok(xml) => match crate::render::junit::read(&xml) {
                Ok(results) => {
                    for r in results {
                        match r.verdict {
                            Status::Skip => {
                                run.skipped.insert(r.id, r.skip_reason.unwrap_or_default());
                            }
                            Status::Fail => {
                                run.failed.insert(r.id);
                            }
                            Status::Pass => {}
                        }
                    }
                }
                Err(e) => run.unreadable = Some(format!("{RESULTS_JUNIT}: {e:#}")),
            },
        }
        runs.push(run);
    }
    runs
}

/// A Markdown table, kernels as columns.
pub fn table(runs: &[KernelRun]) -> String {
    let mut rows: Vec<(String, Option<String>)> = Vec::new();
    let ids: BTreeSet<&String> =
        runs.iter().flat_map(|r| r.cases.keys().chain(r.skipped.keys()).chain(r.failed.iter())).collect();
    for id in &ids {
        rows.push((id.to_string(), None));
        let mut phases: Vec<String> = Vec::new();
        for r in runs {
            for p in r.cases.get(*id).map(|c| c.phases.as_slice()).unwrap_or_default() {
                if !phases.contains(&p.name) {
                    phases.push(p.name.clone());
                }
            }
        }
        rows.extend(phases.into_iter().map(|p| (id.to_string(), Some(p))));
    }
    let mut s = String::from("| case / phase |");
    for r in runs {
        s += &format!(" {} |", r.release);
    }
    s += "\n|---|";
    s += &"---|".repeat(runs.len());
    // The test binary's own verdict: it also fails on a host-guard
    // difference, and there is none when the guest never reported.
    s += "\n| *suite* |";
    for r in runs {
        s += &match r.exit_code {
            None => " no result (boot failure or hang: see console.log)".to_string(),
            Some(0) => " ok".to_string(),
            Some(c) => format!(" **FAIL** (exit {c}: see test-output.txt)"),
        };
        if let Some(u) = &r.unreadable {
            s += &format!(" · **no case results** ({u})");
        }
        if !r.failed_boots.is_empty() {
            s += &format!(" · {} failed boot(s) before this one ¹", r.failed_boots.len());
        }
        s += " |";
    }
    s += "\n";
    for (id, phase) in rows {
        match &phase {
            None => s += &format!("| **{id}** |"),
            Some(p) => s += &format!("| &nbsp;&nbsp;{p} |"),
        }
        for r in runs {
            s += &format!(" {} |", cell(r, &id, phase.as_deref()));
        }
        s += "\n";
    }
    // A boot that died before any case ran is no case's verdict, but it
    // happened on that kernel and is said.
    let notes: Vec<String> =
        runs.iter().flat_map(|r| r.failed_boots.iter().map(move |b| format!("- {}: {b}", r.release))).collect();
    if !notes.is_empty() {
        s += &format!("\n¹ Boots tried again (the suite had not started):\n{}\n", notes.join("\n"));
    }
    s
}

fn cell(r: &KernelRun, id: &str, phase: Option<&str>) -> String {
    if r.exit_code.is_none() {
        return "no result (boot failure or hang: see console.log)".into();
    }
    if let Some(why) = r.skipped.get(id) {
        return if phase.is_none() { format!("skip: {why}") } else { "skip".into() };
    }
    let Some(c) = r.cases.get(id) else {
        return if r.failed.contains(id) { "FAIL (no evidence)".into() } else { "–".into() };
    };
    match phase {
        None => {
            if c.passed() {
                "pass".into()
            } else {
                "**FAIL**".into()
            }
        }
        Some(p) => match c.phases.iter().find(|x| x.name == p) {
            None => "–".into(),
            Some(x) => {
                let v = if x.passed { "pass" } else { "**FAIL**" };
                match &x.kernel_range {
                    Some(k) => format!("{v} ({k})"),
                    None => v.into(),
                }
            }
        },
    }
}

/// The kernel × case table of a matrix run, linking into each kernel's
/// report (`<release>/artifacts/report.html`).
pub fn matrix_html(runs: &[KernelRun]) -> String {
    let mut ids: Vec<&String> =
        runs.iter().flat_map(|r| r.cases.keys().chain(r.skipped.keys()).chain(r.failed.iter())).collect();
    ids.sort();
    ids.dedup();
    let mut h = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>netrepro kernel matrix</title><style>{STYLE}</style></head><body><h1>netrepro kernel matrix</h1><table><tr><th>case</th>"
    );
    for r in runs {
        let state = match r.exit_code {
            None => " <span class=\"fail\">(no result: boot failure or hang)</span>".to_string(),
            Some(0) => String::new(),
            Some(c) => format!(" <span class=\"fail\">(exit {c})</span>"),
        };
        let state = if r.failed_boots.is_empty() {
            state
        } else {
            format!(
                "{state}<br><span class=\"note\" title=\"{}\">after {} failed boot(s)</span>",
                esc(&r.failed_boots.join("\n")),
                r.failed_boots.len()
            )
        };
        let monitor = r.cases.values().map(|c| c.drop_monitor.as_str()).find(|d| !d.is_empty()).unwrap_or("");
        let reasons = if monitor.contains("reason names") { "drop reasons" } else { "no drop reasons" };
        let _ = write!(
            h,
            "<th><a href=\"{0}/artifacts/report.html\">{0}</a>{state}<br><span class=\"note\" title=\"{1}\">{reasons}</span></th>",
            esc(&r.release),
            esc(monitor)
        );
    }
    h += "</tr>";
    for id in ids {
        let _ = write!(h, "<tr><td>{}</td>", esc(id));
        for r in runs {
            if let Some(why) = r.skipped.get(id) {
                let _ = write!(h, "<td class=\"na\">skip<br><span class=\"note\">{}</span></td>", esc(why));
                continue;
            }
            match r.cases.get(id) {
                Some(c) => {
                    let gated: Vec<String> = c
                        .phases
                        .iter()
                        .filter_map(|p| p.kernel_range.as_ref().map(|k| format!("{} {k}", p.name)))
                        .collect();
                    let _ = write!(
                        h,
                        "<td><a class=\"{v}\" href=\"{}/artifacts/report.html#{}\">{v}</a><br><span class=\"note\">{}</span></td>",
                        esc(&r.release),
                        esc(id),
                        esc(&gated.join("; ")),
                        v = esc(&c.verdict)
                    );
                }
                None if r.failed.contains(id) => h += "<td class=\"fail\">FAILED (no evidence)</td>",
                None => h += "<td class=\"note\">—</td>",
            }
        }
        h += "</tr>";
    }
    h += "</table></body></html>\n";
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::record::PhaseRecord;

    fn phase(name: &str, range: Option<&str>, passed: bool) -> PhaseRecord {
        PhaseRecord { kernel_range: range.map(Into::into), passed, ..PhaseRecord::new(name) }
    }

    fn case(phases: Vec<PhaseRecord>) -> CaseRecord {
        let verdict = if phases.iter().all(|p| p.passed) { "pass" } else { "fail" };
        CaseRecord {
            id: "ct".into(),
            title: String::new(),
            urls: vec![],
            format_version: crate::evidence::record::FORMAT_VERSION,
            case_file: "ct.toml".into(),
            fixture: "f".into(),
            kernel_release: String::new(),
            started_unix_ms: 0,
            duration_ms: 0.0,
            verdict: verdict.into(),
            drop_monitor: String::new(),
            topology: Default::default(),
            phases,
        }
    }

    #[test]
    fn the_table_shows_which_expectation_each_kernel_was_held_to() {
        let old = KernelRun {
            release: "5.10.0-32-amd64".into(),
            exit_code: Some(0),
            cases: BTreeMap::from([(
                "ct".into(),
                case(vec![phase("baseline", None, true), phase("fault-delayed", Some("<6.1"), true)]),
            )]),
            ..Default::default()
        };
        let new = KernelRun {
            release: "6.1.0-50-amd64".into(),
            exit_code: Some(1),
            cases: BTreeMap::from([(
                "ct".into(),
                case(vec![phase("baseline", None, true), phase("fault-delayed", Some(">=6.1"), false)]),
            )]),
            ..Default::default()
        };
        let hung = KernelRun { release: "6.12.95+deb12-amd64".into(), ..Default::default() };
        let t = table(&[old, new, hung]);
        assert!(t.contains("| &nbsp;&nbsp;fault-delayed | pass (<6.1) | **FAIL** (>=6.1) | no result"), "{t}");
        assert!(t.contains("| **ct** | pass | **FAIL** |"), "{t}");
        assert!(t.contains("| *suite* | ok | **FAIL** (exit 1: see test-output.txt) | no result"), "{t}");
    }

    #[test]
    fn skips_and_failures_come_from_the_junit_results() {
        use crate::evidence::result::CaseResult;
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("6.1.0-50-amd64");
        std::fs::create_dir_all(k.join("artifacts")).unwrap();
        std::fs::write(k.join("exit-code"), "1\n").unwrap();
        let results =
            [CaseResult::skipped("ct", "changes net.netfilter.nf_conntrack_max"), CaseResult::failed("htb", "x")];
        std::fs::write(k.join(RESULTS_JUNIT), crate::render::junit::write("cases", &[], &results).unwrap()).unwrap();
        // Human output is never read: a line that once meant a skip is ignored.
        std::fs::write(k.join("test-output.txt"), "netrepro: skip fw: nothing\ntest fw ... FAILED\n").unwrap();
        let runs = load(dir.path());
        assert_eq!(runs[0].skipped, BTreeMap::from([("ct".into(), "changes net.netfilter.nf_conntrack_max".into())]));
        assert_eq!(runs[0].failed, BTreeSet::from(["htb".to_string()]));
        let t = table(&runs);
        assert!(t.contains("| **ct** | skip: changes net.netfilter.nf_conntrack_max |"), "{t}");
        assert!(t.contains("| **htb** | FAIL (no evidence) |"), "{t}");

        std::fs::remove_file(k.join(RESULTS_JUNIT)).unwrap();
        let t = table(&load(dir.path()));
        assert!(t.contains("**no case results** (results.xml: "), "{t}");
    }

    #[test]
    fn a_boot_tried_again_is_said_in_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let k = dir.path().join("6.12.95+deb12-amd64");
        std::fs::create_dir_all(k.join("artifacts")).unwrap();
        std::fs::write(k.join("exit-code"), "0\n").unwrap();
        std::fs::write(k.join(RESULTS_JUNIT), crate::render::junit::write("cases", &[], &[]).unwrap()).unwrap();
        std::fs::write(
            k.join("boot-retries"),
            "boot 1 died before the suite started: Kernel panic - not syncing: Fatal exception in interrupt (console-boot1.log)\n",
        )
        .unwrap();
        let runs = load(dir.path());
        assert_eq!(runs[0].failed_boots.len(), 1);
        let t = table(&runs);
        assert!(t.contains("| *suite* | ok · 1 failed boot(s) before this one ¹ |"), "{t}");
        assert!(t.contains("- 6.12.95+deb12-amd64: boot 1 died before the suite started: Kernel panic"), "{t}");
        assert!(super::matrix_html(&runs).contains("after 1 failed boot(s)"));
    }
}
