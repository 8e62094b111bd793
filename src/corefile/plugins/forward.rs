//! `forward FROM TO… { options }` (and the old `proxy`, removed in CoreDNS 1.6) →
//! `[forward]`: `.` in a `.` server block sets the upstreams; any other zone, and `.` in
//! a server block of other zones (`example.com:53 { forward . … }`), a stub domain.

use crate::corefile::parse::Directive;
use crate::corefile::translate::{BlockConfig, Severity};
use crate::corefile::values::{self, quoted, quoted_list};

pub(super) fn translate(out: &mut BlockConfig, d: &Directive, proxy: bool, block_zones: &[String]) {
    let name = d.name.text.as_str();
    if proxy {
        out.find(
            d,
            name,
            Severity::Note,
            "`proxy` was removed in CoreDNS 1.6: translated as `forward`",
        );
    }
    let [from, targets @ ..] = d.args.as_slice() else {
        out.find(
            d,
            name,
            Severity::Unsupported,
            "takes FROM TO…: the zone and its upstreams",
        );
        return;
    };
    if targets.is_empty() {
        out.find(
            d,
            name,
            Severity::Unsupported,
            "no upstream after the zone: give at least one",
        );
        return;
    }
    let mut upstreams = Vec::new();
    for t in targets {
        match values::upstream(&t.text) {
            Ok(u) => upstreams.push(u),
            Err(e) => out.find(d, name, Severity::Unsupported, e),
        }
    }
    // `.` means the server block's own zones, which are the root only in a `.` block.
    let stubs: Vec<&str> = match from.text.as_str() {
        "." if block_zones.iter().any(|z| z == ".") || block_zones.is_empty() => Vec::new(),
        "." => block_zones.iter().map(String::as_str).collect(),
        zone => vec![zone],
    };
    if !stubs.is_empty() {
        for zone in &stubs {
            out.set(
                "forward.stub_domains",
                &quoted(zone),
                quoted_list(&upstreams),
                d.line(),
            );
        }
        // clusterdns's [forward] options are shared by every zone of the block.
        for o in d.options() {
            if proxy {
                proxy_option(out, o);
            } else {
                option(out, o);
            }
            out.find(o, format!("{name} {} > {}", stubs.join(" "), o.name.text), Severity::Warning,
                "clusterdns keeps one set of forward options per block: this one also applies to the other zones the block forwards (`.` too)");
        }
        return;
    }
    out.set("forward", "upstreams", quoted_list(&upstreams), d.line());
    for o in d.options() {
        if proxy {
            proxy_option(out, o);
        } else {
            option(out, o);
        }
    }
}

fn option(out: &mut BlockConfig, o: &Directive) {
    let name = o.name.text.as_str();
    let what = format!("forward > {name}");
    let line = o.line();
    let args: Vec<&str> = o.args.iter().map(|a| a.text.as_str()).collect();
    match (name, args.as_slice()) {
        ("force_tcp", []) => out.set("forward", "force_tcp", "true".into(), line),
        ("prefer_udp", []) => out.set("forward", "prefer_udp", "true".into(), line),
        ("policy", [p @ ("random" | "round_robin" | "sequential")]) => out.set("forward", "policy", quoted(p), line),
        ("max_fails", [n]) => match n.parse::<u32>() {
            Ok(n) => out.set("forward", "max_fails", n.to_string(), line),
            Err(_) => out.find(o, what, Severity::Unsupported, format!("{n:?} is not a count")),
        },
        ("max_concurrent", [n]) => match n.parse::<usize>() {
            Ok(n) if n > 0 => out.set("forward", "max_concurrent", n.to_string(), line),
            _ => out.find(o, what, Severity::Unsupported, format!("{n:?} is not a count of at least 1")),
        },
        ("health_check", [period, rest @ ..]) => {
            match values::duration(period) {
                Ok(p) if p.as_millis() >= 10 => out.set("forward", "health_check_ms", p.as_millis().to_string(), line),
                Ok(_) => out.find(o, what.clone(), Severity::Unsupported, "clusterdns probes at most every 10 ms"),
                Err(e) => out.find(o, what.clone(), Severity::Unsupported, e),
            }
            if !rest.is_empty() {
                out.find(o, what, Severity::Warning, "clusterdns probes a down upstream with a query of its own: `no_rec` and `domain` are not kept");
            }
        }
        ("expire", [_]) => out.find(o, what, Severity::Note, "clusterdns has no setting for how long upstream connections are reused: not kept"),
        ("except", _) => out.find(o, what, Severity::Unsupported, "clusterdns has no exceptions to forwarding: send those zones elsewhere with `[forward.stub_domains]` entries instead"),
        ("tls" | "tls_servername", _) => out.find(o, what, Severity::Unsupported, "clusterdns forwards plain DNS only: forward to a local resolver that speaks DNS over TLS"),
        ("next", _) => out.find(o, what, Severity::Unsupported, "clusterdns has no plugin after `forward` to hand answers on to: remove it"),
        ("failfast_all_unhealthy_upstreams", []) => out.find(o, what, Severity::Unsupported, "clusterdns tries a down upstream when every one is down: remove it"),
        _ => out.find(o, what, Severity::Unsupported, "not an option of `forward` clusterdns knows (or not with these arguments): remove it"),
    }
}

/// The old `proxy` plugin's options that have a `forward` counterpart.
fn proxy_option(out: &mut BlockConfig, o: &Directive) {
    let name = o.name.text.as_str();
    let what = format!("proxy > {name}");
    let args: Vec<&str> = o.args.iter().map(|a| a.text.as_str()).collect();
    match (name, args.as_slice()) {
        ("policy", [p @ ("random" | "round_robin" | "sequential")]) => out.set("forward", "policy", quoted(p), o.line()),
        ("policy", [p]) => out.find(o, what, Severity::Unsupported, format!("clusterdns has random, round_robin and sequential, not {p:?}")),
        ("max_fails", [_]) => option(out, o),
        ("fail_timeout" | "health_check" | "spray" | "protocol" | "except", _) => out.find(o, what, Severity::Unsupported,
            "no counterpart in `forward` or clusterdns: remove it (clusterdns marks an upstream down after [forward] max_fails failures and probes it every health_check_ms)"),
        _ => out.find(o, what, Severity::Unsupported, "not an option of `proxy` clusterdns knows: remove it"),
    }
}
