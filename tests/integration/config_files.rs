//! Every file in config/ loads, and the real binary refuses bad input with file, line and
//! reason.

use std::path::Path;
use std::process::Command;

use clusterdns::config::Config;

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
                    clusterdns::source::file::parse(file, &text, true).unwrap();
                }
            }
            Some("yaml" | "json") => {
                let text = std::fs::read_to_string(&path).unwrap();
                let objects = clusterdns::source::file::parse(&path, &text, true)
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
