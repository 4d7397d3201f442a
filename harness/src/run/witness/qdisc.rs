//! The qdisc each check names (the root, or one by handle), read back after
//! the probe with its options, and its drops, overlimits, requeues and
//! packets over the window (`tc -s qdisc show dev X`, over netlink).

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

fn read(topo: &Topology, at: &Iface, handle: &Option<String>) -> Result<QdiscInfo> {
    let (dev, h) = (at.dev.clone(), handle.clone());
    topo.ns(&at.ns)?.run(move |ctx| tc::qdisc_of(ctx, &dev, h.as_deref()))?
}

impl Witness for Qdiscs<'_> {
    fn before(&mut self, topo: &Topology) -> Result<()> {
        self.before = self.exps.iter().map(|q| read(topo, &q.at, &q.handle)).collect::<Result<_>>()?;
        Ok(())
    }

    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        for (q, b) in self.exps.iter().zip(&self.before) {
            let after = read(topo, &q.at, &q.handle)?;
            let label = q.label();
            rec.qdisc_drops.insert(label.clone(), after.drops as i64 - b.drops as i64);
            let deltas = [
                ("overlimits", after.overlimits as i64 - b.overlimits as i64),
                ("requeues", after.requeues as i64 - b.requeues as i64),
                ("packets", after.packets as i64 - b.packets as i64),
            ];
            rec.qdisc_deltas.insert(label.clone(), deltas.iter().map(|(k, v)| (k.to_string(), *v)).collect());
            rec.qdiscs.insert(label, after);
        }
        Ok(())
    }
}
