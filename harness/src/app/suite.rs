//! Finding cases and running one the way both front ends (the `cases` test
//! target and the `netrepro` CLI) do.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};

use crate::case::kernel::Version;
use crate::case::plan::{self, LoadError, Plan};
use crate::evidence::record::{artifacts_root, CaseRecord};
use crate::run::runner;
use crate::safety::owndir::{Access, OwnDir};

/// `$NETREPRO_CASES` or the repository's `cases/` (as built).
pub fn cases_dir() -> PathBuf {
    std::env::var_os("NETREPRO_CASES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../cases"))
}

/// `$NETREPRO_FIXTURES` or the repository's `fixtures/`.
pub fn fixtures_dir() -> PathBuf {
    std::env::var_os("NETREPRO_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures"))
}

/// Every case and whether it loaded.
pub type Discovered = Vec<(String, Result<Plan, LoadError>)>;

/// Every `*.toml` case, sorted by file name, each loaded and validated.
///
/// # Errors
/// The cases or the fixtures directory does not exist, is not a directory
/// or cannot be listed, or there is no case in it: each names the path
/// (a run that found nothing must not pass having checked nothing).
pub fn discover(cases: &Path, fixtures: &Path) -> anyhow::Result<Discovered> {
    for (what, env, dir) in [("cases", "NETREPRO_CASES", cases), ("fixtures", "NETREPRO_FIXTURES", fixtures)] {
        match std::fs::metadata(dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => bail!("{}: not a directory; the {what} directory must be one (${env})", dir.display()),
            Err(e) => bail!("{}: the {what} directory (${env}): {e}", dir.display()),
        }
    }
    let mut files = Vec::new();
    for e in std::fs::read_dir(cases).with_context(|| format!("{}: cannot list the cases", cases.display()))? {
        let p = e.with_context(|| format!("{}: cannot list the cases", cases.display()))?.path();
        if p.extension().is_some_and(|x| x == "toml") && p.file_name().is_some_and(|n| n != "Cargo.toml") {
            files.push(p);
        }
    }
    if files.is_empty() {
        bail!("{}: no case (*.toml) in this directory ($NETREPRO_CASES)", cases.display());
    }
    files.sort();
    Ok(files
        .into_iter()
        .map(|p| {
            let id = p.file_stem().unwrap_or_default().to_string_lossy().into_owned();
            (id, plan::load(&p, fixtures))
        })
        .collect())
}

/// Puts the cases that take longest first, so that a suite running several
/// at once ends soon after its slowest case instead of starting it last
/// (alphabetically, `vxlan-csum-masquerade`'s 9 s began 3.2 s into a 12 s
/// suite). How long a case takes: its last run's `duration_ms` in `root`'s
/// evidence when there is one, else its [`Plan::worst_case_ms`]; a case
/// that did not load goes last. Stable: equal cases keep their order.
pub fn longest_first(cases: &mut Discovered, root: &Path) {
    // Read as the report reads evidence: through the root's fd, no
    // symlink followed; a root not made yet is not made here.
    let store = OwnDir::open_with(root, Access::Readable).ok().flatten();
    let took = |id: &str| -> Option<u64> {
        let dir = store.as_ref()?.subdir(id, false).ok()??;
        let file = dir.open_read(crate::evidence::store::EVIDENCE, 1 << 30).ok()?;
        duration_ms(std::io::BufReader::new(file)).map(|ms| ms as u64)
    };
    cases.sort_by_cached_key(|(id, loaded)| {
        std::cmp::Reverse(match loaded {
            Ok(plan) => took(id).unwrap_or_else(|| plan.worst_case_ms()),
            Err(_) => 0,
        })
    });
}

/// A record's `duration_ms`, read from its start: the field comes before
/// the phases (a stream case's evidence is megabytes), so the parse stops
/// there instead of reading the rest. `None` for what is not a record.
fn duration_ms(r: impl std::io::Read) -> Option<f64> {
    use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
    struct Seek<'a>(&'a std::cell::Cell<Option<f64>>);
    impl<'de> Visitor<'de> for Seek<'_> {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an evidence record")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<(), A::Error> {
            while let Some(k) = m.next_key::<String>()? {
                if k == "duration_ms" {
                    self.0.set(Some(m.next_value()?));
                    return Ok(());
                }
                m.next_value::<IgnoredAny>()?;
            }
            Ok(())
        }
    }
    let found = std::cell::Cell::new(None);
    // Stopping mid-object is an error to serde_json (no closing brace
    // read): the value is taken before it.
    let _ = serde_json::Deserializer::from_reader(r).deserialize_map(Seek(&found));
    found.get()
}

/// Whether CLI command `cmd` reads the cases (so that a cases or fixtures
/// directory that is missing is its error; `status`, `down`, `report` ...
/// do not need one).
pub fn needs_cases(cmd: Option<&str>) -> bool {
    matches!(cmd, Some("list" | "check" | "run" | "soak" | "__keep"))
}

/// The loaded plans of the `wanted` cases (all when none is named).
///
/// # Errors
/// An unknown id (exit code 2) or a case that does not load (1), with
/// what to say.
pub fn select(wanted: &[String], cases: Discovered) -> Result<Vec<Plan>, (u8, String)> {
    if let Some(w) = wanted.iter().find(|w| !cases.iter().any(|(id, _)| id == *w)) {
        return Err((2, format!("no case {w:?}; `netrepro list` shows them")));
    }
    let mut plans = Vec::new();
    for (_, loaded) in cases.into_iter().filter(|(id, _)| wanted.is_empty() || wanted.contains(id)) {
        match loaded {
            Ok(p) => plans.push(p),
            Err(e) => return Err((1, format!("INVALID {e}"))),
        }
    }
    Ok(plans)
}

/// How many cases the test target runs at once unless told
/// (`--test-threads`, `RUST_TEST_THREADS`): four per CPU. Cases spend most
/// of their time waiting on probe windows and timeouts (the host suite:
/// ~2.3 s of CPU for ~11 s of probe windows), so the suite's wall time is
/// its slowest case's plus how well the rest pack around it: on 2 CPUs,
/// 4 at once ended 1.8 s after the slowest case, 6 at once 1.0 s, 8 at
/// once 0.3 s, the slowest case no slower. Cases that change global
/// settings still run alone ([`take_turn`]).
pub fn default_threads() -> Option<usize> {
    if std::env::var_os("RUST_TEST_THREADS").is_some() {
        return None;
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some((4 * cpus).max(4))
}

/// Whether this case may share the machine: a case that changes a global
/// setting (one value for every namespace: `nf_conntrack_max`, the
/// neighbour table's thresholds, `netdev_max_backlog`) changes it under
/// every other case too, so it runs alone: an exclusive `flock` on
/// `/proc/sys/net`, which every other case holds shared while it runs.
/// The per-key lock of [`crate::safety::globals`] only keeps two writers
/// of one key apart. A lock on a directory of the kernel's, so that two
/// processes (two `cargo test`s) see the same lock, and nothing is created.
/// Held until the returned file is dropped.
///
/// # Errors
/// `/proc/sys/net` cannot be opened or locked.
pub fn take_turn(plan: &Plan) -> std::io::Result<std::fs::File> {
    turn(!plan.globals().is_empty())
}

/// The turn itself: exclusive, or shared with every other case's.
fn turn(exclusive: bool) -> std::io::Result<std::fs::File> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open("/proc/sys/net")?;
    let how = if exclusive { libc::LOCK_EX } else { libc::LOCK_SH };
    // SAFETY: flock on an fd we own; released when the file is closed.
    if unsafe { libc::flock(f.as_raw_fd(), how) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(f)
}

/// A case run, with its record when it left one.
pub enum Ran {
    /// The record and its `evidence.json`.
    Recorded(Box<CaseRecord>, PathBuf),
    Skip(String),
    /// No evidence: the harness could not run the case (why).
    Error(String),
}

/// Runs a loaded case on the running kernel, into the artifacts root.
pub fn run_recorded(plan: &Plan) -> Ran {
    if let Some(why) = crate::app::preflight::skip_reason(plan) {
        return Ran::Skip(why);
    }
    let _turn = match take_turn(plan) {
        Ok(f) => f,
        Err(e) => return Ran::Error(format!("case {}: locking /proc/sys/net for its turn: {e}", plan.id())),
    };
    let (release, version) = match Version::running() {
        Ok(v) => v,
        Err(e) => return Ran::Error(format!("cannot read the kernel version: {e:#}")),
    };
    let root = artifacts_root();
    // The case's report part, rendered in its own time beside other cases
    // (the report that follows only assembles), goes in with its evidence.
    match runner::run_case_then(plan, &release, version, &root, &crate::render::report::cache_part) {
        Ok((rec, path)) => Ran::Recorded(Box::new(rec), path),
        Err(e) => Ran::Error(format!("case {}: harness error: {e:#}", plan.id())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_turn_for_global_settings_waits_for_every_shared_one_and_shared_ones_overlap() {
        let shared = turn(false).unwrap();
        // Another shared turn is given at once.
        drop(turn(false).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let f = turn(true).unwrap();
            tx.send(()).unwrap();
            f
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(300)).is_err(),
            "an exclusive turn was given while a shared one was held"
        );
        drop(shared);
        rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the exclusive turn never came");
        drop(t.join().unwrap());
    }

    #[test]
    fn the_longest_cases_go_first_by_their_last_run_else_their_worst_case() {
        let worst = |c: &Discovered| -> Vec<u64> {
            c.iter().map(|(_, l)| l.as_ref().map_or(0, |p| p.worst_case_ms())).collect()
        };
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        // No evidence (and no root, which is not made): by worst case.
        let mut cases = discover(&cases_dir(), &fixtures_dir()).unwrap();
        longest_first(&mut cases, &root);
        assert!(!root.exists(), "ordering made the artifacts directory");
        let w = worst(&cases);
        assert!(w.windows(2).all(|p| p[0] >= p[1]), "{w:?}");
        // A last run that took longest puts its case first, whatever its
        // worst case (the root made as runs make it: 0755 whatever the umask).
        let last = cases.iter().rev().find(|(_, l)| l.is_ok()).unwrap().0.clone();
        let store = crate::evidence::store::Store::open(&root).unwrap();
        let dir = store.dir().subdir(&last, true).unwrap().unwrap();
        dir.write("evidence.json", br#"{"id":"x","duration_ms":1e12}"#).unwrap();
        longest_first(&mut cases, &root);
        assert_eq!(cases[0].0, last);
    }

    #[test]
    fn a_duration_is_read_from_the_start_of_a_record_alone() {
        // What follows the field is never read: here it is not even JSON.
        let rec =
            br#"{"format_version":2,"id":"c","title":"t \"duration_ms\": 5","duration_ms":1234.5,"phases":[ not json"#;
        assert_eq!(duration_ms(&rec[..]), Some(1234.5));
        assert_eq!(duration_ms(&br#"{"id":"c","phases":[]}"#[..]), None);
        assert_eq!(duration_ms(&b"[1,2]"[..]), None);
        assert_eq!(duration_ms(&b""[..]), None);
    }
}
