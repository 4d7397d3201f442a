//! Front ends over the layers: the suite (discover, preflight, run one), kept
//! topologies (`--keep`, `shell`, `down`), the benchmark.

pub mod bench;
pub mod floor;
pub mod keep;
pub mod preflight;
pub mod suite;
