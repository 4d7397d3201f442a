//! Counter deltas over the window in the probe's namespaces (`/proc/net/snmp`,
//! `netstat`, conntrack stats), read in all of them at once, and which
//! expected counters the kernel lacks.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::Result;

use super::Witness;
use crate::case::expect::CounterExp;
use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;
use crate::sys::counters;

pub struct Counters<'a> {
    exps: &'a [CounterExp],
    scope: BTreeSet<String>,
    before: BTreeMap<String, counters::Counters>,
}

impl<'a> Counters<'a> {
    pub fn new(exps: &'a [CounterExp], scope: &BTreeSet<String>) -> Counters<'a> {
        Counters { exps, scope: scope.clone(), before: BTreeMap::new() }
    }
}

/// The counters of the namespaces in `scope`, each read on its own thread,
/// all at once.
fn snapshot(topo: &Topology, scope: &BTreeSet<String>) -> Result<BTreeMap<String, counters::Counters>> {
    let asked = scope
        .iter()
        .map(|name| Ok((name.clone(), topo.ns(name)?.submit(|_| counters::read_thread_ns())?)))
        .collect::<Result<Vec<_>>>()?;
    asked.into_iter().map(|(name, job)| Ok((name, job.wait()??))).collect()
}

impl Witness for Counters<'_> {
    fn before(&mut self, topo: &Topology) -> Result<()> {
        self.before = snapshot(topo, &self.scope)?;
        Ok(())
    }

    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        let after = snapshot(topo, &self.scope)?;
        rec.counter_deltas =
            self.before.iter().map(|(ns, b)| (ns.clone(), counters::delta(b, after.get(ns).unwrap_or(b)))).collect();
        for c in self.exps {
            if !after.get(&c.ns).is_some_and(|a| a.contains_key(&c.key)) {
                rec.counters_absent.entry(c.ns.clone()).or_default().push(c.key.clone());
            }
        }
        Ok(())
    }
}
