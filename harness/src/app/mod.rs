//! Front ends over the layers: the suite (discover, preflight, run one), the
//! case files (list, check, new), a run with its outputs (lines, JSON, TAP,
//! JUnit), kept topologies (`--keep`, `shell`, `down`), the soak, the benchmark.

pub mod bench;
pub mod catalog;
pub mod floor;
pub mod keep;
pub mod preflight;
pub mod run;
pub mod soak;
pub mod suite;
