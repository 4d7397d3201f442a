//! `netrepro`: list, check and run incident cases.

use std::process::ExitCode;

use netrepro::app::suite::{self, Verdict};
use netrepro::safety::hostguard::Guard;

const USAGE: &str = "\
netrepro — Linux container-networking incidents as tests on a real kernel

usage:
  netrepro list                 every case with its report title and URLs
  netrepro check [ID...]        load and validate cases (all by default); builds nothing
  netrepro new ID [--fixture NAME]  write cases/ID.toml: a commented case that runs its baseline
  netrepro run ID... | --all    run cases on this kernel (needs root); exit 1 on any failure
  netrepro run ID --keep [--phase NAME]
                                run up to NAME (default: the last phase) and leave that topology up
  netrepro shell ID NS [-- CMD...]  a shell (or CMD) inside namespace NS of kept case ID
  netrepro status               the kept topologies
  netrepro down [ID]            end the kept topologies (all by default)
  netrepro soak N [ID...]       run the cases (all by default) N times; report every case that ever failed
  netrepro report [DIR]         rebuild DIR/report.html (default: the artifacts root) from the evidence there
  netrepro matrix DIR           the kernel x case table of a ci/kernel-matrix run (DIR/<release>/...),
                                also written as DIR/matrix.html, linking into each kernel's report
  netrepro bench [N]            build + ping + teardown of docker-bridge N times (default 30): the harness,
                                the floor (raw netlink) and ci/bench/docker-bridge.sh; medians, ratios, memory
  netrepro bench --containers N docker-bridge with N containers (up to 500): per-container build and teardown,
                                harness vs floor vs shell (shell up to 100); peak fds, threads, RSS

environment:
  NETREPRO_CASES, NETREPRO_FIXTURES   case and fixture directories (default: the repository's)
  NETREPRO_ARTIFACTS                  where pcapngs and evidence go (default: target/netrepro)
  NETREPRO_STATE                      kept topologies' state files (default: /run/netrepro; made 0700,
                                      refused unless yours and writable by no one else)";

/// Running as root of a private user namespace (not real root).
static ROOTLESS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn main() -> ExitCode {
    // As a normal user: root of a private user namespace, before any thread
    // exists; if that is not allowed, `prepare` says what is needed.
    // `netrepro run ... | head` ends quietly, as other command-line tools
    // do, instead of panicking on the closed pipe.
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // A namespace holds an fd while it lives: allow as many as the system does.
    netrepro::sys::rlimit::raise_nofile();
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `status`, `down` and `shell` act on keepers as the caller: inside a
    // private user namespace another user's process and files would show
    // the overflow uid, and "who owns this keeper" would be a lie.
    if !matches!(args.first().map(String::as_str), Some("status" | "down" | "shell")) {
        let rootless = netrepro::sys::netns::become_userns_root();
        ROOTLESS.store(matches!(rootless, Ok(true)), std::sync::atomic::Ordering::Relaxed);
    }
    let cases = suite::discover(&suite::cases_dir(), &suite::fixtures_dir());
    match args.first().map(String::as_str) {
        Some("list") => {
            for (id, loaded) in &cases {
                match loaded {
                    Ok(p) => {
                        println!("{id}\n    {}\n    fixture: {}", p.case.title, p.case.fixture.get_ref());
                        for u in p.urls() {
                            println!("    {u}");
                        }
                    }
                    Err(e) => println!("{id}\n    INVALID: {e}"),
                }
            }
            ExitCode::SUCCESS
        }
        Some("check") => {
            let wanted = &args[1..];
            let mut bad = 0;
            for (id, loaded) in cases.iter().filter(|(id, _)| wanted.is_empty() || wanted.contains(id)) {
                match loaded {
                    Ok(p) => println!("ok      {id} ({} phases, fixture {})", p.phases.len(), p.case.fixture.get_ref()),
                    Err(e) => {
                        bad += 1;
                        println!("INVALID {e}");
                    }
                }
            }
            if bad > 0 {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            }
        }
        Some("run") if args.iter().any(|a| a == "--keep" || a == "--phase") => keep(&args[1..], cases),
        Some("run") if args.len() > 1 => run(&args[1..], cases),
        Some("__keep") if args.len() == 3 => {
            let plans = match chosen(&args[1..2], cases) {
                Ok(p) => p,
                Err(code) => return code,
            };
            let phase = (args[2] != "-").then_some(args[2].as_str());
            match netrepro::app::keep::keeper(&plans[0], phase) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    println!("{e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Some("shell") if args.len() >= 3 && (args.len() == 3 || args[3] == "--") => {
            let argv = if args.len() > 4 { &args[4..] } else { &[] };
            match netrepro::app::keep::shell(&netrepro::app::keep::state_dir(), &args[1], &args[2], argv) {
                Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
                Err(e) => {
                    eprintln!("{e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Some("status") => match netrepro::app::keep::status(&netrepro::app::keep::state_dir()) {
            Ok(s) => {
                print!("{s}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e:#}");
                ExitCode::FAILURE
            }
        },
        Some("down") if args.len() <= 2 => {
            match netrepro::app::keep::down(&netrepro::app::keep::state_dir(), args.get(1).map(String::as_str)) {
                Ok(d) if d.ended.is_empty() && d.refused.is_empty() => {
                    println!("nothing kept");
                    ExitCode::SUCCESS
                }
                Ok(d) => {
                    for e in &d.ended {
                        println!("down: {e}");
                    }
                    for r in &d.refused {
                        eprintln!("down: {r}");
                    }
                    if d.refused.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::FAILURE
                    }
                }
                Err(e) => {
                    eprintln!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("soak") if args.len() >= 2 => soak(&args[1..], cases),
        Some("new") if args.len() == 2 || (args.len() == 4 && args[2] == "--fixture") => {
            let id = &args[1];
            let fixture = args.get(3).map(String::as_str).unwrap_or("docker-bridge");
            let path = suite::cases_dir().join(format!("{id}.toml"));
            if path.exists() {
                eprintln!("{} exists already", path.display());
                return ExitCode::from(2);
            }
            let fx = match netrepro::case::plan::load_fixture(&suite::fixtures_dir().join(format!("{fixture}.toml"))) {
                Ok(f) => f,
                Err(e) => {
                    eprintln!("{e}");
                    return ExitCode::from(2);
                }
            };
            match netrepro::case::scaffold::case_text(id, fixture, &fx).and_then(|t| Ok(std::fs::write(&path, t)?)) {
                Ok(()) => {
                    println!("wrote {}: fill in the TODOs; `netrepro check {id}` validates it", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e:#}");
                    ExitCode::from(2)
                }
            }
        }
        Some("bench") => bench(&args[1..]),
        Some("report") if args.len() <= 2 => {
            let root =
                args.get(1).map(std::path::PathBuf::from).unwrap_or_else(netrepro::evidence::record::artifacts_root);
            match netrepro::render::report::write(&root) {
                Ok(p) => {
                    println!("{}", p.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("matrix") if args.len() == 2 => {
            let runs = netrepro::render::matrix::load(std::path::Path::new(&args[1]));
            if runs.is_empty() {
                eprintln!("no kernel results under {}", args[1]);
                return ExitCode::from(2);
            }
            print!("{}", netrepro::render::matrix::table(&runs));
            let html = std::path::Path::new(&args[1]).join("matrix.html");
            if let Err(e) = std::fs::write(&html, netrepro::render::matrix::matrix_html(&runs)) {
                eprintln!("writing {}: {e}", html.display());
                return ExitCode::FAILURE;
            }
            ExitCode::SUCCESS
        }
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{USAGE}");
            ExitCode::from(2)
        }
    }
}

type Loaded = Vec<(String, Result<netrepro::case::plan::Plan, netrepro::case::plan::LoadError>)>;

/// What every command that builds topologies does first: check the
/// privileges (one line if missing) and snapshot the host.
fn prepare() -> Result<Guard, ExitCode> {
    if let Some(p) = netrepro::app::preflight::privilege_problem() {
        eprintln!("{p}");
        return Err(ExitCode::from(2));
    }
    Guard::start().map_err(|e| {
        eprintln!("{e:#}");
        ExitCode::FAILURE
    })
}

/// The guard's verdict, folded into the command's.
fn finish(guard: Guard, ok: bool) -> ExitCode {
    match guard.check() {
        Err(report) => {
            eprintln!("{report}");
            ExitCode::FAILURE
        }
        Ok(()) if ok => ExitCode::SUCCESS,
        Ok(()) => ExitCode::FAILURE,
    }
}

fn bench(args: &[String]) -> ExitCode {
    let what = match netrepro::app::bench::Args::parse(args) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let guard = match prepare() {
        Ok(g) => g,
        Err(code) => return code,
    };
    let script = suite::fixtures_dir().join("../ci/bench/docker-bridge.sh");
    match netrepro::app::bench::command(what, &suite::fixtures_dir(), &script) {
        Ok(out) => {
            print!("{out}");
            finish(guard, true)
        }
        Err(e) => {
            eprintln!("bench: {e:#}");
            finish(guard, false)
        }
    }
}

/// The loaded plans of the wanted cases (all when none is named).
fn chosen(wanted: &[String], cases: Loaded) -> Result<Vec<netrepro::case::plan::Plan>, ExitCode> {
    for w in wanted {
        if !cases.iter().any(|(id, _)| id == w) {
            eprintln!("no case {w:?}; `netrepro list` shows them");
            return Err(ExitCode::from(2));
        }
    }
    let mut plans = Vec::new();
    for (_, loaded) in cases.into_iter().filter(|(id, _)| wanted.is_empty() || wanted.contains(id)) {
        match loaded {
            Ok(p) => plans.push(p),
            Err(e) => {
                eprintln!("INVALID {e}");
                return Err(ExitCode::FAILURE);
            }
        }
    }
    Ok(plans)
}

/// Runs the chosen cases `n` times in a row and tallies failures per case.
fn soak(args: &[String], cases: Loaded) -> ExitCode {
    let Ok(n) = args[0].parse::<u32>() else {
        eprintln!("soak: {:?} is not a number of runs", args[0]);
        return ExitCode::from(2);
    };
    let plans = match chosen(&args[1..], cases) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let guard = match prepare() {
        Ok(g) => g,
        Err(code) => return code,
    };
    let started = std::time::Instant::now();
    let mut failures: std::collections::BTreeMap<String, Vec<(u32, String)>> = Default::default();
    let (mut passed, mut skipped) = (0, 0);
    for i in 1..=n {
        for p in &plans {
            let verdict = match suite::run(p) {
                Verdict::Fail(report) => {
                    failures.entry(p.id().to_string()).or_default().push((i, report));
                    "FAIL"
                }
                Verdict::Pass(_) => {
                    passed += 1;
                    "pass"
                }
                Verdict::Skip(_) => {
                    skipped += 1;
                    "skip"
                }
            };
            let failed: usize = failures.values().map(Vec::len).sum();
            eprintln!(
                "soak: run {i}/{n} · {} {verdict} · {:.0} s · so far {passed} passed, {failed} failed, {skipped} skipped",
                p.id(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    for (id, f) in &failures {
        println!(
            "FLAKY {id}: failed in {} of {n} runs (runs {:?})",
            f.len(),
            f.iter().map(|x| x.0).collect::<Vec<_>>()
        );
        println!("{}", f[0].1);
    }
    println!(
        "soak: {n} runs x {} cases in {:.0} s: {} failures",
        plans.len(),
        started.elapsed().as_secs_f64(),
        failures.values().map(Vec::len).sum::<usize>()
    );
    finish(guard, failures.is_empty())
}

/// `run ID --keep [--phase NAME]`.
fn keep(args: &[String], cases: Loaded) -> ExitCode {
    let (mut ids, mut phase, mut keep) = (Vec::new(), None, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--keep" => keep = true,
            "--phase" => phase = it.next().cloned(),
            _ => ids.push(a.clone()),
        }
    }
    if !keep || ids.len() != 1 || (args.iter().any(|a| a == "--phase") && phase.is_none()) {
        eprintln!("usage: netrepro run ID --keep [--phase NAME] (one case; --phase goes with --keep)");
        return ExitCode::from(2);
    }
    if let Err(code) = chosen(&ids, cases) {
        return code;
    }
    if let Some(p) = netrepro::app::preflight::privilege_problem() {
        eprintln!("{p}");
        return ExitCode::from(2);
    }
    if !nix::unistd::geteuid().is_root() || ROOTLESS.load(std::sync::atomic::Ordering::Relaxed) {
        eprintln!("--keep needs root: a kept topology must outlive this process, and `shell` must reach it");
        return ExitCode::from(2);
    }
    match netrepro::app::keep::start(&ids[0], phase.as_deref()) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(wanted: &[String], cases: Loaded) -> ExitCode {
    let all = wanted.iter().any(|w| w == "--all");
    let named: Vec<String> = wanted.iter().filter(|w| *w != "--all").cloned().collect();
    if !all && named.is_empty() {
        eprintln!("{USAGE}");
        return ExitCode::from(2);
    }
    let plans = match chosen(if all { &[] } else { &named }, cases) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let guard = match prepare() {
        Ok(g) => g,
        Err(code) => return code,
    };
    let mut failed = 0;
    for plan in &plans {
        let id = plan.id();
        match suite::run(plan) {
            Verdict::Pass(s) => println!("PASS {id}: {s}"),
            Verdict::Skip(s) => println!("SKIP {id}: {s}"),
            Verdict::Fail(report) => {
                failed += 1;
                println!("FAIL {id}\n{report}");
            }
        }
    }
    match netrepro::render::report::write(&netrepro::evidence::record::artifacts_root()) {
        Ok(p) => println!("report: {}", p.display()),
        Err(e) => eprintln!("writing the report: {e:#}"),
    }
    finish(guard, failed == 0)
}
