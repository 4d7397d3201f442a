//! Everything that talks to the kernel: namespaces (every `setns` happens in
//! `netns`), rtnetlink objects, tc, sysctls, counters, packet sockets, the
//! drop monitor (BPF), firewall read-back, ethtool, subprocesses, processes
//! held by pidfd, the clock.

pub mod btf;
pub mod capture;
pub mod clock;
pub mod cmd;
pub mod counters;
pub mod drops;
pub mod ethtool;
pub mod firewall;
pub mod link;
pub mod netns;
pub mod pidfd;
pub mod rawnl;
pub mod rlimit;
pub mod sysctl;
pub mod tc;
