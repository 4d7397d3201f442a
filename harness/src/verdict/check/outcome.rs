//! The probe's own outcome: replies, ICMP errors, connect result, elapsed
//! time, bytes received, each side's error.

use super::Judged;
use crate::case::expect::OutcomeExp;
use crate::case::spec::Window;
use crate::evidence::outcome::Outcome;
use crate::evidence::record::ProbeRecord;

pub fn judge(x: &OutcomeExp, window: Option<&Window>, rec: &ProbeRecord, j: &mut Judged) {
    // The loader ties each key to its probe kind; a record where they
    // disagree fails with what it had instead of guessing.
    let kind = rec.outcome.kind();
    let (ping, connect, stream) = match &rec.outcome {
        Outcome::Ping(p) => (Some(p), None, None),
        Outcome::Connect(c) => (None, Some(c), None),
        Outcome::Stream(s) => (None, None, Some(s)),
    };
    let absent = |what: &str| format!("no {what} in a {kind} probe's outcome");
    if let Some(c) = x.replies {
        match ping {
            Some(p) => j.add("replies".into(), c.to_string(), p.replies.to_string(), c.holds(p.replies.into())),
            None => j.add("replies".into(), c.to_string(), absent("replies"), false),
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
        j.add("icmp_errors".into(), format!("{w:?}"), format!("{got:?}"), ping.is_some() && got == w);
    }
    if let Some(r) = &x.result {
        match connect {
            Some(c) => {
                j.add("result".into(), r.clone(), format!("{} after {} ms", c.result, c.elapsed_ms), &c.result == r)
            }
            None => j.add("result".into(), r.clone(), absent("result"), false),
        }
    }
    if let Some(w) = window {
        let got = rec.outcome.elapsed_ms();
        let why = match &rec.derived_window {
            Some(b) => {
                format!(" (from {}: ({} + {}) x {} ms)", b.interface, b.mcast_solicit, b.app_solicit, b.retrans_time_ms)
            }
            None => String::new(),
        };
        j.add("elapsed_ms".into(), format!("{w}{why}"), format!("{got} ms"), w.holds(got));
    }
    if let Some(c) = x.bytes_received {
        match stream {
            Some(s) => {
                let got = i64::try_from(s.bytes_received).unwrap_or(i64::MAX);
                j.add("bytes_received".into(), c.to_string(), got.to_string(), c.holds(got))
            }
            None => j.add("bytes_received".into(), c.to_string(), absent("bytes_received"), false),
        }
    }
    for (key, want) in [("client_error", &x.client_error), ("server_error", &x.server_error)] {
        if let Some(w) = want {
            let got = stream.map(|s| if key == "client_error" { &s.client_error } else { &s.server_error });
            match got {
                Some(g) => j.add(key.into(), w.clone(), g.clone(), g == w),
                None => j.add(key.into(), w.clone(), absent(key), false),
            }
        }
    }
}
