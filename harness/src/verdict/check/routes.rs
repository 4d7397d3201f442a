//! Route table entries after the probe (`"ns: default proto ra" = "present"`).

use super::Judged;
use crate::case::expect::RouteExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(exps: &[RouteExp], rec: &ProbeRecord, j: &mut Judged) {
    for x in exps {
        let table = rec.routes.get(&x.ns);
        let found: Vec<String> = table.into_iter().flatten().filter(|r| matches(x, r)).map(|r| r.to_string()).collect();
        let word = if x.present { "present" } else { "absent" };
        let ok = table.is_some() && found.is_empty() != x.present;
        let observed = match (table, found.is_empty()) {
            (None, _) => Observed::missing(format!("no route table read in {}", x.ns)),
            (Some(_), false) => Observed::Set { items: found },
            // Absent: say what the table had instead, the case's evidence.
            (Some(all), true) => Observed::Set {
                items: vec![format!(
                    "absent (table: {})",
                    all.iter().map(|r| r.to_string()).collect::<Vec<_>>().join("; ")
                )],
            },
        };
        j.add(format!("route {}", x.key), Expected::word(word), observed, ok);
    }
}

/// Whether `r` is the route `x` names: its destination, and every field given.
fn matches(x: &RouteExp, r: &crate::sys::routes::Route) -> bool {
    r.dst == x.dst
        && x.via.is_none_or(|v| r.via == Some(v))
        && x.dev.as_ref().is_none_or(|d| r.dev.as_ref() == Some(d))
        && x.proto.as_ref().is_none_or(|p| &r.proto == p)
        && x.metric.is_none_or(|m| r.metric == Some(m))
        && x.table.is_none_or(|t| r.table == t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::expect::{route, Ctx, Devices};
    use crate::sys::routes::Route;

    #[test]
    fn a_route_key_matches_the_fields_it_gives() {
        let devices: Devices = [("host".to_string(), ["eno1".to_string()].into())].into();
        let ctx = Ctx { devices: &devices, captures: &[], kind: "connect" };
        let r = Route {
            dst: "default".into(),
            via: Some("fe80::1".parse().unwrap()),
            dev: Some("eno1".into()),
            proto: "ra".into(),
            metric: Some(1024),
            table: 254,
        };
        assert_eq!(r.to_string(), "default via fe80::1 dev eno1 proto ra metric 1024");
        for (k, hit) in [
            ("host: default", true),
            ("host: default dev eno1 proto ra", true),
            ("host: default via fe80::1 proto ra metric 1024 table 254", true),
            ("host: default proto kernel", false),
            ("host: default via fe80::2", false),
            ("host: 2001:db8::/64", false),
        ] {
            assert_eq!(matches(&route(k, "present", &ctx).unwrap(), &r), hit, "{k}");
        }
        for (k, v, says) in [
            ("host: default dev eth9", "present", "no interface \"eth9\""),
            ("host: default via", "present", "`via` needs a value"),
            ("host: default via nowhere", "present", "not an address"),
            ("host: default gw fe80::1", "present", "unknown word `gw`"),
            ("host: default", "there", "\"present\" or \"absent\""),
            ("nowhere: default", "present", "no namespace"),
        ] {
            let e = route(k, v, &ctx).unwrap_err();
            assert!(e.contains(says), "{k}: {e}");
        }
    }
}
