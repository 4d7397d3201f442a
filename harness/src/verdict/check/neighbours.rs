//! Neighbour entries after the probe (`"ns: address" = "STATE"` or
//! `{ state, lladdr }`).

use super::Judged;
use crate::case::expect::NeighExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(exps: &[NeighExp], rec: &ProbeRecord, j: &mut Judged) {
    for n in exps {
        let entry = rec.neighbours.get(&n.ns).and_then(|v| v.iter().find(|e| e.ip == n.ip));
        let got = entry.map(|e| e.state.clone()).unwrap_or_else(|| "ABSENT".into());
        if let Some(state) = &n.state {
            let ok = &got == state;
            j.add(format!("neighbour {}: {}", n.ns, n.ip), Expected::word(state), Observed::word(&got), ok);
        }
        if let Some(mac) = &n.lladdr {
            let have = entry.and_then(|e| e.lladdr.clone()).unwrap_or_else(|| "none".into());
            let ok = &have == mac;
            j.add(format!("neighbour {}: {} lladdr", n.ns, n.ip), Expected::word(mac), Observed::word(have), ok);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::expect::{neighbour, Ctx, Devices};
    use crate::case::spec::{NeighEntry, NeighWant};

    #[test]
    fn state_and_lladdr_are_checked_each() {
        let devices: Devices = [("a".to_string(), ["eth0".to_string()].into())].into();
        let ctx = Ctx { devices: &devices, captures: &[], kind: "ping" };
        let spec = crate::case::spec::ProbeSpec::Bind {
            from: "a".into(),
            addr: "10.0.0.1:1".parse().unwrap(),
            proto: Default::default(),
            freebind: false,
            transparent: false,
            listen: false,
        };
        let outcome = crate::evidence::outcome::Outcome::Bind(crate::evidence::outcome::BindOutcome {
            result: "ok".into(),
            failed: "none".into(),
            elapsed_ms: 0.0,
        });
        let mut rec = ProbeRecord::new("p", spec, outcome, (0, 0));
        rec.neighbours.insert(
            "a".into(),
            vec![crate::sys::link::Neighbour {
                ip: "10.0.0.2".parse().unwrap(),
                dev: "eth0".into(),
                state: "REACHABLE".into(),
                lladdr: Some("02:42:ac:11:00:02".into()),
            }],
        );
        let entry = |state: Option<&str>, lladdr: Option<&str>| {
            NeighWant::Entry(NeighEntry { state: state.map(Into::into), lladdr: lladdr.map(Into::into) })
        };
        for (want, oks) in [
            (NeighWant::State("REACHABLE".into()), vec![true]),
            (entry(Some("REACHABLE"), Some("02:42:AC:11:00:02")), vec![true, true]),
            (entry(None, Some("02:42:ac:11:00:03")), vec![false]),
            (entry(Some("STALE"), Some("02:42:ac:11:00:02")), vec![false, true]),
        ] {
            let x = neighbour("a: 10.0.0.2", &want, &ctx).unwrap();
            let mut j = Judged::default();
            judge(&[x], &rec, &mut j);
            assert_eq!(j.checks.iter().map(|c| c.ok).collect::<Vec<_>>(), oks, "{want:?}");
        }
        assert!(neighbour("a: 10.0.0.2", &entry(None, None), &ctx).unwrap_err().contains("give state, lladdr"));
        assert!(neighbour("a: 10.0.0.2", &entry(None, Some("zz")), &ctx).unwrap_err().contains("not a link-layer"));
    }
}
