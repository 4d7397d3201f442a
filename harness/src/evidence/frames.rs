//! Captured frames as the evidence records them: typed fields per frame,
//! per interface and probe window, each pointing at its frame in the phase's
//! pcapng. The report and the explainer read these fields, never text.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::wire::headers::Headers;
use crate::wire::kind::FrameKind;
use crate::wire::packet::{Direction, Frame};

/// Frames recorded per interface per probe window; past it the record says
/// how many it left out (the pcapng has them all).
pub const MAX_FRAMES_PER_WINDOW: usize = 10_000;

/// `<root>/<case>/<phase>.pcapng`: every frame of every captured interface
/// in the phase, one file (the phase directory held the old per-interface pcaps).
pub fn pcapng_path(root: &Path, id: &str, phase: &str) -> PathBuf {
    root.join(id).join(pcapng_name(phase))
}

/// `<phase>.pcapng`, the file's name in its case directory.
pub fn pcapng_name(phase: &str) -> String {
    format!("{phase}.pcapng")
}

/// One captured frame.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct FrameRecord {
    /// Kernel timestamp, ns since the Unix epoch: the pcapng's clock and
    /// that of `window_ns`.
    pub t_ns: u64,
    /// The capturing interface, `ns/dev` (the pcapng's interface name).
    pub iface: String,
    /// From the kernel's `sll_pkttype`: `out` for `PACKET_OUTGOING`, `in`
    /// otherwise. The pcapng's `epb_flags` say the same.
    pub direction: Direction,
    /// Its number in the phase's pcapng, 1-based, as Wireshark numbers
    /// frames (`frame.number`).
    pub pcap_frame: u32,
    /// Length on the wire, bytes.
    pub len: u32,
    pub headers: Headers,
    /// The kernel's `TP_STATUS_CSUMNOTREADY` for it (`PACKET_AUXDATA`): a
    /// `CHECKSUM_PARTIAL` frame whose L4 checksum is left for offload (the
    /// matcher word `csum-not-ready`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub csum_not_ready: bool,
    /// One line for people (`IP a > b: ICMP echo-reply`); never parsed.
    pub summary: String,
}

impl FrameRecord {
    /// The record of `f`, captured on `iface`; `pcap_frame` is 0 until the
    /// phase's pcapng is written and numbers it.
    pub fn of(f: &Frame, iface: &str) -> FrameRecord {
        let headers = f.headers();
        let mut summary = headers.summary(f.wire_len as usize);
        if f.csum_not_ready {
            summary.push_str(" (csum not ready)");
        }
        FrameRecord {
            t_ns: f.ts_ns,
            iface: iface.to_string(),
            direction: f.direction,
            pcap_frame: 0,
            len: f.wire_len,
            headers,
            csum_not_ready: f.csum_not_ready,
            summary,
        }
    }

    pub fn kind(&self) -> FrameKind {
        FrameKind::of(&self.headers)
    }
}

/// The frames one interface saw in a probe's window, in arrival order.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct WindowFrames {
    pub frames: Vec<FrameRecord>,
    /// Frames in the window past [`MAX_FRAMES_PER_WINDOW`], not recorded here.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub truncated: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl WindowFrames {
    /// Records the first [`MAX_FRAMES_PER_WINDOW`] of `frames`, counting the rest.
    pub fn of<'a>(iface: &str, frames: impl ExactSizeIterator<Item = &'a Frame>) -> WindowFrames {
        let total = frames.len();
        let frames: Vec<FrameRecord> = frames.take(MAX_FRAMES_PER_WINDOW).map(|f| FrameRecord::of(f, iface)).collect();
        WindowFrames { truncated: (total - frames.len()) as u64, frames }
    }

    /// Frames the window held: recorded and left out.
    pub fn total(&self) -> u64 {
        self.frames.len() as u64 + self.truncated
    }
}
