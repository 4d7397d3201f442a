//! What keeps the host as it was: the host guard (snapshot before, diff after)
//! and the guardian of global settings (restored however the run ends).

pub mod globals;
pub mod hostguard;
