//! The report as a person sees it: `netrepro run` writes `report.html`, and
//! headless Chromium renders the HTB fault's timeline with the ARP requests
//! on both interfaces, the kernel's drops where they happened and no reply;
//! a failing run's page leads with its failures, folds what passed, has a
//! time axis with labels, and draws two frames 10 µs apart as two.

mod common;

use common::Need;

use std::path::Path;
use std::process::Command;

use netrepro::evidence::record::CaseRecord;

fn main() -> std::process::ExitCode {
    common::run(vec![
        common::test!(htb_fault_timeline_in_headless_chromium).needs(Need::Namespaces),
        common::test!(a_failing_runs_page_leads_with_its_failure_in_headless_chromium).needs(Need::Namespaces),
    ])
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

/// Chromium's screenshot of `page` (a file), at `size` ("w,h"), beside it.
fn screenshot(chromium: &Path, page: &Path, size: &str) -> std::path::PathBuf {
    let shot = page.with_extension("png");
    let profile = page.with_extension("chromium-profile");
    let st = Command::new(chromium)
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
        ])
        .arg(format!("--window-size={size}"))
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap();
    assert!(shot.exists(), "chromium wrote no screenshot: {}", String::from_utf8_lossy(&st.stderr));
    shot
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
    // The fault phase passed, so the page folds it: open it to look.
    let page = netrepro::render::report::render_open(&[rec.clone()]);
    let ping = &rec.phases[0].probes.iter().find(|p| p.name == "ping").unwrap();
    assert!(page.contains("ARP request who-has 172.17.0.1 tell 172.17.0.2"), "timeline titles name the requests");
    assert!(!page.contains("data-kind=\"ARP reply\""), "no reply frame may appear in the fault timeline");
    let has_reasons = ping.drops.iter().any(|d| !d.reason.is_empty());
    if has_reasons {
        assert!(page.contains("3 × ARP QDISC_DROP"), "the drop is labelled on its lane");
    }
    let fault_html = root.path().join("fault.html");
    std::fs::write(&fault_html, page).unwrap();

    let shot = screenshot(&chromium, &fault_html, "1200,4000");
    if let Some(k) = std::env::var_os("NETREPRO_KEEP_SCREENSHOT") {
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

/// `forwarding-off` with its fault connect expecting ECONNREFUSED (it times
/// out): a run with one failing check.
fn a_failing_runs_page_leads_with_its_failure_in_headless_chromium() {
    let chromium = browser().expect("no chromium: ci/setup-host installs Debian's chromium for this test");
    let cases = tempfile::tempdir().unwrap();
    let root = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(netrepro::app::suite::cases_dir().join("forwarding-off.toml")).unwrap();
    let broken = text.replacen("result = \"timeout\"", "result = \"ECONNREFUSED\"", 1);
    assert_ne!(text, broken);
    std::fs::write(cases.path().join("forwarding-off.toml"), broken).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netrepro"))
        .args(["run", "forwarding-off"])
        .env("NETREPRO_ARTIFACTS", root.path())
        .env("NETREPRO_CASES", cases.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success() && stdout.contains("FAIL forwarding-off"), "{stdout}");
    let report = root.path().join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(!html.contains("<script") && !html.contains("<link"), "self-contained: no scripts, no linked files");

    // The failures index comes first, and its one link lands on the failing
    // check's row.
    let after_h1 = &html[html.find("</h1>").expect("a title") + 5..];
    assert!(
        after_h1.starts_with("<nav class=\"failures\" id=\"failures\"><h2>1 failing check</h2>"),
        "{after_h1:.300}"
    );
    let href = after_h1.split("<a href=\"#").nth(1).and_then(|r| r.split('"').next()).expect("a link in the index");
    let rec: CaseRecord =
        serde_json::from_slice(&std::fs::read(root.path().join("forwarding-off/evidence.json")).unwrap()).unwrap();
    let fault = rec.phases.iter().find(|p| p.name == "fault").unwrap();
    let (probe, i) = fault
        .probes
        .iter()
        .find_map(|p| p.checks.iter().position(|c| !c.ok).map(|i| (p, i)))
        .expect("the failing check");
    assert_eq!(probe.checks[i].what, "result");
    assert_eq!(href, netrepro::render::report::check_anchor("forwarding-off", "fault", &probe.name, i));
    assert!(html.contains(&format!("<tr id=\"{href}\" class=\"failed\">")), "the anchor is the failing row");
    // The passing baseline folded, the failing fault open.
    assert!(
        html.contains("<details class=\"phase passed\" id=\"forwarding-off-baseline\"><summary>"),
        "baseline collapsed"
    );
    assert!(html.contains("<details class=\"phase failed\" id=\"forwarding-off-fault\" open><summary>"));
    // A time axis with labels at round values.
    let ticks: Vec<&str> =
        html.split("<text class=\"tick\"").skip(1).filter_map(|t| t.split('>').nth(1)?.split('<').next()).collect();
    assert!(ticks.len() >= 4 && ticks[0] == "0 ms", "tick labels: {ticks:?}");
    assert!(ticks.iter().all(|t| t.ends_with(" ms") || t.ends_with(" µs") || t.ends_with(" s")), "{ticks:?}");

    // As Chromium draws it: the red index box at the very top, tick lines.
    let shot = screenshot(&chromium, &report, "1200,3000");
    if let Some(k) = std::env::var_os("NETREPRO_KEEP_SCREENSHOT_FAILING") {
        std::fs::copy(&shot, k).unwrap();
    }
    let index = pixels(&shot, rgb("#ffebe9"));
    assert!(!index.is_empty(), "no failures index drawn");
    let index_top = index.iter().map(|p| p.1).min().unwrap();
    assert!(index_top < 120, "the failures index is not at the top of the page (y = {index_top})");
    let tick_columns = clusters(pixels(&shot, rgb("#eaeef2")).into_iter().map(|p| p.0).collect(), 1);
    assert!(tick_columns.len() >= 4, "tick lines drawn: {tick_columns:?}");

    // Two echo requests 10 µs apart, and a reply 10 µs later, on a 100 ms
    // axis: three markers, not one blob.
    let mut synthetic = rec.clone();
    synthetic.phases.retain(|p| p.name == "fault");
    let p = &mut synthetic.phases[0].probes[0];
    let lane = p.packets.keys().next().unwrap().clone();
    let w = p.packets.get_mut(&lane).unwrap();
    let echo = w.frames.iter().find(|f| f.kind() == netrepro::wire::kind::FrameKind::EchoRequest).unwrap().clone();
    let reply_kind = netrepro::wire::kind::FrameKind::EchoReply;
    let t = p.window_ns.0 + 50_000_000;
    let mut second = echo.clone();
    let mut reply = echo.clone();
    reply.headers.icmp = reply.headers.icmp.map(|mut i| {
        i.kind = 0;
        i
    });
    assert_eq!(reply.kind(), reply_kind);
    let (mut first, n) = (echo, 1000);
    first.t_ns = t;
    first.pcap_frame = n;
    second.t_ns = t + 10_000;
    second.pcap_frame = n + 1;
    reply.t_ns = t + 20_000;
    reply.pcap_frame = n + 2;
    w.frames = vec![first, second, reply];
    p.window_ns.1 = p.window_ns.0 + 100_000_000;
    p.packets.retain(|l, _| *l == lane);
    p.drops.clear();
    let page = netrepro::render::report::render_open(&[synthetic]);
    let close = root.path().join("close.html");
    std::fs::write(&close, page).unwrap();
    let shot = screenshot(&chromium, &close, "1200,1600");
    if let Some(k) = std::env::var_os("NETREPRO_KEEP_SCREENSHOT_CLOSE") {
        std::fs::copy(&shot, k).unwrap();
    }
    let purple = pixels(&shot, rgb("#8250df"));
    let teal = pixels(&shot, rgb("#0a8f8f"));
    // The lane's band: the rows where the reply's marker is (the legend's
    // glyph is in a band of its own).
    let band = clusters(teal.iter().map(|p| p.1).collect(), 3)
        .into_iter()
        .find(|(y0, y1)| purple.iter().any(|p| p.1 >= *y0 && p.1 <= *y1))
        .expect("the requests and the reply on one lane");
    let in_band =
        |px: &[(u32, u32)]| clusters(px.iter().filter(|p| p.1 >= band.0 && p.1 <= band.1).map(|p| p.0).collect(), 1);
    let (requests, replies) = (in_band(&purple), in_band(&teal));
    assert_eq!(requests.len(), 2, "two requests 10 µs apart are two markers: {requests:?}");
    assert_eq!(replies.len(), 1, "{replies:?}");
    assert!(replies[0].0 > requests[1].1, "the reply after both requests: {requests:?} {replies:?}");
}
