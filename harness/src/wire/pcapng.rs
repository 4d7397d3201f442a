//! One pcapng section from several interfaces' captures: an Interface
//! Description Block per interface (named `ns/dev`, with its link type and
//! ns timestamps), then every frame as an Enhanced Packet Block with its
//! direction, all in time order. Frame numbers are what Wireshark shows
//! (1-based, file order), so the evidence can point at a frame.
//!
//! Block and option layout: the pcapng specification
//! (draft-ietf-opsawg-pcapng), sections 4.1 (SHB), 4.2 (IDB, `if_name`,
//! `if_tsresol`) and 4.3 (EPB; the flags word in 4.3.1).

use std::borrow::Cow;
use std::io::Write;
use std::time::Duration;

use anyhow::{anyhow, Result};
use pcap_file::pcapng::blocks::enhanced_packet::{EnhancedPacketBlock, EnhancedPacketOption};
use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
use pcap_file::pcapng::blocks::section_header::{SectionHeaderBlock, SectionHeaderOption};
use pcap_file::pcapng::PcapNgWriter;
use pcap_file::{DataLink, Endianness};

use crate::wire::linktype::LinkType;
use crate::wire::packet::{Direction, Frame};

/// `epb_flags` bits 0-1 (spec 4.3.1): 01 inbound, 10 outbound.
pub const EPB_INBOUND: u32 = 1;
pub const EPB_OUTBOUND: u32 = 2;

/// `if_tsresol` = 9: timestamps count ns since the epoch (pcap-file writes
/// a `Duration`'s ns as the raw 64-bit timestamp).
const TSRESOL_NS: u8 = 9;

/// The `epb_flags` word of a frame that went `d`.
pub fn epb_flags(d: Direction) -> u32 {
    match d {
        Direction::In => EPB_INBOUND,
        Direction::Out => EPB_OUTBOUND,
    }
}

/// The direction an `epb_flags` word gives, if it gives one.
pub fn direction_of_flags(flags: u32) -> Option<Direction> {
    match flags & 3 {
        EPB_INBOUND => Some(Direction::In),
        EPB_OUTBOUND => Some(Direction::Out),
        _ => None,
    }
}

/// One captured interface and the frames it saw, in arrival order.
pub struct Stream<'a> {
    /// `ns/dev`: the IDB's `if_name`, as Wireshark's `frame.interface_name` shows it.
    pub name: &'a str,
    /// The device's link type (every frame of the stream begins so).
    pub link: LinkType,
    /// The capture's snap length, bytes.
    pub snaplen: u32,
    pub frames: &'a [Frame],
}

/// The number each frame got in the file: `numbers[i][j]` for frame `j` of
/// stream `i`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Numbering(pub Vec<Vec<u32>>);

impl Numbering {
    pub fn get(&self, stream: usize, index: usize) -> Option<u32> {
        self.0.get(stream)?.get(index).copied()
    }
}

/// Writes one section to `out`: a header with `comments`, then the
/// interfaces in the order given, then every frame of every stream ordered
/// by timestamp (ties: stream order, then arrival). Returns the numbering.
///
/// Merged at the end rather than written as frames arrive: each stream is
/// read by its own thread, so arrival order across interfaces is not time
/// order, and a frame's number is only final once every stream is complete.
pub fn write<W: Write>(out: W, streams: &[Stream], comments: &[String]) -> Result<Numbering> {
    let mut options: Vec<SectionHeaderOption> =
        vec![SectionHeaderOption::UserApplication(Cow::Owned(format!("netrepro {}", env!("CARGO_PKG_VERSION"))))];
    // An option's length is 16 bits.
    options.extend(comments.iter().map(|c| SectionHeaderOption::Comment(Cow::Owned(cut(c, 60_000).to_string()))));
    let section = SectionHeaderBlock { endianness: Endianness::native(), options, ..Default::default() };
    let mut w = PcapNgWriter::with_section_header(out, section).map_err(|e| anyhow!("writing pcapng: {e}"))?;
    for s in streams {
        let idb = InterfaceDescriptionBlock {
            linktype: DataLink::from(s.link.linktype()),
            snaplen: s.snaplen,
            options: vec![
                InterfaceDescriptionOption::IfName(Cow::Owned(s.name.to_string())),
                InterfaceDescriptionOption::IfTsResol(TSRESOL_NS),
            ],
        };
        w.write_pcapng_block(idb).map_err(|e| anyhow!("writing pcapng interface {}: {e}", s.name))?;
    }
    let mut order: Vec<(u64, usize, usize)> = streams
        .iter()
        .enumerate()
        .flat_map(|(i, s)| s.frames.iter().enumerate().map(move |(j, f)| (f.ts_ns, i, j)))
        .collect();
    order.sort_unstable();
    let mut numbers: Vec<Vec<u32>> = streams.iter().map(|s| vec![0; s.frames.len()]).collect();
    for (n, (_, i, j)) in order.into_iter().enumerate() {
        let f = &streams[i].frames[j];
        let epb = EnhancedPacketBlock {
            interface_id: i as u32,
            timestamp: Duration::from_nanos(f.ts_ns),
            original_len: f.wire_len.max(f.data.len() as u32),
            data: Cow::Borrowed(&f.data),
            options: vec![EnhancedPacketOption::Flags(epb_flags(f.direction))],
        };
        w.write_pcapng_block(epb).map_err(|e| anyhow!("writing pcapng frame: {e}"))?;
        numbers[i][j] = n as u32 + 1;
    }
    w.into_inner().flush()?;
    Ok(Numbering(numbers))
}

fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcapng::{Block, PcapNgReader};

    #[test]
    fn frames_merge_in_time_order_with_names_directions_and_numbers() {
        let a = [Frame::ethernet(10, Direction::Out, vec![1; 60]), Frame::ethernet(30, Direction::Out, vec![3; 60])];
        let b = [Frame::ethernet(20, Direction::In, vec![2; 61]), Frame::ethernet(30, Direction::In, vec![4; 62])];
        let stream = |name, frames| Stream { name, link: LinkType::Ethernet, snaplen: 65535, frames };
        let streams = [stream("a/eth0", &a[..]), stream("b/eth0", &b[..])];
        let mut file = Vec::new();
        let n = write(&mut file, &streams, &["kernel drop: 1 x ARP".into()]).unwrap();
        assert_eq!(n, Numbering(vec![vec![1, 3], vec![2, 4]]));

        let mut r = PcapNgReader::new(&file[..]).unwrap();
        assert!(r.section().options.contains(&SectionHeaderOption::Comment("kernel drop: 1 x ARP".into())));
        let (mut names, mut seen) = (Vec::new(), Vec::new());
        while let Some(b) = r.next_block() {
            match b.unwrap() {
                Block::InterfaceDescription(i) => {
                    assert!(i.options.contains(&InterfaceDescriptionOption::IfTsResol(9)));
                    assert_eq!(i.linktype, DataLink::ETHERNET);
                    names.extend(i.options.iter().find_map(|o| match o {
                        InterfaceDescriptionOption::IfName(n) => Some(n.to_string()),
                        _ => None,
                    }));
                }
                Block::EnhancedPacket(e) => {
                    let flags = e.options.iter().find_map(|o| match o {
                        EnhancedPacketOption::Flags(f) => Some(*f),
                        _ => None,
                    });
                    seen.push((e.interface_id, e.timestamp.as_nanos() as u64, flags.and_then(direction_of_flags)));
                }
                _ => {}
            }
        }
        assert_eq!(names, ["a/eth0", "b/eth0"]);
        assert_eq!(
            seen,
            [
                (0, 10, Some(Direction::Out)),
                (1, 20, Some(Direction::In)),
                (0, 30, Some(Direction::Out)),
                (1, 30, Some(Direction::In))
            ]
        );
    }
}
