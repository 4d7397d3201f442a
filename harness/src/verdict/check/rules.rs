//! iptables rule and policy packet deltas (`"ns: -A CHAIN ..." = count`).

use super::Judged;
use crate::case::expect::RuleExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(exps: &[RuleExp], rec: &ProbeRecord, j: &mut Judged) {
    for r in exps {
        let what = format!("rule {}", r.key);
        match rec.rules.get(&format!("{}: {}", r.source(), r.rule)) {
            Some(d) => j.add(what, Expected::delta(r.count), Observed::Delta { n: *d }, r.count.holds(*d)),
            None => j.add(what, Expected::delta(r.count), Observed::missing("no such rule in iptables-save -c"), false),
        }
    }
}
