//! The record a run leaves behind: typed evidence (`evidence.json`), the
//! captured frames in it, the topology as drawn, where artifacts go, and a
//! case's result in a run. Data only; read by the verdict, the renderers and
//! the kernel matrix.

pub mod frames;
pub mod outcome;
pub mod record;
pub mod result;
pub mod topo;
