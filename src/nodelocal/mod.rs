//! The network half of the NodeLocal mode: the link holding the node-local addresses and
//! the fail-open steering rules, set up by the process itself and kept by reconciles.

pub mod error;
pub mod link;
pub mod settings;

pub use error::{ErrorType, SetupError};
pub use link::LinkChanges;
pub use settings::{BackendSetting, LinkKind, NetworkSettings};
