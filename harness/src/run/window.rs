//! Windows with no probe: the whole phase (`expect_phase`) and a named span
//! of steps (`[[phase.span]]`). Opened before what they observe and closed
//! after it, read by the same witnesses as a probe's window (drops,
//! counters, rules, conntrack) plus the frames the captures saw, and judged
//! by the same judges; recorded as a [`WindowRecord`].

use std::time::Duration;

use anyhow::Result;

use crate::case::plan::Check;
use crate::case::spec::ProbeSpec;
use crate::evidence::outcome::{BindOutcome, Outcome};
use crate::evidence::record::{ProbeRecord, WindowRecord};
use crate::run::topology::Topology;
use crate::run::witness::{self, Witness};
use crate::sys::capture::Capture;
use crate::sys::clock::now_ns;
use crate::sys::drops::Watch;

/// How long a capture may take to read what the kernel queued before the
/// window closed.
const SYNC: Duration = Duration::from_secs(2);

/// A window opened: its witnesses have read their `before`.
pub struct Open<'a> {
    check: &'a Check,
    witnesses: Vec<Box<dyn Witness + 'a>>,
    t0: u64,
}

impl<'a> Open<'a> {
    /// Opens the window of `check` now.
    ///
    /// # Errors
    /// A witness could not read its base (a namespace's counters, a ruleset).
    pub fn new(check: &'a Check, watch: &'a Watch, topo: &Topology) -> Result<Open<'a>> {
        // A window has no path to narrow to: every namespace's counters.
        let all = topo.namespaces.keys().cloned().collect();
        let mut witnesses = witness::for_window(check, watch, &all);
        for w in &mut witnesses {
            w.before(topo)?;
        }
        Ok(Open { check, witnesses, t0: now_ns() })
    }

    /// Closes it now: what the kernel did in it, judged. `steps` are the
    /// steps it wrapped, as written; `known` the drops probes inside it
    /// recorded, with their labels
    /// ([`crate::verdict::attribution::relabel_known`]).
    ///
    /// # Errors
    /// A capture did not catch up within 2 s, or a witness could not read.
    pub fn close(
        mut self,
        topo: &Topology,
        caps: &[Capture],
        steps: Vec<String>,
        known: &[crate::sys::drops::Drop],
    ) -> Result<WindowRecord> {
        let t1 = now_ns();
        // A record with no probe for the witnesses and judges to fill; only
        // its observations are kept (WindowRecord::of), not this spec and
        // outcome, which nothing reads.
        let spec = ProbeSpec::Bind {
            from: String::new(),
            addr: ([0, 0, 0, 0], 0).into(),
            proto: Default::default(),
            freebind: false,
            transparent: false,
            listen: false,
        };
        let none = Outcome::Bind(BindOutcome { result: String::new(), failed: String::new(), elapsed_ms: 0.0 });
        let mut rec = ProbeRecord::new(&self.check.probe, spec, none, (self.t0, t1));
        for c in caps {
            c.sync(t1, SYNC)?;
            let frames = c.window(self.t0, t1);
            rec.packet_counts.extend(witness::frames::count(&self.check.packets, &c.label, &frames, &rec.vars));
        }
        for w in &mut self.witnesses {
            w.after(topo, &mut rec)?;
        }
        rec.drops = crate::verdict::attribution::relabel_known(std::mem::take(&mut rec.drops), known);
        rec.checks = crate::verdict::check::evaluate_window(self.check, &rec, crate::sys::drops::support());
        // Each check says which window it is over.
        let name = &self.check.probe;
        let over = if name == "phase" { "phase".to_string() } else { format!("span {name}") };
        for c in &mut rec.checks {
            c.what = format!("{over}: {}", c.what);
        }
        let mut w = WindowRecord::of(&self.check.probe, steps, rec);
        w.why = crate::verdict::explain::why_window(&w);
        Ok(w)
    }
}
