//! The NodeLocal network setup in network namespaces, with real DNS queries from a pod:
//! per backend, the link and rules written once however often setup runs, repaired by a
//! running reconciler, steering queries to a bound node-local server without conntrack
//! entries, failing open to the cluster DNS after kill -9, and removed by cleanup.
//!
//! Root only; skipped with a printed reason elsewhere.

use std::path::Path;
use std::process::Output;

use clusterdns::nodelocal::{
    Backend, BackendSetting, Change, LinkKind, NetworkSettings, NetworkSetup,
};

use crate::harness::EPHEMERAL_HTTP;
use crate::netns::{
    CLUSTER_IP_V4, CLUSTER_IP_V6, KubeProxy, Netns, Topology, UP_V4, UP_V6, serial, unavailable,
};

pub(crate) const LOCAL_V4: &str = "169.254.20.10";
pub(crate) const LOCAL_V6: &str = "fd00:20::10";
/// The name both servers know, answered differently so a test can tell who answered.
pub(crate) const NAME: &str = "probe.default.svc.cluster.local";
pub(crate) const NODE_ANSWER: &str = "10.0.0.1";
pub(crate) const UP_ANSWER: &str = "10.0.0.2";

const CONFIG: &str = "[nodelocal]\nlink_kind = \"ifb\"\n\
    addresses = [\"169.254.20.10\", \"fd00:20::10\"]\n\
    cluster_ips = [\"10.96.0.10\", \"fd00:96::a\"]\nbackend = \"auto\"\n";

pub(crate) fn cluster_file(dir: &Path, name: &str, answer: &str) -> String {
    let path = dir.join(name);
    std::fs::write(
        &path,
        format!(
            "kind: List\napiVersion: v1\nitems:\n\
             - {{apiVersion: v1, kind: Namespace, metadata: {{name: default}}}}\n\
             - apiVersion: v1\n  kind: Service\n  metadata: {{name: probe, namespace: default}}\n  \
             spec: {{type: ClusterIP, clusterIP: {answer}, clusterIPs: [{answer}], \
             ports: [{{name: http, port: 80, protocol: TCP}}]}}\n"
        ),
    )
    .unwrap();
    path.to_str().unwrap().to_owned()
}

fn clusterdns(ns: &Netns, args: &[&str]) -> Output {
    ns.command(env!("CARGO_BIN_EXE_clusterdns"))
        .args(args)
        .output()
        .unwrap()
}

/// `clusterdns nodelocal <what> --config FILE` in node; its stdout, after success.
fn nodelocal(node: &Netns, what: &str, config: &str) -> String {
    let out = clusterdns(node, &["nodelocal", what, "--config", config]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "nodelocal {what}: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The A record the pod gets for NAME from `server`, or "" without an answer.
fn dig(pod: &Netns, server: &str, tcp: bool) -> String {
    dig_tries(pod, server, tcp, "+time=2 +tries=1")
}

/// The first query after a `kill -9`: the issue allows up to 1 s of failed queries for the
/// takeover (the first packet of a new path may wait on neighbour discovery, or race the
/// kernel closing the dead process's sockets), so one retry after 1 s is allowed.
fn dig_after_kill(pod: &Netns, server: &str, tcp: bool) -> String {
    dig_tries(pod, server, tcp, "+time=1 +tries=2")
}

pub(crate) fn dig_tries(pod: &Netns, server: &str, tcp: bool, tries: &str) -> String {
    let tcp = if tcp { "+tcp" } else { "+notcp" };
    let out = pod.try_sh(&format!("dig +short {tries} {tcp} @{server} {NAME} A"));
    // With +short, dig's only other lines are its `;;` complaints about a try that failed.
    let text = String::from_utf8_lossy(&out.stdout);
    let answers: Vec<&str> = text.lines().filter(|l| !l.starts_with(";;")).collect();
    answers.join("\n")
}

/// Our rules as the backend lists them, one `family|table|rule` line each.
pub(crate) fn our_rules(node: &Netns, backend: Backend) -> Vec<String> {
    let listings = match backend {
        Backend::Nft => {
            let out = node.try_sh("nft list table inet clusterdns-nodelocal");
            vec![("inet", String::from_utf8_lossy(&out.stdout).into_owned())]
        }
        Backend::IptablesNft => vec![
            ("ipv4", node.sh("iptables-nft-save")),
            ("ipv6", node.sh("ip6tables-nft-save")),
        ],
        Backend::IptablesLegacy => vec![
            ("ipv4", node.sh("iptables-legacy-save")),
            ("ipv6", node.sh("ip6tables-legacy-save")),
        ],
    };
    let mut lines = Vec::new();
    for (family, listing) in listings {
        let mut table = String::new();
        for line in listing.lines().map(str::trim) {
            if let Some(t) = line.strip_prefix('*') {
                table = t.to_owned();
            } else if line.contains("CLUSTERDNS-NODELOCAL")
                || line.ends_with("notrack")
                || line.ends_with("accept")
            {
                lines.push(format!("{family}|{table}|{line}"));
            }
        }
    }
    lines
}

/// Each rule once; with iptables, each built-in chain jumps to ours exactly once.
pub(crate) fn assert_one_copy(rules: &[String], backend: Backend) {
    let mut seen = std::collections::HashSet::new();
    for rule in rules {
        assert!(seen.insert(rule), "twice: {rule}\n{rules:#?}");
    }
    if backend == Backend::Nft {
        assert_eq!(rules.iter().filter(|r| r.ends_with("notrack")).count(), 14);
        assert_eq!(rules.iter().filter(|r| r.ends_with("accept")).count(), 4);
        return;
    }
    for family in ["ipv4", "ipv6"] {
        for jump in [
            "raw|-A PREROUTING -j CLUSTERDNS-NODELOCAL-PRE",
            "raw|-A OUTPUT -j CLUSTERDNS-NODELOCAL-OUT",
            "filter|-A INPUT -j CLUSTERDNS-NODELOCAL-IN",
            "filter|-A OUTPUT -j CLUSTERDNS-NODELOCAL-OUT",
        ] {
            assert!(
                seen.contains(&format!("{family}|{jump}")),
                "{family}|{jump}"
            );
        }
    }
}

/// A reconciler running in node repairs what is damaged behind its back.
fn reconciler_repairs(node: &Netns, backend: Backend, listing: &[String]) {
    let (setting, damage) = match backend {
        Backend::Nft => (
            BackendSetting::Nft,
            "nft flush chain inet clusterdns-nodelocal raw-prerouting
             nft add rule inet clusterdns-nodelocal raw-output ip daddr 192.0.2.1 notrack",
        ),
        Backend::IptablesNft => (
            BackendSetting::IptablesNft,
            "iptables-nft -t raw -F CLUSTERDNS-NODELOCAL-PRE
             ip6tables-nft -I INPUT -j CLUSTERDNS-NODELOCAL-IN",
        ),
        Backend::IptablesLegacy => (
            BackendSetting::IptablesLegacy,
            "iptables-legacy -t raw -F CLUSTERDNS-NODELOCAL-PRE
             ip6tables-legacy -I INPUT -j CLUSTERDNS-NODELOCAL-IN",
        ),
    };
    let settings = NetworkSettings {
        link_kind: LinkKind::Ifb,
        addresses: vec![LOCAL_V4.parse().unwrap(), LOCAL_V6.parse().unwrap()],
        cluster_ips: vec![
            CLUSTER_IP_V4.parse().unwrap(),
            CLUSTER_IP_V6.parse().unwrap(),
        ],
        backend: setting,
        ..NetworkSettings::default()
    };
    let sh = |script: &str| {
        let ok = std::process::Command::new("sh")
            .args(["-c", &format!("set -e\n{script}")])
            .status()
            .unwrap()
            .success();
        assert!(ok, "{script}");
    };
    node.enter(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut setup = NetworkSetup::new(settings);
            let first = setup.reconcile().await;
            assert!(first.errors.is_empty(), "{:?}", first.errors);
            // The CLI left the link as configured; the rules are this process's first.
            assert_eq!(first.link.unwrap().change, Change::Unchanged);
            assert_eq!(first.rules.unwrap().change, Change::Installed);
            assert_eq!(setup.backend(), Some(backend));
            assert!(setup.rules_in_place());
            let second = setup.reconcile().await;
            assert_eq!(second.rules.unwrap().change, Change::Unchanged);
            assert_eq!(second.repairs(), 0);

            sh(damage);
            let repaired = setup.reconcile().await;
            assert!(repaired.errors.is_empty(), "{:?}", repaired.errors);
            assert_eq!(repaired.rules.unwrap().change, Change::Repaired);
            assert_eq!(repaired.repairs(), 1);

            sh(&format!("ip addr del {CLUSTER_IP_V4}/32 dev nodelocaldns"));
            let link = setup.reconcile().await.link.unwrap();
            assert_eq!(link.change, Change::Repaired);
            assert_eq!(
                link.details.added,
                [CLUSTER_IP_V4.parse::<std::net::IpAddr>().unwrap()]
            );

            sh("ip link del nodelocaldns");
            let link = setup.reconcile().await.link.unwrap();
            assert!(link.details.created);
            assert_eq!(link.details.added.len(), 4);
        });
    });
    assert_eq!(
        our_rules(node, backend),
        listing,
        "not as the CLI wrote them"
    );
}

fn steering(tag: &str, mode: KubeProxy, backend: Backend) {
    let tools: &[&str] = match backend {
        Backend::Nft => &["nft"],
        Backend::IptablesNft => &["iptables-nft", "iptables-nft-save", "ip6tables-nft-restore"],
        Backend::IptablesLegacy => &[
            "iptables-legacy",
            "iptables-legacy-save",
            "ip6tables-legacy-restore",
        ],
    };
    let needed = [tools, &["nft", "dig", "conntrack", "ss"]].concat();
    if let Some(why) = unavailable(&needed) {
        eprintln!("SKIP nodelocal steering ({}): {why}", backend.label());
        return;
    }
    let _serial = serial();
    let topology = match Topology::build(tag) {
        Ok(t) => t,
        Err(why) => {
            eprintln!("SKIP nodelocal steering ({}): {why}", backend.label());
            return;
        }
    };
    let (node, pod) = (&topology.node, &topology.pod);
    topology.kube_proxy(mode);
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("nodelocal.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let config = config.to_str().unwrap();

    // Setup, many times: `auto` finds kube-proxy's backend; one copy of everything.
    let out = nodelocal(node, "setup", config);
    assert!(
        out.contains(
            "link nodelocaldns: created added 169.254.20.10, fd00:20::10, 10.96.0.10, fd00:96::a"
        ),
        "{out}"
    );
    assert!(
        out.contains(&format!("rules ({}): written", backend.label())),
        "{out}"
    );
    let listing = our_rules(node, backend);
    assert_one_copy(&listing, backend);
    for _ in 0..4 {
        let out = nodelocal(node, "setup", config);
        assert!(out.contains("link nodelocaldns: as configured"), "{out}");
    }
    assert_eq!(our_rules(node, backend), listing);

    reconciler_repairs(node, backend, &listing);

    // While a server is bound in node, it answers both addresses, untracked.
    let up_file = cluster_file(dir.path(), "up.yaml", UP_ANSWER);
    let node_file = cluster_file(dir.path(), "node.yaml", NODE_ANSWER);
    let listen = |a: &str| format!("{a}:53");
    let listen6 = |a: &str| format!("[{a}]:53");
    let bin = env!("CARGO_BIN_EXE_clusterdns");
    let (up4, up6) = (listen(UP_V4), listen6(UP_V6));
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
    let (l4, c4, l6, c6) = (
        listen(LOCAL_V4),
        listen(CLUSTER_IP_V4),
        listen6(LOCAL_V6),
        listen6(CLUSTER_IP_V6),
    );
    let mut node_args = vec!["--cluster-file", &node_file];
    for a in [&l4, &c4, &l6, &c6] {
        node_args.extend(["--listen", a.as_str()]);
    }
    node_args.extend(EPHEMERAL_HTTP);
    let mut cache = node.spawn(bin, &node_args);
    topology.up.wait_udp_listener(UP_V6, 53);
    node.wait_udp_listener(CLUSTER_IP_V6, 53);
    node.sh("conntrack -F 2>/dev/null; conntrack -F -f ipv6 2>/dev/null; true");
    for server in [LOCAL_V4, CLUSTER_IP_V4, LOCAL_V6, CLUSTER_IP_V6] {
        for tcp in [false, true] {
            assert_eq!(dig(pod, server, tcp), NODE_ANSWER, "@{server} tcp={tcp}");
        }
    }
    let tracked = node.sh("conntrack -L 2>/dev/null; conntrack -L -f ipv6 2>/dev/null; true");
    assert!(!tracked.contains("dport=53"), "tracked:\n{tracked}");

    // kill -9: nothing removes the rules, yet the ClusterIP fails open to the cluster DNS.
    cache.kill9();
    for server in [CLUSTER_IP_V4, CLUSTER_IP_V6] {
        for tcp in [false, true] {
            assert_eq!(
                dig_after_kill(pod, server, tcp),
                UP_ANSWER,
                "@{server} tcp={tcp}"
            );
        }
    }

    // Cleanup removes our rules and link, leaves kube-proxy's, and has nothing left to do
    // the second time.
    let out = nodelocal(node, "cleanup", config);
    assert!(
        out.contains(&format!("removed rules ({}", backend.label())),
        "{out}"
    );
    assert!(out.contains("removed link nodelocaldns"), "{out}");
    let left = our_rules(node, backend);
    assert!(left.is_empty(), "{left:#?}");
    assert!(!node.try_sh("ip link show nodelocaldns").status.success());
    assert_eq!(nodelocal(node, "cleanup", config), "nothing to remove\n");
    assert_eq!(dig(pod, CLUSTER_IP_V4, false), UP_ANSWER);
}

#[test]
fn nodelocal_steering_with_nft_beside_kube_proxy_nftables() {
    steering("n", KubeProxy::Nftables, Backend::Nft);
}

#[test]
fn nodelocal_steering_with_iptables_nft_beside_kube_proxy_iptables() {
    steering("i", KubeProxy::IptablesNft, Backend::IptablesNft);
}

#[test]
fn nodelocal_steering_with_iptables_legacy_beside_kube_proxy_iptables() {
    steering("l", KubeProxy::IptablesLegacy, Backend::IptablesLegacy);
}
