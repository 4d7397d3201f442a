//! The case model: TOML formats (`spec`), the typed plan the loader makes
//! of them (`plan`), kernel versions and ranges, the scaffold. Pure: reads
//! files, never touches the kernel.

pub mod cmp;
pub mod expect;
pub mod ifaces;
pub mod kernel;
pub mod object;
pub mod plan;
pub mod scaffold;
pub mod spec;
pub mod syntax;
