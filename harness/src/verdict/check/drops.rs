//! The kernel's drops by reason (`"ns[/dev]: REASON" = count`). On a kernel
//! without drop reasons, or where the monitor could not run, the expectation
//! is not available there: never a pass, never a fail.

use super::Judged;
use crate::case::expect::DropExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};
use crate::sys::drops::{Drop, Origin, Support};

pub fn judge(exps: &[DropExp], rec: &ProbeRecord, support: &Support, j: &mut Judged) {
    for d in exps {
        let at = match &d.dev {
            Some(dev) => format!("{}/{dev}", d.ns),
            None => d.ns.clone(),
        };
        let what = format!("drops {at}: {}", d.reason);
        let expected = Expected::count(d.count);
        match support {
            Support::Reasons(known) if !known.contains(&d.reason) => {
                j.add(what, expected, Observed::missing(format!("this kernel has no drop reason {}", d.reason)), false)
            }
            Support::Reasons(_) => {
                let (hits, others): (Vec<&Drop>, Vec<&Drop>) = rec
                    .drops
                    .iter()
                    .filter(|x| x.ns == d.ns && x.reason == d.reason && d.dev.as_ref().is_none_or(|dev| &x.dev == dev))
                    // Only the incident's drops count (verdict::attribution).
                    .partition(|x| x.origin == Origin::Incident);
                let got: u64 = hits.iter().map(|x| x.count).sum();
                let mut places: Vec<String> = hits.iter().map(|x| format!("{} in {}", x.protocol, x.at)).collect();
                places.dedup();
                let not_counted = others
                    .iter()
                    .map(|x| format!("{} × {} in {} ({})", x.count, x.protocol, x.at, x.origin.word()))
                    .collect();
                let shown = Observed::Drops { n: got, places, not_counted };
                let m = rec.drops_missed;
                if !d.count.holds(got as i64) && m > 0 && (1..=m.min(10_000)).any(|k| d.count.holds((got + k) as i64)) {
                    // Short by no more than the kernel kept from the monitor:
                    // the evidence is incomplete, not a failure nor a pass.
                    j.unavailable(what, expected, format!("not available: {shown} counted, and the kernel skipped the monitor {m} time(s) during this probe (a drop in a softirq that interrupted it on the same CPU: recursion_misses); the counters carry the evidence"));
                } else {
                    j.add(what, expected, shown, d.count.holds(got as i64))
                }
            }
            Support::NoReasons(why) | Support::NotPermitted(why) => {
                j.unavailable(what, expected, format!("not available: {why}"))
            }
            Support::Broken(why) => {
                j.add(what, expected, Observed::missing(format!("drop monitor failed: {why}")), false)
            }
        }
    }
}
