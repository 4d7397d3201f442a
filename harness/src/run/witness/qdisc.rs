//! The root qdisc of each interface a check names, and its drops over the
//! window (`tc -s qdisc show dev X root`, over netlink).

use anyhow::Result;

use super::Witness;
use crate::case::expect::QdiscExp;
use crate::case::spec::Iface;
use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;
use crate::sys::tc::{self, QdiscInfo};

pub struct Qdiscs<'a> {
    exps: &'a [QdiscExp],
    before: Vec<QdiscInfo>,
}

impl<'a> Qdiscs<'a> {
    pub fn new(exps: &'a [QdiscExp]) -> Qdiscs<'a> {
        Qdiscs { exps, before: vec![] }
    }
}

fn root(topo: &Topology, at: &Iface) -> Result<QdiscInfo> {
    let dev = at.dev.clone();
    topo.ns(&at.ns)?.run(move |ctx| tc::root_qdisc(ctx, &dev))?
}

impl Witness for Qdiscs<'_> {
    fn before(&mut self, topo: &Topology) -> Result<()> {
        self.before = self.exps.iter().map(|q| root(topo, &q.at)).collect::<Result<_>>()?;
        Ok(())
    }

    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        for (q, b) in self.exps.iter().zip(&self.before) {
            let after = root(topo, &q.at)?;
            rec.qdisc_drops.insert(q.at.to_string(), after.drops as i64 - b.drops as i64);
            rec.qdiscs.insert(q.at.to_string(), after);
        }
        Ok(())
    }
}
