//! A run as JUnit XML (quick-junit): one `<testcase>` per case, a skip as
//! `<skipped message="reason">`, a failure with its report, and what a run
//! could not check (rootless, no drop reasons) as properties. Read back by
//! `netrepro matrix` from each kernel's results.

use anyhow::{Context, Result};
use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use crate::evidence::result::{CaseResult, Status};

/// The report of one run: suite `suite` (`netrepro`, `cases`), its
/// `properties` (kernel, rootless ...) and every case of `results`.
pub fn write(suite: &str, properties: &[(&str, String)], results: &[CaseResult]) -> Result<String> {
    let mut s = TestSuite::new(suite);
    s.add_properties(properties.iter().map(|(k, v)| Property::new(*k, v.as_str())));
    for r in results {
        let status = match r.verdict {
            Status::Pass => TestCaseStatus::success(),
            Status::Skip => {
                let mut st = TestCaseStatus::skipped();
                st.set_message(r.skip_reason.as_deref().unwrap_or(""));
                st
            }
            Status::Fail => {
                let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                let report = r.report.as_deref().unwrap_or("");
                st.set_message(format!("case {} failed", r.id));
                st.set_description(report);
                st
            }
        };
        let mut c = TestCase::new(r.id.as_str(), status);
        c.set_classname(suite);
        if r.duration_ms > 0.0 {
            c.set_time(std::time::Duration::from_secs_f64(r.duration_ms / 1e3));
        }
        if let Some(e) = &r.evidence {
            c.add_property(("evidence", e.to_string_lossy().as_ref()));
        }
        if let Some(k) = &r.kernel_release {
            c.add_property(("kernel", k.as_str()));
        }
        if let Some(d) = &r.drop_monitor {
            c.add_property(("drop-monitor", d.as_str()));
        }
        for p in &r.phases {
            let v = match (&p.kernel_range, p.passed) {
                (Some(k), true) => format!("pass ({k})"),
                (Some(k), false) => format!("fail ({k})"),
                (None, true) => "pass".into(),
                (None, false) => "fail".into(),
            };
            c.add_property((format!("phase {}", p.name).as_str(), v.as_str()));
        }
        for na in &r.not_available {
            c.add_property(("not-available", na.as_str()));
        }
        s.add_test_case(c);
    }
    let mut report = Report::new("netrepro");
    report.add_test_suite(s);
    report.to_string().context("serializing the JUnit report")
}

/// The cases of a JUnit file written by [`write`]: id, verdict, the skip
/// reason or the failure's report.
pub fn read(xml: &str) -> Result<Vec<CaseResult>> {
    let report = Report::deserialize_from_str(xml).map_err(|e| anyhow::anyhow!("not a JUnit report: {e}"))?;
    let mut out = Vec::new();
    for suite in &report.test_suites {
        for c in &suite.test_cases {
            out.push(match &c.status {
                TestCaseStatus::Success { .. } => {
                    let mut r = CaseResult::failed(c.name.as_str(), "");
                    r.verdict = Status::Pass;
                    r.report = None;
                    r
                }
                TestCaseStatus::Skipped { message, .. } => {
                    CaseResult::skipped(c.name.as_str(), message.as_ref().map(|m| m.as_str()).unwrap_or(""))
                }
                TestCaseStatus::NonSuccess { description, message, .. } => CaseResult::failed(
                    c.name.as_str(),
                    description.as_ref().or(message.as_ref()).map(|m| m.as_str()).unwrap_or(""),
                ),
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_and_read_back() {
        let mut pass = CaseResult::skipped("fw", "");
        pass.verdict = Status::Pass;
        pass.skip_reason = None;
        pass.not_available = vec!["fault ping drops: not available: BPF needs real root".into()];
        let results = vec![
            pass,
            CaseResult::skipped("ct", "changes net.netfilter.nf_conntrack_max <shared>"),
            CaseResult::failed("htb", "case htb\nphase fault FAILED & more"),
        ];
        let xml = write("netrepro", &[("rootless", "true".into())], &results).unwrap();
        assert!(xml.contains("not-available"), "{xml}");
        assert!(xml.contains("&lt;shared&gt;"), "{xml}");
        let back = read(&xml).unwrap();
        let got: Vec<(&str, Status, Option<&str>, Option<&str>)> =
            back.iter().map(|r| (r.id.as_str(), r.verdict, r.skip_reason.as_deref(), r.report.as_deref())).collect();
        assert_eq!(
            got,
            [
                ("fw", Status::Pass, None, None),
                ("ct", Status::Skip, Some("changes net.netfilter.nf_conntrack_max <shared>"), None),
                ("htb", Status::Fail, None, Some("case htb\nphase fault FAILED & more")),
            ]
        );
    }
}
