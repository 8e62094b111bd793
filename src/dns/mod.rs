//! DNS on the wire: parsing queries ([`wire`]), writing responses ([`writer`]), the
//! transport-independent handler ([`handler`]) and the UDP and TCP transports.

pub mod handler;
pub mod tcp;
pub mod udp;
pub mod udp_batch;
pub mod wire;
pub mod writer;

pub use handler::{QueryHandler, Reply, Transport};
