//! Witnesses: one per kind of evidence, each reading what its kind needs
//! from the kernel around one probe (before it, after it) and recording that
//! into the probe's [`ProbeRecord`]. The runner only calls them in order; the
//! judge of each kind is in `verdict/check/`, the parser in `case/expect.rs`.

pub mod conntrack;
pub mod counters;
pub mod drops;
pub mod frames;
pub mod links;
pub mod neighbours;
pub mod qdisc;
pub mod routes;
pub mod rules;
pub mod scope;

use anyhow::Result;

use crate::evidence::record::ProbeRecord;
use crate::run::topology::Topology;

/// One kind of evidence around a probe.
pub trait Witness {
    /// Reads the state the probe will change (a counter's base, ...), just
    /// before the probe's window opens.
    fn before(&mut self, _topo: &Topology) -> Result<()> {
        Ok(())
    }
    /// Reads the state after the window closed and records it into `rec`
    /// (whose outcome and window are already set).
    fn after(&mut self, topo: &Topology, rec: &mut ProbeRecord) -> Result<()>;
}

/// The witnesses a check needs, in the order they read after the probe:
/// drops and counters first (closest to the window), then the state dumps.
/// Counters and neighbours are read in the namespaces of `scope`
/// ([`scope::scope`]: the probe's path and what the check names).
pub fn for_check<'a>(
    check: &'a crate::case::plan::Check,
    watch: &'a crate::sys::drops::Watch,
    scope: &'a std::collections::BTreeSet<String>,
) -> Vec<Box<dyn Witness + 'a>> {
    let mut w: Vec<Box<dyn Witness + 'a>> = vec![
        Box::new(drops::Drops::new(watch)),
        Box::new(counters::Counters::new(&check.counters, scope)),
        // Every table on the path: why-lines name neighbours the case did not ask about.
        Box::new(neighbours::Neighbours::new(scope)),
    ];
    if !check.routes.is_empty() {
        w.push(Box::new(routes::Routes(&check.routes)));
    }
    if !check.qdiscs.is_empty() {
        w.push(Box::new(qdisc::Qdiscs::new(&check.qdiscs)));
    }
    if !check.rules.is_empty() {
        w.push(Box::new(rules::Rules::new(&check.rules)));
    }
    if !check.conntrack.is_empty() {
        w.push(Box::new(conntrack::Conntrack::new(&check.conntrack)));
    }
    if !check.links.is_empty() {
        w.push(Box::new(links::Links::new(&check.links)));
    }
    w
}

/// The witnesses of a check over a window with no probe (the whole phase,
/// a span of steps): drops, counters, rules, conntrack.
pub fn for_window<'a>(
    check: &'a crate::case::plan::Check,
    watch: &'a crate::sys::drops::Watch,
    scope: &std::collections::BTreeSet<String>,
) -> Vec<Box<dyn Witness + 'a>> {
    let mut w: Vec<Box<dyn Witness + 'a>> =
        vec![Box::new(drops::Drops::window(watch)), Box::new(counters::Counters::new(&check.counters, scope))];
    if !check.rules.is_empty() {
        w.push(Box::new(rules::Rules::new(&check.rules)));
    }
    if !check.conntrack.is_empty() {
        w.push(Box::new(conntrack::Conntrack::new(&check.conntrack)));
    }
    w
}
