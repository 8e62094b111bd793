//! Why a name answers as it does, in plain words: the zone matched, the name's shape,
//! the object found or the first missing link, and for a search-path expansion the name
//! most likely meant.
//!
//! The verdict (rcode and records) is the zone's own answer ([`records::answer`]); the
//! reasons walk the same index with the same grammar ([`classify`], [`pod_ip`],
//! [`reverse_name`], [`search::expansion`]), so an explanation cannot drift from the
//! rules it explains.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use thiserror::Error;

mod service;

use service::Below;

use super::names::{ClusterName, ReverseName, classify, pod_ip, reverse_name};
use super::records::{self, ZoneOutcome};
use super::render::{render_answers, type_name};
use super::search;
use super::settings::{PodMode, ZoneSettings};
use super::view::ClusterZone;
use crate::wire::writer::{NameRef, ResponseWriter, Section};
use crate::wire::{QName, Rcode, parse_query, rtype};

pub use super::render::parse_type;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum ExplainError {
    #[error("{0:?} is not a domain name (labels of 1 to 63 bytes, 255 in all)")]
    BadName(String),
    #[error("this server block has no cluster zone")]
    NoZone,
}

/// What a name reads as, right to left after the zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Shape {
    /// In none of the zones served.
    Outside,
    Apex,
    DnsVersion,
    NameServer,
    /// `svc.Z`, `pod.Z`, `dns.Z`.
    EmptyNonTerminal,
    Namespace,
    Service,
    Endpoint,
    Srv,
    Zonal,
    Pod,
    Reverse,
    Malformed,
}

/// The first link missing between the name and a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Missing {
    NotSynced,
    NamespaceUnknown,
    NamespaceExcluded,
    ServiceUnknown,
    ServiceExcludedByLabels,
    HeadlessNoReadyEndpoint,
    EmptyService,
    EndpointUnknown,
    PortUnknown,
    ExternalNameInvalid,
    BelowExternalName,
    ZonalNotHeadless,
    ZonalNoEndpointInZone,
    PodsDisabled,
    PodAddressInvalid,
    PodNotInNamespace,
    AddressUnknown,
    Malformed,
    NoRecordOfType,
}

/// The name read as a search-path expansion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchPath {
    /// Which search domain made it: `namespace` (`X.<ns>.svc.Z`), `svc`, `zone`.
    pub domain: String,
    /// The querying pod's namespace, for the `namespace` domain.
    pub namespace: Option<String>,
    /// What the client typed.
    pub typed: String,
    /// The name it most likely meant.
    pub meant: String,
}

/// Where a name outside the zones goes (filled in by the server that forwards it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forwarding {
    /// The zone of the upstream group that takes the name (`.` for the default group).
    pub group: String,
    pub policy: String,
    /// Each upstream and whether it is taken to be up.
    pub upstreams: Vec<(String, bool)>,
    /// `hit`, `stale`, `miss`; with age and TTL left in seconds for an entry.
    pub cache: Option<CacheState>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheState {
    pub state: String,
    pub age_secs: Option<u64>,
    pub ttl_left_secs: Option<u64>,
    pub rcode: Option<String>,
}

/// Everything said about one name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explanation {
    pub name: String,
    #[serde(rename = "type")]
    pub qtype: String,
    pub zone: Option<String>,
    pub shape: Shape,
    /// The zone's answer: rcode (`-` when the zone does not answer) and records.
    pub rcode: String,
    pub answers: Vec<String>,
    /// What was found, outermost first.
    pub found: Vec<String>,
    pub missing: Option<Missing>,
    /// The conclusion, in plain words.
    pub reason: String,
    pub search_path: Option<SearchPath>,
    pub forward: Option<Forwarding>,
}

/// Services (namespace, name) the `labels` selector left out, when known: the offline
/// form reads the whole cluster file; a running server never holds them.
pub type Hidden = HashSet<(String, String)>;

/// Explains `name` (dotted, trailing dot optional) asked with type `qtype`.
pub fn explain(
    zone: &ClusterZone,
    settings: &ZoneSettings,
    hidden: Option<&Hidden>,
    name: &str,
    qtype: u16,
) -> Result<Explanation, ExplainError> {
    let bad = || ExplainError::BadName(name.to_owned());
    let packet = query_packet(name, qtype).ok_or_else(bad)?;
    let q = parse_query(&packet).map_err(|_| bad())?;
    let qname = QName::question(&q);
    let mut out = Vec::with_capacity(1024);
    let mut w = ResponseWriter::new(&mut out, &q, u16::MAX as usize);
    let outcome = records::answer(zone, settings, &qname, qtype, &mut w);
    let rcode = w.rcode();
    w.finish();
    let mut e = Explanation {
        name: format!("{}.", dotted(qname.labels())),
        qtype: type_name(qtype),
        zone: None,
        shape: Shape::Outside,
        rcode: "-".into(),
        answers: Vec::new(),
        found: Vec::new(),
        missing: None,
        reason: String::new(),
        search_path: None,
        forward: None,
    };
    let Some((zone_start, reverse)) = settings.find_zone(&qname) else {
        e.reason = "outside every zone served here: the cluster zone does not answer it; \
                    it goes to the forwarder, if one is configured"
            .into();
        return Ok(e);
    };
    e.zone = Some(format!("{}.", dotted(&qname.labels()[zone_start..])));
    e.rcode = match outcome {
        ZoneOutcome::FallThrough => "NXDOMAIN (falls through to the next stage)".into(),
        _ => rcode.name().into(),
    };
    e.answers = render_answers(&out);
    let mut walk = Walk {
        zone,
        settings,
        hidden,
        e: &mut e,
    };
    if zone_start == 0 {
        walk.apex();
    } else if reverse {
        walk.reverse(&qname);
    } else {
        walk.forward(&qname, zone_start);
        // A namespace the `namespaces` option leaves out is no search domain's doing.
        let excluded = walk.e.missing == Some(Missing::NamespaceExcluded);
        if let Some(x) = search::expansion(zone, &qname, zone_start).filter(|_| !excluded) {
            let meant = search::meant(zone, x.typed, &qname.labels()[zone_start..], settings.zonal);
            walk.e.search_path = Some(SearchPath {
                domain: x.domain.label().into(),
                namespace: x.namespace.map(text),
                typed: dotted(x.typed),
                meant: format!("{meant}."),
            });
        }
    }
    if rcode == Rcode::SERVFAIL && !zone.synced() {
        e.missing = Some(Missing::NotSynced);
        e.reason = "the zone has not finished its first sync from the Kubernetes API: names \
                    it does not know yet get SERVFAIL, not NXDOMAIN"
            .into();
    } else if e.missing.is_none() && e.answers.is_empty() && rcode == Rcode::NOERROR {
        e.missing = Some(Missing::NoRecordOfType);
        if e.reason.is_empty() {
            e.reason = format!("the name exists but has no {} record (NODATA)", e.qtype);
        }
    }
    if e.reason.is_empty() {
        e.reason = format!("answered with {} record(s)", e.answers.len());
    }
    Ok(e)
}

struct Walk<'a, 'e> {
    zone: &'a ClusterZone,
    settings: &'a ZoneSettings,
    hidden: Option<&'a Hidden>,
    e: &'e mut Explanation,
}

impl Walk<'_, '_> {
    fn miss(&mut self, missing: Missing, reason: String) {
        self.e.missing = Some(missing);
        self.e.reason = reason;
    }

    fn apex(&mut self) {
        self.e.shape = Shape::Apex;
        self.e.found.push("the apex of the zone".into());
        self.e.reason = "the apex answers SOA and NS only".into();
    }

    fn reverse(&mut self, name: &QName<'_>) {
        self.e.shape = Shape::Reverse;
        match reverse_name(name) {
            ReverseName::Invalid => self.miss(
                Missing::Malformed,
                "not an address in reverse form (decimal octets without leading zeros, or \
                 single hex nibbles)"
                    .into(),
            ),
            ReverseName::Branch => {
                self.e.found.push("a branch of the reverse tree".into());
                self.e.reason = "a part of an address: it exists, with no records".into();
            }
            ReverseName::Address(ip) => {
                let targets = self.zone.with_ptr_targets(&ip, |t| {
                    t.map(|t| {
                        t.iter()
                            .map(|(n, c)| (n.to_string(), *c))
                            .collect::<Vec<_>>()
                    })
                });
                match targets {
                    None => self.miss(
                        Missing::AddressUnknown,
                        format!(
                            "no service's ClusterIP and no ready endpoint holds {ip} (pods \
                             that back no endpoint have no reverse name)"
                        ),
                    ),
                    Some(t) => {
                        for (target, cluster_ip) in t {
                            let what = if cluster_ip {
                                "ClusterIP of"
                            } else {
                                "endpoint"
                            };
                            self.e.found.push(format!("{ip}: {what} {target}"));
                        }
                    }
                }
            }
        }
    }

    /// Whether the namespace is served; records the missing link when it is not.
    fn namespace(&mut self, ns: &[u8]) -> bool {
        if self.zone.namespace_exists(ns) {
            self.e.found.push(format!("namespace {}", text(ns)));
            return true;
        }
        let allow = &self.settings.exposure.namespaces;
        if !allow.is_empty() && !allow.iter().any(|n| n.as_bytes() == ns) {
            self.miss(
                Missing::NamespaceExcluded,
                format!(
                    "namespace {} is not served: the `namespaces` option lists only {}",
                    text(ns),
                    allow.join(", ")
                ),
            );
        } else {
            self.miss(
                Missing::NamespaceUnknown,
                format!("namespace {} is unknown to the cluster", text(ns)),
            );
        }
        false
    }

    fn forward(&mut self, name: &QName<'_>, zone_start: usize) {
        match classify(name, zone_start, self.settings.zonal) {
            ClusterName::Apex => self.apex(),
            ClusterName::DnsVersion => {
                self.e.shape = Shape::DnsVersion;
                self.e.found.push("the schema version (TXT)".into());
            }
            ClusterName::NameServer => {
                self.e.shape = Shape::NameServer;
                self.e.found.push("the name server's own name".into());
            }
            ClusterName::EmptyNonTerminal => {
                self.e.shape = Shape::EmptyNonTerminal;
                self.e.reason = "exists only because names below it do: no records".into();
            }
            ClusterName::Namespace(ns) => {
                self.e.shape = Shape::Namespace;
                if self.namespace(ns) {
                    self.e.reason = "a namespace name exists, with no records of its own".into();
                }
            }
            ClusterName::Pod { namespace, ip } => self.pod(namespace, ip),
            ClusterName::Service(svc) => {
                self.e.shape = Shape::Service;
                self.service(svc.namespace, svc.service, None);
            }
            ClusterName::Endpoint(svc, ep) => {
                self.e.shape = Shape::Endpoint;
                self.service(svc.namespace, svc.service, Some(Below::Endpoint(ep)));
            }
            ClusterName::Port(svc, port, proto) => {
                self.e.shape = Shape::Srv;
                self.service(svc.namespace, svc.service, Some(Below::Port(port, proto)));
            }
            ClusterName::Zonal(svc, topology, mode) => {
                self.e.shape = Shape::Zonal;
                self.service(
                    svc.namespace,
                    svc.service,
                    Some(Below::Zonal(topology, mode)),
                );
            }
            ClusterName::Invalid => {
                self.e.shape = Shape::Malformed;
                let labels = &name.labels()[..zone_start];
                let reason = match labels.last() {
                    Some(&l) if l != b"svc" && l != b"pod" => format!(
                        "the label before the zone is {:?}: cluster names end in svc.<zone> \
                         or pod.<zone>",
                        text(l)
                    ),
                    _ => "too many labels (or a reserved one) for a service, endpoint, port \
                          or pod name"
                        .into(),
                };
                self.miss(Missing::Malformed, reason);
            }
        }
    }

    fn pod(&mut self, namespace: &[u8], label: &[u8]) {
        self.e.shape = Shape::Pod;
        if self.settings.pods == PodMode::Disabled {
            return self.miss(
                Missing::PodsDisabled,
                "pod names are off (`pods = \"disabled\"`)".into(),
            );
        }
        if !self.namespace(namespace) {
            return;
        }
        let Some(ip) = pod_ip(label) else {
            return self.miss(
                Missing::PodAddressInvalid,
                format!(
                    "{:?} does not spell an address (a-b-c-d, or IPv6 with - for :)",
                    text(label)
                ),
            );
        };
        if self.settings.pods == PodMode::Verified && !self.zone.pod_in_namespace(&ip, namespace) {
            return self.miss(
                Missing::PodNotInNamespace,
                format!(
                    "`pods = \"verified\"`: no pod of namespace {} holds {ip}",
                    text(namespace)
                ),
            );
        }
        let how = match self.settings.pods {
            PodMode::Verified => "a pod of that namespace holds it",
            _ => "`pods = \"insecure\"`: any address is answered",
        };
        self.e.found.push(format!("pod address {ip} ({how})"));
    }
}

/// A query packet for `name`, or `None` when it is not a valid name.
pub fn query_packet(name: &str, qtype: u16) -> Option<Vec<u8>> {
    let mut p = vec![0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    let trimmed = name.trim().trim_end_matches('.');
    if !trimmed.is_empty() {
        for l in trimmed.split('.') {
            if l.is_empty() || l.len() > 63 {
                return None;
            }
            p.push(l.len() as u8);
            p.extend_from_slice(l.as_bytes());
        }
    }
    p.push(0);
    if p.len() - 12 > 255 {
        return None;
    }
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&1u16.to_be_bytes());
    Some(p)
}

fn text(l: &[u8]) -> String {
    String::from_utf8_lossy(l).into_owned()
}

fn dotted(labels: &[&[u8]]) -> String {
    labels.iter().map(|l| text(l)).collect::<Vec<_>>().join(".")
}

impl Explanation {
    /// The explanation in plain words, one fact a line.
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![format!("name:    {} {}", self.name, self.qtype)];
        match &self.zone {
            Some(z) => out.push(format!("zone:    {z} (served here)")),
            None => out.push("zone:    none of the zones served here".into()),
        }
        out.push(format!("shape:   {}", shape_words(self.shape)));
        out.push(format!("answer:  {}", self.rcode));
        out.extend(self.answers.iter().map(|a| format!("  {a}")));
        out.extend(self.found.iter().map(|f| format!("found:   {f}")));
        if let Some(m) = self.missing {
            let code = serde_json::to_value(m).ok();
            let code = code.as_ref().and_then(|v| v.as_str()).unwrap_or("?");
            out.push(format!("missing: {code}"));
        }
        out.push(format!("why:     {}", self.reason));
        if let Some(s) = &self.search_path {
            let from = match (&*s.domain, &s.namespace) {
                ("namespace", Some(ns)) => {
                    format!("the search domain {ns}.svc.<zone> of a pod in namespace {ns}")
                }
                ("svc", _) => "the search domain svc.<zone>".into(),
                _ => "the search domain <zone>".into(),
            };
            out.push(format!(
                "search:  a search-path expansion: {:?} as typed, with {from} appended",
                s.typed
            ));
            out.push(format!("meant:   most likely {}", s.meant));
        }
        if let Some(f) = &self.forward {
            let ups: Vec<String> = f
                .upstreams
                .iter()
                .map(|(a, up)| format!("{a}{}", if *up { "" } else { " (down)" }))
                .collect();
            out.push(format!(
                "forward: upstream group {} ({}): {}",
                f.group,
                f.policy,
                if ups.is_empty() {
                    "none".into()
                } else {
                    ups.join(", ")
                }
            ));
            match &f.cache {
                None => out.push("cache:   no cache in front of the forwarder".into()),
                Some(c) => {
                    let mut line = format!("cache:   {}", c.state);
                    if let (Some(age), Some(left)) = (c.age_secs, c.ttl_left_secs) {
                        line.push_str(&format!(", stored {age}s ago, {left}s of TTL left"));
                    }
                    if let Some(r) = &c.rcode {
                        line.push_str(&format!(", answer {r}"));
                    }
                    out.push(line);
                }
            }
        }
        out
    }
}

fn shape_words(shape: Shape) -> &'static str {
    match shape {
        Shape::Outside => "outside the cluster zones",
        Shape::Apex => "the zone apex",
        Shape::DnsVersion => "dns-version.<zone>, the schema version",
        Shape::NameServer => "ns.dns.<zone>, the name server",
        Shape::EmptyNonTerminal => "svc.<zone> / pod.<zone> / dns.<zone> (no records of its own)",
        Shape::Namespace => "a namespace (<ns>.svc.<zone>)",
        Shape::Service => "a service (<svc>.<ns>.svc.<zone>)",
        Shape::Endpoint => "an endpoint (<ep>.<svc>.<ns>.svc.<zone>)",
        Shape::Srv => "a port (_<port>._<proto>.<svc>.<ns>.svc.<zone>, SRV)",
        Shape::Zonal => "a topology name (<zone>.pin|prefer._zone.<svc>.<ns>.svc.<zone>)",
        Shape::Pod => "a pod address (<a-b-c-d>.<ns>.pod.<zone>)",
        Shape::Reverse => "a reverse name (PTR)",
        Shape::Malformed => "not a name of the cluster zone's grammar",
    }
}

/// The labels of `<name>` when `name` is `<name>.explain.<zone>` (the DNS form).
pub fn dns_form<'n>(name: &'n QName<'n>, zone_start: usize) -> Option<&'n [&'n [u8]]> {
    let labels = name.labels();
    (zone_start > 0 && labels[zone_start - 1] == b"explain").then(|| &labels[..zone_start - 1])
}

/// Writes the explanation of `inner` (asked as type A) as TXT records, one line each,
/// TTL 0 (an explanation is not for caches); `false` when nothing was written.
pub(crate) fn write_txt(
    zone: &ClusterZone,
    settings: &ZoneSettings,
    inner: &[&[u8]],
    w: &mut ResponseWriter<'_>,
    owner: NameRef<'_>,
) -> bool {
    let Ok(e) = explain(zone, settings, None, &dotted(inner), rtype::A) else {
        return false;
    };
    for line in e.lines() {
        let mut end = line.len().min(255);
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        w.txt(Section::Answer, owner, 0, &line.as_bytes()[..end]);
    }
    true
}
