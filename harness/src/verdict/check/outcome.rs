//! The probe's own outcome: replies, ICMP errors, connect result, elapsed
//! time, bytes received, each side's error.

use super::Judged;
use crate::case::expect::OutcomeExp;
use crate::case::spec::Window;
use crate::evidence::outcome::Outcome;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(x: &OutcomeExp, window: Option<&Window>, rec: &ProbeRecord, j: &mut Judged) {
    // The loader ties each key to its probe kind; a record where they
    // disagree fails with what it had instead of guessing.
    let kind = rec.outcome.kind();
    let (ping, connect, stream) = match &rec.outcome {
        Outcome::Ping(p) => (Some(p), None, None),
        Outcome::Connect(c) => (None, Some(c), None),
        Outcome::Stream(s) => (None, None, Some(s)),
    };
    let absent = |what: &str| Observed::missing(format!("no {what} in a {kind} probe's outcome"));
    if let Some(c) = x.replies {
        match ping {
            Some(p) => j.add(
                "replies".into(),
                Expected::count(c),
                Observed::Count { n: p.replies.into() },
                c.holds(p.replies.into()),
            ),
            None => j.add("replies".into(), Expected::count(c), absent("replies"), false),
        }
    }
    if let Some(want) = &x.icmp_errors {
        let mut got: Vec<String> =
            ping.into_iter().flat_map(|p| &p.errors).map(|e| format!("{} from {}", e.kind, e.from)).collect();
        got.sort();
        got.dedup();
        let mut w: Vec<String> = want.iter().map(|(k, from)| format!("{k} from {from}")).collect();
        w.sort();
        w.dedup();
        let ok = ping.is_some() && got == w;
        j.add("icmp_errors".into(), Expected::Set { items: w }, Observed::Set { items: got }, ok);
    }
    if let Some(want) = &x.send_errors {
        let got: Vec<String> = ping.into_iter().flat_map(|p| p.send_errors.keys().cloned()).collect();
        let mut w = want.clone();
        w.sort();
        w.dedup();
        let ok = ping.is_some() && got == w;
        j.add("send_errors".into(), Expected::Set { items: w }, Observed::Set { items: got }, ok);
    }
    if let Some(r) = &x.result {
        match connect {
            Some(c) => {
                let observed = Observed::Result { word: c.result.clone(), after_ms: c.elapsed_ms };
                j.add("result".into(), Expected::word(r), observed, &c.result == r)
            }
            None => j.add("result".into(), Expected::word(r), absent("result"), false),
        }
    }
    if let Some(w) = window {
        let got = rec.outcome.elapsed_ms();
        let from = rec
            .derived_window
            .as_ref()
            .map(|b| format!("{}: ({} + {}) x {} ms", b.interface, b.mcast_solicit, b.app_solicit, b.retrans_time_ms));
        let expected = Expected::Window { window: w.clone(), from };
        j.add("elapsed_ms".into(), expected, Observed::Ms { ms: got }, w.holds(got));
    }
    if let Some(c) = x.bytes_received {
        match stream {
            Some(s) => {
                let got = i64::try_from(s.bytes_received).unwrap_or(i64::MAX);
                j.add("bytes_received".into(), Expected::count(c), Observed::Count { n: got }, c.holds(got))
            }
            None => j.add("bytes_received".into(), Expected::count(c), absent("bytes_received"), false),
        }
    }
    for (key, want) in [("client_error", &x.client_error), ("server_error", &x.server_error)] {
        if let Some(w) = want {
            let got = stream.map(|s| if key == "client_error" { &s.client_error } else { &s.server_error });
            match got {
                Some(g) => j.add(key.into(), Expected::word(w), Observed::word(g), g == w),
                None => j.add(key.into(), Expected::word(w), absent(key), false),
            }
        }
    }
}
