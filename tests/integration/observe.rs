//! Every query observed exactly once: the real binary, N queries of each kind (answered by
//! the zone, forwarded, cache hits) over UDP and over TCP give exactly N counts in the
//! metrics and N lines in the query log, under the stage that answered.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use hickory_proto::rr::RecordType;

use crate::client::{ask, ask_tcp};
use crate::harness::{free_port, sample_cluster, wait_until};
use crate::http::{get, sample};
use crate::upstream::{Mode, TestUpstream};

const N: usize = 5;

#[test]
fn each_query_is_counted_and_logged_once_whatever_answered_it() {
    let up = TestUpstream::start(Mode::Answer { ttl: 300 });
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cluster.yaml"), sample_cluster()).unwrap();
    let [dns, metrics, ready] = [0; 3].map(|_| free_port());
    let config = dir.path().join("clusterdns.toml");
    std::fs::write(
        &config,
        format!(
            "listen = [\"127.0.0.1:{dns}\"]\n[source]\nfile = \"cluster.yaml\"\n[forward]\nupstreams = [\"{}\"]\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[ready]\nlisten = \"127.0.0.1:{ready}\"\n[health]\nlisten = \"\"\nlameduck = 0\n[log]\nqueries = true\nquery_format = \"fields\"\n",
            up.addr
        ),
    )
    .unwrap();
    let log_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(["--config", config.to_str().unwrap(), "--log-format", "json"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let at = |p: u16| SocketAddr::from(([127, 0, 0, 1], p));
    let (dns, metrics, ready) = (at(dns), at(metrics), at(ready));
    assert!(
        wait_until(Duration::from_secs(10), || get(ready, "/ready")
            .map(|r| r.0)
            == Some(200)),
        "never ready"
    );

    // One name warmed into the cache first: that query is one more forwarded one.
    assert_eq!(
        ask(dns, "hit.example.org", RecordType::A).rcode(),
        "NOERROR"
    );
    for i in 0..N {
        let zone = "web.shop.svc.cluster.local";
        assert_eq!(ask(dns, zone, RecordType::A).rcode(), "NOERROR");
        assert_eq!(ask_tcp(dns, zone, RecordType::A).rcode(), "NOERROR");
        let fwd = format!("udp-{i}.example.org");
        assert_eq!(ask(dns, &fwd, RecordType::A).rcode(), "NOERROR");
        let fwd = format!("tcp-{i}.example.org");
        assert_eq!(ask_tcp(dns, &fwd, RecordType::A).rcode(), "NOERROR");
        assert_eq!(
            ask(dns, "hit.example.org", RecordType::A).rcode(),
            "NOERROR"
        );
        assert_eq!(
            ask_tcp(dns, "hit.example.org", RecordType::A).rcode(),
            "NOERROR"
        );
    }
    assert_eq!(up.count(), 1 + 2 * N, "cache hits never reach the upstream");

    // Metrics: UDP workers flush within ~100 ms of going idle.
    let server = format!("dns://{dns}");
    let count = |text: &str, plugin: &str| {
        sample(
            text,
            "coredns_dns_responses_total",
            &[
                ("server", &server),
                ("rcode", "NOERROR"),
                ("plugin", plugin),
            ],
        )
    };
    let want = [
        ("kubernetes", 2 * N),
        ("forward", 2 * N + 1),
        ("cache", 2 * N),
    ];
    let mut text = String::new();
    wait_until(Duration::from_secs(3), || {
        text = get(metrics, "/metrics").expect("metrics answer").1;
        want.iter().all(|(p, n)| count(&text, p) == Some(*n as f64))
    });
    for (plugin, n) in want {
        assert_eq!(count(&text, plugin), Some(n as f64), "{plugin}\n{text}");
    }
    for proto in ["udp", "tcp"] {
        let requests = sample(
            &text,
            "coredns_dns_requests_total",
            &[("server", &server), ("proto", proto), ("type", "A")],
        );
        let extra = usize::from(proto == "udp"); // the warm-up
        assert_eq!(requests, Some((3 * N + extra) as f64), "{proto}\n{text}");
    }

    // The query log: one line per query, naming the stage that answered.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["target"] == "clusterdns::query")
        .collect();
    let logged = |proto: &str, plugin: &str| {
        lines
            .iter()
            .filter(|v| v["proto"] == proto && v["plugin"] == plugin)
            .count()
    };
    for proto in ["udp", "tcp"] {
        assert_eq!(logged(proto, "kubernetes"), N, "{proto} zone\n{log}");
        assert_eq!(logged(proto, "cache"), N, "{proto} cache\n{log}");
        let extra = usize::from(proto == "udp");
        assert_eq!(
            logged(proto, "forward"),
            N + extra,
            "{proto} forward\n{log}"
        );
    }
    assert_eq!(lines.len(), 6 * N + 1, "{log}");
}
