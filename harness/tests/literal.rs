//! Literal commands verbatim: an `sh` step (and a command actor) sees the
//! case's namespaces under their fixture names, `ip netns exec container …`
//! and `ip -n host …` work as the customer typed them, and nothing of it
//! shows on the host: its `/run/netns` is as before, during and after.

mod common;

use common::Need;

use netrepro::app::suite;
use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::run::runner;

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(ip_netns_exec_and_ip_n_see_the_case_namespaces_not_the_host).needs(Need::Namespaces),
        common::test!(a_failing_step_says_its_output_once_and_its_command_once).needs(Need::Namespaces),
    ])
}

fn host_run_netns() -> Option<Vec<String>> {
    let mut v: Vec<String> =
        std::fs::read_dir("/run/netns").ok()?.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    v.sort();
    Some(v)
}

fn ip_netns_exec_and_ip_n_see_the_case_namespaces_not_the_host() {
    assert!(netrepro::sys::cmd::which("ip").is_some(), "ip is not on PATH (ci/setup-host installs it)");
    let before = host_run_netns();
    let case = r#"
id = "literal"
title = "literal commands"
urls = ["https://example.org/literal"]
symptom = "none: a self-test"
fix = "none"
fixture = "docker-bridge"
requires = ["ip"]

[probes]
ping = { kind = "ping", from = "container", to = "172.17.0.1", count = 1 }

[[phase]]
name = "baseline"
steps = [
  { sh = { ns = "host", run = "ip netns exec container ip -br addr; ip -n host link show docker0" } },
  { sh = { ns = "external", run = "ls /run/netns; ip -br link; nsenter --net=/run/netns/host ip -br addr show docker0" } },
]
[phase.actors]
lister = { kind = "command", ns = "container", run = "sh -c 'ls /run/netns; ip -n external -br addr show eth0; sleep 30'" }
[phase.expect.ping]
replies = 1
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("literal.toml");
    std::fs::write(&path, case).unwrap();
    let p = plan::load(&path, &suite::fixtures_dir()).unwrap_or_else(|e| panic!("{e}"));
    let (release, version) = Version::running().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (rec, evidence) = runner::run_case(&p, &release, version, out.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&evidence));
    let steps = &rec.phases[0].steps;
    let first = &steps.iter().find(|s| s.step.contains("ip netns exec container")).unwrap().output;
    // The container's own links and address, and the host's docker0.
    assert!(first.contains("eth0") && first.contains("172.17.0.2/16"), "{first}");
    assert!(first.contains("docker0:") && !first.contains("does not exist"), "{first}");
    let second = &steps.iter().find(|s| s.step.contains("nsenter")).unwrap().output;
    for n in ["container", "external", "host"] {
        assert!(second.lines().any(|l| l == n), "{n} not in /run/netns: {second}");
    }
    // /sys is the namespace's own: `ip -br link` in external lists its eth0, not the host's links.
    assert!(second.contains("eth0") && second.contains("172.17.0.1/16"), "{second}");
    let actor = &rec.phases[0].actors[0];
    assert!(actor.stdout.contains("container") && actor.stdout.contains("10.2.19.80/24"), "{actor:?}");
    assert_eq!(host_run_netns(), before, "the host's /run/netns changed");
}

fn a_failing_step_says_its_output_once_and_its_command_once() {
    let case = r#"
id = "failing"
title = "a failing step"
urls = ["https://example.org/failing"]
symptom = "none: a self-test"
fix = "none"
fixture = "docker-bridge"

[probes]
ping = { kind = "ping", from = "container", to = "172.17.0.1", count = 1 }

[[phase]]
name = "baseline"
steps = [{ sh = { ns = "host", run = "echo to-stdout; echo to-stderr >&2; exit 3" } }]
[phase.expect.ping]
replies = 1
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("failing.toml");
    std::fs::write(&path, case).unwrap();
    let p = plan::load(&path, &suite::fixtures_dir()).unwrap();
    let (release, version) = Version::running().unwrap();
    let out = tempfile::tempdir().unwrap();
    let (rec, evidence) = runner::run_case(&p, &release, version, out.path()).unwrap();
    assert!(!rec.passed());
    let report = rec.failure_report(&evidence);
    // The command once (the step's line), its output once.
    assert_eq!(report.matches("echo to-stdout").count(), 1, "{report}");
    assert_eq!(report.matches("to-stdout").count(), 2, "{report}");
    assert_eq!(report.matches("to-stderr").count(), 2, "{report}");
    assert!(report.contains("exited 3; stdout: to-stdout; stderr: to-stderr"), "{report}");
}
