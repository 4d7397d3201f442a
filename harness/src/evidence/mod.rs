//! The record a run leaves behind: typed evidence (`evidence.json`), the
//! captured frames in it, the topology as drawn, a case's result in a run,
//! and where artifacts go and how they are written (`store`: a checked root,
//! a fresh directory per run swapped in whole). Read by the verdict, the
//! renderers and the kernel matrix.

pub mod frames;
pub mod outcome;
pub mod record;
pub mod result;
pub mod store;
pub mod topo;
