//! The one clock every record uses: wall time in ns since the Unix epoch,
//! the clock pcap timestamps and `evidence.json` times share.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in ns since the epoch (0 if the clock is before 1970).
pub fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0)
}
