//! How the config selects the Kubernetes source and what it watches.

use std::time::Duration;

#[test]
fn config_selects_and_checks_the_kubernetes_source() {
    use crate::config::Config;
    use std::path::Path;
    let parse = |t: &str| Config::parse(Path::new("c.toml"), t);
    let c = parse("[kubernetes]\nlabels = \"tier in (a,b)\"\nstartup_timeout = 2\n").unwrap();
    assert!(c.uses_kubernetes());
    let s = c.kube_settings();
    assert_eq!(s.startup_timeout, Duration::from_secs(2));
    assert_eq!(s.labels.as_deref(), Some("tier in (a,b)"));
    assert_eq!(s.targets().len(), 3, "namespaces, services, endpointslices");
    let c = parse("[kubernetes]\npods = \"verified\"\nnamespaces = [\"a\", \"b\"]\n").unwrap();
    let targets = c.kube_settings().targets();
    assert_eq!(targets.len(), 7, "namespaces, then 3 kinds × 2 namespaces");
    assert_eq!(targets[1].to_string(), "services in a");
    assert!(
        !parse("[source]\nsample = true\n")
            .unwrap()
            .uses_kubernetes()
    );
    let err = parse("[kubernetes]\nlabels = \"a b\"\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("c.toml:2:") && err.contains("labels"),
        "{err}"
    );
    let err = parse("[kubernetes]\nendpoint = \"10.0.0.1:443\"\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("not an http:// or https:// URL"), "{err}");
}
