//! The bodies of the fuzz targets (`fuzz/`), kept here so that the fuzzer and the
//! stable replay of their corpora (`cargo test`) run the same code. Each body takes
//! arbitrary bytes, drives one reader of the server the way the server drives it, and
//! panics when an invariant breaks: the fuzzer reports the panic, the replay fails.
//!
//! Errors are expected; panics are not. Answers are checked with an independent
//! decoder (hickory-proto), never with the server's own parser.

pub mod files;
pub mod query_chain;
pub mod tcp_framing;
pub mod upstream_answer;

#[cfg(test)]
mod replay;

use hickory_proto::op::Message;
use hickory_proto::serialize::binary::BinDecodable;

/// A target's body: one input, a panic when an invariant breaks.
pub type Body = fn(&[u8]);

/// The targets, by the names of their corpus and regression directories.
pub const TARGETS: &[(&str, Body)] = &[
    ("query_chain", query_chain::run),
    ("upstream_answer", upstream_answer::run),
    ("tcp_framing", tcp_framing::run),
    ("cluster_file", files::cluster_file),
    ("config", files::config),
];

/// Decodes a message the server wrote, or panics saying what it answered.
fn decode(what: &str, input: &[u8], answer: &[u8]) -> Message {
    match Message::from_bytes(answer) {
        Ok(m) => m,
        Err(e) => panic!(
            "{what}: the answer does not decode ({e})\ninput:  {input:02x?}\nanswer: {answer:02x?}"
        ),
    }
}
