//! `clusterdns import-corefile`: each Corefile kubeadm has shipped becomes a config that
//! `--validate` accepts and that answers the sample cluster's names as the hand-written
//! `config/clusterdns.toml` does; what cannot be honoured is refused at its line.
//!
//! The translated config reads the Kubernetes API, as the Corefile's `kubernetes` did,
//! and listens on port 53 and CoreDNS's HTTP ports. To serve it here, the command line
//! moves those (`--cluster-file config/sample-cluster.yaml`, `--listen` on a free
//! loopback port, the endpoints on ephemeral ones): the flags an operator would use,
//! the file itself served unchanged.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use crate::client::{Answer, query_bytes, udp_exchange};
use crate::harness::{EPHEMERAL_HTTP, free_port};
use crate::upstream::{Mode, TestUpstream};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn fixtures() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(repo().join("tests/fixtures/corefile"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_str()
                .unwrap()
                .starts_with("kubeadm-")
        })
        .collect();
    found.sort();
    found
}

fn import(corefile: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("import-corefile")
        .arg(corefile)
        .args(extra)
        .output()
        .unwrap()
}

/// The real binary, killed when dropped.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(config: &Path) -> (Running, SocketAddr) {
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let cluster = repo().join("config/sample-cluster.yaml");
    let args = [
        "--listen",
        &addr.to_string(),
        "--cluster-file",
        cluster.to_str().unwrap(),
    ];
    let server = serve_with(config, &args, addr, "kubernetes.default.svc.cluster.local");
    (server, addr)
}

/// Runs the binary on `config` with `args` (and the HTTP endpoints on ephemeral ports);
/// returns once `addr` answers `probe` with NOERROR.
fn serve_with(config: &Path, args: &[&str], addr: SocketAddr, probe: &str) -> Running {
    let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("--config")
        .arg(config)
        .args(args)
        .args(EPHEMERAL_HTTP)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Running(child);
    // Ready once it answers (NOERROR: the cluster file has been read, or the upstream
    // answered).
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} never answered",
            config.display()
        );
        let q = query_bytes(1, probe, RecordType::A, None);
        if let Some(raw) = udp_exchange(addr, &q)
            && Answer::parse(raw).rcode() == "NOERROR"
        {
            return server;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Cluster names of the sample, each a different kind of answer. None is forwarded:
/// the reverse name is a ClusterIP's, so no packet leaves the machine.
const NAMES: [(&str, RecordType); 9] = [
    ("kubernetes.default.svc.cluster.local", RecordType::A),
    ("web.shop.svc.cluster.local", RecordType::A),
    ("db.shop.svc.cluster.local", RecordType::A),
    ("db-0.db.shop.svc.cluster.local", RecordType::A),
    ("dual.shop.svc.cluster.local", RecordType::AAAA),
    (
        "_dns._udp.kube-dns.kube-system.svc.cluster.local",
        RecordType::SRV,
    ),
    ("10-244-1-10.shop.pod.cluster.local", RecordType::A),
    ("nothing.shop.svc.cluster.local", RecordType::A),
    ("1.0.96.10.in-addr.arpa", RecordType::PTR),
];

fn ask(addr: SocketAddr, name: &str, qtype: RecordType) -> Answer {
    let raw = udp_exchange(addr, &query_bytes(9, name, qtype, Some(1232)))
        .unwrap_or_else(|| panic!("no answer for {name} {qtype}"));
    Answer::parse(raw)
}

#[test]
fn every_kubeadm_corefile_becomes_a_config_that_answers_as_the_sample_config() {
    let fixtures = fixtures();
    assert!(fixtures.len() >= 5, "{fixtures:?}");
    let (_reference, reference) = serve(&repo().join("config/clusterdns.toml"));
    let dir = tempfile::tempdir().unwrap();
    for corefile in fixtures {
        let label = corefile.file_name().unwrap().to_string_lossy().to_string();
        let out = import(&corefile, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{label}: {stderr}");
        // loadbalance became a stage of the chain.
        if std::fs::read_to_string(&corefile)
            .unwrap()
            .contains("loadbalance")
        {
            let toml = String::from_utf8_lossy(&out.stdout);
            assert!(
                toml.contains("chain = [\"loadbalance\", \"kubernetes\""),
                "{label}: {toml}"
            );
        }
        let config = dir.path().join(format!("{label}.toml"));
        std::fs::write(&config, &out.stdout).unwrap();

        let check = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
            .arg("--validate")
            .arg("--config")
            .arg(&config)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{label}: {}\n{}",
            String::from_utf8_lossy(&check.stderr),
            String::from_utf8_lossy(&out.stdout)
        );

        // kubeadm set `ttl 30` from 1.16 on; before, CoreDNS's default of 5 applied.
        let corefile_text = std::fs::read_to_string(&corefile).unwrap();
        let ttl = if corefile_text.contains("ttl 30") {
            30
        } else {
            5
        };
        let (_server, translated) = serve(&config);
        for (name, qtype) in NAMES {
            let want = ask(reference, name, qtype);
            let got = ask(translated, name, qtype);
            let what = format!("{label}: {name} {qtype}");
            assert_eq!(got.rcode(), want.rcode(), "{what}");
            assert_eq!(got.aa(), want.aa(), "{what}");
            assert_eq!(got.rdata(), want.rdata(), "{what}");
            assert_eq!(got.authority().len(), want.authority().len(), "{what}");
            for r in &got.msg.answers {
                assert_eq!(r.ttl, ttl, "{what}");
            }
        }
        assert_eq!(
            ask(translated, NAMES[1].0, RecordType::A).rdata(),
            ["10.96.100.10"]
        );
    }
}

#[test]
fn an_unsupported_plugin_is_refused_at_its_line_unless_lenient() {
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(
        &corefile,
        ".:53 {\n    errors\n    kubernetes cluster.local {\n       pods insecure\n    }\n    rewrite {\n       name foo.example bar.example\n    }\n    forward . /etc/resolv.conf\n    cache 30\n}\n",
    )
    .unwrap();
    let out = import(&corefile, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is written when refused");
    let at = format!("{}:6:5: rewrite (not supported):", corefile.display());
    assert!(stderr.contains(&at), "{stderr}");
    assert!(stderr.contains("--lenient"), "{stderr}");

    // --lenient writes the config, says at the top what it left out, and it validates.
    let out = import(&corefile, &["--lenient"]);
    assert!(out.status.success());
    let toml = String::from_utf8_lossy(&out.stdout);
    assert!(
        toml.contains("#   line 6: NOT TRANSLATED: rewrite"),
        "{toml}"
    );
    let config = dir.path().join("lenient.toml");
    std::fs::write(&config, toml.as_bytes()).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("--validate")
        .arg("--config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// NodeLocal DNSCache's Corefile, its placeholders filled in as node-cache does (with
/// loopback upstreams): its four server blocks share their addresses and become one
/// block whose cluster zones are stub domains. Translated without --lenient, validated,
/// and served: cluster names and reverse names go to the cluster's DNS, the rest to the
/// node's upstreams, over TCP (`force_tcp`), and answers are cached.
#[test]
fn the_nodelocal_template_translates_and_answers() {
    let cluster_dns = TestUpstream::start(Mode::Answer { ttl: 30 });
    let upstream = TestUpstream::start(Mode::Answer { ttl: 30 });
    let template =
        std::fs::read_to_string(repo().join("tests/fixtures/corefile/nodelocal.Corefile")).unwrap();
    assert!(template.contains("__PILLAR__"));
    let text = template
        .replace("__PILLAR__DNS__DOMAIN__", "cluster.local")
        .replace("__PILLAR__LOCAL__DNS__", "169.254.20.10")
        .replace("__PILLAR__DNS__SERVER__", "10.96.0.10")
        .replace("__PILLAR__CLUSTER__DNS__", &cluster_dns.addr.to_string())
        .replace("__PILLAR__UPSTREAM__SERVERS__", &upstream.addr.to_string());
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(&corefile, text).unwrap();
    let out = import(&corefile, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    // What differs is said at its line: the one cache and the one set of forward options.
    assert!(
        stderr.contains(":11:13: forward cluster.local > force_tcp (warning)"),
        "{stderr}"
    );
    assert!(
        stderr.contains(":18:1: cache.denial_cap (warning)"),
        "{stderr}"
    );
    let toml = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        toml.contains("listen = [\"169.254.20.10:53\", \"10.96.0.10:53\"]"),
        "{toml}"
    );
    assert!(
        !toml.contains("[[blocks]]") && !toml.contains("[kubernetes]"),
        "{toml}"
    );
    let config = dir.path().join("nodelocal.toml");
    std::fs::write(&config, &toml).unwrap();
    let check = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["--validate", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let listen = addr.to_string();
    let _server = serve_with(&config, &["--listen", &listen], addr, "probe.example.org");
    let (cluster_before, upstream_before) = (cluster_dns.count(), upstream.count());
    let web = ask(addr, "web.shop.svc.cluster.local", RecordType::A);
    assert_eq!(web.rdata(), ["192.0.2.1"]);
    ask(addr, "1.0.96.10.in-addr.arpa", RecordType::PTR);
    ask(addr, "www.example.org", RecordType::A);
    for _ in 0..3 {
        assert_eq!(
            ask(addr, "web.shop.svc.cluster.local", RecordType::A).rdata(),
            ["192.0.2.1"]
        );
    }
    assert_eq!(
        cluster_dns.count() - cluster_before,
        2,
        "the rest came from the cache"
    );
    assert_eq!(upstream.count() - upstream_before, 1);
    let names = cluster_dns.names();
    assert!(
        names.contains(&"web.shop.svc.cluster.local.".to_string()),
        "{names:?}"
    );
    assert!(
        names.contains(&"1.0.96.10.in-addr.arpa.".to_string()),
        "{names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("example.org")),
        "{names:?}"
    );
    assert!(upstream.names().contains(&"www.example.org.".to_string()));
    assert_eq!(
        cluster_dns.udp.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "force_tcp"
    );
}

/// Two server blocks on their own ports: the one with `kubernetes` is the default block,
/// the other a `[[blocks]]` of its own, each answering on its own address through its
/// own plugins.
#[test]
fn a_two_block_corefile_answers_on_each_blocks_address() {
    let first_up = TestUpstream::start(Mode::Answer { ttl: 30 });
    let second_up = TestUpstream::start(Mode::Answer { ttl: 30 });
    let (first, second) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(&corefile, format!(
        ".:{first} {{\n    bind 127.0.0.1\n    kubernetes cluster.local in-addr.arpa ip6.arpa {{\n        pods insecure\n    }}\n    forward . {}\n    cache 30\n}}\n\
         .:{second} {{\n    bind 127.0.0.1\n    hosts {{\n        10.0.0.9 db.example\n        10.0.0.10 db.example\n        fallthrough\n    }}\n    loadbalance\n    forward . {}\n}}\n",
        first_up.addr, second_up.addr)).unwrap();
    let out = import(&corefile, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let config = dir.path().join("two.toml");
    std::fs::write(&config, &out.stdout).unwrap();
    let first: SocketAddr = format!("127.0.0.1:{first}").parse().unwrap();
    let second: SocketAddr = format!("127.0.0.1:{second}").parse().unwrap();
    let cluster = repo().join("config/sample-cluster.yaml");
    let args = ["--cluster-file", cluster.to_str().unwrap()];
    let _server = serve_with(
        &config,
        &args,
        first,
        "kubernetes.default.svc.cluster.local",
    );
    let web = "web.shop.svc.cluster.local";
    // The first block: the cluster zone, the rest to its upstream.
    assert_eq!(ask(first, web, RecordType::A).rdata(), ["10.96.100.10"]);
    assert_eq!(
        ask(first, "db.example", RecordType::A).rdata(),
        ["192.0.2.1"]
    );
    assert_eq!(first_up.names(), ["db.example."]);
    // The second: its hosts table, every rotation of it, and the rest (a cluster name
    // too: it has no kubernetes) to its own upstream.
    let firsts: std::collections::BTreeSet<String> = (0..4)
        .map(|_| {
            ask(second, "db.example", RecordType::A).msg.answers[0]
                .data
                .to_string()
        })
        .collect();
    assert_eq!(firsts.len(), 2, "{firsts:?}");
    assert_eq!(ask(second, web, RecordType::A).rdata(), ["192.0.2.1"]);
    assert_eq!(second_up.names(), [format!("{web}.")]);
}

/// A syntax error names the file, line and column.
#[test]
fn a_broken_corefile_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let corefile = dir.path().join("Corefile");
    std::fs::write(&corefile, ".:53 {\n    forward . \"10.0.0.1\n}\n").unwrap();
    let out = import(&corefile, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}:2:15: this quote is never closed",
            corefile.display()
        )),
        "{stderr}"
    );
}
