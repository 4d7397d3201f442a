//! Judging evidence: expectations against observations (`check`, one file per kind) and the
//! why-line (`explain`). Pure functions of the plan and the evidence.

pub mod check;
pub mod explain;
