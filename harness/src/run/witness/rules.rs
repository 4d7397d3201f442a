//! Firewall packet counters over the window, per counter source the check
//! names: `ns` or `ns (backend)` (`iptables-save -c`), `ns (nft ruleset)`
//! (`nft -j list ruleset`).

use std::collections::BTreeMap;

use anyhow::Result;

use super::Witness;
use crate::case::expect::RuleExp;
use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;
use crate::sys::firewall::{self, RuleCounters};

pub struct Rules<'a> {
    exps: &'a [RuleExp],
    before: BTreeMap<String, RuleCounters>,
}

impl<'a> Rules<'a> {
    pub fn new(exps: &'a [RuleExp]) -> Rules<'a> {
        Rules { exps, before: BTreeMap::new() }
    }

    /// Each source once, by its label, with what reads it.
    fn sources(&self) -> BTreeMap<String, (&'a str, Option<&'static str>, bool)> {
        self.exps.iter().map(|r| (r.source(), (r.ns.as_str(), r.backend.map(|b| b.word()), r.nft))).collect()
    }
}

fn read(topo: &Topology, ns: &str, backend: Option<&str>, nft: bool) -> Result<RuleCounters> {
    match nft {
        true => firewall::read_nft(topo.ns(ns)?),
        false => firewall::read(topo.ns(ns)?, backend),
    }
}

impl Witness for Rules<'_> {
    fn before(&mut self, topo: &Topology) -> Result<()> {
        for (label, (ns, backend, nft)) in self.sources() {
            self.before.insert(label, read(topo, ns, backend, nft)?);
        }
        Ok(())
    }

    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        for (label, (ns, backend, nft)) in self.sources() {
            let b = &self.before[&label];
            for (k, v) in read(topo, ns, backend, nft)? {
                let d = v as i64 - b.get(&k).copied().unwrap_or(0) as i64;
                rec.rules.insert(format!("{label}: {k}"), d);
            }
        }
        Ok(())
    }
}
