//! The root qdisc of an interface after the probe, and its drops over it.

use super::Judged;
use crate::case::expect::QdiscExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(exps: &[QdiscExp], rec: &ProbeRecord, j: &mut Judged) {
    for q in exps {
        let k = q.label();
        let Some(got) = rec.qdiscs.get(&k) else {
            j.add(format!("qdisc {k}"), Expected::word("a qdisc"), Observed::missing("none read"), false);
            continue;
        };
        let w = &q.want;
        if let Some(kind) = &w.kind {
            j.add(format!("qdisc {k}: kind"), Expected::word(kind), Observed::word(&got.kind), &got.kind == kind);
        }
        if let Some(d) = w.direct_qlen {
            let obs = match got.direct_qlen {
                Some(v) => Observed::Exact { value: v.into() },
                None => Observed::missing("none reported"),
            };
            j.add(
                format!("qdisc {k}: direct_qlen"),
                Expected::Exact { value: d.into() },
                obs,
                got.direct_qlen == Some(d),
            );
        }
        if let Some(d) = &w.default_class {
            let ok = got.default_class.as_ref() == Some(d);
            let obs = match &got.default_class {
                Some(c) => Observed::word(c),
                None => Observed::missing("none reported"),
            };
            j.add(format!("qdisc {k}: default_class"), Expected::word(d), obs, ok);
        }
        if let Some(c) = w.drops {
            let got = rec.qdisc_drops.get(&k).copied().unwrap_or(0);
            j.add(format!("qdisc {k}: drops"), Expected::delta(c), Observed::Delta { n: got }, c.holds(got));
        }
        for (name, want) in [("overlimits", w.overlimits), ("requeues", w.requeues)] {
            if let Some(c) = want {
                let got = rec.qdisc_deltas.get(&k).and_then(|d| d.get(name)).copied().unwrap_or(0);
                j.add(format!("qdisc {k}: {name}"), Expected::delta(c), Observed::Delta { n: got }, c.holds(got));
            }
        }
        if let Some(c) = w.backlog {
            let v = got.backlog as i64;
            j.add(format!("qdisc {k}: backlog"), Expected::count(c), Observed::Count { n: v }, c.holds(v));
        }
        for (name, want) in &w.options {
            let obs = match got.options.get(name) {
                Some(v) => Observed::Exact { value: *v },
                None => Observed::missing(format!("no option {name} decoded for kind {}", got.kind)),
            };
            let ok = got.options.get(name) == Some(want);
            j.add(format!("qdisc {k}: {name}"), Expected::Exact { value: *want }, obs, ok);
        }
    }
}
