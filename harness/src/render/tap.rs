//! A run as TAP version 13 (KTAP-compatible, what kselftest and NIPA read):
//! one test point per case, its phases as an indented subtest, a skip as
//! `ok N id # SKIP reason`, a failure's report as `#` diagnostics after it.
//! Written as the run goes: the plan first, each point when its case ends.

use crate::evidence::result::{CaseResult, Status};

/// The version line and the plan of `cases` test points.
pub fn header(cases: usize) -> String {
    format!("TAP version 13\n1..{cases}\n")
}

/// One line: newlines and `#` (which would start a directive) escaped.
fn description(s: &str) -> String {
    s.replace('\\', "\\\\").replace('#', "\\#").replace(['\n', '\r'], " ")
}

/// `# ` before every line of `text`, at `indent`.
pub fn diagnostics(text: &str, indent: &str) -> String {
    text.lines().map(|l| if l.is_empty() { format!("{indent}#\n") } else { format!("{indent}# {l}\n") }).collect()
}

/// Test point `n` (1-based, in order) for `r`, with its phases as a subtest.
pub fn point(n: usize, r: &CaseResult) -> String {
    let id = description(&r.id);
    if r.verdict == Status::Skip {
        // The reason goes after the directive as written: one line.
        let why = r.skip_reason.as_deref().unwrap_or("").replace(['\n', '\r'], " ");
        return format!("ok {n} {id} # SKIP {why}\n");
    }
    let mut s = String::new();
    if !r.phases.is_empty() {
        s += &format!("    # Subtest: {id}\n    1..{}\n", r.phases.len());
        for (i, p) in r.phases.iter().enumerate() {
            let ok = if p.passed { "ok" } else { "not ok" };
            s += &format!("    {ok} {} {}\n", i + 1, description(&p.name));
            if let Some(k) = &p.kernel_range {
                s += &format!("    # {}: the variant for kernels {k}\n", p.name);
            }
            if let Some(e) = &p.error {
                s += &diagnostics(e, "    ");
            }
        }
    }
    let ok = if r.verdict == Status::Pass { "ok" } else { "not ok" };
    s += &format!("{ok} {n} {id}\n");
    for na in &r.not_available {
        s += &format!("# {id}: {}\n", na.replace(['\n', '\r'], " "));
    }
    if let Some(report) = r.report.as_deref().filter(|_| r.verdict == Status::Fail) {
        s += &diagnostics(report, "");
    }
    s
}

/// The run ended before its plan: consumers count it as a failure.
pub fn bail_out(why: &str) -> String {
    format!("Bail out! {}\n", why.replace(['\n', '\r'], " "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::result::PhaseResult;

    #[test]
    fn skip_pass_and_fail_points() {
        let skip = CaseResult::skipped("ct", "needs a #global\nsetting");
        assert_eq!(point(3, &skip), "ok 3 ct # SKIP needs a #global setting\n");
        let mut pass = CaseResult::failed("fw", "");
        pass.verdict = Status::Pass;
        pass.report = None;
        pass.phases = vec![
            PhaseResult { name: "baseline".into(), passed: true, kernel_range: None, error: None },
            PhaseResult { name: "fault".into(), passed: true, kernel_range: Some(">=6.1".into()), error: None },
        ];
        pass.not_available = vec!["fault ping drops: not available: BPF needs real root".into()];
        assert_eq!(
            point(1, &pass),
            "    # Subtest: fw\n    1..2\n    ok 1 baseline\n    ok 2 fault\n    # fault: the variant for kernels >=6.1\n\
             ok 1 fw\n# fw: fault ping drops: not available: BPF needs real root\n"
        );
        let mut fail = pass.clone();
        fail.verdict = Status::Fail;
        fail.phases[1].passed = false;
        fail.not_available.clear();
        fail.report = Some("case fw\n\nphase fault FAILED".into());
        assert!(point(2, &fail).ends_with("    not ok 2 fault\n    # fault: the variant for kernels >=6.1\nnot ok 2 fw\n# case fw\n#\n# phase fault FAILED\n"));
    }
}
