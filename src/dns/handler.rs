//! From query bytes to answer bytes, independent of the transport: parse, check what the
//! wire rules require (opcode, question count, EDNS version, class), then hand the
//! question to the handler chain. Today the chain is the cluster zone and, at its end,
//! REFUSED; the forwarder slots in after the zone.

use std::sync::Arc;

use arc_swap::ArcSwap;

use super::wire::{self, CLASS_ANY, CLASS_IN, Rejected, WireError, parse_query, rcode, rtype};
use super::writer::{ADVERTISED_UDP_SIZE, ResponseWriter};
use crate::zone::names::QName;
use crate::zone::records::{self, ZoneOutcome};
use crate::zone::{ClusterZone, ZoneSettings};

/// The transport a query came over, which bounds the answer's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What became of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reply {
    /// `out` holds the response.
    Send,
    /// Nothing to send (not a query, or too broken to answer).
    Drop,
}

pub struct QueryHandler {
    zone: Arc<ClusterZone>,
    settings: ArcSwap<ZoneSettings>,
}

impl QueryHandler {
    pub fn new(zone: Arc<ClusterZone>, settings: ZoneSettings) -> Self {
        QueryHandler {
            zone,
            settings: ArcSwap::from_pointee(settings),
        }
    }

    pub fn zone(&self) -> &Arc<ClusterZone> {
        &self.zone
    }

    /// Replaces the zone settings (config reload); queries in flight finish on the old ones.
    pub fn set_settings(&self, settings: ZoneSettings) {
        self.settings.store(Arc::new(settings));
    }

    /// Answers one packet into `out` (cleared first).
    pub fn handle(&self, packet: &[u8], transport: Transport, out: &mut Vec<u8>) -> Reply {
        let q = match parse_query(packet) {
            Ok(q) => q,
            Err(Rejected {
                header: Some((id, flags)),
                error,
            }) => {
                let code = match error {
                    WireError::Opcode(_) => rcode::NOTIMP,
                    _ => rcode::FORMERR,
                };
                ResponseWriter::header_only(out, id, flags, code);
                return Reply::Send;
            }
            Err(_) => return Reply::Drop,
        };
        let limit = match (transport, q.edns) {
            (Transport::Tcp, _) => u16::MAX as usize,
            (Transport::Udp, None) => 512,
            (Transport::Udp, Some(e)) => e.udp_size.clamp(512, ADVERTISED_UDP_SIZE) as usize,
        };
        let mut w = ResponseWriter::new(out, &q, limit);
        if q.edns.is_some_and(|e| e.version > 0) {
            w.set_rcode(rcode::BADVERS);
            w.finish();
            return Reply::Send;
        }
        if q.qclass != CLASS_IN && q.qclass != CLASS_ANY {
            w.set_rcode(rcode::REFUSED as u16);
            w.finish();
            return Reply::Send;
        }
        if matches!(q.qtype, rtype::AXFR | rtype::IXFR | rtype::OPT) {
            // Zone transfers are not offered; OPT is not a question.
            w.set_rcode(if q.qtype == rtype::OPT {
                rcode::FORMERR
            } else {
                rcode::REFUSED
            } as u16);
            w.finish();
            return Reply::Send;
        }
        let name = QName::question(&q);
        let settings = self.settings.load();
        match records::answer(&self.zone, &settings, &name, q.qtype, &mut w) {
            ZoneOutcome::Answered => {}
            // The end of the chain: nobody serves this name.
            ZoneOutcome::NotOurs | ZoneOutcome::FallThrough => {
                let mut w = ResponseWriter::new(out, &q, limit);
                w.set_rcode(rcode::REFUSED as u16);
                w.finish();
                return Reply::Send;
            }
        }
        w.finish();
        Reply::Send
    }
}

/// Whether `packet` could carry a query at all: at least a header, QR clear. Transports
/// use it to drop garbage without building a response.
pub fn looks_like_query(packet: &[u8]) -> bool {
    packet.len() >= wire::HEADER_LEN && packet[2] & 0x80 == 0
}
