//! Reading a DNS query off the wire: header, the one question, and the EDNS OPT record.
//!
//! This is the first thing every packet meets, so it copies nothing and allocates
//! nothing: the question name stays a slice of the packet, and its lower-cased labels
//! go into a fixed buffer on the stack. Anything malformed becomes a [`WireError`],
//! which the driver turns into FORMERR (when there is a header to answer) or a drop.

use thiserror::Error;

use super::rcode::rtype;

pub const HEADER_LEN: usize = 12;
/// Largest name on the wire (RFC 1035 §3.1), and so the most labels a name can hold.
pub const MAX_NAME_LEN: usize = 255;
pub const MAX_LABELS: usize = 128;

/// Why a packet could not be read as a query.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum WireError {
    #[error("packet shorter than a DNS header")]
    ShortHeader,
    #[error("packet is a response, not a query")]
    NotAQuery,
    #[error("opcode {0} is not QUERY")]
    Opcode(u8),
    #[error("expected exactly one question, found {0}")]
    QuestionCount(u16),
    #[error("question name is malformed")]
    BadName,
    #[error("question name uses a compression pointer")]
    CompressedQuestion,
    #[error("packet ends inside a record")]
    Truncated,
    #[error("more than one OPT record")]
    DuplicateOpt,
}

/// EDNS(0) as the client sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Edns {
    pub udp_size: u16,
    pub version: u8,
    pub dnssec_ok: bool,
}

/// What an answer needs of its query once the borrow of the packet is over (a query
/// waiting for an upstream): header fields, the question's type and class, EDNS, and the
/// length of the question name, which sits at byte 12 of the packet its holder keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub id: u16,
    pub flags: u16,
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
    pub qname_len: u8,
}

impl Head {
    /// The question section as sent (name, type, class), from the query's packet.
    pub fn question_wire<'p>(&self, packet: &'p [u8]) -> &'p [u8] {
        &packet[HEADER_LEN..HEADER_LEN + self.qname_len as usize + 4]
    }

    /// The question name as sent, from the query's packet.
    pub fn qname_wire<'p>(&self, packet: &'p [u8]) -> &'p [u8] {
        &packet[HEADER_LEN..HEADER_LEN + self.qname_len as usize]
    }
}

/// A parsed query. Borrowed from the packet; cheap to build for every datagram.
#[derive(Debug)]
pub struct Query<'a> {
    pub packet: &'a [u8],
    pub id: u16,
    /// Flags word of the request (opcode, RD, CD …) as sent.
    pub flags: u16,
    /// The question's name exactly as sent (wire labels, ending in the root label).
    pub qname_wire: &'a [u8],
    pub qtype: u16,
    pub qclass: u16,
    pub edns: Option<Edns>,
    /// Lower-cased labels, stored back to back in `lower`; `label_ends[i]` is where label
    /// `i` ends (labels counted from the left, root excluded).
    lower: [u8; MAX_NAME_LEN],
    label_starts: [u8; MAX_LABELS],
    label_ends: [u8; MAX_LABELS],
    label_count: usize,
}

impl<'a> Query<'a> {
    /// The part of the query that outlives the borrow of its packet.
    pub fn head(&self) -> Head {
        Head {
            id: self.id,
            flags: self.flags,
            qtype: self.qtype,
            qclass: self.qclass,
            edns: self.edns,
            qname_len: self.qname_wire.len() as u8,
        }
    }

    pub fn opcode(&self) -> u8 {
        ((self.flags >> 11) & 0x0f) as u8
    }

    pub fn recursion_desired(&self) -> bool {
        self.flags & 0x0100 != 0
    }

    /// Number of labels in the question name (the root label not counted).
    pub fn label_count(&self) -> usize {
        self.label_count
    }

    /// Label `i` counted from the left, lower-cased.
    pub fn label(&self, i: usize) -> &[u8] {
        &self.lower[self.label_starts[i] as usize..self.label_ends[i] as usize]
    }

    /// Labels `0..n` (the leftmost `n`), lower-cased.
    pub fn labels(&self) -> impl DoubleEndedIterator<Item = &[u8]> + ExactSizeIterator {
        (0..self.label_count).map(|i| self.label(i))
    }

    /// Offset in the packet of the name made of labels `i..`: compression pointers to
    /// suffixes of the question (which always starts at byte 12) echo the client's case.
    pub fn suffix_offset(&self, i: usize) -> u16 {
        if i >= self.label_count {
            (HEADER_LEN + self.qname_wire.len() - 1) as u16
        } else {
            // Wire offset of label i = its start in `lower` plus one length byte per label before it, plus i.
            (HEADER_LEN + self.label_starts[i] as usize - 1) as u16
        }
    }

    /// The wire form of the name made of labels `i..` (as sent, root label included).
    pub fn suffix_wire(&self, i: usize) -> &'a [u8] {
        let off = self.suffix_offset(i) as usize - HEADER_LEN;
        &self.qname_wire[off..]
    }

    /// The question section as sent (name, type, class), to echo in the answer.
    pub fn question_wire(&self) -> &'a [u8] {
        &self.packet[HEADER_LEN..HEADER_LEN + self.qname_wire.len() + 4]
    }
}

/// What can be said about a packet that is not a well-formed query, so that the caller
/// can still answer FORMERR / NOTIMP with the right ID.
#[derive(Debug, PartialEq, Eq)]
pub struct Rejected {
    pub error: WireError,
    /// `(id, flags)` when the header could be read and the packet is a query.
    pub header: Option<(u16, u16)>,
}

/// Parses a query packet.
pub fn parse_query(packet: &[u8]) -> Result<Query<'_>, Rejected> {
    if packet.len() < HEADER_LEN {
        return Err(Rejected {
            error: WireError::ShortHeader,
            header: None,
        });
    }
    let id = u16::from_be_bytes([packet[0], packet[1]]);
    let flags = u16::from_be_bytes([packet[2], packet[3]]);
    if flags & 0x8000 != 0 {
        // Never answer a response: that is how reflection loops start.
        return Err(Rejected {
            error: WireError::NotAQuery,
            header: None,
        });
    }
    let reject = |error| Rejected {
        error,
        header: Some((id, flags)),
    };
    let opcode = ((flags >> 11) & 0x0f) as u8;
    if opcode != 0 {
        return Err(reject(WireError::Opcode(opcode)));
    }
    let qdcount = u16::from_be_bytes([packet[4], packet[5]]);
    if qdcount != 1 {
        return Err(reject(WireError::QuestionCount(qdcount)));
    }
    let ancount = u16::from_be_bytes([packet[6], packet[7]]);
    let nscount = u16::from_be_bytes([packet[8], packet[9]]);
    let arcount = u16::from_be_bytes([packet[10], packet[11]]);

    let mut q = Query {
        packet,
        id,
        flags,
        qname_wire: &[],
        qtype: 0,
        qclass: 0,
        edns: None,
        lower: [0; MAX_NAME_LEN],
        label_starts: [0; MAX_LABELS],
        label_ends: [0; MAX_LABELS],
        label_count: 0,
    };
    let mut pos = HEADER_LEN;
    loop {
        let Some(&len) = packet.get(pos) else {
            return Err(reject(WireError::Truncated));
        };
        if len & 0xc0 == 0xc0 {
            // Nothing precedes the question, so a pointer can only be garbage (or a loop).
            return Err(reject(WireError::CompressedQuestion));
        }
        if len & 0xc0 != 0 {
            return Err(reject(WireError::BadName));
        }
        let len = len as usize;
        let name_len = pos + 1 - HEADER_LEN;
        if name_len + len > MAX_NAME_LEN {
            return Err(reject(WireError::BadName));
        }
        if len == 0 {
            pos += 1;
            break;
        }
        let Some(bytes) = packet.get(pos + 1..pos + 1 + len) else {
            return Err(reject(WireError::Truncated));
        };
        // Label i's bytes sit in `lower` at the same offset they have in the wire name,
        // so the wire offset of a suffix is just its start in `lower` minus one.
        let start = name_len;
        q.lower[start..start + len].copy_from_slice(bytes);
        q.lower[start..start + len].make_ascii_lowercase();
        q.label_starts[q.label_count] = start as u8;
        q.label_ends[q.label_count] = (start + len) as u8;
        q.label_count += 1;
        pos += 1 + len;
    }
    q.qname_wire = &packet[HEADER_LEN..pos];
    let Some(tc) = packet.get(pos..pos + 4) else {
        return Err(reject(WireError::Truncated));
    };
    q.qtype = u16::from_be_bytes([tc[0], tc[1]]);
    q.qclass = u16::from_be_bytes([tc[2], tc[3]]);
    pos += 4;

    // Answer and authority sections are unusual in a query; skip them without following
    // any pointer (so there is nothing to loop on).
    for _ in 0..(ancount as usize + nscount as usize) {
        pos = skip_record(packet, pos)
            .ok_or_else(|| reject(WireError::Truncated))?
            .1;
    }
    for _ in 0..arcount {
        let (rtype_at, next) =
            skip_record(packet, pos).ok_or_else(|| reject(WireError::Truncated))?;
        let rtype = u16::from_be_bytes([packet[rtype_at], packet[rtype_at + 1]]);
        if rtype == rtype::OPT {
            if q.edns.is_some() {
                return Err(reject(WireError::DuplicateOpt));
            }
            let udp_size = u16::from_be_bytes([packet[rtype_at + 2], packet[rtype_at + 3]]);
            let version = packet[rtype_at + 5];
            let dnssec_ok = packet[rtype_at + 6] & 0x80 != 0;
            q.edns = Some(Edns {
                udp_size,
                version,
                dnssec_ok,
            });
        }
        pos = next;
    }
    Ok(q)
}

/// Skips one resource record starting at `pos`; returns the offset of its TYPE field and
/// the offset just past it.
fn skip_record(packet: &[u8], mut pos: usize) -> Option<(usize, usize)> {
    loop {
        let len = *packet.get(pos)?;
        match len & 0xc0 {
            0xc0 => {
                pos += 2;
                break;
            }
            0 if len == 0 => {
                pos += 1;
                break;
            }
            0 => pos += 1 + len as usize,
            _ => return None,
        }
    }
    let fixed = packet.get(pos..pos + 10)?;
    let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
    let end = pos + 10 + rdlen;
    if end > packet.len() {
        return None;
    }
    Some((pos, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::CLASS_IN;

    fn query(name: &[&str], qtype: u16) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name {
            p.push(l.len() as u8);
            p.extend_from_slice(l.as_bytes());
        }
        p.push(0);
        p.extend_from_slice(&qtype.to_be_bytes());
        p.extend_from_slice(&CLASS_IN.to_be_bytes());
        p
    }

    #[test]
    fn reads_question_and_lowercases_labels() {
        let p = query(&["Web", "SHOP", "svc"], rtype::A);
        let q = parse_query(&p).unwrap();
        assert_eq!(q.id, 0x1234);
        assert_eq!(q.label_count(), 3);
        assert_eq!(q.label(0), b"web");
        assert_eq!(q.label(1), b"shop");
        assert_eq!(q.suffix_wire(1), b"\x04SHOP\x03svc\x00");
        assert_eq!(q.suffix_offset(0), 12);
        assert_eq!(q.suffix_offset(1), 16);
        assert_eq!(q.suffix_offset(3), 25);
        assert_eq!(q.qtype, rtype::A);
        assert!(q.edns.is_none());
    }

    #[test]
    fn reads_edns() {
        let mut p = query(&["a"], rtype::A);
        p[11] = 1;
        p.extend_from_slice(&[0, 0, 41, 0x10, 0x00, 0, 1, 0x80, 0, 0, 0]);
        let q = parse_query(&p).unwrap();
        assert_eq!(
            q.edns,
            Some(Edns {
                udp_size: 4096,
                version: 1,
                dnssec_ok: true
            })
        );
    }

    #[test]
    fn rejects_malformed() {
        assert_eq!(
            parse_query(&[1, 2, 3]).unwrap_err().error,
            WireError::ShortHeader
        );
        let mut p = query(&["a"], rtype::A);
        p[5] = 2;
        assert_eq!(
            parse_query(&p).unwrap_err().error,
            WireError::QuestionCount(2)
        );
        let mut p = query(&["a"], rtype::A);
        p[12] = 0xc0;
        p[13] = 12;
        assert_eq!(
            parse_query(&p).unwrap_err().error,
            WireError::CompressedQuestion
        );
        let p = query(&["a"], rtype::A);
        assert_eq!(
            parse_query(&p[..15]).unwrap_err().error,
            WireError::Truncated
        );
        let mut p = query(&["a"], rtype::A);
        p[2] = 0x28; // opcode UPDATE
        assert_eq!(parse_query(&p).unwrap_err().error, WireError::Opcode(5));
        let long: Vec<String> = (0..5).map(|_| "x".repeat(63)).collect();
        let long: Vec<&str> = long.iter().map(|s| s.as_str()).collect();
        assert_eq!(
            parse_query(&query(&long, 1)).unwrap_err().error,
            WireError::BadName
        );
    }
}
