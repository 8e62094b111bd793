//! One function per CoreDNS plugin clusterdns has an equivalent for; the rest are named
//! here with what to do instead. A plugin missing from both is reported as unknown.

mod cache;
mod forward;
mod hosts;
mod kubernetes;

use super::parse::Directive;
use super::translate::{BlockConfig, Severity};
use super::values::{self, quoted};

/// Translates one directive of a server block listening on `port` for `zones`.
pub(super) fn directive(out: &mut BlockConfig, d: &Directive, port: u16, zones: &[String]) {
    let name = d.name.text.as_str();
    match name {
        "kubernetes" => kubernetes::translate(out, d, zones),
        "forward" => forward::translate(out, d, false, zones),
        "proxy" => forward::translate(out, d, true, zones),
        "hosts" => hosts::translate(out, d, zones),
        "cache" => cache::translate(out, d),
        "health" => health(out, d),
        "ready" => endpoint(out, d, "ready", ":8181"),
        "prometheus" => endpoint(out, d, "metrics", "localhost:9153"),
        "errors" => errors(out, d),
        "log" => log(out, d),
        "bind" => bind(out, d, port),
        "loop" => {
            no_args(out, d);
            out.find(d, name, Severity::Note, "built in: clusterdns probes each loopback upstream at start and never uses one that sends the probe back");
        }
        "reload" => out.find(d, name, Severity::Note, "built in: clusterdns re-reads its config file every 2 s and on SIGHUP, keeping the last good one"),
        "loadbalance" => loadbalance(out, d),
        "debug" => out.find(d, name, Severity::Note, "nothing to turn on: clusterdns never hides a panic; run it with RUST_LOG=debug for more logs"),
        "pprof" => out.find(d, name, Severity::Warning, "clusterdns has no profiling endpoint: profile the process with perf instead"),
        "root" => out.find(d, name, Severity::Note, "clusterdns reads no zone files: the root folder is not needed"),
        _ => unsupported(out, d),
    }
}

/// Plugins clusterdns does not have, with what to do instead.
fn unsupported(out: &mut BlockConfig, d: &Directive) {
    let name = d.name.text.as_str();
    let advice = match name {
        "rewrite" => {
            "clusterdns does not rewrite names: create an ExternalName Service for each old name, or keep the rewrite in a resolver reached through a stub domain"
        }
        "autopath" => {
            "clusterdns does not shorten search paths: remove it; clients still resolve every name, with the extra queries of their search list"
        }
        "federation" => "Kubernetes federation v1 is retired: remove it",
        "template" | "file" | "auto" | "secondary" | "etcd" | "route53" | "azure" | "clouddns" => {
            "clusterdns serves no zone but the cluster's: keep the zone on another server and forward it there with a `[forward.stub_domains]` entry"
        }
        "k8s_external" => {
            "clusterdns does not publish LoadBalancer or external IPs in an external zone: serve that zone with another server (e.g. external-dns) and forward it with a stub domain"
        }
        "dnssec" | "sign" => {
            "clusterdns does not sign answers: remove it (cluster zones are not signed by kubeadm's CoreDNS either)"
        }
        "acl" => {
            "clusterdns has no per-client policy: restrict who reaches it with a NetworkPolicy"
        }
        "dns64" => {
            "clusterdns does not synthesise AAAA records: run a DNS64 resolver upstream and forward to it"
        }
        "whoami" | "chaos" | "nsid" | "any" | "minimal" | "header" | "view" | "metadata"
        | "trace" | "transfer" | "local" | "timeouts" | "tls" | "grpc" | "cancel" | "erratic"
        | "geoip" | "multisocket" | "on" => {
            "clusterdns has no equivalent: remove it, or keep CoreDNS for what needs it"
        }
        "import" => "paste the imported file's directives here",
        _ => "not a plugin clusterdns knows: remove it, or keep CoreDNS for what needs it",
    };
    out.find(d, name, Severity::Unsupported, advice);
}

/// `loadbalance [round_robin]`: a stage of the chain (no key of its own).
fn loadbalance(out: &mut BlockConfig, d: &Directive) {
    no_options(out, d);
    match d.args.as_slice() {
        [] => {}
        [policy] if policy.text == "round_robin" => {}
        [policy, ..] => out.find(
            d,
            "loadbalance",
            Severity::Unsupported,
            format!(
                "clusterdns rotates addresses round robin, not {:?}: write `loadbalance` alone",
                policy.text
            ),
        ),
    }
}

/// Reports arguments a directive does not take (they would otherwise vanish).
pub(super) fn no_args(out: &mut BlockConfig, d: &Directive) {
    if let Some(a) = d.args.first() {
        out.find(
            d,
            &d.name.text,
            Severity::Unsupported,
            format!("unexpected argument {:?}", a.text),
        );
    }
}

/// Reports every option of a directive that takes none.
fn no_options(out: &mut BlockConfig, d: &Directive) {
    for o in d.options() {
        out.find(
            o,
            format!("{} > {}", d.name.text, o.name.text),
            Severity::Unsupported,
            "not an option clusterdns knows for this directive: remove it",
        );
    }
}

/// The one argument of an option, or a finding and `None`.
pub(super) fn one_arg<'a>(
    out: &mut BlockConfig,
    parent: &Directive,
    o: &'a Directive,
) -> Option<&'a str> {
    if let [a] = o.args.as_slice() {
        return Some(&a.text);
    }
    out.find(
        o,
        format!("{} > {}", parent.name.text, o.name.text),
        Severity::Unsupported,
        format!("takes one argument, not {}", o.args.len()),
    );
    None
}

/// `health [ADDR] { lameduck DURATION }`.
fn health(out: &mut BlockConfig, d: &Directive) {
    endpoint(out, d, "health", ":8080");
    for o in d.options() {
        let what = format!("health > {}", o.name.text);
        match o.name.text.as_str() {
            "lameduck" => {
                let Some(arg) = one_arg(out, d, o) else {
                    continue;
                };
                match values::whole_seconds(arg) {
                    Ok(s) => out.set("health", "lameduck", s.to_string(), o.line()),
                    Err(e) => out.find(o, what, Severity::Unsupported, e),
                }
            }
            _ => out.find(
                o,
                what,
                Severity::Unsupported,
                "not an option of `health` clusterdns knows: remove it",
            ),
        }
    }
}

/// `health`, `ready`, `prometheus`: an HTTP endpoint's address (`default` when none).
fn endpoint(out: &mut BlockConfig, d: &Directive, section: &'static str, default: &str) {
    if d.name.text != "health" {
        no_options(out, d);
    }
    let addr = match d.args.as_slice() {
        [] => default,
        [a] => a.text.as_str(),
        [_, extra, ..] => {
            out.find(
                d,
                &d.name.text,
                Severity::Unsupported,
                format!(
                    "clusterdns serves it on one address; {:?} is not used: keep one",
                    extra.text
                ),
            );
            d.args[0].text.as_str()
        }
    };
    match values::listen_addr(addr) {
        Ok(a) => out.set(section, "listen", quoted(&a.to_string()), d.line()),
        Err(e) => out.find(d, &d.name.text, Severity::Unsupported, e),
    }
}

/// `errors [FILE] { consolidate DURATION REGEXP [LEVEL] }`.
fn errors(out: &mut BlockConfig, d: &Directive) {
    if d.args.iter().any(|a| a.text != "stdout") {
        out.find(
            d,
            "errors",
            Severity::Warning,
            "clusterdns logs errors to stderr, not to a file",
        );
    }
    if d.options().is_empty() {
        out.find(
            d,
            "errors",
            Severity::Note,
            "built in: clusterdns always logs errors, repeated ones gathered per [log] consolidate",
        );
    }
    for o in d.options() {
        let what = format!("errors > {}", o.name.text);
        match (o.name.text.as_str(), o.args.as_slice()) {
            ("consolidate", [period, pattern, ..]) => match values::whole_seconds(&period.text) {
                Ok(s) => {
                    out.set("log", "consolidate", s.to_string(), o.line());
                    out.find(o, what, Severity::Warning, format!("clusterdns gathers every repeated error over {s} s, not only those matching {:?}", pattern.text));
                }
                Err(e) => out.find(o, what, Severity::Unsupported, e),
            },
            ("stacktrace", []) => out.find(o, what, Severity::Note, "clusterdns does not recover from panics, so there is no stack trace to log: a panic ends the process"),
            _ => out.find(o, what, Severity::Unsupported, "not an option of `errors` clusterdns knows: remove it"),
        }
    }
}

/// `log`: the query log. Only the whole log in CoreDNS's common format is kept.
fn log(out: &mut BlockConfig, d: &Directive) {
    out.set("log", "queries", "true".into(), d.line());
    if !d.args.is_empty() || !d.options().is_empty() {
        out.find(d, "log", Severity::Warning, "clusterdns logs every query in CoreDNS's common format (or as fields: [log] query_format); names, formats and classes given to `log` are not kept");
    }
}

/// `bind ADDR…`: the addresses DNS listens on, at the block's port.
fn bind(out: &mut BlockConfig, d: &Directive, port: u16) {
    no_options(out, d);
    let mut listen = Vec::new();
    for a in &d.args {
        match a.text.parse::<std::net::IpAddr>() {
            Ok(ip) => listen.push(std::net::SocketAddr::new(ip, port).to_string()),
            Err(_) => out.find(d, "bind", Severity::Unsupported, format!("{:?} is not an IP address: clusterdns binds addresses, not interfaces; list the interface's addresses", a.text)),
        }
    }
    if listen.is_empty() {
        out.find(
            d,
            "bind",
            Severity::Unsupported,
            "bind without an address: give at least one",
        );
        return;
    }
    out.set("", "listen", values::quoted_list(&listen), d.line());
}
