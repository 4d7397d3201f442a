//! rtnetlink by noun, verbs as `ip(8)` has them: `link` (add, set, del),
//! `addr` (add, del), `route` (add, del). Each call runs on the namespace's
//! own thread ([`crate::sys::netns::NsCtx`]).

pub mod addr;
pub mod fdb;
pub mod link;
pub mod neigh;
pub mod route;
pub mod rule;
