//! The neighbour tables (`ip neigh`) after the probe of the namespaces it
//! crosses ([`super::scope`]), read in all of them at once.

use std::collections::BTreeSet;

use anyhow::Result;

use super::Witness;
use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;
use crate::sys::link;

pub struct Neighbours<'a> {
    scope: &'a BTreeSet<String>,
}

impl<'a> Neighbours<'a> {
    pub fn new(scope: &'a BTreeSet<String>) -> Neighbours<'a> {
        Neighbours { scope }
    }
}

impl Witness for Neighbours<'_> {
    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        let asked = self
            .scope
            .iter()
            .map(|name| Ok((name.clone(), topo.ns(name)?.submit(|ctx| link::neighbours(ctx))?)))
            .collect::<Result<Vec<_>>>()?;
        for (name, job) in asked {
            rec.neighbours.insert(name, job.wait()??);
        }
        Ok(())
    }
}
