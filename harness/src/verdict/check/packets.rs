//! Frames matching a matcher on an interface in the window
//! (`"ns/dev: matcher" = count`), as the frames witness counted them.

use super::Judged;
use crate::case::expect::PacketExp;
use crate::evidence::record::ProbeRecord;

pub fn judge(exps: &[PacketExp], rec: &ProbeRecord, j: &mut Judged) {
    for p in exps {
        let what = format!("packets {}: {}", p.at, p.matcher.text());
        match rec.packet_counts.get(&p.key()) {
            Some(&got) => j.add(what, p.count.to_string(), got.to_string(), p.count.holds(got)),
            None => j.add(what, p.count.to_string(), format!("{} was not captured in this window", p.at), false),
        }
    }
}
