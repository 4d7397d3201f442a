//! Observation with no probe over a named span of steps and over the whole
//! phase: the kernel's drop reason, an iptables rule's counter, a counter
//! and frames, each over exactly its window (a drop before the span is the
//! phase's, not the span's); an unmet one fails with a why-line naming the
//! span; a probe's own drops stay its own over the whole phase; mistakes
//! are load errors with `file:line`.

mod common;

use common::Need;

use std::path::{Path, PathBuf};

use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::run::runner;

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(spans_are_checked_at_load),
        common::test!(a_drop_reason_and_a_rule_counter_over_a_span_of_steps_with_no_probe).needs(Need::Namespaces),
    ])
}

const FIXTURE: &str = r#"
description = "two namespaces on a veth"
[[namespace]]
name = "a"
[[namespace]]
name = "b"
[[veth]]
a = { ns = "a", name = "eth0", addresses = ["10.0.0.1/24"] }
b = { ns = "b", name = "eth0", addresses = ["10.0.0.2/24"] }
"#;

/// b drops every ICMP echo request in INPUT; one ping before the span (a
/// phase step), three inside it. The pings are only traffic: `|| true`,
/// the verdict is the expectations'.
const CASE: &str = r#"
id = "spans"
title = "spans"
urls = ["https://example.org/spans"]
symptom = "none: a self-test"
fix = "none"
fixture = "pair"
capture = ["b/eth0"]
requires = ["iptables", "ping"]
setup = [{ sh = { ns = "b", run = "iptables -A INPUT -p icmp --icmp-type echo-request -j DROP" } }]

# b's own pings are answered (its INPUT drops requests, not replies): their
# replies, freed by ping_rcv after the probe's raw socket read a clone, are
# the probe's own drops, over the whole phase too.
[probes]
back = { kind = "ping", from = "b", to = "10.0.0.1", count = 2, interval_ms = 20, wait_ms = 300 }

[[phase]]
name = "baseline"
steps = [{ sh = { ns = "a", run = "ping -c 1 -W 0.2 10.0.0.2 >/dev/null || true" } }]

[[phase.span]]
name = "pings"
steps = [
  { sh = { ns = "a", run = "ping -c 3 -i 0.05 -W 0.2 10.0.0.2 >/dev/null || true" } },
]
[phase.span.expect]
rules = { "b: -A INPUT -p icmp -m icmp --icmp-type 8 -j DROP" = 3 }
drops = { "b: NETFILTER_DROP" = 3 }
counters = { "a: Icmp.OutEchos" = 3 }
packets = { "b/eth0: icmp echo-request in" = 3, "b/eth0: icmp echo-reply" = 0 }

[phase.expect_phase]
rules = { "b: -A INPUT -p icmp -m icmp --icmp-type 8 -j DROP" = 4 }
drops = { "b: NETFILTER_DROP" = 4, "b: NO_SOCKET" = 0 }

[phase.expect.back]
replies = 2
"#;

fn write(dir: &Path, case: &str) -> (PathBuf, PathBuf) {
    std::fs::write(dir.join("pair.toml"), FIXTURE).unwrap();
    let file = dir.join("spans.toml");
    std::fs::write(&file, case).unwrap();
    (file, dir.to_path_buf())
}

fn a_drop_reason_and_a_rule_counter_over_a_span_of_steps_with_no_probe() {
    for tool in ["iptables", "ping"] {
        assert!(netrepro::sys::cmd::which(tool).is_some(), "{tool} is not on PATH (ci/setup-host installs it)");
    }
    let dir = tempfile::tempdir().unwrap();
    let (file, fixtures) = write(dir.path(), CASE);
    let p = plan::load(&file, &fixtures).unwrap_or_else(|e| panic!("{e}"));
    let (release, version) = Version::running().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, out.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    let ph = &rec.phases[0];
    let names: Vec<&str> = ph.windows.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(names, ["pings", "phase"]);
    let (span, whole) = (&ph.windows[0], &ph.windows[1]);
    assert_eq!(span.steps.len(), 1, "{span:?}");
    assert!(ph.probes.len() == 1 && span.window_ns.0 >= whole.window_ns.0 && span.window_ns.1 <= whole.window_ns.1);
    assert_eq!(span.rules.get("b: -A INPUT -p icmp -m icmp --icmp-type 8 -j DROP"), Some(&3), "{span:?}");
    assert_eq!(whole.rules.get("b: -A INPUT -p icmp -m icmp --icmp-type 8 -j DROP"), Some(&4), "{whole:?}");
    // The drop reason is checked, not left unavailable, where the monitor runs.
    let drop_check = span.checks.iter().find(|c| c.what.contains("NETFILTER_DROP")).unwrap();
    if netrepro::sys::drops::monitor().is_ok() {
        assert!(drop_check.ok && !drop_check.unavailable, "{drop_check:?}");
        assert!(span.why.as_deref().is_some_and(|w| w.contains("NETFILTER_DROP")), "{:?}", span.why);
        // The probe's own echo replies, labelled by the probe, keep that
        // label over the whole phase, whose own reading saw them only as
        // counts (the probe's window took their packets).
        let own = |drops: &[netrepro::sys::drops::Drop]| -> u64 {
            drops
                .iter()
                .filter(|d| d.reason == "NO_SOCKET" && d.origin == netrepro::sys::drops::Origin::ProbeOwn)
                .map(|d| d.count)
                .sum()
        };
        let in_probe = own(&ph.probes[0].drops);
        assert!(in_probe >= 1, "the ping probe saw none of its own replies dropped: {:?}", ph.probes[0].drops);
        assert_eq!(own(&whole.drops), in_probe, "{:?}", whole.drops);
    }
    assert!(span.checks.iter().all(|c| c.what.starts_with("span pings: ")), "{:?}", span.checks);

    // The same span expecting what did not happen fails, saying which span
    // and what it saw.
    let wrong = CASE.replacen(
        "\"b: -A INPUT -p icmp -m icmp --icmp-type 8 -j DROP\" = 3",
        "\"b: -A INPUT -p icmp -m icmp --icmp-type 8 -j DROP\" = 2",
        1,
    );
    let (file, fixtures) = write(dir.path(), &wrong);
    let p = plan::load(&file, &fixtures).unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, out.path()).unwrap();
    assert!(!rec.passed());
    let report = rec.failure_report(&path);
    assert!(
        report.contains("span pings: rule b: -A INPUT -p icmp -m icmp --icmp-type 8 -j DROP") && report.contains("3"),
        "{report}"
    );
    let why = rec.phases[0].windows[0].why.clone().unwrap_or_default();
    assert!(
        why.starts_with(
            "over span pings: rule b: -A INPUT -p icmp -m icmp --icmp-type 8 -j DROP expected delta 2, observed +3"
        ),
        "{why}"
    );
    let html = netrepro::render::report::render(&[rec]);
    assert!(html.contains("span pings") && html.contains("window-pings"), "the report shows no span");
}

fn spans_are_checked_at_load() {
    let dir = tempfile::tempdir().unwrap();
    for (from, to, says) in [
        ("\"b: NETFILTER_DROP\" = 3", "\"z: NETFILTER_DROP\" = 3", "span \"pings\": drops \"z: NETFILTER_DROP\""),
        ("\"b: -A INPUT -p icmp -m icmp --icmp-type 8 -j DROP\" = 3", "\"b -A INPUT\" = 3", "span \"pings\": rules"),
        ("name = \"pings\"", "name = \"phase\"", "not \"phase\""),
        ("\"b/eth0: icmp echo-reply\" = 0", "\"a/eth0: icmp\" = 0", "a/eth0 is not captured"),
        ("\"b: NO_SOCKET\" = 0 }", "\"b: NO_SOCKET\" = 0 }\nqdisc = 1", "unknown field `qdisc`"),
        ("[phase.span.expect]\nrules", "[phase.span.expectx]\nrules", "spans.toml"),
    ] {
        let text = CASE.replacen(from, to, 1);
        assert_ne!(text, CASE, "{from}");
        let (file, fixtures) = write(dir.path(), &text);
        let e = plan::load(&file, &fixtures).unwrap_err().to_string();
        assert!(e.contains(says) && e.contains("spans.toml:"), "{from} → {to}: {e}");
    }
    let (file, fixtures) = write(dir.path(), CASE);
    plan::load(&file, &fixtures).unwrap_or_else(|e| panic!("{e}"));
}
