//! Firewall rule packet deltas: iptables rules and policies (`"ns: -A CHAIN
//! ..." = count`), nft rules (`"ns: inet filter forward handle 4"`). A rule
//! that is not there is a failure naming the closest one the source had.

use super::Judged;
use crate::case::expect::RuleExp;
use crate::evidence::record::{Expected, Observed, ProbeRecord};

pub fn judge(exps: &[RuleExp], rec: &ProbeRecord, j: &mut Judged) {
    for r in exps {
        let what = format!("rule {}", r.key);
        let source = r.source();
        match rec.rules.get(&format!("{source}: {}", r.rule)) {
            Some(d) => j.add(what, Expected::delta(r.count), Observed::Delta { n: *d }, r.count.holds(*d)),
            None => {
                let tool = if r.nft { "nft -j list ruleset (rules with a counter)" } else { "iptables-save -c" };
                let prefix = format!("{source}: ");
                let seen = rec.rules.keys().filter_map(|k| k.strip_prefix(&prefix));
                let why = match closest(&r.rule, seen) {
                    Some(c) => format!("no such rule in {tool}; the closest it has is \"{c}\""),
                    None => format!("no such rule in {tool}, which has no rules there"),
                };
                j.add(what, Expected::delta(r.count), Observed::missing(&why), false)
            }
        }
    }
}

/// The candidate nearest `want` by edit distance over characters.
pub fn closest<'a>(want: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    candidates.min_by_key(|c| edit_distance(want, c))
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_closest_rule_is_named() {
        let seen = ["-A FORWARD -i docker0 -j ACCEPT", "-A INPUT -j DROP", "policy filter FORWARD"];
        assert_eq!(closest("-A FORWARD -i docker1 -j ACCEPT", seen.into_iter()), Some(seen[0]));
        assert_eq!(closest("policy filter FORWAD", seen.into_iter()), Some(seen[2]));
        assert_eq!(closest("x", std::iter::empty()), None);
    }
}
