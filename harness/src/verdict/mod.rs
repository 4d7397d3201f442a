//! Judging evidence: expectations against observations (`checks`) and the
//! why-line (`explain`). Pure functions of the plan and the evidence.

pub mod checks;
pub mod explain;
