//! Ctrl-C and SIGTERM as a request to stop: the signals are blocked in every
//! thread and taken by one thread with `sigwait`, which sets a flag the
//! runner reads between phases. The run then ends as runs end: the current
//! phase's topology is dropped (its namespaces are fd-held), the evidence and
//! the report are written and the host guard checks the host.

use std::sync::atomic::{AtomicI32, Ordering};

use anyhow::{Context, Result};
use nix::sys::signal::{SigSet, Signal};

/// The first stop signal received (0: none).
static STOP: AtomicI32 = AtomicI32::new(0);

/// The exit code of a run stopped by a signal (as a shell reports Ctrl-C).
pub const STOPPED_EXIT: u8 = 130;

/// Blocks SIGINT and SIGTERM in the calling thread, and so in every thread
/// it starts from now on, and starts the thread that waits for them. Call
/// before any other thread exists, or those threads would still take the
/// signal's default action (the end of the process, with no report).
///
/// A second signal ends the process at once with [`STOPPED_EXIT`]: the
/// namespaces go with it, global settings are put back by their guardian,
/// but there is no report and no host check.
///
/// # Errors
/// The mask cannot be set or the thread cannot start.
pub fn stop_on_signals() -> Result<()> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGINT);
    set.add(Signal::SIGTERM);
    set.thread_block().context("blocking SIGINT and SIGTERM")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            let Ok(sig) = set.wait() else { continue };
            if STOP.swap(sig as i32, Ordering::SeqCst) != 0 {
                eprintln!("netrepro: {sig} again: stopping now (no report, no host check)");
                std::process::exit(i32::from(STOPPED_EXIT));
            }
            eprintln!("netrepro: {sig}: stopping after the current phase (again to stop now)");
        })
        .context("starting the signal thread")?;
    Ok(())
}

/// True once SIGINT or SIGTERM has asked the run to stop.
pub fn stop_requested() -> bool {
    STOP.load(Ordering::SeqCst) != 0
}

/// The signal that asked the run to stop, if one did.
pub fn stop_signal() -> Option<Signal> {
    Signal::try_from(STOP.load(Ordering::SeqCst)).ok()
}
