//! The root qdisc of an interface after the probe, and its drops over it.

use super::Judged;
use crate::case::expect::QdiscExp;
use crate::evidence::record::ProbeRecord;

pub fn judge(exps: &[QdiscExp], rec: &ProbeRecord, j: &mut Judged) {
    for q in exps {
        let k = q.at.to_string();
        let Some(got) = rec.qdiscs.get(&k) else {
            j.add(format!("qdisc {k}"), "a root qdisc".into(), "none read".into(), false);
            continue;
        };
        let w = &q.want;
        if let Some(kind) = &w.kind {
            j.add(format!("qdisc {k}: kind"), kind.clone(), got.kind.clone(), &got.kind == kind);
        }
        if let Some(d) = w.direct_qlen {
            let obs = got.direct_qlen.map(|v| v.to_string()).unwrap_or_else(|| "none reported".into());
            j.add(format!("qdisc {k}: direct_qlen"), d.to_string(), obs, got.direct_qlen == Some(d));
        }
        if let Some(d) = &w.default_class {
            let obs = got.default_class.clone().unwrap_or_else(|| "none reported".into());
            j.add(format!("qdisc {k}: default_class"), d.clone(), obs.clone(), &obs == d);
        }
        if let Some(c) = w.drops {
            let got = rec.qdisc_drops.get(&k).copied().unwrap_or(0);
            j.add(format!("qdisc {k}: drops"), format!("delta {c}"), format!("{got:+}"), c.holds(got));
        }
    }
}
