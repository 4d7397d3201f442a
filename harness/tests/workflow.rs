//! The GitHub workflow's kernel jobs, fed to `ci/kernel-matrix --dry-run`
//! with the arguments each job gives it: every pinned Debian kernel and every
//! upstream one boots in exactly one job (a job that booted the pins again
//! would take CI minutes and overlay another job's results).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `(name, args)` of each `- { name: X, args: "Y" }` line of the kernel job's matrix.
fn jobs() -> Vec<(String, String)> {
    let yml = std::fs::read_to_string(repo().join(".github/workflows/kernel-matrix.yml")).unwrap();
    yml.lines()
        .filter_map(|l| {
            let l = l.trim().strip_prefix("- { name: ")?;
            let (name, rest) = l.split_once(", args: \"")?;
            let args = rest.strip_suffix("\" }")?;
            Some((name.to_string(), args.to_string()))
        })
        .collect()
}

#[test]
fn each_kernel_boots_in_exactly_one_job() {
    let jobs = jobs();
    assert!(jobs.len() >= 4, "found only {jobs:?} in the workflow's matrix");
    let mut booted: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (name, args) in &jobs {
        // As the workflow calls it: `ci/kernel-matrix --no-host $ARGS`.
        let out = Command::new("bash")
            .arg(repo().join("ci/kernel-matrix"))
            .args(["--dry-run", "--no-host"])
            .args(args.split_whitespace())
            .output()
            .unwrap();
        assert!(out.status.success(), "{name}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(!text.trim().is_empty(), "job {name} ({args}) boots no kernel");
        for k in text.lines() {
            booted.entry(k.to_string()).or_default().push(name.clone());
        }
    }
    let pins = std::fs::read_to_string(repo().join("ci/kernels.txt")).unwrap();
    for pin in pins.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let rel = pin.split_whitespace().nth(1).unwrap().trim_start_matches("linux-image-");
        let key = format!("pinned {rel}");
        assert_eq!(booted.get(&key).map(Vec::len), Some(1), "{key} boots in jobs {:?}", booted.get(&key));
    }
    for (k, in_jobs) in &booted {
        assert_eq!(in_jobs.len(), 1, "{k} boots in {} jobs: {in_jobs:?}", in_jobs.len());
    }
}
