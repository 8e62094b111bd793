//! The write side of the zone: applies cluster events one at a time and republishes only
//! what an event touched (one service's view, the addresses whose PTR names changed, a
//! namespace's existence). Owned by the single task that drains a source.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use super::objects::{
    ClusterEvent, ClusterObject, Endpoint, EndpointSlice, Kind, ObjectKey, Pod, Service,
    ServiceType,
};

use super::names::{dashed_ip, external_name_wire};
use super::view::{
    ClusterZone, EndpointView, Names, PtrTarget, ServiceKey, ServiceKind, ServiceView, SliceSeen,
};

/// What the index needs from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexSettings {
    /// Namespaces exposed; empty means all.
    pub namespaces: Vec<String>,
    /// Name endpoints without a hostname after their pod (CoreDNS `endpoint_pod_names`).
    pub endpoint_pod_names: bool,
    /// Keep pod addresses, for `pods verified`.
    pub track_pods: bool,
}

type SliceKey = (Arc<str>, Arc<str>);

pub struct ClusterIndex {
    zone: Arc<ClusterZone>,
    settings: IndexSettings,
    namespaces: HashSet<Arc<str>>,
    services: HashMap<ServiceKey, Service>,
    services_per_namespace: HashMap<Arc<str>, usize>,
    slices: HashMap<SliceKey, EndpointSlice>,
    slices_per_service: HashMap<ServiceKey, BTreeSet<Arc<str>>>,
    pods: HashMap<SliceKey, PodIps>,
    /// Namespace names and topology zones, shared by every object that names them (a
    /// large cluster holds hundreds of thousands of pods and endpoints, in few of each).
    interned: HashSet<Arc<str>>,
    /// `coredns_kubernetes_dns_programming_duration_seconds`, when metrics are kept.
    programming: Option<prometheus::HistogramVec>,
    /// Whether an event of the current batch changed what the zone holds: a relist that
    /// re-applies unchanged objects must not move the SOA serial (secondaries would
    /// transfer the zone again for nothing).
    changed: bool,
}

/// A pod's addresses: one (no allocation) or several (dual stack).
#[derive(Debug, Clone, PartialEq, Eq)]
enum PodIps {
    One(IpAddr),
    Many(Box<[IpAddr]>),
}

impl PodIps {
    fn new(ips: Box<[IpAddr]>) -> Option<PodIps> {
        match *ips {
            [] => None,
            [ip] => Some(PodIps::One(ip)),
            _ => Some(PodIps::Many(ips)),
        }
    }

    fn as_slice(&self) -> &[IpAddr] {
        match self {
            PodIps::One(ip) => std::slice::from_ref(ip),
            PodIps::Many(ips) => ips,
        }
    }
}

impl ClusterIndex {
    pub fn new(zone: Arc<ClusterZone>, settings: IndexSettings) -> Self {
        ClusterIndex {
            zone,
            settings,
            namespaces: HashSet::new(),
            services: HashMap::new(),
            services_per_namespace: HashMap::new(),
            slices: HashMap::new(),
            slices_per_service: HashMap::new(),

            pods: HashMap::new(),
            interned: HashSet::new(),
            programming: None,
            changed: false,
        }
    }

    pub fn zone(&self) -> &Arc<ClusterZone> {
        &self.zone
    }

    /// Applies a batch of events and stamps the zone serial once, if the batch changed
    /// anything.
    pub fn apply_all(&mut self, events: impl IntoIterator<Item = ClusterEvent>) {
        self.changed = false;
        for e in events {
            self.apply(e);
        }
        if std::mem::take(&mut self.changed) {
            self.stamp();
        }
    }

    /// The serial is the Unix time of the last change, as the spec has it, but always
    /// moves forward: two changes within one second still give two serials, so a
    /// secondary that polls the SOA sees every change (RFC 1982 arithmetic is not needed
    /// before 2106).
    fn stamp(&self) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(1);
        self.zone
            .set_serial(now.max(self.zone.serial().saturating_add(1)));
    }

    fn exposed(&self, namespace: &str) -> bool {
        self.settings.namespaces.is_empty()
            || self.settings.namespaces.iter().any(|n| n == namespace)
    }

    pub fn apply(&mut self, event: ClusterEvent) {
        match event {
            ClusterEvent::InitialSyncDone => self.zone.set_listed(),
            ClusterEvent::Apply(object) => {
                let key = object.key();
                if key.kind != Kind::Namespace && !self.exposed(&key.namespace) {
                    return;
                }
                match object {
                    ClusterObject::Namespace(name) => {
                        self.changed |= self.namespaces.insert(name.clone());
                        self.refresh_namespace(&name);
                    }
                    ClusterObject::Service(s) => self.apply_service(s),
                    ClusterObject::EndpointSlice(s) => self.apply_slice(s),
                    ClusterObject::Pod(p) => self.apply_pod(p),
                }
            }
            ClusterEvent::Delete(key) => self.delete(key),
        }
    }

    /// The keys of the objects of `kind` held (in `namespace` only, when given) that
    /// `seen` rejects: what a relist that did not list them again must delete.
    pub fn keys_not_in(
        &self,
        kind: Kind,
        namespace: Option<&str>,
        seen: impl Fn(&ObjectKey) -> bool,
    ) -> Vec<ObjectKey> {
        let in_scope = |ns: &str| namespace.is_none_or(|n| n == ns);
        let key = |namespace: &Arc<str>, name: &Arc<str>| ObjectKey {
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
        };
        let keys: Box<dyn Iterator<Item = ObjectKey> + '_> = match kind {
            Kind::Namespace => {
                let cluster_scoped: Arc<str> = Arc::from("");
                Box::new(self.namespaces.iter().map(move |n| key(&cluster_scoped, n)))
            }
            Kind::Service => Box::new(
                self.services
                    .keys()
                    .filter(|k| in_scope(&k.namespace))
                    .map(|k| key(&k.namespace, &k.name)),
            ),
            Kind::EndpointSlice => Box::new(
                self.slices
                    .keys()
                    .filter(|(ns, _)| in_scope(ns))
                    .map(|(ns, name)| key(ns, name)),
            ),
            Kind::Pod => Box::new(
                self.pods
                    .keys()
                    .filter(|(ns, _)| in_scope(ns))
                    .map(|(ns, name)| key(ns, name)),
            ),
        };
        keys.filter(|k| !seen(k)).collect()
    }

    fn delete(&mut self, key: ObjectKey) {
        let ObjectKey {
            kind,
            namespace,
            name,
        } = key;
        match kind {
            Kind::Namespace => {
                self.changed |= self.namespaces.remove(&name);
                self.refresh_namespace(&name);
            }
            Kind::Service => {
                let key = ServiceKey { namespace, name };
                if self.services.remove(&key).is_some() {
                    self.changed = true;
                    self.count_service(&key.namespace, -1);
                    self.refresh_service(&key);
                }
            }
            Kind::EndpointSlice => {
                if let Some(old) = self.slices.remove(&(namespace, name)) {
                    self.changed = true;
                    let svc = ServiceKey {
                        namespace: old.namespace.clone(),
                        name: old.service.clone(),
                    };
                    self.unlink_slice(&svc, &old.name);
                    self.refresh_service(&svc);
                }
            }
            Kind::Pod => self.set_pod_ips((namespace, name), Box::new([])),
        }
    }

    fn apply_service(&mut self, s: Service) {
        let key = ServiceKey {
            namespace: s.namespace.clone(),
            name: s.name.clone(),
        };
        if self.services.get(&key) == Some(&s) {
            return; // a relist re-applies everything: unchanged objects cost a comparison
        }
        self.changed = true;
        if self.services.insert(key.clone(), s).is_none() {
            self.count_service(&key.namespace, 1);
        }
        self.refresh_service(&key);
    }

    fn count_service(&mut self, namespace: &Arc<str>, delta: isize) {
        let n = self
            .services_per_namespace
            .entry(namespace.clone())
            .or_default();
        *n = n.saturating_add_signed(delta);
        if *n == 0 {
            self.services_per_namespace.remove(namespace);
        }
        self.refresh_namespace(namespace);
    }

    fn apply_slice(&mut self, mut s: EndpointSlice) {
        for e in s.endpoints.iter_mut() {
            e.zone = e.zone.take().map(|z| self.intern(z));
            if !self.settings.endpoint_pod_names {
                e.pod_name = None; // read only to name endpoints after their pods
            }
        }
        let key = (s.namespace.clone(), s.name.clone());
        if self.slices.get(&key) == Some(&s) {
            return;
        }
        self.changed = true;
        let svc = ServiceKey {
            namespace: s.namespace.clone(),
            name: s.service.clone(),
        };
        let name = s.name.clone();
        let changed_at = s.changed_at_ms;
        if let Some(old) = self.slices.insert(key, s)
            && old.service != svc.name
        {
            {
                let old_svc = ServiceKey {
                    namespace: old.namespace.clone(),
                    name: old.service.clone(),
                };
                self.unlink_slice(&old_svc, &old.name);
                self.refresh_service(&old_svc);
            }
        }
        if svc.name.is_empty() {
            return;
        }
        self.slices_per_service
            .entry(svc.clone())
            .or_default()
            .insert(name);
        self.refresh_service(&svc);
        self.observe_programming(&svc, changed_at);
    }

    /// Records `coredns_kubernetes_dns_programming_duration_seconds` from this metric.
    pub fn set_programming_metric(&mut self, metric: prometheus::HistogramVec) {
        self.programming = Some(metric);
    }

    /// How long the change of an EndpointSlice took from its trigger to being served.
    /// As CoreDNS, only after the first sync: the triggers of a first list are old news.
    fn observe_programming(&self, svc: &ServiceKey, changed_at_ms: Option<u64>) {
        let (Some(metric), Some(at)) = (&self.programming, changed_at_ms) else {
            return;
        };
        if !self.zone.listed() {
            return;
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        let kind = match self.services.get(svc).map(|s| &s.kind) {
            Some(ServiceType::ClusterIp(_)) => "cluster_ip",
            Some(ServiceType::Headless) => "headless_with_selector",
            _ => return,
        };
        metric
            .with_label_values(&[kind])
            .observe(now.saturating_sub(at) as f64 / 1000.0);
    }

    fn unlink_slice(&mut self, svc: &ServiceKey, slice: &Arc<str>) {
        if let Some(set) = self.slices_per_service.get_mut(svc) {
            set.remove(slice);
            if set.is_empty() {
                self.slices_per_service.remove(svc);
            }
        }
    }

    fn intern(&mut self, text: Arc<str>) -> Arc<str> {
        if let Some(shared) = self.interned.get(&text) {
            return shared.clone();
        }
        self.interned.insert(text.clone());
        text
    }

    fn apply_pod(&mut self, p: Pod) {
        if self.settings.track_pods {
            let namespace = self.intern(p.namespace);
            self.set_pod_ips((namespace, p.name), p.ips);
        }
    }

    fn set_pod_ips(&mut self, key: SliceKey, ips: Box<[IpAddr]>) {
        let new = PodIps::new(ips);
        let old = match &new {
            Some(ips) => self.pods.insert(key.clone(), ips.clone()),
            None => self.pods.remove(&key),
        };
        if old == new {
            return;
        }
        self.changed = true;
        // The published list holds the namespace once per pod, so it is the count too:
        // no second map of addresses on the write side.
        let namespace = &key.0;
        let pods = self.zone.pods.pin();
        for ip in old.as_ref().map_or(&[][..], PodIps::as_slice) {
            let mut holders = pods
                .get(ip)
                .map_or_else(Vec::new, |n| n.as_slice().to_vec());
            if let Some(i) = holders.iter().position(|n| n == namespace) {
                holders.swap_remove(i);
            }
            match Names::from_vec(holders) {
                Some(names) => pods.insert(*ip, names),
                None => pods.remove(ip),
            };
        }
        for ip in new.as_ref().map_or(&[][..], PodIps::as_slice) {
            let mut holders = pods
                .get(ip)
                .map_or_else(Vec::new, |n| n.as_slice().to_vec());
            holders.push(namespace.clone());
            if let Some(names) = Names::from_vec(holders) {
                pods.insert(*ip, names);
            }
        }
    }

    fn refresh_namespace(&mut self, name: &Arc<str>) {
        let exists = self.exposed(name)
            && (self.namespaces.contains(name) || self.services_per_namespace.contains_key(name));
        let set = self.zone.namespaces.pin();
        if exists {
            set.insert(name.clone());
        } else {
            set.remove(name);
        }
    }

    /// Rebuilds the view of one service from its Service and EndpointSlices and publishes it.
    fn refresh_service(&mut self, key: &ServiceKey) {
        let view = self.services.get(key).map(|s| self.build_view(key, s));
        let new_ptr = view
            .as_ref()
            .map(|v| ptr_entries(key, v))
            .unwrap_or_default();
        let services = self.zone.services.pin();
        // What the service named before comes from its published view: no second copy
        // of every endpoint's reverse name is kept on the write side.
        let old_ptr = services
            .get(key)
            .map(|v| ptr_entries(key, v))
            .unwrap_or_default();
        match view {
            Some(v) => {
                services.insert(key.clone(), Arc::new(v));
            }
            None => {
                services.remove(key);
            }
        }
        drop(services);
        self.update_ptr(old_ptr, new_ptr);
    }

    fn build_view(&self, key: &ServiceKey, s: &Service) -> ServiceView {
        let kind = match &s.kind {
            ServiceType::ClusterIp(ips) => ServiceKind::ClusterIp {
                v4: ips
                    .iter()
                    .filter_map(|ip| match ip {
                        IpAddr::V4(a) => Some(*a),
                        IpAddr::V6(_) => None,
                    })
                    .collect(),
                v6: ips
                    .iter()
                    .filter_map(|ip| match ip {
                        IpAddr::V6(a) => Some(*a),
                        IpAddr::V4(_) => None,
                    })
                    .collect(),
            },
            ServiceType::Headless => ServiceKind::Headless,
            ServiceType::ExternalName(target) => match external_name_wire(target) {
                Some(wire) => ServiceKind::ExternalName(wire),
                None => ServiceKind::ExternalNameInvalid,
            },
        };
        let mut endpoints = Vec::new();
        let mut seen = Vec::new();
        if !matches!(s.kind, ServiceType::ExternalName(_)) {
            for slice in self
                .slices_per_service
                .get(key)
                .into_iter()
                .flatten()
                .filter_map(|name| self.slices.get(&(key.namespace.clone(), name.clone())))
            {
                seen.push(SliceSeen {
                    name: slice.name.clone(),
                    endpoints: slice.endpoints.len() as u32,
                    ready: slice.endpoints.iter().filter(|e| e.ready).count() as u32,
                });
                for e in slice.endpoints.iter().filter(|e| e.ready) {
                    for addr in e.addresses.iter() {
                        endpoints.push(EndpointView {
                            name: self.endpoint_name(e, addr),
                            addr: *addr,
                            zone: e.zone.clone(),
                            ports: slice.ports.clone(),
                        });
                    }
                }
            }
        }
        endpoints.sort_by(|a, b| (&a.name, a.addr).cmp(&(&b.name, b.addr)));
        let mut v4: Vec<_> = endpoints
            .iter()
            .filter_map(|e| match e.addr {
                IpAddr::V4(a) => Some(a),
                IpAddr::V6(_) => None,
            })
            .collect();
        let mut v6: Vec<_> = endpoints
            .iter()
            .filter_map(|e| match e.addr {
                IpAddr::V6(a) => Some(a),
                IpAddr::V4(_) => None,
            })
            .collect();
        v4.sort();
        v4.dedup();
        v6.sort();
        v6.dedup();
        ServiceView {
            kind,
            ports: s.ports.clone(),
            endpoints: endpoints.into(),
            v4: v4.into(),
            v6: v6.into(),
            slices: seen.into(),
        }
    }

    /// `dns-spec.md`: hostname, else (optionally) the pod name, else the address with dashes.
    fn endpoint_name(&self, e: &Endpoint, addr: &IpAddr) -> Box<str> {
        if let Some(h) = &e.hostname {
            return h.clone();
        }
        if self.settings.endpoint_pod_names
            && let Some(p) = e.pod_name.as_ref().filter(|p| p.len() < 64)
        {
            return p.clone();
        }
        dashed_ip(addr).into()
    }

    /// Applies the difference between what a service named before and now to the
    /// published reverse names, touching only the addresses that changed.
    fn update_ptr(
        &mut self,
        old: Vec<(IpAddr, Arc<str>, bool)>,
        new: Vec<(IpAddr, Arc<str>, bool)>,
    ) {
        if old == new {
            return;
        }
        let mut changes: Vec<(IpAddr, Arc<str>, bool, bool)> = Vec::new();
        for r in old.iter().filter(|r| new.binary_search(r).is_err()) {
            changes.push((r.0, r.1.clone(), r.2, false));
        }
        for r in new.iter().filter(|r| old.binary_search(r).is_err()) {
            changes.push((r.0, r.1.clone(), r.2, true));
        }
        changes.sort_by_key(|c| c.0);
        let published = self.zone.ptr.pin();
        for same_ip in changes.chunk_by(|a, b| a.0 == b.0) {
            let ip = same_ip[0].0;
            let mut list: Vec<PtrTarget> = published
                .get(&ip)
                .map(|n| n.as_slice().to_vec())
                .unwrap_or_default();
            for (_, target, cluster_ip, add) in same_ip {
                let entry = (target.clone(), *cluster_ip);
                if *add {
                    list.push(entry);
                } else if let Some(i) = list.iter().position(|e| *e == entry) {
                    list.swap_remove(i);
                }
            }
            match Names::from_vec(list) {
                Some(names) => {
                    published.insert(ip, names);
                }
                None => {
                    published.remove(&ip);
                }
            }
        }
    }
}

/// The reverse names a service's view contributes, sorted: (address, target, is a
/// ClusterIP).
fn ptr_entries(key: &ServiceKey, v: &ServiceView) -> Vec<(IpAddr, Arc<str>, bool)> {
    let base = format!("{}.{}.svc", key.name, key.namespace);
    let mut ptr = Vec::with_capacity(v.endpoints.len() + 2);
    if let ServiceKind::ClusterIp { v4, v6 } = &v.kind {
        let base: Arc<str> = base.as_str().into();
        let ips = v4
            .iter()
            .map(|a| IpAddr::V4(*a))
            .chain(v6.iter().map(|a| IpAddr::V6(*a)));
        ptr.extend(ips.map(|ip| (ip, base.clone(), true)));
    }
    for e in v.endpoints.iter() {
        ptr.push((e.addr, format!("{}.{base}", e.name).into(), false));
    }
    ptr.sort();
    ptr.dedup();
    ptr
}
