//! Running a case: build the topology, then per phase the steps, captures and
//! probes (with injection), recording typed evidence and judging it.

pub mod actor;
pub mod inject;
pub mod probe;
pub mod runner;
pub mod topology;
pub mod window;
pub mod witness;
