//! What people and machines read: `report.html` and the kernel matrix
//! (table and HTML), built from the evidence alone, never from text parsed
//! back; a run's results as TAP 13 and JUnit XML.

pub mod fragments;
pub mod junit;
pub mod matrix;
pub mod report;
pub mod tap;
pub mod timeline;
