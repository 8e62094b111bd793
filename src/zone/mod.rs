//! The cluster zones: the write side ([`index`]) applies source events and publishes
//! per-service views ([`view`]); the read side reads names ([`names`]) and writes
//! answers ([`records`]).

pub mod acl;
pub mod explain;
pub mod index;
pub mod names;
pub mod objects;
pub mod records;
mod render;
pub mod search;
pub mod settings;
pub mod transfer;
pub mod view;

pub use index::{ClusterIndex, IndexSettings};
pub use settings::{PodMode, ZoneSettings};
pub use view::ClusterZone;
