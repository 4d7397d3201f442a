//! The command line as people misuse it: every misuse is exit 2 naming what
//! was wrong, `--help` has no side effects, `--version` answers. And runs as
//! machines read them: stopped by SIGINT (exit 130, report written, nothing
//! left, host unchanged), `--tap` as strict TAP 13, `--junit` listing every
//! case with its skip reason, `--json` as one document.

mod common;

use common::Need;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_netrepro");

const SUBCOMMANDS: &[&str] =
    &["list", "check", "new", "run", "shell", "status", "down", "soak", "report", "matrix", "bench"];

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(version_and_help_for_every_subcommand),
        common::test!(help_has_no_side_effects),
        common::test!(unknown_flags_and_subcommands_are_usage_errors_naming_them),
        common::test!(unknown_case_ids_are_usage_errors_naming_them),
        common::test!(malformed_numbers_are_usage_errors),
        common::test!(report_and_matrix_refuse_a_missing_directory),
        common::test!(list_and_check_as_json),
        common::test!(completions_and_man_page),
        common::test!(sigint_mid_run_stops_cleanly).needs(Need::Namespaces),
        common::test!(run_all_as_tap_parses_as_tap_13).needs(Need::Namespaces),
        common::test!(run_all_junit_lists_every_case_with_skip_reasons).needs(Need::Namespaces),
        common::test!(run_as_json_is_one_document).needs(Need::Namespaces),
        common::test!(tap_of_skips_only_exits_4).needs(Need::Namespaces),
    ])
}

/// `netrepro ARGS` with every directory it could write in `tmp`.
fn netrepro(tmp: &Path, args: &[&str]) -> Output {
    command(tmp, args).output().unwrap()
}

fn command(tmp: &Path, args: &[&str]) -> Command {
    let mut c = Command::new(BIN);
    c.args(args).env("NETREPRO_ARTIFACTS", tmp.join("artifacts")).env("NETREPRO_STATE", tmp.join("state"));
    c
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every file and directory under `dir`, recursively.
fn tree(dir: &Path) -> BTreeSet<std::path::PathBuf> {
    let mut out = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            out.insert(e.path());
            out.extend(tree(&e.path()));
        }
    }
    out
}

/// Every case id in the repository.
fn case_ids() -> Vec<String> {
    netrepro::app::suite::discover(&netrepro::app::suite::cases_dir(), &netrepro::app::suite::fixtures_dir())
        .expect("the repository's cases")
        .into_iter()
        .map(|(id, _)| id)
        .collect()
}

fn version_and_help_for_every_subcommand() {
    let tmp = tempfile::tempdir().unwrap();
    let o = netrepro(tmp.path(), &["--version"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stdout(&o).trim(), format!("netrepro {}", env!("CARGO_PKG_VERSION")));
    let o = netrepro(tmp.path(), &["--help"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    for sub in SUBCOMMANDS {
        assert!(stdout(&o).contains(&format!("\n  {sub} ")), "--help does not list {sub}:\n{}", stdout(&o));
        for help in ["--help", "-h"] {
            let o = netrepro(tmp.path(), &[sub, help]);
            assert_eq!(o.status.code(), Some(0), "{sub} {help}: {}", stderr(&o));
            assert!(stdout(&o).contains(&format!("Usage: netrepro {sub}")), "{sub} {help}:\n{}", stdout(&o));
        }
        let o = netrepro(tmp.path(), &["help", sub]);
        assert_eq!(o.status.code(), Some(0), "help {sub}: {}", stderr(&o));
        assert!(stdout(&o).contains(&format!("Usage: netrepro {sub}")), "help {sub}:\n{}", stdout(&o));
    }
    // The internal subcommands are not shown.
    assert!(!stdout(&o).contains("__keep"), "{}", stdout(&o));
    // No subcommand: the usage, as an error.
    let o = netrepro(tmp.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("Usage: netrepro"), "{}", stderr(&o));
}

fn help_has_no_side_effects() {
    let tmp = tempfile::tempdir().unwrap();
    let cases = tmp.path().join("cases");
    std::fs::create_dir(&cases).unwrap();
    for args in [
        &["new", "--help"][..],
        &["new", "x", "--help"],
        &["new", "--fixture", "docker-bridge", "--help"],
        &["run", "--help"],
        &["run", "forwarding-off", "--help"],
        &["report", "--help"],
        &["down", "--help"],
        &["soak", "--help"],
        &["bench", "--help"],
        &["matrix", "--help"],
    ] {
        let o = command(tmp.path(), args).env("NETREPRO_CASES", &cases).output().unwrap();
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).contains("Usage: netrepro"), "{args:?}: {}", stdout(&o));
        assert_eq!(tree(tmp.path()), BTreeSet::from([cases.clone()]), "{args:?} wrote something");
    }
    // An id that is a flag is refused, not written as cases/--help.toml.
    let o = command(tmp.path(), &["new", "--", "--help"]).env("NETREPRO_CASES", &cases).output().unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert!(stderr(&o).contains("\"--help\""), "{}", stderr(&o));
    assert_eq!(tree(tmp.path()), BTreeSet::from([cases.clone()]));
}

fn unknown_flags_and_subcommands_are_usage_errors_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    for sub in SUBCOMMANDS {
        let o = netrepro(tmp.path(), &[sub, "--bogus"]);
        assert_eq!(o.status.code(), Some(2), "{sub} --bogus: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains("unexpected argument '--bogus'"), "{sub}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{sub} --bogus printed: {}", stdout(&o));
    }
    for args in [&["--bogus"][..], &["frobnicate"], &["check", "-x"], &["run", "forwarding-off", "--tpa"]] {
        let o = netrepro(tmp.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        let named = args.last().unwrap();
        assert!(stderr(&o).contains(&format!("'{named}'")), "{args:?}: {}", stderr(&o));
    }
    // Combinations that mean nothing.
    for (args, says) in [
        (&["run"][..], "<ID>"),
        (&["run", "forwarding-off", "--all"], "--all"),
        (&["run", "forwarding-off", "--phase", "fault"], "--keep"),
        (&["run", "forwarding-off", "--keep", "--json"], "--json"),
        (&["run", "--all", "--tap", "--json"], "--json"),
        (&["run", "forwarding-off", "htb-direct-qlen", "--keep"], "one case"),
        (&["shell", "forwarding-off"], "<NS>"),
        (&["down", "a", "b"], "'b'"),
    ] {
        let o = netrepro(tmp.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains(says), "{args:?}: {}", stderr(&o));
    }
    assert_eq!(tree(tmp.path()), BTreeSet::new(), "a usage error wrote something");
}

fn unknown_case_ids_are_usage_errors_naming_them() {
    let tmp = tempfile::tempdir().unwrap();
    for args in [
        &["check", "no-such-case"][..],
        &["check", "forwarding-off", "no-such-case"],
        &["run", "no-such-case"],
        &["run", "no-such-case", "--keep"],
        &["soak", "1", "no-such-case"],
    ] {
        let o = netrepro(tmp.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}{}", stdout(&o), stderr(&o));
        assert!(stderr(&o).contains("no case \"no-such-case\""), "{args:?}: {}", stderr(&o));
        assert!(stdout(&o).is_empty(), "{args:?} printed: {}", stdout(&o));
    }
    let o = netrepro(tmp.path(), &["check", "nope-a", "forwarding-off", "nope-b"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("no cases \"nope-a\", \"nope-b\""), "{}", stderr(&o));
    // Known ids are still checked.
    let o = netrepro(tmp.path(), &["check", "forwarding-off"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with("ok      forwarding-off"), "{}", stdout(&o));
}

fn malformed_numbers_are_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    for (args, named) in [(&["soak", "many"][..], "'many'"), (&["bench", "-3"], "'-3'"), (&["bench", "x"], "'x'")] {
        let o = netrepro(tmp.path(), args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(named), "{args:?}: {}", stderr(&o));
    }
}

fn report_and_matrix_refuse_a_missing_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("no/such/dir");
    for sub in ["report", "matrix"] {
        let o = netrepro(tmp.path(), &[sub, missing.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2), "{sub}: {}", stderr(&o));
        assert!(stderr(&o).contains(&format!("{}: no such directory", missing.display())), "{sub}: {}", stderr(&o));
        assert!(!tmp.path().join("no").exists(), "{sub} made the directory");
    }
    // The default (the artifacts root) too.
    let o = netrepro(tmp.path(), &["report"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("artifacts: no such directory"), "{}", stderr(&o));
    // A file is not a directory.
    let file = tmp.path().join("file");
    std::fs::write(&file, "").unwrap();
    let o = netrepro(tmp.path(), &["report", file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("not a directory"), "{}", stderr(&o));
    // An existing directory without evidence: an empty report.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = netrepro(tmp.path(), &["report", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(empty.join("report.html").exists());
}

fn list_and_check_as_json() {
    let tmp = tempfile::tempdir().unwrap();
    let o = netrepro(tmp.path(), &["list", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let ids: Vec<&str> = v.as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(ids, case_ids());
    let fw = v.as_array().unwrap().iter().find(|c| c["id"] == "forwarding-off").unwrap();
    assert_eq!(fw["valid"], true);
    assert_eq!(fw["fixture"], "docker-bridge");
    assert!(fw["title"].as_str().unwrap().contains("forwarding"), "{fw}");
    assert!(fw["urls"].as_array().unwrap().iter().any(|u| u.as_str().unwrap().starts_with("https://")), "{fw}");

    // An invalid case: check says so in JSON and exits 1.
    let cases = tmp.path().join("cases");
    std::fs::create_dir(&cases).unwrap();
    let repo_cases = netrepro::app::suite::cases_dir();
    std::fs::copy(repo_cases.join("forwarding-off.toml"), cases.join("forwarding-off.toml")).unwrap();
    std::fs::write(cases.join("broken.toml"), "id = \"broken\"\nbogus = 1\n").unwrap();
    let o = command(tmp.path(), &["check", "--json"]).env("NETREPRO_CASES", &cases).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let all = v.as_array().unwrap();
    assert_eq!(all.len(), 2, "{v}");
    assert_eq!((all[0]["id"].as_str(), all[0]["valid"].as_bool()), (Some("broken"), Some(false)), "{v}");
    assert!(all[0]["error"].as_str().unwrap().contains("broken.toml"), "{v}");
    assert_eq!((all[1]["id"].as_str(), all[1]["valid"].as_bool()), (Some("forwarding-off"), Some(true)), "{v}");
    assert_eq!(all[1]["phases"], 3, "{v}");
    let o = command(tmp.path(), &["check", "forwarding-off", "--json"]).env("NETREPRO_CASES", &cases).output().unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
}

fn completions_and_man_page() {
    let tmp = tempfile::tempdir().unwrap();
    let o = netrepro(tmp.path(), &["completions", "bash"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("netrepro") && stdout(&o).contains("--junit"), "{}", stdout(&o));
    let o = netrepro(tmp.path(), &["man"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).starts_with(".ie") || stdout(&o).contains(".TH netrepro"), "{}", stdout(&o));
}

/// SIGINT 1.5 s into a run: the current phase ends, its topology goes, the
/// evidence so far and the report are written, the host is checked, 130.
fn sigint_mid_run_stops_cleanly() {
    let tmp = tempfile::tempdir().unwrap();
    let artifacts = tmp.path().join("artifacts");
    let host_ns = common::own_namespace();
    let before = netrepro::safety::hostguard::HostState::capture().unwrap();
    let child = command(tmp.path(), &["run", "conntrack-invalid-rst", "forwarding-off"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    common::assert_marked(pid, &common::run_marker(&artifacts));
    let mut seen = BTreeSet::new();
    let at = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < at {
        seen.extend(common::namespaces_of(pid));
        std::thread::sleep(Duration::from_millis(1));
    }
    seen.extend(common::namespaces_of(pid));
    seen.remove(&host_ns);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGINT).unwrap();
    let o = child.wait_with_output().unwrap();
    let (out, err) = (stdout(&o), stderr(&o));
    assert_eq!(o.status.code(), Some(130), "stdout:\n{out}\nstderr:\n{err}");
    assert!(err.contains("stopped by SIGINT: 1 of 2 cases run, the rest not run"), "{err}");
    assert!(!out.contains("forwarding-off"), "a case after the signal ran:\n{out}");
    // The report and the evidence so far.
    let report = artifacts.join("report.html");
    assert!(out.contains(&format!("report: {}", report.display())), "{out}");
    assert!(std::fs::read_to_string(&report).unwrap().contains("conntrack-invalid-rst"));
    let rec =
        netrepro::evidence::record::CaseRecord::read(&artifacts.join("conntrack-invalid-rst/evidence.json")).unwrap();
    assert!(!rec.phases.is_empty());
    // The run's own host check, and ours.
    assert!(err.contains("host guard: the host's network state is as before the run"), "{err}");
    assert!(!err.contains("HOST GUARD"), "{err}");
    let diff = netrepro::safety::hostguard::HostState::diff(
        &before,
        &netrepro::safety::hostguard::HostState::capture().unwrap(),
    );
    assert!(diff.is_empty(), "the stopped run changed the host: {diff:#?}");
    // Nothing left: its namespaces, its processes (known by its environment).
    assert!(!seen.is_empty(), "the run held no namespace in its first 1.5 s");
    let mine = format!("NETREPRO_ARTIFACTS={}", artifacts.display());
    // Asked of the run's processes and the host's mounts: the freed inode
    // numbers are taken at once by other tests' namespaces (seen failing
    // beside ci/concurrency's loop).
    let left = common::wait_unreachable_by_run(&seen, &mine, Duration::from_secs(5));
    assert!(left.is_empty(), "namespaces still reachable after the stop: {left:?}");
    let end = Instant::now() + Duration::from_secs(5);
    while !common::processes_with_env(&mine).is_empty() && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(common::processes_with_env(&mine), Vec::<u32>::new(), "processes of the stopped run left");
}

/// One `run --all --tap --junit` shared by the TAP and JUnit tests.
struct AllRun {
    _tmp: tempfile::TempDir,
    artifacts: std::path::PathBuf,
    junit: std::path::PathBuf,
    out: Output,
}

fn all_run() -> &'static AllRun {
    static RUN: OnceLock<AllRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let junit = tmp.path().join("results.xml");
        let out = netrepro(tmp.path(), &["run", "--all", "--tap", "--junit", junit.to_str().unwrap()]);
        AllRun { artifacts: tmp.path().join("artifacts"), junit, out, _tmp: tmp }
    })
}

/// A test point of a strict reading of TAP 13.
#[derive(Debug)]
struct Point {
    ok: bool,
    number: usize,
    description: String,
    skip: Option<String>,
    /// The subtest's points (phases), in order.
    subtests: Vec<(bool, String)>,
}

type Subpoints = Vec<(bool, String)>;

/// Parses `text` as TAP version 13: the version line, the plan `1..N`
/// first, then test points numbered 1..N in order; an indented subtest
/// (`# Subtest: id`, its own plan, its points) only right before the point
/// of that id; `#` diagnostics anywhere. Anything else is an error.
fn parse_tap(text: &str) -> Result<Vec<Point>, String> {
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, "TAP version 13")) => {}
        other => return Err(format!("line 1 must be `TAP version 13`, is {other:?}")),
    }
    let planned: usize = match lines.next() {
        Some((_, l)) => {
            l.strip_prefix("1..").and_then(|n| n.parse().ok()).ok_or(format!("line 2 is no plan: {l:?}"))?
        }
        None => return Err("no plan".into()),
    };
    let point = |l: &str| -> Option<(bool, usize, String)> {
        let (ok, rest) =
            if let Some(r) = l.strip_prefix("ok ") { (true, r) } else { (false, l.strip_prefix("not ok ")?) };
        let (n, desc) = rest.split_once(' ')?;
        Some((ok, n.parse().ok()?, desc.to_string()))
    };
    let mut points = Vec::new();
    // An open subtest: its id, its plan once read, its points so far.
    let mut sub: Option<(String, Option<usize>, Subpoints)> = None;
    for (no, l) in lines {
        if l.starts_with('#') || l.starts_with("    #") && !l.starts_with("    # Subtest: ") {
            continue;
        }
        if let Some(id) = l.strip_prefix("    # Subtest: ") {
            if sub.is_some() {
                return Err(format!("line {no}: a subtest inside a subtest"));
            }
            sub = Some((id.to_string(), None, vec![]));
        } else if let Some(inner) = l.strip_prefix("    ") {
            let Some((_, plan, subpoints)) = &mut sub else {
                return Err(format!("line {no}: indented outside a subtest: {l:?}"));
            };
            if plan.is_none() {
                *plan = Some(
                    inner
                        .strip_prefix("1..")
                        .and_then(|n| n.parse().ok())
                        .ok_or(format!("line {no}: no subtest plan"))?,
                );
                continue;
            }
            let (ok, n, desc) = point(inner).ok_or(format!("line {no}: not a subtest point: {l:?}"))?;
            if n != subpoints.len() + 1 {
                return Err(format!("line {no}: subtest point {n} after {}", subpoints.len()));
            }
            subpoints.push((ok, desc));
        } else {
            let (ok, n, desc) = point(l).ok_or(format!("line {no}: not a test point: {l:?}"))?;
            if n != points.len() + 1 {
                return Err(format!("line {no}: test point {n} after {}", points.len()));
            }
            let (description, skip) = match desc.split_once(" # ") {
                Some((d, directive)) => {
                    let why = directive.strip_prefix("SKIP ").ok_or(format!("line {no}: directive {directive:?}"))?;
                    (d.to_string(), Some(why.to_string()))
                }
                None => (desc, None),
            };
            let subtests = match sub.take() {
                None => vec![],
                Some((id, plan, subpoints)) => {
                    if id != description {
                        return Err(format!("line {no}: subtest {id} closed by point {description}"));
                    }
                    if plan != Some(subpoints.len()) {
                        return Err(format!("line {no}: subtest {id} planned {plan:?}, has {}", subpoints.len()));
                    }
                    subpoints
                }
            };
            if skip.is_some() && !subtests.is_empty() {
                return Err(format!("line {no}: a skipped point with a subtest"));
            }
            points.push(Point { ok, number: n, description, skip, subtests });
        }
    }
    if sub.is_some() {
        return Err("a subtest with no test point after it".into());
    }
    if points.len() != planned {
        return Err(format!("planned {planned}, {} points", points.len()));
    }
    Ok(points)
}

fn run_all_as_tap_parses_as_tap_13() {
    let r = all_run();
    let text = stdout(&r.out);
    assert_eq!(r.out.status.code(), Some(0), "{text}\n{}", stderr(&r.out));
    let points = parse_tap(&text).unwrap_or_else(|e| panic!("not TAP 13: {e}\n{text}"));
    let mut ids: Vec<&str> = points.iter().map(|p| p.description.as_str()).collect();
    ids.sort();
    assert_eq!(ids, case_ids(), "{text}");
    let ct = points.iter().find(|p| p.description == "conntrack-table-full").unwrap();
    assert!(ct.ok, "{ct:?}");
    let why = ct.skip.as_deref().unwrap_or_else(|| panic!("conntrack-table-full is not a skip: {ct:?}"));
    assert!(why.contains("nf_conntrack_max") && why.contains("NETREPRO_GLOBALS=1"), "{why}");
    for p in points.iter().filter(|p| p.skip.is_none()) {
        assert!(p.ok, "{p:?}\n{text}");
        assert!(!p.subtests.is_empty() && p.subtests.iter().all(|s| s.0), "{p:?}");
        assert!(p.number >= 1);
    }
    let fw = points.iter().find(|p| p.description == "forwarding-off").unwrap();
    let phases: Vec<&str> = fw.subtests.iter().map(|s| s.1.as_str()).collect();
    assert_eq!(phases[..2], ["baseline", "fault"], "{fw:?}");
    assert!(text.contains(&format!("# report: {}", r.artifacts.join("report.html").display())), "{text}");
}

fn run_all_junit_lists_every_case_with_skip_reasons() {
    let r = all_run();
    assert_eq!(r.out.status.code(), Some(0), "{}\n{}", stdout(&r.out), stderr(&r.out));
    let xml = std::fs::read_to_string(&r.junit).unwrap();
    let report = quick_junit::Report::deserialize_from_str(&xml).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    let cases: Vec<&quick_junit::TestCase> = report.test_suites.iter().flat_map(|s| &s.test_cases).collect();
    let names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, case_ids(), "{xml}");
    for c in &cases {
        match &c.status {
            quick_junit::TestCaseStatus::Skipped { message, .. } => {
                let why = message.as_ref().map(|m| m.as_str()).unwrap_or("");
                if c.name.as_str() == "conntrack-table-full" {
                    assert!(why.contains("nf_conntrack_max") && why.contains("NETREPRO_GLOBALS=1"), "{why}");
                } else {
                    // Only a link kind this kernel cannot create, named by its option.
                    assert!(
                        why.contains("CONFIG_") && why.contains("kernel matrix"),
                        "{}: {why}\n{xml}",
                        c.name.as_str()
                    );
                }
            }
            quick_junit::TestCaseStatus::Success { .. } => {
                let evidence = c.properties.iter().find(|p| p.name.as_str() == "evidence").unwrap();
                assert!(
                    r.artifacts.join(evidence.value.as_str()).exists(),
                    "{}: {}",
                    c.name.as_str(),
                    evidence.value.as_str()
                );
                assert!(c.properties.iter().any(|p| p.name.as_str() == "phase baseline"), "{xml}");
            }
            other => panic!("{} {other:?}", c.name.as_str()),
        }
    }
    assert_eq!(report.tests, case_ids().len());
    let skipped: Vec<&str> = cases
        .iter()
        .filter(|c| matches!(c.status, quick_junit::TestCaseStatus::Skipped { .. }))
        .map(|c| c.name.as_str())
        .collect();
    assert!(skipped.contains(&"conntrack-table-full"), "{skipped:?}");
    assert_eq!(report.skipped, skipped.len(), "{xml}");
}

fn run_as_json_is_one_document() {
    let tmp = tempfile::tempdir().unwrap();
    let o = netrepro(tmp.path(), &["run", "forwarding-off", "conntrack-table-full", "--json"]);
    assert_eq!(o.status.code(), Some(0), "{}\n{}", stdout(&o), stderr(&o));
    let v: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: not one JSON document:\n{}", stdout(&o)));
    let cases = v["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 2, "{v}");
    let ct = &cases[0];
    assert_eq!((ct["id"].as_str(), ct["verdict"].as_str()), (Some("conntrack-table-full"), Some("skip")), "{v}");
    assert!(ct["skip_reason"].as_str().unwrap().contains("NETREPRO_GLOBALS=1"), "{v}");
    let fw = &cases[1];
    assert_eq!((fw["id"].as_str(), fw["verdict"].as_str()), (Some("forwarding-off"), Some("pass")), "{v}");
    assert_eq!(fw["evidence"], "forwarding-off/evidence.json", "{v}");
    assert!(fw.get("report").is_none(), "{v}");
    assert_eq!(v["stopped_by"], serde_json::Value::Null, "{v}");
    assert_eq!(v["host_changed"], serde_json::Value::Null, "{v}");
    assert!(tmp.path().join("artifacts/forwarding-off/evidence.json").exists());
}

fn tap_of_skips_only_exits_4() {
    let tmp = tempfile::tempdir().unwrap();
    let o = netrepro(tmp.path(), &["run", "conntrack-table-full", "--tap"]);
    assert_eq!(o.status.code(), Some(4), "{}\n{}", stdout(&o), stderr(&o));
    let points = parse_tap(&stdout(&o)).unwrap();
    assert_eq!(points.len(), 1);
    assert!(points[0].ok && points[0].skip.is_some(), "{:?}", points[0]);
}
