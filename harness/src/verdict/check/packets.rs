//! Frames matching a matcher on an interface in the window
//! (`"ns/dev: matcher" = count`), as the frames witness counted them.

use super::Judged;
use crate::case::expect::PacketExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(exps: &[PacketExp], rec: &ProbeRecord, j: &mut Judged) {
    for p in exps {
        let what = format!("packets {}: {}", p.at, p.matcher.text());
        match rec.packet_counts.get(&p.key()) {
            Some(&got) => j.add(what, Expected::count(p.count), Observed::Count { n: got }, p.count.holds(got)),
            None => {
                let why = format!("{} was not captured in this window", p.at);
                j.add(what, Expected::count(p.count), Observed::missing(why), false)
            }
        }
    }
}
