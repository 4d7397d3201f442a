//! Every namespace's neighbour table after the probe (`ip neigh`).

use anyhow::Result;

use super::Witness;
use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;
use crate::sys::link;

pub struct Neighbours;

impl Witness for Neighbours {
    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        for (name, ns) in &topo.namespaces {
            rec.neighbours.insert(name.clone(), ns.run(|ctx| link::neighbours(ctx))??);
        }
        Ok(())
    }
}
