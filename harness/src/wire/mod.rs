//! Frames on the wire: parsing, the one vocabulary of frame kinds and ICMP
//! types/codes, matchers, summaries, checksums, pcapng. Pure: no syscalls.

pub mod checksum;
pub mod dns;
pub mod frame;
pub mod headers;
pub mod icmp;
pub mod kind;
pub mod linktype;
pub mod packet;
pub mod pcapng;
