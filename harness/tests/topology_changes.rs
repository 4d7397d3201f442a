//! Topology changes within one phase (issue 19): a link moved between
//! namespaces, a veth deleted and made again with the same address and a
//! new MAC, a captured link flapped. Captures keep going; the loader knows
//! the step-made interfaces and refuses a misspelled one with the list.

mod common;

use common::Need;

use netrepro::case::kernel::Version;
use netrepro::case::plan;
use netrepro::run::runner;

const FIXTURE: &str = r#"
description = "a bridge with one container, and an empty namespace"
[[namespace]]
name = "host"
sysctls = { "net.ipv6.conf.all.disable_ipv6" = 1, "net.ipv6.conf.default.disable_ipv6" = 1 }
[[namespace]]
name = "c"
sysctls = { "net.ipv6.conf.all.disable_ipv6" = 1, "net.ipv6.conf.default.disable_ipv6" = 1 }
[[namespace]]
name = "d"
sysctls = { "net.ipv6.conf.all.disable_ipv6" = 1, "net.ipv6.conf.default.disable_ipv6" = 1 }
[[bridge]]
ns = "host"
name = "br0"
addresses = ["10.0.0.1/24"]
[[veth]]
a = { ns = "host", name = "vh0", master = "br0" }
b = { ns = "c", name = "eth0", addresses = ["10.0.0.2/24"] }
[[firewall]]
ns = "host"
iptables_restore = "host.rules"
"#;

const CASE: &str = r#"id = "changes"
title = "t"
urls = ["https://example.invalid/19"]
symptom = "s"
fix = "f"
fixture = "three"
capture = ["c/eth0", "d/x1"]

[probes]
ping = { kind = "ping", from = "c", to = "10.0.0.1", count = 3, interval_ms = 20, wait_ms = 200 }
moved = { kind = "ping", from = "d", to = "10.0.1.1", count = 2, interval_ms = 20, wait_ms = 200 }
policy = { kind = "connect", from = "c", to = "10.9.0.1:80", timeout_ms = 300 }

[[phase]]
name = "baseline"
[phase.expect.ping]
replies = 3
packets = { "c/eth0: icmp echo-request out" = 3 }
# The fixture's iptables-restore file, read back.
rules = { "host: -A INPUT -p icmp -j ACCEPT" = 3 }

[[phase]]
name = "fault"
steps = [
  # A flap of the captured link.
  { link-set = { ns = "c", dev = "eth0", up = false } },
  { link-set = { ns = "c", dev = "eth0", up = true } },
  # The container's veth deleted and made again: same address, new MAC.
  { link-del = { ns = "host", dev = "vh0" } },
  { link-add = { ns = "host", name = "vh0", kind = "veth", peer = "eth0", peer_ns = "c", master = "br0" } },
  { link-set = { ns = "c", dev = "eth0", address = "02:00:00:00:19:02", up = true } },
  { addr-add = { ns = "c", dev = "eth0", address = "10.0.0.2/24" } },
  # A link made in host and moved into d.
  { link-add = { ns = "host", name = "x0", kind = "veth", peer = "x1", addresses = ["10.0.1.1/24"] } },
  { link-set = { ns = "host", dev = "x1", netns = "d" } },
  { addr-add = { ns = "d", dev = "x1", address = "10.0.1.2/24" } },
  { link-set = { ns = "d", dev = "x1", up = true } },
  # Policy routing: 10.9.0.0/16 looked up in table 100, where it is unreachable.
  { rule-add = { ns = "c", priority = 100, to = "10.9.0.0/16", table = 100 } },
  { route-add = { ns = "c", to = "10.9.0.0/16", type = "unreachable", table = 100 } },
  { route-add = { ns = "c", to = "10.9.0.0/16", via = "10.0.0.1" } },
  { link-add = { ns = "d", name = "tap0", kind = "tap", address = "02:00:00:00:19:09", addresses = ["10.0.2.1/24"] } },
]
[phase.expect.ping]
replies = 3
packets = { "c/eth0: icmp echo-request out" = 3 }
[phase.expect.moved]
replies = 2
packets = { "d/x1: icmp echo-request out" = 2 }
links = { "d/x1" = { mtu = 1500 } }
[phase.expect.policy]
result = "EHOSTUNREACH"

[[phase]]
name = "fault-flap"
steps = [
  { link-set = { ns = "c", dev = "eth0", up = false } },
  { link-set = { ns = "host", dev = "vh0", up = false } },
  { link-set = { ns = "host", dev = "vh0", up = true } },
  { link-set = { ns = "c", dev = "eth0", up = true } },
]
[phase.expect.ping]
replies = 3
packets = { "c/eth0: icmp echo-request out" = 3, "c/eth0: icmp echo-reply in" = 3 }
"#;

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(step_made_interfaces_load_and_a_misspelled_one_names_those_that_exist),
        common::test!(a_link_moved_recreated_and_flapped_within_a_phase_keeps_its_captures).needs(Need::Namespaces),
        common::test!(link_kinds_this_kernel_lacks_are_found_by_a_probe).needs(Need::Namespaces),
        common::test!(a_kind_this_kernel_lacks_is_a_skip_naming_its_option).needs(Need::Namespaces),
    ])
}

fn write(dir: &std::path::Path, case: &str) -> std::path::PathBuf {
    std::fs::write(dir.join("three.toml"), FIXTURE).unwrap();
    std::fs::write(dir.join("host.rules"), "*filter\n-A INPUT -p icmp -j ACCEPT\nCOMMIT\n").unwrap();
    let p = dir.join("changes.toml");
    std::fs::write(&p, case).unwrap();
    p
}

fn step_made_interfaces_load_and_a_misspelled_one_names_those_that_exist() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan::load(&write(dir.path(), CASE), dir.path()).unwrap();
    assert_eq!(p.captures[1].to_string(), "d/x1");
    let shown: Vec<String> = p.phases[1].steps.iter().map(|s| s.to_string()).collect();
    assert_eq!(shown[3], "[host] link add vh0 type veth peer name eth0 netns c (netlink)");
    assert_eq!(shown[7], "[host] link set dev x1 netns d (netlink)");
    assert_eq!(shown[13], "[d] tuntap add dev tap0 mode tap (ioctl)");

    let typo = CASE.replace("links = { \"d/x1\"", "links = { \"d/x2\"");
    let e = plan::load(&write(dir.path(), &typo), dir.path()).unwrap_err().to_string();
    assert!(
        e.contains("changes.toml:") && e.contains("no interface \"x2\" in namespace \"d\" (it has lo, tap0, x1)"),
        "{e}"
    );
    let typo = CASE.replace("capture = [\"c/eth0\", \"d/x1\"]", "capture = [\"c/eth0\", \"d/x9\"]");
    let e = plan::load(&write(dir.path(), &typo), dir.path()).unwrap_err();
    assert_eq!(e.line, Some(7), "{e}");
    assert!(e.msg.contains("has no interface \"x9\" at any point of any phase (it has lo, tap0, x1)"), "{e}");
    // A step on a link that is gone at that point, at the step's line.
    let gone = CASE.replace(
        "{ link-set = { ns = \"d\", dev = \"x1\", up = true } },",
        "{ link-set = { ns = \"host\", dev = \"x1\", up = true } },",
    );
    let e = plan::load(&write(dir.path(), &gone), dir.path()).unwrap_err();
    assert!(e.msg.contains("namespace \"host\" has no interface \"x1\" at this point"), "{e}");
    assert_eq!(e.line, Some(gone.lines().position(|l| l.contains("dev = \"x1\", up = true")).unwrap() + 1), "{e}");
}

fn a_link_moved_recreated_and_flapped_within_a_phase_keeps_its_captures() {
    let dir = tempfile::tempdir().unwrap();
    let p = plan::load(&write(dir.path(), CASE), dir.path()).unwrap();
    let (release, version) = Version::running().unwrap();
    let root = tempfile::tempdir().unwrap();
    let (rec, path) = runner::run_case(&p, &release, version, root.path()).unwrap();
    assert!(rec.passed(), "{}", rec.failure_report(&path));
    let fault = rec.phases.iter().find(|ph| ph.name == "fault").unwrap();
    assert!(fault.steps.iter().all(|s| s.ok), "{:?}", fault.steps);
    // The evidence has the links as they were at each probe: in the
    // baseline eth0 has its first MAC and x1 does not exist; in the fault
    // eth0 has the new MAC, x1 is in d, and the veth pairs are drawn.
    let at = |phase: &str, ns: &str, dev: &str| {
        let ph = rec.phases.iter().find(|p| p.name == phase).unwrap();
        let t = ph.probes[0].topology.as_ref().unwrap();
        let n = t.namespaces.iter().find(|n| n.name == ns).unwrap();
        n.ifaces.iter().find(|i| i.name == dev).cloned()
    };
    let before = at("baseline", "c", "eth0").unwrap();
    let after = at("fault", "c", "eth0").unwrap();
    assert_eq!(after.mac.as_deref(), Some("02:00:00:00:19:02"));
    assert_ne!(before.mac, after.mac);
    assert_eq!(after.addresses, ["10.0.0.2/24"]);
    assert!(at("baseline", "d", "x1").is_none());
    let x1 = at("fault", "d", "x1").unwrap();
    assert_eq!((x1.kind.as_str(), x1.up, x1.addresses.clone()), ("veth", Some(true), vec!["10.0.1.2/24".to_string()]));
    assert_eq!(at("fault", "host", "vh0").unwrap().master.as_deref(), Some("br0"));
    let tap = at("fault", "d", "tap0").unwrap();
    assert_eq!((tap.kind.as_str(), tap.mac.as_deref()), ("tun", Some("02:00:00:00:19:09")));
    assert_eq!(tap.addresses, ["10.0.2.1/24"]);
    let veths = &fault.probes[0].topology.as_ref().unwrap().veths;
    assert!(veths.contains(&("d/x1".to_string(), "host/x0".to_string())), "{veths:?}");
    // The report draws each probe's links.
    let html = netrepro::render::report::render(std::slice::from_ref(&rec));
    assert!(html.contains("links at this probe") && html.contains("02:00:00:00:19:02"), "report");
}

fn link_kinds_this_kernel_lacks_are_found_by_a_probe() {
    use netrepro::case::object::LinkKind;
    for k in LinkKind::ALL {
        let has = netrepro::app::preflight::kernel_has(k);
        eprintln!("{}: {has} ({})", k.word(), k.config());
    }
    // Every kernel netrepro runs on has these.
    assert!(netrepro::app::preflight::kernel_has(LinkKind::Veth));
    assert!(netrepro::app::preflight::kernel_has(LinkKind::Macvlan));
}

fn a_kind_this_kernel_lacks_is_a_skip_naming_its_option() {
    use netrepro::case::object::LinkKind;
    let lacking = LinkKind::ALL.into_iter().find(|k| !netrepro::app::preflight::kernel_has(*k));
    let Some(kind) = lacking else {
        eprintln!("this kernel creates every kind: nothing to skip");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let extra = match kind {
        LinkKind::Vlan => ", link = \"eth0\", id = 5",
        LinkKind::Ipvlan | LinkKind::Macvlan => ", link = \"eth0\"",
        LinkKind::Vxlan => ", id = 5",
        _ => "",
    };
    let case = CASE.replacen(
        "name = \"baseline\"\n",
        &format!(
            "name = \"baseline\"\nsteps = [{{ link-add = {{ ns = \"c\", name = \"k0\", kind = \"{}\"{extra} }} }}]\n",
            kind.word()
        ),
        1,
    );
    let p = plan::load(&write(dir.path(), &case), dir.path()).unwrap();
    let why = netrepro::app::preflight::skip_reason(&p).expect("a skip");
    assert!(why.contains(kind.config()) && why.contains(kind.word()), "{why}");
}
