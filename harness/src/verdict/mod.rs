//! Judging evidence: whose drops are the incident's (`attribution`),
//! expectations against observations (`checks`) and the why-line
//! (`explain`). Pure functions of the plan and the evidence.

pub mod attribution;
pub mod checks;
pub mod explain;
