//! `docs/evidence.schema.json` is the JSON Schema of `evidence.json`,
//! generated from the record types. This test keeps the shipped file equal
//! to what the types say (`NETREPRO_BLESS=1 cargo test --test schema`
//! rewrites it), and shows the validator refuses what the schema forbids.
//! Every real run's evidence is validated against it in `cases/run.rs`.

use std::path::PathBuf;

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/evidence.schema.json")
}

fn generated() -> String {
    serde_json::to_string_pretty(&netrepro::evidence::record::schema()).unwrap() + "\n"
}

#[test]
fn the_shipped_schema_is_the_one_the_types_generate() {
    let want = generated();
    if std::env::var_os("NETREPRO_BLESS").is_some() {
        std::fs::write(shipped(), &want).unwrap();
    }
    let have = std::fs::read_to_string(shipped()).unwrap_or_default();
    assert!(
        have == want,
        "{} is not what the record types generate; run `NETREPRO_BLESS=1 cargo test --test schema` and commit it",
        shipped().display()
    );
}

#[test]
fn the_schema_refuses_a_record_without_its_version_or_with_a_bad_outcome() {
    let schema: serde_json::Value = serde_json::from_str(&generated()).unwrap();
    let v = jsonschema::validator_for(&schema).unwrap();
    let good = serde_json::json!({
        "format_version": 1, "id": "x", "title": "t", "urls": [], "case_file": "../../cases/x.toml",
        "fixture": "f", "kernel_release": "6.18.0", "started_unix_ms": 1, "duration_ms": 1.0, "verdict": "pass",
        "phases": [{"name": "baseline", "kernel_range": null, "upstream": null, "note": null, "steps": [],
            "pcapng": null, "timings": {"setup_ms": 0.0, "steps_ms": 0.0, "probes_ms": 0.0, "teardown_ms": 0.0},
            "passed": true, "error": null,
            "probes": [{"name": "p", "spec": {"kind": "ping", "from": "a", "to": "10.0.0.1", "count": 1,
                    "interval_ms": 10, "wait_ms": 10},
                "outcome": {"kind": "ping", "sent": 1, "replies": 1, "errors": [], "rtt_ms": [0.1], "elapsed_ms": 20.0},
                "window_ns": [1, 2], "counter_deltas": {}, "packets": {}, "neighbours": {}, "qdiscs": {},
                "qdisc_drops": {}, "links": {}, "rules": {}, "conntrack": {}, "vars": {}, "drops": [],
                "drops_missed": 0, "checks": [], "why": null}]}]
    });
    let errors: Vec<String> = v.iter_errors(&good).map(|e| e.to_string()).collect();
    assert!(errors.is_empty(), "a well-formed record is refused: {errors:?}");
    let mut no_version = good.clone();
    no_version.as_object_mut().unwrap().remove("format_version");
    assert!(!v.is_valid(&no_version));
    let mut bad_outcome = good.clone();
    bad_outcome["phases"][0]["probes"][0]["outcome"]["kind"] = "teleport".into();
    assert!(!v.is_valid(&bad_outcome));
}
