//! Runs a validated plan: per phase a fresh topology, captures, steps,
//! probes with their counter and packet windows, checks, and the evidence.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::case::kernel::Version;
use crate::case::plan::{Check, Phase, Plan};
use crate::case::spec::{ProbeSpec, Step, Window};
use crate::evidence::outcome::Outcome;
use crate::evidence::record::DerivedWindow;
use crate::evidence::record::{self as evidence, CaseRecord, PhaseRecord, ProbeRecord, StepRecord};
use crate::run::probe;
use crate::run::topology::Topology;
use crate::safety::globals::Globals;
use crate::sys::capture::{Capture, Captured, SNAPLEN};
use crate::sys::clock::now_ns;
use crate::wire::pcapng::Stream;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Runs every phase that applies to `kernel` and writes `evidence.json`.
pub fn run_case(plan: &Plan, release: &str, kernel: Version, root: &Path) -> Result<(CaseRecord, PathBuf)> {
    run_case_until(plan, release, kernel, root, None).map(|(rec, path, _)| (rec, path))
}

/// A phase's topology left up after its probes, with its drop watch.
pub struct Kept {
    pub phase: String,
    pub topology: Topology,
    _watch: crate::sys::drops::Watch,
    /// Global settings the phase changed stay changed while it is kept.
    _globals: Globals,
}

/// As [`run_case`], but stops after the phase named `keep` (when given) and
/// hands back its topology, still up, instead of tearing it down.
pub fn run_case_until(
    plan: &Plan,
    release: &str,
    kernel: Version,
    root: &Path,
    keep: Option<&str>,
) -> Result<(CaseRecord, PathBuf, Option<Kept>)> {
    let t0 = Instant::now();
    let started_unix_ms = now_ns() / 1_000_000;
    let dir = evidence::case_dir(root, plan.id());
    // Two runs at once (two `cargo test`s) take turns per case, so each
    // leaves a consistent set of artifacts; the lock dies with the process.
    std::fs::create_dir_all(root)?;
    let _lock = evidence::lock_case(root, plan.id())?;
    // This run's artifacts go to a directory of their own, which replaces
    // the case's in one step when the run is over: a reader of the case's
    // evidence (the other `cargo test`'s schema check, a report) finds the
    // last complete run's, never a directory emptied for this one. Old
    // artifacts never mix with new ones.
    let staging = staging_dir(root, plan.id());
    std::fs::create_dir_all(&staging)?;
    let mut phases = Vec::new();
    let mut kept = None;
    match plan.phases_for(kernel) {
        Err(e) => phases.push(error_phase("(kernel selection)", e)),
        Ok(chosen) => {
            if let Some(k) = keep {
                if !chosen.iter().any(|p| p.name == k) {
                    let names: Vec<&str> = chosen.iter().map(|p| p.name.as_str()).collect();
                    bail!("case {} has no phase {k:?} on this kernel (its phases: {})", plan.id(), names.join(", "));
                }
            }
            for ph in chosen {
                let replay = plan.replay_for(ph, kernel).map_err(|e| anyhow!(e))?;
                let stop = keep == Some(ph.name.as_str());
                let (rec, topo) = run_phase(plan, ph, &replay, root, &staging, stop);
                phases.push(rec);
                if stop {
                    kept = topo;
                    break;
                }
            }
        }
    }
    let verdict = if phases.iter().all(|p| p.passed) { "pass" } else { "fail" };
    let rec = CaseRecord {
        format_version: crate::evidence::record::FORMAT_VERSION,
        id: plan.id().into(),
        title: plan.case.title.clone(),
        urls: plan.urls(),
        case_file: crate::evidence::record::relative_to_root(root, &plan.path),
        fixture: plan.case.fixture.get_ref().clone(),
        kernel_release: release.into(),
        started_unix_ms,
        duration_ms: ms(t0.elapsed()),
        verdict: verdict.into(),
        drop_monitor: crate::sys::drops::describe(),
        topology: crate::evidence::topo::TopoView::of(&plan.fixture),
        phases,
    };
    // Compact: a stream probe records every frame (conntrack-invalid-rst: 3.6 MB
    // compact, 9 MB pretty); `jq .` shows it indented.
    std::fs::write(staging.join("evidence.json"), serde_json::to_string(&rec)?)?;
    replace_dir(&staging, &dir)?;
    Ok((rec, dir.join("evidence.json"), kept))
}

/// Where a run of case `id` writes its artifacts until it is over
/// (`<root>/.<id>.<pid>.new`); any other left under the case's lock is a
/// dead run's, and goes.
fn staging_dir(root: &Path, id: &str) -> PathBuf {
    let prefix = format!(".{id}.");
    for e in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".new") {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    root.join(format!("{prefix}{}.new", std::process::id()))
}

/// Puts `new` in place of `dir` in one step (`RENAME_EXCHANGE`), then
/// removes what was there.
fn replace_dir(new: &Path, dir: &Path) -> Result<()> {
    use std::os::unix::ffi::OsStrExt;
    if !dir.exists() {
        return Ok(std::fs::rename(new, dir)?);
    }
    let (a, b) =
        (std::ffi::CString::new(new.as_os_str().as_bytes())?, std::ffi::CString::new(dir.as_os_str().as_bytes())?);
    // SAFETY: renameat2 with two NUL-terminated paths.
    if unsafe { libc::renameat2(libc::AT_FDCWD, a.as_ptr(), libc::AT_FDCWD, b.as_ptr(), libc::RENAME_EXCHANGE) } != 0 {
        // No exchange here (an old kernel or file system): out, then in.
        let e = std::io::Error::last_os_error();
        std::fs::remove_dir_all(dir).with_context(|| format!("replacing {} ({e})", dir.display()))?;
        return Ok(std::fs::rename(new, dir)?);
    }
    let _ = std::fs::remove_dir_all(new);
    Ok(())
}

/// Loads the drop monitor (BTF, the BPF program) on a thread of its own,
/// once per process, while the first topology is built; the drop watch
/// that needs it comes after the build.
fn load_drop_monitor_beside() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = std::thread::Builder::new().name("drops:load".into()).spawn(|| {
            let _ = crate::sys::drops::monitor();
        });
    });
}

fn error_phase(name: &str, e: String) -> PhaseRecord {
    PhaseRecord { error: Some(e), ..PhaseRecord::new(name) }
}

fn run_phase(
    plan: &Plan,
    ph: &Phase,
    replay: &[crate::case::spec::Step],
    root: &Path,
    staging: &Path,
    keep: bool,
) -> (PhaseRecord, Option<Kept>) {
    let mut rec = PhaseRecord::new(&ph.name);
    rec.kernel_range = ph.kernel.as_ref().map(|r| r.text().to_string());
    rec.upstream = ph.upstream.clone();
    rec.note = ph.note.clone();
    let t_setup = Instant::now();
    load_drop_monitor_beside();
    let topo = match Topology::build(&plan.fixture, &format!("{}:{}", plan.id(), ph.name)) {
        Ok(t) => t,
        Err(e) => {
            rec.error = Some(format!("building fixture {}: {e:#}", plan.case.fixture.get_ref()));
            return (rec, None);
        }
    };
    // Registered before any step, so setup's own drops are not mistaken
    // for the probe's: each probe reads a delta.
    let inodes: Vec<(String, u32)> =
        topo.namespaces.iter().filter_map(|(n, ns)| Some((n.clone(), ns.inode().ok()?))).collect();
    let watch = crate::sys::drops::Watch::new(inodes);
    let mut globals = Globals::default();
    let mut apply = |s: &Step| match s {
        Step::GlobalSysctl { key, value } => globals.set(key, &value.to_string()).map(|was| format!("was {was}")),
        _ => topo.apply(s),
    };
    // Outside the steps' closure so that an error stops them too, and the
    // pcapng is written whatever happened.
    let mut caps: Vec<Capture> = Vec::new();
    let mut leftovers = Vec::new();
    let mut frame_refs = Vec::new();
    let result = (|| -> Result<()> {
        for s in &plan.setup {
            let t = Instant::now();
            let out = apply(s)?;
            rec.steps.push(StepRecord {
                step: s.to_string(),
                origin: "setup".into(),
                ok: true,
                output: out,
                ms: ms(t.elapsed()),
            });
        }
        for i in &plan.captures {
            caps.push(Capture::start(topo.ns(&i.ns)?, &i.dev, &i.to_string())?);
        }
        rec.timings.setup_ms = ms(t_setup.elapsed());
        let t_steps = Instant::now();
        let own = ph.steps.iter().map(|s| (s, "phase"));
        for (s, origin) in replay.iter().map(|s| (s, "replayed")).chain(own) {
            let t = Instant::now();
            match apply(s) {
                Ok(out) => rec.steps.push(StepRecord {
                    step: s.to_string(),
                    origin: origin.into(),
                    ok: true,
                    output: out,
                    ms: ms(t.elapsed()),
                }),
                Err(e) => {
                    rec.steps.push(StepRecord {
                        step: s.to_string(),
                        origin: origin.into(),
                        ok: false,
                        output: format!("{e:#}"),
                        ms: ms(t.elapsed()),
                    });
                    return Err(anyhow!("step `{s}` failed: {e:#}"));
                }
            }
        }
        rec.timings.steps_ms = ms(t_steps.elapsed());
        let t_probes = Instant::now();
        for check in &ph.checks {
            let (probe, leftover, refs) = run_check(plan, &topo, &caps, &watch, check)?;
            rec.probes.push(probe);
            leftovers.push(leftover);
            frame_refs.push(refs);
        }
        rec.timings.probes_ms = ms(t_probes.elapsed());
        Ok(())
    })();
    // Every capture stopped at once; their frames are written below, once
    // the topology is gone.
    let stopped = crate::sys::capture::stop_all(caps);
    // Closed only now, so that no probe's window or capture holds their
    // closing handshakes.
    drop(leftovers);
    // Global settings go back first (the host shares them), unless the
    // phase is kept: then they stay changed with its topology.
    let t = Instant::now();
    let restored = if keep { Vec::new() } else { globals.restore() };
    let took = ms(t.elapsed());
    let mut restore_error = None;
    for r in restored {
        let (ok, output) = match r {
            Ok(said) => (true, said),
            Err(e) => (false, format!("{e:#}")),
        };
        if !ok && restore_error.is_none() {
            restore_error = Some(format!("restoring a global setting: {output}"));
        }
        rec.steps.push(StepRecord {
            step: "restore global setting".into(),
            origin: "restore".into(),
            ok,
            output,
            ms: took,
        });
    }
    // The topology goes before the pcapng is written: the kernel frees its
    // namespaces in the background (taking RTNL across RCU grace periods),
    // and the next phase's build should find that work as far along as it
    // can be.
    let mut kept = None;
    if keep {
        kept = Some((topo, watch, globals));
    } else {
        let t_down = Instant::now();
        drop(watch);
        drop(topo);
        rec.timings.teardown_ms = ms(t_down.elapsed());
    }
    let captured = write_captures(stopped, plan, ph, root, staging, &mut rec, &frame_refs);
    if let Err(e) = result.and(captured) {
        rec.error = Some(format!("{e:#}"));
    }
    if rec.error.is_none() {
        rec.error = restore_error;
    }
    rec.passed = rec.error.is_none() && rec.probes.iter().all(|p| p.checks.iter().all(|c| c.ok));
    let kept = kept.map(|(topology, watch, globals)| Kept {
        phase: ph.name.clone(),
        topology,
        _watch: watch,
        _globals: globals,
    });
    (rec, kept)
}

/// Which captured frame each recorded frame is: per probe, per interface,
/// the frames' indices in their capture (to number them once the phase's
/// pcapng is written).
use crate::run::witness::{self, frames::FrameRefs};

/// Writes the phase's pcapng from its stopped captures (the kernel's drops
/// as section comments), and gives every recorded frame its number in it.
fn write_captures(
    stopped: Vec<Result<Captured>>,
    plan: &Plan,
    ph: &Phase,
    root: &Path,
    staging: &Path,
    rec: &mut PhaseRecord,
    refs: &[FrameRefs],
) -> Result<()> {
    if stopped.is_empty() {
        return Ok(());
    }
    let captured: Vec<Captured> = stopped.into_iter().collect::<Result<_>>()?;
    let mut comments = vec![format!("netrepro case {}, phase {}", plan.id(), ph.name)];
    for p in &rec.probes {
        for d in &p.drops {
            let at = if d.dev.is_empty() { d.ns.clone() } else { format!("{}/{}", d.ns, d.dev) };
            let reason = if d.reason.is_empty() { "(no reason on this kernel)" } else { &d.reason };
            comments.push(format!(
                "kernel drop in probe {}: {} x {} on {at}: {reason} in {} (t_ns {}..{})",
                p.name, d.count, d.protocol, d.at, d.first_ns, d.last_ns
            ));
        }
    }
    // Recorded where it will be once the run is over; written beside it.
    let path = crate::evidence::frames::pcapng_path(root, plan.id(), &ph.name);
    let written = staging.join(path.file_name().unwrap_or_default());
    let streams: Vec<Stream> = captured
        .iter()
        .map(|c| Stream { name: &c.label, link: c.link, snaplen: SNAPLEN as u32, frames: &c.frames })
        .collect();
    let file = std::fs::File::create(&written).with_context(|| format!("creating {}", written.display()))?;
    let numbering = crate::wire::pcapng::write(std::io::BufWriter::new(file), &streams, &comments)
        .with_context(|| format!("writing {}", written.display()))?;
    rec.pcapng = Some(crate::evidence::record::relative_to_root(root, &path));
    for (probe, refs) in rec.probes.iter_mut().zip(refs) {
        for (lane, indices) in refs {
            let (Some(ci), Some(w)) = (captured.iter().position(|c| &c.label == lane), probe.packets.get_mut(lane))
            else {
                continue;
            };
            for (f, &i) in w.frames.iter_mut().zip(indices) {
                f.pcap_frame = numbering.get(ci, i).unwrap_or(0);
            }
        }
    }
    if let Some(c) = captured.iter().find(|c| c.dropped > 0) {
        bail!(
            "capture {} lost {} frames (its socket buffer was full): this phase's packet expectations cannot be trusted",
            c.label,
            c.dropped
        );
    }
    Ok(())
}

/// The window an `elapsed_ms` expectation means on this kernel, now, and
/// where it came from.
fn resolve_window(w: &Window, topo: &Topology) -> Result<(Window, Option<DerivedWindow>)> {
    let Some(n) = &w.neigh_failure else { return Ok((w.clone(), None)) };
    let at = n.clone();
    let dev = at.dev.clone();
    let read =
        move |k: &str| -> Result<f64> { Ok(crate::sys::sysctl::read(&format!("net/ipv4/neigh/{dev}/{k}"))?.parse()?) };
    let (mcast, app, retrans) = topo.ns(&at.ns)?.run(move |_| -> Result<(f64, f64, f64)> {
        Ok((read("mcast_solicit")?, read("app_solicit")?, read("retrans_time_ms")?))
    })??;
    let probes = mcast + app;
    let t = probes * retrans;
    // Each retransmit timer is armed in whole jiffies from the current
    // jiffy, so a round can end up to one jiffy early: allow one jiffy of
    // the coarsest HZ (100) per probe below.
    let min = t - probes * 10.0;
    let max = t + w.tolerance_ms.unwrap_or(0.0);
    let window = Window { min: Some(min), max: Some(max), neigh_failure: None, tolerance_ms: None };
    let basis = DerivedWindow {
        interface: n.clone(),
        mcast_solicit: mcast,
        app_solicit: app,
        retrans_time_ms: retrans,
        expected_ms: t,
        window: window.clone(),
    };
    Ok((window, Some(basis)))
}

fn run_check(
    plan: &Plan,
    topo: &Topology,
    caps: &[Capture],
    watch: &crate::sys::drops::Watch,
    check: &Check,
) -> Result<(ProbeRecord, probe::Leftover, FrameRefs)> {
    let spec = &plan.probes[&check.probe];
    let (window, derived_window) = match &check.outcome.elapsed_ms {
        Some(w) => {
            let (w, basis) = resolve_window(w, topo)?;
            (Some(w), basis)
        }
        None => (None, None),
    };
    let scope = witness::scope::scope(&plan.fixture, spec, check);
    let mut witnesses = witness::for_check(check, watch, &scope);
    for w in &mut witnesses {
        w.before(topo)?;
    }
    let w0 = now_ns();
    let (outcome, leftover) = run_probe(spec, topo, watch)?;
    let w1 = now_ns();
    let mut rec = ProbeRecord::new(&check.probe, spec.clone(), outcome, (w0, w1));
    rec.derived_window = derived_window;
    let refs = witness::frames::record(caps, &check.packets, &mut rec)?;
    for w in &mut witnesses {
        w.after(topo, &mut rec)?;
    }
    rec.checks = crate::verdict::check::evaluate(check, &rec, window.as_ref(), crate::sys::drops::support());
    let named: Vec<String> = check.counters.iter().map(|c| format!("{}: {}", c.ns, c.key)).collect();
    rec.why = crate::verdict::explain::why(&rec, &named);
    Ok((rec, leftover, refs))
}

/// Runs the probe itself: its outcome, and what it leaves open until the
/// phase's captures stop (held connections, the stream's receiver).
fn run_probe(
    spec: &ProbeSpec,
    topo: &Topology,
    watch: &crate::sys::drops::Watch,
) -> Result<(Outcome, probe::Leftover)> {
    Ok(match spec {
        ProbeSpec::Ping { from, to, count, interval_ms, wait_ms } => {
            let o = probe::ping(
                topo.ns(from)?,
                *to,
                *count,
                Duration::from_millis(*interval_ms),
                Duration::from_millis(*wait_ms),
            )?;
            (Outcome::Ping(o), probe::Leftover::default())
        }
        ProbeSpec::Connect { from, to, listen_in, listen_on, timeout_ms, hold } => {
            let l = match listen_in {
                Some(n) => Some((topo.ns(n)?, listen_on.unwrap_or(*to))),
                None => None,
            };
            let (o, keep) = probe::connect(topo.ns(from)?, *to, l, Duration::from_millis(*timeout_ms), *hold)?;
            (Outcome::Connect(o), keep)
        }
        ProbeSpec::Stream { from, to, server_in, bytes, timeout_ms, direction, rcvbuf, inject } => {
            let inject = match inject {
                Some(i) => Some(probe::Injection {
                    ns: topo.ns(&i.at.ns)?,
                    dev: i.at.dev.clone(),
                    segment: i.segment,
                    count: i.count,
                    at_bytes: i.at_bytes,
                    settle: Duration::from_millis(i.settle_ms),
                    drops: Some(watch),
                }),
                None => None,
            };
            let opts = probe::StreamOpts {
                bytes: *bytes,
                timeout: Duration::from_millis(*timeout_ms),
                download: *direction == crate::case::spec::Direction::Download,
                rcvbuf: *rcvbuf,
                inject,
            };
            let (o, keep) = probe::stream(topo.ns(from)?, topo.ns(server_in)?, *to, opts)?;
            (Outcome::Stream(o), keep)
        }
    })
}
