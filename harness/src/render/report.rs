//! `report.html`: one self-contained page per run (inline CSS and SVG, no
//! script, no fetch) built from the evidence alone, so it can be rebuilt
//! anywhere the artifacts directory is copied to. Per case and phase: the
//! topology, a packet timeline across interfaces (each frame with its
//! direction and its number in the phase's pcapng) with the kernel's drops
//! marked, the why-line, expected vs observed, counters that moved, drop
//! reasons and a link to the phase's pcapng.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::evidence::frames::{FrameRecord, MAX_FRAMES_PER_WINDOW};
use crate::evidence::record::{CaseRecord, PhaseRecord, ProbeRecord};
use crate::evidence::topo::TopoView;
use crate::render::fragments::Part;
use crate::wire::kind::FrameKind;
use crate::wire::packet::Direction;

/// Every `<root>/<case>/evidence.json`, by case id, and every one that
/// could not be read (`path: why`).
pub fn collect(root: &Path) -> (Vec<CaseRecord>, Vec<String>) {
    let (mut out, mut unreadable) = (Vec::new(), Vec::new());
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let ev = e.path().join("evidence.json");
        if !ev.exists() {
            continue;
        }
        match CaseRecord::read(&ev) {
            Ok(r) => out.push(r),
            Err(e) => unreadable.push(format!("{e:#}")),
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    unreadable.sort();
    (out, unreadable)
}

/// Rebuilds `<root>/report.html` from every case's evidence there. Two runs
/// at once take turns, and readers never see half a file. An evidence file
/// that cannot be read is named at the top of the page, and makes this an
/// error (after the page is written) that names it.
pub fn write(root: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let _lock = crate::evidence::record::lock_case(root, "report")
        .with_context(|| format!("locking {}", root.join(".report.lock").display()))?;
    // Each case's part comes from its cache unless its evidence changed.
    let (parts, unreadable) = crate::render::fragments::collect(root, part);
    let mut html = page(&parts);
    if !unreadable.is_empty() {
        let list: String = unreadable.iter().map(|u| format!("<li>{}</li>", esc(u))).collect();
        let at = html.find("<h1>").unwrap_or(0);
        html.insert_str(
            at,
            &format!("<div class=\"fail\"><p>evidence not shown (unreadable):</p><ul>{list}</ul></div>"),
        );
    }
    let path = root.join("report.html");
    let tmp = root.join(".report.html.tmp");
    std::fs::write(&tmp, html).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    if !unreadable.is_empty() {
        anyhow::bail!(
            "{} written without {} unreadable evidence file(s):\n  {}",
            path.display(),
            unreadable.len(),
            unreadable.join("\n  ")
        );
    }
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

/// Colours per frame kind, shared by the markers, the table and the legend.
fn colour(k: FrameKind) -> &'static str {
    match k {
        FrameKind::ArpRequest => "#1f6feb",
        FrameKind::ArpReply => "#1a7f37",
        FrameKind::EchoRequest => "#8250df",
        FrameKind::EchoReply => "#0a8f8f",
        FrameKind::IcmpError => "#d4731c",
        FrameKind::TcpRst => "#9a3412",
        FrameKind::TcpSyn => "#0b3d91",
        FrameKind::TcpSynAck => "#2f9e44",
        FrameKind::Tcp => "#6e7781",
        FrameKind::Other => "#afb8c1",
    }
}
const DROP_COLOUR: &str = "#e5132e";

pub fn render(cases: &[CaseRecord]) -> String {
    page(&cases.iter().map(part).collect::<Vec<_>>())
}

/// A case's row in the summary table and its section of the page.
pub fn part(c: &CaseRecord) -> Part {
    let phases: Vec<String> = c
        .phases
        .iter()
        .map(|p| format!("<span class=\"{}\">{}</span>", if p.passed { "pass" } else { "fail" }, esc(&p.name)))
        .collect();
    let row = format!(
        "<tr><td><a href=\"#{id}\">{id}</a></td><td class=\"{v}\">{v}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
        phases.join(" "),
        utc(c.started_unix_ms),
        c.duration_ms,
        id = esc(&c.id),
        v = esc(&c.verdict),
    );
    let mut section = String::new();
    case_html(&mut section, c);
    Part {
        id: c.id.clone(),
        passed: c.passed(),
        kernel_release: c.kernel_release.clone(),
        drop_monitor: c.drop_monitor.clone(),
        row,
        section,
    }
}

/// The page from its parts.
pub fn page(parts: &[Part]) -> String {
    let mut h = String::new();
    let passed = parts.iter().filter(|c| c.passed).count();
    let kernels: std::collections::BTreeSet<&str> = parts.iter().map(|c| c.kernel_release.as_str()).collect();
    let _ = write!(
        h,
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>netrepro report</title><style>{STYLE}</style></head><body>\
         <h1>netrepro: {passed} of {} cases passed</h1><p class=\"note\">kernel {}; drop monitor: {}</p>",
        parts.len(),
        esc(&kernels.into_iter().collect::<Vec<_>>().join(", ")),
        esc(parts.iter().map(|c| c.drop_monitor.as_str()).find(|d| !d.is_empty()).unwrap_or("not recorded")),
    );
    h += "<table><tr><th>case</th><th>verdict</th><th>phases</th><th>run at (UTC)</th><th>ms</th></tr>";
    for c in parts {
        h += &c.row;
    }
    h += "</table>";
    for c in parts {
        h += &c.section;
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

fn case_html(h: &mut String, c: &CaseRecord) {
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
        phase_html(h, c, ph);
    }
}

fn phase_html(h: &mut String, c: &CaseRecord, ph: &PhaseRecord) {
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
        probe_html(h, p);
    }
    // The report sits at the artifacts root, which the path is relative to.
    if let Some(rel) = ph.pcapng.as_ref().map(|p| p.display().to_string()) {
        let _ = write!(
            h,
            "<p class=\"note\">pcapng (every captured interface, frames numbered as in the timelines): <a href=\"{0}\">{0}</a></p>",
            esc(&rel)
        );
    }
    h.push_str("</div>");
}

fn probe_html(h: &mut String, p: &ProbeRecord) {
    let _ = write!(
        h,
        "<h3>probe {} <span class=\"note mono\">{}</span></h3>",
        esc(&p.name),
        esc(&serde_json::to_string(&p.outcome).unwrap_or_default())
    );
    if let Some(w) = &p.why {
        let _ = write!(h, "<div class=\"why\"><b>why:</b> {}</div>", esc(w));
    }
    h.push_str(&timeline_svg(p));
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

/// The probe's recorded frames across interfaces, in time order (ties in
/// pcapng order).
fn timeline_frames(p: &ProbeRecord) -> Vec<&FrameRecord> {
    let mut out: Vec<&FrameRecord> = p.packets.values().flat_map(|w| &w.frames).collect();
    out.sort_by_key(|f| (f.t_ns, f.pcap_frame));
    out
}

/// Lanes = captured interfaces (plus any interface the kernel dropped on),
/// x = time in the probe's window; drops as red crosses where they happened.
pub fn timeline_svg(p: &ProbeRecord) -> String {
    let frames = timeline_frames(p);
    let t_ms = |f: &FrameRecord| f.t_ns.saturating_sub(p.window_ns.0) as f64 / 1e6;
    let (w0, w1) = p.window_ns;
    let window_ms = ((w1.saturating_sub(w0)) as f64 / 1e6).max(1.0);
    // A probe often waits long after its last frame (a stalled transfer, a
    // timeout): the axis ends shortly after the last thing seen, and says so.
    let last_ms = frames
        .iter()
        .map(|f| t_ms(f))
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
    let (left, width, lane_h, top) = (170.0, 760.0, 36.0, 22.0);
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
    for f in &frames {
        let e = per_lane.entry(f.iface.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(f.kind() == FrameKind::Tcp);
    }
    let mut nth: BTreeMap<&str, usize> = BTreeMap::new();
    // Where each lane's last visible frame number was written.
    let mut labelled: BTreeMap<&str, f64> = BTreeMap::new();
    for f in &frames {
        let kind = f.kind();
        if kind == FrameKind::Tcp {
            let (all, plain) = per_lane[f.iface.as_str()];
            let n = nth.entry(f.iface.as_str()).or_default();
            *n += 1;
            if all > 300 && *n % plain.div_ceil(150).max(1) != 0 {
                continue;
            }
        }
        let (cx, cy) = (x(t_ms(f)), y(&f.iface));
        let c = colour(kind);
        // Outgoing frames point right, incoming left.
        let pts = match f.direction {
            Direction::In => {
                format!("{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", cx - 6.0, cy, cx + 4.0, cy - 7.0, cx + 4.0, cy + 7.0)
            }
            Direction::Out => {
                format!("{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}", cx + 6.0, cy, cx - 4.0, cy - 7.0, cx - 4.0, cy + 7.0)
            }
        };
        let _ = write!(
            s,
            "<polygon class=\"frame\" data-frame=\"{n}\" data-iface=\"{lane}\" data-dir=\"{dir}\" points=\"{pts}\" fill=\"{c}\"><title>#{n} +{:.3} ms {lane} {dir}: {}</title></polygon>",
            t_ms(f),
            esc(&f.summary),
            n = f.pcap_frame,
            lane = esc(&f.iface),
            dir = f.direction.word(),
        );
        // The frame's number under its marker, where the last one on the
        // lane is far enough away to stay readable.
        if f.pcap_frame > 0 && labelled.get(f.iface.as_str()).is_none_or(|last| cx - last >= 34.0) {
            labelled.insert(f.iface.as_str(), cx);
            let _ = write!(
                s,
                "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#57606a\" text-anchor=\"middle\">#{}</text>",
                cy + 17.0,
                f.pcap_frame
            );
        }
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
    let mut kinds: Vec<FrameKind> = Vec::new();
    for f in &frames {
        if !kinds.contains(&f.kind()) {
            kinds.push(f.kind());
        }
    }
    if !kinds.is_empty() || !p.drops.is_empty() {
        s += "<p class=\"note legend\">";
        for k in kinds {
            let _ = write!(s, "<span style=\"color:{}\">▶</span> {} &nbsp; ", colour(k), k.name());
        }
        let _ = write!(
            s,
            "<span style=\"color:{DROP_COLOUR}\">✕</span> kernel drop &nbsp; (▶ out, ◀ in; #n: frame number in the phase's pcapng)</p>"
        );
    }
    // A window's frames past the cap are in the pcapng only: say so.
    for (lane, w) in p.packets.iter().filter(|(_, w)| w.truncated > 0) {
        let _ = write!(
            s,
            "<p class=\"note\">{}: {} frames in this window not recorded in the evidence (at most {MAX_FRAMES_PER_WINDOW} per interface and window); the pcapng has them all.</p>",
            esc(lane),
            w.truncated
        );
    }
    // The same frames as a table: which interface saw which packet, in order.
    if !frames.is_empty() {
        let _ = write!(s, "<details><summary>{} frames in time order</summary><table class=\"mono\"><tr><th>#</th><th>ms</th><th>interface</th><th></th><th>frame</th></tr>", frames.len());
        for f in frames.iter().take(300) {
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{:.3}</td><td>{}</td><td>{}</td><td><span style=\"color:{}\">■</span> {}</td></tr>",
                f.pcap_frame,
                t_ms(f),
                esc(&f.iface),
                f.direction.word(),
                colour(f.kind()),
                esc(&f.summary)
            );
        }
        if frames.len() > 300 {
            let _ = write!(s, "<tr><td colspan=\"5\">… {} more in the pcapng</td></tr>", frames.len() - 300);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::frames::{FrameRecord, WindowFrames};
    use crate::wire::packet::tests::arp_request;
    use crate::wire::packet::Frame;

    fn probe(packets: BTreeMap<String, WindowFrames>) -> ProbeRecord {
        let mut p = ProbeRecord::for_test(
            "ping",
            serde_json::json!({"from": "a", "to": "10.0.0.1", "count": 1, "interval_ms": 10, "wait_ms": 10}),
            serde_json::json!({"sent": 1, "replies": 1, "errors": [], "rtt_ms": [0.1], "elapsed_ms": 1.0}),
        );
        p.window_ns = (1_000, 2_000_000);
        p.packets = packets;
        p
    }

    #[test]
    fn frames_are_drawn_from_the_records_with_number_and_direction() {
        let mut f = FrameRecord::of(
            &Frame::ethernet(500_000, Direction::In, arp_request([10, 0, 0, 2], [10, 0, 0, 1])),
            "host/br0",
        );
        f.pcap_frame = 17;
        let lanes = BTreeMap::from([("host/br0".to_string(), WindowFrames { frames: vec![f], truncated: 12_345 })]);
        let svg = timeline_svg(&probe(lanes));
        assert!(svg.contains("data-frame=\"17\" data-iface=\"host/br0\" data-dir=\"in\""), "{svg}");
        assert!(
            svg.contains("<title>#17 +0.499 ms host/br0 in: ARP request who-has 10.0.0.1 tell 10.0.0.2</title>"),
            "{svg}"
        );
        assert!(svg.contains(">#17</text>"), "the number is written under the marker: {svg}");
        assert!(svg.contains("host/br0: 12345 frames in this window not recorded in the evidence"), "{svg}");
    }
}
