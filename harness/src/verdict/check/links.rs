//! Link settings read back after the probe (`tx_queue_len`, `mtu`, a
//! bridge port's `hairpin`/`learning`/`isolated` as 0/1).

use super::Judged;
use crate::case::expect::LinkExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(exps: &[LinkExp], rec: &ProbeRecord, j: &mut Judged) {
    for l in exps {
        let k = l.at.to_string();
        let got = rec.links.get(&k);
        let flag = |b: Option<bool>| b.map(u32::from);
        for (name, want) in [
            ("tx_queue_len", l.want.tx_queue_len),
            ("mtu", l.want.mtu),
            ("hairpin", flag(l.want.hairpin)),
            ("learning", flag(l.want.learning)),
            ("isolated", flag(l.want.isolated)),
        ] {
            if let Some(w) = want {
                let obs = got.and_then(|g| g.get(name)).copied();
                let shown = match obs {
                    Some(value) => Observed::Exact { value },
                    None => Observed::missing("not reported by the kernel"),
                };
                j.add(format!("link {k}: {name}"), Expected::Exact { value: w.into() }, shown, obs == Some(w.into()));
            }
        }
    }
}
