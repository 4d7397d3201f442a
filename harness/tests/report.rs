//! The report as a person sees it: `netrepro run` writes `report.html`, and
//! headless Chromium renders the HTB fault's timeline with the ARP requests
//! on both interfaces, the kernel's drops where they happened and no reply.

mod common;

use common::Need;

use std::path::Path;
use std::process::Command;

use netrepro::evidence::record::CaseRecord;

fn main() -> std::process::ExitCode {
    common::run(vec![common::test!(htb_fault_timeline_in_headless_chromium).needs(Need::Namespaces)])
}

/// `$NETREPRO_BROWSER`, else Debian's chromium or Google Chrome.
fn browser() -> Option<std::path::PathBuf> {
    if let Some(b) = std::env::var_os("NETREPRO_BROWSER") {
        return Some(b.into());
    }
    ["/usr/bin/chromium", "/usr/bin/google-chrome", "/usr/bin/chromium-browser"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
}

/// Pixels of exactly `rgb` as (x, y).
fn pixels(png_path: &Path, rgb: [u8; 3]) -> Vec<(u32, u32)> {
    let file = std::io::BufReader::new(std::fs::File::open(png_path).unwrap());
    let mut reader = png::Decoder::new(file).read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let bpp = info.line_size / info.width as usize;
    let mut out = Vec::new();
    for y in 0..info.height {
        for x in 0..info.width {
            let i = y as usize * info.line_size + x as usize * bpp;
            if buf[i..i + 3] == rgb {
                out.push((x, y));
            }
        }
    }
    out
}

/// Groups sorted values into runs whose members are at most `gap` apart.
fn clusters(mut v: Vec<u32>, gap: u32) -> Vec<(u32, u32)> {
    v.sort();
    v.dedup();
    let mut out: Vec<(u32, u32)> = Vec::new();
    for x in v {
        match out.last_mut() {
            Some(last) if x <= last.1 + gap => last.1 = x,
            _ => out.push((x, x)),
        }
    }
    out
}

fn rgb(hex: &str) -> [u8; 3] {
    let v = u32::from_str_radix(hex.trim_start_matches('#'), 16).unwrap();
    [(v >> 16) as u8, (v >> 8) as u8, v as u8]
}

fn htb_fault_timeline_in_headless_chromium() {
    let chromium = browser().expect("no chromium: ci/setup-host installs Debian's chromium for this test");
    let root = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netrepro"))
        .args(["run", "htb-direct-qlen"])
        .env("NETREPRO_ARTIFACTS", root.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let report = root.path().join("report.html");
    assert!(stdout.contains(&format!("report: {}", report.display())), "{stdout}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains("<script") && !html.contains("<link"), "self-contained: no scripts, no linked files");

    // A page of the fault phase alone, so the screenshot holds its timelines.
    let mut rec: CaseRecord =
        serde_json::from_slice(&std::fs::read(root.path().join("htb-direct-qlen/evidence.json")).unwrap()).unwrap();
    rec.phases.retain(|p| p.name == "fault");
    assert_eq!(rec.phases.len(), 1);
    let page = netrepro::render::report::render(&[rec.clone()]);
    let ping = &rec.phases[0].probes.iter().find(|p| p.name == "ping").unwrap();
    assert!(page.contains("ARP request who-has 172.17.0.1 tell 172.17.0.2"), "timeline titles name the requests");
    assert!(!page.contains(": ARP reply"), "no reply frame may appear in the fault timeline");
    let has_reasons = ping.drops.iter().any(|d| !d.reason.is_empty());
    if has_reasons {
        assert!(page.contains("3 × ARP QDISC_DROP"), "the drop is labelled on its lane");
    }
    let fault_html = root.path().join("fault.html");
    std::fs::write(&fault_html, page).unwrap();

    let shot = root.path().join("fault.png");
    let profile = root.path().join("chromium-profile");
    let st = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1200,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", fault_html.display()))
        .output()
        .unwrap();
    assert!(shot.exists(), "chromium wrote no screenshot: {}", String::from_utf8_lossy(&st.stderr));
    let keep = std::env::var_os("NETREPRO_KEEP_SCREENSHOT").map(std::path::PathBuf::from);
    if let Some(k) = &keep {
        std::fs::copy(&shot, k).unwrap();
    }

    // ARP-request markers: the timelines of both probes (ping, connect) have
    // two lanes (container/eth0 out, host/docker0 in) of three requests each.
    let blue = pixels(&shot, rgb("#1f6feb"));
    let bands = clusters(blue.iter().map(|p| p.1).collect(), 3);
    let lanes_with_three: Vec<&(u32, u32)> = bands
        .iter()
        .filter(|(y0, y1)| {
            let xs: Vec<u32> = blue.iter().filter(|p| p.1 >= *y0 && p.1 <= *y1).map(|p| p.0).collect();
            clusters(xs, 2).len() >= 3
        })
        .collect();
    let per_band: Vec<(u32, usize)> = bands
        .iter()
        .map(|(y0, y1)| {
            let xs: Vec<u32> = blue.iter().filter(|p| p.1 >= *y0 && p.1 <= *y1).map(|p| p.0).collect();
            (*y0, clusters(xs, 2).len())
        })
        .collect();
    assert!(
        lanes_with_three.len() >= 4,
        "expected >= 4 timeline lanes with 3 ARP requests each; (row, markers) seen: {per_band:?}"
    );
    // Kernel drops drawn on a lane that carries ARP requests (docker0).
    let red = pixels(&shot, rgb("#e5132e"));
    let on_lane = red.iter().any(|(_, y)| lanes_with_three.iter().any(|(y0, y1)| *y + 8 >= *y0 && *y <= *y1 + 8));
    assert!(on_lane, "no drop marker on an ARP lane (red pixels: {})", red.len());
    // And no ARP reply anywhere on the page.
    assert!(pixels(&shot, rgb("#1a7f37")).is_empty(), "an ARP-reply marker is drawn in the fault phase");
}
