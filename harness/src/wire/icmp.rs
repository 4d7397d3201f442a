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
}
