//! The one ICMP vocabulary: every name an expectation, a matcher, a probe
//! outcome, a frame summary or the report uses for an ICMP type/code comes
//! from [`NAMES`]. Words follow iptables' `--reject-with` and tcpdump
//! (without the `icmp-` prefix); codes are RFC 792, RFC 1122 §3.2.2.1 and
//! RFC 1812 §5.2.7.1 (codes 9–15).

/// `(type, code, name)`; `None` code: the name covers every code of the type.
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

/// The most specific name of `(type, code)`: `host-prohibited` for 3/10,
/// `time-exceeded` for any code of 11; `type-T-code-C` when the table has
/// neither.
pub fn name(t: u8, c: u8) -> String {
    NAMES
        .iter()
        .find(|(ty, code, _)| *ty == t && *code == Some(c))
        .or_else(|| NAMES.iter().find(|(ty, code, _)| *ty == t && code.is_none()))
        .map(|(_, _, n)| n.to_string())
        .unwrap_or_else(|| format!("type-{t}-code-{c}"))
}

/// The `(type, code)` a word names (`None` code: any code), or `None` for
/// a word that is not in the vocabulary.
pub fn parse(word: &str) -> Option<(u8, Option<u8>)> {
    NAMES.iter().find(|(_, _, n)| *n == word).map(|(t, c, _)| (*t, *c))
}

/// ICMPv6 (RFC 4443, RFC 4861 NDP, RFC 2710/3810 MLD) type/code names, for
/// summaries and the report only (matchers speak of IPv4): ip6tables'
/// `--icmpv6-type` words, and nft's for MLD, which ip6tables has none for.
pub const NAMES_V6: &[(u8, Option<u8>, &str)] = &[
    (1, None, "destination-unreachable"),
    (1, Some(0), "no-route"),
    (1, Some(1), "communication-prohibited"),
    (1, Some(2), "beyond-scope"),
    (1, Some(3), "address-unreachable"),
    (1, Some(4), "port-unreachable"),
    (1, Some(5), "failed-policy"),
    (1, Some(6), "reject-route"),
    (2, None, "packet-too-big"),
    (3, None, "time-exceeded"),
    (3, Some(0), "ttl-zero-during-transit"),
    (3, Some(1), "ttl-zero-during-reassembly"),
    (4, None, "parameter-problem"),
    (4, Some(0), "bad-header"),
    (4, Some(1), "unknown-header-type"),
    (4, Some(2), "unknown-option"),
    (128, None, "echo-request"),
    (129, None, "echo-reply"),
    (130, None, "mld-listener-query"),
    (131, None, "mld-listener-report"),
    (132, None, "mld-listener-done"),
    (133, None, "router-solicitation"),
    (134, None, "router-advertisement"),
    (135, None, "neighbour-solicitation"),
    (136, None, "neighbour-advertisement"),
    (137, None, "redirect"),
    (143, None, "mld2-listener-report"),
];

/// The most specific ICMPv6 name of `(type, code)`, as [`name`] does for
/// ICMP: `neighbour-solicitation` for 135, `no-route` for 1/0,
/// `type-T-code-C` when the table has neither.
pub fn name6(t: u8, c: u8) -> String {
    NAMES_V6
        .iter()
        .find(|(ty, code, _)| *ty == t && *code == Some(c))
        .or_else(|| NAMES_V6.iter().find(|(ty, code, _)| *ty == t && code.is_none()))
        .map(|(_, _, n)| n.to_string())
        .unwrap_or_else(|| format!("type-{t}-code-{c}"))
}

/// Whether an ICMPv6 type is one the kernel sends on its own to keep a
/// link working (MLD membership, NDP router and neighbour discovery), not
/// anything a probe asked for.
pub fn is_link_control_v6(t: u8) -> bool {
    matches!(t, 130..=137 | 143)
}

/// Every word, space-separated, for error messages.
pub fn words() -> String {
    NAMES.iter().map(|(_, _, n)| *n).collect::<Vec<_>>().join(" ")
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
    fn icmpv6_names_follow_ip6tables_and_nft() {
        for (t, c, n) in NAMES_V6 {
            if let Some(c) = c {
                assert_eq!(name6(*t, *c), *n);
            }
        }
        assert_eq!(name6(135, 0), "neighbour-solicitation");
        assert_eq!(name6(136, 0), "neighbour-advertisement");
        assert_eq!(name6(133, 0), "router-solicitation");
        assert_eq!(name6(134, 0), "router-advertisement");
        assert_eq!(name6(143, 0), "mld2-listener-report");
        assert_eq!(name6(128, 0), "echo-request");
        assert_eq!(name6(1, 1), "communication-prohibited");
        assert_eq!(name6(1, 9), "destination-unreachable");
        assert_eq!(name6(200, 1), "type-200-code-1");
        assert!(is_link_control_v6(143) && is_link_control_v6(135) && !is_link_control_v6(128));
    }
}
