//! Link settings read back after the probe (`tx_queue_len`, `mtu`).

use super::Judged;
use crate::case::expect::LinkExp;
use crate::evidence::record::ProbeRecord;

pub fn judge(exps: &[LinkExp], rec: &ProbeRecord, j: &mut Judged) {
    for l in exps {
        let k = l.at.to_string();
        let got = rec.links.get(&k);
        for (name, want) in [("tx_queue_len", l.want.tx_queue_len), ("mtu", l.want.mtu)] {
            if let Some(w) = want {
                let obs = got.and_then(|g| g.get(name)).copied();
                let shown = obs.map(|v| v.to_string()).unwrap_or_else(|| "?".into());
                j.add(format!("link {k}: {name}"), w.to_string(), shown, obs == Some(w as u64));
            }
        }
    }
}
