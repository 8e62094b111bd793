//! The NodeLocal mode itself in network namespaces: the real binary sets up its link and
//! rules, answers pods at the link-local address and the ClusterIP (IPv4 and IPv6, UDP
//! and TCP, untracked), repairs flushed rules and a deleted link within a reconcile, is
//! replaced by a second instance with at most one query lost, and fails open after
//! `kill -9`.
//!
//! The cache's cluster DNS is a server in the node namespace (127.0.0.1:5353) answering
//! NODE_ANSWER, while kube-proxy's DNAT leads to "up", which answers UP_ANSWER: so each
//! answer says which path it took. Root only; skipped with a printed reason elsewhere.

use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use clusterdns::nodelocal::Backend;
use hickory_proto::rr::RecordType;

use crate::client::{Answer, query_bytes};
use crate::harness::{EPHEMERAL_HTTP, wait_until};
use crate::http::{get, sample};
use crate::netns::{
    CLUSTER_IP_V4, CLUSTER_IP_V6, KubeProxy, Netns, Topology, UP_V4, UP_V6, serial, unavailable,
};
use crate::nodelocal_steering::{
    LOCAL_V4, LOCAL_V6, NAME, NODE_ANSWER, UP_ANSWER, assert_one_copy, cluster_file, dig_tries,
    our_rules,
};

const PROBES: &str = "169.254.20.10:8080";
const METRICS: &str = "127.0.0.1:9253";

fn config(dir: &Path) -> String {
    let text = format!(
        "[health]\nlameduck = 1\n\
         [nodelocal]\nlink_kind = \"ifb\"\n\
         addresses = [\"{LOCAL_V4}\", \"{LOCAL_V6}\"]\n\
         cluster_ips = [\"{CLUSTER_IP_V4}\", \"{CLUSTER_IP_V6}\"]\n\
         backend = \"auto\"\nreconcile_period_ms = 300\n\
         cluster_dns = [\"127.0.0.1:5353\"]\n\
         metrics_listen = \"{METRICS}\"\n\
         kube_dns_dir = \"{}\"\n",
        dir.join("kube-dns").display()
    );
    let path = dir.join("nodelocal.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}

/// The mode's binary in node, its log in `log`; SIGKILLed on drop.
struct Instance(Child);

impl Instance {
    fn start(node: &Netns, config: &str, log: &Path) -> Instance {
        let child = node
            .command(env!("CARGO_BIN_EXE_clusterdns"))
            .args(["--config", config])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).unwrap())
            .spawn()
            .unwrap();
        Instance(child)
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }

    fn terminate(&self) {
        let pid = self.0.id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(ok.success());
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn http(node: &Netns, addr: &str, path: &str) -> Option<(u16, String)> {
    let addr: SocketAddr = addr.parse().unwrap();
    node.enter(|| get(addr, path))
}

fn wait_ready(node: &Netns, log: &Path) {
    let started = Instant::now();
    while http(node, PROBES, "/ready").map(|r| r.0) != Some(200) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "not ready:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn dig(pod: &Netns, server: &str, tcp: bool) -> String {
    dig_tries(pod, server, tcp, "+time=2 +tries=1")
}

/// `count` queries for NAME to `server` from pod, one every `every`, each waited for at
/// most 500 ms; returns how many got no answer from a node-local instance (an answer
/// from "up" would mean no instance was bound).
fn steady_queries(pod: &Netns, server: SocketAddr, count: u16, every: Duration) -> usize {
    pod.enter(|| {
        let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut lost = 0;
        let started = Instant::now();
        for id in 0..count {
            let due = started + every * u32::from(id);
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            socket
                .send_to(&query_bytes(id, NAME, RecordType::A, None), server)
                .unwrap();
            let mut buf = [0u8; 512];
            let answered = loop {
                match socket.recv(&mut buf) {
                    // A late answer to an earlier query is skipped.
                    Ok(n) => {
                        let answer = Answer::parse(buf[..n].to_vec());
                        if answer.msg.metadata.id == id {
                            break answer.rdata() == [NODE_ANSWER];
                        }
                    }
                    Err(_) => break false,
                }
            };
            if !answered {
                lost += 1;
            }
        }
        lost
    })
}

#[test]
fn nodelocal_mode_with_nft_beside_kube_proxy_nftables() {
    mode_in_namespaces("m", KubeProxy::Nftables, Backend::Nft);
}

#[test]
fn nodelocal_mode_with_iptables_nft_beside_kube_proxy_iptables() {
    mode_in_namespaces("j", KubeProxy::IptablesNft, Backend::IptablesNft);
}

#[test]
fn nodelocal_mode_with_iptables_legacy_beside_kube_proxy_iptables() {
    mode_in_namespaces("k", KubeProxy::IptablesLegacy, Backend::IptablesLegacy);
}

/// What flushes part of our rules behind the process's back, per backend.
fn damage(backend: Backend) -> String {
    let iptables = |v: &str| {
        format!(
            "iptables-{v} -t raw -F CLUSTERDNS-NODELOCAL-PRE; ip6tables-{v} -F CLUSTERDNS-NODELOCAL-IN"
        )
    };
    match backend {
        Backend::Nft => "nft flush table inet clusterdns-nodelocal".into(),
        Backend::IptablesNft => iptables("nft"),
        Backend::IptablesLegacy => iptables("legacy"),
    }
}

/// The mode with `backend = "auto"` beside kube-proxy's stand-in in `mode`, which
/// `auto` must find as `backend`.
fn mode_in_namespaces(tag: &str, mode: KubeProxy, backend: Backend) {
    let tools: &[&str] = match backend {
        Backend::Nft => &["nft"],
        Backend::IptablesNft => &["iptables-nft", "iptables-nft-save", "ip6tables-nft-save"],
        Backend::IptablesLegacy => &[
            "iptables-legacy",
            "iptables-legacy-save",
            "ip6tables-legacy-save",
        ],
    };
    let needed = [tools, &["nft", "dig", "conntrack", "ss"]].concat();
    if let Some(why) = unavailable(&needed) {
        eprintln!("SKIP nodelocal mode ({}): {why}", backend.label());
        return;
    }
    let _serial = serial();
    let topology = match Topology::build(tag) {
        Ok(t) => t,
        Err(why) => {
            eprintln!("SKIP nodelocal mode: {why}");
            return;
        }
    };
    let (node, pod) = (&topology.node, &topology.pod);
    topology.kube_proxy(mode);
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_clusterdns");
    let up_file = cluster_file(dir.path(), "up.yaml", UP_ANSWER);
    let node_file = cluster_file(dir.path(), "node.yaml", NODE_ANSWER);
    let (up4, up6) = (format!("{UP_V4}:53"), format!("[{UP_V6}]:53"));
    let mut up_args = vec![
        "--cluster-file",
        &up_file,
        "--listen",
        &up4,
        "--listen",
        &up6,
    ];
    up_args.extend(EPHEMERAL_HTTP);
    let _up = topology.up.spawn(bin, &up_args);
    // The cache's cluster DNS, in node.
    let mut cluster_args = vec!["--cluster-file", &node_file, "--listen", "127.0.0.1:5353"];
    cluster_args.extend(EPHEMERAL_HTTP);
    let _cluster = node.spawn(bin, &cluster_args);
    topology.up.wait_udp_listener(UP_V6, 53);
    node.wait_udp_listener("127.0.0.1", 5353);
    let config = config(dir.path());

    // Start: link, sockets, rules, ready.
    let log_a = dir.path().join("a.log");
    let mut a = Instance::start(node, &config, &log_a);
    wait_ready(node, &log_a);
    let listing = our_rules(node, backend);
    assert_one_copy(&listing, backend);
    node.sh("conntrack -F 2>/dev/null; conntrack -F -f ipv6 2>/dev/null; true");
    for server in [LOCAL_V4, CLUSTER_IP_V4, LOCAL_V6, CLUSTER_IP_V6] {
        for tcp in [false, true] {
            assert_eq!(dig(pod, server, tcp), NODE_ANSWER, "@{server} tcp={tcp}");
        }
    }
    let tracked = node.sh("conntrack -L 2>/dev/null; conntrack -L -f ipv6 2>/dev/null; true");
    assert!(!tracked.contains("dport=53 "), "tracked:\n{tracked}");
    let metrics = http(node, METRICS, "/metrics").unwrap().1;
    for family in ["ipv4", "ipv6"] {
        let labels = [("family", family), ("backend", backend.label())];
        let steering = sample(&metrics, "clusterdns_nodecache_steering", &labels);
        assert_eq!(steering, Some(1.0), "{family}");
    }

    // Flushed rules and a deleted link: repaired within a reconcile or two, and after
    // many more exactly one copy of each rule.
    node.sh(&format!("{}; ip link del nodelocaldns", damage(backend)));
    assert!(
        wait_until(Duration::from_secs(3), || {
            our_rules(node, backend) == listing
                && node.try_sh("ip addr show nodelocaldns").status.success()
        }),
        "not repaired:\n{}",
        std::fs::read_to_string(&log_a).unwrap_or_default()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(our_rules(node, backend), listing);
    for server in [CLUSTER_IP_V4, LOCAL_V6] {
        assert_eq!(
            dig(pod, server, false),
            NODE_ANSWER,
            "@{server} after repair"
        );
    }
    let metrics = http(node, METRICS, "/metrics").unwrap().1;
    for step in ["link", "rules"] {
        let repairs = sample(
            &metrics,
            "clusterdns_nodecache_repairs_total",
            &[("step", step)],
        );
        assert!(repairs >= Some(1.0), "{step}: {repairs:?}");
    }

    // Restart with overlap: B starts beside A, then A is told to stop; a steady stream of
    // queries to the ClusterIP loses at most one.
    let log_b = dir.path().join("b.log");
    let mut b = Instance::start(node, &config, &log_b);
    // A answers /ready on the same address: B's log says when B is up.
    let b_up = |log: &str| {
        log.contains("NodeLocal mode answering") && log.contains("cluster DNS answered")
    };
    assert!(
        wait_until(Duration::from_secs(15), || {
            b_up(&std::fs::read_to_string(&log_b).unwrap_or_default())
        }),
        "B did not start:\n{}",
        std::fs::read_to_string(&log_b).unwrap_or_default()
    );
    let target: SocketAddr = format!("{CLUSTER_IP_V4}:53").parse().unwrap();
    let lost = std::thread::scope(|s| {
        let stream = s.spawn(|| steady_queries(pod, target, 1500, Duration::from_millis(2)));
        std::thread::sleep(Duration::from_millis(800));
        a.terminate();
        stream.join().unwrap()
    });
    eprintln!("restart with overlap: {lost} of 1500 queries lost");
    assert!(lost <= 1, "{lost} of 1500 queries lost across the restart");
    let exited = wait_until(Duration::from_secs(5), || a.0.try_wait().unwrap().is_some());
    assert!(exited, "A did not exit after SIGTERM");
    assert_eq!(dig(pod, CLUSTER_IP_V4, true), NODE_ANSWER, "B answers");

    // kill -9: nothing removes the rules, yet the ClusterIP fails open to the cluster DNS
    // (one retry after 1 s allowed, as in the steering tests).
    b.kill9();
    for server in [CLUSTER_IP_V4, CLUSTER_IP_V6] {
        for tcp in [false, true] {
            let answer = dig_tries(pod, server, tcp, "+time=1 +tries=2");
            assert_eq!(answer, UP_ANSWER, "@{server} tcp={tcp} after kill -9");
        }
    }
    a.kill9();
}

/// Without NET_ADMIN (the capability dropped from the process), the setup errors are
/// counted under node-cache's error types and DNS is still answered at an address that
/// exists already; `/ready` says the rules are not in place.
#[test]
fn nodelocal_mode_without_net_admin_keeps_serving() {
    if let Some(why) = unavailable(&["nft", "dig", "ss", "setpriv"]) {
        eprintln!("SKIP nodelocal without NET_ADMIN: {why}");
        return;
    }
    let _serial = serial();
    let topology = match Topology::build("w") {
        Ok(t) => t,
        Err(why) => {
            eprintln!("SKIP nodelocal without NET_ADMIN: {why}");
            return;
        }
    };
    let (node, pod) = (&topology.node, &topology.pod);
    node.sh(&format!(
        "set -e\nip link add nodelocaldns type ifb\nip addr add {LOCAL_V4}/32 dev nodelocaldns"
    ));
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_clusterdns");
    let node_file = cluster_file(dir.path(), "node.yaml", NODE_ANSWER);
    let mut cluster_args = vec!["--cluster-file", &node_file, "--listen", "127.0.0.1:5353"];
    cluster_args.extend(EPHEMERAL_HTTP);
    let _cluster = node.spawn(bin, &cluster_args);
    node.wait_udp_listener("127.0.0.1", 5353);
    let config = dir.path().join("nodelocal.toml");
    std::fs::write(
        &config,
        format!(
            "[nodelocal]\nlink_kind = \"ifb\"\naddresses = [\"{LOCAL_V4}\"]\nbackend = \"nft\"\n\
             reconcile_period_ms = 200\ncluster_dns = [\"127.0.0.1:5353\"]\n\
             metrics_listen = \"{METRICS}\"\nkube_dns_dir = \"{}\"\n",
            dir.path().join("kube-dns").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("w.log");
    let child = node
        .command("setpriv")
        .args([
            "--inh-caps=-net_admin",
            "--bounding-set=-net_admin",
            "--",
            bin,
        ])
        .args(["--config", config.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let _instance = Instance(child);
    let errors = || {
        let text = http(node, METRICS, "/metrics")
            .map(|r| r.1)
            .unwrap_or_default();
        let labels = [("errortype", "iptables")];
        sample(&text, "coredns_nodecache_setup_errors_total", &labels).unwrap_or(0.0)
    };
    assert!(
        wait_until(Duration::from_secs(10), || errors() >= 2.0),
        "no setup error counted:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    assert_eq!(dig(pod, LOCAL_V4, false), NODE_ANSWER);
    assert_eq!(dig(pod, LOCAL_V4, true), NODE_ANSWER);
    assert_eq!(http(node, PROBES, "/health").map(|r| r.0), Some(200));
    assert_eq!(
        http(node, PROBES, "/ready").map(|r| r.0),
        Some(503),
        "ready without its rules"
    );
    let listed = node.try_sh("nft list table inet clusterdns-nodelocal");
    assert!(!listed.status.success(), "rules written without NET_ADMIN");
}
