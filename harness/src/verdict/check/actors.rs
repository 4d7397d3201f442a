//! `expect_actors`: what each actor counted by the phase's end.

use crate::case::expect::ActorExp;
use crate::evidence::record::{ActorRecord, CheckRecord, Expected, Observed};

pub fn judge(want: &[ActorExp], actors: &[ActorRecord]) -> Vec<CheckRecord> {
    want.iter()
        .map(|x| {
            let expected = Expected::count(x.count);
            let got = actors.iter().find(|a| a.name == x.actor);
            let (observed, ok) = match got.and_then(|a| a.counters.get(&x.counter).map(|n| (a, *n))) {
                Some((_, n)) => (Observed::Count { n }, x.count.holds(n)),
                None => {
                    let why = match got {
                        Some(a) => a.error.clone().unwrap_or_else(|| format!("actor {} kept no {}", a.name, x.counter)),
                        None => format!("actor {} did not run", x.actor),
                    };
                    (Observed::Missing { why }, false)
                }
            };
            CheckRecord { what: format!("actor {}", x.key()), expected, observed, ok, unavailable: false }
        })
        .collect()
}
