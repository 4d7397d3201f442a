//! The record a run leaves behind: typed evidence (`evidence.json`), the
//! captured frames in it, the topology as drawn, and where artifacts go.
//! Data only; read by the verdict, the renderers and the kernel matrix.

pub mod frames;
pub mod outcome;
pub mod record;
pub mod topo;
