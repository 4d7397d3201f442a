//! What people read: `report.html` and the kernel matrix (table and HTML),
//! built from the evidence alone, never from text parsed back.

pub mod fragments;
pub mod matrix;
pub mod report;
