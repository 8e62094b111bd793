//! Every file in config/ loads, and the real binary refuses bad input with file, line and
//! reason.

use std::path::Path;
use std::process::Command;

use clusterdns::config::Config;
use clusterdns::source::file::Selection;

fn config_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/config"))
}

#[test]
fn every_config_file_loads() {
    let mut seen = 0;
    for entry in std::fs::read_dir(config_dir()).unwrap() {
        let path = entry.unwrap().path();
        match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => {
                let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
                if let Some(file) = &c.source.file {
                    let text = std::fs::read_to_string(file).unwrap();
                    clusterdns::source::file::parse(file, &text, &Selection::all()).unwrap();
                }
            }
            Some("yaml" | "json") => {
                let text = std::fs::read_to_string(&path).unwrap();
                let objects = clusterdns::source::file::parse(&path, &text, &Selection::all())
                    .unwrap_or_else(|e| panic!("{e}"));
                assert!(!objects.is_empty(), "{}", path.display());
            }
            _ => continue,
        }
        seen += 1;
    }
    assert!(seen >= 2);
}

fn clusterdns(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_clusterdns"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn validate_accepts_the_shipped_config() {
    let out = clusterdns(&[
        "--config",
        config_dir().join("clusterdns.toml").to_str().unwrap(),
        "--validate",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration OK"));
}

#[test]
fn validate_refuses_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "listen = [\"127.0.0.1:5353\"]\n[kubernetes]\nttl = 30\npods = \"sometimes\"\n[source]\nsample = true\n").unwrap();
    let out = clusterdns(&["--config", bad.to_str().unwrap(), "--validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4:", bad.display())), "{err}");
    assert!(err.contains("sometimes"), "{err}");

    let cluster = dir.path().join("cluster.yaml");
    std::fs::write(&cluster, "kind: List\nitems:\n- kind: Service\n  metadata: {name: a, namespace: b}\n  spec: {clusterIP: [oops\n").unwrap();
    let out = clusterdns(&["--cluster-file", cluster.to_str().unwrap(), "--validate"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:", cluster.display())), "{err}");
}

/// The config the deploy kit puts in its ConfigMap (deploy/cluster/clusterdns.toml, read
/// by the kustomization's configMapGenerator) is a valid config for cluster mode.
#[test]
fn the_deployed_config_map_is_valid() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/cluster/clusterdns.toml"
    );
    let toml = std::fs::read_to_string(path).unwrap();
    let config = Config::parse(Path::new("deploy/cluster/clusterdns.toml"), &toml)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        config.uses_kubernetes(),
        "in a cluster the zone comes from the API"
    );
    assert_eq!(config.listen.len(), 2);
    assert_eq!(config.metrics.listen, Some("0.0.0.0:9153".parse().unwrap()));
}

/// Values that parse but make no sense are refused by the real binary with the file, the
/// line and column of the value, the key and the reason — not quietly accepted, clamped
/// or ignored. Each row: the file, where the error points, the key, a piece of the reason.
#[test]
fn validate_refuses_values_that_make_no_sense() {
    let rows: &[(&str, &str, &str, &str)] = &[
        (
            "[server]\nudp_workers = 100000\n",
            "2:15",
            "server.udp_workers",
            "more than 1024",
        ),
        (
            "[server]\ntcp_idle_timeout = 0\n",
            "2:20",
            "server.tcp_idle_timeout",
            "0 seconds",
        ),
        (
            "[server]\ntcp_max_connections = 0\n",
            "2:23",
            "server.tcp_max_connections",
            "refuse every",
        ),
        (
            "[cache]\ncapacity = 0\n",
            "2:12",
            "cache.capacity",
            "at least 1",
        ),
        (
            "[cache]\nmax_bytes = 0\n",
            "2:13",
            "cache.max_bytes",
            "0 bytes",
        ),
        (
            "[cache]\nsuccess_cap = 2\n",
            "2:15",
            "cache.min_ttl",
            "above success_cap",
        ),
        (
            "[cache]\nprefetch_percent = 150\n",
            "2:20",
            "cache.prefetch_percent",
            "0..=100",
        ),
        (
            "[kubernetes]\nzones = [\"cluster.local\", \"Cluster.Local.\"]\n",
            "2:9",
            "kubernetes.zones",
            "already listed",
        ),
        (
            "[kubernetes]\nzones = [\"cluster.local\", \"10.96.0.0/16\", \"96.10.in-addr.arpa\"]\n",
            "2:9",
            "kubernetes.zones",
            "96.10.in-addr.arpa is already listed",
        ),
        (
            "[kubernetes]\nzones = [\"cluster.local\", \"10.96.0.0/33\"]\n",
            "2:9",
            "kubernetes.zones",
            "not a CIDR",
        ),
        (
            "[kubernetes]\nfallthrough = [\"in-addr.arpa\", \"example.org\"]\n",
            "2:32",
            "kubernetes.fallthrough[1]",
            "outside every zone served",
        ),
        (
            "[kubernetes]\nnamespaces = [\"default\", \"Kube_System\"]\n",
            "2:26",
            "kubernetes.namespaces[1]",
            "not a namespace name",
        ),
        (
            "[kubernetes]\nnamespaces = [\"default\", \"default\"]\n",
            "2:26",
            "kubernetes.namespaces[1]",
            "listed twice",
        ),
        (
            "[kubernetes]\nstartup_timeout = 0\n",
            "2:19",
            "kubernetes.startup_timeout",
            "0 seconds",
        ),
        (
            "[source]\nsample = true\npoll_interval_ms = 0\n",
            "3:20",
            "source.poll_interval_ms",
            "minimum of 10 ms",
        ),
        (
            "[forward]\ntimeout_ms = 0\n",
            "2:14",
            "forward.timeout_ms",
            "minimum of 10 ms",
        ),
        (
            "[forward]\nhealth_check_ms = 5\n",
            "2:19",
            "forward.health_check_ms",
            "minimum of 10 ms",
        ),
        (
            "[forward]\ntimeout_ms = 6000\n",
            "2:14",
            "forward.deadline_ms",
            "shorter than timeout_ms",
        ),
        (
            "[forward]\nmax_concurrent = 0\n",
            "2:18",
            "forward.max_concurrent",
            "refuse every",
        ),
        (
            "[forward]\nforce_tcp = true\nprefer_udp = true\n",
            "3:14",
            "forward.prefer_udp",
            "contradict",
        ),
        (
            "[forward]\nstub_domains = { \"consul.local\" = [] }\n",
            "2:16",
            "forward.stub_domains",
            "no upstreams",
        ),
        (
            "listen = [\"127.0.0.1:5353\", \"127.0.0.1:5353\"]\n",
            "1:29",
            "listen[1]",
            "listed twice",
        ),
        (
            "listen = [\"127.0.0.1:5353\"]\n[metrics]\nlisten = \"127.0.0.1:8080\"\n",
            "3:10",
            "metrics.listen",
            "also health.listen",
        ),
        (
            "listen = [\"127.0.0.1:5353\"]\n[ready]\nlisten = \"127.0.0.1:5353\"\n",
            "3:10",
            "ready.listen",
            "where DNS listens",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    for (toml, at, key, reason) in rows {
        std::fs::write(&path, toml).unwrap();
        let out = clusterdns(&["--config", path.to_str().unwrap(), "--validate"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{toml}\n{err}");
        let expected = format!("{}:{at}: {key}: ", path.display());
        assert!(
            err.contains(&expected),
            "{toml}\nwant {expected}\ngot {err}"
        );
        assert!(err.contains(reason), "{toml}\nwant {reason}\ngot {err}");
    }
}

/// What the rows above refuse has a meaning at its edges, which is accepted.
#[test]
fn validate_accepts_the_edges_of_each_range() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    for toml in [
        "[server]\nudp_workers = 1024\n",
        "[server]\nudp_workers = 0\n",
        "[cache]\ncapacity = 1\nmin_ttl = 0\nsuccess_cap = 0\ndenial_cap = 0\nprefetch_percent = 100\n",
        "[kubernetes]\nfallthrough = [\".\", \"svc.cluster.local\", \"local\"]\n",
        "[kubernetes]\nnamespaces = [\"kube-system\", \"a\", \"0x\"]\n",
        "[kubernetes]\nzones = [\"cluster.local\", \"10.96.0.0/12\", \"fd00:10:96::/112\"]\n",
        "[forward]\nmax_fails = 0\ntimeout_ms = 10\ndeadline_ms = 10\n",
        "[health]\nlisten = \"\"\n[ready]\nlisten = \"\"\n[metrics]\nlisten = \"\"\n",
    ] {
        std::fs::write(&path, format!("{toml}\n")).unwrap();
        let out = clusterdns(&["--config", path.to_str().unwrap(), "--validate"]);
        assert!(
            out.status.success(),
            "{toml}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// A cluster file that does not parse is reported at its true line and column, wherever
/// the mistake is: after the items of a kubectl List (the sample with a line appended),
/// inside one of its items, in a later document of several, in JSON.
#[test]
fn validate_reports_cluster_file_errors_where_they_are() {
    let sample = std::fs::read_to_string(config_dir().join("sample-cluster.yaml")).unwrap();
    let sample_lines = sample.lines().count();
    assert!(sample.ends_with('\n'));
    let in_item = sample.replacen(
        "    clusterIP: 10.96.0.1\n",
        "    clusterIP: [10.96.0.1\n",
        1,
    );
    let item_line = 1 + sample[..sample.find("    clusterIP: 10.96.0.1\n").unwrap()]
        .matches('\n')
        .count();
    let rows: Vec<(&str, String, String)> = vec![
        (
            "appended.yaml",
            format!("{sample}garbage: [unclosed\n"),
            format!("{}:10:", sample_lines + 1),
        ),
        ("item.yaml", in_item, format!("{}:15:", item_line + 1)),
        (
            "documents.yaml",
            "kind: Namespace\nmetadata: {name: a}\n---\nkind: Namespace\nmetadata: {name: b}\n---\n# c\nkind: Namespace\nmetadata:\n  name: c\n  labels: {a: b]\n".into(),
            "11:16:".into(),
        ),
        (
            "list.json",
            "{\"kind\": \"List\",\n \"items\": [\n  {\"kind\": \"Namespace\", \"metadata\": {\"name\": \"a\"}}\n ],\n \"x\": [1,, 2]\n}\n".into(),
            "5:10:".into(),
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, text, at) in rows {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let out = clusterdns(&["--cluster-file", path.to_str().unwrap(), "--validate"]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        let want = format!("{}:{at} ", path.display());
        assert!(err.contains(&want), "{name}: want {want}\ngot {err}");
    }
}
