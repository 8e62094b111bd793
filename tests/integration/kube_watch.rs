//! The Kubernetes source against the in-process fake API server, driven through its
//! library interface: first sync, live changes, a relist after 410 Gone applied as a
//! difference, and the startup timeout.

use std::sync::Arc;
use std::time::Duration;

use clusterdns::shutdown::Shutdown;
use clusterdns::source::kube::{KubeSettings, spawn_with_client};
use clusterdns::zone::{ClusterIndex, ClusterZone, IndexSettings};
use clusterdns_testkit::{FakeApi, endpoint_slice, ep, namespace, pod, service};

fn settings(pods: bool) -> KubeSettings {
    KubeSettings {
        kubeconfig: None,
        endpoint: None,
        labels: None,
        namespaces: Vec::new(),
        pods,
        startup_timeout: Duration::from_secs(60),
    }
}

async fn until(what: &str, f: impl Fn() -> bool) {
    for _ in 0..300 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for {what}");
}

fn has(zone: &ClusterZone, ns: &str, name: &str) -> bool {
    zone.with_service(ns.as_bytes(), name.as_bytes(), |v| v.is_some())
}

#[tokio::test]
async fn syncs_follows_and_relists_as_a_difference() {
    let api = FakeApi::new();
    api.apply(namespace("shop"));
    api.apply(service("shop", "web", "10.96.0.5", &[("http", 80)]));
    api.apply(service("shop", "old", "10.96.0.6", &[]));
    api.apply(service("shop", "db", "None", &[]));
    api.apply(endpoint_slice("shop", "db-1", "db", &[ep("10.1.0.1")], &[]));
    api.apply(pod("shop", "p", "10.1.0.7", "Running"));
    let zone = Arc::new(ClusterZone::new());
    let index_settings = IndexSettings {
        track_pods: true,
        ..IndexSettings::default()
    };
    let index = ClusterIndex::new(zone.clone(), index_settings);
    let stop = Shutdown::new();
    let task = spawn_with_client(api.client(), &settings(true), index, stop.clone());
    until("the first sync", || zone.listed()).await;
    assert!(zone.synced() && has(&zone, "shop", "web") && zone.namespace_exists(b"shop"));
    assert!(zone.pod_in_namespace(&"10.1.0.7".parse().unwrap(), b"shop"));
    let headless = |z: &ClusterZone| z.with_service(b"shop", b"db", |v| v.map(|v| v.v4.len()));
    assert_eq!(headless(&zone), Some(1));

    api.apply(endpoint_slice("shop", "db-2", "db", &[ep("10.1.0.2")], &[]));
    until("a second slice", || headless(&zone) == Some(2)).await;

    // While the watches are down and the history is compacted, "old" is deleted and
    // "new" created: only the relist after 410 Gone can tell.
    api.compact();
    api.delete("Service", "shop", "old");
    api.apply(service("shop", "new", "10.96.0.8", &[]));
    api.apply(pod("shop", "p", "10.1.0.7", "Succeeded"));
    let lists = api.served("list", "services");
    api.drop_watches();
    until("the relist", || {
        has(&zone, "shop", "new") && !has(&zone, "shop", "old")
    })
    .await;
    assert!(api.served("list", "services") > lists);
    assert!(has(&zone, "shop", "web"));
    until("the finished pod to go", || {
        !zone.pod_in_namespace(&"10.1.0.7".parse().unwrap(), b"shop")
    })
    .await;
    stop.trigger();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn startup_timeout_answers_nxdomain_but_stays_unready() {
    let api = FakeApi::new();
    api.hold("list", "endpointslices");
    api.apply(service("shop", "web", "10.96.0.5", &[]));
    let zone = Arc::new(ClusterZone::new());
    let index = ClusterIndex::new(zone.clone(), IndexSettings::default());
    let stop = Shutdown::new();
    let mut s = settings(false);
    s.startup_timeout = Duration::from_millis(300);
    let _task = spawn_with_client(api.client(), &s, index, stop.clone());
    until("services before the sync", || has(&zone, "shop", "web")).await;
    assert!(!zone.synced() && !zone.listed());
    until("the startup timeout", || zone.synced()).await;
    assert!(!zone.listed());
    api.release();
    until("the first sync", || zone.listed()).await;
    stop.trigger();
}

/// After an outage long enough to grow the backoff to its cap, the API server comes back
/// having lost every watch's position (410 Gone): the relist follows the 410 within the
/// first backoff step, not after the grown one. In paused time: the durations measured
/// are the runtime's, exact and independent of the machine's load.
#[tokio::test(start_paused = true)]
async fn relists_at_once_when_the_api_server_answers_410_after_an_outage() {
    let api = FakeApi::new();
    api.apply(namespace("shop"));
    api.apply(service("shop", "web", "10.96.0.5", &[]));
    let zone = Arc::new(ClusterZone::new());
    let index = ClusterIndex::new(zone.clone(), IndexSettings::default());
    let stop = Shutdown::new();
    let task = spawn_with_client(api.client(), &settings(false), index, stop.clone());
    until("the first sync", || zone.listed()).await;

    api.set_unavailable(true);
    api.drop_watches();
    // A minute of 503s: every watch's backoff reaches its cap (5 s, drawn from 2.5–5 s).
    tokio::time::sleep(Duration::from_secs(60)).await;
    api.compact();
    api.apply(service("shop", "new", "10.96.0.8", &[]));
    let (watches, lists) = (
        api.served("watch", "services"),
        api.served("list", "services"),
    );
    api.set_unavailable(false);

    // The first request served once it is back is the watch that gets the 410.
    let step = Duration::from_millis(10);
    while api.served("watch", "services") == watches {
        tokio::time::sleep(step).await;
    }
    let gone = tokio::time::Instant::now();
    while api.served("list", "services") == lists {
        tokio::time::sleep(step).await;
        assert!(gone.elapsed() < Duration::from_secs(30), "never relisted");
    }
    let waited = gone.elapsed();
    assert!(
        waited <= Duration::from_millis(600),
        "the relist came {waited:?} after the 410: the backoff was not reset"
    );
    until("the relisted service", || has(&zone, "shop", "new")).await;
    stop.trigger();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}
