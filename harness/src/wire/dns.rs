//! The little of the DNS wire format (RFC 1035, AAAA from RFC 3596) that
//! a glibc-style lookup and a test responder need: one question, A and
//! AAAA answers, rcodes by name. Hand-written: a query is 30 bytes.

use std::net::IpAddr;

/// Record types the probe asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum QType {
    A,
    Aaaa,
}

impl QType {
    pub fn code(self) -> u16 {
        match self {
            QType::A => 1,
            QType::Aaaa => 28,
        }
    }
    pub fn word(self) -> &'static str {
        match self {
            QType::A => "A",
            QType::Aaaa => "AAAA",
        }
    }
    pub fn parse(w: &str) -> Option<QType> {
        match w {
            "A" => Some(QType::A),
            "AAAA" => Some(QType::Aaaa),
            _ => None,
        }
    }
    fn of_code(c: u16) -> Option<QType> {
        [QType::A, QType::Aaaa].into_iter().find(|q| q.code() == c)
    }
}

/// RCODE names (RFC 1035 §4.1.1, RFC 6895).
pub const RCODES: &[(u8, &str)] =
    &[(0, "NOERROR"), (1, "FORMERR"), (2, "SERVFAIL"), (3, "NXDOMAIN"), (4, "NOTIMP"), (5, "REFUSED")];

pub fn rcode_name(c: u8) -> String {
    RCODES.iter().find(|(n, _)| *n == c).map(|(_, w)| w.to_string()).unwrap_or_else(|| format!("RCODE{c}"))
}

pub fn rcode_of(w: &str) -> Option<u8> {
    RCODES.iter().find(|(_, n)| *n == w).map(|(c, _)| *c)
}

/// Whether `name` is a domain name the wire can carry: labels of 1–63
/// bytes, 253 in all.
pub fn valid_name(name: &str) -> bool {
    let n = name.trim_end_matches('.');
    !n.is_empty() && n.len() <= 253 && n.split('.').all(|l| !l.is_empty() && l.len() <= 63 && l.is_ascii())
}

fn put_name(out: &mut Vec<u8>, name: &str) {
    for l in name.trim_end_matches('.').split('.') {
        out.push(l.len() as u8);
        out.extend_from_slice(l.as_bytes());
    }
    out.push(0);
}

/// A recursive query (RD set) for `name`/`qtype` with `id`.
pub fn query(id: u16, name: &str, qtype: QType) -> Vec<u8> {
    let mut q = Vec::with_capacity(32);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    put_name(&mut q, name);
    q.extend_from_slice(&qtype.code().to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes());
    q
}

/// Reads a (possibly compressed) name at `at`; returns it and where the
/// record continues.
fn read_name(msg: &[u8], mut at: usize) -> Option<(String, usize)> {
    let mut labels = Vec::new();
    let mut end = None;
    for _ in 0..128 {
        let len = *msg.get(at)? as usize;
        if len & 0xc0 == 0xc0 {
            let ptr = ((len & 0x3f) << 8) | *msg.get(at + 1)? as usize;
            end.get_or_insert(at + 2);
            at = ptr;
            continue;
        }
        if len == 0 {
            return Some((labels.join("."), end.unwrap_or(at + 1)));
        }
        labels.push(String::from_utf8_lossy(msg.get(at + 1..at + 1 + len)?).into_owned());
        at += 1 + len;
    }
    None
}

/// A parsed response: its id, rcode, question type and the addresses of
/// its A/AAAA answers.
#[derive(Debug, Clone, PartialEq)]
pub struct Response {
    pub id: u16,
    pub rcode: u8,
    pub qtype: Option<QType>,
    pub answers: Vec<IpAddr>,
    pub truncated: bool,
}

pub fn parse_response(msg: &[u8]) -> Option<Response> {
    if msg.len() < 12 || msg[2] & 0x80 == 0 {
        return None;
    }
    let id = u16::from_be_bytes([msg[0], msg[1]]);
    let rcode = msg[3] & 0x0f;
    let truncated = msg[2] & 0x02 != 0;
    let qd = u16::from_be_bytes([msg[4], msg[5]]);
    let an = u16::from_be_bytes([msg[6], msg[7]]);
    let mut at = 12;
    let mut qtype = None;
    for _ in 0..qd {
        let (_, next) = read_name(msg, at)?;
        qtype = QType::of_code(u16::from_be_bytes([*msg.get(next)?, *msg.get(next + 1)?]));
        at = next + 4;
    }
    let mut answers = Vec::new();
    for _ in 0..an {
        let (_, next) = read_name(msg, at)?;
        let f = msg.get(next..next + 10)?;
        let (ty, len) = (u16::from_be_bytes([f[0], f[1]]), u16::from_be_bytes([f[8], f[9]]) as usize);
        let data = msg.get(next + 10..next + 10 + len)?;
        match (ty, len) {
            (1, 4) => answers.push(IpAddr::from(<[u8; 4]>::try_from(data).ok()?)),
            (28, 16) => answers.push(IpAddr::from(<[u8; 16]>::try_from(data).ok()?)),
            _ => {}
        }
        at = next + 10 + len;
    }
    Some(Response { id, rcode, qtype, answers, truncated })
}

/// A parsed query: id, name, type code.
pub fn parse_query(msg: &[u8]) -> Option<(u16, String, u16)> {
    if msg.len() < 12 || msg[2] & 0x80 != 0 || u16::from_be_bytes([msg[4], msg[5]]) != 1 {
        return None;
    }
    let (name, next) = read_name(msg, 12)?;
    Some((u16::from_be_bytes([msg[0], msg[1]]), name, u16::from_be_bytes([*msg.get(next)?, *msg.get(next + 1)?])))
}

/// The answer to `q` (a query as received): its question echoed, `rcode`,
/// and an A or AAAA record (TTL 30) for each address of the asked family.
pub fn answer(q: &[u8], rcode: u8, addrs: &[IpAddr]) -> Option<Vec<u8>> {
    let (_, _, qtype) = parse_query(q)?;
    let (_, qend) = read_name(q, 12)?;
    let question = q.get(12..qend + 4)?;
    let recs: Vec<&IpAddr> =
        addrs.iter().filter(|a| matches!((a, qtype), (IpAddr::V4(_), 1) | (IpAddr::V6(_), 28))).collect();
    let mut r = Vec::new();
    r.extend_from_slice(&q[0..2]);
    r.push(0x80 | (q[2] & 0x01)); // QR, RD copied
    r.push(0x80 | (rcode & 0x0f)); // RA
    r.extend_from_slice(&[0, 1]);
    r.extend_from_slice(&(recs.len() as u16).to_be_bytes());
    r.extend_from_slice(&[0, 0, 0, 0]);
    r.extend_from_slice(question);
    for a in recs {
        r.extend_from_slice(&[0xc0, 12]);
        let (ty, data): (u16, Vec<u8>) = match a {
            IpAddr::V4(v) => (1, v.octets().to_vec()),
            IpAddr::V6(v) => (28, v.octets().to_vec()),
        };
        r.extend_from_slice(&ty.to_be_bytes());
        r.extend_from_slice(&[0, 1, 0, 0, 0, 30]);
        r.extend_from_slice(&(data.len() as u16).to_be_bytes());
        r.extend_from_slice(&data);
    }
    Some(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_query_answered_parses_back() {
        let q = query(0x1234, "kubernetes.default.svc.cluster.local", QType::A);
        assert_eq!(parse_query(&q), Some((0x1234, "kubernetes.default.svc.cluster.local".into(), 1)));
        let addrs: Vec<IpAddr> = vec!["10.96.0.1".parse().unwrap(), "fd00::1".parse().unwrap()];
        let r = parse_response(&answer(&q, 0, &addrs).unwrap()).unwrap();
        assert_eq!((r.id, r.rcode, r.qtype), (0x1234, 0, Some(QType::A)));
        assert_eq!(r.answers, vec![addrs[0]]);
        let q6 = query(7, "example.org.", QType::Aaaa);
        let r = parse_response(&answer(&q6, 0, &addrs).unwrap()).unwrap();
        assert_eq!((r.qtype, r.answers.clone()), (Some(QType::Aaaa), vec![addrs[1]]));
        let r = parse_response(&answer(&q6, 3, &[]).unwrap()).unwrap();
        assert_eq!(rcode_name(r.rcode), "NXDOMAIN");
        assert!(r.answers.is_empty());
        assert_eq!(parse_response(&q), None, "a query is not a response");
        assert!(valid_name("a.b") && !valid_name("a..b") && !valid_name(&"x".repeat(64)));
        assert_eq!(rcode_of("SERVFAIL"), Some(2));
    }

    #[test]
    fn truncated_or_looping_messages_do_not_panic() {
        let q = query(1, "a.b", QType::A);
        let full = answer(&q, 0, &["1.2.3.4".parse().unwrap()]).unwrap();
        for n in 0..full.len() {
            let _ = parse_response(&full[..n]);
            let _ = parse_query(&full[..n]);
        }
        let mut looped = full.clone();
        let at = looped.len() - 16;
        looped[at] = 0xc0;
        looped[at + 1] = at as u8;
        let _ = parse_response(&looped);
    }
}
