//! The wire floor: reading queries ([`query`]), writing responses ([`writer`]), names
//! ([`name`]), response codes and record types ([`rcode`]), reading and re-serving
//! upstream responses ([`answer`]), and rotating address records in place ([`rotate`]).
//! It imports nothing else of the crate, so everything may stand on it (a test in
//! tests/integration/layout.rs keeps it so).

pub mod answer;
pub mod name;
pub mod query;
pub mod rcode;
pub mod rotate;
pub mod writer;

pub use name::{QName, ZoneName};
pub use query::{
    Edns, HEADER_LEN, Head, MAX_LABELS, MAX_NAME_LEN, Query, Rejected, WireError, parse_query,
};
pub use rcode::{CLASS_ANY, CLASS_IN, Rcode, rtype};
