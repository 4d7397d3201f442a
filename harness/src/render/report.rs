//! `report.html`: one self-contained page per run (inline CSS and SVG, no
//! script, no fetch) built from the evidence and the pcaps alone, so it can
//! be rebuilt anywhere the artifacts directory is copied to. Per case and
//! phase: the topology, a packet timeline across interfaces with the
//! kernel's drops marked, the why-line, expected vs observed, counters that
//! moved, drop reasons and links to the pcaps.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::evidence::record::{CaseRecord, PhaseRecord, ProbeRecord};
use crate::evidence::topo::TopoView;

/// Every `<root>/<case>/evidence.json`, by case id.
pub fn collect(root: &Path) -> Vec<CaseRecord> {
    let mut out: Vec<CaseRecord> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| std::fs::read(e.path().join("evidence.json")).ok())
        .filter_map(|b| serde_json::from_slice(&b).ok())
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

/// Rebuilds `<root>/report.html` from every case's evidence there. Two runs
/// at once take turns, and readers never see half a file.
pub fn write(root: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(root)?;
    let _lock = crate::evidence::record::lock_case(root, "report")?;
    let cases = collect(root);
    let html = render(&cases, root);
    let path = root.join("report.html");
    let tmp = root.join(".report.html.tmp");
    std::fs::write(&tmp, html).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path)?;
    Ok(path)
}

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

pub const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1200px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-top:2px solid #d8dde6;padding-top:12px}\
h3{font-size:15px;margin:18px 0 6px}table{border-collapse:collapse;margin:6px 0}\
td,th{border:1px solid #d8dde6;padding:2px 8px;text-align:left;vertical-align:top;font-size:13px}\
th{background:#f1f3f7}.pass{color:#116329;font-weight:600}.fail{color:#cf222e;font-weight:600}\
.na{color:#8a6d00}.why{background:#fff8e6;border-left:4px solid #e0a100;padding:6px 10px;margin:6px 0}\
.note{color:#57606a}code,.mono{font-family:ui-monospace,monospace;font-size:12px}\
.phase{margin-left:8px;padding-left:12px;border-left:3px solid #d8dde6}\
.phase.failed{border-left-color:#cf222e}details{margin:4px 0}svg{display:block;margin:6px 0}";

/// Colours per packet kind, shared by the markers and the legend.
fn colour(summary: &str) -> &'static str {
    match () {
        _ if summary.starts_with("ARP request") => "#1f6feb",
        _ if summary.starts_with("ARP reply") => "#1a7f37",
        _ if summary.contains("echo-request") => "#8250df",
        _ if summary.contains("echo-reply") => "#0a8f8f",
        _ if summary.contains("ICMP") => "#d4731c",
        _ if summary.contains("TCP [R") => "#9a3412",
        _ if summary.contains("TCP [S]") => "#0b3d91",
        _ if summary.contains("TCP [S.]") => "#2f9e44",
        _ if summary.contains("TCP") => PLAIN_TCP,
        _ => "#afb8c1",
    }
}
const DROP_COLOUR: &str = "#e5132e";

fn legend_name(summary: &str) -> &'static str {
    match colour(summary) {
        "#1f6feb" => "ARP request",
        "#1a7f37" => "ARP reply",
        "#8250df" => "ICMP echo-request",
        "#0a8f8f" => "ICMP echo-reply",
        "#d4731c" => "ICMP error",
        "#9a3412" => "TCP RST",
        "#0b3d91" => "TCP SYN",
        "#2f9e44" => "TCP SYN-ACK",
        PLAIN_TCP => "TCP",
        _ => "other",
    }
}
const PLAIN_TCP: &str = "#6e7781";

pub fn render(cases: &[CaseRecord], root: &Path) -> String {
    let mut h = String::new();
    let passed = cases.iter().filter(|c| c.passed()).count();
    let kernels: std::collections::BTreeSet<&str> = cases.iter().map(|c| c.kernel_release.as_str()).collect();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>netrepro report</title><style>{STYLE}</style></head><body>\
         <h1>netrepro: {passed} of {} cases passed</h1><p class=\"note\">kernel {}; drop monitor: {}</p>",
        cases.len(),
        esc(&kernels.into_iter().collect::<Vec<_>>().join(", ")),
        esc(cases.iter().map(|c| c.drop_monitor.as_str()).find(|d| !d.is_empty()).unwrap_or("not recorded")),
    );
    h += "<table><tr><th>case</th><th>verdict</th><th>phases</th><th>run at (UTC)</th><th>ms</th></tr>";
    for c in cases {
        let phases: Vec<String> = c
            .phases
            .iter()
            .map(|p| format!("<span class=\"{}\">{}</span>", if p.passed { "pass" } else { "fail" }, esc(&p.name)))
            .collect();
        let _ = write!(
            h,
            "<tr><td><a href=\"#{id}\">{id}</a></td><td class=\"{v}\">{v}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
            phases.join(" "),
            utc(c.started_unix_ms),
            c.duration_ms,
            id = esc(&c.id),
            v = esc(&c.verdict),
        );
    }
    h += "</table>";
    for c in cases {
        case_html(&mut h, c, root);
    }
    h += "</body></html>\n";
    h
}

fn utc(ms: u64) -> String {
    let s = ms / 1000;
    let (days, rem) = (s / 86400, s % 86400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y}-{m:02}-{d:02} {:02}:{:02}:{:02}", rem / 3600, rem % 3600 / 60, rem % 60)
}

fn case_html(h: &mut String, c: &CaseRecord, root: &Path) {
    let _ = write!(
        h,
        "<h2 id=\"{}\">{} <span class=\"{v}\">{v}</span></h2><p>{}</p><p class=\"note\">kernel {} · fixture {} · case file <code>{}</code>",
        esc(&c.id),
        esc(&c.id),
        esc(&c.title),
        esc(&c.kernel_release),
        esc(&c.fixture),
        esc(&c.case_file.display().to_string()),
        v = esc(&c.verdict),
    );
    for u in &c.urls {
        let _ = write!(h, " · <a href=\"{0}\">{0}</a>", esc(u));
    }
    h.push_str("</p>");
    h.push_str(&topology_svg(&c.topology));
    for ph in &c.phases {
        phase_html(h, c, ph, root);
    }
}

fn phase_html(h: &mut String, c: &CaseRecord, ph: &PhaseRecord, root: &Path) {
    let gate = ph.kernel_range.as_ref().map(|r| format!(" (kernel {})", esc(r))).unwrap_or_default();
    let _ = write!(
        h,
        "<div class=\"phase{}\" id=\"{}-{}\"><h3>phase {}{gate} <span class=\"{v}\">{v}</span></h3>",
        if ph.passed { "" } else { " failed" },
        esc(&c.id),
        esc(&ph.name),
        esc(&ph.name),
        v = if ph.passed { "pass" } else { "fail" },
    );
    if let Some(n) = &ph.note {
        let _ = write!(h, "<p class=\"note\">{}</p>", esc(n));
    }
    if let Some(u) = &ph.upstream {
        let _ = write!(h, "<p class=\"note\">upstream: {}</p>", esc(u));
    }
    if let Some(e) = &ph.error {
        let _ = write!(h, "<p class=\"why fail\">harness error: {}</p>", esc(e));
    }
    if !ph.steps.is_empty() {
        h.push_str("<p class=\"mono\">");
        for s in &ph.steps {
            let _ = write!(h, "{} {}<br>", if s.origin == "replayed" { "↻" } else { "▸" }, esc(&s.step));
        }
        h.push_str("</p>");
    }
    for p in &ph.probes {
        probe_html(h, c, ph, p, root);
    }
    let links: Vec<String> = ph
        .pcaps
        .iter()
        .filter_map(|p| p.file_name())
        .map(|f| {
            let rel = format!("{}/{}/{}", c.id, ph.name, f.to_string_lossy());
            format!("<a href=\"{0}\">{0}</a>", esc(&rel))
        })
        .collect();
    if !links.is_empty() {
        let _ = write!(h, "<p class=\"note\">pcaps: {}</p>", links.join(" · "));
    }
    h.push_str("</div>");
}

fn probe_html(h: &mut String, c: &CaseRecord, ph: &PhaseRecord, p: &ProbeRecord, root: &Path) {
    let _ =
        write!(h, "<h3>probe {} <span class=\"note mono\">{}</span></h3>", esc(&p.name), esc(&p.outcome.to_string()));
    if let Some(w) = &p.why {
        let _ = write!(h, "<div class=\"why\"><b>why:</b> {}</div>", esc(w));
    }
    let frames = timeline_frames(c, ph, p, root);
    h.push_str(&timeline_svg(p, &frames));
    h.push_str("<table><tr><th>expectation</th><th>expected</th><th>observed</th><th></th></tr>");
    for k in &p.checks {
        let (cls, word) = match (k.unavailable, k.ok) {
            (true, _) => ("na", "n/a"),
            (_, true) => ("pass", "ok"),
            _ => ("fail", "FAIL"),
        };
        let _ = write!(
            h,
            "<tr><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{word}</td></tr>",
            esc(&k.what),
            esc(&k.expected),
            esc(&k.observed)
        );
    }
    h.push_str("</table>");
    if !p.drops.is_empty() {
        h.push_str("<table><tr><th>kernel drops</th><th>device</th><th>reason</th><th>where</th><th>protocol</th><th>count</th></tr>");
        for d in &p.drops {
            let _ = write!(
                h,
                "<tr><td>{}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td></tr>",
                esc(&d.ns),
                esc(&d.dev),
                esc(if d.reason.is_empty() { "(not reported)" } else { &d.reason }),
                esc(&d.at),
                esc(&d.protocol),
                d.count
            );
        }
        h.push_str("</table>");
    }
    let moved: Vec<String> = p
        .counter_deltas
        .iter()
        .flat_map(|(ns, d)| d.iter().filter(|(_, v)| **v != 0).map(move |(k, v)| format!("{ns} {k} {v:+}")))
        .collect();
    if !moved.is_empty() {
        let _ = write!(
            h,
            "<details><summary>{} counters moved</summary><p class=\"mono\">{}</p></details>",
            moved.len(),
            moved.iter().map(|m| esc(m)).collect::<Vec<_>>().join("<br>")
        );
    }
}

/// One frame of the timeline.
pub struct TFrame {
    pub lane: String,
    pub t_ms: f64,
    pub dir: String,
    pub summary: String,
}

/// Frames of the probe's window, read from the phase's pcaps (the direction
/// comes from the evidence, which saw the same frames in the same order).
fn timeline_frames(c: &CaseRecord, ph: &PhaseRecord, p: &ProbeRecord, root: &Path) -> Vec<TFrame> {
    let (w0, w1) = p.window_ns;
    let mut out = Vec::new();
    for (lane, lines) in &p.packets {
        let Some((ns, dev)) = lane.split_once('/') else { continue };
        let file = root.join(&c.id).join(&ph.name).join(format!("{ns}-{dev}.pcap"));
        let Ok(data) = std::fs::read(&file) else { continue };
        let Ok(mut r) = pcap_file::pcap::PcapReader::new(&data[..]) else { continue };
        let mut i = 0;
        while let Some(Ok(pk)) = r.next_packet() {
            let ts = pk.timestamp.as_nanos() as u64;
            if ts < w0 || ts > w1 {
                continue;
            }
            let dir = lines.get(i).and_then(|l| l.split_once("ms ")).map(|(_, r)| r.get(..3).unwrap_or("").trim());
            out.push(TFrame {
                lane: lane.clone(),
                t_ms: (ts - w0) as f64 / 1e6,
                dir: dir.unwrap_or("").to_string(),
                summary: crate::wire::headers::Headers::parse(crate::wire::linktype::LinkType::Ethernet, &pk.data)
                    .summary(pk.data.len()),
            });
            i += 1;
        }
    }
    out.sort_by(|a, b| a.t_ms.total_cmp(&b.t_ms));
    out
}

/// Lanes = captured interfaces (plus any interface the kernel dropped on),
/// x = time in the probe's window; drops as red crosses where they happened.
pub fn timeline_svg(p: &ProbeRecord, frames: &[TFrame]) -> String {
    let (w0, w1) = p.window_ns;
    let window_ms = ((w1.saturating_sub(w0)) as f64 / 1e6).max(1.0);
    // A probe often waits long after its last frame (a stalled transfer, a
    // timeout): the axis ends shortly after the last thing seen, and says so.
    let last_ms = frames
        .iter()
        .map(|f| f.t_ms)
        .chain(p.drops.iter().map(|d| (d.last_ns.saturating_sub(w0)) as f64 / 1e6))
        .fold(0.0f64, f64::max);
    let span_ms = if last_ms > 0.0 && last_ms * 1.1 < window_ms { (last_ms * 1.1).max(1.0) } else { window_ms };
    let mut lanes: Vec<String> = p.packets.keys().cloned().collect();
    let drop_lane = |d: &crate::sys::drops::Drop| format!("{}/{}", d.ns, d.dev);
    // Drops on a device, where a packet was lost on its way; socket-level
    // frees (no device) and loopback stay in the table below.
    let drops: Vec<&crate::sys::drops::Drop> = p.drops.iter().filter(|d| !d.dev.is_empty() && d.dev != "lo").collect();
    for d in &drops {
        let l = drop_lane(d);
        if !lanes.contains(&l) {
            lanes.push(l);
        }
    }
    if lanes.is_empty() {
        return String::new();
    }
    let (left, width, lane_h, top) = (170.0, 760.0, 30.0, 22.0);
    let height = top + lane_h * lanes.len() as f64 + 30.0;
    let x = |t_ms: f64| left + (t_ms.clamp(0.0, span_ms) / span_ms) * width;
    let y = |lane: &str| top + lane_h * lanes.iter().position(|l| l == lane).unwrap_or(0) as f64 + lane_h / 2.0;
    let mut s = format!(
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"packet timeline of probe {}\">",
        left + width + 220.0,
        esc(&p.name)
    );
    let end_label = if span_ms < window_ms {
        format!("{span_ms:.1} ms (then nothing until the probe ended at {window_ms:.0} ms)")
    } else {
        format!("{span_ms:.0} ms")
    };
    let _ = write!(s, "<text x=\"{left}\" y=\"14\" font-size=\"11\" fill=\"#57606a\">0 ms</text><text x=\"{:.0}\" y=\"14\" font-size=\"11\" fill=\"#57606a\" text-anchor=\"end\">{}</text>", left + width, esc(&end_label));
    for l in &lanes {
        let yy = y(l);
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.0}\" font-size=\"12\" font-family=\"monospace\">{}</text><line x1=\"{left}\" x2=\"{:.0}\" y1=\"{yy:.0}\" y2=\"{yy:.0}\" stroke=\"#d0d7de\"/>",
            yy + 4.0,
            esc(l),
            left + width
        );
    }
    // A stream's thousands of data segments would bury the frames that
    // matter: past 300 on a lane, plain TCP segments are sampled.
    let mut per_lane: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for f in frames {
        let e = per_lane.entry(f.lane.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(colour(&f.summary) == PLAIN_TCP);
    }
    let mut nth: BTreeMap<&str, usize> = BTreeMap::new();
    for f in frames {
        if colour(&f.summary) == PLAIN_TCP {
            let (all, plain) = per_lane[f.lane.as_str()];
            let n = nth.entry(f.lane.as_str()).or_default();
            *n += 1;
            if all > 300 && *n % plain.div_ceil(150).max(1) != 0 {
                continue;
            }
        }
        let (cx, cy) = (x(f.t_ms), y(&f.lane));
        let c = colour(&f.summary);
        // Outgoing frames point right, incoming left.
        let pts = if f.dir == "in" {
            format!("{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", cx - 6.0, cy, cx + 4.0, cy - 7.0, cx + 4.0, cy + 7.0)
        } else {
            format!("{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", cx + 6.0, cy, cx - 4.0, cy - 7.0, cx - 4.0, cy + 7.0)
        };
        let _ = write!(
            s,
            "<polygon class=\"frame\" points=\"{pts}\" fill=\"{c}\"><title>+{:.3} ms {} {}: {}</title></polygon>",
            f.t_ms,
            esc(&f.lane),
            esc(&f.dir),
            esc(&f.summary)
        );
    }
    for d in drops {
        let l = drop_lane(d);
        // Just above the lane's line: a drop often happens the instant a
        // frame is seen there, and must not hide that frame's marker.
        let cy = y(&l) - 9.0;
        let label = if d.reason.is_empty() { d.at.clone() } else { d.reason.clone() };
        for t in [d.first_ns, d.last_ns] {
            let cx = x((t.saturating_sub(w0)) as f64 / 1e6);
            let _ = write!(
                s,
                "<g class=\"drop\" stroke=\"{DROP_COLOUR}\" stroke-width=\"2.5\"><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><title>{} × {} dropped: {} in {}</title></g>",
                cx - 4.0, cy - 4.0, cx + 4.0, cy + 4.0, cx - 4.0, cy + 4.0, cx + 4.0, cy - 4.0,
                d.count, esc(&d.protocol), esc(&label), esc(&d.at)
            );
            if d.first_ns == d.last_ns {
                break;
            }
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{DROP_COLOUR}\">{} × {} {}</text>",
            x((d.last_ns.saturating_sub(w0)) as f64 / 1e6) + 9.0,
            cy - 1.0,
            d.count,
            esc(&d.protocol),
            esc(&label)
        );
    }
    s += "</svg>";
    let mut kinds: Vec<(&str, &str)> = Vec::new();
    for f in frames {
        let k = legend_name(&f.summary);
        if !kinds.iter().any(|(n, _)| *n == k) {
            kinds.push((k, colour(&f.summary)));
        }
    }
    if !kinds.is_empty() || !p.drops.is_empty() {
        s += "<p class=\"note legend\">";
        for (k, c) in kinds {
            let _ = write!(s, "<span style=\"color:{c}\">▶</span> {k} &nbsp; ");
        }
        let _ = write!(s, "<span style=\"color:{DROP_COLOUR}\">✕</span> kernel drop &nbsp; (▶ out, ◀ in)</p>");
    }
    // The same frames as a table: which interface saw which packet, in order.
    if !frames.is_empty() {
        let _ = write!(s, "<details><summary>{} frames in time order</summary><table class=\"mono\"><tr><th>ms</th><th>interface</th><th></th><th>frame</th></tr>", frames.len());
        for f in frames.iter().take(300) {
            let _ = write!(
                s,
                "<tr><td>{:.3}</td><td>{}</td><td>{}</td><td><span style=\"color:{}\">■</span> {}</td></tr>",
                f.t_ms,
                esc(&f.lane),
                esc(&f.dir),
                colour(&f.summary),
                esc(&f.summary)
            );
        }
        s += "</table></details>";
    }
    s
}

/// Namespaces as boxes, their interfaces inside, veth pairs as lines
/// between them and bridge ports as lines to their bridge.
pub fn topology_svg(t: &TopoView) -> String {
    if t.namespaces.is_empty() {
        return String::new();
    }
    let (col_w, gap, if_h, head) = (210.0, 50.0, 46.0, 26.0);
    let rows = t.namespaces.iter().map(|n| n.ifaces.len()).max().unwrap_or(1).max(1) as f64;
    let height = head + rows * if_h + 20.0;
    let width = t.namespaces.len() as f64 * (col_w + gap);
    let mut pos: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut s = format!("<svg class=\"topology\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"topology\">");
    let mut boxes = String::new();
    for (i, n) in t.namespaces.iter().enumerate() {
        let x0 = 10.0 + i as f64 * (col_w + gap);
        let _ = write!(
            boxes,
            "<rect x=\"{x0}\" y=\"4\" width=\"{col_w}\" height=\"{:.0}\" rx=\"10\" fill=\"#f6f8fa\" stroke=\"#8c959f\"/><text x=\"{:.0}\" y=\"21\" font-size=\"13\" font-weight=\"600\">netns {}</text>",
            height - 10.0,
            x0 + 10.0,
            esc(&n.name)
        );
        for (j, f) in n.ifaces.iter().enumerate() {
            let y0 = head + j as f64 * if_h;
            let fill = if f.kind == "bridge" { "#ddf4ff" } else { "#fff" };
            let _ = write!(
                boxes,
                "<rect x=\"{:.0}\" y=\"{y0:.0}\" width=\"{:.0}\" height=\"{:.0}\" rx=\"5\" fill=\"{fill}\" stroke=\"#57606a\"/><text x=\"{:.0}\" y=\"{:.0}\" font-size=\"12\" font-family=\"monospace\">{} <tspan fill=\"#57606a\">{}</tspan></text><text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\" font-family=\"monospace\" fill=\"#57606a\">{}</text>",
                x0 + 10.0,
                col_w - 20.0,
                if_h - 8.0,
                x0 + 16.0,
                y0 + 15.0,
                esc(&f.name),
                esc(&f.kind),
                x0 + 16.0,
                y0 + 30.0,
                esc(&f.addresses.join(" "))
            );
            pos.insert(format!("{}/{}", n.name, f.name), (x0 + 10.0, y0 + (if_h - 8.0) / 2.0));
        }
    }
    s += &boxes;
    for n in &t.namespaces {
        for f in n.ifaces.iter().filter(|f| f.master.is_some()) {
            let (a, b) =
                (format!("{}/{}", n.name, f.name), format!("{}/{}", n.name, f.master.as_deref().unwrap_or("")));
            if let (Some(p), Some(q)) = (pos.get(&a), pos.get(&b)) {
                let _ = write!(s, "<path d=\"M{:.0},{:.0} C{:.0},{:.0} {:.0},{:.0} {:.0},{:.0}\" fill=\"none\" stroke=\"#0969da\" stroke-width=\"2\" stroke-dasharray=\"4 3\"><title>port of {}</title></path>", p.0, p.1, p.0 - 9.0, p.1, q.0 - 9.0, q.1, q.0, q.1, esc(&b));
            }
        }
    }
    // Veth pairs on top, so they show across the namespace boxes.
    for (a, b) in &t.veths {
        if let (Some(p), Some(q)) = (pos.get(a), pos.get(b)) {
            let (p, q) = if p.0 <= q.0 { (p, q) } else { (q, p) };
            let _ = write!(
                s,
                "<line x1=\"{:.0}\" y1=\"{:.0}\" x2=\"{:.0}\" y2=\"{:.0}\" stroke=\"#24292f\" stroke-width=\"2\"><title>veth {} ⇄ {}</title></line>",
                p.0 + col_w - 20.0,
                p.1,
                q.0,
                q.1,
                esc(a),
                esc(b)
            );
        }
    }
    s += "</svg>";
    s
}
