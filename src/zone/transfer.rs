//! Zone transfer (AXFR, RFC 5936) of a cluster or reverse zone: every record the zone
//! answers, SOA first and last, cut into messages of at most [`MESSAGE_BUDGET`] bytes.
//!
//! The records are not built by a second set of rules: for every name the index holds,
//! the transfer asks the zone's own lookup ([`records::answer`]) each type that name can
//! have, and copies the answer. A transfer therefore cannot disagree with the answers.
//! Names the zone makes up from the question alone (pod names in `insecure` mode, any
//! `prefer` topology) are left out: they are not records the zone holds.
//!
//! The walk is synchronous and message by message: the caller awaits between messages,
//! and no map of the zone is held across that wait (the walk starts from a snapshot of
//! the keys; each lookup pins the maps for that lookup only).

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::Arc;

use crate::wire::answer::{parse_response, read_name};
use crate::wire::writer::{ResponseWriter, Section};
use crate::wire::{Head, QName, Rcode, parse_query, rtype};

use super::names::dashed_ip;
use super::records::{self, ZoneOutcome};
use super::settings::{PodMode, ZoneSettings};
use super::view::{ClusterZone, ServiceKey, ServiceView};

/// Largest transfer message (a TCP frame takes 65,535): room left for the OPT record.
pub const MESSAGE_BUDGET: usize = 64_000;

/// NOTAUTH (RFC 5936 §2.2.1): the question does not name a zone we serve.
fn notauth() -> Rcode {
    Rcode::from_parts(9, 0)
}

/// Types a name below a service can have.
const SERVICE_TYPES: &[u16] = &[rtype::A, rtype::AAAA, rtype::SRV, rtype::CNAME];
const ADDRESS_TYPES: &[u16] = &[rtype::A, rtype::AAAA, rtype::SRV];
const SRV_TYPE: &[u16] = &[rtype::SRV];
const POD_TYPES: &[u16] = &[rtype::A, rtype::AAAA];
const PTR_TYPE: &[u16] = &[rtype::PTR];

/// One record, names uncompressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub owner: Vec<u8>,
    pub rtype: u16,
    pub ttl: u32,
    pub rdata: Vec<u8>,
}

/// What the walk visits, in order: each expands into names, each name into records.
enum Item {
    Apex,
    Service(ServiceKey),
    Pod(IpAddr, Arc<str>),
    Ptr(IpAddr),
}

/// A transfer in progress.
pub struct ZoneTransfer {
    zone: Arc<ClusterZone>,
    settings: ZoneSettings,
    /// The AXFR query, whose question every message echoes.
    query: Vec<u8>,
    head: Head,
    /// The apex, lower-case wire form, and its label count.
    apex: Vec<u8>,
    apex_labels: usize,
    items: VecDeque<Item>,
    pending: VecDeque<Record>,
    soa: Record,
    stage: Stage,
    /// Scratch buffers for the lookups.
    packet: Vec<u8>,
    answer: Vec<u8>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    First,
    Body,
    /// The closing SOA is queued.
    Closing,
}

impl ZoneTransfer {
    /// Starts the transfer the AXFR `query` asks for; the error is the rcode to answer
    /// with instead (FORMERR, NOTAUTH for a name that is not one of our zones, SERVFAIL
    /// while the zone is not yet synced).
    pub fn start(
        zone: Arc<ClusterZone>,
        settings: ZoneSettings,
        query: &[u8],
    ) -> Result<ZoneTransfer, Rcode> {
        let q = parse_query(query).map_err(|_| Rcode::FORMERR)?;
        let name = QName::question(&q);
        let Some((0, reverse)) = settings.find_zone(&name) else {
            return Err(notauth());
        };
        if !zone.synced() {
            return Err(Rcode::SERVFAIL);
        }
        let apex = wire_name(name.labels().iter().copied()).ok_or(Rcode::FORMERR)?;
        let mut items = VecDeque::from([Item::Apex]);
        if reverse {
            items.extend(zone.ptr_addresses().into_iter().map(Item::Ptr));
        } else {
            items.extend(zone.service_keys().into_iter().map(Item::Service));
            if settings.pods == PodMode::Verified {
                let pods = zone.pod_addresses().into_iter();
                items.extend(pods.map(|(ip, ns)| Item::Pod(ip, ns)));
            }
        }
        let mut t = ZoneTransfer {
            zone,
            settings,
            head: q.head(),
            query: query.to_vec(),
            apex_labels: name.len(),
            apex,
            items,
            pending: VecDeque::new(),
            soa: Record {
                owner: Vec::new(),
                rtype: rtype::SOA,
                ttl: 0,
                rdata: Vec::new(),
            },
            stage: Stage::First,
            packet: Vec::with_capacity(300),
            answer: Vec::with_capacity(1024),
        };
        let mut soa = VecDeque::new();
        t.lookup(&t.apex.clone(), rtype::SOA, &mut soa);
        t.soa = soa.pop_front().ok_or(Rcode::SERVFAIL)?;
        Ok(t)
    }

    /// The zone's serial as the transfer carries it.
    pub fn serial(&self) -> u32 {
        let r = &self.soa.rdata;
        r.len().checked_sub(20).map_or(0, |at| {
            u32::from_be_bytes([r[at], r[at + 1], r[at + 2], r[at + 3]])
        })
    }

    /// Writes the next message into `out`; returns whether more follow.
    pub fn next_message(&mut self, out: &mut Vec<u8>) -> bool {
        let mut w = ResponseWriter::for_head(out, &self.head, &self.query, u16::MAX as usize);
        w.set_authoritative();
        let mut size = w.position() as usize;
        if self.stage == Stage::First {
            write(&mut w, &mut size, &self.soa);
            self.stage = Stage::Body;
        }
        loop {
            if self.pending.is_empty() {
                match self.items.pop_front() {
                    Some(item) => {
                        self.expand(item);
                        continue;
                    }
                    None if self.stage == Stage::Body => {
                        self.pending.push_back(self.soa.clone());
                        self.stage = Stage::Closing;
                    }
                    None => break,
                }
            }
            let Some(r) = self.pending.front() else { break };
            if size + record_len(r) > MESSAGE_BUDGET && w.count(Section::Answer) > 0 {
                break;
            }
            write(&mut w, &mut size, r);
            self.pending.pop_front();
        }
        w.finish();
        !(self.pending.is_empty() && self.items.is_empty() && self.stage == Stage::Closing)
    }

    /// Queues the records of the names `item` stands for.
    fn expand(&mut self, item: Item) {
        let mut names: Vec<(Vec<u8>, &'static [u16])> = Vec::new();
        let apex = self.apex.clone();
        let under = |labels: &[&[u8]]| {
            wire_name(labels.iter().copied()).map(|mut w| {
                w.pop(); // the root label: the apex follows
                w.extend_from_slice(&apex);
                w
            })
        };
        match item {
            Item::Apex => {
                names.push((apex.clone(), &[rtype::NS]));
                names.extend(under(&[b"ns", b"dns"]).map(|n| (n, POD_TYPES)));
                names.extend(under(&[b"dns-version"]).map(|n| (n, &[rtype::TXT][..])));
            }
            Item::Service(key) => {
                let zonal = self.settings.zonal;
                let labels =
                    self.zone
                        .with_service(key.namespace.as_bytes(), key.name.as_bytes(), |view| {
                            view.map(|v| service_names(v, zonal)).unwrap_or_default()
                        });
                let svc: [&[u8]; 3] = [key.name.as_bytes(), key.namespace.as_bytes(), b"svc"];
                for (below, types) in labels {
                    let all: Vec<&[u8]> = below.iter().map(Vec::as_slice).chain(svc).collect();
                    names.extend(under(&all).map(|n| (n, types)));
                }
            }
            Item::Pod(ip, namespace) => {
                let label = dashed_ip(&ip);
                let labels: [&[u8]; 3] = [label.as_bytes(), namespace.as_bytes(), b"pod"];
                names.extend(under(&labels).map(|n| (n, POD_TYPES)));
            }
            Item::Ptr(ip) => {
                names.extend(reverse_wire(ip).map(|n| (n, PTR_TYPE)));
            }
        }
        let mut pending = std::mem::take(&mut self.pending);
        for (name, types) in names {
            for &t in types {
                self.lookup(&name, t, &mut pending);
            }
        }
        self.pending = pending;
    }

    /// Asks the zone `name` (lower-case wire) of type `qtype`, as a client would, and
    /// queues the answer's records of that name and type. Names that belong to a more
    /// specific zone than the one transferred are skipped.
    fn lookup(&mut self, name: &[u8], qtype: u16, into: &mut VecDeque<Record>) {
        self.packet.clear();
        self.packet
            .extend_from_slice(&[0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]);
        self.packet.extend_from_slice(name);
        self.packet.extend_from_slice(&qtype.to_be_bytes());
        self.packet.extend_from_slice(&1u16.to_be_bytes());
        let Ok(q) = parse_query(&self.packet) else {
            return;
        };
        let qname = QName::question(&q);
        let deepest = q.label_count().saturating_sub(self.apex_labels);
        if self.settings.find_zone(&qname).map(|(start, _)| start) != Some(deepest) {
            return;
        }
        let mut w = ResponseWriter::new(&mut self.answer, &q, u16::MAX as usize);
        let outcome = records::answer(&self.zone, &self.settings, &qname, qtype, &mut w);
        let rcode = w.rcode();
        w.finish();
        if !matches!(outcome, ZoneOutcome::Answered) || rcode != Rcode::NOERROR {
            return;
        }
        let Some(layout) = parse_response(&self.answer) else {
            return;
        };
        let m = &layout.message;
        for r in layout
            .records
            .iter()
            .filter(|r| r.section == 0 && r.rtype == qtype)
        {
            let mut owner = Vec::new();
            if read_name(m, r.start as usize, &mut owner).is_none() || owner != name {
                continue; // a chased CNAME's target: it has a name of its own
            }
            if let Some(rdata) = uncompressed_rdata(m, r.rtype, r.rdata_at as usize) {
                into.push_back(Record {
                    owner,
                    rtype: r.rtype,
                    ttl: r.ttl,
                    rdata,
                });
            }
        }
    }
}

/// The names below `svc.ns.svc.Z` that a service's view holds (the service itself
/// first, as no labels), with the types each can have.
fn service_names(view: &ServiceView, zonal: bool) -> Vec<(Vec<Vec<u8>>, &'static [u16])> {
    let mut names: Vec<(Vec<Vec<u8>>, &'static [u16])> = vec![(Vec::new(), SERVICE_TYPES)];
    let mut endpoints: Vec<&str> = view.endpoints.iter().map(|e| &*e.name).collect();
    endpoints.dedup(); // sorted by name
    names.extend(
        endpoints
            .into_iter()
            .map(|e| (vec![e.as_bytes().to_vec()], ADDRESS_TYPES)),
    );
    let mut ports: Vec<(Vec<u8>, &str)> = view
        .ports
        .iter()
        .chain(view.endpoints.iter().flat_map(|e| e.ports.iter()))
        .filter(|p| !p.name.is_empty())
        .map(|p| {
            (
                p.name.to_ascii_lowercase().into_bytes(),
                p.protocol.as_str(),
            )
        })
        .collect();
    ports.sort();
    ports.dedup();
    for (port, proto) in ports {
        let labels = vec![
            [b"_", &port[..]].concat(),
            [b"_", proto.as_bytes()].concat(),
        ];
        names.push((labels, SRV_TYPE));
    }
    if zonal {
        let mut zones: Vec<&str> = view
            .endpoints
            .iter()
            .filter_map(|e| e.zone.as_deref())
            .collect();
        zones.sort();
        zones.dedup();
        for z in zones {
            for mode in [&b"pin"[..], b"prefer"] {
                let labels = vec![z.as_bytes().to_vec(), mode.to_vec(), b"_zone".to_vec()];
                names.push((labels, ADDRESS_TYPES));
            }
        }
    }
    names
}

/// Wire form of `labels` (lower-cased); `None` when a label is empty or too long, or the
/// name is.
fn wire_name<'a>(labels: impl Iterator<Item = &'a [u8]>) -> Option<Vec<u8>> {
    let mut w = Vec::with_capacity(64);
    for l in labels {
        if l.is_empty() || l.len() > 63 {
            return None;
        }
        w.push(l.len() as u8);
        w.extend(l.iter().map(u8::to_ascii_lowercase));
    }
    w.push(0);
    (w.len() <= 255).then_some(w)
}

/// `d.c.b.a.in-addr.arpa.` or the 32 nibbles of `ip6.arpa.`, in wire form.
fn reverse_wire(ip: IpAddr) -> Option<Vec<u8>> {
    let labels: Vec<String> = match ip {
        IpAddr::V4(a) => a
            .octets()
            .iter()
            .rev()
            .map(u8::to_string)
            .chain(["in-addr".into(), "arpa".into()])
            .collect(),
        IpAddr::V6(a) => {
            let v = u128::from(a);
            (0..32)
                .map(|i| format!("{:x}", (v >> (i * 4)) & 0xf))
                .chain(["ip6".into(), "arpa".into()])
                .collect()
        }
    };
    wire_name(labels.iter().map(|l| l.as_bytes()))
}

/// A record's RDATA with the names in it written out (SRV, SOA and name-only types may
/// hold compression pointers into the message they came from).
fn uncompressed_rdata(m: &[u8], rtype: u16, at: usize) -> Option<Vec<u8>> {
    let len = u16::from_be_bytes([*m.get(at.checked_sub(2)?)?, *m.get(at - 1)?]) as usize;
    let raw = m.get(at..at + len)?;
    let mut out = Vec::with_capacity(len + 32);
    match rtype {
        rtype::CNAME | rtype::NS | rtype::PTR => {
            read_name(m, at, &mut out)?;
        }
        rtype::SRV => {
            out.extend_from_slice(raw.get(..6)?);
            read_name(m, at + 6, &mut out)?;
        }
        rtype::SOA => {
            let after = read_name(m, at, &mut out)?;
            let after = read_name(m, after, &mut out)?;
            out.extend_from_slice(m.get(after..after + 20)?);
        }
        _ => out.extend_from_slice(raw),
    }
    Some(out)
}

fn record_len(r: &Record) -> usize {
    r.owner.len() + 10 + r.rdata.len()
}

fn write(w: &mut ResponseWriter<'_>, size: &mut usize, r: &Record) {
    if w.raw_record(Section::Answer, &r.owner, r.rtype, r.ttl, &r.rdata) {
        *size += record_len(r);
    }
}
