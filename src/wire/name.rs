//! Names: a name as it stands in a message ([`QName`]: lower-cased labels for matching,
//! and where its wire form sits so answers can point at it), and a zone's name as
//! configured ([`ZoneName`]).

use super::query::{HEADER_LEN, MAX_LABELS, Query};

/// A name in the message: lower-cased labels for matching, plus where its wire form sits
/// so that answers can point at it (and so echo the case it was written in).
pub struct QName<'a> {
    labels: [&'a [u8]; MAX_LABELS],
    count: usize,
    /// The wire form as it stands in the message (original case).
    wire: &'a [u8],
    /// Offset of `wire` in the message.
    offset: u16,
}

impl<'a> QName<'a> {
    /// The question's name.
    pub fn question(q: &'a Query<'_>) -> Self {
        let mut labels: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
        for (slot, l) in labels.iter_mut().zip(q.labels()) {
            *slot = l;
        }
        QName {
            labels,
            count: q.label_count(),
            wire: q.qname_wire,
            offset: HEADER_LEN as u16,
        }
    }

    /// A name we wrote ourselves (a CNAME target) at `offset`; `wire` is lower-case.
    pub fn written(wire: &'a [u8], offset: u16) -> Option<Self> {
        let mut labels: [&[u8]; MAX_LABELS] = [&[]; MAX_LABELS];
        let mut count = 0;
        let mut pos = 0;
        while let Some(&len) = wire.get(pos) {
            if len == 0 {
                return Some(QName {
                    labels,
                    count,
                    wire,
                    offset,
                });
            }
            *labels.get_mut(count)? = wire.get(pos + 1..pos + 1 + len as usize)?;
            count += 1;
            pos += 1 + len as usize;
        }
        None
    }

    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn label(&self, i: usize) -> &'a [u8] {
        self.labels[i]
    }

    pub fn labels(&self) -> &[&'a [u8]] {
        &self.labels[..self.count]
    }

    /// Byte offset within `wire` of the suffix starting at label `i`.
    fn wire_pos(&self, i: usize) -> usize {
        self.labels[..i.min(self.count)]
            .iter()
            .map(|l| l.len() + 1)
            .sum()
    }

    /// Message offset of the suffix starting at label `i` (for compression pointers).
    pub fn suffix_offset(&self, i: usize) -> u16 {
        self.offset + self.wire_pos(i) as u16
    }

    /// Wire bytes of the suffix starting at label `i`, in the case it was written.
    pub fn suffix_wire(&self, i: usize) -> &'a [u8] {
        &self.wire[self.wire_pos(i)..]
    }

    /// Whether the name ends in `zone` (lower-case labels); returns the label index where
    /// the zone starts.
    pub fn zone_start(&self, zone: &[Box<[u8]>]) -> Option<usize> {
        let start = self.count.checked_sub(zone.len())?;
        self.labels[start..self.count]
            .iter()
            .zip(zone)
            .all(|(a, b)| *a == &**b)
            .then_some(start)
    }
}

/// A zone name as lower-case labels and its wire form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneName {
    pub labels: Vec<Box<[u8]>>,
    pub wire: Box<[u8]>,
    pub reverse: bool,
}

impl ZoneName {
    /// Parses `cluster.local`, `cluster.local.` or `.` (the root, matching every name).
    pub fn parse(text: &str) -> Option<ZoneName> {
        let trimmed = text.trim_end_matches('.').to_ascii_lowercase();
        let mut labels = Vec::new();
        let mut wire = Vec::new();
        if !trimmed.is_empty() {
            for l in trimmed.split('.') {
                if l.is_empty()
                    || l.len() > 63
                    || !l
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                {
                    return None;
                }
                wire.push(l.len() as u8);
                wire.extend_from_slice(l.as_bytes());
                labels.push(l.as_bytes().into());
            }
        }
        wire.push(0);
        if wire.len() > 255 {
            return None;
        }
        let reverse = trimmed == "in-addr.arpa"
            || trimmed == "ip6.arpa"
            || trimmed.ends_with(".in-addr.arpa")
            || trimmed.ends_with(".ip6.arpa");
        Some(ZoneName {
            labels,
            wire: wire.into(),
            reverse,
        })
    }
}
