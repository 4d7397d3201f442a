//! Messages that are true (issue 18): a cases or fixtures directory that does
//! not exist (or holds no case) is an error naming it — `check`, `list`,
//! `run --all` and `soak` used to exit 0 having checked nothing — while the
//! commands that need no case (`status`) still work without one.

use std::process::Command;

fn netrepro(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_netrepro"));
    cmd.args(args).env("NETREPRO_STATE", std::env::temp_dir().join("netrepro-messages-no-state"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

#[test]
fn a_missing_cases_or_fixtures_directory_fails_naming_it() {
    let empty = tempfile::tempdir().unwrap();
    let empty_dir = empty.path().to_str().unwrap();
    for (var, dir, said) in [
        (
            "NETREPRO_CASES",
            "/nonexistent/cases",
            "/nonexistent/cases: the cases directory ($NETREPRO_CASES): No such file",
        ),
        (
            "NETREPRO_FIXTURES",
            "/nonexistent/fixtures",
            "/nonexistent/fixtures: the fixtures directory ($NETREPRO_FIXTURES): No such file",
        ),
        ("NETREPRO_CASES", "/etc/hostname", "/etc/hostname: not a directory"),
        ("NETREPRO_CASES", empty_dir, &format!("{empty_dir}: no case (*.toml) in this directory")),
    ] {
        for args in [&["check"][..], &["list"], &["run", "--all"], &["soak", "1"]] {
            let (code, out) = netrepro(args, &[(var, dir)]);
            assert_eq!(code, 2, "{args:?} with {var}={dir}: {out}");
            assert!(out.contains(said), "{args:?} with {var}={dir}: {out}");
        }
    }
    // `status` reads no case: it still answers.
    let (code, out) = netrepro(&["status"], &[("NETREPRO_CASES", "/nonexistent/cases")]);
    assert_eq!(code, 0, "{out}");
}
