//! A probe's packet timeline, inline SVG from the evidence alone: one lane
//! per captured interface (and per device the incident dropped on without
//! a capture), time across with tick labels at round values, every frame a
//! triangle pointing its way (▶ out, ◀ in) in its kind's colour with its
//! kind's code under it (`S` SYN, `A?` ARP request …) and its pcapng number.
//! Frames closer than a marker's width are spread apart (each keeps a thin
//! leader to its true time), so two frames 10 µs apart are two markers.
//! Each dropped packet is a ✕ on the frame it was, where the evidence ties
//! it to one, else at its time on its lane; the incident's drops red, the
//! probe's own and background drops grey.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::evidence::frames::{FrameRecord, MAX_FRAMES_PER_WINDOW};
use crate::evidence::record::ProbeRecord;
use crate::sys::drops::{Drop, Origin};
use crate::wire::kind::FrameKind;
use crate::wire::packet::Direction;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// Colours per frame kind, shared by the markers, the table and the legend.
pub fn colour(k: FrameKind) -> &'static str {
    match k {
        FrameKind::ArpRequest => "#1f6feb",
        FrameKind::ArpReply => "#1a7f37",
        FrameKind::NeighSolicit => "#1f6feb",
        FrameKind::NeighAdvert => "#1a7f37",
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

/// The kind's code under its marker, so kinds differ by more than colour:
/// `?` asks, `!` answers.
pub fn code(k: FrameKind) -> &'static str {
    match k {
        FrameKind::ArpRequest => "A?",
        FrameKind::ArpReply => "A!",
        FrameKind::NeighSolicit => "N?",
        FrameKind::NeighAdvert => "N!",
        FrameKind::EchoRequest => "E?",
        FrameKind::EchoReply => "E!",
        FrameKind::IcmpError => "I!",
        FrameKind::TcpSyn => "S",
        FrameKind::TcpSynAck => "SA",
        FrameKind::TcpRst => "R",
        FrameKind::Tcp => "",
        FrameKind::Other => "?",
    }
}

pub const DROP_COLOUR: &str = "#e5132e";
/// The probe's own and background drops: there, and not the incident.
pub const OWN_COLOUR: &str = "#8c959f";

/// Where a drop of `origin` is drawn, and how it is called.
fn drop_style(o: Origin) -> (&'static str, &'static str) {
    match o {
        Origin::Incident => (DROP_COLOUR, ""),
        Origin::ProbeOwn => (OWN_COLOUR, " (probe's own)"),
        Origin::Background => (OWN_COLOUR, " (background)"),
    }
}

/// The probe's recorded frames across interfaces, in time order (ties in
/// pcapng order).
fn timeline_frames(p: &ProbeRecord) -> Vec<&FrameRecord> {
    let mut out: Vec<&FrameRecord> = p.packets.values().flat_map(|w| &w.frames).collect();
    out.sort_by_key(|f| (f.t_ns, f.pcap_frame));
    out
}

/// Tick positions (ms) and labels at round values (1, 2 or 5 × 10^k) over
/// `0..=span_ms`, about six of them.
pub fn ticks(span_ms: f64) -> Vec<(f64, String)> {
    let span = if span_ms.is_finite() && span_ms > 0.0 { span_ms } else { 1.0 };
    let raw = span / 6.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0].iter().map(|m| m * mag).find(|s| *s >= raw).unwrap_or(10.0 * mag);
    let label = |v: f64| {
        if step < 1.0 {
            format!("{} µs", (v * 1000.0).round())
        } else if step >= 1000.0 {
            format!("{} s", v / 1000.0)
        } else {
            format!("{} ms", v.round())
        }
    };
    (0..).map(|i| i as f64 * step).take_while(|v| *v <= span * (1.0 + 1e-9)).take(64).map(|v| (v, label(v))).collect()
}

/// Drawn positions for markers whose true positions are `xs` (ascending):
/// at least `gap` apart, each group of markers that would overlap centred on
/// its true positions' mean, all within `lo..=hi`.
pub fn spread(xs: &[f64], gap: f64, lo: f64, hi: f64) -> Vec<f64> {
    // (first index, count, centre)
    let mut groups: Vec<(usize, usize, f64)> = Vec::new();
    for (i, &x) in xs.iter().enumerate() {
        groups.push((i, 1, x));
        while groups.len() >= 2 {
            let (b, a) = (groups[groups.len() - 1], groups[groups.len() - 2]);
            let a_right = a.2 + (a.1 as f64 - 1.0) / 2.0 * gap;
            let b_left = b.2 - (b.1 as f64 - 1.0) / 2.0 * gap;
            if b_left - a_right >= gap {
                break;
            }
            let n = a.1 + b.1;
            let mean = xs[a.0..a.0 + n].iter().sum::<f64>() / n as f64;
            groups.pop();
            groups.pop();
            groups.push((a.0, n, mean));
        }
    }
    let mut out = Vec::with_capacity(xs.len());
    for (_, n, c) in groups {
        let width = (n as f64 - 1.0) * gap;
        let start = (c - width / 2.0).clamp(lo, (hi - width).max(lo));
        out.extend((0..n).map(|k| start + k as f64 * gap));
    }
    out
}

/// The lane a drop is drawn on when it is not on a frame: its device, or
/// its namespace for a drop without one.
fn drop_lane(d: &Drop) -> String {
    if d.dev.is_empty() {
        format!("{} (no device)", d.ns)
    } else {
        format!("{}/{}", d.ns, d.dev)
    }
}

/// The SVG timeline, its legend, notes on frames left out, and the frames
/// as a table.
pub fn timeline_svg(p: &ProbeRecord) -> String {
    let frames = timeline_frames(p);
    let (w0, w1) = p.window_ns;
    let t_ms = |t: u64| t.saturating_sub(w0) as f64 / 1e6;
    let window_ms = ((w1.saturating_sub(w0)) as f64 / 1e6).max(1.0);
    // A stream's thousands of data segments would bury the frames that
    // matter: past 300 on a lane, plain TCP segments are sampled.
    let mut per_lane: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for f in &frames {
        let e = per_lane.entry(f.iface.as_str()).or_default();
        e.0 += 1;
        e.1 += usize::from(f.kind() == FrameKind::Tcp);
    }
    let mut nth: BTreeMap<&str, usize> = BTreeMap::new();
    let drawn: Vec<&FrameRecord> = frames
        .iter()
        .copied()
        .filter(|f| {
            if f.kind() != FrameKind::Tcp {
                return true;
            }
            let (all, plain) = per_lane[f.iface.as_str()];
            let n = nth.entry(f.iface.as_str()).or_default();
            *n += 1;
            all <= 300 || *n % plain.div_ceil(150).max(1) == 0
        })
        .collect();
    // Lanes: captured interfaces, then where the incident dropped packets
    // no capture saw.
    let mut lanes: Vec<String> = p.packets.keys().cloned().collect();
    let tied = |d: &Drop| !d.packets.is_empty() && d.packets.iter().all(|x| x.frame.is_some());
    for d in p.drops.iter().filter(|d| d.origin == Origin::Incident && d.dev != "lo" && !tied(d)) {
        let l = drop_lane(d);
        if !lanes.contains(&l) {
            lanes.push(l);
        }
    }
    if lanes.is_empty() {
        return String::new();
    }
    // A probe often waits long after its last frame (a stalled transfer, a
    // timeout): the axis ends shortly after the last thing seen, and says so.
    let last_ms = drawn
        .iter()
        .map(|f| t_ms(f.t_ns))
        .chain(p.drops.iter().filter(|d| d.origin == Origin::Incident).map(|d| t_ms(d.last_ns)))
        .fold(0.0f64, f64::max);
    let span_ms = if last_ms > 0.0 && last_ms * 1.1 < window_ms { (last_ms * 1.1).max(1.0) } else { window_ms };
    let (left, width, lane_h, top) = (170.0, 760.0, 58.0, 34.0);
    let height = top + lane_h * lanes.len() as f64 + 8.0;
    let x = |ms: f64| left + (ms.clamp(0.0, span_ms) / span_ms) * width;
    let lane_y = |lane: &str| lanes.iter().position(|l| l == lane).map(|i| top + lane_h * i as f64 + lane_h / 2.0);
    let svg_w = left + width + 230.0;
    let mut s = format!(
        "<svg class=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{svg_w:.0}\" height=\"{height:.0}\" role=\"img\" aria-label=\"packet timeline of probe {}\">",
        esc(&p.name)
    );
    // The axis: round ticks with labels, faint lines down through the lanes.
    for (v, label) in ticks(span_ms) {
        // On a pixel's centre: a crisp 1 px line.
        let xx = x(v).floor() + 0.5;
        let _ = write!(
            s,
            "<line class=\"tick\" x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"18\" y2=\"{:.0}\" stroke=\"#eaeef2\"/><text class=\"tick\" x=\"{xx:.1}\" y=\"14\" font-size=\"10\" fill=\"#57606a\" text-anchor=\"middle\">{}</text>",
            height - 6.0,
            esc(&label)
        );
    }
    if span_ms < window_ms {
        let _ = write!(
            s,
            "<text x=\"{:.0}\" y=\"28\" font-size=\"10\" fill=\"#57606a\" text-anchor=\"end\">then nothing until the probe ended at {window_ms:.0} ms</text>",
            left + width + 220.0
        );
    }
    for l in &lanes {
        let yy = lane_y(l).unwrap_or(top);
        let _ = write!(
            s,
            "<text x=\"4\" y=\"{:.0}\" font-size=\"12\" font-family=\"monospace\">{}</text><line x1=\"{left}\" x2=\"{:.0}\" y1=\"{yy:.0}\" y2=\"{yy:.0}\" stroke=\"#d0d7de\"/>",
            yy + 4.0,
            esc(l),
            left + width
        );
    }
    // Where each drawn frame ended up: (lane, pcapng number) → (x, y).
    let mut at: BTreeMap<(&str, u32), (f64, f64)> = BTreeMap::new();
    for lane in &lanes {
        let Some(cy) = lane_y(lane) else { continue };
        let on: Vec<&FrameRecord> = drawn.iter().copied().filter(|f| &f.iface == lane).collect();
        if on.is_empty() {
            continue;
        }
        let truth: Vec<f64> = on.iter().map(|f| x(t_ms(f.t_ns))).collect();
        let gap = (width / on.len() as f64).min(13.0);
        let xs = spread(&truth, gap, left, left + width);
        // Where the lane's last frame number was written.
        let mut labelled = f64::NEG_INFINITY;
        for ((f, cx), tx) in on.iter().zip(&xs).zip(&truth) {
            let (cx, tx) = (*cx, *tx);
            let kind = f.kind();
            let c = colour(kind);
            if (cx - tx).abs() > 1.0 {
                // Moved aside: a leader to where it happened.
                let _ = write!(
                    s,
                    "<line class=\"leader\" x1=\"{tx:.1}\" y1=\"{:.1}\" x2=\"{cx:.1}\" y2=\"{:.1}\" stroke=\"#8c959f\" stroke-width=\"0.8\"/>",
                    cy + 9.0,
                    cy + 7.0
                );
            }
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
                "<polygon class=\"frame\" data-frame=\"{n}\" data-iface=\"{lane}\" data-dir=\"{dir}\" data-kind=\"{k}\" points=\"{pts}\" fill=\"{c}\"><title>#{n} +{:.3} ms {lane} {dir}: {}</title></polygon>",
                t_ms(f.t_ns),
                esc(&f.summary),
                n = f.pcap_frame,
                lane = esc(&f.iface),
                dir = f.direction.word(),
                k = esc(kind.name()),
            );
            let code = code(kind);
            if !code.is_empty() {
                let _ = write!(
                    s,
                    "<text class=\"code\" x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"8\" fill=\"#24292f\" text-anchor=\"middle\">{code}</text>",
                    cy + 16.0
                );
            }
            // The frame's number, where the last one on the lane is far
            // enough away to stay readable.
            if f.pcap_frame > 0 && cx - labelled >= 30.0 {
                labelled = cx;
                let _ = write!(
                    s,
                    "<text x=\"{cx:.1}\" y=\"{:.1}\" font-size=\"9\" fill=\"#57606a\" text-anchor=\"middle\">#{}</text>",
                    cy + 26.0,
                    f.pcap_frame
                );
            }
            at.insert((f.iface.as_str(), f.pcap_frame), (cx, cy));
        }
    }
    // Drops: on their frame, else at their time on their lane (just above
    // its line, so a frame seen there at that instant stays visible).
    let cross = |s: &mut String, cx: f64, cy: f64, r: f64, colour: &str, title: &str, class: &str| {
        let _ = write!(
            s,
            "<g class=\"{class}\" stroke=\"{colour}\" stroke-width=\"2.5\"><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\"/><title>{}</title></g>",
            cx - r, cy - r, cx + r, cy + r, cx - r, cy + r, cx + r, cy - r, esc(title)
        );
    };
    for d in p.drops.iter().filter(|d| d.dev != "lo" || d.origin == Origin::Incident) {
        let (colour, whose) = drop_style(d.origin);
        let class = if d.origin == Origin::Incident { "drop" } else { "drop own" };
        let reason = if d.reason.is_empty() { d.at.clone() } else { d.reason.clone() };
        let lane = drop_lane(d);
        // (x, y, drawn on another lane than the drop's own)
        let mut marks: Vec<(f64, f64, bool)> = Vec::new();
        for pk in &d.packets {
            let title = format!("dropped{whose}: {} in {}: {}", reason, d.at, pk.summary);
            let on_frame = pk.frame.as_ref().and_then(|t| at.get(&(t.iface.as_str(), t.pcap_frame)));
            match (on_frame, lane_y(&lane)) {
                (Some(&(cx, cy)), _) => {
                    let title = format!("{title} (frame #{})", pk.frame.as_ref().map(|t| t.pcap_frame).unwrap_or(0));
                    cross(&mut s, cx, cy, 5.0, colour, &title, class);
                    marks.push((cx, cy, pk.frame.as_ref().is_some_and(|t| t.iface != lane)));
                }
                (None, Some(cy)) => {
                    let cx = x(t_ms(pk.t_ns));
                    cross(&mut s, cx, cy - 13.0, 4.0, colour, &title, class);
                    marks.push((cx, cy - 13.0, false));
                }
                (None, None) => {}
            }
        }
        // Counted without their packets (an older kernel, a full queue):
        // first and last, on the lane.
        if d.packets.is_empty() {
            if let Some(cy) = lane_y(&lane) {
                for t in [d.first_ns, d.last_ns] {
                    let cx = x(t_ms(t));
                    let title = format!("{} × {} dropped{whose}: {} in {}", d.count, d.protocol, reason, d.at);
                    cross(&mut s, cx, cy - 13.0, 4.0, colour, &title, class);
                    marks.push((cx, cy - 13.0, false));
                    if d.first_ns == d.last_ns {
                        break;
                    }
                }
            }
        }
        if let Some(&(lx, ly, _)) = marks.iter().max_by(|a, b| a.0.total_cmp(&b.0)) {
            // Drawn on another lane's frame (its own device not captured):
            // the label says where it was dropped.
            let elsewhere = if marks.iter().any(|m| m.2) { format!(" on {lane}") } else { String::new() };
            let text = format!("{} × {} {}{whose}{elsewhere}", d.count, d.protocol, reason);
            // Past the right edge, the label goes left of its mark.
            let (tx, anchor) = if lx + 8.0 + 6.2 * text.chars().count() as f64 > svg_w - 4.0 {
                (lx - 8.0, "end")
            } else {
                (lx + 8.0, "start")
            };
            let _ = write!(
                s,
                "<text x=\"{tx:.1}\" y=\"{:.1}\" font-size=\"11\" fill=\"{colour}\" text-anchor=\"{anchor}\">{}</text>",
                ly - 5.0,
                esc(&text)
            );
        }
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
            let c = code(k);
            let c = if c.is_empty() { String::new() } else { format!(" <b>{c}</b>") };
            let _ = write!(s, "<span style=\"color:{}\">▶</span>{c} {} &nbsp; ", colour(k), k.name());
        }
        let _ = write!(
            s,
            "<span style=\"color:{DROP_COLOUR}\">✕</span> the incident's drop (on its frame where the packet was captured) &nbsp; <span style=\"color:{OWN_COLOUR}\">✕</span> the probe's own or background &nbsp; (▶ out, ◀ in; #n: frame number in the phase's pcapng; a thin line: moved aside from its time)</p>"
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
    // The same frames as a table: which interface saw which packet, in
    // order, and which were dropped.
    let mut dropped: BTreeMap<(&str, u32), Vec<String>> = BTreeMap::new();
    for d in &p.drops {
        for pk in &d.packets {
            if let Some(t) = &pk.frame {
                let reason = if d.reason.is_empty() { "dropped" } else { d.reason.as_str() };
                dropped.entry((t.iface.as_str(), t.pcap_frame)).or_default().push(format!(
                    "✕ {reason} in {} ({})",
                    d.at,
                    d.origin.word()
                ));
            }
        }
    }
    if !frames.is_empty() {
        let _ = write!(s, "<details><summary>{} frames in time order</summary><table class=\"mono\"><tr><th>#</th><th>ms</th><th>interface</th><th></th><th>frame</th><th>kernel drop</th></tr>", frames.len());
        for f in frames.iter().take(300) {
            let d = dropped.get(&(f.iface.as_str(), f.pcap_frame)).map(|v| v.join("; ")).unwrap_or_default();
            let _ = write!(
                s,
                "<tr><td>{}</td><td>{:.3}</td><td>{}</td><td>{}</td><td><span style=\"color:{}\">■</span> {} {}</td><td>{}</td></tr>",
                f.pcap_frame,
                t_ms(f.t_ns),
                esc(&f.iface),
                f.direction.word(),
                colour(f.kind()),
                code(f.kind()),
                esc(&f.summary),
                esc(&d)
            );
        }
        if frames.len() > 300 {
            let _ = write!(s, "<tr><td colspan=\"6\">… {} more in the pcapng</td></tr>", frames.len() - 300);
        }
        s += "</table></details>";
    }
    s
}

/// An actor's life as a small bar on the phase's actors' common time axis
/// (`axis`: ns since the epoch, the first start to the last end): grey from
/// its start to ready, solid from ready to its end, a tick where it got
/// ready; a red end when it never got ready.
pub fn lifetime_svg(axis: (u64, u64), started_ns: u64, ready_ms: Option<f64>, ended_ns: u64) -> String {
    const W: f64 = 180.0;
    let span = axis.1.saturating_sub(axis.0).max(1) as f64;
    let x = |t: u64| (t.clamp(axis.0, axis.1) - axis.0) as f64 / span * W;
    let (s, e) = (x(started_ns), x(ended_ns.max(started_ns)));
    let mut svg = format!(
        "<svg class=\"life\" width=\"{W:.0}\" height=\"12\" role=\"img\"><line x1=\"0\" y1=\"6\" x2=\"{W:.0}\" y2=\"6\" stroke=\"#d0d7de\"/>"
    );
    match ready_ms {
        Some(r) => {
            let rd = x(started_ns + (r * 1e6) as u64).min(e);
            let _ = write!(
                svg,
                "<rect x=\"{s:.1}\" y=\"3\" width=\"{:.1}\" height=\"6\" fill=\"#afb8c1\"/><rect x=\"{rd:.1}\" y=\"3\" width=\"{:.1}\" height=\"6\" fill=\"#1a7f37\"/><line x1=\"{rd:.1}\" y1=\"0\" x2=\"{rd:.1}\" y2=\"12\" stroke=\"#0b3d91\"/>",
                (rd - s).max(0.5),
                (e - rd).max(1.0)
            );
        }
        None => {
            let _ = write!(
                svg,
                "<rect x=\"{s:.1}\" y=\"3\" width=\"{:.1}\" height=\"6\" fill=\"#afb8c1\"/><line x1=\"{e:.1}\" y1=\"0\" x2=\"{e:.1}\" y2=\"12\" stroke=\"{DROP_COLOUR}\"/>",
                (e - s).max(1.0)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::evidence::frames::WindowFrames;
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
            svg.contains("<title>#17 +0.499 ms host/br0 in: ARP request who-has 10.0.0.1 tell 10.0.0.2 (02:02:02:02:02:02)</title>"),
            "{svg}"
        );
        assert!(svg.contains(">#17</text>"), "the number is written under the marker: {svg}");
        assert!(svg.contains("host/br0: 12345 frames in this window not recorded in the evidence"), "{svg}");
    }

    #[test]
    fn ticks_fall_on_round_values() {
        let t: Vec<String> = ticks(110.0).into_iter().map(|(_, l)| l).collect();
        assert_eq!(t, ["0 ms", "20 ms", "40 ms", "60 ms", "80 ms", "100 ms"]);
        let t: Vec<String> = ticks(0.35).into_iter().map(|(_, l)| l).collect();
        assert_eq!(t, ["0 µs", "100 µs", "200 µs", "300 µs"]);
        let t: Vec<String> = ticks(3300.0).into_iter().map(|(_, l)| l).collect();
        assert_eq!(t, ["0 s", "1 s", "2 s", "3 s"]);
        let t: Vec<String> = ticks(2400.0).into_iter().map(|(_, l)| l).collect();
        assert_eq!(t, ["0 ms", "500 ms", "1000 ms", "1500 ms", "2000 ms"]);
        assert_eq!(ticks(f64::NAN).len(), 6);
    }

    #[test]
    fn overlapping_markers_are_spread_around_their_time() {
        // Two frames 10 µs apart on a 100 ms axis: the same pixel.
        let xs = spread(&[500.0, 500.07], 13.0, 170.0, 930.0);
        assert!((xs[0] - 493.535).abs() < 1e-6 && (xs[1] - 506.535).abs() < 1e-6, "{xs:?}");
        // Far apart: untouched; at the edge: kept inside.
        assert_eq!(spread(&[200.0, 400.0], 13.0, 170.0, 930.0), [200.0, 400.0]);
        assert_eq!(spread(&[170.0, 170.0, 170.0], 13.0, 170.0, 930.0), [170.0, 183.0, 196.0]);
        // A cluster that grows into its neighbour takes it in.
        let xs = spread(&[300.0, 300.0, 312.0, 600.0], 13.0, 170.0, 930.0);
        assert!(xs.windows(2).all(|w| w[1] - w[0] >= 12.999), "{xs:?}");
        assert_eq!(xs[3], 600.0);
    }
}
