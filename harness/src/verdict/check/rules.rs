//! iptables rule and policy packet deltas (`"ns: -A CHAIN ..." = count`).

use super::Judged;
use crate::case::expect::RuleExp;
use crate::evidence::record::ProbeRecord;

pub fn judge(exps: &[RuleExp], rec: &ProbeRecord, j: &mut Judged) {
    for r in exps {
        let what = format!("rule {}", r.key);
        match rec.rules.get(&format!("{}: {}", r.source(), r.rule)) {
            Some(d) => j.add(what, format!("delta {}", r.count), format!("{d:+}"), r.count.holds(*d)),
            None => j.add(what, format!("delta {}", r.count), "no such rule in iptables-save -c".into(), false),
        }
    }
}
