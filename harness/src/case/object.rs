//! Typed objects shared by fixtures and steps. Today: firewall rulesets (an
//! `nft -f` ruleset, inline or from a file, or an `iptables-restore` file),
//! read when the file is loaded so a plan that loads can run.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The iptables backend an `iptables-restore` file goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RestoreBackend {
    Legacy,
    Nft,
}

impl RestoreBackend {
    /// The tool that loads a file into this backend; `None`: the system's
    /// `iptables-restore`.
    pub fn tool(b: Option<RestoreBackend>) -> &'static str {
        match b {
            None => "iptables-restore",
            Some(RestoreBackend::Legacy) => "iptables-legacy-restore",
            Some(RestoreBackend::Nft) => "iptables-nft-restore",
        }
    }
}

/// What a ruleset is and which tool loads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum RulesetKind {
    /// `nft -f -`.
    Nft,
    /// `iptables-restore [--noflush]` (of a backend).
    IptablesRestore { backend: Option<RestoreBackend>, noflush: bool },
}

/// A firewall ruleset with its text, loaded into one namespace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ruleset {
    pub ns: String,
    pub kind: RulesetKind,
    /// Where it came from: the path as written, or `inline`.
    pub origin: String,
    pub text: String,
}

impl Ruleset {
    /// The command that loads it (the text goes to its stdin).
    pub fn argv(&self) -> Vec<&'static str> {
        match self.kind {
            RulesetKind::Nft => vec!["nft", "-f", "-"],
            RulesetKind::IptablesRestore { backend, noflush } => {
                let mut v = vec![RestoreBackend::tool(backend)];
                if noflush {
                    v.push("--noflush");
                }
                v
            }
        }
    }

    /// The tool a case needs for it (preflight).
    pub fn tool(&self) -> &'static str {
        self.argv()[0]
    }
}

impl fmt::Display for Ruleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let lines = self.text.lines().filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#')).count();
        write!(f, "[{}] {} < {} ({lines} lines)", self.ns, self.argv().join(" "), self.origin)
    }
}

/// Reads a ruleset file named relative to the file that names it (`base`
/// is that file). Absolute paths are refused: a case and its rulesets move
/// together.
///
/// # Errors
/// A sentence saying what to write instead.
pub fn read_relative(base: &Path, rel: &str) -> Result<String, String> {
    let p = Path::new(rel);
    if p.is_absolute() {
        return Err(format!("{rel:?}: write a path relative to {}", base.display()));
    }
    let dir = base.parent().unwrap_or(Path::new("."));
    let full = dir.join(p);
    std::fs::read_to_string(&full)
        .map_err(|e| format!("{rel:?}: cannot read {} ({e}): write a path relative to this file", full.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rulesets_show_their_command_and_origin() {
        let r = Ruleset {
            ns: "host".into(),
            kind: RulesetKind::IptablesRestore { backend: Some(RestoreBackend::Legacy), noflush: true },
            origin: "rules.v4".into(),
            text: "# c\n*filter\nCOMMIT\n".into(),
        };
        assert_eq!(r.to_string(), "[host] iptables-legacy-restore --noflush < rules.v4 (2 lines)");
        let n = Ruleset { kind: RulesetKind::Nft, origin: "inline".into(), ..r };
        assert_eq!(n.argv(), ["nft", "-f", "-"]);
    }

    #[test]
    fn ruleset_files_are_relative_to_their_file() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("x.nft"), "table inet t {}\n").unwrap();
        let base = d.path().join("case.toml");
        assert_eq!(read_relative(&base, "x.nft").unwrap(), "table inet t {}\n");
        assert!(read_relative(&base, "/etc/x.nft").unwrap_err().contains("relative"));
        assert!(read_relative(&base, "y.nft").unwrap_err().contains("cannot read"));
    }
}
