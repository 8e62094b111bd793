//! An upstream's response in wire form, read once when it arrives, and serving it to a
//! client: copy, patch the ID and the question's case, count the TTLs down, size it for
//! the client. The cache keeps these; a hit is served without parsing or encoding — and
//! without allocation but the copy into the worker's buffer.

use std::time::Duration;

use tokio::time::Instant;

use super::query::{HEADER_LEN, Head, MAX_NAME_LEN, Query};
use super::rcode::{Rcode, rtype};
use super::writer::ADVERTISED_UDP_SIZE;

/// TTL of an answer served stale (RFC 8767 §4).
pub const STALE_TTL: u32 = 30;

/// What kind of answer an entry holds, which decides how long it may live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    Success,
    /// NXDOMAIN or NODATA (RFC 2308).
    Denial,
    ServFail,
    /// Relayed but never stored: truncated, REFUSED, NOTIMP and the like.
    Uncacheable,
}

/// A record's place in a response: where it starts, where its TTL and RDATA are, its
/// section (0 answer, 1 authority, 2 additional) and type.
#[derive(Debug, Clone, Copy)]
pub struct RecordAt {
    pub start: u16,
    pub ttl_at: u16,
    pub ttl: u32,
    pub section: u8,
    pub rtype: u16,
    pub rdata_at: u16,
}

/// A response read for caching: the message without OPT, and where its records are.
pub struct Layout {
    pub message: Vec<u8>,
    pub records: Vec<RecordAt>,
    pub qname_len: usize,
    pub ext_rcode: u8,
    pub rcode: u8,
}

/// Kept compact, as a cache holds many: one allocation holds the message and, after it,
/// where each record starts and where its TTL is (two u16 each); the rest is derived
/// from the message itself.
#[derive(Debug)]
pub struct CachedAnswer {
    /// The response without its OPT record (ID and question name are patched per
    /// client), then the record index.
    data: Box<[u8]>,
    message_len: u16,
    /// Length of the question name in the message.
    qname_len: u8,
    pub kind: AnswerKind,
    /// Extended rcode bits from the upstream's OPT record.
    ext_rcode: u8,
    /// How long the entry is fresh, in seconds.
    ttl_secs: u32,
    pub stored: Instant,
}

/// Reads the layout of a response and cuts its OPT record out; `None` when it is broken
/// or OPT is not the last record (cutting it out would move the records after it).
pub fn parse_response(packet: &[u8]) -> Option<Layout> {
    let counts = |i: usize| u16::from_be_bytes([packet[i], packet[i + 1]]) as usize;
    if packet.len() < HEADER_LEN || packet[2] & 0x80 == 0 || counts(4) != 1 {
        return None;
    }
    let mut pos = HEADER_LEN;
    let qname_start = pos;
    pos = skip_name(packet, pos)?;
    let qname_len = pos - qname_start;
    pos += 4;
    if pos > packet.len() {
        return None;
    }
    let mut records = Vec::new();
    let mut ext_rcode = 0;
    let mut opt_at = None;
    let sections = [counts(6), counts(8), counts(10)];
    for (section, &n) in sections.iter().enumerate() {
        for _ in 0..n {
            let start = pos;
            pos = skip_name(packet, pos)?;
            let fixed = packet.get(pos..pos + 10)?;
            let rtype = u16::from_be_bytes([fixed[0], fixed[1]]);
            let ttl = u32::from_be_bytes([fixed[4], fixed[5], fixed[6], fixed[7]]);
            let rdlen = u16::from_be_bytes([fixed[8], fixed[9]]) as usize;
            let ttl_at = pos + 4;
            pos += 10 + rdlen;
            if pos > packet.len() {
                return None;
            }
            if rtype == rtype::OPT {
                if opt_at.is_some() || section != 2 {
                    return None;
                }
                ext_rcode = fixed[4];
                opt_at = Some(start);
                continue;
            }
            if opt_at.is_some() {
                return None; // records after OPT: cutting OPT out would move them
            }
            records.push(RecordAt {
                start: start as u16,
                ttl_at: ttl_at as u16,
                ttl,
                section: section as u8,
                rtype,
                rdata_at: (ttl_at + 6) as u16,
            });
        }
    }
    let end = opt_at.unwrap_or(pos);
    let mut message = packet[..end].to_vec();
    if opt_at.is_some() {
        let ar = (counts(10) - 1) as u16;
        message[10..12].copy_from_slice(&ar.to_be_bytes());
    }
    Some(Layout {
        message,
        records,
        qname_len,
        ext_rcode,
        rcode: packet[3] & 0x0f,
    })
}

/// Skips a possibly compressed name; returns the offset after it.
pub fn skip_name(p: &[u8], mut pos: usize) -> Option<usize> {
    loop {
        let len = *p.get(pos)?;
        match len & 0xc0 {
            0xc0 => return Some(pos + 2).filter(|&e| e <= p.len()),
            0 if len == 0 => return Some(pos + 1),
            0 => pos += 1 + len as usize,
            _ => return None,
        }
    }
}

/// How long answers may live: the cache's TTL policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlPolicy {
    pub min_ttl: Duration,
    pub success_cap: Duration,
    pub denial_cap: Duration,
    pub servfail_ttl: Duration,
}

impl CachedAnswer {
    /// Reads an upstream response; `None` when it is malformed. Its kind says whether and
    /// for how long it may be cached.
    pub fn from_response(packet: &[u8], policy: &TtlPolicy, now: Instant) -> Option<CachedAnswer> {
        // A truncated answer is relayed (the client retries over TCP) but never kept.
        let truncated = packet.len() > 2 && packet[2] & 0x02 != 0;
        let Layout {
            message,
            records,
            qname_len,
            ext_rcode,
            rcode: code,
        } = parse_response(packet)?;
        let answers = records.iter().filter(|r| r.section == 0);
        let (kind, ttl) = match Rcode::from_parts(code, 0) {
            _ if truncated => (AnswerKind::Uncacheable, Duration::ZERO),
            Rcode::SERVFAIL => (AnswerKind::ServFail, policy.servfail_ttl),
            Rcode::NOERROR if answers.clone().count() > 0 => {
                let min = answers.map(|r| r.ttl).min().unwrap_or(0);
                let ttl = Duration::from_secs(min.into())
                    .clamp(policy.min_ttl, policy.success_cap.max(policy.min_ttl));
                (AnswerKind::Success, ttl)
            }
            Rcode::NOERROR | Rcode::NXDOMAIN => {
                // RFC 2308 §5: the SOA's TTL, bounded by its MINIMUM field.
                let soa = records
                    .iter()
                    .find(|r| r.section == 1 && r.rtype == rtype::SOA);
                let negative = soa
                    .and_then(|r| soa_minimum(packet, r.rdata_at as usize).map(|m| m.min(r.ttl)));
                let ttl = Duration::from_secs(negative.unwrap_or(0).into())
                    .clamp(policy.min_ttl, policy.denial_cap.max(policy.min_ttl));
                (AnswerKind::Denial, ttl)
            }
            _ => (AnswerKind::Uncacheable, Duration::ZERO),
        };
        let message_len = u16::try_from(message.len()).ok()?;
        let mut data = message;
        for r in &records {
            data.extend_from_slice(&r.start.to_be_bytes());
            data.extend_from_slice(&r.ttl_at.to_be_bytes());
        }
        Some(CachedAnswer {
            data: data.into(),
            message_len,
            qname_len: u8::try_from(qname_len).ok()?,
            kind,
            ext_rcode,
            ttl_secs: ttl.as_secs().min(u32::MAX as u64) as u32,
            stored: now,
        })
    }

    /// Whether this answer is for the question in `key` (see [`super::key_of`]): name
    /// (any case), type and class.
    pub fn answers_key(&self, key: &[u8]) -> bool {
        let q = self.qname_len as usize;
        let m = self.message();
        key.len() == q + 5
            && m.len() >= HEADER_LEN + q + 4
            && m[HEADER_LEN..HEADER_LEN + q].eq_ignore_ascii_case(&key[..q])
            && m[HEADER_LEN + q..HEADER_LEN + q + 4] == key[q..q + 4]
    }

    fn message(&self) -> &[u8] {
        &self.data[..self.message_len as usize]
    }

    /// The records, read back from the index after the message.
    fn records(&self) -> impl Iterator<Item = RecordAt> + '_ {
        let m = self.message();
        let count = |i: usize| u16::from_be_bytes([m[i], m[i + 1]]) as usize;
        let (an, ns) = (count(6), count(8));
        self.data[m.len()..]
            .chunks_exact(4)
            .enumerate()
            .map(move |(i, c)| {
                let start = u16::from_be_bytes([c[0], c[1]]);
                let ttl_at = u16::from_be_bytes([c[2], c[3]]);
                let t = ttl_at as usize;
                RecordAt {
                    start,
                    ttl_at,
                    ttl: u32::from_be_bytes([m[t], m[t + 1], m[t + 2], m[t + 3]]),
                    section: if i < an {
                        0
                    } else if i < an + ns {
                        1
                    } else {
                        2
                    },
                    rtype: u16::from_be_bytes([m[t - 4], m[t - 3]]),
                    rdata_at: ttl_at + 6,
                }
            })
    }

    /// How long the entry is fresh.
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.ttl_secs.into())
    }

    /// Bytes the entry holds, for the cache's byte bound.
    pub fn size(&self) -> usize {
        self.data.len() + std::mem::size_of::<Self>()
    }

    pub fn is_fresh(&self, now: Instant) -> bool {
        now < self.stored + self.ttl()
    }

    /// Time left before the entry expires.
    pub fn remaining(&self, now: Instant) -> Duration {
        (self.stored + self.ttl()).saturating_duration_since(now)
    }

    /// Writes the answer for `q` into `out`: the client's ID, flags and question case,
    /// TTLs counted down (or [`STALE_TTL`] when `stale`), an OPT record when the client
    /// sent one, truncated with TC to `limit` bytes.
    pub fn serve(&self, q: &Query<'_>, now: Instant, stale: bool, limit: usize, out: &mut Vec<u8>) {
        self.serve_head(&q.head(), q.packet, now, stale, limit, out);
    }

    /// As [`CachedAnswer::serve`], for a query known by its [`Head`] and its packet.
    pub fn serve_head(
        &self,
        q: &Head,
        packet: &[u8],
        now: Instant,
        stale: bool,
        limit: usize,
        out: &mut Vec<u8>,
    ) {
        out.clear();
        out.extend_from_slice(self.message());
        out[0..2].copy_from_slice(&q.id.to_be_bytes());
        // Keep the upstream's rcode and AA/RA/AD; take RD and CD from the client.
        out[2] = (out[2] & !0x01) | 0x80 | (q.flags >> 8) as u8 & 0x01;
        out[3] = (out[3] & !0x10) | (q.flags as u8 & 0x10);
        let qname_len = self.qname_len as usize;
        if q.qname_len as usize == qname_len {
            out[HEADER_LEN..HEADER_LEN + qname_len].copy_from_slice(q.qname_wire(packet));
        }
        let elapsed = now.saturating_duration_since(self.stored).as_secs() as u32;
        let cap = self.ttl_secs;
        for r in self.records() {
            // Counted down from the record's TTL, but never beyond what the cache keeps it.
            let ttl = if stale {
                STALE_TTL
            } else {
                r.ttl.min(cap).saturating_sub(elapsed)
            };
            let at = r.ttl_at as usize;
            out[at..at + 4].copy_from_slice(&ttl.to_be_bytes());
        }
        let opt_len = if q.edns.is_some() { 11 } else { 0 };
        if out.len() + opt_len > limit {
            self.truncate(out, limit - opt_len);
        }
        if q.edns.is_some() {
            let ar = u16::from_be_bytes([out[10], out[11]]) + 1;
            out[10..12].copy_from_slice(&ar.to_be_bytes());
            out.extend_from_slice(&[0, 0, 41]);
            out.extend_from_slice(&ADVERTISED_UDP_SIZE.to_be_bytes());
            out.extend_from_slice(&[self.ext_rcode, 0, 0, 0, 0, 0]);
        }
    }

    /// Cuts `out` at the last record boundary that fits; TC is set unless only
    /// additional records were dropped (RFC 2181 §9).
    fn truncate(&self, out: &mut Vec<u8>, limit: usize) {
        let mut counts = [0u16; 3];
        let mut end = HEADER_LEN + self.qname_len as usize + 4;
        let mut dropped_needed = false;
        let records: Vec<RecordAt> = self.records().collect();
        for (i, r) in records.iter().enumerate() {
            let next = records
                .get(i + 1)
                .map_or(self.message_len as usize, |n| n.start as usize);
            if next > limit {
                dropped_needed = records[i..].iter().any(|r| r.section < 2);
                break;
            }
            counts[r.section as usize] += 1;
            end = next;
        }
        out.truncate(end);
        for (i, c) in counts.iter().enumerate() {
            out[6 + 2 * i..8 + 2 * i].copy_from_slice(&c.to_be_bytes());
        }
        if dropped_needed {
            out[2] |= 0x02;
        }
    }
}

impl CachedAnswer {
    /// Whether the upstream answer was truncated.
    pub fn truncated(&self) -> bool {
        self.data[2] & 0x02 != 0
    }

    /// The upstream's response code, extended bits included.
    pub fn rcode(&self) -> Rcode {
        Rcode::from_parts(self.data[3], self.ext_rcode)
    }

    /// Calls `f` for each record of the answer section with its owner and RDATA
    /// uncompressed (so they can be copied into another message) and its TTL counted down.
    pub fn for_each_answer(
        &self,
        now: Instant,
        stale: bool,
        mut f: impl FnMut(&[u8], u16, u32, &[u8]),
    ) {
        let elapsed = now.saturating_duration_since(self.stored).as_secs() as u32;
        let m = self.message();
        for r in self.records().filter(|r| r.section == 0) {
            let mut owner = Vec::new();
            let mut rdata = Vec::new();
            if read_name(m, r.start as usize, &mut owner).is_none() {
                continue;
            }
            let start = r.rdata_at as usize;
            let len = u16::from_be_bytes([m[start - 2], m[start - 1]]) as usize;
            if uncompressed_rdata(m, r.rtype, start, len, &mut rdata).is_none() {
                continue;
            }
            let ttl = if stale {
                STALE_TTL
            } else {
                r.ttl.saturating_sub(elapsed)
            };
            f(&owner, r.rtype, ttl, &rdata);
        }
    }
}

/// Reads a possibly compressed name at `pos` into `out` uncompressed; returns the offset
/// after the name as it stands at `pos`.
pub fn read_name(p: &[u8], mut pos: usize, out: &mut Vec<u8>) -> Option<usize> {
    let mut end = None;
    // Each pointer must go backwards, so there are at most as many jumps as bytes.
    let mut jumps = 0;
    loop {
        let len = *p.get(pos)?;
        match len & 0xc0 {
            0xc0 => {
                let target = (u16::from_be_bytes([len & 0x3f, *p.get(pos + 1)?])) as usize;
                end.get_or_insert(pos + 2);
                jumps += 1;
                if target >= pos || jumps > 127 {
                    return None;
                }
                pos = target;
            }
            0 if len == 0 => {
                out.push(0);
                if out.len() > MAX_NAME_LEN {
                    return None;
                }
                return Some(end.unwrap_or(pos + 1));
            }
            0 => {
                let label = p.get(pos..pos + 1 + len as usize)?;
                out.extend_from_slice(label);
                pos += 1 + len as usize;
            }
            _ => return None,
        }
    }
}

/// Where the names sit in the RDATA of the types whose names may arrive compressed:
/// those of RFC 1035 (RFC 3597 §4), and SRV and DNAME, which some servers compress
/// anyway. Bytes before the first name, how many names, fixed bytes after them.
fn rdata_names(t: u16) -> Option<(usize, usize, usize)> {
    const MD: u16 = 3;
    const MF: u16 = 4;
    const MB: u16 = 7;
    const MG: u16 = 8;
    const MR: u16 = 9;
    const MINFO: u16 = 14;
    Some(match t {
        rtype::NS | rtype::CNAME | rtype::PTR | rtype::DNAME | MD | MF | MB | MG | MR => (0, 1, 0),
        rtype::MX => (2, 1, 0),
        rtype::SRV => (6, 1, 0),
        rtype::SOA => (0, 2, 20),
        MINFO => (0, 2, 0),
        _ => return None,
    })
}

/// Appends the `len` bytes of RDATA at `start` to `out` with their names uncompressed,
/// so that the record can be copied into another message, where a pointer would point
/// elsewhere; `None` when the names and fixed fields do not fill the RDATA exactly.
fn uncompressed_rdata(m: &[u8], t: u16, start: usize, len: usize, out: &mut Vec<u8>) -> Option<()> {
    let end = start + len;
    let raw = m.get(start..end)?;
    let Some((before, names, after)) = rdata_names(t) else {
        out.extend_from_slice(raw);
        return Some(());
    };
    let mut pos = start + before;
    out.extend_from_slice(m.get(start..pos)?);
    for _ in 0..names {
        let name_start = out.len();
        pos = read_name(m, pos, out)?;
        if pos > end || out.len() - name_start > MAX_NAME_LEN {
            return None;
        }
    }
    if pos + after != end {
        return None;
    }
    out.extend_from_slice(&m[pos..end]);
    Some(())
}

fn soa_minimum(packet: &[u8], rdata: usize) -> Option<u32> {
    let after_mname = skip_name(packet, rdata)?;
    let after_rname = skip_name(packet, after_mname)?;
    let m = packet.get(after_rname + 16..after_rname + 20)?;
    Some(u32::from_be_bytes([m[0], m[1], m[2], m[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A response to `example.com` (at offset 12) with one answer record.
    fn response(rtype: u16, rdata: &[u8]) -> Vec<u8> {
        let mut p = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
        p.extend_from_slice(b"\x07example\x03com\0");
        p.extend_from_slice(&rtype.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0xc0, 12]);
        p.extend_from_slice(&rtype.to_be_bytes());
        p.extend_from_slice(&[0, 1, 0, 0, 1, 44]);
        p.extend_from_slice(&(rdata.len() as u16).to_be_bytes());
        p.extend_from_slice(rdata);
        p
    }

    fn answers(packet: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let policy = TtlPolicy {
            min_ttl: Duration::ZERO,
            success_cap: Duration::from_secs(3600),
            denial_cap: Duration::from_secs(3600),
            servfail_ttl: Duration::ZERO,
        };
        let now = Instant::now();
        let a = CachedAnswer::from_response(packet, &policy, now).unwrap();
        let mut out = Vec::new();
        a.for_each_answer(now, false, |owner, _, _, rdata| {
            out.push((owner.to_vec(), rdata.to_vec()))
        });
        out
    }

    const NAME: &[u8] = b"\x07example\x03com\0";

    #[test]
    fn names_in_copied_rdata_are_uncompressed() {
        // MX 10 mail.<example.com>, SRV 1 2 5060 sip.<example.com>, SOA <ns>.<ns> + 20.
        let mx = answers(&response(rtype::MX, b"\0\x0a\x04mail\xc0\x0c"));
        assert_eq!(
            mx,
            [(
                NAME.to_vec(),
                b"\0\x0a\x04mail\x07example\x03com\0".to_vec()
            )]
        );
        let srv = answers(&response(
            rtype::SRV,
            b"\0\x01\0\x02\x13\xc4\x03sip\xc0\x0c",
        ));
        assert_eq!(srv[0].1, b"\0\x01\0\x02\x13\xc4\x03sip\x07example\x03com\0");
        let mut soa = b"\x02ns\xc0\x0c\xc0\x0c".to_vec();
        soa.extend_from_slice(&[0; 20]);
        let soa = answers(&response(rtype::SOA, &soa));
        let mut want = b"\x02ns\x07example\x03com\0\x07example\x03com\0".to_vec();
        want.extend_from_slice(&[0; 20]);
        assert_eq!(soa[0].1, want);
        // Other types are copied as they are.
        let txt = answers(&response(rtype::TXT, b"\x02\xc0\x0c"));
        assert_eq!(txt[0].1, b"\x02\xc0\x0c");
    }

    #[test]
    fn a_record_whose_names_do_not_fill_its_rdata_is_left_out() {
        // A name that runs past the RDATA, and bytes left after the name.
        assert!(answers(&response(rtype::MX, b"\0\x0a\x04mail")).is_empty());
        assert!(answers(&response(rtype::CNAME, b"\xc0\x0c\x00")).is_empty());
        assert!(answers(&response(rtype::SOA, b"\xc0\x0c\xc0\x0c")).is_empty());
    }
}
