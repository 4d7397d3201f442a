//! Actors: processes that run through a phase in one of its namespaces —
//! built-ins (threads of the harness: UDP echo and sink, a DNS responder,
//! a TCP server, an IPv6 RA sender) and literal command lines. Each starts
//! after the setup steps, is ready before the phase's steps run, and ends
//! when the phase ends however it ends: built-ins are stopped and joined
//! (and die with the process), commands run in a PID namespace of their own
//! whose init is killed and reaped (and dies with the harness), which takes
//! every process they started, daemons included.

mod builtin;
mod command;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::Result;

use crate::case::spec::ActorSpec;
use crate::evidence::record::ActorRecord;
use crate::run::topology::Topology;

/// Counters an actor keeps, shared with its thread.
pub type Tally = Arc<Mutex<BTreeMap<String, i64>>>;

pub(crate) fn bump(t: &Tally, key: &str) {
    if let Ok(mut m) = t.lock() {
        *m.entry(key.to_string()).or_insert(0) += 1;
    }
}

enum Running {
    Thread { stop: Arc<AtomicBool>, thread: Option<std::thread::JoinHandle<()>> },
    Command(command::Child),
    Failed,
}

struct Actor {
    rec: ActorRecord,
    tally: Tally,
    running: Running,
}

/// The actors of one phase; dropping it ends them all.
#[derive(Default)]
pub struct Actors(Vec<Actor>);

impl Actors {
    /// Starts every actor and waits until each is ready. An actor that
    /// cannot start is recorded with its error, and returned as the error of
    /// the phase after the others are started (so every one is ended).
    pub fn start(specs: &[(String, ActorSpec)], topo: &Topology) -> (Actors, Result<()>) {
        let mut all = Actors::default();
        let mut first_err = Ok(());
        for (name, spec) in specs {
            let tally: Tally = Arc::new(Mutex::new(spec.counters().iter().map(|c| (c.to_string(), 0)).collect()));
            let mut rec = ActorRecord {
                name: name.clone(),
                ns: spec.ns().into(),
                kind: spec.kind().into(),
                run: match spec {
                    ActorSpec::Command { run, .. } => Some(run.clone()),
                    _ => None,
                },
                ready_ms: None,
                started_ns: crate::sys::clock::now_ns(),
                ended_ns: 0,
                counters: BTreeMap::new(),
                end: "never started".into(),
                stdout: String::new(),
                stderr: String::new(),
                error: None,
            };
            let t0 = Instant::now();
            let started = topo.ns(spec.ns()).and_then(|ns| match spec {
                ActorSpec::Command { run, ready_listening, ready_timeout_ms, .. } => {
                    command::Child::start(ns, &topo.names(), run, ready_listening.as_deref(), *ready_timeout_ms)
                        .map(Running::Command)
                }
                _ => {
                    let stop = Arc::new(AtomicBool::new(false));
                    builtin::start(ns, spec, stop.clone(), tally.clone())
                        .map(|t| Running::Thread { stop, thread: Some(t) })
                }
            });
            let running = match started {
                Ok(r) => {
                    rec.ready_ms = Some((t0.elapsed().as_secs_f64() * 1e6).round() / 1e3);
                    r
                }
                Err(e) => {
                    rec.error = Some(format!("{e:#}"));
                    if first_err.is_ok() {
                        first_err = Err(anyhow::anyhow!("actor {name:?} did not start: {e:#}"));
                    }
                    Running::Failed
                }
            };
            all.0.push(Actor { rec, tally, running });
        }
        (all, first_err)
    }

    /// Ends every actor and gives back what each did.
    pub fn stop(mut self) -> Vec<ActorRecord> {
        std::mem::take(&mut self.0).into_iter().map(end).collect()
    }
}

fn end(mut a: Actor) -> ActorRecord {
    match std::mem::replace(&mut a.running, Running::Failed) {
        Running::Thread { stop, mut thread } => {
            stop.store(true, Ordering::Release);
            if let Some(t) = thread.take() {
                let _ = t.join();
            }
            a.rec.end = "stopped at phase end".into();
        }
        Running::Command(c) => {
            let ended = c.end();
            if let Ok(mut m) = a.tally.lock() {
                m.insert("exited".into(), i64::from(ended.exited));
                m.insert("exit_code".into(), ended.code.unwrap_or(-1).into());
            }
            a.rec.end = ended.how;
            a.rec.ended_ns = ended.ended_ns;
            a.rec.stdout = ended.stdout;
            a.rec.stderr = ended.stderr;
        }
        Running::Failed => {}
    }
    a.rec.counters = a.tally.lock().map(|m| m.clone()).unwrap_or_default();
    if a.rec.ended_ns == 0 {
        a.rec.ended_ns = crate::sys::clock::now_ns();
    }
    a.rec
}

impl Drop for Actors {
    fn drop(&mut self) {
        for a in std::mem::take(&mut self.0) {
            end(a);
        }
    }
}
