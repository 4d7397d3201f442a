//! What keeps the host as it was: the host guard (snapshot before, diff after),
//! the guardian of global settings (restored however the run ends), and
//! directories only the caller can write.

pub mod globals;
pub mod hostguard;
pub mod owndir;
