//! Runs a validated plan: per phase a fresh topology, captures, steps,
//! probes with their counter and packet windows, checks, and the evidence.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use crate::case::kernel::Version;
use crate::case::plan::{Check, Phase, Plan};
use crate::case::spec::{ProbeSpec, Step, Window};
use crate::evidence::outcome::Outcome;
use crate::evidence::record::DerivedWindow;
use crate::evidence::record::{CaseRecord, PhaseRecord, ProbeRecord, StepRecord};
use crate::evidence::store::{Store, EVIDENCE};
use crate::run::probe;
use crate::run::topology::Topology;
use crate::safety::globals::Globals;
use crate::safety::owndir::OwnDir;
use crate::sys::capture::{Capture, Captured, SNAPLEN};
use crate::sys::clock::now_ns;
use crate::wire::pcapng::Stream;

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Runs every phase that applies to `kernel` and writes `evidence.json`.
pub fn run_case(plan: &Plan, release: &str, kernel: Version, root: &Path) -> Result<(CaseRecord, PathBuf)> {
    run_case_inner(plan, release, kernel, root, None, None).map(|(rec, path, _)| (rec, path))
}

/// What a caller adds to a run's directory before it is put in place (a
/// report part rendered from the record): it goes in with the evidence, in
/// the same swap, so a killed run leaves no half of it.
pub type BeforeCommit<'a> = &'a dyn Fn(&CaseRecord, &crate::safety::owndir::OwnDir);

/// As [`run_case`], with `before_commit` called on the finished record and
/// the run's own directory just before it replaces the case's.
pub fn run_case_then(
    plan: &Plan,
    release: &str,
    kernel: Version,
    root: &Path,
    before_commit: BeforeCommit,
) -> Result<(CaseRecord, PathBuf)> {
    run_case_inner(plan, release, kernel, root, None, Some(before_commit)).map(|(rec, path, _)| (rec, path))
}

/// A phase's topology left up after its probes, with its drop watch.
pub struct Kept {
    pub phase: String,
    pub topology: Topology,
    _watch: crate::sys::drops::Watch,
    /// Global settings the phase changed stay changed while it is kept.
    _globals: Globals,
}

/// As [`run_case_then`], but stops after the phase named `keep` (when
/// given) and hands back its topology, still up, instead of tearing it down.
pub fn run_case_until(
    plan: &Plan,
    release: &str,
    kernel: Version,
    root: &Path,
    keep: Option<&str>,
    before_commit: BeforeCommit,
) -> Result<(CaseRecord, PathBuf, Option<Kept>)> {
    run_case_inner(plan, release, kernel, root, keep, Some(before_commit))
}

fn run_case_inner(
    plan: &Plan,
    release: &str,
    kernel: Version,
    root: &Path,
    keep: Option<&str>,
    before_commit: Option<BeforeCommit>,
) -> Result<(CaseRecord, PathBuf, Option<Kept>)> {
    let t0 = Instant::now();
    let started_unix_ms = now_ns() / 1_000_000;
    // The root is checked (the caller's, writable by no one else) and held
    // by fd. Two runs at once (two `cargo test`s) take turns per case, so
    // each leaves a consistent set of artifacts; the lock dies with the
    // process. This run writes into a directory of its own, swapped in
    // whole at the end: a killed run leaves the previous evidence.
    let store = Store::open(root)?;
    let _lock = store.lock(plan.id(), &format!("netrepro run {}", plan.id()))?;
    let staged = store.begin(plan.id())?;
    let mut phases = Vec::new();
    let mut kept = None;
    match plan.phases_for(kernel) {
        Err(e) => phases.push(error_phase("(kernel selection)", e)),
        // Preflight skips such a case; a caller that did not ask gets an
        // error, never a pass.
        Ok(_) if plan.unchecked_on(kernel).is_some() => {
            phases.push(error_phase("(kernel selection)", plan.unchecked_on(kernel).unwrap_or_default()))
        }
        Ok(chosen) => {
            if let Some(k) = keep {
                if !chosen.iter().any(|p| p.name == k) {
                    let names: Vec<&str> = chosen.iter().map(|p| p.name.as_str()).collect();
                    bail!("case {} has no phase {k:?} on this kernel (its phases: {})", plan.id(), names.join(", "));
                }
            }
            for ph in chosen {
                if crate::sys::signals::stop_requested() {
                    phases.push(error_phase(
                        "(stopped)",
                        format!("the run was stopped by a signal before phase {}", ph.name),
                    ));
                    break;
                }
                let replay = plan.replay_for(ph, kernel).map_err(|e| anyhow!(e))?;
                let stop = keep == Some(ph.name.as_str());
                let (rec, topo) = run_phase(plan, ph, &replay, &staged.dir, stop);
                phases.push(rec);
                if stop {
                    kept = topo;
                    break;
                }
            }
        }
    }
    // Why-lines against the baseline, now that every phase is in.
    crate::verdict::explain::explain_phases(&mut phases);
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
    let json = serde_json::to_vec(&rec)?;
    let at = staged.dir.join(EVIDENCE);
    let mut f = staged.dir.create_file(EVIDENCE)?;
    f.write_all(&json).with_context(|| format!("{}: cannot write", at.display()))?;
    drop(f);
    if let Some(add) = before_commit {
        add(&rec, &staged.dir);
    }
    let path = store.commit(staged)?;
    Ok((rec, path, kept))
}

/// Loads the drop monitor (BTF, the BPF program) on a thread of its own,
/// once per process, while the first topology is built, then reads the
/// kernel's symbols there too; the drop watch that needs it comes after
/// the build.
fn load_drop_monitor_beside() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = std::thread::Builder::new().name("drops:load".into()).spawn(|| {
            if crate::sys::drops::monitor().is_ok() {
                crate::sys::drops::read_symbols_ahead();
            }
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
    dir: &OwnDir,
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
    let mut actors = crate::run::actor::Actors::default();
    let mut whole: Option<crate::run::window::Open> = None;
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
        // A capture follows its link: one a step makes starts once it
        // exists; one made again is picked up under its new ifindex.
        for i in &plan.captures {
            let mut c = Capture::pending(&i.dev, &i.to_string());
            c.follow(topo.ns(&i.ns)?)?;
            caps.push(c);
        }
        // The phase's own window opens here: before its actors and steps.
        whole = ph.whole.as_ref().map(|c| crate::run::window::Open::new(c, &watch, &topo)).transpose()?;
        // Actors start once the setup is done and the captures run, and are
        // ready before the phase's steps.
        let (started, ready) = crate::run::actor::Actors::start(&ph.actors, &topo);
        actors = started;
        ready?;
        rec.timings.setup_ms = ms(t_setup.elapsed());
        let t_steps = Instant::now();
        let own = ph.steps.iter().map(|s| (s, "phase", None));
        // Then each span's steps, inside its own window.
        let spanned =
            ph.spans.iter().enumerate().flat_map(|(i, sp)| sp.steps.iter().map(move |s| (s, "span", Some(i))));
        let mut span: Option<(usize, crate::run::window::Open)> = None;
        for (s, origin, in_span) in replay.iter().map(|s| (s, "replayed", None)).chain(own).chain(spanned) {
            if in_span != span.as_ref().map(|(i, _)| *i) {
                if let Some((i, w)) = span.take() {
                    let steps = ph.spans[i].steps.iter().map(|s| s.to_string()).collect();
                    rec.windows.push(w.close(&topo, &caps, steps, &[])?);
                }
                if let Some(i) = in_span {
                    span = Some((i, crate::run::window::Open::new(&ph.spans[i].check, &watch, &topo)?));
                }
            }
            let t = Instant::now();
            let applied = apply(s);
            for (c, i) in caps.iter_mut().zip(&plan.captures) {
                c.follow(topo.ns(&i.ns)?)?;
            }
            match applied {
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
                    // The step's record says what and how; the error only points at it.
                    return Err(anyhow!("a {origin} step failed (below)"));
                }
            }
        }
        if let Some((i, w)) = span.take() {
            let steps = ph.spans[i].steps.iter().map(|s| s.to_string()).collect();
            rec.windows.push(w.close(&topo, &caps, steps, &[])?);
        }
        topo.settle()?;
        rec.timings.steps_ms = ms(t_steps.elapsed());
        let t_probes = Instant::now();
        for check in &ph.checks {
            let (mut probe, leftover, refs) = run_check(plan, &topo, &caps, &watch, check)?;
            probe.topology = Some(topo.view(&ph.ifaces.veth_pairs())?);
            rec.probes.push(probe);
            leftovers.push(leftover);
            frame_refs.push(refs);
        }
        rec.timings.probes_ms = ms(t_probes.elapsed());
        Ok(())
    })();
    // The phase ends for its actors before the captures stop, so that what
    // their ending sends is in the pcapng too.
    rec.actors = actors.stop();
    rec.actor_checks = crate::verdict::check::actors(&ph.actor_checks, &rec.actors);
    let result = match (result, whole) {
        (Ok(()), Some(w)) => {
            let known: Vec<_> = rec.probes.iter().flat_map(|p| p.drops.iter().cloned()).collect();
            w.close(&topo, &caps, vec![], &known).map(|w| rec.windows.push(w))
        }
        (r, _) => r,
    };
    let captured = stop_captures(caps, plan, ph, dir, &mut rec, &frame_refs);
    // Closed only now, so that no probe's window or capture holds their
    // closing handshakes.
    drop(leftovers);
    let result = result.and(captured);
    if let Err(e) = result {
        rec.error = Some(format!("{e:#}"));
    }
    // Global settings go back first (the host shares them), unless the
    // phase is kept: then they stay changed with its topology.
    let t = Instant::now();
    let restored = if keep { Vec::new() } else { globals.restore() };
    let took = ms(t.elapsed());
    for r in restored {
        let (ok, output) = match r {
            Ok(said) => (true, said),
            Err(e) => (false, format!("{e:#}")),
        };
        if !ok && rec.error.is_none() {
            rec.error = Some(format!("restoring a global setting: {output}"));
        }
        rec.steps.push(StepRecord {
            step: "restore global setting".into(),
            origin: "restore".into(),
            ok,
            output,
            ms: took,
        });
    }
    rec.passed = rec.error.is_none()
        && rec.probes.iter().all(|p| p.checks.iter().all(|c| c.ok))
        && rec.actor_checks.iter().all(|c| c.ok)
        && rec.windows.iter().all(|w| w.checks.iter().all(|c| c.ok));
    if keep {
        return (rec, Some(Kept { phase: ph.name.clone(), topology: topo, _watch: watch, _globals: globals }));
    }
    let t_down = Instant::now();
    drop(watch);
    drop(topo);
    rec.timings.teardown_ms = ms(t_down.elapsed());
    (rec, None)
}

/// Which captured frame each recorded frame is: per probe, per interface,
/// the frames' indices in their capture (to number them once the phase's
/// pcapng is written).
use crate::run::witness::{self, frames::FrameRefs};

/// Stops the phase's captures, writes its pcapng (the kernel's drops as
/// section comments) into the run's directory `dir`, and gives every
/// recorded frame its number in it.
fn stop_captures(
    caps: Vec<Capture>,
    plan: &Plan,
    ph: &Phase,
    dir: &OwnDir,
    rec: &mut PhaseRecord,
    refs: &[FrameRefs],
) -> Result<()> {
    if caps.is_empty() {
        return Ok(());
    }
    // Every capture is stopped, even when one fails.
    let stopped: Vec<Result<Captured>> = crate::sys::capture::stop_all(caps);
    let captured: Vec<Captured> = stopped.into_iter().collect::<Result<_>>()?;
    let mut comments = vec![format!("netrepro case {}, phase {}", plan.id(), ph.name)];
    for p in &rec.probes {
        for d in &p.drops {
            let at = if d.dev.is_empty() { d.ns.clone() } else { format!("{}/{}", d.ns, d.dev) };
            let reason = if d.reason.is_empty() { "(no reason on this kernel)" } else { &d.reason };
            comments.push(format!(
                "kernel drop in probe {} ({}): {} x {} on {at}: {reason} in {} (t_ns {}..{})",
                p.name,
                d.origin.word(),
                d.count,
                d.protocol,
                d.at,
                d.first_ns,
                d.last_ns
            ));
        }
    }
    let name = crate::evidence::frames::pcapng_name(&ph.name);
    let path = dir.join(&name);
    let streams: Vec<Stream> = captured
        .iter()
        .map(|c| Stream { name: &c.label, link: c.link, snaplen: SNAPLEN as u32, frames: &c.frames })
        .collect();
    let file = dir.create_file(&name)?;
    let numbering = crate::wire::pcapng::write(std::io::BufWriter::new(file), &streams, &comments)
        .with_context(|| format!("writing {}", path.display()))?;
    // Relative to the artifacts root, where the case's directory will be
    // once the run's directory is swapped in.
    rec.pcapng = Some(Path::new(plan.id()).join(&name));
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
    for probe in &mut rec.probes {
        crate::verdict::attribution::tie_frames(probe);
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
    let scope = witness::scope::scope(plan, spec, check);
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
        ProbeSpec::Connect { from, to, listen_in, listen_on, timeout_ms, hold, src } => {
            let l = match listen_in {
                Some(n) => Some((topo.ns(n)?, listen_on.unwrap_or(*to))),
                None => None,
            };
            let (o, keep) = probe::connect(topo.ns(from)?, *to, l, Duration::from_millis(*timeout_ms), *hold, *src)?;
            (Outcome::Connect(o), keep)
        }
        ProbeSpec::Bind { from, addr, proto, freebind, transparent, listen } => {
            let o = probe::BindOpts { proto: *proto, freebind: *freebind, transparent: *transparent, listen: *listen };
            (Outcome::Bind(probe::bind(topo.ns(from)?, *addr, o)?), probe::Leftover::default())
        }
        ProbeSpec::Udp { from, to, src, listen_in, listen_on, echo, count, size, interval_ms, wait_ms } => {
            let l = match listen_in {
                Some(n) => Some((topo.ns(n)?, listen_on.unwrap_or(*to))),
                None => None,
            };
            let o = probe::UdpOpts {
                src: *src,
                count: *count,
                size: *size,
                interval: Duration::from_millis(*interval_ms),
                wait: Duration::from_millis(*wait_ms),
                echo: *echo,
            };
            (Outcome::Udp(probe::udp(topo.ns(from)?, *to, l, o)?), probe::Leftover::default())
        }
        ProbeSpec::Dns { from, server, name, types, timeout_ms, attempts, src, rounds, send } => {
            let types = types
                .iter()
                .map(|t| match t {
                    crate::case::spec::DnsType::A => crate::wire::dns::QType::A,
                    crate::case::spec::DnsType::Aaaa => crate::wire::dns::QType::Aaaa,
                })
                .collect();
            let o = probe::DnsOpts {
                name: name.clone(),
                types,
                timeout: Duration::from_millis(*timeout_ms),
                attempts: *attempts,
                src: *src,
                rounds: *rounds,
                send: *send,
            };
            (Outcome::Dns(probe::dns(topo.ns(from)?, *server, o)?), probe::Leftover::default())
        }
        ProbeSpec::Frame { at, count, src_mac, dst_mac, arp, ip, tcp, udp } => {
            let o = probe::FrameOpts {
                count: *count,
                src_mac: src_mac.as_deref(),
                dst_mac: dst_mac.as_deref(),
                arp: arp.as_ref(),
                ip: ip.as_ref(),
                tcp: tcp.as_ref(),
                udp: udp.as_ref(),
            };
            (Outcome::Frame(probe::frame(topo.ns(&at.ns)?, &at.dev, o)?), probe::Leftover::default())
        }
        ProbeSpec::Burst { from, to, listen_in, listen_on, backlog, accept, count, timeout_ms } => {
            let o = probe::BurstOpts {
                backlog: *backlog,
                accept: *accept,
                count: *count,
                timeout: Duration::from_millis(*timeout_ms),
            };
            let at = listen_on.unwrap_or(*to);
            let (o, keep) = probe::burst(topo.ns(from)?, *to, topo.ns(listen_in)?, at, o)?;
            (Outcome::Burst(o), keep)
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
