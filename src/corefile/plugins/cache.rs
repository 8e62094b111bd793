//! `cache [TTL] [ZONES…] { options }` → `[cache]`. CoreDNS's TTL caps positive and
//! negative answers alike; prefetch and serve_stale are off unless asked for (clusterdns
//! turns both on by default, so they are written out).

use crate::corefile::parse::Directive;
use crate::corefile::translate::{BlockConfig, Severity};
use crate::corefile::values::{self, quoted_list};

/// CoreDNS's default least TTL of a cached answer, positive and negative.
const COREDNS_MIN_TTL: u64 = 5;

pub(super) fn translate(out: &mut BlockConfig, d: &Directive) {
    let line = d.line();
    out.set("cache", "prefetch", "0".into(), line);
    out.set("cache", "serve_stale", "0".into(), line);
    let mut args = d.args.iter();
    if let Some(first) = d.args.first()
        && let Ok(ttl) = first.text.parse::<u64>()
    {
        args.next();
        out.set("cache", "success_cap", ttl.to_string(), line);
        out.set("cache", "denial_cap", ttl.to_string(), line);
        // CoreDNS lowers its least TTL to the cap when the cap is smaller.
        out.set(
            "cache",
            "min_ttl",
            ttl.min(COREDNS_MIN_TTL).to_string(),
            line,
        );
    }
    let zones: Vec<&str> = args.map(|a| a.text.as_str()).collect();
    if !zones.is_empty() && zones != ["."] {
        out.find(d, "cache", Severity::Unsupported, format!(
            "clusterdns caches every forwarded name, not only {}: remove the zones, and list zones never to cache in a `disable success` / `disable denial` option",
            zones.join(" ")));
    }
    let (mut no_success, mut no_denial) = (Vec::new(), Vec::new());
    let mut capacities = Vec::new();
    for o in d.options() {
        let name = o.name.text.as_str();
        let what = format!("cache > {name}");
        let args: Vec<&str> = o.args.iter().map(|a| a.text.as_str()).collect();
        match (name, args.as_slice()) {
            ("success" | "denial", [capacity, rest @ ..]) if rest.len() <= 2 => {
                let cap_key = if name == "success" { "success_cap" } else { "denial_cap" };
                let numbers: Result<Vec<u64>, _> =
                    std::iter::once(capacity).chain(rest).map(|n| n.parse::<u64>()).collect();
                let Ok(numbers) = numbers else {
                    out.find(o, what, Severity::Unsupported, "takes CAPACITY [TTL [MINTTL]], whole numbers");
                    continue;
                };
                capacities.push((numbers[0], o));
                if let Some(ttl) = numbers.get(1) {
                    out.set("cache", cap_key, ttl.to_string(), o.line());
                }
                if let Some(min) = numbers.get(2) {
                    out.set("cache", "min_ttl", min.to_string(), o.line());
                    out.find(o, what, Severity::Warning, "clusterdns has one least TTL for positive and negative answers: the last one given is used for both");
                }
            }
            ("prefetch", [amount, rest @ ..]) => {
                match amount.parse::<u32>() {
                    Ok(n) => out.set("cache", "prefetch", n.to_string(), o.line()),
                    Err(_) => out.find(o, what.clone(), Severity::Unsupported, format!("{amount:?} is not a count")),
                }
                for r in rest {
                    if let Some(pct) = r.strip_suffix('%') {
                        match pct.parse::<u32>() {
                            Ok(p) if p <= 100 => out.set("cache", "prefetch_percent", p.to_string(), o.line()),
                            _ => out.find(o, what.clone(), Severity::Unsupported, format!("{r:?} is not a percentage")),
                        }
                    } else {
                        out.find(o, what.clone(), Severity::Warning, format!("clusterdns counts the hits over an entry's whole life, not within {r}"));
                    }
                }
            }
            ("serve_stale", rest) if rest.len() <= 2 => {
                let secs = match rest.first() {
                    None => Ok(3600),
                    Some(d) => values::whole_seconds(d),
                };
                match secs {
                    Ok(s) => out.set("cache", "serve_stale", s.to_string(), o.line()),
                    Err(e) => out.find(o, what.clone(), Severity::Unsupported, e),
                }
                if rest.get(1) != Some(&"verify") {
                    out.find(o, what, Severity::Warning, "clusterdns serves a stale answer only once every upstream has failed (CoreDNS's `verify` mode), not at once");
                }
            }
            ("servfail", [d]) => match values::whole_seconds(d) {
                Ok(s) if s <= 5 => out.set("cache", "servfail_ttl", s.to_string(), o.line()),
                Ok(s) => out.find(o, what, Severity::Unsupported, format!("{s} s: clusterdns caches SERVFAIL for 5 s at most (RFC 2308 §7.1); write 5s or less")),
                Err(e) => out.find(o, what, Severity::Unsupported, e),
            },
            ("disable", [kind @ ("success" | "denial"), zones @ ..]) => {
                let list = if *kind == "success" { &mut no_success } else { &mut no_denial };
                if zones.is_empty() {
                    list.push(".");
                } else {
                    list.extend(zones.iter().copied());
                }
            }
            _ => {
                if name == "keepttl" {
                    out.find(o, what, Severity::Unsupported, "clusterdns counts cached TTLs down: remove it");
                } else {
                    out.find(o, what, Severity::Unsupported, "not an option of `cache` clusterdns knows (or not with these arguments): remove it");
                }
                continue;
            }
        }
    }
    if !no_success.is_empty() {
        out.set("cache", "no_success", quoted_list(&no_success), line);
    }
    if !no_denial.is_empty() {
        out.set("cache", "no_denial", quoted_list(&no_denial), line);
    }
    // CoreDNS keeps two caches; clusterdns one for both, sized for the larger.
    if let Some((max, _)) = capacities.iter().max_by_key(|(c, _)| *c) {
        out.set("cache", "capacity", max.max(&1).to_string(), line);
        if let [(a, o), (b, _)] = capacities.as_slice()
            && a != b
        {
            out.find(
                o,
                "cache > success/denial",
                Severity::Warning,
                "clusterdns has one capacity for positive and negative answers: the larger is used",
            );
        }
    }
}
