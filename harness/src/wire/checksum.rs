//! The Internet checksum (RFC 1071): ICMP, and the IPv4, TCP and UDP headers
//! a crafted frame carries.

/// One's-complement sum of `data` as big-endian 16-bit words (an odd last
/// byte padded with zero), complemented: the value that goes in the header.
pub fn inet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    for chunk in data.chunks(2) {
        let word = if chunk.len() == 2 { u16::from_be_bytes([chunk[0], chunk[1]]) } else { (chunk[0] as u16) << 8 };
        sum += word as u32;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
