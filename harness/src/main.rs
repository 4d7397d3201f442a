//! `netrepro`: list, check and run incident cases. The command line is
//! parsed here (clap); each subcommand is one function calling into `app/`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, CommandFactory, Parser, Subcommand};
use netrepro::app::suite;
use netrepro::safety::hostguard::Guard;

const ENVIRONMENT: &str = "\
environment:
  NETREPRO_CASES, NETREPRO_FIXTURES   case and fixture directories (default: cases/ and fixtures/
                                      of the checkout this binary was built from, whatever the
                                      current directory: `netrepro list` prints the paths in use)
  NETREPRO_ARTIFACTS                  where pcapngs and evidence go (default: the target/netrepro
                                      beside this binary)
  NETREPRO_STATE                      kept topologies' state files (default: /run/netrepro; made 0700,
                                      refused unless yours and writable by no one else)
  NETREPRO_GLOBALS=1                  cases that change a global setting may run here

exit codes: 0 passed, 1 a case failed or the host changed, 2 a usage error (unknown flag or case,
missing directory, missing privileges), 130 stopped by SIGINT or SIGTERM; `run --tap`: 4 when
nothing passed (all skipped), as kselftest";

/// Linux container-networking incidents as tests on a real kernel.
#[derive(Parser)]
#[command(name = "netrepro", version, after_help = ENVIRONMENT, subcommand_required = true, arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Every case with its report title, fixture and URLs
    List {
        /// One JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Load and validate cases (all by default); builds nothing
    Check {
        /// Case ids (default: every case)
        #[arg(value_name = "ID")]
        ids: Vec<String>,
        /// One JSON document on stdout
        #[arg(long)]
        json: bool,
    },
    /// Write cases/ID.toml: a commented case that runs its baseline
    New {
        #[arg(value_name = "ID")]
        id: String,
        /// The fixture it builds (fixtures/NAME.toml)
        #[arg(long, value_name = "NAME", default_value = "docker-bridge")]
        fixture: String,
    },
    /// Run cases on this kernel (needs root); exit 1 on any failure, 130 when stopped by Ctrl-C
    Run(RunArgs),
    /// A shell (or CMD) inside namespace NS of kept case ID
    Shell {
        #[arg(value_name = "ID")]
        id: String,
        #[arg(value_name = "NS")]
        ns: String,
        /// The command to run instead of a shell (after `--`)
        #[arg(last = true, value_name = "CMD")]
        cmd: Vec<String>,
    },
    /// The kept topologies
    Status,
    /// End the kept topologies (all by default)
    Down {
        #[arg(value_name = "ID")]
        id: Option<String>,
    },
    /// Run the cases (all by default) N times; report every case that ever failed
    Soak {
        /// Rounds
        #[arg(value_name = "N")]
        n: u32,
        #[arg(value_name = "ID")]
        ids: Vec<String>,
    },
    /// Rebuild DIR/report.html (default: the artifacts root) from the evidence there
    Report {
        #[arg(value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// The kernel x case table of a ci/kernel-matrix run (DIR/<release>/...), also written as
    /// DIR/matrix.html, linking into each kernel's report
    Matrix {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
    /// Build + ping + teardown of docker-bridge N times, harness vs ci/bench/docker-bridge.sh;
    /// medians, ratio, peak memory
    Bench {
        #[arg(value_name = "N", default_value_t = 30)]
        n: usize,
        /// docker-bridge with this many containers (up to 500), once per
        /// side: per-container build and teardown, harness vs floor vs shell
        /// (shell up to 100); peak fds, threads, RSS
        #[arg(long, value_name = "N")]
        containers: Option<usize>,
    },
    /// The keeper of `run --keep` (internal)
    #[command(name = "__keep", hide = true)]
    Keeper {
        case: String,
        /// The phase to keep, or `-` for the last
        phase: String,
    },
    /// Shell completions on stdout
    #[command(hide = true)]
    Completions { shell: clap_complete::Shell },
    /// The man page (roff) on stdout
    #[command(hide = true)]
    Man,
}

#[derive(Args)]
struct RunArgs {
    /// Case ids
    #[arg(value_name = "ID", required_unless_present = "all", conflicts_with = "all")]
    ids: Vec<String>,
    /// Every case
    #[arg(long)]
    all: bool,
    /// Run up to --phase (default: the last phase) and leave that topology up (one case)
    #[arg(long, conflicts_with_all = ["all", "json", "tap", "junit"])]
    keep: bool,
    /// The phase to keep
    #[arg(long, value_name = "NAME", requires = "keep")]
    phase: Option<String>,
    /// One JSON document on stdout: per case the verdict, skip reason, evidence path, failure report
    #[arg(long, conflicts_with = "tap")]
    json: bool,
    /// TAP version 13 (KTAP-compatible) on stdout, phases as subtests; exit 0 pass, 1 fail, 4 all skipped
    #[arg(long)]
    tap: bool,
    /// Also write JUnit XML to FILE, skipped cases with their reasons
    #[arg(long, value_name = "FILE")]
    junit: Option<PathBuf>,
}

fn main() -> ExitCode {
    // `netrepro run ... | head` ends quietly, as other command-line tools
    // do, instead of panicking on the closed pipe.
    // SAFETY: setting a signal disposition before any thread exists.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    // Usage errors and --help end here, before anything is touched.
    let cli = Cli::parse();
    // A namespace holds an fd while it lives: allow as many as the system does.
    netrepro::sys::rlimit::raise_nofile();
    // As a normal user: root of a private user namespace, before any thread
    // exists; if that is not allowed, `prepare` says what is needed.
    // `status`, `down` and `shell` act on keepers as the caller: inside a
    // private user namespace another user's process and files would show
    // the overflow uid, and "who owns this keeper" would be a lie.
    if !matches!(cli.command, Cmd::Status | Cmd::Down { .. } | Cmd::Shell { .. }) {
        let _ = netrepro::sys::netns::become_userns_root();
    }
    match cli.command {
        Cmd::List { json } => list(json),
        Cmd::Check { ids, json } => check(&ids, json),
        Cmd::New { id, fixture } => new(&id, &fixture),
        Cmd::Run(a) if a.keep => keep(&a.ids, a.phase.as_deref()),
        Cmd::Run(a) => run(a),
        Cmd::Shell { id, ns, cmd } => shell(&id, &ns, &cmd),
        Cmd::Status => status(),
        Cmd::Down { id } => down(id.as_deref()),
        Cmd::Soak { n, ids } => soak(n, &ids),
        Cmd::Report { dir } => report(dir),
        Cmd::Matrix { dir } => matrix(&dir),
        Cmd::Bench { n, containers } => bench(n, containers),
        Cmd::Keeper { case, phase } => keeper(&case, &phase),
        Cmd::Completions { shell } => {
            clap_complete::generate(shell, &mut Cli::command(), "netrepro", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Cmd::Man => match clap_mangen::Man::new(Cli::command()).render(&mut std::io::stdout()) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("man: {e}");
                ExitCode::FAILURE
            }
        },
    }
}

type Loaded = Vec<(String, Result<netrepro::case::plan::Plan, netrepro::case::plan::LoadError>)>;

/// The case files, or exit 2 naming a cases or fixtures directory that is
/// missing, not a directory, or holds no case.
fn discover() -> Result<Loaded, ExitCode> {
    suite::discover(&suite::cases_dir(), &suite::fixtures_dir()).map_err(|e| {
        eprintln!("{e:#}");
        ExitCode::from(2)
    })
}

/// A usage error of subcommand `sub`: said as clap says its own, exit 2.
fn usage(sub: &str, kind: clap::error::ErrorKind, msg: impl std::fmt::Display) -> ExitCode {
    let mut cli = Cli::command();
    cli.build();
    let err = match cli.find_subcommand_mut(sub) {
        Some(c) => c.error(kind, msg),
        None => cli.error(kind, msg),
    };
    let _ = err.print();
    ExitCode::from(2)
}

/// Exit 2 naming every wanted id no case file has.
fn known(sub: &str, cases: &Loaded, wanted: &[String]) -> Result<(), ExitCode> {
    let unknown = netrepro::app::catalog::unknown(cases, wanted);
    if unknown.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = unknown.iter().map(|u| format!("{u:?}")).collect();
    Err(usage(
        sub,
        clap::error::ErrorKind::InvalidValue,
        format!(
            "no case{} {} in {}; `netrepro list` shows them",
            if names.len() > 1 { "s" } else { "" },
            names.join(", "),
            suite::cases_dir().display()
        ),
    ))
}

fn print_or_fail(text: anyhow::Result<String>) -> ExitCode {
    match text {
        Ok(t) => {
            print!("{t}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn list(json: bool) -> ExitCode {
    let cases = match discover() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if !json {
        eprintln!(
            "netrepro: cases {}, fixtures {}, artifacts {}",
            suite::cases_dir().display(),
            suite::fixtures_dir().display(),
            netrepro::evidence::record::artifacts_root().display()
        );
    }
    print_or_fail(netrepro::app::catalog::list(&cases, json))
}

fn check(ids: &[String], json: bool) -> ExitCode {
    let cases = match discover() {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Err(code) = known("check", &cases, ids) {
        return code;
    }
    match netrepro::app::catalog::check(&cases, ids, json) {
        Ok((text, all_ok)) => {
            print!("{text}");
            if all_ok {
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

fn new(id: &str, fixture: &str) -> ExitCode {
    match netrepro::app::catalog::new_case(&suite::cases_dir(), &suite::fixtures_dir(), id, fixture) {
        Ok(path) => {
            println!("wrote {}: fill in the TODOs; `netrepro check {id}` validates it", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}

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

/// The loaded plans of the wanted cases (all when none is named).
fn chosen(sub: &str, wanted: &[String], cases: Loaded) -> Result<Vec<netrepro::case::plan::Plan>, ExitCode> {
    known(sub, &cases, wanted)?;
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

fn run(a: RunArgs) -> ExitCode {
    // Ctrl-C and SIGTERM stop the run between phases. Before any thread
    // exists (the privilege check starts one), so every thread blocks them.
    if let Err(e) = netrepro::sys::signals::stop_on_signals() {
        eprintln!("{e:#}");
        return ExitCode::FAILURE;
    }
    let plans = match discover().and_then(|cases| chosen("run", if a.all { &[] } else { &a.ids }, cases)) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let guard = match prepare() {
        Ok(g) => g,
        Err(code) => return code,
    };
    use netrepro::app::run::{Format, Options};
    let format = match (a.json, a.tap) {
        (true, _) => Format::Json,
        (_, true) => Format::Tap,
        _ => Format::Lines,
    };
    ExitCode::from(netrepro::app::run::run(&plans, &Options { format, junit: a.junit }, guard))
}

/// `run ID --keep [--phase NAME]`.
fn keep(ids: &[String], phase: Option<&str>) -> ExitCode {
    if ids.len() != 1 {
        return usage(
            "run",
            clap::error::ErrorKind::WrongNumberOfValues,
            "run --keep takes one case: netrepro run ID --keep [--phase NAME]",
        );
    }
    if let Err(code) = discover().and_then(|cases| known("run", &cases, ids)) {
        return code;
    }
    if let Some(p) = netrepro::app::preflight::privilege_problem() {
        eprintln!("{p}");
        return ExitCode::from(2);
    }
    if !nix::unistd::geteuid().is_root() || netrepro::sys::netns::rootless() {
        eprintln!("--keep needs root: a kept topology must outlive this process, and `shell` must reach it");
        return ExitCode::from(2);
    }
    match netrepro::app::keep::start(&ids[0], phase) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}

/// `__keep CASE PHASE|-`: the keeper `run --keep` starts.
fn keeper(case: &str, phase: &str) -> ExitCode {
    let plans = match discover().and_then(|cases| chosen("__keep", &[case.to_string()], cases)) {
        Ok(p) => p,
        Err(code) => return code,
    };
    let phase = (phase != "-").then_some(phase);
    match netrepro::app::keep::keeper(&plans[0], phase) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            println!("{e:#}");
            ExitCode::from(2)
        }
    }
}

fn shell(id: &str, ns: &str, cmd: &[String]) -> ExitCode {
    match netrepro::app::keep::shell(&netrepro::app::keep::state_dir(), id, ns, cmd) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(2)
        }
    }
}

fn status() -> ExitCode {
    match netrepro::app::keep::status(&netrepro::app::keep::state_dir()) {
        Ok(s) => {
            print!("{s}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn down(id: Option<&str>) -> ExitCode {
    match netrepro::app::keep::down(&netrepro::app::keep::state_dir(), id) {
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

/// An existing directory, or exit 2 naming it.
fn existing_dir(sub: &str, dir: &Path) -> Result<(), ExitCode> {
    if dir.is_dir() {
        return Ok(());
    }
    let why = if dir.exists() { "not a directory" } else { "no such directory" };
    Err(usage(sub, clap::error::ErrorKind::InvalidValue, format!("{}: {why}", dir.display())))
}

fn report(dir: Option<PathBuf>) -> ExitCode {
    let root = dir.unwrap_or_else(netrepro::evidence::record::artifacts_root);
    if let Err(code) = existing_dir("report", &root) {
        return code;
    }
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

fn matrix(dir: &Path) -> ExitCode {
    if let Err(code) = existing_dir("matrix", dir) {
        return code;
    }
    let runs = netrepro::render::matrix::load(dir);
    if runs.is_empty() {
        eprintln!("no kernel results under {}", dir.display());
        return ExitCode::from(2);
    }
    print!("{}", netrepro::render::matrix::table(&runs));
    let html = dir.join("matrix.html");
    if let Err(e) = std::fs::write(&html, netrepro::render::matrix::matrix_html(&runs)) {
        eprintln!("writing {}: {e}", html.display());
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn bench(n: usize, containers: Option<usize>) -> ExitCode {
    use netrepro::app::bench::{Args, MAX_CONTAINERS};
    let what = match containers {
        None => Args::Rounds(n),
        Some(c) if (1..=MAX_CONTAINERS).contains(&c) => Args::Containers(c),
        Some(c) => {
            eprintln!("bench: --containers takes 1 to {MAX_CONTAINERS}, not {c}");
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
            guard.exit_code(true)
        }
        Err(e) => {
            eprintln!("bench: {e:#}");
            guard.exit_code(false)
        }
    }
}

/// Runs the chosen cases `n` times in a row and tallies failures per case.
fn soak(n: u32, ids: &[String]) -> ExitCode {
    match discover() {
        Ok(cases) => netrepro::app::soak::command(n, ids, cases),
        Err(code) => code,
    }
}
