//! Writing a response straight into a reusable buffer.
//!
//! Records are appended one at a time; a record that would push the message past the
//! size limit is rolled back, and if it belonged to the answer or authority section the
//! message is marked truncated (TC). Missing additional records do not set TC (RFC 2181
//! §9). Owner names are compression pointers into the question, which always sits at
//! byte 12 — so every name we derive from the question echoes the client's case for free.

use super::query::{HEADER_LEN, Head, Query};
use super::rcode::{CLASS_IN, Rcode, rtype};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Room kept free for the OPT record (11 bytes) when the client used EDNS.
const OPT_LEN: usize = 11;
/// The EDNS UDP payload size we advertise (DNS flag day 2020).
pub const ADVERTISED_UDP_SIZE: u16 = 1232;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Section {
    Answer,
    Authority,
    Additional,
}

/// A name to write: labels of our own followed by a pointer to a name already in the
/// message, or followed by raw wire bytes (for RDATA that must not be compressed).
#[derive(Clone, Copy)]
pub enum NameRef<'n> {
    /// A pointer to a name already written at this offset.
    Ptr(u16),
    /// Our labels, then a pointer.
    LabelsPtr(&'n [&'n [u8]], u16),
    /// Our labels, then a complete uncompressed wire name (ending in the root label).
    LabelsWire(&'n [&'n [u8]], &'n [u8]),
    /// A relative dotted name (`web.shop.svc`), then a complete uncompressed wire name.
    DottedWire(&'n str, &'n [u8]),
}

pub struct ResponseWriter<'b> {
    buf: &'b mut Vec<u8>,
    state: WriterState,
}

/// Where a response stands, apart from its bytes: kept while the query waits for an
/// upstream, so that the response can be resumed where it was left.
#[derive(Debug, Clone, Copy)]
pub struct WriterState {
    limit: usize,
    edns: bool,
    counts: [u16; 3],
    /// Set once a record of this section (or an earlier one) did not fit.
    full: Option<Section>,
    truncated: bool,
    rcode: Rcode,
    flags: u16,
}

impl<'b> ResponseWriter<'b> {
    /// Starts a response to `q`: header and echoed question. `max_size` is the transport
    /// limit (65535 for TCP, the EDNS size or 512 for UDP).
    pub fn new(buf: &'b mut Vec<u8>, q: &Query<'_>, max_size: usize) -> Self {
        Self::for_head(buf, &q.head(), q.packet, max_size)
    }

    /// As [`ResponseWriter::new`], for a query known by its [`Head`] and its packet.
    pub fn for_head(buf: &'b mut Vec<u8>, head: &Head, packet: &[u8], max_size: usize) -> Self {
        buf.clear();
        buf.extend_from_slice(&head.id.to_be_bytes());
        // QR, opcode as sent, RD and CD copied.
        let f = head.flags;
        let flags = 0x8000 | (f & 0x7800) | (f & 0x0100) | (f & 0x0010);
        buf.extend_from_slice(&[0; 10]);
        buf.extend_from_slice(head.question_wire(packet));
        let edns = head.edns.is_some();
        ResponseWriter {
            buf,
            state: WriterState {
                limit: max_size.saturating_sub(if edns { OPT_LEN } else { 0 }),
                edns,
                counts: [0; 3],
                full: None,
                truncated: false,
                rcode: Rcode::NOERROR,
                flags,
            },
        }
    }

    /// Puts the response aside (its bytes stay in the buffer) to [`ResponseWriter::resume`]
    /// it later.
    pub fn suspend(self) -> WriterState {
        self.state
    }

    /// Goes on writing a response put aside with [`ResponseWriter::suspend`]; `buf` holds
    /// its bytes as they were.
    pub fn resume(buf: &'b mut Vec<u8>, state: WriterState) -> Self {
        ResponseWriter { buf, state }
    }

    /// A response with just a header (and no question): for packets whose question
    /// could not be read.
    pub fn header_only(buf: &mut Vec<u8>, id: u16, request_flags: u16, code: Rcode) {
        buf.clear();
        buf.extend_from_slice(&id.to_be_bytes());
        let flags = 0x8000 | (request_flags & 0x7900) | u16::from(code.header_bits());
        buf.extend_from_slice(&flags.to_be_bytes());
        buf.extend_from_slice(&[0; 8]);
    }

    pub fn set_rcode(&mut self, code: Rcode) {
        self.state.rcode = code;
    }

    pub fn rcode(&self) -> Rcode {
        self.state.rcode
    }

    pub fn set_authoritative(&mut self) {
        self.state.flags |= 0x0400;
    }

    pub fn set_recursion_available(&mut self) {
        self.state.flags |= 0x0080;
    }

    pub fn set_truncated(&mut self) {
        self.state.truncated = true;
    }

    pub fn count(&self, section: Section) -> u16 {
        self.state.counts[section as usize]
    }

    /// The message as written so far.
    pub fn bytes(&self) -> &[u8] {
        self.buf
    }

    /// Appends a record given in wire parts: an uncompressed owner name and RDATA that
    /// holds no compression pointers (records relayed from an upstream answer).
    pub fn raw_record(
        &mut self,
        s: Section,
        owner: &[u8],
        rtype: u16,
        ttl: u32,
        rdata: &[u8],
    ) -> bool {
        self.record(s, NameRef::LabelsWire(&[], owner), rtype, ttl, |w| {
            w.buf.extend_from_slice(rdata)
        })
    }

    /// Current length of the message: the offset the next byte will have.
    pub fn position(&self) -> u16 {
        self.buf.len() as u16
    }

    /// Whether records can still go into `section` (nothing there or before has been cut).
    pub fn has_room(&self, section: Section) -> bool {
        self.state.full.is_none_or(|f| section < f)
    }

    pub fn a(&mut self, s: Section, owner: NameRef<'_>, ttl: u32, ip: Ipv4Addr) -> bool {
        self.record(s, owner, rtype::A, ttl, |w| {
            w.buf.extend_from_slice(&ip.octets())
        })
    }

    pub fn aaaa(&mut self, s: Section, owner: NameRef<'_>, ttl: u32, ip: Ipv6Addr) -> bool {
        self.record(s, owner, rtype::AAAA, ttl, |w| {
            w.buf.extend_from_slice(&ip.octets())
        })
    }

    /// Writes an SRV record and returns the offset of its target name (for glue owners),
    /// or `None` when it did not fit.
    pub fn srv(
        &mut self,
        s: Section,
        owner: NameRef<'_>,
        ttl: u32,
        (priority, weight, port): (u16, u16, u16),
        target: NameRef<'_>,
    ) -> Option<u16> {
        let mut at = 0;
        self.record(s, owner, rtype::SRV, ttl, |w| {
            w.buf.extend_from_slice(&priority.to_be_bytes());
            w.buf.extend_from_slice(&weight.to_be_bytes());
            w.buf.extend_from_slice(&port.to_be_bytes());
            at = w.position();
            w.name(target);
        })
        .then_some(at)
    }

    /// Writes a record whose RDATA is one name (CNAME, PTR, NS); returns the offset of
    /// that name, or `None` when it did not fit.
    pub fn name_record(
        &mut self,
        s: Section,
        owner: NameRef<'_>,
        rtype: u16,
        ttl: u32,
        target: NameRef<'_>,
    ) -> Option<u16> {
        let mut at = 0;
        self.record(s, owner, rtype, ttl, |w| {
            at = w.position();
            w.name(target);
        })
        .then_some(at)
    }

    pub fn txt(&mut self, s: Section, owner: NameRef<'_>, ttl: u32, text: &[u8]) -> bool {
        self.record(s, owner, rtype::TXT, ttl, |w| {
            w.buf.push(text.len() as u8);
            w.buf.extend_from_slice(text);
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub fn soa(
        &mut self,
        s: Section,
        owner: NameRef<'_>,
        ttl: u32,
        mname: NameRef<'_>,
        rname: NameRef<'_>,
        timers: [u32; 5],
    ) -> bool {
        self.record(s, owner, rtype::SOA, ttl, |w| {
            w.name(mname);
            w.name(rname);
            for t in timers {
                w.buf.extend_from_slice(&t.to_be_bytes());
            }
        })
    }

    fn name(&mut self, n: NameRef<'_>) {
        let labels = |buf: &mut Vec<u8>, labels: &[&[u8]]| {
            for l in labels {
                buf.push(l.len() as u8);
                buf.extend_from_slice(l);
            }
        };
        match n {
            NameRef::Ptr(p) => self.buf.extend_from_slice(&(0xc000 | p).to_be_bytes()),
            NameRef::LabelsPtr(l, p) => {
                labels(self.buf, l);
                self.buf.extend_from_slice(&(0xc000 | p).to_be_bytes());
            }
            NameRef::LabelsWire(l, wire) => {
                labels(self.buf, l);
                self.buf.extend_from_slice(wire);
            }
            NameRef::DottedWire(dotted, wire) => {
                for l in dotted.split('.') {
                    self.buf.push(l.len() as u8);
                    self.buf.extend_from_slice(l.as_bytes());
                }
                self.buf.extend_from_slice(wire);
            }
        }
    }

    /// Appends one record; rolls it back if the message would exceed the limit.
    fn record(
        &mut self,
        s: Section,
        owner: NameRef<'_>,
        rtype: u16,
        ttl: u32,
        rdata: impl FnOnce(&mut Self),
    ) -> bool {
        debug_assert!(
            self.state.counts[s as usize + 1..].iter().all(|&c| c == 0),
            "sections are written in order"
        );
        if !self.has_room(s) {
            return false;
        }
        let start = self.buf.len();
        self.name(owner);
        self.buf.extend_from_slice(&rtype.to_be_bytes());
        self.buf.extend_from_slice(&CLASS_IN.to_be_bytes());
        self.buf.extend_from_slice(&ttl.to_be_bytes());
        let rdlen_at = self.buf.len();
        self.buf.extend_from_slice(&[0, 0]);
        rdata(self);
        let rdlen = self.buf.len() - rdlen_at - 2;
        if self.buf.len() > self.state.limit || rdlen > u16::MAX as usize {
            self.buf.truncate(start);
            self.state.full = Some(s);
            if s != Section::Additional {
                self.state.truncated = true;
            }
            return false;
        }
        self.buf[rdlen_at..rdlen_at + 2].copy_from_slice(&(rdlen as u16).to_be_bytes());
        self.state.counts[s as usize] += 1;
        true
    }

    /// Completes the message: header counts, flags, rcode and the OPT record.
    pub fn finish(self) {
        let ResponseWriter { buf, state } = self;
        let mut flags = state.flags | u16::from(state.rcode.header_bits());
        if state.truncated {
            flags |= 0x0200;
        }
        let b = &mut *buf;
        b[2..4].copy_from_slice(&flags.to_be_bytes());
        b[4..6].copy_from_slice(&1u16.to_be_bytes());
        b[6..8].copy_from_slice(&state.counts[0].to_be_bytes());
        b[8..10].copy_from_slice(&state.counts[1].to_be_bytes());
        let mut arcount = state.counts[2];
        if state.edns {
            arcount += 1;
            b.push(0); // root owner
            b.extend_from_slice(&rtype::OPT.to_be_bytes());
            b.extend_from_slice(&ADVERTISED_UDP_SIZE.to_be_bytes());
            b.push(state.rcode.extended_bits()); // extended rcode
            b.extend_from_slice(&[0, 0, 0]); // version 0, no DO (we do not sign)
            b.extend_from_slice(&[0, 0]); // no options
        }
        b[10..12].copy_from_slice(&arcount.to_be_bytes());
        debug_assert!(b.len() >= HEADER_LEN);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::parse_query;

    fn query() -> Vec<u8> {
        let mut p = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        p.extend_from_slice(b"\x03Web\x04shop\x03svc\x00\x00\x01\x00\x01");
        p
    }

    #[test]
    fn answer_owner_points_at_question() {
        let p = query();
        let q = parse_query(&p).unwrap();
        let mut buf = Vec::new();
        let mut w = ResponseWriter::new(&mut buf, &q, 512);
        w.set_authoritative();
        assert!(w.a(
            Section::Answer,
            NameRef::Ptr(12),
            30,
            Ipv4Addr::new(10, 0, 0, 1)
        ));
        w.finish();
        assert_eq!(&buf[..4], &[0xab, 0xcd, 0x85, 0x00]);
        assert_eq!(&buf[6..8], &[0, 1]);
        let rr = &buf[12 + 18..];
        assert_eq!(rr, &[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4, 10, 0, 0, 1]);
    }

    #[test]
    fn records_that_do_not_fit_set_tc() {
        let p = query();
        let q = parse_query(&p).unwrap();
        let mut buf = Vec::new();
        let mut w = ResponseWriter::new(&mut buf, &q, 64);
        let mut written = 0;
        for i in 0..10 {
            if w.a(
                Section::Answer,
                NameRef::Ptr(12),
                5,
                Ipv4Addr::new(10, 0, 0, i),
            ) {
                written += 1;
            }
        }
        w.finish();
        assert_eq!(written, 2); // 30 bytes of header and question, 16 per record
        assert!(buf.len() <= 64);
        assert_eq!(buf[2] & 0x02, 0x02);
    }
}
