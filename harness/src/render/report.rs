//! `report.html`: one self-contained page per run (inline CSS and SVG, no
//! script, no fetch) built from the evidence alone, so it can be rebuilt
//! anywhere the artifacts directory is copied to. It leads with the
//! failures: an index of every failing check (and phase error), each a link
//! to its row. Then per case: the topology, and per phase a `<details>`,
//! open when the phase failed, collapsed when it passed, holding per probe
//! its outcome as a table, its why-line, its packet timeline
//! ([`crate::render::timeline`]), expected vs observed, the kernel's drops
//! (the probe's own and background ones greyed), the counters that moved
//! and a link to the phase's pcapng.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::evidence::outcome::Outcome;
use crate::evidence::record::{CaseRecord, CheckRecord, PhaseRecord, ProbeRecord, WindowRecord};
use crate::evidence::topo::TopoView;
use crate::render::fragments::Part;
pub use crate::render::timeline::{esc, timeline_svg};
use crate::sys::drops::Origin;

/// Every `<root>/<case>/evidence.json`, by case id, and every one that
/// could not be read (`path: why`). Hidden entries (`.<case>.new-<pid>`, a
/// run's directory not yet in place) are not cases.
pub fn collect(root: &Path) -> (Vec<CaseRecord>, Vec<String>) {
    let (mut out, mut unreadable) = (Vec::new(), Vec::new());
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
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

/// Rebuilds `<root>/report.html` from every case's evidence there. The root
/// must be the caller's and writable by no one else
/// ([`crate::evidence::store::Store`]); two runs at once take turns (the
/// lock gives up naming its holder), and readers never see half a file (a
/// fresh `O_EXCL` temporary file renamed over it; nothing is written through
/// a symlink). An evidence file that cannot be read is named at the top of
/// the page, and makes this an error (after the page is written) that names it.
pub fn write(root: &Path) -> Result<PathBuf> {
    let store = crate::evidence::store::Store::open(root)?;
    let _lock = store.lock("report", "netrepro report")?;
    // Each case's part comes from its cache unless its evidence changed.
    let (parts, unreadable) = crate::render::fragments::collect(store.dir(), part);
    let mut html = page(&parts);
    if !unreadable.is_empty() {
        let list: String = unreadable.iter().map(|u| format!("<li>{}</li>", esc(u))).collect();
        let at = html.find("<h1>").unwrap_or(0);
        html.insert_str(
            at,
            &format!("<div class=\"fail\"><p>evidence not shown (unreadable):</p><ul>{list}</ul></div>"),
        );
    }
    let path = store.dir().write("report.html", html.as_bytes())?;
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

pub const STYLE: &str = "body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1d2330;max-width:1200px}\
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-top:2px solid #d8dde6;padding-top:12px}\
h3{font-size:15px;margin:18px 0 6px}table{border-collapse:collapse;margin:6px 0}\
td,th{border:1px solid #d8dde6;padding:2px 8px;text-align:left;vertical-align:top;font-size:13px}\
th{background:#f1f3f7}.pass{color:#116329;font-weight:600}.fail{color:#cf222e;font-weight:600}\
.na{color:#8a6d00}.why{background:#fff8e6;border-left:4px solid #e0a100;padding:6px 10px;margin:6px 0}\
.note{color:#57606a}code,.mono{font-family:ui-monospace,monospace;font-size:12px}\
.phase{margin-left:8px;padding-left:12px;border-left:3px solid #d8dde6}\
.phase.failed{border-left-color:#cf222e}details{margin:4px 0}svg{display:block;margin:6px 0}\
details.phase>summary{font-size:15px;font-weight:600;margin:14px 0 6px;cursor:pointer}\
nav.failures{background:#ffebe9;border:1px solid #cf222e;border-radius:6px;padding:8px 14px;margin:10px 0 18px}\
nav.failures h2{font-size:16px;margin:4px 0;border:0;padding:0;color:#cf222e}nav.failures.none{background:#dafbe1;border-color:#4ac26b}\
nav.failures.none h2{color:#116329}tr.own td{color:#8c959f}tr.failed td{background:#ffebe9}\
table.outcome td,table.outcome th{font-size:12px}\
.sumwhy{display:block;font-weight:400;font-size:13px;color:#57606a;margin:2px 0 0 18px}:target{outline:3px solid #e0a100}";

/// The page: passing phases collapsed.
pub fn render(cases: &[CaseRecord]) -> String {
    render_with(cases, false)
}

/// The page with every phase open (to look at, or screenshot, a passing
/// phase's timelines).
pub fn render_open(cases: &[CaseRecord]) -> String {
    render_with(cases, true)
}

/// The id of the row of check `i` of probe `probe` in `phase` of `case`.
pub fn check_anchor(case: &str, phase: &str, probe: &str, i: usize) -> String {
    format!("{case}--{phase}--{probe}--{i}")
}

/// The name a window's checks are anchored by (`window-phase`,
/// `window-<span>`): never a probe's.
fn window_anchor(name: &str) -> String {
    format!("window-{name}")
}

/// The index of failures, from every case's entries ([`failures_of`]).
fn failures_index(parts: &[Part]) -> String {
    let items: Vec<&String> = parts.iter().flat_map(|p| &p.failures).collect();
    if items.is_empty() {
        return "<nav class=\"failures none\" id=\"failures\"><h2>No failing check</h2></nav>".into();
    }
    format!(
        "<nav class=\"failures\" id=\"failures\"><h2>{} failing check{}</h2><ol>{}</ol></nav>",
        items.len(),
        if items.len() == 1 { "" } else { "s" },
        items.into_iter().map(String::as_str).collect::<String>()
    )
}

/// A case's entries in the index of failures: every unmet expectation and
/// every phase error, each a link to its place below.
fn failures_of(c: &CaseRecord) -> Vec<String> {
    let mut items = Vec::new();
    {
        for ph in c.phases.iter().filter(|p| !p.passed) {
            let at = format!("{} › {}", c.id, ph.name);
            if let Some(e) = &ph.error {
                items.push(format!(
                    "<li><a href=\"#{}\">{}: harness error</a>: {}</li>",
                    esc(&format!("{}-{}", c.id, ph.name)),
                    esc(&at),
                    esc(e)
                ));
            }
            let probes = ph.probes.iter().map(|p| (p.name.clone(), &p.checks));
            let windows = ph.windows.iter().map(|w| (window_anchor(&w.name), &w.checks));
            let actors = std::iter::once(("actors".to_string(), &ph.actor_checks));
            for (name, checks) in probes.chain(windows).chain(actors) {
                for (i, k) in checks.iter().enumerate().filter(|(_, k)| !k.ok) {
                    items.push(format!(
                        "<li><a href=\"#{}\">{} › {}: {}</a> — expected {}, observed {}</li>",
                        esc(&check_anchor(&c.id, &ph.name, &name, i)),
                        esc(&at),
                        esc(&name),
                        esc(&k.what),
                        esc(&k.expected.to_string()),
                        esc(&k.observed.to_string())
                    ));
                }
            }
        }
    }
    items
}

fn render_with(cases: &[CaseRecord], open_all: bool) -> String {
    page(&cases.iter().map(|c| part_with(c, open_all)).collect::<Vec<_>>())
}

/// Renders a finished run's part and caches it in the run's own directory
/// beside its `evidence.json`, before that directory is put in place
/// ([`crate::run::runner::BeforeCommit`]): the part goes in with the
/// evidence in one swap, never after it. A part that cannot be written is
/// not an error: the report renders it from the evidence.
pub fn cache_part(rec: &CaseRecord, dir: &crate::safety::owndir::OwnDir) {
    crate::render::fragments::store_in(dir, part(rec))
}

/// A case's row in the summary table, its section of the page (passing
/// phases collapsed) and its entries in the index of failures.
pub fn part(c: &CaseRecord) -> Part {
    part_with(c, false)
}

fn part_with(c: &CaseRecord, open_all: bool) -> Part {
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
    case_html(&mut section, c, open_all);
    Part {
        id: c.id.clone(),
        passed: c.passed(),
        kernel_release: c.kernel_release.clone(),
        drop_monitor: c.drop_monitor.clone(),
        row,
        section,
        failures: failures_of(c),
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
         <h1>netrepro: {passed} of {} cases passed</h1>{}<p class=\"note\">kernel {}; drop monitor: {}</p>",
        parts.len(),
        failures_index(parts),
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

fn case_html(h: &mut String, c: &CaseRecord, open_all: bool) {
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
        phase_html(h, c, ph, open_all);
    }
}

fn phase_html(h: &mut String, c: &CaseRecord, ph: &PhaseRecord, open_all: bool) {
    let gate = ph.kernel_range.as_ref().map(|r| format!(" (kernel {})", esc(r))).unwrap_or_default();
    let open = if !ph.passed || open_all { " open" } else { "" };
    let _ = write!(
        h,
        "<details class=\"phase{}\" id=\"{}-{}\"{open}><summary>phase {}{gate} <span class=\"{v}\">{v}</span>",
        if ph.passed { " passed" } else { " failed" },
        esc(&c.id),
        esc(&ph.name),
        esc(&ph.name),
        v = if ph.passed { "pass" } else { "fail" },
    );
    // Folded, its why-lines still show: what differs from the baseline.
    for p in ph.probes.iter().filter(|_| open.is_empty()) {
        if let Some(w) = &p.why {
            let _ = write!(h, "<span class=\"sumwhy\">{}: {}</span>", esc(&p.name), esc(w));
        }
    }
    for w in ph.windows.iter().filter(|_| open.is_empty()) {
        if let Some(y) = &w.why {
            let _ = write!(h, "<span class=\"sumwhy\">{}</span>", esc(y));
        }
    }
    h.push_str("</summary>");
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
    actors_html(h, c, ph);
    for w in &ph.windows {
        window_html(h, c, ph, w);
    }
    for p in &ph.probes {
        probe_html(h, c, ph, p);
    }
    // The report sits at the artifacts root, which the path is relative to.
    if let Some(rel) = ph.pcapng.as_ref().map(|p| p.display().to_string()) {
        let _ = write!(
            h,
            "<p class=\"note\">pcapng (every captured interface, frames numbered as in the timelines): <a href=\"{0}\">{0}</a></p>",
            esc(&rel)
        );
    }
    h.push_str("</details>");
}

/// The outcome as a small table of its fields.
fn outcome_table(o: &Outcome) -> String {
    let mut rows: Vec<(&str, String)> = Vec::new();
    match o {
        Outcome::Ping(p) => {
            rows.push(("sent", p.sent.to_string()));
            rows.push(("replies", p.replies.to_string()));
            if !p.rtt_ms.is_empty() {
                let min = p.rtt_ms.iter().copied().fold(f64::INFINITY, f64::min);
                let max = p.rtt_ms.iter().copied().fold(0.0f64, f64::max);
                let avg = p.rtt_ms.iter().sum::<f64>() / p.rtt_ms.len() as f64;
                rows.push(("rtt min/avg/max", format!("{min:.3} / {avg:.3} / {max:.3} ms")));
            }
            let errors: Vec<String> =
                p.errors.iter().map(|e| format!("{} from {} (seq {})", e.kind, e.from, e.seq)).collect();
            rows.push(("ICMP errors", if errors.is_empty() { "none".into() } else { errors.join(", ") }));
            rows.push(("echo id", p.id.to_string()));
            rows.push(("elapsed", format!("{} ms", p.elapsed_ms)));
        }
        Outcome::Connect(c) => {
            rows.push(("result", c.result.clone()));
            rows.push(("elapsed", format!("{} ms", c.elapsed_ms)));
            if c.held > 0 {
                rows.push(("held", c.held.to_string()));
            }
        }
        Outcome::Stream(st) => {
            rows.push(("bytes sent / received", format!("{} / {}", st.bytes_sent, st.bytes_received)));
            rows.push(("client error", st.client_error.clone()));
            rows.push(("server error", st.server_error.clone()));
            rows.push(("elapsed", format!("{} ms", st.elapsed_ms)));
            for i in &st.injected {
                rows.push(("injected", i.summary.clone()));
            }
        }
        // The other probes: their fields as they are recorded.
        o => {
            if let Ok(serde_json::Value::Object(m)) = serde_json::to_value(o) {
                for (k, v) in m.into_iter().filter(|(k, _)| k != "kind") {
                    let shown = match v {
                        serde_json::Value::String(s) => s,
                        v => v.to_string(),
                    };
                    rows.push((Box::leak(k.into_boxed_str()), shown));
                }
            }
        }
    }
    let mut t = format!("<table class=\"outcome\"><tr><th colspan=\"2\">outcome ({})</th></tr>", o.kind());
    for (k, v) in rows {
        let _ = write!(t, "<tr><td>{}</td><td class=\"mono\">{}</td></tr>", esc(k), esc(&v));
    }
    t + "</table>"
}

fn probe_html(h: &mut String, c: &CaseRecord, ph: &PhaseRecord, p: &ProbeRecord) {
    let _ = write!(h, "<h3>probe {}</h3>", esc(&p.name));
    h.push_str(&outcome_table(&p.outcome));
    if let Some(w) = &p.why {
        let _ = write!(h, "<div class=\"why\"><b>why:</b> {}</div>", esc(w));
    }
    h.push_str(&timeline_svg(p));
    if let Some(t) = &p.topology {
        let _ = write!(
            h,
            "<details><summary>links at this probe (after the phase's steps)</summary>{}</details>",
            topology_svg(t)
        );
    }
    checks_table(h, c, ph, &p.name, &p.checks);
    drops_table(h, &p.drops);
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

/// The phase's actors, one row each: where and what it is, when it got
/// ready and ended (on one time axis for all of them), how it ended, its
/// exit status, what the case asserted of it, and its output folded.
fn actors_html(h: &mut String, c: &CaseRecord, ph: &PhaseRecord) {
    if ph.actors.is_empty() {
        return;
    }
    let t0 = ph.actors.iter().map(|a| a.started_ns).min().unwrap_or(0);
    let t1 = ph.actors.iter().map(|a| a.ended_ns.max(a.started_ns)).max().unwrap_or(t0);
    let rel = |t: u64| t.saturating_sub(t0) as f64 / 1e6;
    let _ = write!(
        h,
        "<h3>actors <span class=\"note\">(over {:.0} ms from the first one's start: grey starting, green ready, │ ready)</span></h3>",
        rel(t1)
    );
    h.push_str("<table><tr><th>actor</th><th>in</th><th>kind</th><th>ready</th><th>life</th><th>ended</th><th>exit</th><th>asserted</th></tr>");
    for a in &ph.actors {
        let ready = match (a.ready_ms, &a.error) {
            (_, Some(e)) => format!("<span class=\"fail\">never: {}</span>", esc(e)),
            (Some(r), None) => format!("+{:.1} ms", rel(a.started_ns) + r),
            (None, None) => "—".into(),
        };
        let exit = match (a.counters.get("exited"), a.counters.get("exit_code")) {
            (Some(1), Some(code)) => format!("exit {code}"),
            (Some(_), _) => "still running at the end".into(),
            _ => "—".into(),
        };
        let prefix = format!("actor {}: ", a.name);
        let asserted: Vec<String> = ph
            .actor_checks
            .iter()
            .enumerate()
            .filter(|(_, k)| k.what.starts_with(&prefix))
            .map(|(i, k)| {
                format!(
                    "<span id=\"{}\" class=\"{}\">{} {} (expected {})</span>",
                    esc(&check_anchor(&c.id, &ph.name, "actors", i)),
                    if k.ok { "pass" } else { "fail" },
                    esc(k.what.strip_prefix(&prefix).unwrap_or(&k.what)),
                    esc(&k.observed.to_string()),
                    esc(&k.expected.to_string())
                )
            })
            .collect();
        let run = a.run.as_ref().map(|r| format!("<br><span class=\"mono\">{}</span>", esc(r))).unwrap_or_default();
        let mut output = String::new();
        for (name, text) in [("stdout", &a.stdout), ("stderr", &a.stderr)] {
            if !text.trim().is_empty() {
                let _ = write!(
                    output,
                    "<details><summary>{name}</summary><pre class=\"mono\">{}</pre></details>",
                    esc(text.trim_end())
                );
            }
        }
        let _ = write!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}{run}{output}</td><td>{ready}</td><td>{}</td><td>+{:.1} ms · {}</td><td>{exit}</td><td>{}</td></tr>",
            esc(&a.name),
            esc(&a.ns),
            esc(&a.kind),
            crate::render::timeline::lifetime_svg((t0, t1), a.started_ns, a.ready_ms, a.ended_ns),
            rel(a.ended_ns),
            esc(&a.end),
            asserted.join("<br>")
        );
    }
    h.push_str("</table>");
}

/// A window with no probe: the whole phase or a span of steps, its steps,
/// why-line, checks, drops and the rules that moved.
fn window_html(h: &mut String, c: &CaseRecord, ph: &PhaseRecord, w: &WindowRecord) {
    let ms = w.window_ns.1.saturating_sub(w.window_ns.0) as f64 / 1e6;
    let title = if w.name == "phase" { "the whole phase".to_string() } else { format!("span {}", w.name) };
    let _ = write!(h, "<h3>{} <span class=\"note\">({ms:.1} ms, no probe)</span></h3>", esc(&title));
    if !w.steps.is_empty() {
        let steps: Vec<String> = w.steps.iter().map(|s| format!("▸ {}", esc(s))).collect();
        let _ = write!(h, "<p class=\"mono\">{}</p>", steps.join("<br>"));
    }
    if let Some(y) = &w.why {
        let _ = write!(h, "<div class=\"why\"><b>why:</b> {}</div>", esc(y));
    }
    checks_table(h, c, ph, &window_anchor(&w.name), &w.checks);
    drops_table(h, &w.drops);
    let rules: Vec<String> = w.rules.iter().map(|(r, v)| format!("{r} {v:+}")).collect();
    if !rules.is_empty() {
        let _ = write!(
            h,
            "<details><summary>rule counters</summary><p class=\"mono\">{}</p></details>",
            rules.iter().map(|r| esc(r)).collect::<Vec<_>>().join("<br>")
        );
    }
}

/// Expectations as a table, each row anchored for the failures index.
fn checks_table(h: &mut String, c: &CaseRecord, ph: &PhaseRecord, name: &str, checks: &[CheckRecord]) {
    h.push_str("<table><tr><th>expectation</th><th>expected</th><th>observed</th><th></th></tr>");
    for (i, k) in checks.iter().enumerate() {
        let (cls, word) = match (k.unavailable, k.ok) {
            (true, _) => ("na", "n/a"),
            (_, true) => ("pass", "ok"),
            _ => ("fail", "FAIL"),
        };
        let _ = write!(
            h,
            "<tr id=\"{}\"{}><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"{cls}\">{word}</td></tr>",
            esc(&check_anchor(&c.id, &ph.name, name, i)),
            if k.ok { "" } else { " class=\"failed\"" },
            esc(&k.what),
            esc(&k.expected.to_string()),
            esc(&k.observed.to_string())
        );
    }
    h.push_str("</table>");
}

/// The kernel's drops in a window, the incident's first.
fn drops_table(h: &mut String, drops: &[crate::sys::drops::Drop]) {
    if drops.is_empty() {
        return;
    }
    h.push_str("<table><tr><th>kernel drops</th><th>whose</th><th>device</th><th>reason</th><th>where</th><th>protocol</th><th>count</th><th>packets</th></tr>");
    let mut drops: Vec<&crate::sys::drops::Drop> = drops.iter().collect();
    drops.sort_by_key(|d| d.origin);
    for d in drops {
        let own = d.origin != Origin::Incident;
        let packets: Vec<String> = d
            .packets
            .iter()
            .take(8)
            .map(|x| match &x.frame {
                Some(t) => format!("{} (#{} on {})", x.summary, t.pcap_frame, t.iface),
                None => x.summary.clone(),
            })
            .collect();
        let more = d.packets.len().saturating_sub(8);
        let mut shown = packets.iter().map(|x| esc(x)).collect::<Vec<_>>().join("<br>");
        if more > 0 {
            let _ = write!(shown, "<br>… {more} more");
        }
        let whose = if own {
            format!("{}<br><span class=\"note\">{}</span>", d.origin.word(), esc(&d.origin_why))
        } else {
            d.origin.word().to_string()
        };
        let _ = write!(
            h,
            "<tr{}><td>{}</td><td>{whose}</td><td>{}</td><td class=\"mono\">{}</td><td class=\"mono\">{}</td><td>{}</td><td>{}</td><td class=\"mono\">{shown}</td></tr>",
            if own { " class=\"own\"" } else { "" },
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
                esc(&format!("{}{}", f.kind, if f.up == Some(false) { " DOWN" } else { "" })),
                x0 + 16.0,
                y0 + 30.0,
                esc(&f.addresses.iter().cloned().chain(f.mac.clone()).collect::<Vec<_>>().join(" "))
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
    use crate::evidence::record::CheckRecord;

    fn case(phases: Vec<PhaseRecord>) -> CaseRecord {
        CaseRecord {
            format_version: crate::evidence::record::FORMAT_VERSION,
            id: "demo".into(),
            title: "t".into(),
            urls: vec![],
            case_file: "cases/demo.toml".into(),
            fixture: "docker-bridge".into(),
            kernel_release: "6.18".into(),
            started_unix_ms: 0,
            duration_ms: 1.0,
            verdict: if phases.iter().all(|p| p.passed) { "pass" } else { "fail" }.into(),
            drop_monitor: String::new(),
            topology: Default::default(),
            phases,
        }
    }

    fn phase(name: &str, ok: bool) -> PhaseRecord {
        let mut p = ProbeRecord::for_test(
            "connect",
            serde_json::json!({"from": "a", "to": "10.0.0.1:80"}),
            serde_json::json!({"result": "timeout", "elapsed_ms": 800.0}),
        );
        p.checks.push(CheckRecord {
            what: "result".into(),
            expected: crate::evidence::record::Expected::word("ok"),
            observed: crate::evidence::record::Observed::Result { word: "timeout".into(), after_ms: 800.0 },
            ok,
            unavailable: false,
        });
        p.drops.push(crate::sys::drops::Drop {
            ns: "b".into(),
            reason: "QUEUE_PURGE".into(),
            at: "tcp_disconnect".into(),
            protocol: "IPv4".into(),
            count: 1,
            origin: Origin::ProbeOwn,
            origin_why: "a socket's queue purged as the socket closed".into(),
            ..Default::default()
        });
        PhaseRecord { passed: ok, probes: vec![p], ..PhaseRecord::new(name) }
    }

    #[test]
    fn the_page_leads_with_its_failures_and_folds_what_passed() {
        let page = render(&[case(vec![phase("baseline", true), phase("fault", false)])]);
        let after_h1 = &page[page.find("</h1>").unwrap() + 5..];
        assert!(after_h1.starts_with("<nav class=\"failures\" id=\"failures\"><h2>1 failing check</h2>"), "{after_h1}");
        let anchor = check_anchor("demo", "fault", "connect", 0);
        assert!(after_h1.contains(&format!("<a href=\"#{anchor}\">demo › fault › connect: result</a>")), "{after_h1}");
        assert!(page.contains(&format!("<tr id=\"{anchor}\" class=\"failed\">")), "the link lands on the row");
        assert!(page.contains("<details class=\"phase passed\" id=\"demo-baseline\"><summary>"), "passing: collapsed");
        assert!(page.contains("<details class=\"phase failed\" id=\"demo-fault\" open><summary>"), "failing: open");
        assert!(render_open(&[case(vec![phase("baseline", true)])]).contains("id=\"demo-baseline\" open>"));
        // The outcome as a table, not JSON; the probe's own drop greyed.
        assert!(page.contains("<tr><td>result</td><td class=\"mono\">timeout</td></tr>"), "{page}");
        assert!(!page.contains("{\"kind\""), "no raw JSON");
        assert!(page.contains("<tr class=\"own\"><td>b</td><td>probe_own<br>"), "{page}");
        let ok = render(&[case(vec![phase("baseline", true)])]);
        assert!(ok.contains("<nav class=\"failures none\" id=\"failures\"><h2>No failing check</h2></nav>"));
    }
}
