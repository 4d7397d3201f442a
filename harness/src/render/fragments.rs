//! `report.html` in parts, one per case, each cached beside the case's
//! evidence (`<case>/.report-part.json`): a case whose `evidence.json` has
//! the same size and modification time as when its part was rendered, by
//! the same renderer, is neither parsed nor rendered again. Rebuilding the
//! report after one case ran costs that case, not all of them (a stream
//! case's evidence is megabytes of frames).

use std::path::Path;
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::evidence::record::CaseRecord;
use crate::safety::owndir::OwnDir;

/// One case's share of the page.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Part {
    pub id: String,
    pub passed: bool,
    pub kernel_release: String,
    pub drop_monitor: String,
    /// Its row in the summary table.
    pub row: String,
    /// Its section of the page.
    pub section: String,
    /// Its entries (`<li>`) in the index of failures at the top.
    pub failures: Vec<String>,
}

/// What a cached part was rendered from.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
struct Key {
    size: u64,
    mtime_ns: i128,
    renderer: u64,
}

#[derive(Serialize, Deserialize)]
struct Cached {
    key: Key,
    part: Part,
}

pub const PART_FILE: &str = ".report-part.json";

/// The renderer's identity: this version and the source of what shapes a
/// part (the page's code and the record types it reads), hashed once.
fn renderer() -> u64 {
    static STAMP: OnceLock<u64> = OnceLock::new();
    *STAMP.get_or_init(|| {
        let sources = [
            env!("CARGO_PKG_VERSION"),
            include_str!("report.rs"),
            include_str!("timeline.rs"),
            include_str!("fragments.rs"),
            include_str!("../evidence/record.rs"),
            include_str!("../evidence/frames.rs"),
            include_str!("../evidence/outcome.rs"),
            include_str!("../evidence/topo.rs"),
            include_str!("../wire/kind.rs"),
            include_str!("../wire/headers.rs"),
        ];
        // FNV-1a: a stamp, not a defence.
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for s in sources {
            for b in s.bytes().chain([0]) {
                h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
            }
        }
        h
    })
}

fn key_of(evidence: &Path) -> Option<Key> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(evidence).ok()?;
    Some(Key {
        size: m.len(),
        mtime_ns: m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128,
        renderer: renderer(),
    })
}

/// The largest cached part read back (a case's section with its frames
/// tables is well under this).
const MAX_PART: u64 = 64 << 20;

/// Every case's part under `root`, by case id (from its cache when the
/// evidence has not changed, else rendered with `render` and cached), and
/// every evidence file that could not be read (`path: why`). Hidden entries
/// (`.<case>.new-<pid>`, a run's directory not yet in place) are not cases;
/// the cache is read and written through the case directory's fd, never
/// through a symlink ([`OwnDir`]).
pub fn collect(root: &OwnDir, render: impl Fn(&CaseRecord) -> Part) -> (Vec<Part>, Vec<String>) {
    let (mut out, mut unreadable) = (Vec::new(), Vec::new());
    for name in root.names().unwrap_or_default() {
        if name.starts_with('.') {
            continue;
        }
        let Ok(Some(dir)) = root.subdir(&name, false) else { continue };
        let ev = dir.join("evidence.json");
        let Some(key) = key_of(&ev) else { continue };
        let cached = dir
            .read(PART_FILE, MAX_PART)
            .ok()
            .and_then(|b| serde_json::from_slice::<Cached>(&b).ok())
            .filter(|c| c.key == key);
        if let Some(c) = cached {
            out.push(c.part);
            continue;
        }
        match CaseRecord::read(&ev) {
            Ok(r) => {
                let part = render(&r);
                // The evidence may have changed while it was read: cache
                // only what is known to match it.
                if key_of(&ev) == Some(key) {
                    store(&dir, &Cached { key, part: part.clone() });
                }
                out.push(part);
            }
            Err(e) => unreadable.push(format!("{e:#}")),
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    unreadable.sort();
    (out, unreadable)
}

/// Caches the part of a case just run in the run's own directory, beside
/// the `evidence.json` it was rendered from, before that directory is put
/// in place: the swap keeps the evidence's size and mtime, so the key holds.
pub fn store_in(dir: &OwnDir, part: Part) {
    if let Some(key) = key_of(&dir.join("evidence.json")) {
        store(dir, &Cached { key, part });
    }
}

/// Replaces the cache file whole (a reader sees the old one or the new one);
/// a cache that cannot be written is only a slower next report.
fn store(dir: &OwnDir, c: &Cached) {
    let Ok(text) = serde_json::to_vec(c) else { return };
    let _ = dir.write(PART_FILE, &text);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(id: &str) -> Part {
        Part {
            id: id.into(),
            passed: true,
            kernel_release: "k".into(),
            drop_monitor: String::new(),
            row: String::new(),
            section: format!("<h2>{id}</h2>"),
            failures: vec![],
        }
    }

    #[test]
    fn a_part_is_reused_until_its_evidence_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let root = OwnDir::create(&tmp.path().join("root")).unwrap();
        let dir = root.subdir("c1", true).unwrap().unwrap();
        let ev = dir.join("evidence.json");
        std::fs::write(&ev, "{}").unwrap();
        let key = key_of(&ev).unwrap();
        store(&dir, &Cached { key, part: part("c1") });
        // Not evidence at all: only the cache can give a part for it.
        let (parts, bad) = collect(&root, |_| panic!("rendered although cached"));
        assert_eq!((parts, bad.len()), (vec![part("c1")], 0));
        // Changed evidence is read again (here: unreadable, and said so).
        std::fs::write(&ev, "{ }").unwrap();
        let (parts, bad) = collect(&root, |_| panic!("not evidence"));
        assert!(parts.is_empty() && bad.len() == 1, "{parts:?} {bad:?}");
    }
}
