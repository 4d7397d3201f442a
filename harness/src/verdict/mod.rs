//! Judging evidence: whose drops are the incident's (`attribution`),
//! expectations against observations (`check`, one file per kind) and the
//! why-line (`explain`). Pure functions of the plan and the evidence.

pub mod attribution;
pub mod check;
pub mod explain;
