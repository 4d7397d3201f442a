//! Link settings read back after the probe (`ip -d link show`, over netlink)
//! for each interface a check names.

use anyhow::Result;

use super::Witness;
use crate::case::expect::LinkExp;
use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;
use crate::sys::link;

pub struct Links<'a> {
    exps: &'a [LinkExp],
}

impl<'a> Links<'a> {
    pub fn new(exps: &'a [LinkExp]) -> Links<'a> {
        Links { exps }
    }
}

impl Witness for Links<'_> {
    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        for l in self.exps {
            let dev = l.at.dev.clone();
            let c = topo.ns(&l.at.ns)?.run(move |ctx| link::link_counters(ctx, &dev))??;
            rec.links.insert(l.at.to_string(), c.into_iter().collect());
        }
        Ok(())
    }
}
