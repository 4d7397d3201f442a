//! The kernel's drops in the case's namespaces during the window, from the
//! `kfree_skb` monitor ([`crate::sys::drops`]).

use anyhow::Result;

use super::Witness;
use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;
use crate::sys::drops::{Mark, Watch};
use crate::sys::link;

pub struct Drops<'a> {
    watch: &'a Watch,
    mark: Option<Mark>,
    /// Around a probe (labelled by it), or a window without one.
    probe: bool,
}

impl<'a> Drops<'a> {
    pub fn new(watch: &'a Watch) -> Drops<'a> {
        Drops { watch, mark: None, probe: true }
    }

    /// Over a window with no probe (the whole phase, a span of steps).
    pub fn window(watch: &'a Watch) -> Drops<'a> {
        Drops { watch, mark: None, probe: false }
    }
}

impl Witness for Drops<'_> {
    fn before(&mut self, _topo: &Topology) -> Result<()> {
        self.mark = Some(self.watch.mark());
        Ok(())
    }

    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        let mark = self.mark.take().ok_or_else(|| anyhow::anyhow!("drops: after() without before()"))?;
        // Device names are resolved in the drop's own namespace.
        let drops = self
            .watch
            .since(&mark, |ns, index| topo.ns(ns).ok()?.run(move |ctx| link::link_name(ctx, index)).ok()?.ok());
        // Whose each drop is: the incident's, the probe's own, background.
        rec.drops = if self.probe {
            crate::verdict::attribution::label(drops, &rec.spec, &rec.outcome, rec.window_ns)
        } else {
            crate::verdict::attribution::label_window(drops, rec.window_ns)
        };
        rec.drops_missed = self.watch.missed_since(&mark);
        Ok(())
    }
}
