//! Query path and index update costs on the generated zone: 10,000 ClusterIP
//! services in 100 namespaces, 1,000 headless services × 20 endpoints, 50,000 pods.
//!
//! `answer_*`: one query packet in, one answer packet out, through the same
//! `Driver::handle` the UDP and TCP transports call (parse, chain, lookup, encode), warm:
//! the zone is loaded once and the output buffer is reused, as a UDP worker does.
//! The allocation counts come from divan's AllocProfiler.
//!
//! `slice_update`: one EndpointSlice event applied to the index (rebuild of that
//! service's view, publication, PTR difference), alternating between two versions so
//! every iteration is a real change.
//!
//! `answer_nxdomain_search_path` against `answer_nxdomain_search_path_counted`: the
//! same search-path expansion with `[search_path] metrics` off and on — what reading
//! each answered name as an expansion and counting it costs.
//!
//! `axfr_whole_zone`: a complete zone transfer of `cluster.local` — every message built
//! (each name looked up through the zone's own answers, records copied), none sent.
//!
//! Run: `cargo bench --bench zone`

use std::path::Path;
use std::sync::Arc;

use clusterdns::config::Config;
use clusterdns::metrics::Metrics;
use clusterdns::server::chain::ZoneStage;
use clusterdns::server::{Chain, Driver, Observer, Origin, Replier, Stage, Step, Transport};
use clusterdns::source::ClusterEvent;
use clusterdns::source::file;
use clusterdns::source::objects::ClusterObject;
use clusterdns::zone::transfer::ZoneTransfer;
use clusterdns::zone::{ClusterIndex, ClusterZone, IndexSettings, ZoneSettings};
use clusterdns_testkit::synth::{SynthCluster, SynthParams};
use divan::{AllocProfiler, Bencher, black_box};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

fn main() {
    divan::main();
}

struct Loaded {
    _runtime: tokio::runtime::Runtime,
    driver: Driver,
    observer: Arc<Observer>,
    replier: Replier,
    index: ClusterIndex,
    cluster: SynthCluster,
    slices: Vec<ClusterObject>,
}

/// The default zones (cluster.local and both reverse trees), TTL 30 as kubeadm sets it.
fn settings() -> ZoneSettings {
    let mut config = Config::default();
    config.kubernetes.ttl = 30;
    config.zone_settings()
}

fn load() -> Loaded {
    let cluster = SynthCluster::generate(&SynthParams::default());
    let objects = file::parse(
        Path::new("bench.yaml"),
        &cluster.cluster_yaml(),
        &file::Selection::default(),
    )
    .unwrap();
    let zone = Arc::new(ClusterZone::new());
    let mut index = ClusterIndex::new(zone.clone(), IndexSettings::default());
    let slices: Vec<ClusterObject> = objects
        .iter()
        .filter(|o| matches!(o, ClusterObject::EndpointSlice(s) if s.endpoints.len() == 20))
        .take(2)
        .cloned()
        .collect();
    index.apply_all(
        objects
            .into_iter()
            .map(ClusterEvent::Apply)
            .chain([ClusterEvent::InitialSyncDone]),
    );
    // The driver keeps the runtime it is made in (for answers that wait on upstreams).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let metrics = Metrics::new();
    let chain = Chain {
        stages: vec![Stage::Zone(ZoneStage {
            zone,
            settings: settings(),
        })],
    };
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    Loaded {
        _runtime: runtime,
        driver: Driver::new(chain, metrics.panics.clone()),
        observer: Arc::new(Observer::new(
            "dns://bench".into(),
            metrics,
            true,
            Default::default(),
        )),
        replier: Replier::Udp(Arc::new(socket)),
        index,
        cluster,
        slices,
    }
}

fn query(name: &str, qtype: u16) -> Vec<u8> {
    let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for l in name.split('.') {
        p.push(l.len() as u8);
        p.extend_from_slice(l.as_bytes());
    }
    p.push(0);
    p.extend_from_slice(&qtype.to_be_bytes());
    p.extend_from_slice(&[0, 1]);
    p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    p
}

static LOADED: std::sync::LazyLock<std::sync::Mutex<Loaded>> =
    std::sync::LazyLock::new(|| std::sync::Mutex::new(load()));

fn answer(bencher: Bencher, name: &str, qtype: u16) {
    let loaded = LOADED.lock().unwrap();
    let packet = query(name, qtype);
    let mut out = Vec::with_capacity(4096);
    let origin = Origin {
        transport: Transport::Udp,
        peer: "127.0.0.1:53".parse().unwrap(),
        reply_to: "127.0.0.1:53".parse().unwrap(),
        received: std::time::Instant::now(),
        observer: &loaded.observer,
        replier: &loaded.replier,
    };
    // Check once that the answer is a real one.
    let step = loaded.driver.handle(&packet, &origin, &mut out);
    assert!(matches!(step, Step::Answer(_)), "no answer for {name}");
    assert!(out.len() > packet.len(), "no answer for {name}");
    bencher.bench_local(|| {
        let step = loaded.driver.handle(black_box(&packet), &origin, &mut out);
        black_box((&out, step));
    });
}

fn service_name(headless: bool) -> String {
    let loaded = LOADED.lock().unwrap();
    let s = loaded
        .cluster
        .services()
        .iter()
        .rev()
        .find(|s| s.is_headless() == headless)
        .unwrap();
    s.fqdn("cluster.local")
}

#[divan::bench]
fn answer_a_cluster_ip(bencher: Bencher) {
    answer(bencher, &service_name(false), 1);
}

#[divan::bench]
fn answer_a_headless_20(bencher: Bencher) {
    answer(bencher, &service_name(true), 1);
}

#[divan::bench]
fn answer_srv_headless_20(bencher: Bencher) {
    let name = format!("_tcp-peer._tcp.{}", service_name(true));
    answer(bencher, &name, 33);
}

#[divan::bench]
fn answer_ptr(bencher: Bencher) {
    answer(bencher, "10.0.96.10.in-addr.arpa", 12);
}

#[divan::bench]
fn answer_nxdomain_search_path(bencher: Bencher) {
    let name = format!("{}.ns-001.svc.cluster.local", service_name(false));
    answer(bencher, &name, 1);
}

#[divan::bench]
fn answer_nxdomain_search_path_counted(bencher: Bencher) {
    let name = format!("{}.ns-001.svc.cluster.local", service_name(false));
    let mut loaded = LOADED.lock().unwrap();
    let zone = loaded.index.zone().clone();
    zone.set_search_path_counter(Metrics::new().search_path.clone());
    let counted = ZoneSettings {
        search_path_top: 20,
        ..settings()
    };
    let chain = Chain {
        stages: vec![Stage::Zone(ZoneStage {
            zone,
            settings: counted,
        })],
    };
    let driver = {
        // The driver keeps the runtime it is made in.
        let _entered = loaded._runtime.enter();
        Driver::new(chain, Metrics::new().panics.clone())
    };
    let previous = std::mem::replace(&mut loaded.driver, driver);
    drop(loaded);
    answer(bencher, &name, 1);
    LOADED.lock().unwrap().driver = previous;
}

#[divan::bench]
fn slice_update(bencher: Bencher) {
    let mut loaded = LOADED.lock().unwrap();
    let mut versions = Vec::new();
    let ClusterObject::EndpointSlice(base) = loaded.slices[0].clone() else {
        unreachable!()
    };
    for flip in [true, false] {
        let mut s = base.clone();
        let mut eps = s.endpoints.to_vec();
        eps[0].ready = flip;
        s.endpoints = eps.into();
        versions.push(ClusterEvent::Apply(ClusterObject::EndpointSlice(s)));
    }
    let mut i = 0;
    bencher.bench_local(|| {
        i += 1;
        loaded.index.apply(versions[i % 2].clone());
    });
}

#[divan::bench(sample_count = 5, sample_size = 1)]
fn axfr_whole_zone(bencher: Bencher) {
    let loaded = LOADED.lock().unwrap();
    let zone = loaded.index.zone().clone();
    let packet = query("cluster.local", 252);
    let mut out = Vec::with_capacity(65536);
    bencher.bench_local(|| {
        let mut transfer = ZoneTransfer::start(zone.clone(), settings(), &packet).unwrap();
        let mut messages = 1;
        while transfer.next_message(&mut out) {
            messages += 1;
        }
        black_box(messages)
    });
}
