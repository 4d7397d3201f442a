//! The case loader against mangled input: whatever the bytes, it returns a
//! plan or an error naming the file — it never panics, and it builds nothing
//! (it is pure parsing; no namespace exists in this test).
//! Longer runs: `PROPTEST_CASES=100000 cargo test --test loader_fuzz`.

use std::path::Path;

use proptest::prelude::*;

fn repo(p: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(p)).unwrap()
}

/// Pieces of TOML and of our vocabulary to splice in.
const TOKENS: &[&str] = &[
    "[[phase]]",
    "[probes]",
    "name = \"fault\"",
    "kernel = \">=6.1\"",
    "after = \"fault\"",
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

#[derive(Debug, Clone)]
enum Edit {
    Delete(usize, usize),
    Insert(usize, usize),
    Flip(usize, u8),
    DupLine(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1usize..40).prop_map(|(a, n)| Edit::Delete(a, n)),
        (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Edit::Insert(a, t)),
        (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Flip(a, b)),
        any::<usize>().prop_map(Edit::DupLine),
    ]
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
                    b[a] = v;
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
        }
    }
    b
}

fn check(case_id: &str, case: &[u8], fixture: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("docker-bridge.toml"), fixture).unwrap();
    let path = dir.path().join(format!("{case_id}.toml"));
    std::fs::write(&path, case).unwrap();
    if let Err(e) = netrepro::case::plan::load(&path, dir.path()) {
        let msg = e.to_string();
        assert!(
            msg.starts_with(&path.display().to_string())
                || msg.starts_with(&dir.path().join("docker-bridge.toml").display().to_string()),
            "error does not name the file: {msg}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn mangled_cases_load_or_fail_cleanly(which in 0usize..3, edits in prop::collection::vec(edit(), 1..8)) {
        let ids = ["forwarding-off", "htb-direct-qlen", "conntrack-invalid-rst"];
        let case = repo(&format!("cases/{}.toml", ids[which]));
        check(ids[which], &apply(&case, &edits), repo("fixtures/docker-bridge.toml").as_bytes());
    }

    #[test]
    fn mangled_fixtures_load_or_fail_cleanly(edits in prop::collection::vec(edit(), 1..8)) {
        let fixture = repo("fixtures/docker-bridge.toml");
        check("forwarding-off", repo("cases/forwarding-off.toml").as_bytes(), &apply(&fixture, &edits));
    }
}
