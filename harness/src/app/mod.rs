//! Front ends over the layers: the suite (discover, preflight, run one), kept
//! topologies (`--keep`, `shell`, `down`), the soak, the benchmark.

pub mod bench;
pub mod keep;
pub mod preflight;
pub mod soak;
pub mod suite;
