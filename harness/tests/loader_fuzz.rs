//! The case loader against mangled input: whatever the bytes, it returns a
//! plan or an error naming the file and the line — it never panics, never
//! hangs (each load is given 1 s), and every plan it returns ends: its worst
//! case (`Plan::worst_case_ms`) is within the documented bound, and replaying
//! any phase on any kernel returns. Nothing is built or run: the loader is
//! pure parsing and no namespace exists in this test.
//! Longer runs: `PROPTEST_CASES=100000 cargo test --test loader_fuzz`.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use netrepro::case::kernel::Version;
use netrepro::case::plan::{load, Plan};
use netrepro::case::spec::limits::{CASE_MS_MAX, PROBE_MS_MAX};
use proptest::prelude::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn repo(p: &str) -> String {
    std::fs::read_to_string(root().join(p)).unwrap()
}

/// Every shipped case, `(id, text)`, in name order.
fn shipped_cases() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(root().join("cases"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.file_stem().is_some_and(|s| s != "Cargo"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// Pieces of TOML and of our vocabulary to splice in.
const TOKENS: &[&str] = &[
    "[[phase]]",
    "[probes]",
    "name = \"fault\"",
    "name = \"fix\"",
    "kernel = \">=6.1\"",
    "kernel = \"<6.1\"",
    "upstream = \"x\"",
    "after = \"fault\"",
    "after = \"fix\"",
    "= ",
    "\"",
    "[",
    "]",
    "{",
    "}",
    ",",
    "\n",
    "=",
    "steps = [{ sysctl = { ns = \"host\", key = \"k\", value = 1 } }]",
    "steps = [{ sh = { ns = \"host\", run = \"true\" } }]",
    "replies = \"-1\"",
    "packets = { \"host/eno1: tcp seq $injected_ack\" = 1 }",
    "inject = { at = \"x/y\", segment = \"beyond-window\", at_bytes = 0 }",
    "elapsed_ms = { neigh_failure = \"a/b\" }",
    "\u{0}",
    "\u{feff}",
    "é",
    "9999999999999999999999",
    "-1",
    "1e400",
    "nan",
];

/// What a number in a case may be turned into: zero, negatives, the edges
/// of the integer types, floats too big for any of them.
const EXTREMES: &[&str] =
    &["0", "-1", "4294967295", "4294967296", "9223372036854775807", "18446744073709551616", "1e30", "65536", "nan"];

const PHASE_NAMES: &[&str] = &["baseline", "fault", "fix", "fault-x", "fix-x"];

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, usize),
    Flip(usize, u8),
    DupLine(usize),
    /// The n-th number in the text becomes an extreme.
    Number(usize, usize),
    /// The n-th phase name becomes another phase's name.
    Rename(usize, usize),
    /// Two phases' names change places.
    Swap(usize, usize),
    /// The n-th phase gets `after` = another phase's name.
    After(usize, usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        1 => (any::<usize>(), 1usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        1 => (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Edit::Insert(a, t)),
        1 => (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Flip(a, b)),
        1 => any::<usize>().prop_map(Edit::DupLine),
        3 => (any::<usize>(), 0..EXTREMES.len()).prop_map(|(a, x)| Edit::Number(a, x)),
        1 => (any::<usize>(), 0..PHASE_NAMES.len()).prop_map(|(a, n)| Edit::Rename(a, n)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::Swap(a, b)),
        1 => (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Edit::After(a, b)),
    ]
}

/// Byte ranges of every number that is a value (`= 3`, `= -1`): counts,
/// durations, sysctl values, expected counts.
fn numbers(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let value = b[..i].ends_with(b"= ") || b[..i].ends_with(b"= -");
        if b[i].is_ascii_digit() && value {
            let start = if i > 0 && b[i - 1] == b'-' { i - 1 } else { i };
            let mut end = i;
            while end < b.len() && b[end].is_ascii_digit() {
                end += 1;
            }
            out.push((start, end));
            i = end;
        } else {
            i += 1;
        }
    }
    out
}

/// Byte ranges of the values of every `name = "..."` line (phase names).
fn phase_names(b: &[u8]) -> Vec<(usize, usize)> {
    let key = b"\nname = \"";
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = b[i..].windows(key.len()).position(|w| w == key) {
        let start = i + at + key.len();
        let Some(len) = b[start..].iter().position(|&c| c == b'"' || c == b'\n') else { break };
        out.push((start, start + len));
        i = start + len;
    }
    out
}

fn apply(text: &str, edits: &[Edit]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for e in edits {
        let len = b.len().max(1);
        match *e {
            Edit::Delete(a, n) => {
                let a = a % len;
                let end = (a + n).min(b.len());
                b.drain(a.min(b.len())..end);
            }
            Edit::Insert(a, t) => {
                let a = a % (b.len() + 1);
                b.splice(a..a, TOKENS[t].bytes());
            }
            Edit::Flip(a, v) => {
                if !b.is_empty() {
                    let a = a % b.len();
                    // Mostly ASCII: a byte past 0x7f ends most texts at "not UTF-8".
                    b[a] = if v == 0xff { v } else { v & 0x7f };
                }
            }
            Edit::DupLine(a) => {
                let lines: Vec<&[u8]> = b.split(|&c| c == b'\n').collect();
                let i = a % lines.len();
                let mut out = Vec::new();
                for (j, l) in lines.iter().enumerate() {
                    out.extend_from_slice(l);
                    out.push(b'\n');
                    if j == i {
                        out.extend_from_slice(l);
                        out.push(b'\n');
                    }
                }
                b = out;
            }
            Edit::Number(a, x) => {
                let ns = numbers(&b);
                if !ns.is_empty() {
                    let (s, e) = ns[a % ns.len()];
                    b.splice(s..e, EXTREMES[x].bytes());
                }
            }
            Edit::Rename(a, n) => {
                let ns = phase_names(&b);
                if !ns.is_empty() {
                    let (s, e) = ns[a % ns.len()];
                    b.splice(s..e, PHASE_NAMES[n].bytes());
                }
            }
            Edit::After(x, y) => {
                let ns = phase_names(&b);
                if !ns.is_empty() {
                    let (name, target) = (ns[x % ns.len()], ns[y % ns.len()]);
                    let line = [b"\nafter = \"".as_slice(), &b[target.0..target.1], b"\""].concat();
                    b.splice(name.1 + 1..name.1 + 1, line);
                }
            }
            Edit::Swap(x, y) => {
                let ns = phase_names(&b);
                if ns.len() >= 2 {
                    let (i, j) = (x % ns.len(), y % ns.len());
                    let (first, second) = (ns[i.min(j)], ns[i.max(j)]);
                    let (v1, v2) = (b[first.0..first.1].to_vec(), b[second.0..second.1].to_vec());
                    // The later one first, so the earlier range stays valid.
                    b.splice(second.0..second.1, v1);
                    b.splice(first.0..first.1, v2);
                }
            }
        }
    }
    b
}

/// Kernels the variants of the shipped cases split on, and the extremes.
const KERNELS: &[Version] =
    &[Version(0, 0, 0), Version(4, 2, 0), Version(4, 9, 0), Version(5, 10, 0), Version(6, 1, 0), Version(6, 18, 0)];

/// What every plan that loads must satisfy: it ends.
fn ends(plan: &Plan) {
    let worst = plan.worst_case_ms();
    assert!(worst <= CASE_MS_MAX, "{}: worst case {worst} ms > {CASE_MS_MAX}", plan.path.display());
    for (name, p) in &plan.probes {
        assert!(p.worst_case_ms() <= PROBE_MS_MAX, "probe {name}: {} ms", p.worst_case_ms());
    }
    for &v in KERNELS {
        if let Ok(phases) = plan.phases_for(v) {
            for p in phases {
                let _ = plan.replay_for(p, v);
            }
        }
    }
}

/// Loads `case` (as `<case_id>.toml`) against `fixtures`, on a thread given
/// 1 s: a panic, a hang or an error without file and line fails the test.
fn check(case_id: &str, case: &[u8], fixtures: Option<&[u8]>) {
    let dir = tempfile::tempdir().unwrap();
    let fixtures_dir = match fixtures {
        Some(f) => {
            std::fs::write(dir.path().join("docker-bridge.toml"), f).unwrap();
            dir.path().to_path_buf()
        }
        None => root().join("fixtures").canonicalize().unwrap(),
    };
    let path = dir.path().join(format!("{case_id}.toml"));
    std::fs::write(&path, case).unwrap();
    let (tx, rx) = mpsc::channel();
    let (p, fd) = (path.clone(), fixtures_dir.clone());
    std::thread::spawn(move || {
        let r = std::panic::catch_unwind(|| load(&p, &fd).map(|plan| ends(&plan)));
        let _ = tx.send(r);
    });
    let text = String::from_utf8_lossy(case);
    let outcome = match rx.recv_timeout(Duration::from_secs(1)) {
        Ok(r) => r,
        Err(_) => {
            // Stop here: a hung load may be allocating without bound (issue
            // 18 saw 3.3 GB in 10 s), and shrinking would start more.
            eprintln!("loading took more than 1 s (a hang?):\n{text}");
            std::process::abort();
        }
    };
    match outcome {
        Err(_) => panic!("the loader, or a check of the plan it made, panicked on:\n{text}"),
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let msg = e.to_string();
            let named = e.file == path || e.file.starts_with(&fixtures_dir);
            assert!(named, "error does not name the file: {msg}");
            assert!(e.line.is_some(), "error without a line: {msg}\n{text}");
        }
    }
}

#[test]
fn every_shipped_case_ends_and_stays_within_the_bounds() {
    for (id, text) in shipped_cases() {
        let plan = load(&root().join(format!("cases/{id}.toml")), &root().join("fixtures")).unwrap();
        ends(&plan);
        eprintln!("{id}: worst case {} s", plan.worst_case_ms() / 1000);
        check(&id, text.as_bytes(), None);
    }
}

proptest! {
    // 2000 mangled cases and as many fixtures: a few seconds in a debug
    // build, and each load is bounded by 1 s, so CI can always run it.
    #![proptest_config(ProptestConfig { cases: 2000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mangled_cases_load_or_fail_cleanly(which in any::<prop::sample::Index>(), edits in prop::collection::vec(edit(), 1..8)) {
        let cases = shipped_cases();
        let (id, text) = &cases[which.index(cases.len())];
        check(id, &apply(text, &edits), None);
    }

    #[test]
    fn mangled_fixtures_load_or_fail_cleanly(edits in prop::collection::vec(edit(), 1..8)) {
        let fixture = repo("fixtures/docker-bridge.toml");
        check("forwarding-off", repo("cases/forwarding-off.toml").as_bytes(), Some(&apply(&fixture, &edits)));
    }
}
