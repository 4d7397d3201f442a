//! The phase pcapng against the evidence and the report, on a real run of
//! `conntrack-invalid-rst` (its stream windows hold 400+ frames per
//! interface, past the old 400-line cap): every recorded frame, and every
//! frame a report timeline draws, has the interface and direction its
//! pcapng frame has; tshark reads the same names, directions and counts.

mod common;

use common::Need;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use netrepro::evidence::record::CaseRecord;
use netrepro::wire::packet::Direction;

const CASE: &str = "conntrack-invalid-rst";

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(conntrack_invalid_rst_frames_agree_with_the_pcapng_report_and_tshark).needs(Need::Namespaces)
    ])
}

fn conntrack_invalid_rst_frames_agree_with_the_pcapng_report_and_tshark() {
    // Before the run: a missing tshark is a failure, not a skip.
    let tshark = netrepro::sys::cmd::which("tshark").expect("no tshark: ci/setup-host installs it for this test");
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netrepro"))
        .args(["run", CASE])
        .env("NETREPRO_ARTIFACTS", root.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let rec: CaseRecord =
        serde_json::from_slice(&std::fs::read(root.path().join(CASE).join("evidence.json")).unwrap()).unwrap();
    assert!(!rec.phases.is_empty());
    evidence_and_report_match_the_pcapng(&rec, root.path());
    tshark_sees_names_directions_and_counts(&rec, root.path(), &tshark);
}

/// (1) Every recorded frame and every frame drawn in the report's timelines
/// has its pcapng frame's interface and `epb_flags` direction.
fn evidence_and_report_match_the_pcapng(rec: &CaseRecord, root: &Path) {
    let html = std::fs::read_to_string(root.join("report.html")).unwrap();
    let mut recorded = 0;
    for ph in &rec.phases {
        let path = ph.pcapng.as_ref().unwrap_or_else(|| panic!("phase {} has no pcapng", ph.name));
        // Relative to the artifacts root, as every path in the evidence.
        assert_eq!(path, &std::path::Path::new(CASE).join(format!("{}.pcapng", ph.name)));
        let path = &root.join(path);
        let pcap = common::read_pcapng(path);
        for p in &ph.probes {
            for (lane, w) in &p.packets {
                assert_eq!(w.truncated, 0, "{} {} {lane}: no window of this case reaches the cap", ph.name, p.name);
                for f in &w.frames {
                    let at = format!("{} {} {lane} frame #{}", ph.name, p.name, f.pcap_frame);
                    let n = f.pcap_frame as usize;
                    assert!(n >= 1 && n <= pcap.len(), "{at}: no such frame in {}", path.display());
                    let g = &pcap[n - 1];
                    assert_eq!((g.iface.as_str(), g.direction), (lane.as_str(), Some(f.direction)), "{at}");
                    assert_eq!((f.iface.as_str(), g.t_ns), (lane.as_str(), f.t_ns), "{at}");
                    recorded += 1;
                }
            }
        }
        // The phase's section of the report: its timelines' frame markers.
        let start = html.find(&format!("id=\"{CASE}-{}\"", ph.name)).unwrap();
        let end = html[start..].find("<details class=\"phase").map(|i| start + i).unwrap_or(html.len());
        let drawn = markers(&html[start..end]);
        assert!(!drawn.is_empty(), "phase {}: no frame drawn in its timelines", ph.name);
        for (n, iface, dir) in &drawn {
            let g = &pcap[*n as usize - 1];
            assert_eq!((g.iface.as_str(), g.direction), (iface.as_str(), Some(*dir)), "{} report frame #{n}", ph.name);
        }
        eprintln!("{}: {} frames drawn, all as the pcapng has them", ph.name, drawn.len());
    }
    assert!(recorded > 4 * 400, "{recorded} frames recorded: the stream windows should hold 400+ per interface");
}

/// `(frame number, iface, direction)` of every frame marker in `html`,
/// checking that its title names the number.
fn markers(html: &str) -> Vec<(u32, String, Direction)> {
    let mut out = Vec::new();
    for m in html.split("<polygon class=\"frame\" ").skip(1) {
        let attr = |k: &str| {
            let i = m.find(&format!("{k}=\"")).unwrap() + k.len() + 2;
            m[i..i + m[i..].find('"').unwrap()].to_string()
        };
        let n: u32 = attr("data-frame").parse().unwrap();
        let dir = match attr("data-dir").as_str() {
            "in" => Direction::In,
            "out" => Direction::Out,
            d => panic!("frame #{n}: direction {d:?}"),
        };
        let title = &m[m.find("<title>").unwrap()..m.find("</title>").unwrap()];
        assert!(title.starts_with(&format!("<title>#{n} ")), "frame #{n}: title {title}");
        out.push((n, attr("data-iface"), dir));
    }
    out
}

/// (2) tshark reads every frame's interface name (`ns/dev`) and direction,
/// and counts per interface and probe window what the evidence recorded.
fn tshark_sees_names_directions_and_counts(rec: &CaseRecord, root: &Path, tshark: &Path) {
    for ph in &rec.phases {
        let path = &root.join(ph.pcapng.as_ref().unwrap());
        let out = Command::new(tshark)
            .arg("-r")
            .arg(path)
            .args(["-T", "fields", "-e", "frame.interface_name", "-e", "frame.packet_flags_direction"])
            .args(["-e", "frame.time_epoch"])
            .output()
            .unwrap();
        assert!(out.status.success(), "tshark -r {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        if ph.name == "fault" {
            eprintln!(
                "tshark -r {} (first lines):\n{}",
                path.display(),
                text.lines().take(6).collect::<Vec<_>>().join("\n")
            );
        }
        let lanes: Vec<&String> = ph.probes[0].packets.keys().collect();
        let mut frames = Vec::new();
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            assert_eq!(f.len(), 3, "{line:?}");
            assert!(lanes.iter().any(|l| *l == f[0]), "{}: interface {:?} is not a captured ns/dev", ph.name, f[0]);
            let dir = match parse_int(f[1]) {
                1 => Direction::In,
                2 => Direction::Out,
                d => panic!("{}: frame without an in/out direction ({d}): {line:?}", ph.name),
            };
            frames.push((f[0].to_string(), dir, epoch_ns(f[2])));
        }
        assert_eq!(frames.len(), common::read_pcapng(path).len(), "{}: tshark saw every frame", ph.name);
        for p in &ph.probes {
            let (w0, w1) = p.window_ns;
            let mut counted: BTreeMap<&str, u64> = lanes.iter().map(|l| (l.as_str(), 0)).collect();
            for (iface, _, t) in &frames {
                if (w0..=w1).contains(t) {
                    *counted.get_mut(iface.as_str()).unwrap() += 1;
                }
            }
            let recorded: BTreeMap<&str, u64> = p.packets.iter().map(|(l, w)| (l.as_str(), w.total())).collect();
            assert_eq!(
                counted, recorded,
                "{} {}: frames per interface in the window, tshark vs evidence",
                ph.name, p.name
            );
        }
    }
}

/// tshark prints flags in hex (`0x00000002`) or decimal, by version.
fn parse_int(s: &str) -> u32 {
    match s.strip_prefix("0x") {
        Some(h) => u32::from_str_radix(h, 16).unwrap(),
        None => s.parse().unwrap_or_else(|_| panic!("not a number: {s:?}")),
    }
}

/// `1796000515.670000732` → ns, exactly (an f64 would round).
fn epoch_ns(s: &str) -> u64 {
    let (sec, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<9}");
    sec.parse::<u64>().unwrap() * 1_000_000_000 + frac[..9].parse::<u64>().unwrap()
}
