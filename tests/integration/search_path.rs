//! `clusterdns_search_path_queries_total` through the real binary's /metrics: what
//! `ndots:5` search-path expansions cost, per querying namespace (bounded), search
//! domain and rcode; nothing when off.

use std::net::SocketAddr;

use hickory_proto::rr::RecordType;

use crate::client::ask;
use crate::explain::Running;
use crate::harness::free_port;
use crate::http::{get, sample};

const METRIC: &str = "clusterdns_search_path_queries_total";

fn start(search_path: &str) -> (Running, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let (health, metrics) = (free_port(), free_port());
    let config = dir.path().join("clusterdns.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nsample = true\n[forward]\nupstreams = []\n[health]\nlisten = \"127.0.0.1:{health}\"\n\
             [ready]\nlisten = \"\"\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n{search_path}"
        ),
    )
    .unwrap();
    let running = Running::start(&config, health);
    (running, SocketAddr::from(([127, 0, 0, 1], metrics)), dir)
}

/// Asks each name once over UDP and returns the /metrics text once every answer is
/// counted (UDP workers flush their counts within about 100 ms).
fn ask_all(s: &Running, metrics: SocketAddr, names: &[&str], counted: f64) -> String {
    for n in names {
        ask(s.dns, n, RecordType::A);
    }
    let started = std::time::Instant::now();
    loop {
        let (_, text) = get(metrics, "/metrics").unwrap();
        let total: f64 = text
            .lines()
            .filter(|l| l.starts_with("coredns_dns_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        if total >= counted || started.elapsed() > std::time::Duration::from_secs(5) {
            return text;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn expansions_are_counted_per_namespace_domain_and_rcode() {
    let (s, metrics, _dir) = start("[search_path]\nmetrics = true\ntop_namespaces = 2\n");
    let names = [
        // A pod in shop looking up google.com: its first search domain, twice.
        "google.com.shop.svc.cluster.local",
        "example.org.shop.svc.cluster.local",
        "google.com.monitoring.svc.cluster.local",
        // A third namespace: past top_namespaces, under `other`.
        "google.com.default.svc.cluster.local",
        "google.com.kube-system.svc.cluster.local",
        // The later search domains.
        "google.com.svc.cluster.local",
        "google.com.cluster.local",
        // Not expansions: names of the zone's own shapes, found or not.
        "web.shop.svc.cluster.local",
        "nope.web.shop.svc.cluster.local",
        "10-1-2-3.shop.pod.cluster.local",
        "cluster.local",
    ];
    let text = ask_all(&s, metrics, &names, names.len() as f64);
    let count = |ns: &str, domain: &str| {
        sample(
            &text,
            METRIC,
            &[("namespace", ns), ("domain", domain), ("rcode", "NXDOMAIN")],
        )
    };
    assert_eq!(count("shop", "namespace"), Some(2.0), "{text}");
    assert_eq!(count("monitoring", "namespace"), Some(1.0), "{text}");
    assert_eq!(count("other", "namespace"), Some(2.0), "{text}");
    assert_eq!(count("default", "namespace"), None, "{text}");
    assert_eq!(count("", "svc"), Some(1.0), "{text}");
    assert_eq!(count("", "zone"), Some(1.0), "{text}");
    let series = text.lines().filter(|l| l.starts_with(METRIC)).count();
    assert_eq!(series, 5, "{text}");
}

#[test]
fn nothing_is_counted_when_off() {
    let (s, metrics, _dir) = start("");
    let text = ask_all(&s, metrics, &["google.com.shop.svc.cluster.local"], 1.0);
    assert!(text.contains("coredns_dns_requests_total"), "{text}");
    assert!(!text.contains(&format!("{METRIC}{{")), "{text}");
}
