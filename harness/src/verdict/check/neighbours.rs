//! Neighbour entries after the probe (`"ns: address" = "STATE"`).

use super::Judged;
use crate::case::expect::NeighExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(exps: &[NeighExp], rec: &ProbeRecord, j: &mut Judged) {
    for n in exps {
        let entry = rec.neighbours.get(&n.ns).and_then(|v| v.iter().find(|e| e.ip == n.ip));
        let got = entry.map(|e| e.state.clone()).unwrap_or_else(|| "ABSENT".into());
        let ok = got == n.state;
        j.add(format!("neighbour {}: {}", n.ns, n.ip), Expected::word(&n.state), Observed::word(got), ok);
    }
}
