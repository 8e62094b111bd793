//! Slim cluster objects: only the fields DNS needs, cut down as objects enter.
//!
//! Every source (the cluster file, the Kubernetes API) produces these, and the zone index
//! consumes nothing else, so a 3 kB Pod costs a few dozen bytes once it is in.

use std::net::IpAddr;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    Namespace,
    Service,
    EndpointSlice,
    Pod,
}

/// Identifies an object across apply and delete events.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub kind: Kind,
    /// Empty for namespaces.
    pub namespace: Arc<str>,
    pub name: Arc<str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

/// A named (or unnamed: empty name) port of a Service or an EndpointSlice.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Port {
    pub name: Box<str>,
    pub protocol: Protocol,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ServiceType {
    /// ClusterIP, NodePort and LoadBalancer: answered with `spec.clusterIPs`.
    ClusterIp(Box<[IpAddr]>),
    /// `clusterIP: None`: answered with ready endpoint addresses.
    Headless,
    /// `spec.externalName`, lower-cased, without a trailing dot.
    ExternalName(Box<str>),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Service {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub kind: ServiceType,
    pub ports: Box<[Port]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub addresses: Box<[IpAddr]>,
    /// `conditions.ready`, true when absent.
    pub ready: bool,
    pub hostname: Option<Box<str>>,
    /// `targetRef.name` when the target is a Pod.
    pub pod_name: Option<Box<str>>,
    pub zone: Option<Arc<str>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EndpointSlice {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    /// The `kubernetes.io/service-name` label.
    pub service: Arc<str>,
    pub endpoints: Box<[Endpoint]>,
    pub ports: Arc<[Port]>,
    /// When the change this version carries was triggered (ms since the epoch), from
    /// the `last-change-trigger-time` annotation: the start of the DNS programming
    /// latency.
    pub changed_at_ms: Option<u64>,
}

/// A pod that holds its IPs (phase Pending or Running); finished pods are deletions.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pod {
    pub namespace: Arc<str>,
    pub name: Arc<str>,
    pub ips: Box<[IpAddr]>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ClusterObject {
    Namespace(Arc<str>),
    Service(Service),
    EndpointSlice(EndpointSlice),
    Pod(Pod),
}

impl ClusterObject {
    pub fn key(&self) -> ObjectKey {
        let (kind, namespace, name) = match self {
            ClusterObject::Namespace(n) => (Kind::Namespace, Arc::from(""), n.clone()),
            ClusterObject::Service(s) => (Kind::Service, s.namespace.clone(), s.name.clone()),
            ClusterObject::EndpointSlice(s) => {
                (Kind::EndpointSlice, s.namespace.clone(), s.name.clone())
            }
            ClusterObject::Pod(p) => (Kind::Pod, p.namespace.clone(), p.name.clone()),
        };
        ObjectKey {
            kind,
            namespace,
            name,
        }
    }
}

/// One change to the cluster, in a form every source can produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterEvent {
    /// The object was created or changed: this is its whole new state.
    Apply(ClusterObject),
    /// The object is gone.
    Delete(ObjectKey),
    /// Everything that existed when the source started has been applied: the zone is
    /// complete, and names it does not know are truly unknown (NXDOMAIN, not SERVFAIL).
    InitialSyncDone,
}
