//! A parsed Corefile to clusterdns TOML. One server block becomes one set of config
//! sections ([`BlockConfig`]); every directive and option either sets keys (each
//! remembering its Corefile line), or leaves a [`Finding`] saying what became of it.
//!
//! Today's config serves one block; a Corefile with more is refused at its second block,
//! with what to do by hand. Each block is still translated on its own, so once the config
//! has server blocks, rendering several is a loop over [`translate_block`].

use std::fmt;

use super::parse::{Corefile, Directive, ServerBlock};
use super::plugins;
use super::values::{self, quoted_list};

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Built in or deprecated: clusterdns behaves the same without a key.
    Note,
    /// Translated, but clusterdns behaves a little differently; the import goes on.
    Warning,
    /// Cannot be honoured: the import stops unless `--lenient`.
    Unsupported,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Note => "note",
            Severity::Warning => "warning",
            Severity::Unsupported => "not supported",
        })
    }
}

/// What became of one directive or option that set no key as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub file: String,
    pub line: usize,
    pub column: usize,
    /// The directive (and option) it is about, e.g. `cache > prefetch`.
    pub what: String,
    pub severity: Severity,
    /// What clusterdns does instead, or what to do.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {} ({}): {}",
            self.file, self.line, self.column, self.what, self.severity, self.message
        )
    }
}

/// The TOML written and what was noted on the way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    pub toml: String,
    pub findings: Vec<Finding>,
}

/// The config sections, in the order they are written.
pub(super) const SECTIONS: [&str; 10] = [
    "",
    "kubernetes",
    "source",
    "forward",
    "forward.stub_domains",
    "cache",
    "health",
    "ready",
    "metrics",
    "log",
];

/// One key as it will be written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    section: &'static str,
    key: String,
    /// TOML text of the value.
    value: String,
    /// The Corefile line it comes from; 0 for a key written because a directive is absent.
    line: usize,
    why: Option<String>,
}

/// One server block's config, and what its translation noted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockConfig {
    entries: Vec<Entry>,
    pub findings: Vec<Finding>,
    file: String,
}

impl BlockConfig {
    fn new(file: &str) -> Self {
        BlockConfig {
            entries: Vec::new(),
            findings: Vec::new(),
            file: file.to_string(),
        }
    }

    /// Sets a key (a later directive replaces an earlier one's value).
    pub(super) fn set(&mut self, section: &'static str, key: &str, value: String, line: usize) {
        self.entries
            .retain(|e| !(e.section == section && e.key == key));
        self.entries.push(Entry {
            section,
            key: key.to_string(),
            value,
            line,
            why: None,
        });
    }

    /// Sets a key that stands for a directive the Corefile lacks, saying why.
    pub(super) fn set_default(
        &mut self,
        section: &'static str,
        key: &str,
        value: String,
        why: &str,
    ) {
        self.set(section, key, value, 0);
        if let Some(e) = self.entries.last_mut() {
            e.why = Some(why.to_string());
        }
    }

    pub(super) fn has(&self, section: &str, key: &str) -> bool {
        self.entries
            .iter()
            .any(|e| e.section == section && e.key == key)
    }

    pub(super) fn find(
        &mut self,
        at: &Directive,
        what: impl Into<String>,
        severity: Severity,
        message: impl Into<String>,
    ) {
        self.findings.push(Finding {
            file: self.file.clone(),
            line: at.name.line,
            column: at.name.column,
            what: what.into(),
            severity,
            message: message.into(),
        });
    }
}

/// Translates a Corefile; `file` names it in findings. Refuses (an `Unsupported` finding
/// at the second block) what today's single-block config cannot hold.
pub fn translate(corefile: &Corefile, file: &str) -> Translation {
    let mut block = translate_block(&corefile.blocks[0], file);
    for extra in &corefile.blocks[1..] {
        let keys: Vec<&str> = extra.keys.iter().map(|k| k.text.as_str()).collect();
        block.findings.push(Finding {
            file: file.to_string(),
            line: extra.line(),
            column: extra.keys[0].column,
            what: format!("server block {}", keys.join(" ")),
            severity: Severity::Unsupported,
            message: "one clusterdns config serves one server block (one set of listen addresses and plugins); this import translates only the first. Translate this block by hand: a block that only forwards a zone is a `[forward.stub_domains]` entry of the first; a block with its own `bind` addresses or plugins needs a clusterdns instance of its own (for NodeLocal DNSCache, see docs/nodelocal)".into(),
        });
    }
    let toml = render(&block, file);
    let mut findings = block.findings;
    findings.sort_by_key(|f| (f.line, f.column));
    Translation { toml, findings }
}

/// Translates one server block on its own.
pub fn translate_block(block: &ServerBlock, file: &str) -> BlockConfig {
    let mut out = BlockConfig::new(file);
    let mut port = None;
    let mut zones = Vec::new();
    for key in &block.keys {
        let at = Directive {
            name: key.clone(),
            args: Vec::new(),
            block: None,
        };
        match values::block_key(&key.text) {
            Ok(k) => {
                if port.is_some_and(|p| p != k.port) {
                    out.find(&at, "server block key", Severity::Unsupported,
                        "the keys of one block name different ports: clusterdns answers every port it listens on alike; split the block by hand");
                }
                port = Some(k.port);
                if k.zone != "." {
                    out.find(&at, format!("server block zone {}", k.zone), Severity::Unsupported,
                        "clusterdns answers every name on its addresses (cluster zones from [kubernetes], the rest forwarded); it has no server limited to a zone. Write the block as `.` if the plugins below already limit themselves to their zones");
                }
                zones.push(k.zone);
            }
            Err(e) => out.find(&at, "server block key", Severity::Unsupported, e),
        }
    }
    let port = port.unwrap_or(53);
    out.set(
        "",
        "listen",
        quoted_list(&[format!("0.0.0.0:{port}"), format!("[::]:{port}")]),
        block.line(),
    );
    let mut seen: Vec<&str> = Vec::new();
    for d in &block.directives {
        let name = d.name.text.as_str();
        // `forward` may appear once per zone; every other plugin once per block.
        if name != "forward" && seen.contains(&name) {
            out.find(
                d,
                name,
                Severity::Unsupported,
                "given a second time in this block (CoreDNS refuses that too): keep one",
            );
            continue;
        }
        seen.push(name);
        plugins::directive(&mut out, d, port, &zones);
    }
    absent_directives(&mut out, block);
    out
}

/// What clusterdns would do by default where the Corefile has no directive, set to what
/// CoreDNS does without it.
fn absent_directives(out: &mut BlockConfig, block: &ServerBlock) {
    let has = |name: &str| block.directives.iter().any(|d| d.name.text == name);
    for (name, section) in [
        ("health", "health"),
        ("ready", "ready"),
        ("prometheus", "metrics"),
    ] {
        if !has(name) {
            out.set_default(
                section,
                "listen",
                values::quoted(""),
                &format!("no `{name}` in the Corefile: off"),
            );
        }
    }
    if !has("forward") && !has("proxy") {
        out.set_default(
            "forward",
            "upstreams",
            "[]".into(),
            "no `forward` in the Corefile: names outside the cluster zones are refused",
        );
    }
    if !has("kubernetes") {
        out.findings.push(Finding {
            file: out.file.clone(),
            line: block.line(),
            column: 1,
            what: "server block".into(),
            severity: Severity::Unsupported,
            message: "it has no `kubernetes` directive: clusterdns always serves a cluster zone. For a caching forwarder in front of the cluster DNS, use clusterdns's NodeLocal mode instead".into(),
        });
    }
    if !has("cache") {
        out.findings.push(Finding {
            file: out.file.clone(),
            line: block.line(),
            column: 1,
            what: "cache".into(),
            severity: Severity::Warning,
            message: "no `cache` in the Corefile, but clusterdns always caches forwarded answers (it cannot be turned off); [cache] capacity sets its size".into(),
        });
        out.set_default(
            "cache",
            "prefetch",
            "0".into(),
            "CoreDNS prefetches nothing without `cache`",
        );
        out.set_default(
            "cache",
            "serve_stale",
            "0".into(),
            "CoreDNS serves nothing stale without `cache`",
        );
    }
}

/// The TOML text: a header naming every finding, then each section's keys, each with
/// the Corefile line it comes from.
fn render(block: &BlockConfig, file: &str) -> String {
    let file = one_line(file);
    let mut text = format!(
        "# clusterdns configuration translated from {file} by `clusterdns import-corefile`.\n# Each key names the Corefile line it comes from.\n"
    );
    if !block.findings.is_empty() {
        text.push_str("#\n# What did not become a key:\n");
        let mut findings = block.findings.clone();
        findings.sort_by_key(|f| (f.line, f.column));
        for f in &findings {
            let mark = if f.severity == Severity::Unsupported {
                "NOT TRANSLATED: "
            } else {
                ""
            };
            text.push_str(&format!(
                "#   line {}: {mark}{} ({}): {}\n",
                f.line,
                one_line(&f.what),
                f.severity,
                one_line(&f.message)
            ));
        }
    }
    for section in SECTIONS {
        let entries: Vec<&Entry> = block
            .entries
            .iter()
            .filter(|e| e.section == section)
            .collect();
        if section == "source" {
            text.push_str("\n[source]\n# No file: the zone comes from the Kubernetes API (in a pod, its service account),\n# as CoreDNS's `kubernetes` plugin reads it.\n");
            continue;
        }
        if entries.is_empty() {
            continue;
        }
        if !section.is_empty() {
            text.push_str(&format!("\n[{section}]\n"));
        }
        for e in entries {
            let comment = match (&e.why, e.line) {
                (Some(why), _) => why.clone(),
                (None, line) => format!("{file}:{line}"),
            };
            let comment = one_line(&comment);
            text.push_str(&format!("{} = {}  # {comment}\n", e.key, e.value));
        }
    }
    text
}

/// Text for a TOML comment: a quoted Corefile word may hold a line break, which would
/// otherwise end the comment and put the rest of the word into the config as TOML.
fn one_line(text: &str) -> String {
    text.replace(|c: char| c.is_control(), " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Upstream};
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
        let lines: Vec<(usize, &str)> =
            findings.iter().map(|f| (f.line, f.what.as_str())).collect();
        assert_eq!(
            lines,
            [
                (2, "errors"),
                (20, "loop"),
                (21, "reload"),
                (22, "loadbalance")
            ]
        );
    }

    #[test]
    fn absent_directives_become_what_coredns_does_without_them() {
        let (c, findings) =
            translated(".:1053 {\n  kubernetes cluster.local\n  forward . 10.0.0.1\n}\n");
        let c = c.unwrap();
        assert_eq!(c.listen[0].port(), 1053);
        assert_eq!(c.kubernetes.pods, PodMode::Disabled);
        assert_eq!(c.kubernetes.ttl, 5);
        assert_eq!(
            (c.health.listen, c.ready.listen, c.metrics.listen),
            (None, None, None)
        );
        assert_eq!((c.cache.prefetch, c.cache.serve_stale), (0, 0));
        assert!(
            findings
                .iter()
                .any(|f| f.what == "cache" && f.severity == Severity::Warning)
        );
        let (c, _) = translated(".:53 {\n  kubernetes cluster.local\n  cache\n  prometheus\n}\n");
        let c = c.unwrap();
        assert!(c.forward.upstreams.is_empty());
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
            "  hosts {\n    10.0.0.9 db.example\n    fallthrough\n  }\n",
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
                (2, "hosts"),
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
        let hosts = findings.iter().find(|f| f.what == "hosts").unwrap();
        assert_eq!(hosts.to_string().split(": ").next(), Some("Corefile:2:3"));
        assert!(hosts.message.contains("ExternalName"), "{}", hosts.message);
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
    fn a_second_server_block_is_refused_at_its_line() {
        let (_, findings) = translated(concat!(
            ".:53 {\n  kubernetes cluster.local\n  cache 30\n  forward . /etc/resolv.conf\n}\n",
            "\n",
            "consul.local:53 {\n  forward . 10.150.0.1\n}\n",
        ));
        let refused = unsupported(&findings);
        assert_eq!(refused, [(7, "server block consul.local:53")]);
        let message = &findings.iter().find(|f| f.line == 7).unwrap().message;
        assert!(message.contains("[forward.stub_domains]"), "{message}");
    }
}
