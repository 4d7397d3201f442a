//! Counter deltas (`"ns: Group.Field" = count`).

use super::Judged;
use crate::case::expect::CounterExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(exps: &[CounterExp], rec: &ProbeRecord, j: &mut Judged) {
    for c in exps {
        let got = rec.counter_deltas.get(&c.ns).and_then(|d| d.get(&c.key)).copied().unwrap_or(0);
        let known = !rec.counters_absent.get(&c.ns).is_some_and(|a| a.contains(&c.key));
        let observed = if known {
            Observed::Delta { n: got }
        } else {
            Observed::missing(format!("no such counter in {} (kernel does not have it?)", c.ns))
        };
        j.add(format!("counter {}: {}", c.ns, c.key), Expected::delta(c.count), observed, known && c.count.holds(got));
    }
}
