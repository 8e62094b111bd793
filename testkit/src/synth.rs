//! Deterministic synthetic Kubernetes clusters for tests, benchmarks and the `clusterdns-synth` tool.
//!
//! [`SynthCluster::generate`] builds a cluster model from [`SynthParams`]; the same parameters
//! (seed included) always give byte-identical output. From the model it renders:
//! - [`SynthCluster::cluster_yaml`]: the cluster as
//!   `kubectl get namespaces,services,endpointslices,pods -A -o yaml` prints it (one `v1 List`,
//!   items in flow style for compactness);
//! - [`SynthCluster::nsd_zone`] and [`SynthCluster::reverse_zone`]: RFC 1035 master files with
//!   every record the DNS spec says the cluster zone answers (default options, TTL 5), to load into
//!   NSD or Knot as a reference server or to check answers against;
//! - [`SynthCluster::queries`]: a dnsperf query file.
//!
//! The generated cluster:
//! - namespaces `default`, `kube-system`, `kube-public`, then `ns-000`, `ns-001`, ...;
//! - `default/kubernetes` (10.96.0.1, `https` 443/TCP → 6443, one API server endpoint 10.0.0.2
//!   without a targetRef, backed by a host-network static pod) and `kube-system/kube-dns`
//!   (10.96.0.10, `dns` 53/UDP, `dns-tcp` 53/TCP, `metrics` 9153/TCP, two coredns pods);
//! - ClusterIP services `svc-00000`, ... spread round-robin over the `ns-*` namespaces (over
//!   `default` when there are none), ClusterIPs allocated sequentially from 10.96.1.0, port
//!   `http` 80/TCP and on every third service also `grpc` 9090/TCP, Deployment-style pods;
//! - headless services `hl-0000`, ... with StatefulSet-style endpoints (`hostname: hl-0000-<i>`,
//!   backed by the pod of the same name), port `tcp-peer` 7000/TCP; every 10th headless endpoint,
//!   counted over all headless services, is not ready;
//! - every endpoint is its own pod, pod IPs allocated sequentially from 10.244.0.1 (skipping
//!   `x.x.x.0`); pods beyond those are standalone `pod-000000`, ...;
//! - EndpointSlices of at most 100 endpoints; nodes `node-0000`, ... (about 100 pods each, at
//!   least 3) with IPs from 10.0.0.2 and zones `zone-a`, `zone-b`, `zone-c` in turn.
//!
//! Every address lies in 10.0.0.0/8, so one reverse zone, [`REVERSE_ZONE`], covers them all.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// ClusterIP of `kube-system/kube-dns`, also the glue address of `ns.dns.<zone>`.
pub const KUBE_DNS_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 10);
/// ClusterIP of `default/kubernetes`.
pub const KUBERNETES_IP: Ipv4Addr = Ipv4Addr::new(10, 96, 0, 1);
/// The reverse zone holding every PTR record of a synthetic cluster.
pub const REVERSE_ZONE: &str = "10.in-addr.arpa";

/// Record TTL of the zone files (the spec's default `T`).
const TTL: u32 = 5;
/// SOA serial of the zone files (a synthetic cluster never changes).
const SERIAL: u32 = 1;
/// Node IPs start here; node 0 is the control plane, whose IP the API server endpoint uses.
const FIRST_NODE_IP: u32 = u32::from_be_bytes([10, 0, 0, 2]);
const FIRST_CLUSTER_IP: u32 = u32::from_be_bytes([10, 96, 1, 0]);
const LAST_CLUSTER_IP: u32 = u32::from_be_bytes([10, 111, 255, 255]);
const FIRST_POD_IP: u32 = u32::from_be_bytes([10, 244, 0, 1]);
const LAST_POD_IP: u32 = u32::from_be_bytes([10, 247, 255, 255]);
/// Usable pod IPs in 10.244.0.0/14 once every `x.x.x.0` is skipped.
const POD_IP_CAPACITY: usize = (1 << 18) - (1 << 10);
const MAX_SLICE_ENDPOINTS: usize = 100;
const PODS_PER_NODE: usize = 100;
const ZONES: [&str; 3] = ["zone-a", "zone-b", "zone-c"];
/// The alphabet Kubernetes uses for generated name suffixes.
const NAME_ALPHABET: &[u8; 27] = b"bcdfghjklmnpqrstvwxz2456789";
/// Number of distinct 5-character suffixes.
const SUFFIX_SPACE: u64 = 27 * 27 * 27 * 27 * 27;
/// Step between consecutive generated suffixes; prime to 27, so `i * STRIDE mod 27^5` never
/// repeats for `i < 27^5` and neighbouring names look unrelated.
const SUFFIX_STRIDE: u64 = 5_054_107;
/// Names outside the cluster that search-path expansion glues the cluster suffixes onto.
const EXTERNAL_NAMES: [&str; 6] = [
    "www.example.org",
    "example.com",
    "api.github.com",
    "registry-1.docker.io",
    "s3.amazonaws.com",
    "login.microsoftonline.com",
];

/// `write!` into a `String`, which cannot fail.
macro_rules! put {
    ($out:expr, $($arg:tt)*) => {
        write!($out, $($arg)*).expect("write to String")
    };
}

/// What to generate. All counts are exact except `pods`, which is raised to the number of pods
/// the endpoints need.
#[derive(Debug, Clone)]
pub struct SynthParams {
    /// Seed of the generator: pod-name and slice-name suffixes, and the query mix.
    pub seed: u64,
    /// Application namespaces `ns-000`, ... (besides `default`, `kube-system`, `kube-public`).
    pub namespaces: usize,
    /// ClusterIP services `svc-00000`, ... (besides `kubernetes` and `kube-dns`).
    pub services: usize,
    /// Endpoints (pods) behind each ClusterIP service.
    pub endpoints_per_service: usize,
    /// Headless services `hl-0000`, ...
    pub headless: usize,
    /// Endpoints (StatefulSet pods) behind each headless service.
    pub endpoints_per_headless: usize,
    /// Total pods, including those behind endpoints, the coredns pods and the API server.
    pub pods: usize,
    /// The cluster zone, without a trailing dot.
    pub zone: String,
}

impl Default for SynthParams {
    /// A mid-sized cluster: 100 namespaces, 10 000 services, 1 000 headless services, 50 000 pods.
    fn default() -> Self {
        Self {
            seed: 1,
            namespaces: 100,
            services: 10_000,
            endpoints_per_service: 2,
            headless: 1_000,
            endpoints_per_headless: 20,
            pods: 50_000,
            zone: "cluster.local".to_owned(),
        }
    }
}

impl SynthParams {
    /// A cluster small enough for unit tests: 5 namespaces, 50 services, 5 headless services of
    /// 4 endpoints, 300 pods.
    pub fn small() -> Self {
        Self {
            namespaces: 5,
            services: 50,
            headless: 5,
            endpoints_per_headless: 4,
            pods: 300,
            ..Self::default()
        }
    }
}

/// One Service with its endpoints (from all of its EndpointSlices).
#[derive(Debug, Clone)]
pub struct SynthService {
    pub namespace: String,
    pub name: String,
    /// `None` for a headless service (`clusterIP: None`).
    pub cluster_ip: Option<Ipv4Addr>,
    /// `(name, port, protocol)`; the name is empty for an unnamed port.
    pub ports: Vec<(String, u16, &'static str)>,
    pub endpoints: Vec<SynthEndpoint>,
}

impl SynthService {
    /// Whether the service is headless.
    pub fn is_headless(&self) -> bool {
        self.cluster_ip.is_none()
    }

    /// The service's name in the zone, without a trailing dot: `svc.ns.svc.<zone>`.
    pub fn fqdn(&self, zone: &str) -> String {
        format!("{}.{}.svc.{zone}", self.name, self.namespace)
    }
}

/// One endpoint of an EndpointSlice.
#[derive(Debug, Clone)]
pub struct SynthEndpoint {
    pub ip: Ipv4Addr,
    /// `hostname` of the endpoint (StatefulSet pods of headless services).
    pub hostname: Option<String>,
    /// `conditions.ready`.
    pub ready: bool,
    /// Name of the pod in `targetRef`, in the service's namespace; empty when the endpoint has no
    /// targetRef (the API server endpoint of `default/kubernetes`).
    pub pod: String,
    /// Index of the endpoint's node (`nodeName: node-NNNN`).
    pub node: usize,
}

impl SynthEndpoint {
    /// The endpoint's DNS label: its hostname, else its IP with `.` replaced by `-`.
    pub fn name(&self) -> String {
        match &self.hostname {
            Some(hostname) => hostname.clone(),
            None => dashed(self.ip),
        }
    }

    /// The topology zone of the endpoint's node.
    pub fn zone(&self) -> &'static str {
        ZONES[self.node % ZONES.len()]
    }
}

/// One Pod (always `Running`).
#[derive(Debug, Clone)]
pub struct SynthPod {
    pub namespace: String,
    pub name: String,
    /// `status.podIP`; equal to the node's IP for the host-network API server pod.
    pub ip: Ipv4Addr,
    /// Index of the pod's node (`nodeName: node-NNNN`).
    pub node: usize,
    /// Value of the pod's `app` label: its service, or its own name for standalone pods.
    pub app: String,
}

/// A generated cluster; see the module documentation for its layout.
#[derive(Debug, Clone)]
pub struct SynthCluster {
    params: SynthParams,
    namespaces: Vec<String>,
    services: Vec<SynthService>,
    pods: Vec<SynthPod>,
}

impl SynthCluster {
    /// Builds the cluster described by `p`, in time linear in its size.
    ///
    /// # Panics
    /// If the services do not fit in 10.96.1.0–10.111.255.255 or the pods in 10.244.0.0/14.
    pub fn generate(p: &SynthParams) -> Self {
        assert!(
            p.services <= (LAST_CLUSTER_IP - FIRST_CLUSTER_IP + 1) as usize,
            "{} services do not fit in the service CIDR 10.96.0.0/12",
            p.services
        );
        // Pods behind endpoints, plus the two coredns pods (the API server uses its node's IP).
        let endpoint_pods = p
            .services
            .saturating_mul(p.endpoints_per_service)
            .saturating_add(p.headless.saturating_mul(p.endpoints_per_headless))
            .saturating_add(2);
        let total_pods = p.pods.max(endpoint_pods + 1);
        assert!(
            total_pods - 1 <= POD_IP_CAPACITY,
            "{total_pods} pods do not fit in the pod CIDR 10.244.0.0/14"
        );

        let mut namespaces: Vec<String> = ["default", "kube-system", "kube-public"]
            .into_iter()
            .map(str::to_owned)
            .collect();
        namespaces.extend((0..p.namespaces).map(|i| format!("ns-{i:03}")));
        let app_namespaces: Vec<String> = if p.namespaces == 0 {
            vec!["default".to_owned()]
        } else {
            namespaces[3..].to_vec()
        };

        let mut b = Builder {
            rng: SplitMix64::new(p.seed),
            pods: Vec::with_capacity(total_pods),
            next_pod_ip: FIRST_POD_IP,
            nodes: total_pods.div_ceil(PODS_PER_NODE).max(3),
        };
        let mut services = Vec::with_capacity(p.services + p.headless + 2);

        // The API server: a host-network static pod on the control-plane node (node 0).
        b.pods.push(SynthPod {
            namespace: "kube-system".to_owned(),
            name: "kube-apiserver-node-0000".to_owned(),
            ip: node_ip(0),
            node: 0,
            app: "kube-apiserver".to_owned(),
        });
        services.push(SynthService {
            namespace: "default".to_owned(),
            name: "kubernetes".to_owned(),
            cluster_ip: Some(KUBERNETES_IP),
            ports: vec![("https".to_owned(), 443, "TCP")],
            endpoints: vec![SynthEndpoint {
                ip: node_ip(0),
                hostname: None,
                ready: true,
                pod: String::new(),
                node: 0,
            }],
        });
        let coredns = b.deployment("kube-system", "kube-dns", "coredns", 2);
        services.push(SynthService {
            namespace: "kube-system".to_owned(),
            name: "kube-dns".to_owned(),
            cluster_ip: Some(KUBE_DNS_IP),
            ports: vec![
                ("dns".to_owned(), 53, "UDP"),
                ("dns-tcp".to_owned(), 53, "TCP"),
                ("metrics".to_owned(), 9153, "TCP"),
            ],
            endpoints: coredns,
        });

        for i in 0..p.services {
            let namespace = &app_namespaces[i % app_namespaces.len()];
            let name = format!("svc-{i:05}");
            let mut ports = vec![("http".to_owned(), 80, "TCP")];
            if i % 3 == 0 {
                ports.push(("grpc".to_owned(), 9090, "TCP"));
            }
            let endpoints = b.deployment(namespace, &name, &name, p.endpoints_per_service);
            services.push(SynthService {
                namespace: namespace.clone(),
                name,
                cluster_ip: Some(Ipv4Addr::from(FIRST_CLUSTER_IP + i as u32)),
                ports,
                endpoints,
            });
        }

        let mut headless_endpoints = 0usize;
        for i in 0..p.headless {
            let namespace = &app_namespaces[i % app_namespaces.len()];
            let name = format!("hl-{i:04}");
            let mut endpoints = Vec::with_capacity(p.endpoints_per_headless);
            for ordinal in 0..p.endpoints_per_headless {
                let pod = format!("{name}-{ordinal}");
                let (ip, node) = b.add_pod(namespace, pod.clone(), &name);
                endpoints.push(SynthEndpoint {
                    ip,
                    hostname: Some(pod.clone()),
                    ready: headless_endpoints % 10 != 9,
                    pod,
                    node,
                });
                headless_endpoints += 1;
            }
            services.push(SynthService {
                namespace: namespace.clone(),
                name,
                cluster_ip: None,
                ports: vec![("tcp-peer".to_owned(), 7000, "TCP")],
                endpoints,
            });
        }

        let mut standalone = 0usize;
        while b.pods.len() < total_pods {
            let namespace = &app_namespaces[standalone % app_namespaces.len()];
            let name = format!("pod-{standalone:06}");
            b.add_pod(namespace, name.clone(), &name);
            standalone += 1;
        }

        Self {
            params: p.clone(),
            namespaces,
            services,
            pods: b.pods,
        }
    }

    /// The parameters the cluster was generated from.
    pub fn params(&self) -> &SynthParams {
        &self.params
    }

    /// All namespaces, `default`, `kube-system`, `kube-public` first.
    pub fn namespaces(&self) -> &[String] {
        &self.namespaces
    }

    /// All services: `kubernetes`, `kube-dns`, the ClusterIP services, then the headless ones.
    pub fn services(&self) -> &[SynthService] {
        &self.services
    }

    /// All pods: the API server, the coredns pods, the endpoint pods, then standalone pods.
    pub fn pods(&self) -> &[SynthPod] {
        &self.pods
    }

    /// The cluster as a kubectl-style `v1 List` of Namespaces, Services, EndpointSlices and Pods.
    pub fn cluster_yaml(&self) -> String {
        let endpoints: usize = self.services.iter().map(|s| s.endpoints.len()).sum();
        let mut out = String::with_capacity(
            256 + self.namespaces.len() * 200
                + self.services.len() * 900
                + endpoints * 260
                + self.pods.len() * 280,
        );
        out.push_str("apiVersion: v1\nitems:\n");
        for ns in &self.namespaces {
            put!(
                out,
                "- apiVersion: v1\n  kind: Namespace\n  metadata: {{labels: {{kubernetes.io/metadata.name: {ns}}}, name: {ns}}}\n  spec: {{finalizers: [kubernetes]}}\n  status: {{phase: Active}}\n"
            );
        }
        for svc in &self.services {
            write_service_yaml(&mut out, svc);
        }
        for (index, svc) in self.services.iter().enumerate() {
            self.write_slices_yaml(&mut out, index, svc);
        }
        for pod in &self.pods {
            let host_ip = node_ip(pod.node);
            put!(
                out,
                "- apiVersion: v1\n  kind: Pod\n  metadata: {{labels: {{app: {}}}, name: {}, namespace: {}}}\n  spec: {{containers: [{{image: 'registry.example.com/{}:1.0', name: app}}], ",
                pod.app,
                pod.name,
                pod.namespace,
                pod.app
            );
            if pod.ip == host_ip {
                out.push_str("hostNetwork: true, ");
            }
            put!(
                out,
                "nodeName: {}}}\n  status: {{hostIP: {host_ip}, phase: Running, podIP: {ip}, podIPs: [{{ip: {ip}}}]}}\n",
                node_name(pod.node),
                ip = pod.ip
            );
        }
        out.push_str("kind: List\nmetadata:\n  resourceVersion: \"\"\n");
        out
    }

    /// The forward zone as an RFC 1035 master file: SOA, NS, glue, `dns-version` TXT, and the
    /// A and SRV records of every service and ready endpoint.
    pub fn nsd_zone(&self) -> String {
        let zone = &self.params.zone;
        let endpoints: usize = self.services.iter().map(|s| s.endpoints.len()).sum();
        let mut out = String::with_capacity(1024 + self.services.len() * 400 + endpoints * 200);
        self.write_zone_header(&mut out, zone);
        put!(out, "ns.dns\t{TTL}\tIN\tA\t{KUBE_DNS_IP}\n");
        put!(out, "dns-version\t28800\tIN\tTXT\t\"1.1.0\"\n");
        for svc in &self.services {
            write_service_records(&mut out, svc, zone);
        }
        out
    }

    /// The reverse zone: its name ([`REVERSE_ZONE`]) and its master file, with a PTR for every
    /// ClusterIP (to the service) and every ready endpoint address (to the endpoint's name).
    pub fn reverse_zone(&self) -> (String, String) {
        let zone = &self.params.zone;
        let endpoints: usize = self.services.iter().map(|s| s.endpoints.len()).sum();
        let mut out = String::with_capacity(1024 + (self.services.len() + endpoints) * 80);
        self.write_zone_header(&mut out, REVERSE_ZONE);
        for svc in &self.services {
            if let Some(ip) = svc.cluster_ip {
                put!(
                    out,
                    "{}\t{TTL}\tIN\tPTR\t{}.{}.svc.{zone}.\n",
                    reverse_owner(ip),
                    svc.name,
                    svc.namespace
                );
            }
        }
        for svc in &self.services {
            for ep in svc.endpoints.iter().filter(|ep| ep.ready) {
                put!(
                    out,
                    "{}\t{TTL}\tIN\tPTR\t{}.{}.{}.svc.{zone}.\n",
                    reverse_owner(ep.ip),
                    ep.name(),
                    svc.name,
                    svc.namespace
                );
            }
        }
        (REVERSE_ZONE.to_owned(), out)
    }

    /// A dnsperf query file of `count` lines `name TYPE`, deterministic from the seed: about 70%
    /// A for names that exist (ClusterIP services, headless services, endpoint hostnames), 10%
    /// SRV (`_port._proto` names), 10% PTR (ClusterIPs and endpoint addresses), and 10% A or AAAA
    /// for the NXDOMAIN names that `ndots:5` search-path expansion produces.
    pub fn queries(&self, count: usize) -> String {
        let zone = &self.params.zone;
        let mut rng = SplitMix64::new(self.params.seed ^ 0x7175_6572_6965_7321);
        let cluster_ip: Vec<&SynthService> =
            self.services.iter().filter(|s| !s.is_headless()).collect();
        let headless: Vec<&SynthService> = self
            .services
            .iter()
            .filter(|s| s.is_headless() && s.endpoints.iter().any(|ep| ep.ready))
            .collect();
        let hostnames: Vec<(&SynthService, &SynthEndpoint)> = headless
            .iter()
            .flat_map(|s| {
                s.endpoints
                    .iter()
                    .filter(|ep| ep.ready && ep.hostname.is_some())
                    .map(move |ep| (*s, ep))
            })
            .collect();
        let srv: Vec<(&SynthService, &str, &str)> = cluster_ip
            .iter()
            .chain(&headless)
            .flat_map(|s| {
                s.ports
                    .iter()
                    .filter(|(name, _, _)| !name.is_empty())
                    .map(move |(name, _, proto)| (*s, name.as_str(), *proto))
            })
            .collect();
        let ptr: Vec<Ipv4Addr> = cluster_ip
            .iter()
            .filter_map(|s| s.cluster_ip)
            .chain(
                self.services
                    .iter()
                    .flat_map(|s| s.endpoints.iter().filter(|ep| ep.ready).map(|ep| ep.ip)),
            )
            .collect();
        let client_namespaces = if self.params.namespaces == 0 {
            &self.namespaces[..1]
        } else {
            &self.namespaces[3..]
        };

        let mut out = String::with_capacity(count * 64);
        for _ in 0..count {
            match rng.below(10) {
                0..=6 => {
                    let pick = rng.below(4);
                    if pick == 2 && !headless.is_empty() {
                        let s = headless[rng.below(headless.len())];
                        put!(out, "{} A\n", s.fqdn(zone));
                    } else if pick == 3 && !hostnames.is_empty() {
                        let (s, ep) = hostnames[rng.below(hostnames.len())];
                        put!(out, "{}.{} A\n", ep.name(), s.fqdn(zone));
                    } else {
                        let s = cluster_ip[rng.below(cluster_ip.len())];
                        put!(out, "{} A\n", s.fqdn(zone));
                    }
                }
                7 => {
                    let (s, port, proto) = srv[rng.below(srv.len())];
                    put!(
                        out,
                        "_{port}._{}.{} SRV\n",
                        proto.to_ascii_lowercase(),
                        s.fqdn(zone)
                    );
                }
                8 => {
                    let [a, b, c, d] = ptr[rng.below(ptr.len())].octets();
                    put!(out, "{d}.{c}.{b}.{a}.in-addr.arpa PTR\n");
                }
                _ => {
                    let name = if rng.below(2) == 0 {
                        cluster_ip[rng.below(cluster_ip.len())].fqdn(zone)
                    } else {
                        EXTERNAL_NAMES[rng.below(EXTERNAL_NAMES.len())].to_owned()
                    };
                    let client = &client_namespaces[rng.below(client_namespaces.len())];
                    let qtype = if rng.below(2) == 0 { "A" } else { "AAAA" };
                    match rng.below(3) {
                        0 => put!(out, "{name}.{client}.svc.{zone} {qtype}\n"),
                        1 => put!(out, "{name}.svc.{zone} {qtype}\n"),
                        _ => put!(out, "{name}.{zone} {qtype}\n"),
                    }
                }
            }
        }
        out
    }

    /// A few names with a positive answer, as `(name without trailing dot, qtype)`: the
    /// `kubernetes` and `kube-dns` services, an SRV name, the first ClusterIP service, the first
    /// headless service with a ready endpoint and that endpoint's hostname, a PTR name,
    /// `dns-version` and the apex SOA.
    pub fn sample_names(&self) -> Vec<(String, String)> {
        let zone = &self.params.zone;
        let mut names = vec![
            (format!("kubernetes.default.svc.{zone}"), "A"),
            (format!("kube-dns.kube-system.svc.{zone}"), "A"),
            (format!("_dns._udp.kube-dns.kube-system.svc.{zone}"), "SRV"),
            ("10.0.96.10.in-addr.arpa".to_owned(), "PTR"),
            (format!("dns-version.{zone}"), "TXT"),
            (zone.clone(), "SOA"),
        ];
        if let Some(s) = self.services.iter().find(|s| s.name.starts_with("svc-")) {
            names.push((s.fqdn(zone), "A"));
            names.push((format!("_http._tcp.{}", s.fqdn(zone)), "SRV"));
        }
        let ready_headless = self.services.iter().find_map(|s| {
            let ep = s.endpoints.iter().find(|ep| ep.ready)?;
            s.is_headless().then_some((s, ep))
        });
        if let Some((s, ep)) = ready_headless {
            names.push((s.fqdn(zone), "A"));
            names.push((format!("{}.{}", ep.name(), s.fqdn(zone)), "A"));
            names.push((format!("_tcp-peer._tcp.{}", s.fqdn(zone)), "SRV"));
        }
        names
            .into_iter()
            .map(|(name, qtype)| (name, qtype.to_owned()))
            .collect()
    }

    fn write_zone_header(&self, out: &mut String, origin: &str) {
        let zone = &self.params.zone;
        put!(
            out,
            "; clusterdns synthetic cluster (seed {}): {} namespaces, {} services, {} pods\n",
            self.params.seed,
            self.namespaces.len(),
            self.services.len(),
            self.pods.len()
        );
        put!(out, "$ORIGIN {origin}.\n$TTL {TTL}\n");
        put!(
            out,
            "@\t{}\tIN\tSOA\tns.dns.{zone}. hostmaster.{zone}. {SERIAL} 7200 1800 86400 {TTL}\n",
            TTL.min(300)
        );
        put!(out, "@\t{TTL}\tIN\tNS\tns.dns.{zone}.\n");
    }

    fn write_slices_yaml(&self, out: &mut String, index: usize, svc: &SynthService) {
        let api_server = svc.name == "kubernetes" && svc.namespace == "default";
        let suffix_base =
            SplitMix64::new(self.params.seed ^ (index as u64).rotate_left(32)).next_u64();
        let mut chunks: Vec<&[SynthEndpoint]> = svc.endpoints.chunks(MAX_SLICE_ENDPOINTS).collect();
        if chunks.is_empty() {
            // The EndpointSlice controller keeps one empty slice for a service with no endpoints.
            chunks.push(&[]);
        }
        for (n, chunk) in chunks.into_iter().enumerate() {
            out.push_str("- addressType: IPv4\n  apiVersion: discovery.k8s.io/v1\n");
            if chunk.is_empty() {
                out.push_str("  endpoints: null\n");
            } else {
                out.push_str("  endpoints:\n");
            }
            for ep in chunk {
                put!(
                    out,
                    "  - {{addresses: [{}], conditions: {{ready: {}",
                    ep.ip,
                    ep.ready
                );
                if ep.pod.is_empty() {
                    out.push_str("}}\n");
                    continue;
                }
                put!(out, ", serving: {}, terminating: false}}", ep.ready);
                if let Some(hostname) = &ep.hostname {
                    put!(out, ", hostname: {hostname}");
                }
                put!(
                    out,
                    ", nodeName: {}, targetRef: {{kind: Pod, name: {}, namespace: {}}}, zone: {}}}\n",
                    node_name(ep.node),
                    ep.pod,
                    svc.namespace,
                    ep.zone()
                );
            }
            out.push_str("  kind: EndpointSlice\n");
            if api_server {
                put!(
                    out,
                    "  metadata: {{labels: {{kubernetes.io/service-name: {name}}}, name: {name}, namespace: {ns}}}\n",
                    name = svc.name,
                    ns = svc.namespace
                );
            } else {
                put!(
                    out,
                    "  metadata: {{generateName: {name}-, labels: {{endpointslice.kubernetes.io/managed-by: endpointslice-controller.k8s.io, kubernetes.io/service-name: {name}}}, name: {name}-",
                    name = svc.name
                );
                push_suffix(
                    out,
                    (suffix_base % SUFFIX_SPACE + n as u64 * SUFFIX_STRIDE) % SUFFIX_SPACE,
                    5,
                );
                put!(out, ", namespace: {}}}\n", svc.namespace);
            }
            out.push_str("  ports: [");
            for (i, (name, port, proto)) in svc.ports.iter().enumerate() {
                let sep = if i == 0 { "" } else { ", " };
                let port = if api_server && *port == 443 {
                    6443
                } else {
                    *port
                };
                put!(
                    out,
                    "{sep}{{name: {}, port: {port}, protocol: {proto}}}",
                    yaml_name(name)
                );
            }
            out.push_str("]\n");
        }
    }
}

/// Generation state: the random stream, the pods so far and the next free pod IP.
struct Builder {
    rng: SplitMix64,
    pods: Vec<SynthPod>,
    next_pod_ip: u32,
    nodes: usize,
}

impl Builder {
    /// Adds a pod with the next pod IP, on the next node in turn; returns its IP and node.
    fn add_pod(&mut self, namespace: &str, name: String, app: &str) -> (Ipv4Addr, usize) {
        if self.next_pod_ip & 0xff == 0 {
            self.next_pod_ip += 1;
        }
        debug_assert!(self.next_pod_ip <= LAST_POD_IP);
        let ip = Ipv4Addr::from(self.next_pod_ip);
        self.next_pod_ip += 1;
        let node = self.pods.len() % self.nodes;
        self.pods.push(SynthPod {
            namespace: namespace.to_owned(),
            name,
            ip,
            node,
            app: app.to_owned(),
        });
        (ip, node)
    }

    /// Adds `count` pods of a Deployment `<prefix>-<hash>-<suffix>` selected by `app`, all ready;
    /// returns them as endpoints.
    fn deployment(
        &mut self,
        namespace: &str,
        app: &str,
        prefix: &str,
        count: usize,
    ) -> Vec<SynthEndpoint> {
        let mut replica_set = format!("{prefix}-");
        push_suffix(&mut replica_set, self.rng.next_u64(), 10);
        let suffix_base = self.rng.next_u64() % SUFFIX_SPACE;
        (0..count)
            .map(|i| {
                let mut pod = format!("{replica_set}-");
                push_suffix(
                    &mut pod,
                    (suffix_base + i as u64 * SUFFIX_STRIDE) % SUFFIX_SPACE,
                    5,
                );
                let (ip, node) = self.add_pod(namespace, pod.clone(), app);
                SynthEndpoint {
                    ip,
                    hostname: None,
                    ready: true,
                    pod,
                    node,
                }
            })
            .collect()
    }
}

/// The splitmix64 generator: tiny, fast and good enough for picking names.
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }
}

/// Appends `len` characters of the Kubernetes name alphabet encoding `value` (mod 27^len).
fn push_suffix(out: &mut String, mut value: u64, len: usize) {
    for _ in 0..len {
        out.push(char::from(NAME_ALPHABET[(value % 27) as usize]));
        value /= 27;
    }
}

fn node_name(node: usize) -> String {
    format!("node-{node:04}")
}

fn node_ip(node: usize) -> Ipv4Addr {
    Ipv4Addr::from(FIRST_NODE_IP + node as u32)
}

/// `10.11.12.13` → `10-11-12-13`.
fn dashed(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("{a}-{b}-{c}-{d}")
}

/// The owner name of `ip`'s PTR record relative to `10.in-addr.arpa.`.
fn reverse_owner(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    debug_assert_eq!(a, 10, "synthetic addresses lie in 10.0.0.0/8");
    format!("{d}.{c}.{b}")
}

/// A port name as a YAML scalar: unnamed EndpointSlice ports print as `name: ""`.
fn yaml_name(name: &str) -> &str {
    if name.is_empty() { "\"\"" } else { name }
}

/// The SRV weight of one of `n` (service, port, address) tuples.
fn srv_weight(n: usize) -> usize {
    (100 / n.max(1)).max(1)
}

fn write_service_yaml(out: &mut String, svc: &SynthService) {
    let api_server = svc.name == "kubernetes" && svc.namespace == "default";
    out.push_str("- apiVersion: v1\n  kind: Service\n  metadata: {labels: {");
    if api_server {
        out.push_str("component: apiserver, provider: kubernetes");
    } else {
        put!(out, "app: {}", svc.name);
    }
    put!(
        out,
        "}}, name: {}, namespace: {}}}\n  spec: {{",
        svc.name,
        svc.namespace
    );
    match svc.cluster_ip {
        Some(ip) => put!(out, "clusterIP: {ip}, clusterIPs: [{ip}], "),
        None => out.push_str("clusterIP: None, clusterIPs: [None], "),
    }
    out.push_str(
        "internalTrafficPolicy: Cluster, ipFamilies: [IPv4], ipFamilyPolicy: SingleStack, ports: [",
    );
    for (i, (name, port, proto)) in svc.ports.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let target = if api_server && *port == 443 {
            6443
        } else {
            *port
        };
        // An unnamed Service port has no `name` field at all.
        let name = if name.is_empty() {
            String::new()
        } else {
            format!("name: {name}, ")
        };
        put!(
            out,
            "{sep}{{{name}port: {port}, protocol: {proto}, targetPort: {target}}}"
        );
    }
    out.push_str("], ");
    if !api_server {
        put!(out, "selector: {{app: {}}}, ", svc.name);
    }
    out.push_str("sessionAffinity: None, type: ClusterIP}\n  status: {loadBalancer: {}}\n");
}

/// Writes the A and SRV records of `svc` (owner names relative to the zone).
fn write_service_records(out: &mut String, svc: &SynthService, zone: &str) {
    let owner = format!("{}.{}.svc", svc.name, svc.namespace);
    let ready: Vec<&SynthEndpoint> = svc.endpoints.iter().filter(|ep| ep.ready).collect();
    // SRV targets, relative to the zone: the service itself, or each ready endpoint.
    let targets: Vec<String> = match svc.cluster_ip {
        Some(ip) => {
            put!(out, "{owner}\t{TTL}\tIN\tA\t{ip}\n");
            vec![owner.clone()]
        }
        None => {
            for ep in &ready {
                put!(out, "{owner}\t{TTL}\tIN\tA\t{}\n", ep.ip);
            }
            ready
                .iter()
                .map(|ep| format!("{}.{owner}", ep.name()))
                .collect()
        }
    };

    // `svc.ns.svc` SRV: one per (target, distinct port); N counts every (port, address) tuple.
    let weight = srv_weight(targets.len() * svc.ports.len());
    let mut distinct_ports: Vec<u16> = Vec::with_capacity(svc.ports.len());
    for (_, port, _) in &svc.ports {
        if !distinct_ports.contains(port) {
            distinct_ports.push(*port);
        }
    }
    for target in &targets {
        for port in &distinct_ports {
            put!(
                out,
                "{owner}\t{TTL}\tIN\tSRV\t0 {weight} {port} {target}.{zone}.\n"
            );
        }
    }

    // `_port._proto.svc.ns.svc` SRV for each distinct named (port, protocol).
    for (i, (name, _, proto)) in svc.ports.iter().enumerate() {
        let same = |(n, _, p): &&(String, u16, &str)| n == name && p == proto;
        if name.is_empty() || svc.ports[..i].iter().any(|p| same(&p)) {
            continue;
        }
        let matching: Vec<u16> = svc
            .ports
            .iter()
            .filter(same)
            .map(|(_, port, _)| *port)
            .collect();
        let weight = srv_weight(targets.len() * matching.len());
        let proto = proto.to_ascii_lowercase();
        for target in &targets {
            for (j, port) in matching.iter().enumerate() {
                if !matching[..j].contains(port) {
                    put!(
                        out,
                        "_{name}._{proto}.{owner}\t{TTL}\tIN\tSRV\t0 {weight} {port} {target}.{zone}.\n"
                    );
                }
            }
        }
    }

    // Endpoint names, for every service with ready endpoints.
    for ep in &ready {
        put!(out, "{}.{owner}\t{TTL}\tIN\tA\t{}\n", ep.name(), ep.ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn small() -> SynthCluster {
        SynthCluster::generate(&SynthParams::small())
    }

    /// `(owner FQDN without trailing dot, type, rdata)` of every record of a master file.
    fn records(master: &str, origin: &str) -> Vec<(String, String, String)> {
        master
            .lines()
            .filter(|l| !l.starts_with(';') && !l.starts_with('$'))
            .map(|l| {
                let f: Vec<&str> = l.split('\t').collect();
                assert_eq!(f.len(), 5, "record line {l:?}");
                assert_eq!(f[2], "IN");
                let owner = if f[0] == "@" {
                    origin.to_owned()
                } else {
                    format!("{}.{origin}", f[0])
                };
                (owner, f[3].to_owned(), f[4].to_owned())
            })
            .collect()
    }

    fn count(haystack: &str, needle: &str) -> usize {
        haystack.matches(needle).count()
    }

    #[test]
    fn same_seed_same_output_other_seed_other_names() {
        let p = SynthParams::small();
        let (a, b) = (SynthCluster::generate(&p), SynthCluster::generate(&p));
        assert_eq!(a.cluster_yaml(), b.cluster_yaml());
        assert_eq!(a.nsd_zone(), b.nsd_zone());
        assert_eq!(a.reverse_zone(), b.reverse_zone());
        assert_eq!(a.queries(1000), b.queries(1000));
        let c = SynthCluster::generate(&SynthParams { seed: 2, ..p });
        assert_ne!(a.cluster_yaml(), c.cluster_yaml());
        assert_ne!(a.queries(1000), c.queries(1000));
    }

    #[test]
    fn counts_match_the_parameters() {
        let c = small();
        assert_eq!(c.namespaces().len(), 3 + 5);
        let services = c.services();
        assert_eq!(services.len(), 2 + 50 + 5);
        assert_eq!(services.iter().filter(|s| s.is_headless()).count(), 5);
        for s in services.iter().filter(|s| s.name.starts_with("svc-")) {
            assert_eq!(s.endpoints.len(), 2);
            assert!(
                s.endpoints
                    .iter()
                    .all(|ep| ep.ready && ep.hostname.is_none())
            );
        }
        let headless_eps: Vec<&SynthEndpoint> = services
            .iter()
            .filter(|s| s.is_headless())
            .flat_map(|s| &s.endpoints)
            .collect();
        assert_eq!(headless_eps.len(), 20);
        assert_eq!(headless_eps.iter().filter(|ep| !ep.ready).count(), 2);
        assert_eq!(c.pods().len(), 300);

        // Pod IPs are unique, never x.x.x.0, and every endpoint is a pod with its IP.
        let pod_ips: HashSet<Ipv4Addr> = c.pods().iter().map(|p| p.ip).collect();
        assert_eq!(pod_ips.len(), 300);
        assert!(pod_ips.iter().all(|ip| ip.octets()[3] != 0));
        let pods: HashSet<(&str, &str, Ipv4Addr)> = c
            .pods()
            .iter()
            .map(|p| (p.namespace.as_str(), p.name.as_str(), p.ip))
            .collect();
        for s in services {
            for ep in s.endpoints.iter().filter(|ep| !ep.pod.is_empty()) {
                assert!(pods.contains(&(s.namespace.as_str(), ep.pod.as_str(), ep.ip)));
            }
        }
        let cluster_ips: HashSet<Ipv4Addr> = services.iter().filter_map(|s| s.cluster_ip).collect();
        assert_eq!(cluster_ips.len(), 52);
        assert!(cluster_ips.contains(&KUBE_DNS_IP) && cluster_ips.contains(&KUBERNETES_IP));

        let yaml = c.cluster_yaml();
        assert!(yaml.starts_with("apiVersion: v1\nitems:\n"));
        assert!(yaml.ends_with("kind: List\nmetadata:\n  resourceVersion: \"\"\n"));
        assert_eq!(count(&yaml, "\n  kind: Namespace\n"), 8);
        assert_eq!(count(&yaml, "\n  kind: Service\n"), 57);
        assert_eq!(count(&yaml, "\n  kind: EndpointSlice\n"), 57);
        assert_eq!(count(&yaml, "\n  kind: Pod\n"), 300);
        assert_eq!(count(&yaml, "\n  - {addresses: ["), 2 * 50 + 20 + 3);
        assert!(yaml.contains("clusterIP: None, clusterIPs: [None]"));
        assert!(yaml.contains(", hostname: hl-0000-0, "));
    }

    #[test]
    fn slices_hold_at_most_100_endpoints() {
        let c = SynthCluster::generate(&SynthParams {
            services: 3,
            endpoints_per_service: 0,
            headless: 2,
            endpoints_per_headless: 250,
            pods: 0,
            ..SynthParams::small()
        });
        assert_eq!(c.pods().len(), 3 + 500);
        let yaml = c.cluster_yaml();
        // kubernetes, kube-dns, 3 empty slices, 2 × 3 headless slices.
        assert_eq!(count(&yaml, "\n  kind: EndpointSlice\n"), 2 + 3 + 6);
        assert_eq!(count(&yaml, "\n  endpoints: null\n"), 3);
        let names: HashSet<&str> = yaml
            .lines()
            .filter(|l| l.contains("kubernetes.io/service-name: hl-"))
            .filter_map(|l| l.split(", name: ").nth(1)?.split(',').next())
            .collect();
        assert_eq!(names.len(), 6);
        let biggest = yaml
            .split("\n- ")
            .filter(|item| item.contains("kind: EndpointSlice"))
            .map(|item| count(item, "{addresses:"))
            .max();
        assert_eq!(biggest, Some(100));
    }

    #[test]
    fn zone_holds_the_spec_records() {
        let c = small();
        let zone = c.nsd_zone();
        let rr: HashSet<(String, String, String)> =
            records(&zone, "cluster.local").into_iter().collect();
        let has = |owner: &str, rtype: &str, rdata: &str| {
            rr.contains(&(owner.to_owned(), rtype.to_owned(), rdata.to_owned()))
        };
        assert!(zone.contains("$ORIGIN cluster.local.\n"));
        assert!(has(
            "cluster.local",
            "SOA",
            "ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5"
        ));
        assert!(has("cluster.local", "NS", "ns.dns.cluster.local."));
        assert!(has("ns.dns.cluster.local", "A", "10.96.0.10"));
        assert!(zone.contains("dns-version\t28800\tIN\tTXT\t\"1.1.0\"\n"));
        assert!(has(
            "kube-dns.kube-system.svc.cluster.local",
            "A",
            "10.96.0.10"
        ));
        assert!(has(
            "kubernetes.default.svc.cluster.local",
            "A",
            "10.96.0.1"
        ));
        // kube-dns: 3 (port, address) tuples → weight 33; ports 53/UDP and 53/TCP fold into one.
        let kube_dns_srv: Vec<_> = rr
            .iter()
            .filter(|(o, t, _)| o == "kube-dns.kube-system.svc.cluster.local" && t == "SRV")
            .collect();
        assert_eq!(kube_dns_srv.len(), 2);
        assert!(has(
            "kube-dns.kube-system.svc.cluster.local",
            "SRV",
            "0 33 53 kube-dns.kube-system.svc.cluster.local."
        ));
        assert!(has(
            "_dns._udp.kube-dns.kube-system.svc.cluster.local",
            "SRV",
            "0 100 53 kube-dns.kube-system.svc.cluster.local."
        ));
        assert!(has(
            "_metrics._tcp.kube-dns.kube-system.svc.cluster.local",
            "SRV",
            "0 100 9153 kube-dns.kube-system.svc.cluster.local."
        ));
        assert!(has(
            "10-0-0-2.kubernetes.default.svc.cluster.local",
            "A",
            "10.0.0.2"
        ));

        // svc-00000 (ns-000) has http and grpc, svc-00001 (ns-001) only http.
        assert!(has("svc-00000.ns-000.svc.cluster.local", "A", "10.96.1.0"));
        assert!(has(
            "svc-00000.ns-000.svc.cluster.local",
            "SRV",
            "0 50 9090 svc-00000.ns-000.svc.cluster.local."
        ));
        assert!(has(
            "_grpc._tcp.svc-00000.ns-000.svc.cluster.local",
            "SRV",
            "0 100 9090 svc-00000.ns-000.svc.cluster.local."
        ));
        assert!(has(
            "svc-00001.ns-001.svc.cluster.local",
            "SRV",
            "0 100 80 svc-00001.ns-001.svc.cluster.local."
        ));
        let svc = &c.services()[2];
        for ep in &svc.endpoints {
            let owner = format!("{}.svc-00000.ns-000.svc.cluster.local", dashed(ep.ip));
            assert!(has(&owner, "A", &ep.ip.to_string()));
        }

        // Headless: A and SRV per ready endpoint (hl-0000 and hl-0001 have 4 ready endpoints,
        // hl-0002 has endpoint 1 not ready: 3 ready).
        let hl = c
            .services()
            .iter()
            .find(|s| s.name == "hl-0002")
            .expect("hl-0002");
        assert_eq!(hl.endpoints.iter().filter(|ep| ep.ready).count(), 3);
        let fqdn = hl.fqdn("cluster.local");
        let a: Vec<_> = rr
            .iter()
            .filter(|(o, t, _)| *o == fqdn && t == "A")
            .collect();
        assert_eq!(a.len(), 3);
        let srv: Vec<_> = rr
            .iter()
            .filter(|(o, t, _)| *o == format!("_tcp-peer._tcp.{fqdn}") && t == "SRV")
            .collect();
        assert_eq!(srv.len(), 3);
        assert!(
            srv.iter()
                .all(|(_, _, rdata)| rdata.starts_with("0 33 7000 hl-0002-"))
        );
        for ep in &hl.endpoints {
            let owner = format!("{}.{fqdn}", ep.name());
            assert_eq!(has(&owner, "A", &ep.ip.to_string()), ep.ready, "{owner}");
        }
    }

    #[test]
    fn reverse_zone_has_ptrs_for_cluster_ips_and_ready_endpoints() {
        let c = small();
        let (name, master) = c.reverse_zone();
        assert_eq!(name, "10.in-addr.arpa");
        let rr: HashSet<(String, String, String)> = records(&master, &name).into_iter().collect();
        let ptr = |owner: &str, target: &str| {
            rr.contains(&(owner.to_owned(), "PTR".to_owned(), target.to_owned()))
        };
        assert!(ptr(
            "10.0.96.10.in-addr.arpa",
            "kube-dns.kube-system.svc.cluster.local."
        ));
        assert!(ptr(
            "1.0.96.10.in-addr.arpa",
            "kubernetes.default.svc.cluster.local."
        ));
        assert!(ptr(
            "0.1.96.10.in-addr.arpa",
            "svc-00000.ns-000.svc.cluster.local."
        ));
        assert!(ptr(
            "2.0.0.10.in-addr.arpa",
            "10-0-0-2.kubernetes.default.svc.cluster.local."
        ));
        let endpoints: usize = c
            .services()
            .iter()
            .map(|s| s.endpoints.iter().filter(|ep| ep.ready).count())
            .sum();
        assert_eq!(count(&master, "\tPTR\t"), 52 + endpoints);
        let not_ready = c
            .services()
            .iter()
            .flat_map(|s| &s.endpoints)
            .find(|ep| !ep.ready);
        let [_, b, cc, d] = not_ready.expect("a not-ready endpoint").ip.octets();
        assert!(!master.contains(&format!("\n{d}.{cc}.{b}\t")));
    }

    #[test]
    fn query_mix_matches_the_zone() {
        let c = small();
        let forward: HashSet<(String, String)> = records(&c.nsd_zone(), "cluster.local")
            .into_iter()
            .map(|(o, t, _)| (o, t))
            .collect();
        let (rev_name, rev) = c.reverse_zone();
        let reverse: HashSet<String> = records(&rev, &rev_name)
            .into_iter()
            .map(|(o, _, _)| o)
            .collect();
        let total = 20_000;
        let queries = c.queries(total);
        assert_eq!(queries.lines().count(), total);
        let (mut a, mut srv, mut ptr, mut nx) = (0, 0, 0, 0);
        for line in queries.lines() {
            let (name, qtype) = line.split_once(' ').expect("name TYPE");
            match qtype {
                "PTR" => {
                    assert!(reverse.contains(name), "{line}");
                    ptr += 1;
                }
                "SRV" => {
                    assert!(
                        forward.contains(&(name.to_owned(), "SRV".to_owned())),
                        "{line}"
                    );
                    srv += 1;
                }
                "A" if forward.contains(&(name.to_owned(), "A".to_owned())) => a += 1,
                "A" | "AAAA" => {
                    assert!(!forward.iter().any(|(o, _)| o == name), "{line}");
                    nx += 1;
                }
                _ => panic!("unexpected query {line}"),
            }
        }
        let share = |n: usize| n as f64 / total as f64;
        assert!((0.67..0.73).contains(&share(a)), "A {a}");
        for (what, n) in [("SRV", srv), ("PTR", ptr), ("NX", nx)] {
            assert!((0.08..0.12).contains(&share(n)), "{what} {n}");
        }
    }

    #[test]
    fn sample_names_are_in_the_zones() {
        let c = small();
        let mut known: HashSet<(String, String)> = records(&c.nsd_zone(), "cluster.local")
            .into_iter()
            .map(|(o, t, _)| (o, t))
            .collect();
        let (rev_name, rev) = c.reverse_zone();
        known.extend(records(&rev, &rev_name).into_iter().map(|(o, t, _)| (o, t)));
        let names = c.sample_names();
        assert!(names.len() >= 10);
        for (name, qtype) in names {
            assert!(
                known.contains(&(name.clone(), qtype.clone())),
                "{name} {qtype}"
            );
        }
    }

    #[test]
    fn empty_cluster_still_has_the_system_services() {
        let c = SynthCluster::generate(&SynthParams {
            namespaces: 0,
            services: 0,
            headless: 0,
            pods: 0,
            ..SynthParams::default()
        });
        assert_eq!(c.services().len(), 2);
        assert_eq!(c.pods().len(), 3);
        assert_eq!(c.queries(100).lines().count(), 100);
        assert!(
            c.nsd_zone()
                .contains("kube-dns.kube-system.svc\t5\tIN\tA\t10.96.0.10\n")
        );
    }
}
