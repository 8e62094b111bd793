//! `clusterdns explain` through the real binary: offline over a cluster file, against a
//! running server's `/explain` (`--server`), and as TXT answers for
//! `<name>.explain.<zone>`. One table of names over the sample cluster, each with the
//! first missing link the three forms must agree on.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::client::ask;
use crate::harness::{free_port, sample_cluster};
use crate::http::get;

/// A row: name, type, the `missing` code (`None`: answered), a fragment of the reason,
/// and the name a search-path expansion most likely meant.
struct Row {
    name: &'static str,
    qtype: &'static str,
    missing: Option<&'static str>,
    reason: &'static str,
    meant: Option<&'static str>,
}

const fn row(
    name: &'static str,
    qtype: &'static str,
    missing: Option<&'static str>,
    reason: &'static str,
    meant: Option<&'static str>,
) -> Row {
    Row {
        name,
        qtype,
        missing,
        reason,
        meant,
    }
}

const Z: &str = "svc.cluster.local";

/// Default options, `zonal = true`.
fn default_rows() -> Vec<Row> {
    vec![
        row("web.shop.svc.cluster.local", "A", None, "answered", None),
        row(
            "web.shop.svc.cluster.local",
            "AAAA",
            Some("no-record-of-type"),
            "no AAAA record",
            None,
        ),
        row(
            "web.nope.svc.cluster.local",
            "A",
            Some("namespace-unknown"),
            "namespace nope is unknown",
            Some("web.nope."),
        ),
        row(
            "nope.shop.svc.cluster.local",
            "A",
            Some("service-unknown"),
            "no service nope in namespace shop",
            Some("nope."),
        ),
        row(
            "headless-empty.monitoring.svc.cluster.local",
            "A",
            Some("headless-no-ready-endpoint"),
            "slices seen: headless-empty-",
            None,
        ),
        row(
            "db-2.db.shop.svc.cluster.local",
            "A",
            Some("endpoint-unknown"),
            "ready endpoint names: db-0, db-1",
            None,
        ),
        row(
            "_nope._tcp.db.shop.svc.cluster.local",
            "SRV",
            Some("port-unknown"),
            "its ports: postgres/tcp",
            None,
        ),
        row(
            "x.payments-api.shop.svc.cluster.local",
            "A",
            Some("below-external-name"),
            "ExternalName",
            None,
        ),
        row(
            "zone-c.pin._zone.db.shop.svc.cluster.local",
            "A",
            Some("zonal-no-endpoint-in-zone"),
            "zone-c",
            None,
        ),
        row(
            "zone-a.pin._zone.web.shop.svc.cluster.local",
            "A",
            Some("zonal-not-headless"),
            "headless",
            None,
        ),
        // Search-path expansions: of an external name, and of a service's short form.
        row(
            "google.com.shop.svc.cluster.local",
            "A",
            Some("service-unknown"),
            "no service com in namespace shop",
            Some("google.com."),
        ),
        row(
            "web.shop.default.svc.cluster.local",
            "A",
            Some("service-unknown"),
            "no service shop in namespace default",
            Some("web.shop.svc.cluster.local."),
        ),
        row(
            "google.com.svc.cluster.local",
            "A",
            Some("namespace-unknown"),
            "namespace com",
            Some("google.com."),
        ),
        row(
            "google.com.cluster.local",
            "A",
            Some("malformed"),
            "\"com\"",
            Some("google.com."),
        ),
        row("10.0.96.10.in-addr.arpa", "PTR", None, "answered", None),
        row(
            "99.99.99.10.in-addr.arpa",
            "PTR",
            Some("address-unknown"),
            "10.99.99.99",
            None,
        ),
        row(
            "10-1-2-3.shop.pod.cluster.local",
            "A",
            None,
            "answered",
            None,
        ),
    ]
}

/// `namespaces = ["shop", "monitoring"]`, `pods = "disabled"`, `labels = "app!=db"`.
/// The `labels` row differs: offline the whole file is read, so the hidden service is
/// named; a server never holds it.
fn filtered_rows() -> Vec<Row> {
    vec![
        row(
            "kubernetes.default.svc.cluster.local",
            "A",
            Some("namespace-excluded"),
            "`namespaces` option lists only shop, monitoring",
            None,
        ),
        row(
            "10-244-1-10.shop.pod.cluster.local",
            "A",
            Some("pods-disabled"),
            "pods = \"disabled\"",
            None,
        ),
        row("web.shop.svc.cluster.local", "A", None, "answered", None),
    ]
}

fn verified_rows() -> Vec<Row> {
    vec![
        row(
            "10-1-2-3.shop.pod.cluster.local",
            "A",
            Some("pod-not-in-namespace"),
            "no pod of namespace shop holds 10.1.2.3",
            None,
        ),
        row(
            "10-244-1-10.shop.pod.cluster.local",
            "A",
            None,
            "answered",
            None,
        ),
    ]
}

const DEFAULT: &str = "ttl = 30\nzonal = true\n";
const FILTERED: &str = "ttl = 30\nnamespaces = [\"shop\", \"monitoring\"]\npods = \"disabled\"\nlabels = \"app!=db\"\n";
const VERIFIED: &str = "ttl = 30\npods = \"verified\"\n";

/// Writes the cluster and a config with these `[kubernetes]` options; returns its path.
fn setup(dir: &Path, kubernetes: &str, health: u16) -> std::path::PathBuf {
    std::fs::write(dir.join("cluster.yaml"), sample_cluster()).unwrap();
    let config = dir.join("clusterdns.toml");
    std::fs::write(
        &config,
        format!(
            "[source]\nfile = \"cluster.yaml\"\n[kubernetes]\n{kubernetes}\n[forward]\nupstreams = []\n\
             [health]\nlisten = \"127.0.0.1:{health}\"\n[ready]\nlisten = \"\"\n[metrics]\nlisten = \"\"\n\
             [explain]\nhttp = true\ndns = true\n"
        ),
    )
    .unwrap();
    config
}

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .arg("explain")
        .args(args)
        .output()
        .unwrap()
}

fn json(out: &Output, ctx: &str) -> Value {
    assert!(
        out.status.success(),
        "{ctx}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{ctx}: not JSON ({e})"))
}

/// The real binary serving `config`, killed when dropped.
pub struct Running {
    child: Child,
    pub dns: SocketAddr,
    pub health: SocketAddr,
}

impl Running {
    pub fn start(config: &Path, health: u16) -> Running {
        let port = free_port();
        let dns: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let health: SocketAddr = format!("127.0.0.1:{health}").parse().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
            .args([
                "--config",
                config.to_str().unwrap(),
                "--listen",
                &dns.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        while get(health, "/health").is_none_or(|(s, _)| s != 200) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "the server never came up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Running { child, dns, health }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn check(e: &Value, r: &Row, ctx: &str, missing: Option<&str>) {
    assert_eq!(e["missing"].as_str(), missing, "{ctx}: {e:#}");
    let reason = e["reason"].as_str().unwrap();
    assert!(
        reason.contains(r.reason),
        "{ctx}: reason {reason:?} lacks {:?}",
        r.reason
    );
    let meant = e["search_path"]["meant"].as_str();
    assert_eq!(meant, r.meant, "{ctx}: {e:#}");
}

fn table(kubernetes: &str, rows: &[Row], labels_hidden: Option<(&str, &str)>) {
    let dir = tempfile::tempdir().unwrap();
    let health = free_port();
    let config = setup(dir.path(), kubernetes, health);
    let config = config.to_str().unwrap();
    let server = Running::start(Path::new(config), health);
    let url = format!("http://{}", server.health);
    for r in rows {
        let ctx = format!("{} {}", r.name, r.qtype);
        // Offline, reading the cluster file itself.
        let out = cli(&[
            "--config",
            config,
            "--cluster-file",
            dir.path().join("cluster.yaml").to_str().unwrap(),
            r.name,
            r.qtype,
            "--json",
        ]);
        check(&json(&out, &ctx), r, &format!("{ctx} (offline)"), r.missing);
        // A running server, over HTTP.
        let out = cli(&["--server", &url, r.name, r.qtype, "--json"]);
        check(
            &json(&out, &ctx),
            r,
            &format!("{ctx} (--server)"),
            r.missing,
        );
        // Over DNS: the explanation of the name asked as A, one line a TXT record.
        if r.qtype == "A" {
            let a = ask(
                server.dns,
                &format!("{}.explain.cluster.local", r.name),
                RecordType::TXT,
            );
            let lines: Vec<String> = a.msg.answers.iter().map(|r| r.data.to_string()).collect();
            let missing = lines.iter().find_map(|l| l.strip_prefix("missing: "));
            assert_eq!(missing, r.missing, "{ctx} (TXT): {lines:?}");
            if let Some(meant) = r.meant {
                assert!(
                    lines.iter().any(|l| l.contains(meant)),
                    "{ctx} (TXT): {lines:?}"
                );
            }
        }
    }
    if let Some((name, offline_reason)) = labels_hidden {
        let out = cli(&["--config", config, name, "--json"]);
        let e = json(&out, name);
        assert_eq!(e["missing"], "service-excluded-by-labels", "{e:#}");
        assert!(
            e["reason"].as_str().unwrap().contains(offline_reason),
            "{e:#}"
        );
        let out = cli(&["--server", &url, name, "--json"]);
        let e = json(&out, name);
        assert_eq!(e["missing"], "service-unknown", "{e:#}");
        assert!(e["reason"].as_str().unwrap().contains("labels"), "{e:#}");
    }
}

#[test]
fn explains_the_sample_cluster_offline_over_http_and_over_dns() {
    table(DEFAULT, &default_rows(), None);
}

#[test]
fn explains_what_the_options_leave_out() {
    table(
        FILTERED,
        &filtered_rows(),
        Some((&format!("db.shop.{Z}"), "app!=db")),
    );
    table(VERIFIED, &verified_rows(), None);
}

#[test]
fn plain_words_and_errors() {
    let out = cli(&["nope.shop.svc.cluster.local"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("why:     no service nope in namespace shop"),
        "{text}"
    );
    assert!(text.contains("meant:   most likely nope."), "{text}");
    let out = cli(&["web.shop.svc.cluster.local", "BOGUS"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("BOGUS"));
    let out = cli(&["a..b"]);
    assert!(!out.status.success());
}

#[test]
fn explain_is_off_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let health = free_port();
    let config = dir.path().join("clusterdns.toml");
    std::fs::write(
        &config,
        format!("[source]\nsample = true\n[forward]\nupstreams = []\n[health]\nlisten = \"127.0.0.1:{health}\"\n[ready]\nlisten = \"\"\n[metrics]\nlisten = \"\"\n"),
    )
    .unwrap();
    let server = Running::start(&config, health);
    assert_eq!(
        get(server.health, "/explain?name=web.shop.svc.cluster.local").map(|(s, _)| s),
        Some(404)
    );
    let out = cli(&[
        "--server",
        &format!("http://{}", server.health),
        "web.shop.svc.cluster.local",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("[explain] http"));
    let a = ask(
        server.dns,
        "web.shop.svc.cluster.local.explain.cluster.local",
        RecordType::TXT,
    );
    assert_eq!(a.rcode(), "NXDOMAIN");
}

#[test]
fn a_forwarded_name_shows_its_upstream_and_cache_state() {
    use crate::harness::TestServer;
    use crate::upstream::{Mode, TestUpstream};
    let up = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    let toml = format!(
        "[source]\nsample = true\n[forward]\nupstreams = [\"{}\"]\n[explain]\nhttp = true\n",
        up.addr
    );
    let s = TestServer::from_toml(dir.path(), &toml);
    let health = s.http(clusterdns::admin::Endpoint::Health);
    let explain = || {
        let (status, body) = get(health, "/explain?name=example.org&type=A").unwrap();
        assert_eq!(status, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()
    };
    let e = explain();
    assert_eq!(e["shape"], "outside", "{e:#}");
    assert_eq!(e["forward"]["group"], ".", "{e:#}");
    assert_eq!(
        e["forward"]["upstreams"][0][0],
        up.addr.to_string(),
        "{e:#}"
    );
    assert_eq!(e["forward"]["upstreams"][0][1], true, "{e:#}");
    assert_eq!(e["forward"]["cache"]["state"], "miss", "{e:#}");
    assert_eq!(
        ask(s.udp(), "example.org", RecordType::A).rcode(),
        "NOERROR"
    );
    let e = explain();
    let cache = &e["forward"]["cache"];
    assert_eq!(cache["state"], "hit", "{e:#}");
    assert_eq!(cache["rcode"], "NOERROR", "{e:#}");
    assert!(cache["ttl_left_secs"].as_u64().unwrap() <= 300, "{e:#}");
    // The plain-words form of the same.
    let (_, text) = get(health, "/explain?name=example.org&format=text").unwrap();
    assert!(
        text.contains(&format!("forward: upstream group . (random): {}", up.addr)),
        "{text}"
    );
    assert!(text.contains("cache:   hit"), "{text}");
}
