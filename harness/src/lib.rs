//! netrepro: Linux container-networking incidents as tests on a real kernel.
//!
//! Data flows one way: case file → [`plan`] (validated) → [`topology`] →
//! phases ([`runner`]: steps, [`probe`]s, [`capture`]s) → [`evidence`] →
//! verdict and report.

pub mod bench;
pub mod capture;
pub mod checks;
pub mod cmd;
pub mod cmp;
pub mod counters;
pub mod drops;
pub mod ethtool;
pub mod evidence;
pub mod explain;
pub mod firewall;
pub mod globals;
pub mod hostguard;
pub mod inject;
pub mod keep;
pub mod kernel;
pub mod link;
pub mod matrix;
pub mod netns;
pub mod packet;
pub mod plan;
pub mod probe;
pub mod report;
pub mod runner;
pub mod scaffold;
pub mod spec;
pub mod suite;
pub mod sysctl;
pub mod tc;
pub mod topology;
