//! The NodeLocal mode through the real binary over loopback (no link, no rules: those are
//! the netns tests'): forwarders by zone with node-cache's TTL caps, the kube-dns
//! ConfigMap's stub domains, loop refusal, one bounded cache, `/ready` and the metrics.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::client::{Answer, query_bytes, tcp_exchange, udp_exchange};
use crate::harness::{free_port, wait_until};
use crate::http::{get, sample};
use crate::upstream::{Mode, TestUpstream};

/// The binary in NodeLocal mode, killed when dropped.
struct NodeLocal {
    child: Child,
    dns: SocketAddr,
    probes: SocketAddr,
    metrics: SocketAddr,
}

impl Drop for NodeLocal {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// A `[nodelocal]` config answering on 127.0.0.1 at a free port, without network setup,
/// the cluster DNS `cluster`, `.` to `external`, plus `extra` lines of `[nodelocal]` and
/// `after` (further tables).
fn config(
    dir: &Path,
    cluster: SocketAddr,
    external: SocketAddr,
    extra: &str,
    after: &str,
) -> (std::path::PathBuf, [SocketAddr; 3]) {
    let (dns, probes, metrics) = (free_port(), free_port(), free_port());
    let text = format!(
        "[forward]\nupstreams = [\"{external}\"]\n\
         [health]\nlameduck = 2\n\
         {after}\n\
         [nodelocal]\naddresses = [\"127.0.0.1\"]\ndns_port = {dns}\n\
         setup_interface = false\nsetup_rules = false\n\
         cluster_dns = [\"{cluster}\"]\n\
         health_listen = \"127.0.0.1:{probes}\"\nmetrics_listen = \"127.0.0.1:{metrics}\"\n\
         kube_dns_dir = \"{}\"\nkube_dns_poll_ms = 200\n{extra}\n",
        dir.join("kube-dns").display()
    );
    let path = dir.join("nodelocal.toml");
    std::fs::write(&path, text).unwrap();
    (path, [loopback(dns), loopback(probes), loopback(metrics)])
}

fn start(path: &Path, addrs: [SocketAddr; 3], env: &[(&str, &str)]) -> NodeLocal {
    let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["--config", path.to_str().unwrap()])
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let [dns, probes, metrics] = addrs;
    let nl = NodeLocal {
        child,
        dns,
        probes,
        metrics,
    };
    let started = Instant::now();
    while get(nl.probes, "/health").is_none() {
        assert!(started.elapsed() < Duration::from_secs(10), "never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    nl
}

fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Answer {
    let raw = udp_exchange(addr, &query_bytes(0x4242, name, qtype, Some(1232)))
        .unwrap_or_else(|| panic!("no answer for {name}"));
    Answer::parse(raw)
}

fn ask_tcp(addr: SocketAddr, name: &str, qtype: RecordType) -> Answer {
    let raw = tcp_exchange(addr, &query_bytes(0x4343, name, qtype, None))
        .unwrap_or_else(|| panic!("no TCP answer for {name}"));
    Answer::parse(raw)
}

fn ttls(a: &Answer) -> Vec<u32> {
    a.msg
        .answers
        .iter()
        .chain(&a.msg.authorities)
        .map(|r| r.ttl)
        .collect()
}

fn ready(nl: &NodeLocal) -> Option<u16> {
    get(nl.probes, "/ready").map(|(status, _)| status)
}

/// The cluster zone goes to the cluster DNS over TCP (pooled), reverse zones too; `.` to
/// the other upstream over UDP; each with node-cache's caps (cluster 30 s / 5 s, others
/// 30 s), and a second ask is a cache hit.
#[test]
fn zones_route_to_their_upstreams_with_node_caches_caps() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = TestUpstream::start(Mode::Answer { ttl: 3600 });
    let external = TestUpstream::start(Mode::Answer { ttl: 3600 });
    let (path, addrs) = config(dir.path(), cluster.addr, external.addr, "", "");
    let nl = start(&path, addrs, &[]);
    // Ready once the readiness probe (the zone's SOA) was answered; it asks no more.
    assert!(wait_until(Duration::from_secs(10), || ready(&nl) == Some(200)));
    let probe_queries = cluster.count();
    let a = ask(nl.dns, "web.default.svc.cluster.local", RecordType::A);
    assert_eq!(a.rdata(), ["192.0.2.1"]);
    assert!(ttls(&a).iter().all(|t| *t <= 30), "{:?}", a.answers());
    assert_eq!(cluster.udp.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(cluster.count(), probe_queries + 1);
    // A cache hit, over TCP as well.
    let again = ask_tcp(nl.dns, "web.default.svc.cluster.local", RecordType::A);
    assert_eq!(again.rdata(), ["192.0.2.1"]);
    assert_eq!(cluster.count(), probe_queries + 1);
    // Reverse zones go to the cluster DNS too.
    ask(nl.dns, "10.0.96.10.in-addr.arpa", RecordType::PTR);
    assert_eq!(cluster.count(), probe_queries + 2);
    assert_eq!(external.count(), 0);
    // `.` over UDP, 30 s at most.
    let e = ask(nl.dns, "www.example.org", RecordType::A);
    assert!(
        ttls(&e).iter().all(|t| *t <= 30 && *t > 5),
        "{:?}",
        e.answers()
    );
    assert_eq!(external.udp.load(std::sync::atomic::Ordering::SeqCst), 1);
    // Denial in the cluster zone: 5 s at most, though the SOA says an hour.
    cluster.set(Mode::NxDomain {
        soa_ttl: 3600,
        minimum: 3600,
    });
    let nx = ask(nl.dns, "gone.default.svc.cluster.local", RecordType::A);
    assert_eq!(nx.rcode(), "NXDOMAIN");
    assert!(ttls(&nx).iter().all(|t| *t <= 5), "{:?}", nx.authority());
    external.set(Mode::NxDomain {
        soa_ttl: 3600,
        minimum: 3600,
    });
    let nx = ask(nl.dns, "gone.example.org", RecordType::A);
    assert!(
        ttls(&nx).iter().all(|t| *t <= 30 && *t > 5),
        "{:?}",
        nx.authority()
    );
}

/// With `cluster_protocol = "udp"` the cluster DNS is asked over UDP.
#[test]
fn the_cluster_protocol_is_selectable() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = TestUpstream::start(Mode::Answer { ttl: 10 });
    let external = TestUpstream::start(Mode::Answer { ttl: 10 });
    let extra = "cluster_protocol = \"udp\"";
    let (path, addrs) = config(dir.path(), cluster.addr, external.addr, extra, "");
    let nl = start(&path, addrs, &[]);
    ask(nl.dns, "web.default.svc.cluster.local", RecordType::A);
    assert!(cluster.udp.load(std::sync::atomic::Ordering::SeqCst) >= 1);
    assert_eq!(cluster.tcp.load(std::sync::atomic::Ordering::SeqCst), 0);
}

/// A stub domain added to the kube-dns ConfigMap is answered by its own upstream within
/// the poll period; a broken ConfigMap keeps it and counts a failed reload; the
/// ConfigMap's upstreamNameservers take `.` over.
#[test]
fn configmap_stub_domains_are_applied_and_a_broken_one_is_kept_out() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = TestUpstream::start(Mode::Answer { ttl: 10 });
    let external = TestUpstream::start(Mode::Answer { ttl: 10 });
    let stub = TestUpstream::start(Mode::Answer { ttl: 10 });
    let (path, addrs) = config(dir.path(), cluster.addr, external.addr, "", "");
    let nl = start(&path, addrs, &[]);
    ask(nl.dns, "a.acme.local", RecordType::A);
    assert_eq!((external.count(), stub.count()), (1, 0));
    let cm = dir.path().join("kube-dns");
    std::fs::create_dir(&cm).unwrap();
    let stubs = format!("{{\"acme.local\": [\"{}\"]}}", stub.addr);
    std::fs::write(cm.join("stubDomains"), stubs).unwrap();
    let mut n = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            n += 1;
            ask(nl.dns, &format!("q{n}.acme.local"), RecordType::A);
            stub.count() > 0
        }),
        "the stub domain was not applied"
    );
    std::fs::write(
        cm.join("stubDomains"),
        "{\"acme.local\": [\"not an address\"]}",
    )
    .unwrap();
    assert!(wait_until(Duration::from_secs(10), || {
        let text = get(nl.metrics, "/metrics").unwrap().1;
        sample(&text, "coredns_reload_failed_total", &[]) == Some(1.0)
    }));
    let before = stub.count();
    ask(nl.dns, "after.acme.local", RecordType::A);
    assert_eq!(stub.count(), before + 1, "the last good ConfigMap stays");

    // upstreamNameservers replaces [forward]'s upstreams for `.`.
    let nameservers = TestUpstream::start(Mode::Answer { ttl: 10 });
    std::fs::write(cm.join("stubDomains"), "{}").unwrap();
    let list = format!("[\"{}\"]", nameservers.addr);
    std::fs::write(cm.join("upstreamNameservers"), list).unwrap();
    let asked_external = external.count();
    assert!(
        wait_until(Duration::from_secs(10), || {
            n += 1;
            ask(nl.dns, &format!("u{n}.example.org"), RecordType::A);
            nameservers.count() > 0
        }),
        "upstreamNameservers was not applied"
    );
    let settled = external.count();
    ask(nl.dns, "last.example.org", RecordType::A);
    assert_eq!(external.count(), settled, "`.` still went to [forward]");
    assert!(settled >= asked_external);
}

/// An upstream that is one of our own addresses is refused: in the file at validation,
/// and from the environment at start (the cluster zone then fails, nothing loops).
#[test]
fn an_upstream_on_our_own_address_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let external = TestUpstream::start(Mode::Answer { ttl: 10 });
    let port = free_port();
    let own = loopback(port);
    let text = format!(
        "[nodelocal]\naddresses = [\"127.0.0.1\"]\ndns_port = {port}\nsetup_interface = false\n\
         setup_rules = false\ncluster_dns = [\"{own}\"]\n"
    );
    let path = dir.path().join("loop.toml");
    std::fs::write(&path, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["--config", path.to_str().unwrap(), "--validate"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("loop") && err.contains("cluster_dns"), "{err}");

    // Without cluster_dns, the Service's environment names our own address.
    let (path, addrs) = config(dir.path(), external.addr, external.addr, "", "");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(&format!("cluster_dns = [\"{}\"]\n", external.addr), "");
    std::fs::write(&path, text).unwrap();
    let own = addrs[0];
    let (host, port) = (own.ip().to_string(), own.port().to_string());
    let env = [
        ("KUBE_DNS_UPSTREAM_SERVICE_HOST", host.as_str()),
        ("KUBE_DNS_UPSTREAM_SERVICE_PORT", port.as_str()),
    ];
    let nl = start(&path, addrs, &env);
    let a = ask(nl.dns, "web.default.svc.cluster.local", RecordType::A);
    assert_eq!(a.rcode(), "SERVFAIL");
    assert_eq!(external.count(), 0, "the cluster zone never goes to `.`");
    assert_eq!(ready(&nl), Some(503), "no cluster DNS: not ready");
}

/// One cache for every zone, bounded in entries: many names across zones never hold
/// more than `capacity` answers.
#[test]
fn one_cache_bounds_every_zone() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = TestUpstream::start(Mode::Answer { ttl: 300 });
    let external = TestUpstream::start(Mode::Answer { ttl: 300 });
    let cache = "[cache]\ncapacity = 8\n";
    let (path, addrs) = config(dir.path(), cluster.addr, external.addr, "", cache);
    let nl = start(&path, addrs, &[]);
    for i in 0..40 {
        ask(
            nl.dns,
            &format!("s{i}.default.svc.cluster.local"),
            RecordType::A,
        );
        ask(nl.dns, &format!("n{i}.example.org"), RecordType::A);
    }
    let entries = || {
        let text = get(nl.metrics, "/metrics").unwrap().1;
        let kinds = ["success", "denial"];
        kinds
            .iter()
            .map(|t| sample(&text, "coredns_cache_entries", &[("type", t)]).unwrap_or(0.0))
            .sum::<f64>()
    };
    assert!(
        wait_until(Duration::from_secs(5), || {
            // Lookups run the cache's upkeep, which evicts down to the bound.
            ask(nl.dns, "s0.default.svc.cluster.local", RecordType::A);
            entries() <= 8.0
        }),
        "{} entries in a cache of 8",
        entries()
    );
}

/// `/ready` waits for the cluster DNS's first answer; on SIGTERM it turns 503 while DNS
/// is still answered for the lameduck period, then the process exits. The metrics count
/// the queries under CoreDNS's names, and the setup metrics are there.
#[test]
fn ready_follows_the_cluster_dns_and_sigterm_and_metrics_count() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = TestUpstream::start(Mode::Drop);
    let external = TestUpstream::start(Mode::Answer { ttl: 60 });
    let (path, addrs) = config(dir.path(), cluster.addr, external.addr, "", "");
    let mut nl = start(&path, addrs, &[]);
    assert_eq!(get(nl.probes, "/health").map(|r| r.0), Some(200));
    assert_eq!(ready(&nl), Some(503), "the cluster DNS has not answered");
    cluster.set(Mode::Answer { ttl: 60 });
    assert!(wait_until(Duration::from_secs(10), || ready(&nl) == Some(200)));

    for i in 0..5 {
        ask(nl.dns, &format!("m{i}.example.org"), RecordType::A);
        ask(nl.dns, &format!("m{i}.example.org"), RecordType::A);
    }
    // UDP workers flush their counters shortly after going idle.
    let counted = |text: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with("coredns_dns_requests_total{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    let mut text = String::new();
    assert!(
        wait_until(Duration::from_secs(5), || {
            text = get(nl.metrics, "/metrics").unwrap().1;
            counted(&text) == 10.0
        }),
        "{text}"
    );
    let hits = sample(&text, "coredns_cache_hits_total", &[("type", "success")]);
    assert_eq!(hits, Some(5.0));
    let by = |plugin| {
        sample(
            &text,
            "coredns_dns_responses_total",
            &[("plugin", plugin), ("rcode", "NOERROR")],
        )
    };
    assert_eq!((by("cache"), by("forward")), (Some(5.0), Some(5.0)));
    for (name, labels) in [
        (
            "coredns_nodecache_setup_errors_total",
            [("errortype", "iptables")],
        ),
        ("clusterdns_nodecache_repairs_total", [("step", "rules")]),
    ] {
        assert_eq!(sample(&text, name, &labels), Some(0.0), "{name}: {text}");
    }

    let pid = nl.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    assert!(wait_until(Duration::from_secs(2), || ready(&nl) == Some(503)));
    let during = ask(nl.dns, "lameduck.example.org", RecordType::A);
    assert_eq!(
        during.rdata(),
        ["192.0.2.1"],
        "still answering while draining"
    );
    let started = Instant::now();
    loop {
        if nl.child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "did not exit");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A changed config is applied while running: here a new cluster DNS, while what the
/// cache holds stays.
#[test]
fn a_reload_switches_the_cluster_dns_and_keeps_the_cache() {
    let dir = tempfile::tempdir().unwrap();
    let old = TestUpstream::start(Mode::Answer { ttl: 30 });
    let new = TestUpstream::start(Mode::Answer { ttl: 30 });
    let external = TestUpstream::start(Mode::Answer { ttl: 30 });
    let (path, addrs) = config(dir.path(), old.addr, external.addr, "", "");
    let nl = start(&path, addrs, &[]);
    ask(nl.dns, "kept.default.svc.cluster.local", RecordType::A);
    let asked_old = old.count();
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(&old.addr.to_string(), &new.addr.to_string());
    // A different size as well as a different time: the watcher compares both.
    std::fs::write(&path, format!("{text}\n# reloaded\n")).unwrap();
    let mut n = 0;
    assert!(
        wait_until(Duration::from_secs(10), || {
            n += 1;
            ask(
                nl.dns,
                &format!("r{n}.default.svc.cluster.local"),
                RecordType::A,
            );
            new.count() > 0
        }),
        "the new cluster DNS was never asked"
    );
    let cached = ask(nl.dns, "kept.default.svc.cluster.local", RecordType::A);
    assert_eq!(cached.rdata(), ["192.0.2.1"]);
    assert!(
        !new.names().iter().any(|q| q.starts_with("kept.")),
        "the cache was dropped"
    );
    assert!(old.count() >= asked_old);
}

/// The mode's addresses come from [nodelocal]: --listen is refused, not ignored.
#[test]
fn listen_flags_are_refused_in_the_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nl.toml");
    std::fs::write(&path, "[nodelocal]\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args([
            "--config",
            path.to_str().unwrap(),
            "--listen",
            "127.0.0.1:5353",
        ])
        .args(["--validate"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("[nodelocal]"));
}
