//! `kubernetes [ZONES…] { options }` → `[kubernetes]`: the option names are the same.

use super::one_arg;
use crate::corefile::parse::Directive;
use crate::corefile::translate::{BlockConfig, Severity};
use crate::corefile::values::{quoted, quoted_list};

pub(super) fn translate(out: &mut BlockConfig, d: &Directive, block_zones: &[String]) {
    let zones: Vec<String> = if d.args.is_empty() {
        block_zones.to_vec()
    } else {
        d.args.iter().map(|a| a.text.clone()).collect()
    };
    if zones.iter().any(|z| z == ".") {
        out.find(d, "kubernetes", Severity::Unsupported, "it would serve the root zone: name the cluster zones, e.g. `kubernetes cluster.local in-addr.arpa ip6.arpa`");
    } else {
        out.set("kubernetes", "zones", quoted_list(&zones), d.line());
    }
    for o in d.options() {
        option(out, d, o);
    }
    if !out.has("kubernetes", "pods") {
        // clusterdns's own default is "insecure"; CoreDNS's is "disabled".
        out.set_default(
            "kubernetes",
            "pods",
            quoted("disabled"),
            "no `pods` option: CoreDNS's default",
        );
    }
}

fn option(out: &mut BlockConfig, d: &Directive, o: &Directive) {
    let name = o.name.text.as_str();
    let what = format!("kubernetes > {name}");
    let line = o.line();
    let args: Vec<&str> = o.args.iter().map(|a| a.text.as_str()).collect();
    match name {
        "endpoint" => match args.as_slice() {
            [url] => out.set("kubernetes", "endpoint", quoted(url), line),
            _ => out.find(o, what, Severity::Unsupported, "clusterdns talks to one API server: give one URL (or a kubeconfig whose cluster lists the server)"),
        },
        "kubeconfig" => match args.as_slice() {
            [path] => out.set("kubernetes", "kubeconfig", quoted(path), line),
            [path, context] => {
                out.set("kubernetes", "kubeconfig", quoted(path), line);
                out.find(o, what, Severity::Unsupported, format!("clusterdns uses the kubeconfig's current context, not {context:?}: set current-context in the file"));
            }
            _ => out.find(o, what, Severity::Unsupported, "takes KUBECONFIG [CONTEXT]"),
        },
        "tls" => out.find(o, what, Severity::Unsupported, "clusterdns takes client certificates from a kubeconfig: write one naming these files and use `kubeconfig`"),
        "namespaces" => out.set("kubernetes", "namespaces", quoted_list(&args), line),
        "labels" => out.set("kubernetes", "labels", quoted(&args.join(" ")), line),
        "pods" => match args.as_slice() {
            [mode @ ("disabled" | "insecure" | "verified")] => out.set("kubernetes", "pods", quoted(mode), line),
            _ => out.find(o, what, Severity::Unsupported, "takes disabled, insecure or verified"),
        },
        "endpoint_pod_names" => out.set("kubernetes", "endpoint_pod_names", "true".into(), line),
        "ttl" => {
            if let Some(ttl) = one_arg(out, d, o) {
                match ttl.parse::<u32>() {
                    Ok(t) if t <= 3600 => out.set("kubernetes", "ttl", t.to_string(), line),
                    _ => out.find(o, what, Severity::Unsupported, format!("{ttl:?} is not a TTL of 0..=3600 seconds")),
                }
            }
        }
        "fallthrough" => {
            let zones = if args.is_empty() { vec!["."] } else { args };
            out.set("kubernetes", "fallthrough", quoted_list(&zones), line);
        }
        "ignore" => match args.as_slice() {
            ["empty_service"] => out.set("kubernetes", "ignore_empty_service", "true".into(), line),
            _ => out.find(o, what, Severity::Unsupported, "clusterdns knows `ignore empty_service` only"),
        },
        "upstream" => out.find(o, what, Severity::Note, "deprecated: CoreDNS has ignored it since 1.7, and clusterdns needs no upstream to answer cluster names"),
        "resyncperiod" => out.find(o, what, Severity::Note, "deprecated in CoreDNS; clusterdns follows the API's watch events and needs no resync"),
        "noendpoints" => out.find(o, what, Severity::Unsupported, "clusterdns always serves endpoint records (headless services, SRV): remove it"),
        "namespace_labels" => out.find(o, what, Severity::Unsupported, "clusterdns selects namespaces by name only: list them in `namespaces`"),
        "multicluster" => out.find(o, what, Severity::Unsupported, "clusterdns does not serve multi-cluster (MCS) names: keep CoreDNS for the clusterset zone and forward it there with a stub domain"),
        _ => out.find(o, what, Severity::Unsupported, "not an option of `kubernetes` clusterdns knows: remove it"),
    }
}
