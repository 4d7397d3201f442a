//! The conntrack table after the probe (`conntrack -L`) in each namespace a
//! check names: the one subprocess here, as `conntrack` is what users read.

use anyhow::Result;

use super::Witness;
use crate::case::expect::ConntrackExp;
use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;
use crate::sys::cmd;

pub struct Conntrack<'a> {
    exps: &'a [ConntrackExp],
}

impl<'a> Conntrack<'a> {
    pub fn new(exps: &'a [ConntrackExp]) -> Conntrack<'a> {
        Conntrack { exps }
    }
}

impl Witness for Conntrack<'_> {
    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()> {
        for c in self.exps {
            if rec.conntrack.contains_key(&c.ns) {
                continue;
            }
            let mut cmd = topo.ns(&c.ns)?.command("conntrack");
            cmd.arg("-L");
            let out = cmd::run_ok(cmd, cmd::DEFAULT_DEADLINE)?;
            rec.conntrack.insert(c.ns.clone(), out.stdout.lines().map(str::to_string).collect());
        }
        Ok(())
    }
}
