//! The case files as `netrepro list`, `check` and `new` show and make them:
//! lines for people, one JSON document for machines.

use std::path::{Path, PathBuf};

use anyhow::{bail, Result};
use serde::Serialize;

use crate::case::plan::{LoadError, Plan};

/// Every case file, loaded or not: what [`crate::app::suite::discover`] returns.
pub type Loaded = [(String, Result<Plan, LoadError>)];

#[derive(Serialize)]
struct Listed<'a> {
    id: &'a str,
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fixture: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phases: Option<usize>,
    /// `file:line: what is wrong`.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

fn listed<'a>(id: &'a str, loaded: &'a Result<Plan, LoadError>) -> Listed<'a> {
    match loaded {
        Ok(p) => Listed {
            id,
            valid: true,
            title: Some(&p.case.title),
            fixture: Some(p.case.fixture.get_ref()),
            urls: p.urls(),
            phases: Some(p.phases.len()),
            error: None,
        },
        Err(e) => Listed {
            id,
            valid: false,
            title: None,
            fixture: None,
            urls: vec![],
            phases: None,
            error: Some(e.to_string()),
        },
    }
}

/// `netrepro list`: every case with its report title, fixture and URLs.
pub fn list(cases: &Loaded, json: bool) -> Result<String> {
    if json {
        let all: Vec<Listed> = cases.iter().map(|(id, l)| listed(id, l)).collect();
        return Ok(serde_json::to_string_pretty(&all)? + "\n");
    }
    let mut s = String::new();
    for (id, loaded) in cases {
        match loaded {
            Ok(p) => {
                s += &format!("{id}\n    {}\n    fixture: {}\n", p.case.title, p.case.fixture.get_ref());
                for u in p.urls() {
                    s += &format!("    {u}\n");
                }
            }
            Err(e) => s += &format!("{id}\n    INVALID: {e}\n"),
        }
    }
    Ok(s)
}

/// `netrepro check`: the `wanted` cases (all when empty) validated; the text
/// and whether every one loaded. Ids must have been checked to exist.
pub fn check(cases: &Loaded, wanted: &[String], json: bool) -> Result<(String, bool)> {
    let chosen: Vec<_> = cases.iter().filter(|(id, _)| wanted.is_empty() || wanted.contains(id)).collect();
    let ok = chosen.iter().all(|(_, l)| l.is_ok());
    if json {
        let all: Vec<Listed> = chosen.iter().map(|(id, l)| listed(id, l)).collect();
        return Ok((serde_json::to_string_pretty(&all)? + "\n", ok));
    }
    let mut s = String::new();
    for (id, loaded) in chosen {
        match loaded {
            Ok(p) => s += &format!("ok      {id} ({} phases, fixture {})\n", p.phases.len(), p.case.fixture.get_ref()),
            Err(e) => s += &format!("INVALID {e}\n"),
        }
    }
    Ok((s, ok))
}

/// The wanted ids no case file has.
pub fn unknown<'a>(cases: &Loaded, wanted: &'a [String]) -> Vec<&'a str> {
    wanted.iter().filter(|w| !cases.iter().any(|(id, _)| id == *w)).map(String::as_str).collect()
}

/// `netrepro new ID --fixture NAME`: writes `<cases>/ID.toml`, a commented
/// case that runs its baseline, and returns its path. Never overwrites.
pub fn new_case(cases_dir: &Path, fixtures_dir: &Path, id: &str, fixture: &str) -> Result<PathBuf> {
    if let Err(e) = crate::case::syntax::check_id(id) {
        bail!("case {e}");
    }
    let path = cases_dir.join(format!("{id}.toml"));
    if path.exists() {
        bail!("{} exists already", path.display());
    }
    let fx = crate::case::plan::load_fixture(&fixtures_dir.join(format!("{fixture}.toml")))?;
    let text = crate::case::scaffold::case_text(id, fixture, &fx)?;
    // O_EXCL: a file that appeared meanwhile is not overwritten either.
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
    f.write_all(text.as_bytes())?;
    Ok(path)
}
