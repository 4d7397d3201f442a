//! The probe's own outcome: replies, ICMP errors, send errors, connect or
//! bind result, elapsed time, bytes received, each side's error, datagrams
//! received, a burst's results and listen overflows.

use super::Judged;
use crate::case::expect::OutcomeExp;
use crate::case::spec::Window;
use crate::evidence::outcome::Outcome;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(x: &OutcomeExp, window: Option<&Window>, rec: &ProbeRecord, j: &mut Judged) {
    // The loader ties each key to its probe kind; a record where they
    // disagree fails with what it had instead of guessing.
    let kind = rec.outcome.kind();
    let stream = match &rec.outcome {
        Outcome::Stream(s) => Some(s),
        _ => None,
    };
    let (replies, errors, send_errors) = match &rec.outcome {
        Outcome::Ping(p) => (Some(p.replies), Some(&p.errors), Some(&p.send_errors)),
        Outcome::Udp(u) => (Some(u.replies), Some(&u.errors), Some(&u.send_errors)),
        _ => (None, None, None),
    };
    let result = match &rec.outcome {
        Outcome::Connect(c) => Some((&c.result, c.elapsed_ms)),
        Outcome::Bind(b) => Some((&b.result, b.elapsed_ms)),
        _ => None,
    };
    let absent = |what: &str| Observed::missing(format!("no {what} in a {kind} probe's outcome"));
    let count = |j: &mut Judged, key: &str, c: crate::case::spec::Count, got: Option<i64>| match got {
        Some(n) => j.add(key.into(), Expected::count(c), Observed::Count { n }, c.holds(n)),
        None => j.add(key.into(), Expected::count(c), absent(key), false),
    };
    if let Some(c) = x.replies {
        count(j, "replies", c, replies.map(i64::from));
    }
    if let Some(want) = &x.icmp_errors {
        let mut got: Vec<String> =
            errors.into_iter().flatten().map(|e| format!("{} from {}", e.kind, e.from)).collect();
        got.sort();
        got.dedup();
        let mut w: Vec<String> = want.iter().map(|(k, from)| format!("{k} from {from}")).collect();
        w.sort();
        w.dedup();
        let ok = errors.is_some() && got == w;
        j.add("icmp_errors".into(), Expected::Set { items: w }, Observed::Set { items: got }, ok);
    }
    if let Some(want) = &x.send_errors {
        let got: Vec<String> = send_errors.into_iter().flat_map(|m| m.keys().cloned()).collect();
        let mut w = want.clone();
        w.sort();
        w.dedup();
        let ok = send_errors.is_some() && got == w;
        j.add("send_errors".into(), Expected::Set { items: w }, Observed::Set { items: got }, ok);
    }
    if let Some(r) = &x.result {
        match result {
            Some((got, after_ms)) => {
                let observed = Observed::Result { word: got.clone(), after_ms };
                j.add("result".into(), Expected::word(r), observed, got == r)
            }
            None => j.add("result".into(), Expected::word(r), absent("result"), false),
        }
    }
    if let Some(c) = x.received {
        let got = match &rec.outcome {
            Outcome::Udp(u) => u.received.map(i64::from),
            _ => None,
        };
        count(j, "received", c, got);
    }
    let burst = match &rec.outcome {
        Outcome::Burst(b) => Some(b),
        _ => None,
    };
    for (word, c) in &x.results {
        let got = burst.map(|b| b.results.get(word).copied().unwrap_or(0).into());
        count(j, &format!("results.{word}"), *c, got);
    }
    let dns = match &rec.outcome {
        Outcome::Dns(d) => Some(d),
        _ => None,
    };
    let query = |t: &str| dns.and_then(|d| d.queries.iter().find(|q| q.qtype == t));
    for (t, want) in &x.queries {
        let key = format!("queries.{t}");
        match query(t) {
            Some(q) => {
                let observed = match q.latency_ms {
                    Some(ms) => Observed::Result { word: q.result.clone(), after_ms: ms },
                    None => Observed::word(&q.result),
                };
                j.add(key, Expected::word(want), observed, &q.result == want)
            }
            None => j.add(key.clone(), Expected::word(want), absent(&key), false),
        }
    }
    for (word, c) in &x.rounds {
        let got = dns.map(|d| match &d.rounds {
            Some(r) => r.results.get(word).copied().unwrap_or(0).into(),
            // One lookup: it is its own round.
            None => i64::from(crate::evidence::outcome::dns_lookup_word(&d.queries) == *word),
        });
        count(j, &format!("rounds.{word}"), *c, got);
    }
    for (t, want) in &x.answers {
        let key = format!("answers.{t}");
        let mut w: Vec<String> = want.iter().map(|a| a.to_string()).collect();
        w.sort();
        w.dedup();
        match query(t) {
            Some(q) => {
                let mut got: Vec<String> = q.answers.iter().map(|a| a.to_string()).collect();
                got.sort();
                got.dedup();
                let ok = got == w;
                j.add(key, Expected::Set { items: w }, Observed::Set { items: got }, ok)
            }
            None => j.add(key.clone(), Expected::Set { items: w }, absent(&key), false),
        }
    }
    if let Some(c) = x.listen_overflows {
        count(j, "listen_overflows", c, burst.map(|b| b.listen_overflows));
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
