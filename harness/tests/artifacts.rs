//! Artifacts written safely and evidence kept (issue 18), as the attacks:
//! symlinks planted as `.report.html.tmp`, `.<case>.lock` and `<case>/` in a
//! world-writable or foreign artifacts directory are refused and their
//! targets untouched; a case directory renamed and replaced by a symlink in
//! the middle of a run is refused; a killed run leaves the previous run's
//! evidence and pcapngs as they were; `soak` keeps a failing run's evidence
//! and its FLAKY line names where.

mod common;

use common::Need;

use std::collections::BTreeMap;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use netrepro::app::suite;
use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::run::runner;

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(a_world_writable_or_foreign_artifacts_directory_is_refused_and_its_symlinks_never_followed)
            .needs(Need::Namespaces),
        common::test!(symlinks_in_our_own_artifacts_directory_are_replaced_or_refused_never_followed)
            .needs(Need::Namespaces),
        common::test!(a_case_directory_renamed_and_replaced_by_a_symlink_mid_run_is_refused).needs(Need::Namespaces),
        common::test!(a_killed_run_leaves_the_previous_evidence_and_pcapngs_in_place).needs(Need::Namespaces),
        common::test!(soak_keeps_a_failing_run_s_evidence_and_its_flaky_line_names_it).needs(Need::Namespaces),
    ])
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn forwarding_off() -> plan::Plan {
    plan::load(&suite::cases_dir().join("forwarding-off.toml"), &suite::fixtures_dir()).unwrap()
}

/// The traps: `.report.html.tmp` and `.forwarding-off.lock` pointing at
/// files outside, `forwarding-off` pointing at a directory outside.
struct Traps {
    victim: PathBuf,
    created: PathBuf,
    victim_dir: PathBuf,
}

fn plant(root: &Path, outside: &Path) -> Traps {
    let t = Traps {
        victim: outside.join("victim"),
        created: outside.join("would-be-created"),
        victim_dir: outside.join("victim-dir"),
    };
    std::fs::write(&t.victim, "root-only content").unwrap();
    std::fs::create_dir(&t.victim_dir).unwrap();
    symlink(&t.victim, root.join(".report.html.tmp")).unwrap();
    symlink(&t.victim, root.join("report.html")).unwrap();
    symlink(&t.created, root.join(".forwarding-off.lock")).unwrap();
    symlink(&t.victim_dir, root.join("forwarding-off")).unwrap();
    t
}

fn untouched(t: &Traps, what: &str) {
    assert_eq!(std::fs::read_to_string(&t.victim).unwrap(), "root-only content", "{what}: the victim file was written");
    assert!(!t.created.exists(), "{what}: a file was created through the lock symlink");
    assert_eq!(std::fs::read_dir(&t.victim_dir).unwrap().count(), 0, "{what}: written into the victim directory");
}

fn a_world_writable_or_foreign_artifacts_directory_is_refused_and_its_symlinks_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("shared");
    std::fs::create_dir(&root).unwrap();
    let t = plant(&root, tmp.path());
    let (release, version) = Version::running().unwrap();
    for (mode, owner, why) in [
        (0o1777, None, "writable by group or others (mode 1777)"),
        (0o777, None, "writable by group or others (mode 0777)"),
        (0o755, Some(65534), "owned by uid 65534, not by you"),
    ] {
        chmod(&root, mode);
        if let Some(uid) = owner {
            std::os::unix::fs::chown(&root, Some(uid), None).unwrap();
        }
        let e = format!("{:#}", netrepro::render::report::write(&root).unwrap_err());
        assert!(e.contains(&format!("{}: {why}", root.display())), "report, {why}: {e}");
        let e = format!("{:#}", runner::run_case(&forwarding_off(), &release, version, &root).unwrap_err());
        assert!(e.contains(&format!("{}: {why}", root.display())), "run, {why}: {e}");
        untouched(&t, why);
    }
    // Through the CLI too: said, and a failure.
    let out = common::netrepro(&["run", "forwarding-off"], &suite::cases_dir(), &root).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && said.contains("owned by uid 65534, not by you"), "{said}");
    untouched(&t, "the CLI");
}

fn symlinks_in_our_own_artifacts_directory_are_replaced_or_refused_never_followed() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let t = plant(&root, tmp.path());
    symlink(&t.victim, root.join(format!(".report.html.{}.tmp", std::process::id()))).unwrap();
    // The report: its temporary file is made afresh, and renamed over the
    // `report.html` symlink (which goes, its target stays).
    let path = netrepro::render::report::write(&root).unwrap();
    assert!(!std::fs::symlink_metadata(&path).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o644);
    untouched(&t, "report");
    // The case lock: a symlink is refused, naming it.
    let (release, version) = Version::running().unwrap();
    let e = format!("{:#}", runner::run_case(&forwarding_off(), &release, version, &root).unwrap_err());
    assert!(e.contains(".forwarding-off.lock: a symbolic link; refusing to use it as a lock"), "{e}");
    untouched(&t, "lock");
    // The case directory: a symlink in its place is replaced, not written through.
    std::fs::remove_file(root.join(".forwarding-off.lock")).unwrap();
    let (rec, evidence) = runner::run_case(&forwarding_off(), &release, version, &root).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&evidence));
    assert!(std::fs::symlink_metadata(root.join("forwarding-off")).unwrap().is_dir());
    assert_eq!(std::fs::metadata(root.join("forwarding-off")).unwrap().permissions().mode() & 0o777, 0o755);
    untouched(&t, "case directory");
    let names: Vec<String> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.contains(".new-") || n.contains(".old-")), "left behind: {names:?}");
}

fn a_case_directory_renamed_and_replaced_by_a_symlink_mid_run_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let victim_dir = tmp.path().join("victim-dir");
    std::fs::create_dir(&victim_dir).unwrap();
    let mut child = common::netrepro(&["run", "forwarding-off"], &suite::cases_dir(), &root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The run's own directory, as soon as it exists: renamed away, and a
    // symlink to the victim put in its place (the attack, 1 of 1).
    let staged = root.join(format!(".forwarding-off.new-{}", child.id()));
    let end = Instant::now() + Duration::from_secs(60);
    while std::fs::symlink_metadata(&staged).is_err() {
        assert!(Instant::now() < end && child.try_wait().unwrap().is_none(), "{} never appeared", staged.display());
        std::thread::sleep(Duration::from_millis(1));
    }
    std::fs::rename(&staged, root.join("moved")).unwrap();
    symlink(&victim_dir, &staged).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{said}");
    assert!(
        said.contains(&format!("{}: no longer the directory this run wrote its evidence into", staged.display())),
        "{said}"
    );
    assert_eq!(std::fs::read_dir(&victim_dir).unwrap().count(), 0, "written into the victim directory");
    assert!(std::fs::symlink_metadata(root.join("forwarding-off")).is_err(), "something was put in place");
    // What the run wrote is in the directory it made, now `moved`.
    assert!(root.join("moved/evidence.json").is_file());
}

/// Every file of `<root>/<case>/` and its bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect()
}

fn a_killed_run_leaves_the_previous_evidence_and_pcapngs_in_place() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("root");
    let run = || common::netrepro(&["run", "forwarding-off"], &suite::cases_dir(), &root);
    let t0 = Instant::now();
    let out = run().output().unwrap();
    let whole = t0.elapsed();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let case = root.join("forwarding-off");
    let before = snapshot(&case);
    assert!(before.contains_key("evidence.json") && before.contains_key("fault.pcapng"), "{:?}", before.keys());
    // Killed early (namespaces being made), in the middle and late (the
    // evidence being written): the previous run's files stay, byte for byte.
    for frac in [5, 30, 60, 85, 95, 99] {
        let mut child = run().stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(whole * frac / 100);
        child.kill().unwrap();
        child.wait().unwrap();
        let now = snapshot(&case);
        // A kill after the swap leaves the new run's whole evidence instead:
        // also fine, never a mix and never none.
        if now != before {
            assert_eq!(now.keys().collect::<Vec<_>>(), before.keys().collect::<Vec<_>>(), "killed at {frac}%");
            continue;
        }
        assert_eq!(now, before, "killed at {frac}% of {whole:?}");
    }
    // The next run replaces it and removes what the killed ones left.
    let out = run().output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    assert_ne!(snapshot(&case)["evidence.json"], before["evidence.json"]);
    let names: Vec<String> =
        std::fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.iter().any(|n| n.contains(".new-") || n.contains(".old-")), "left behind: {names:?}");
}

fn soak_keeps_a_failing_run_s_evidence_and_its_flaky_line_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (cases, root) = (tmp.path().join("cases"), tmp.path().join("root"));
    std::fs::create_dir(&cases).unwrap();
    // Fails in its first run only: the run after it used to overwrite the
    // failing evidence with a pass.
    let once = tmp.path().join("failed-once");
    let step = format!("test -e {0} || {{ touch {0}; echo failing on purpose; exit 1; }}", once.display());
    common::write_sh_case(&cases, "flaky", &step);
    let out = common::netrepro(&["soak", "3", "flaky"], &cases, &root).output().unwrap();
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(!out.status.success(), "{said}");
    let kept = root.join("soak/1/flaky");
    let line = format!("FLAKY flaky: failed in 1 of 3 runs (runs [1]); evidence kept: run 1: {}", kept.display());
    assert!(said.lines().any(|l| l == line), "no line {line:?} in:\n{said}");
    let rec = netrepro::evidence::record::CaseRecord::read(&kept.join("evidence.json")).unwrap();
    assert_eq!(rec.verdict, "fail");
    assert!(
        said.contains("failing on purpose")
            && said.contains(&format!("evidence: {}", kept.join("evidence.json").display())),
        "{said}"
    );
    // Its pcapngs, where the evidence says (relative to soak/1, a root of its own).
    for ph in rec.phases.iter().filter(|p| p.pcapng.is_some()) {
        let p = root.join("soak/1").join(ph.pcapng.as_ref().unwrap());
        assert!(p.is_file(), "{} missing", p.display());
    }
    assert!(!root.join("soak/2").exists() && !root.join("soak/3").exists(), "passing runs kept");
    // The root holds the last run, a pass.
    let last = netrepro::evidence::record::CaseRecord::read(&root.join("flaky/evidence.json")).unwrap();
    assert_eq!(last.verdict, "pass");
    // And a report of the kept run draws it.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_netrepro"))
        .arg("report")
        .arg(root.join("soak/1"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
