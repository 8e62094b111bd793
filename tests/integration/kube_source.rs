//! The zone built from the Kubernetes API: the fake API server of
//! `clusterdns_testkit` served on 127.0.0.1, clusterdns pointed at it, and DNS queries
//! over real sockets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clusterdns::admin::Endpoint;
use clusterdns_testkit::{
    FakeApi, FakeApiServer, endpoint_slice, ep, kubeconfig, namespace, pod, service,
};
use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::client::ask;
use crate::harness::{TestServer, wait_until};
use crate::http;

/// The fake API server on its own runtime, and a clusterdns watching it.
struct Cluster {
    api: FakeApi,
    server: FakeApiServer,
    dns: Option<TestServer>,
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Cluster {
    /// Serves `objects`, holding back the lists of `held` plurals, and starts clusterdns
    /// with these `[kubernetes]` lines.
    fn start(objects: Vec<Value>, held: &[&str], kubernetes: &str) -> Cluster {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let api = FakeApi::new();
        api.apply_all(objects);
        for h in held {
            api.hold("list", h);
        }
        let server = rt.block_on(FakeApiServer::start(api.clone())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kubeconfig"), kubeconfig(&server.url())).unwrap();
        let toml = format!(
            "[kubernetes]\nkubeconfig = \"kubeconfig\"\n{kubernetes}\n[forward]\nupstreams = []\n"
        );
        let dns = TestServer::from_toml(dir.path(), &toml);
        Cluster {
            api,
            server,
            dns: Some(dns),
            _dir: dir,
            rt,
        }
    }

    fn dns(&self) -> SocketAddr {
        self.dns.as_ref().unwrap().udp()
    }

    fn ready(&self) -> u16 {
        let addr = self.dns.as_ref().unwrap().http(Endpoint::Ready);
        http::get(addr, "/ready").map_or(0, |(status, _)| status)
    }

    fn wait_ready(&self) {
        assert!(
            wait_until(Duration::from_secs(5), || self.ready() == 200),
            "never ready"
        );
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        drop(self.dns.take());
        self.rt.block_on(self.server.go_away());
    }
}

/// `(rcode, sorted rdata)` of an A question.
fn a(dns: SocketAddr, name: &str) -> (String, Vec<String>) {
    let answer = ask(dns, name, RecordType::A);
    (answer.rcode(), answer.rdata())
}

fn answers(dns: SocketAddr, name: &str, want: &[&str]) -> bool {
    wait_until(Duration::from_secs(3), || {
        a(dns, name)
            == (
                "NOERROR".to_owned(),
                want.iter().map(|s| s.to_string()).collect(),
            )
    })
}

fn nxdomain(dns: SocketAddr, name: &str) -> bool {
    wait_until(Duration::from_secs(3), || a(dns, name).0 == "NXDOMAIN")
}

const WEB: &str = "web.shop.svc.cluster.local";
const DB: &str = "db.shop.svc.cluster.local";

fn shop() -> Vec<Value> {
    vec![
        namespace("shop"),
        service("shop", "web", "10.96.0.5", &[("http", 80)]),
        service("shop", "db", "None", &[("pg", 5432)]),
        endpoint_slice(
            "shop",
            "db-a",
            "db",
            &[ep("10.1.0.1"), ep("10.1.0.2").not_ready()],
            &[("pg", 5432)],
        ),
        endpoint_slice("shop", "db-b", "db", &[ep("10.1.0.3")], &[("pg", 5432)]),
        pod("shop", "db-0", "10.1.0.1", "Running"),
    ]
}

#[test]
fn creates_updates_and_deletes_of_every_kind_show_up() {
    let c = Cluster::start(shop(), &[], "pods = \"verified\"");
    c.wait_ready();
    let (dns, api) = (c.dns(), &c.api);
    assert!(answers(dns, WEB, &["10.96.0.5"]));
    // A headless service split over two slices; the not-ready endpoint is left out.
    assert!(answers(dns, DB, &["10.1.0.1", "10.1.0.3"]));
    // Readiness flips, in both directions.
    api.apply(endpoint_slice(
        "shop",
        "db-a",
        "db",
        &[ep("10.1.0.1").not_ready(), ep("10.1.0.2")],
        &[("pg", 5432)],
    ));
    assert!(answers(dns, DB, &["10.1.0.2", "10.1.0.3"]));
    // A slice goes.
    api.delete("EndpointSlice", "shop", "db-b");
    assert!(answers(dns, DB, &["10.1.0.2"]));
    // A service's ClusterIP changes, then it turns headless.
    api.apply(service("shop", "web", "10.96.0.50", &[("http", 80)]));
    assert!(answers(dns, WEB, &["10.96.0.50"]));
    api.apply(endpoint_slice(
        "shop",
        "web-a",
        "web",
        &[ep("10.1.0.9").hostname("w0")],
        &[("http", 8080)],
    ));
    api.apply(service("shop", "web", "None", &[("http", 80)]));
    assert!(answers(dns, WEB, &["10.1.0.9"]));
    assert!(answers(dns, "w0.web.shop.svc.cluster.local", &["10.1.0.9"]));
    // Services come and go.
    api.apply(service("shop", "api", "10.96.0.7", &[]));
    assert!(answers(dns, "api.shop.svc.cluster.local", &["10.96.0.7"]));
    api.delete("Service", "shop", "api");
    assert!(nxdomain(dns, "api.shop.svc.cluster.local"));
    // Pods (verified): created, finished, deleted.
    let pod_name = |ip: &str| format!("{}.shop.pod.cluster.local", ip.replace('.', "-"));
    assert!(answers(dns, &pod_name("10.1.0.1"), &["10.1.0.1"]));
    api.apply(pod("shop", "job", "10.1.0.20", "Running"));
    assert!(answers(dns, &pod_name("10.1.0.20"), &["10.1.0.20"]));
    api.apply(pod("shop", "job", "10.1.0.20", "Succeeded"));
    assert!(nxdomain(dns, &pod_name("10.1.0.20")));
    api.delete("Pod", "shop", "db-0");
    assert!(nxdomain(dns, &pod_name("10.1.0.1")));
    // Namespaces: a new one exists (NODATA), a deleted one is gone with its services.
    api.apply(namespace("team"));
    api.apply(service("team", "x", "10.96.1.1", &[]));
    assert!(answers(dns, "x.team.svc.cluster.local", &["10.96.1.1"]));
    let ns = "team.svc.cluster.local";
    assert!(wait_until(Duration::from_secs(3), || a(dns, ns)
        == ("NOERROR".into(), vec![])));
    api.delete("Service", "team", "x");
    api.delete("Namespace", "", "team");
    assert!(nxdomain(dns, ns));
    assert!(nxdomain(dns, "x.team.svc.cluster.local"));
}

#[test]
fn not_ready_and_servfail_for_unknown_names_until_the_first_sync() {
    // Services list at once; EndpointSlices are held back.
    let c = Cluster::start(shop(), &["endpointslices"], "startup_timeout = 60");
    let dns = c.dns();
    assert!(
        answers(dns, WEB, &["10.96.0.5"]),
        "positive answers are served before the sync"
    );
    assert_eq!(a(dns, "nope.shop.svc.cluster.local").0, "SERVFAIL");
    assert_eq!(
        a(dns, DB).0,
        "SERVFAIL",
        "a headless service without its slices yet"
    );
    assert_eq!(c.ready(), 503);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(c.ready(), 503);
    c.api.release();
    c.wait_ready();
    assert_eq!(a(dns, "nope.shop.svc.cluster.local").0, "NXDOMAIN");
    assert!(answers(dns, DB, &["10.1.0.1", "10.1.0.3"]));
}

#[test]
fn after_the_startup_timeout_unknown_names_are_nxdomain_but_not_ready() {
    let c = Cluster::start(shop(), &["endpointslices"], "startup_timeout = 1");
    let dns = c.dns();
    assert_eq!(a(dns, "nope.shop.svc.cluster.local").0, "SERVFAIL");
    assert!(nxdomain(dns, "nope.shop.svc.cluster.local"));
    assert_eq!(c.ready(), 503);
    c.api.release();
    c.wait_ready();
}

/// Queries stable names in a loop on another thread; counts what is not NOERROR.
struct Prober {
    stop: Arc<AtomicBool>,
    asked: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<Vec<String>>>,
}

impl Prober {
    fn start(dns: SocketAddr, names: Vec<String>) -> Prober {
        let stop = Arc::new(AtomicBool::new(false));
        let asked = Arc::new(AtomicU64::new(0));
        let (s, n) = (stop.clone(), asked.clone());
        let thread = std::thread::spawn(move || {
            let mut failures = Vec::new();
            while !s.load(Ordering::Relaxed) {
                for name in &names {
                    let (rcode, rdata) = a(dns, name);
                    n.fetch_add(1, Ordering::Relaxed);
                    if rcode != "NOERROR" || rdata.is_empty() {
                        failures.push(format!("{name}: {rcode} {rdata:?}"));
                    }
                }
            }
            failures
        });
        Prober {
            stop,
            asked,
            thread: Some(thread),
        }
    }

    /// Stops, and asserts that it asked enough and every answer was a good one.
    fn finish_without_failures(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let failures = self.thread.take().unwrap().join().unwrap();
        let asked = self.asked.load(Ordering::Relaxed);
        assert!(asked > 100, "only {asked} questions");
        assert!(
            failures.is_empty(),
            "{} of {asked} failed: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        );
    }
}

fn stable_cluster() -> (Vec<Value>, Vec<String>) {
    let mut objects = shop();
    let mut names = vec![WEB.to_owned(), DB.to_owned()];
    for i in 0..40 {
        objects.push(service(
            "stable",
            &format!("s{i}"),
            &format!("10.96.2.{i}"),
            &[("http", 80)],
        ));
        if i % 8 == 0 {
            names.push(format!("s{i}.stable.svc.cluster.local"));
        }
    }
    objects.push(namespace("stable"));
    (objects, names)
}

#[test]
fn forced_relists_after_410_lose_no_stable_name() {
    let (objects, names) = stable_cluster();
    let c = Cluster::start(objects, &[], "");
    c.wait_ready();
    let dns = c.dns();
    let prober = Prober::start(dns, names);
    for round in 0..3 {
        let lists = c.api.served("list", "services");
        // Changes that only a relist can show: the history holding them is compacted
        // before the watches reconnect.
        c.api
            .apply(service("shop", &format!("doomed{round}"), "10.96.3.1", &[]));
        assert!(answers(
            dns,
            &format!("doomed{round}.shop.svc.cluster.local"),
            &["10.96.3.1"]
        ));
        // The watches are cut and held back meanwhile, as for a client cut off from an
        // API server that went on and compacted its history.
        c.api.hold("watch", "services");
        c.api.drop_watches();
        c.api.delete("Service", "shop", &format!("doomed{round}"));
        c.api
            .apply(service("shop", &format!("new{round}"), "10.96.3.2", &[]));
        c.api.compact();
        c.api.release();
        assert!(answers(
            dns,
            &format!("new{round}.shop.svc.cluster.local"),
            &["10.96.3.2"]
        ));
        assert!(nxdomain(
            dns,
            &format!("doomed{round}.shop.svc.cluster.local")
        ));
        assert!(
            wait_until(Duration::from_secs(3), || c.api.served("list", "services")
                > lists),
            "no relist happened"
        );
    }
    prober.finish_without_failures();
}

#[test]
fn answers_never_stop_while_the_api_server_is_away() {
    let (objects, names) = stable_cluster();
    let mut c = Cluster::start(objects, &[], "");
    c.wait_ready();
    let dns = c.dns();
    let prober = Prober::start(dns, names);
    c.rt.block_on(c.server.go_away());
    let away = Instant::now();
    // Changes made while it is away.
    c.api.apply(service("shop", "while-away", "10.96.4.1", &[]));
    c.api.apply(endpoint_slice(
        "shop",
        "db-b",
        "db",
        &[ep("10.1.0.3"), ep("10.1.0.4")],
        &[("pg", 5432)],
    ));
    c.api.delete("Service", "stable", "s1");
    std::thread::sleep(Duration::from_secs(10).saturating_sub(away.elapsed()));
    assert_eq!(a(dns, "while-away.shop.svc.cluster.local").0, "NXDOMAIN");
    assert_eq!(
        a(dns, "s1.stable.svc.cluster.local").0,
        "NOERROR",
        "the last known zone serves"
    );
    c.rt.block_on(c.server.come_back()).unwrap();
    let back = Instant::now();
    // The next attempt waits out the backoff reached during the outage (at most 5 s,
    // jittered), then relists: allow for that on a loaded 2-core machine. How fast the
    // relist starts is `relists_at_once_when_the_api_server_answers_410_after_an_outage`'s.
    assert!(
        wait_until(Duration::from_secs(15), || a(
            dns,
            "while-away.shop.svc.cluster.local"
        )
        .0 == "NOERROR"),
        "the changes made while away never arrived"
    );
    eprintln!(
        "caught up {:?} after the API server came back",
        back.elapsed()
    );
    assert!(answers(dns, DB, &["10.1.0.1", "10.1.0.3", "10.1.0.4"]));
    assert!(nxdomain(dns, "s1.stable.svc.cluster.local"));
    assert_eq!(c.ready(), 200);
    prober.finish_without_failures();
}

#[test]
fn labels_and_namespaces_restrict_what_is_served() {
    let mut objects = shop();
    objects.push(namespace("other"));
    objects.push(service("other", "x", "10.96.5.1", &[]));
    let mut labelled = service("shop", "tagged", "10.96.5.2", &[]);
    labelled["metadata"]["labels"]["tier"] = "front".into();
    objects.push(labelled);
    let c = Cluster::start(
        objects,
        &[],
        "namespaces = [\"shop\"]\nlabels = \"tier=front\"",
    );
    c.wait_ready();
    let dns = c.dns();
    assert!(answers(
        dns,
        "tagged.shop.svc.cluster.local",
        &["10.96.5.2"]
    ));
    assert_eq!(a(dns, WEB).0, "NXDOMAIN");
    assert_eq!(a(dns, "x.other.svc.cluster.local").0, "NXDOMAIN");
    // The label selector is the API server's to apply: a service that gains the label
    // arrives as an ADDED, one that loses it as a DELETED.
    let mut web = service("shop", "web", "10.96.0.5", &[]);
    web["metadata"]["labels"]["tier"] = "front".into();
    c.api.apply(web);
    assert!(answers(dns, WEB, &["10.96.0.5"]));
    c.api.apply(service("shop", "tagged", "10.96.5.2", &[]));
    assert!(nxdomain(dns, "tagged.shop.svc.cluster.local"));
}

#[test]
fn the_binary_follows_its_kubeconfig() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = FakeApi::new();
    api.apply_all(shop());
    let server = rt.block_on(FakeApiServer::start(api.clone())).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kubeconfig");
    std::fs::write(&path, kubeconfig(&server.url())).unwrap();
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dns: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let config = dir.path().join("c.toml");
    std::fs::write(&config, "[forward]\nupstreams = []\n").unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("--config")
        .arg(&config)
        .arg("--kubeconfig")
        .arg(&path)
        .args(["--listen", &dns.to_string()])
        .args(crate::harness::EPHEMERAL_HTTP)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let q = crate::client::query_bytes(7, WEB, RecordType::A, None);
    let ok = wait_until(Duration::from_secs(10), || {
        let _ = sock.send_to(&q, dns);
        let mut buf = [0u8; 512];
        sock.recv(&mut buf)
            .ok()
            .map(|n| crate::client::Answer::parse(buf[..n].to_vec()))
            .is_some_and(|a| a.rdata() == ["10.96.0.5"])
    });
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "the binary never answered from the API");
    drop(server);
}

/// deploy/cluster/rbac.yaml grants list and watch on exactly what the source lists and watches.
#[test]
fn rbac_grants_exactly_what_is_watched() {
    use serde::Deserialize;
    let c = Cluster::start(shop(), &[], "pods = \"verified\"");
    c.wait_ready();
    let watching = || {
        clusterdns_testkit::fake_api::RESOURCES
            .iter()
            .all(|r| c.api.served("watch", r.plural) > 0)
    };
    assert!(wait_until(Duration::from_secs(3), watching));
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/cluster/rbac.yaml"),
    )
    .unwrap();
    let mut granted = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let doc = serde_yaml::Value::deserialize(doc).unwrap();
        if doc["kind"] != "ClusterRole" {
            continue;
        }
        for rule in doc["rules"].as_sequence().unwrap() {
            let verbs: Vec<&str> = rule["verbs"]
                .as_sequence()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
                .collect();
            assert_eq!(verbs, ["list", "watch"]);
            for group in rule["apiGroups"].as_sequence().unwrap() {
                for resource in rule["resources"].as_sequence().unwrap() {
                    granted.push(format!(
                        "{}/{}",
                        group.as_str().unwrap(),
                        resource.as_str().unwrap()
                    ));
                }
            }
        }
    }
    granted.sort();
    let mut used: Vec<String> = clusterdns_testkit::fake_api::RESOURCES
        .iter()
        .filter(|r| c.api.served("list", r.plural) > 0 && c.api.served("watch", r.plural) > 0)
        .map(|r| {
            let group = r.api_version.rsplit_once('/').map_or("", |(g, _)| g);
            format!("{group}/{}", r.plural)
        })
        .collect();
    used.sort();
    assert_eq!(granted, used);
}
