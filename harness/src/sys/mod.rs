//! Everything that talks to the kernel: namespaces (every `setns` happens in
//! `netns`, or in the child of a clone: `netns`'s commands, `contain`'s
//! steps), rtnetlink objects, tc, sysctls, counters, packet sockets, the drop
//! monitor (BPF), firewall read-back, ethtool, subprocesses, `sh` steps
//! contained in a PID namespace of their own, processes held by pidfd, stop
//! signals, the clock.

pub mod btf;
pub mod capture;
pub mod clock;
pub mod cmd;
pub mod contain;
pub mod counters;
pub mod drops;
pub mod ethtool;
pub mod firewall;
pub mod link;
pub mod mountns;
pub mod netns;
pub mod pidfd;
pub mod rawnl;
pub mod rlimit;
pub mod routes;
pub mod rtnl;
pub mod signals;
pub mod sysctl;
pub mod tc;
