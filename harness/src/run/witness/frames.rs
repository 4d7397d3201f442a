//! Frames: every capture's frames in the probe's window, recorded (typed,
//! up to the cap, numbered later against the phase's pcapng) and counted
//! against each `packets` expectation over all of them. Not a boxed
//! [`Witness`](super::Witness): the runner also needs which captured frames
//! were recorded, to give them their pcapng numbers.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Result;

use crate::case::expect::PacketExp;
use crate::evidence::frames::WindowFrames;
use crate::evidence::outcome::{Outcome, StreamOutcome};
use crate::evidence::record::ProbeRecord;
use crate::sys::capture::Capture;
use crate::wire::packet::{Frame, Vars};

/// Per capture label, the capture-order index of each recorded frame.
pub type FrameRefs = BTreeMap<String, Vec<usize>>;

/// How long a capture may take to drain the frames queued before the window closed.
const DRAIN: Duration = Duration::from_secs(2);

/// The values a probe defines for matchers (`seq $injected_ack`).
pub fn vars_of(outcome: &Outcome) -> Vars {
    let mut vars = Vars::new();
    if let Outcome::Stream(StreamOutcome { injected, .. }) = outcome {
        if let Some(i) = injected.first() {
            vars.insert("injected_seq".into(), i.seq.into());
            vars.insert("injected_ack".into(), i.ack.into());
            vars.insert("injected_end".into(), (u64::from(i.seq) + i.len as u64) & 0xffff_ffff);
        }
    }
    vars
}

/// The `packets` expectations on the interface `label`, each with how many
/// of `frames` it matches.
pub fn count(exps: &[PacketExp], label: &str, frames: &[Frame], vars: &Vars) -> Vec<(String, i64)> {
    exps.iter()
        .filter(|p| p.at.to_string() == label)
        .map(|p| (p.key(), frames.iter().filter(|f| p.matcher.matches_with(f, vars)).count() as i64))
        .collect()
}

/// Waits until every capture has read what the kernel queued before the
/// window closed (`rec.window_ns.1`), then records the window's frames and
/// the `packets` counts into `rec`.
pub fn record(caps: &[Capture], exps: &[PacketExp], rec: &mut ProbeRecord) -> Result<FrameRefs> {
    let (w0, w1) = rec.window_ns;
    for c in caps {
        c.sync(w1, DRAIN)?;
    }
    rec.vars = vars_of(&rec.outcome);
    let mut refs = FrameRefs::new();
    for c in caps {
        let (indices, frames): (Vec<usize>, Vec<_>) = c.window_indexed(w0, w1).into_iter().unzip();
        rec.packet_counts.extend(count(exps, &c.label, &frames, &rec.vars));
        let recorded = WindowFrames::of(&c.label, frames.iter());
        refs.insert(c.label.clone(), indices[..recorded.frames.len()].to_vec());
        rec.packets.insert(c.label.clone(), recorded);
    }
    Ok(refs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::case::spec::Count;
    use crate::wire::packet::{tests::icmp_echo, Direction, Matcher};

    #[test]
    fn each_packets_expectation_counts_its_own_interface_only() {
        let exp = |at: &str, m: &str| PacketExp {
            at: at.parse().unwrap(),
            matcher: Matcher::parse(m).unwrap(),
            count: "1".parse::<Count>().unwrap(),
        };
        let exps = [exp("b/eth0", "icmp echo-request"), exp("b/eth0", "icmp echo-reply"), exp("a/eth0", "icmp")];
        let f = |reply| Frame::ethernet(0, Direction::In, icmp_echo([10, 0, 0, 1], [10, 0, 0, 2], reply));
        let got = count(&exps, "b/eth0", &[f(false), f(false), f(true)], &Vars::new());
        assert_eq!(got, vec![("b/eth0: icmp echo-request".into(), 2), ("b/eth0: icmp echo-reply".into(), 1)]);
    }
}
