//! The one ICMP vocabulary: every name an expectation, a matcher, a probe
//! outcome, a frame summary or the report uses for an ICMP or ICMPv6
//! type/code comes from [`NAMES`] (IPv4) or [`NAMES6`] (IPv6). Words follow
//! iptables' and ip6tables' `--reject-with` and tcpdump (without the
//! `icmp-`/`icmp6-` prefix); codes are RFC 792, RFC 1122 §3.2.2.1 and
//! RFC 1812 §5.2.7.1 (codes 9–15) for IPv4, RFC 4443 and RFC 4861 (NDP) for
//! IPv6. A word both families have (`port-unreachable`, `admin-prohibited`,
//! `echo-reply`, `time-exceeded` …) names the one of each: a matcher word
//! matches either family unless `icmp` or `icmp6` says which.

/// ICMP (IPv4) `(type, code, name)`; `None` code: the name covers every code of the type.
pub const NAMES: &[(u8, Option<u8>, &str)] = &[
    (0, None, "echo-reply"),
    (3, None, "unreachable"),
    (3, Some(0), "net-unreachable"),
    (3, Some(1), "host-unreachable"),
    (3, Some(2), "protocol-unreachable"),
    (3, Some(3), "port-unreachable"),
    (3, Some(4), "frag-needed"),
    (3, Some(5), "source-route-failed"),
    (3, Some(6), "net-unknown"),
    (3, Some(7), "host-unknown"),
    (3, Some(8), "host-isolated"),
    (3, Some(9), "net-prohibited"),
    (3, Some(10), "host-prohibited"),
    (3, Some(11), "tos-net-unreachable"),
    (3, Some(12), "tos-host-unreachable"),
    (3, Some(13), "admin-prohibited"),
    (3, Some(14), "host-precedence-violation"),
    (3, Some(15), "precedence-cutoff"),
    (4, None, "source-quench"),
    (5, None, "redirect"),
    (8, None, "echo-request"),
    (11, None, "time-exceeded"),
    (12, None, "parameter-problem"),
];

/// ICMPv6 `(type, code, name)` (RFC 4443, RFC 4861); as [`NAMES`].
pub const NAMES6: &[(u8, Option<u8>, &str)] = &[
    (1, None, "unreachable"),
    (1, Some(0), "no-route"),
    (1, Some(1), "admin-prohibited"),
    (1, Some(2), "beyond-scope"),
    (1, Some(3), "address-unreachable"),
    (1, Some(4), "port-unreachable"),
    (1, Some(5), "failed-policy"),
    (1, Some(6), "reject-route"),
    (2, None, "packet-too-big"),
    (3, None, "time-exceeded"),
    (4, None, "parameter-problem"),
    (128, None, "echo-request"),
    (129, None, "echo-reply"),
    (130, None, "mld-query"),
    (131, None, "mld-report"),
    (132, None, "mld-done"),
    (133, None, "router-solicitation"),
    (134, None, "router-advertisement"),
    (135, None, "neighbor-solicitation"),
    (136, None, "neighbor-advertisement"),
    (137, None, "redirect"),
    (143, None, "mldv2-report"),
];

/// Which IP family an ICMP type/code belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    V4,
    V6,
}

fn table(f: Family) -> &'static [(u8, Option<u8>, &'static str)] {
    match f {
        Family::V4 => NAMES,
        Family::V6 => NAMES6,
    }
}

/// The most specific name of `(type, code)`: `host-prohibited` for 3/10,
/// `time-exceeded` for any code of 11; `type-T-code-C` when the table has
/// neither.
pub fn name(t: u8, c: u8) -> String {
    name_in(Family::V4, t, c)
}

/// The most specific ICMPv6 name of `(type, code)`: `no-route` for 1/0,
/// `neighbor-solicitation` for 135; `type-T-code-C` when the table has neither.
pub fn name6(t: u8, c: u8) -> String {
    name_in(Family::V6, t, c)
}

/// [`name`] or [`name6`] by family.
pub fn name_in(f: Family, t: u8, c: u8) -> String {
    let names = table(f);
    names
        .iter()
        .find(|(ty, code, _)| *ty == t && *code == Some(c))
        .or_else(|| names.iter().find(|(ty, code, _)| *ty == t && code.is_none()))
        .map(|(_, _, n)| n.to_string())
        .unwrap_or_else(|| format!("type-{t}-code-{c}"))
}

/// ICMPv6 the kernel sends by itself on a link (MLD 130-132 and 143, NDP
/// 133-137): background to a probe's traffic, not the incident's.
pub fn is_link_control_v6(t: u8) -> bool {
    matches!(t, 130..=137 | 143)
}

/// Whether an ICMPv6 type is an error (RFC 4443: types below 128).
pub fn is_error6(t: u8) -> bool {
    t < 128
}

/// The `(type, code)` a word names (`None` code: any code), or `None` for
/// a word that is not in the vocabulary.
pub fn parse(word: &str) -> Option<(u8, Option<u8>)> {
    parse_in(Family::V4, word)
}

/// The ICMPv6 `(type, code)` a word names, as [`parse`].
pub fn parse6(word: &str) -> Option<(u8, Option<u8>)> {
    parse_in(Family::V6, word)
}

pub fn parse_in(f: Family, word: &str) -> Option<(u8, Option<u8>)> {
    table(f).iter().find(|(_, _, n)| *n == word).map(|(t, c, _)| (*t, *c))
}

/// Whether a word is in the vocabulary of either family.
pub fn known(word: &str) -> bool {
    parse(word).is_some() || parse6(word).is_some()
}

/// Every word of both families, once each, space-separated, for error messages.
pub fn words() -> String {
    let mut seen = Vec::new();
    for (_, _, n) in NAMES.iter().chain(NAMES6) {
        if !seen.contains(n) {
            seen.push(*n);
        }
    }
    seen.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_back_to_its_type_and_code() {
        for (t, c, n) in NAMES {
            assert_eq!(parse(n), Some((*t, *c)), "{n}");
            if let Some(c) = c {
                assert_eq!(name(*t, *c), *n);
            }
        }
        assert_eq!(name(3, 10), "host-prohibited");
        assert_eq!(name(3, 13), "admin-prohibited");
        assert_eq!(name(11, 1), "time-exceeded");
        assert_eq!(name(3, 99), "unreachable");
        assert_eq!(name(42, 1), "type-42-code-1");
        assert_eq!(parse("unreachable code 10"), None);
    }

    #[test]
    fn icmpv6_names_are_their_own_table() {
        for (t, c, n) in NAMES6 {
            assert_eq!(parse6(n), Some((*t, *c)), "{n}");
            if let Some(c) = c {
                assert_eq!(name6(*t, *c), *n);
            }
        }
        assert_eq!(name6(1, 0), "no-route");
        assert_eq!(name6(1, 1), "admin-prohibited");
        assert_eq!(name6(1, 4), "port-unreachable");
        assert_eq!(name6(1, 9), "unreachable");
        assert_eq!(name6(2, 0), "packet-too-big");
        assert_eq!(name6(135, 0), "neighbor-solicitation");
        // One word, one meaning per family.
        assert_eq!(parse("admin-prohibited"), Some((3, Some(13))));
        assert_eq!(parse6("admin-prohibited"), Some((1, Some(1))));
        assert_eq!(parse("no-route"), None);
        assert!(known("no-route") && known("host-prohibited") && !known("nope"));
        assert_eq!(words().matches("port-unreachable").count(), 1);
        assert!(is_error6(1) && !is_error6(128));
    }
}
