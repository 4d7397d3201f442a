//! One case's result in a run: pass, fail or skip with its reason, the
//! evidence's path, the failure report, the phases. What `netrepro run
//! --json`, the TAP stream and the JUnit file are made of (the evidence
//! itself stays in `evidence.json`).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::evidence::record::{relative_to_root, CaseRecord};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
    /// Could not run here (or was not run): never a pass.
    Skip,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseResult {
    pub name: String,
    pub passed: bool,
    /// The kernel range of the variant held, for kernel-gated phases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_range: Option<String>,
    /// A harness error that stopped the phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CaseResult {
    pub id: String,
    pub verdict: Status,
    /// Why it did not run (skips only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_reason: Option<String>,
    /// `evidence.json`, relative to the artifacts root (cases that ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<PathBuf>,
    /// Expected vs observed, why, paths (failures only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kernel_release: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseResult>,
    /// `phase probe: why` of every probe that failed as the incident does.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub why: Vec<String>,
    /// Checks this kernel or this run could not make (a drop reason without
    /// BPF, in a rootless run or on a kernel without reasons), as
    /// `phase probe what: observed`: neither a pass nor a fail.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_available: Vec<String>,
    /// What the drop monitor could see on this run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drop_monitor: Option<String>,
    #[serde(default)]
    pub duration_ms: f64,
}

impl CaseResult {
    fn new(id: &str, verdict: Status) -> CaseResult {
        CaseResult {
            id: id.into(),
            verdict,
            skip_reason: None,
            evidence: None,
            report: None,
            kernel_release: None,
            phases: vec![],
            why: vec![],
            not_available: vec![],
            drop_monitor: None,
            duration_ms: 0.0,
        }
    }

    /// A case that cannot run here, or was not run.
    pub fn skipped(id: &str, reason: impl Into<String>) -> CaseResult {
        CaseResult { skip_reason: Some(reason.into()), ..CaseResult::new(id, Status::Skip) }
    }

    /// A case that failed before it left a record (a harness error).
    pub fn failed(id: &str, report: impl Into<String>) -> CaseResult {
        CaseResult { report: Some(report.into()), ..CaseResult::new(id, Status::Fail) }
    }

    /// A case that ran and left `rec` at `evidence` (under `root`).
    pub fn of_record(rec: &CaseRecord, evidence: &Path, root: &Path) -> CaseResult {
        let passed = rec.passed();
        let mut r = CaseResult::new(&rec.id, if passed { Status::Pass } else { Status::Fail });
        r.evidence = Some(relative_to_root(root, evidence));
        r.report = (!passed).then(|| rec.failure_report(evidence));
        r.kernel_release = Some(rec.kernel_release.clone());
        r.phases = rec
            .phases
            .iter()
            .map(|p| PhaseResult {
                name: p.name.clone(),
                passed: p.passed,
                kernel_range: p.kernel_range.clone(),
                error: p.error.clone(),
            })
            .collect();
        r.why = rec.why_lines();
        r.not_available = rec
            .phases
            .iter()
            .flat_map(|ph| {
                ph.probes.iter().flat_map(move |p| {
                    p.checks
                        .iter()
                        .filter(|c| c.unavailable)
                        .map(move |c| format!("{} {} {}: {}", ph.name, p.name, c.what, c.observed))
                })
            })
            .collect();
        r.drop_monitor = (!rec.drop_monitor.is_empty()).then(|| rec.drop_monitor.clone());
        r.duration_ms = rec.duration_ms;
        r
    }
}
