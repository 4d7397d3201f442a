//! Conntrack entries after the probe containing every word (`"ns: words" = count`).

use super::Judged;
use crate::case::expect::ConntrackExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(exps: &[ConntrackExp], rec: &ProbeRecord, j: &mut Judged) {
    for c in exps {
        let lines = rec.conntrack.get(&c.ns).map(Vec::as_slice).unwrap_or_default();
        let got = lines.iter().filter(|l| c.words.iter().all(|w| l.contains(w.as_str()))).count() as i64;
        j.add(format!("conntrack {}", c.key), Expected::count(c.count), Observed::Count { n: got }, c.count.holds(got));
    }
}
