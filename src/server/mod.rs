//! The roof: what answers on the network. A block's [`chain`] of stages (zone, loop
//! guard, cache, forward) is run by the [`driver`] for every packet the transports
//! ([`udp`], [`tcp`]) hand it; [`observe`] records each query once.

pub mod build;
pub mod chain;
pub mod driver;
pub mod observe;
pub mod tcp;
pub mod transfer;
pub mod udp;
pub mod udp_batch;
pub mod zone_forward;

pub use chain::{Chain, Plugin, Stage};
pub use driver::{Driver, Origin, Replier, Step, Transport};
pub use observe::{Observation, Observer};

#[cfg(test)]
mod tests;
