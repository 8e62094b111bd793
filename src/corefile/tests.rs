//! The translation, Corefile text to config, table by table.

use super::translate::*;
use crate::config::{Config, StageName, Upstream};
use crate::corefile::{lexer, parse};
use crate::zone::PodMode;

/// Translates `text`; the TOML must be a config clusterdns accepts whenever nothing is
/// unsupported.
fn translated(text: &str) -> (Option<Config>, Vec<Finding>) {
    let tokens = lexer::tokens(text, &|_| None).unwrap();
    let t = translate(&parse::parse(&tokens).unwrap(), "Corefile");
    let config = Config::parse(std::path::Path::new("out.toml"), &t.toml);
    if t.findings
        .iter()
        .all(|f| f.severity != Severity::Unsupported)
    {
        assert!(config.is_ok(), "{}\n{:?}", t.toml, config.err());
    }
    (config.ok(), t.findings)
}

fn unsupported(findings: &[Finding]) -> Vec<(usize, &str)> {
    findings
        .iter()
        .filter(|f| f.severity == Severity::Unsupported)
        .map(|f| (f.line, f.what.as_str()))
        .collect()
}

const KUBEADM: &str = ".:53 {\n    errors\n    health {\n       lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n       pods insecure\n       fallthrough in-addr.arpa ip6.arpa\n       ttl 30\n    }\n    prometheus :9153\n    forward . /etc/resolv.conf {\n       max_concurrent 1000\n    }\n    cache 30 {\n       disable success cluster.local\n       disable denial cluster.local\n    }\n    loop\n    reload\n    loadbalance\n}\n";

#[test]
fn kubeadm_default_maps_key_by_key() {
    let (c, findings) = translated(KUBEADM);
    let c = c.unwrap();
    assert_eq!(c.listen.len(), 2);
    assert!(c.listen.iter().all(|a| a.port() == 53));
    assert_eq!(c.kubernetes.zones.len(), 3);
    assert_eq!(c.kubernetes.ttl, 30);
    assert_eq!(c.kubernetes.pods, PodMode::Insecure);
    assert_eq!(c.kubernetes.fallthrough.len(), 2);
    assert!(c.uses_kubernetes());
    assert_eq!(
        c.forward.upstreams,
        [Upstream::ResolvConf("/etc/resolv.conf".into())]
    );
    assert_eq!(c.forward.max_concurrent, 1000);
    assert_eq!((c.cache.success_cap, c.cache.denial_cap), (30, 30));
    assert_eq!((c.cache.prefetch, c.cache.serve_stale), (0, 0));
    assert_eq!(c.cache.no_success.len(), 1);
    assert_eq!(c.cache.no_denial.len(), 1);
    assert_eq!(c.health.lameduck.as_secs(), 5);
    assert_eq!(c.health.listen.unwrap().to_string(), "0.0.0.0:8080");
    assert_eq!(c.ready.listen.unwrap().to_string(), "0.0.0.0:8181");
    assert_eq!(c.metrics.listen.unwrap().to_string(), "0.0.0.0:9153");
    // Every directive that set no key is named, with its line.
    let lines: Vec<(usize, &str)> = findings.iter().map(|f| (f.line, f.what.as_str())).collect();
    assert_eq!(lines, [(2, "errors"), (20, "loop"), (21, "reload"),]);
    // loadbalance is a stage, in CoreDNS's plugin order whatever the Corefile's.
    use StageName::*;
    assert_eq!(c.chain, [Loadbalance, Kubernetes, Loop, Cache, Forward]);
}

#[test]
fn absent_directives_become_what_coredns_does_without_them() {
    let (c, _) = translated(".:1053 {\n  kubernetes cluster.local\n  forward . 10.0.0.1\n}\n");
    let c = c.unwrap();
    assert_eq!(c.listen[0].port(), 1053);
    assert_eq!(c.kubernetes.pods, PodMode::Disabled);
    assert_eq!(c.kubernetes.ttl, 5);
    assert_eq!(
        (c.health.listen, c.ready.listen, c.metrics.listen),
        (None, None, None)
    );
    // No `cache`: no cache stage.
    use StageName::*;
    assert_eq!(c.chain, [Kubernetes, Loop, Forward]);
    let (c, _) = translated(".:53 {\n  kubernetes cluster.local\n  cache\n  prometheus\n}\n");
    let c = c.unwrap();
    assert!(c.forward.upstreams.is_empty());
    assert_eq!(c.chain, [Kubernetes, Cache]);
    assert_eq!(c.metrics.listen.unwrap().to_string(), "127.0.0.1:9153");
}

#[test]
fn options_map_to_their_keys() {
    let (c, findings) = translated(concat!(
        ".:53 {\n",
        "  bind 127.0.0.1 ::1\n",
        "  log\n",
        "  errors {\n    consolidate 30s \".*\"\n  }\n",
        "  kubernetes cluster.local 10.96.0.0/12 {\n",
        "    endpoint https://10.0.0.1:6443\n    namespaces default kube-system\n",
        "    labels app=web\n    pods verified\n    endpoint_pod_names\n",
        "    ignore empty_service\n    fallthrough\n  }\n",
        "  forward . 10.0.0.2 dns://10.0.0.3:5353 {\n",
        "    policy sequential\n    force_tcp\n    max_fails 3\n    health_check 2s\n  }\n",
        "  forward consul.local 10.150.0.1\n",
        "  cache 60 {\n    success 20000 120 10\n    denial 5000 60\n",
        "    prefetch 5 1m 20%\n    serve_stale 10m verify\n    servfail 2s\n  }\n",
        "}\n",
    ));
    let c = c.unwrap();
    assert_eq!(
        c.listen.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        ["127.0.0.1:53", "[::1]:53"]
    );
    assert!(c.log.queries);
    assert_eq!(c.log.consolidate.as_secs(), 30);
    let k = &c.kubernetes;
    assert_eq!(k.endpoint.as_deref(), Some("https://10.0.0.1:6443"));
    assert_eq!(k.namespaces, ["default", "kube-system"]);
    assert_eq!(k.labels.as_deref(), Some("app=web"));
    assert_eq!(k.pods, PodMode::Verified);
    assert!(k.endpoint_pod_names && k.ignore_empty_service);
    assert_eq!(k.fallthrough.len(), 1);
    let f = &c.forward;
    assert_eq!(f.upstreams.len(), 2);
    assert!(f.force_tcp);
    assert_eq!((f.max_fails, f.health_check_ms.as_secs()), (3, 2));
    assert_eq!(f.stub_domains.len(), 1);
    let cache = &c.cache;
    assert_eq!(cache.capacity, 20000);
    assert_eq!(
        (cache.success_cap, cache.denial_cap, cache.min_ttl),
        (120, 60, 10)
    );
    assert_eq!((cache.prefetch, cache.prefetch_percent), (5, 20));
    assert_eq!((cache.serve_stale, cache.servfail_ttl), (600, 2));
    // The prefetch window, the one least TTL, the two capacities and consolidate's
    // pattern are kept only approximately: each is a warning with its line.
    let warned: Vec<usize> = findings
        .iter()
        .filter(|f| f.severity == Severity::Warning)
        .map(|f| f.line)
        .collect();
    assert_eq!(warned, [5, 24, 24, 26], "{findings:?}");
    assert!(unsupported(&findings).is_empty(), "{findings:?}");
}

#[test]
fn what_cannot_be_honoured_is_named_with_its_line() {
    let (_, findings) = translated(concat!(
        ".:53 {\n",
        "  hosts {\n    10.0.0.9 db.example\n    bogus\n  }\n",
        "  rewrite name foo.example bar.example\n",
        "  kubernetes cluster.local {\n    noendpoints\n    bogus 1\n  }\n",
        "  forward . tls://1.1.1.1 {\n    except example.org\n  }\n",
        "  cache 30 example.org {\n    keepttl\n  }\n",
        "  log\n  log\n",
        "}\n",
    ));
    assert_eq!(
        unsupported(&findings),
        [
            (4, "hosts > bogus"),
            (6, "rewrite"),
            (8, "kubernetes > noendpoints"),
            (9, "kubernetes > bogus"),
            (11, "forward"),
            (12, "forward > except"),
            (14, "cache"),
            (15, "cache > keepttl"),
            (18, "log"),
        ]
    );
    let rewrite = findings.iter().find(|f| f.what == "rewrite").unwrap();
    assert_eq!(rewrite.to_string().split(": ").next(), Some("Corefile:6:3"));
    assert!(
        rewrite.message.contains("ExternalName"),
        "{}",
        rewrite.message
    );
}

#[test]
fn a_quoted_line_break_stays_inside_its_comment() {
    let tokens = lexer::tokens(
        ".:53 {\n  kubernetes cluster.local\n  cache 30 \"x\nlisten = []\"\n}\n",
        &|_| None,
    )
    .unwrap();
    let t = translate(&parse::parse(&tokens).unwrap(), "Corefile");
    let config = Config::parse(std::path::Path::new("out.toml"), &t.toml).unwrap();
    assert_eq!(config.listen.len(), 2, "{}", t.toml);
}

#[test]
fn a_zone_block_on_the_same_addresses_is_a_stub_domain_of_the_same_block() {
    let (c, findings) = translated(concat!(
        ".:53 {\n  kubernetes cluster.local\n  cache 30\n  forward . /etc/resolv.conf\n}\n",
        "\n",
        "consul.local:53 {\n  forward . 10.150.0.1 {\n    force_tcp\n  }\n}\n",
    ));
    let c = c.unwrap();
    assert!(c.blocks.is_empty());
    assert_eq!(c.forward.stub_domains.len(), 1);
    assert_eq!(
        c.forward.stub_domains[0].1,
        [Upstream::Addr("10.150.0.1:53".parse().unwrap())]
    );
    assert_eq!(
        c.forward.upstreams,
        [Upstream::ResolvConf("/etc/resolv.conf".into())]
    );
    // Its option now applies to the whole block: said at its line.
    assert!(c.forward.force_tcp);
    let warned = findings.iter().find(|f| f.line == 9).unwrap();
    assert_eq!(warned.severity, Severity::Warning);
    assert!(unsupported(&findings).is_empty(), "{findings:?}");
}

#[test]
fn server_blocks_on_other_addresses_become_blocks_of_their_own() {
    let (c, findings) = translated(concat!(
        ".:53 {\n  kubernetes cluster.local\n  forward . 10.0.0.1\n  prometheus :9153\n}\n",
        ".:1053 {\n  bind 127.0.0.1 ::1\n  loadbalance\n  hosts /etc/hosts.extra example.org {\n    ttl 60\n    fallthrough\n  }\n",
        "  cache 10\n  forward . 10.0.0.2 {\n    prefer_udp\n  }\n  prometheus :9153\n}\n",
    ));
    let c = c.unwrap();
    assert!(unsupported(&findings).is_empty(), "{findings:?}");
    assert_eq!(c.listen.len(), 2);
    assert_eq!(c.blocks.len(), 1);
    let b = &c.blocks[0];
    assert_eq!(b.name, ".:1053");
    let listen: Vec<String> = b.listen.iter().map(|a| a.to_string()).collect();
    assert_eq!(listen, ["127.0.0.1:1053", "[::1]:1053"]);
    use StageName::*;
    assert_eq!(b.chain, [Loadbalance, Hosts, Loop, Cache, Forward]);
    assert_eq!(
        b.forward.upstreams,
        [Upstream::Addr("10.0.0.2:53".parse().unwrap())]
    );
    assert!(b.forward.prefer_udp && !c.forward.prefer_udp);
    assert_eq!(b.cache.success_cap, 10);
    let hosts = b.hosts.as_ref().unwrap();
    assert_eq!(
        hosts.file.as_deref(),
        Some(std::path::Path::new("/etc/hosts.extra"))
    );
    assert_eq!(
        (hosts.ttl, hosts.zones.len(), hosts.fallthrough.len()),
        (60, 1, 1)
    );
    assert!(c.hosts.is_none());
}

#[test]
fn blocks_that_share_some_addresses_but_not_all_are_refused() {
    let (_, findings) = translated(concat!(
        ".:53 {\n  kubernetes cluster.local\n}\n",
        "example.org:53 {\n  bind 127.0.0.1\n  forward . 10.0.0.2\n}\n",
    ));
    assert_eq!(unsupported(&findings), [(4, "server block")]);
}

#[test]
fn shared_sections_set_apart_by_two_blocks_are_named() {
    let (_, findings) = translated(concat!(
        ".:53 {\n  kubernetes cluster.local\n  prometheus :9153\n}\n",
        ".:1053 {\n  kubernetes cluster.local {\n    ttl 30\n  }\n  prometheus :9154\n}\n",
    ));
    // A different [kubernetes] cannot be honoured; a different [metrics] port is a
    // warning (the first is kept).
    assert_eq!(unsupported(&findings), [(7, "kubernetes.ttl")]);
    assert!(
        findings
            .iter()
            .any(|f| f.line == 9 && f.what == "metrics.listen" && f.severity == Severity::Warning),
        "{findings:?}"
    );
}

#[test]
fn hosts_entries_and_options_are_kept() {
    let (c, findings) = translated(concat!(
        "example.org {\n  hosts {\n    10.0.0.9 db.example.org db\n    fd00::9 db.example.org\n",
        "    no_reverse\n    reload 0\n  }\n}\n",
    ));
    let c = c.unwrap();
    assert!(unsupported(&findings).is_empty(), "{findings:?}");
    let h = c.hosts.clone().unwrap();
    assert_eq!(h.file.as_deref(), Some(std::path::Path::new("/etc/hosts")));
    assert_eq!(h.entries.len(), 2);
    assert!(h.no_reverse && h.reload_ms.is_zero());
    assert_eq!(
        h.zones,
        [crate::wire::ZoneName::parse("example.org").unwrap()]
    );
    // Without kubernetes the chain has no zone stage, and no forward: REFUSED past it.
    assert_eq!(c.chain, [StageName::Hosts]);
    assert!(!c.serves_zone());
}
