//! The layers of `harness/src` (see the crate doc in `lib.rs`): no module
//! imports a module that imports it back, directly or around a circle, and no
//! folder imports from a layer below it in the list. Read from the source, so
//! a new `use` that breaks either fails here with the path that does it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Lowest first: a module may use its own layer and the ones before it.
const LAYERS: &[&str] = &["wire", "case", "sys", "safety", "evidence", "verdict", "run", "render", "app"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every module file, by module path (`sys::netns`, `run::witness::drops`),
/// a folder's `mod.rs` as the folder.
fn modules() -> BTreeMap<String, PathBuf> {
    fn walk(dir: &Path, prefix: &str, out: &mut BTreeMap<String, PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let stem = p.file_stem().unwrap().to_string_lossy().to_string();
            if p.is_dir() {
                walk(&p, &format!("{prefix}::{stem}"), out);
            } else if stem == "mod" {
                out.insert(prefix.to_string(), p);
            } else {
                out.insert(format!("{prefix}::{stem}"), p);
            }
        }
    }
    let mut out = BTreeMap::new();
    for layer in LAYERS {
        walk(&src().join(layer), layer, &mut out);
    }
    out
}

/// The modules `text` names through `crate::a::b…` (the longest known
/// prefix), in code: a doc link is a reference for the reader, not an import.
fn imports(text: &str, known: &BTreeMap<String, PathBuf>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let code: String = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect::<Vec<_>>().join("\n");
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + 7..];
        let path: String = rest.chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
        let parts: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
        for n in (1..=parts.len()).rev() {
            let m = parts[..n].join("::");
            if known.contains_key(&m) {
                out.insert(m);
                break;
            }
        }
    }
    out
}

/// `use super::…` and friends stay inside a file; `mod.rs` files only declare.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let known = modules();
    known
        .iter()
        .map(|(m, p)| {
            let text = std::fs::read_to_string(p).unwrap();
            let mut deps = imports(&text, &known);
            deps.remove(m);
            (m.clone(), deps)
        })
        .collect()
}

#[test]
fn no_module_imports_around_a_circle() {
    let g = graph();
    // Depth-first search; a grey node met again closes a circle.
    fn visit<'a>(
        m: &'a str,
        g: &'a BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<&'a str, u8>,
        stack: &mut Vec<&'a str>,
    ) -> Option<Vec<String>> {
        match state.get(m) {
            Some(1) => {
                let at = stack.iter().position(|s| *s == m).unwrap();
                let mut c: Vec<String> = stack[at..].iter().map(|s| s.to_string()).collect();
                c.push(m.to_string());
                return Some(c);
            }
            Some(_) => return None,
            None => {}
        }
        state.insert(m, 1);
        stack.push(m);
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, g, state, stack) {
                return Some(c);
            }
        }
        stack.pop();
        state.insert(m, 2);
        None
    }
    let mut state = BTreeMap::new();
    for m in g.keys() {
        if let Some(c) = visit(m, &g, &mut state, &mut Vec::new()) {
            panic!("import circle: {}", c.join(" → "));
        }
    }
}

#[test]
fn no_folder_imports_from_a_layer_above_it() {
    let rank = |m: &str| LAYERS.iter().position(|l| *l == m.split("::").next().unwrap()).unwrap();
    let mut wrong = Vec::new();
    for (m, deps) in graph() {
        for d in deps {
            if rank(&d) > rank(&m) {
                wrong.push(format!("{m} uses {d} (layer {} is above {})", LAYERS[rank(&d)], LAYERS[rank(&m)]));
            }
        }
    }
    assert!(wrong.is_empty(), "layer order {LAYERS:?} broken:\n  {}", wrong.join("\n  "));
}

#[test]
fn every_folder_says_its_purpose_in_its_first_line() {
    for layer in LAYERS {
        let text = std::fs::read_to_string(src().join(layer).join("mod.rs")).unwrap();
        assert!(
            text.starts_with("//! "),
            "{layer}/mod.rs does not open with a `//!` line saying what the folder is for"
        );
    }
}

#[test]
fn every_setns_happens_in_sys_netns() {
    let mut elsewhere = Vec::new();
    for (m, p) in modules() {
        let text = std::fs::read_to_string(&p).unwrap();
        let calls = text.lines().filter(|l| !l.trim_start().starts_with("//") && l.contains("setns(")).count();
        // A contained step's init enters the namespace in its cloned child.
        if calls > 0 && m != "sys::netns" && m != "sys::contain" {
            elsewhere.push(format!("{m} ({})", p.display()));
        }
    }
    assert!(
        elsewhere.is_empty(),
        "setns outside sys/netns.rs and sys/contain.rs (ARCHITECTURE.md's invariant): {elsewhere:?}"
    );
}
