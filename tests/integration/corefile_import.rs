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
    let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("--config")
        .arg(config)
        .args(["--listen", &addr.to_string()])
        .arg("--cluster-file")
        .arg(repo().join("config/sample-cluster.yaml"))
        .args(EPHEMERAL_HTTP)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let server = Running(child);
    // Ready once it answers a cluster name (NOERROR: the file has been read).
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} never answered",
            config.display()
        );
        let q = query_bytes(
            1,
            "kubernetes.default.svc.cluster.local",
            RecordType::A,
            None,
        );
        if let Some(raw) = udp_exchange(addr, &q)
            && Answer::parse(raw).rcode() == "NOERROR"
        {
            return (server, addr);
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
        // Every directive that set no key is named on stderr with its line.
        if std::fs::read_to_string(&corefile)
            .unwrap()
            .contains("loadbalance")
        {
            assert!(
                stderr.contains("loadbalance (warning)"),
                "{label}: {stderr}"
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
        ".:53 {\n    errors\n    kubernetes cluster.local {\n       pods insecure\n    }\n    hosts {\n       10.0.0.9 db.example\n       fallthrough\n    }\n    forward . /etc/resolv.conf\n    cache 30\n}\n",
    )
    .unwrap();
    let out = import(&corefile, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing is written when refused");
    let at = format!("{}:6:5: hosts (not supported):", corefile.display());
    assert!(stderr.contains(&at), "{stderr}");
    assert!(stderr.contains("--lenient"), "{stderr}");

    // --lenient writes the config, says at the top what it left out, and it validates.
    let out = import(&corefile, &["--lenient"]);
    assert!(out.status.success());
    let toml = String::from_utf8_lossy(&out.stdout);
    assert!(toml.contains("#   line 6: NOT TRANSLATED: hosts"), "{toml}");
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

/// NodeLocal DNSCache's Corefile has four server blocks: parsed, and refused at the
/// second with what to do, rather than half translated.
#[test]
fn the_nodelocal_template_is_refused_at_its_second_server_block() {
    let corefile = repo().join("tests/fixtures/corefile/nodelocal.Corefile");
    let out = import(&corefile, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let at = format!(
        "{}:16:1: server block in-addr.arpa:53 (not supported): one clusterdns config serves one server block",
        corefile.display()
    );
    assert!(stderr.contains(&at), "{stderr}");
    assert!(stderr.contains("Translate this block by hand"), "{stderr}");
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
