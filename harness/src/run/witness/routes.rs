//! The route tables of the namespaces `routes` expectations name, after the probe.

use anyhow::Result;

use super::Witness;
use crate::case::expect::RouteExp;
use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;

pub struct Routes<'a>(pub &'a [RouteExp]);

impl Witness for Routes<'_> {
    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        for x in self.0 {
            if !rec.routes.contains_key(&x.ns) {
                let got = topo.ns(&x.ns)?.run(|ctx| crate::sys::routes::routes(ctx))??;
                rec.routes.insert(x.ns.clone(), got);
            }
        }
        Ok(())
    }
}
