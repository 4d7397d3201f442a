//! Counter deltas over the window in every namespace (`/proc/net/snmp`,
//! `netstat`, conntrack stats), and which expected counters the kernel lacks.

use std::collections::BTreeMap;

use anyhow::Result;

use super::Witness;
use crate::case::expect::CounterExp;
use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;
use crate::sys::counters;

pub struct Counters<'a> {
    exps: &'a [CounterExp],
    before: BTreeMap<String, counters::Counters>,
}

impl<'a> Counters<'a> {
    pub fn new(exps: &'a [CounterExp]) -> Counters<'a> {
        Counters { exps, before: BTreeMap::new() }
    }
}

/// Every namespace's counters, each read on its own thread.
fn snapshot(topo: &Topology) -> Result<BTreeMap<String, counters::Counters>> {
    topo.namespaces.iter().map(|(name, ns)| Ok((name.clone(), ns.run(|_| counters::read_thread_ns())??))).collect()
}

impl Witness for Counters<'_> {
    fn before(&mut self, topo: &Topology) -> Result<()> {
        self.before = snapshot(topo)?;
        Ok(())
    }

    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        let after = snapshot(topo)?;
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
