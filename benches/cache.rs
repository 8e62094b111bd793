//! The response cache.
//!
//! `hit`: one query packet in → answer out through `Driver::handle`, for a name the
//! cache holds (parse, zone miss, loop guard, key, moka lookup, copy, TTL rewrite, ID and
//! case patch, OPT) — the whole synchronous path a UDP worker runs for a cache hit. Warm.
//! `serve_only`: just the entry's `serve` (copy + TTL rewrite + patch).
//!
//! Before the timings it prints the resident memory that 100,000 cached entries add to
//! the process (VmRSS from /proc before and after filling the cache).
//!
//! Run: `cargo bench --bench cache`

use std::sync::{Arc, LazyLock};

use clusterdns::cache::CacheMetrics;
use clusterdns::cache::{CacheSettings, CachedAnswer, ResponseCache};
use clusterdns::forward::{ForwardMetrics, ForwardSettings, Forwarder, Nameserver};
use clusterdns::metrics::Metrics;
use clusterdns::server::chain::{CacheStage, ForwardStage, LoopGuard, ZoneStage};
use clusterdns::server::{
    Chain, Driver, Observer, Origin, Plugin, Replier, Stage, Step, Transport,
};
use clusterdns::wire::{QName, parse_query};
use clusterdns::zone::ClusterZone;
use divan::{AllocProfiler, Bencher, black_box};

#[global_allocator]
static ALLOC: AllocProfiler = AllocProfiler::system();

const ENTRIES: usize = 100_000;

fn main() {
    report_memory();
    divan::main();
}

fn query(name: &str) -> Vec<u8> {
    let mut p = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1];
    for l in name.split('.') {
        p.push(l.len() as u8);
        p.extend_from_slice(l.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    p
}

/// A typical upstream answer: the question and two A records (compressed owners).
fn response(name: &str) -> Vec<u8> {
    let q = query(name);
    let mut r = q[..q.len() - 11].to_vec();
    r[2] = 0x81;
    r[3] = 0x80;
    r[7] = 2;
    r[11] = 0;
    for last in [1u8, 2] {
        r.extend_from_slice(&[
            0xc0, 12, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 192, 0, 2, last,
        ]);
    }
    r
}

fn name(i: usize) -> String {
    format!("host-{i}.example.org")
}

fn fill(cache: &ResponseCache, n: usize) {
    let now = tokio::time::Instant::now();
    for i in 0..n {
        let r = response(&name(i));
        let answer = CachedAnswer::from_response(&r, &cache.settings().ttl, now).unwrap();
        let q = query(&name(i));
        let parsed = parse_query(&q).unwrap();
        let mut key = [0u8; clusterdns::cache::MAX_KEY_LEN];
        let len = clusterdns::cache::key_of(&parsed, &mut key);
        cache.insert(&key[..len], &QName::question(&parsed), answer);
    }
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

fn report_memory() {
    let before = rss_kb();
    let cache = ResponseCache::new(
        CacheSettings {
            capacity: ENTRIES as u64,
            max_bytes: ENTRIES as u64 * 1024,
            ..CacheSettings::default()
        },
        CacheMetrics::default(),
    );
    fill(&cache, ENTRIES);
    let after = rss_kb();
    println!(
        "{} cached entries: {} held, {:.1} MB resident added",
        ENTRIES,
        cache.entry_count(),
        (after.saturating_sub(before)) as f64 / 1024.0
    );
}

struct Loaded {
    driver: Driver,
    observer: Arc<Observer>,
    replier: Replier,
    _runtime: tokio::runtime::Runtime,
}

static LOADED: LazyLock<Loaded> = LazyLock::new(|| {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let cache = ResponseCache::new(
        CacheSettings {
            prefetch_hits: 0,
            ..CacheSettings::default()
        },
        CacheMetrics::default(),
    );
    fill(&cache, 5000);
    let forwarder = Forwarder::new(
        ForwardSettings {
            upstreams: vec![Nameserver::Addr("127.0.0.1:9".parse().unwrap())],
            ..ForwardSettings::default()
        },
        ForwardMetrics::default(),
    );
    let settings = clusterdns::config::Config::default().zone_settings();
    let forwarder = Arc::new(forwarder);
    let chain = Chain {
        stages: vec![
            Stage::Zone(ZoneStage {
                zone: Arc::new(ClusterZone::new()),
                settings,
            }),
            Stage::LoopGuard(LoopGuard {
                forwarder: forwarder.clone(),
            }),
            Stage::Cache(CacheStage {
                cache: Arc::new(cache),
            }),
            Stage::Forward(ForwardStage { forwarder }),
        ],
    };
    // The driver takes the runtime it is made in for answers that wait on upstreams.
    let _entered = runtime.enter();
    let metrics = Metrics::new();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    Loaded {
        driver: Driver::new(chain, metrics.panics.clone()),
        observer: Arc::new(Observer::new(
            "dns://bench".into(),
            metrics,
            true,
            Default::default(),
        )),
        replier: Replier::Udp(Arc::new(socket)),
        _runtime: runtime,
    }
});

#[divan::bench]
fn hit(bencher: Bencher) {
    let packet = query(&name(42));
    let mut out = Vec::with_capacity(4096);
    let origin = Origin {
        transport: Transport::Udp,
        peer: "127.0.0.1:53".parse().unwrap(),
        reply_to: "127.0.0.1:53".parse().unwrap(),
        received: std::time::Instant::now(),
        observer: &LOADED.observer,
        replier: &LOADED.replier,
    };
    let Step::Answer(o) = LOADED.driver.handle(&packet, &origin, &mut out) else {
        panic!("not answered at once");
    };
    assert_eq!(o.response.map(|r| r.plugin), Some(Plugin::Cache));
    assert_eq!(out[7], 2, "two answers from the cache");
    bencher.bench_local(|| {
        let step = LOADED.driver.handle(black_box(&packet), &origin, &mut out);
        black_box((&out, step));
    });
}

#[divan::bench]
fn serve_only(bencher: Bencher) {
    let r = response(&name(7));
    let answer = CachedAnswer::from_response(
        &r,
        &CacheSettings::default().ttl,
        tokio::time::Instant::now(),
    )
    .unwrap();
    let packet = query(&name(7));
    let q = parse_query(&packet).unwrap();
    let mut out = Vec::with_capacity(4096);
    bencher.bench_local(|| {
        answer.serve(
            black_box(&q),
            tokio::time::Instant::now(),
            false,
            1232,
            &mut out,
        );
        black_box(&out);
    });
}
