//! `hosts [FILE [ZONES…]] { ENTRIES…; ttl; no_reverse; reload; fallthrough [ZONES…] }`
//! → `[hosts]` (`[blocks.hosts]` for a block of its own). As CoreDNS: the file is
//! `/etc/hosts` unless named, the zones are the server block's unless given.

use crate::corefile::parse::Directive;
use crate::corefile::translate::{BlockConfig, Severity};
use crate::corefile::values::{self, quoted, quoted_list};
use crate::hosts::parse_line;

pub(super) fn translate(out: &mut BlockConfig, d: &Directive, zones: &[String]) {
    let line = d.line();
    let (file, origins) = match d.args.split_first() {
        Some((file, rest)) => (
            file.text.as_str(),
            rest.iter().map(|a| a.text.clone()).collect(),
        ),
        None => ("/etc/hosts", Vec::new()),
    };
    if !file.starts_with('/') {
        out.find(d, "hosts", Severity::Warning, format!(
            "{file:?} is relative: clusterdns reads it from the config file's folder, CoreDNS from its `root` (or its working folder): write the full path"));
    }
    out.set("hosts", "file", quoted(file), line);
    let origins = if origins.is_empty() {
        zones.to_vec()
    } else {
        origins
    };
    out.set("hosts", "zones", quoted_list(&origins), line);
    let mut entries = Vec::new();
    for o in d.options() {
        let name = o.name.text.as_str();
        let what = format!("hosts > {name}");
        let args: Vec<&str> = o.args.iter().map(|a| a.text.as_str()).collect();
        match (name, args.as_slice()) {
            ("ttl", [ttl]) => match ttl.parse::<u32>() {
                Ok(t) if (1..=65535).contains(&t) => {
                    out.set("hosts", "ttl", t.to_string(), o.line())
                }
                _ => out.find(
                    o,
                    what,
                    Severity::Unsupported,
                    format!("{ttl:?} is not a TTL of 1 to 65535 seconds"),
                ),
            },
            ("no_reverse", []) => out.set("hosts", "no_reverse", "true".into(), o.line()),
            ("reload", [period]) => match values::duration(period) {
                Ok(p) if p.is_zero() || p.as_millis() >= 10 => {
                    out.set("hosts", "reload_ms", p.as_millis().to_string(), o.line())
                }
                Ok(_) => out.find(
                    o,
                    what,
                    Severity::Unsupported,
                    "clusterdns checks the file at most every 10 ms (0 turns it off)",
                ),
                Err(e) => out.find(o, what, Severity::Unsupported, e),
            },
            ("fallthrough", zones) => {
                let zones: Vec<&str> = if zones.is_empty() {
                    vec!["."]
                } else {
                    zones.to_vec()
                };
                out.set("hosts", "fallthrough", quoted_list(&zones), o.line());
            }
            _ => {
                // Anything else is an inline entry: an address and names.
                let text = std::iter::once(name)
                    .chain(args.iter().copied())
                    .collect::<Vec<_>>()
                    .join(" ");
                match parse_line(&text) {
                    Ok(Some(_)) => entries.push(text),
                    _ => out.find(o, format!("hosts > {name}"), Severity::Unsupported,
                        "neither an option of `hosts` (ttl, no_reverse, reload, fallthrough) nor an entry (an IP address, then names)"),
                }
            }
        }
    }
    if !entries.is_empty() {
        out.set("hosts", "entries", quoted_list(&entries), line);
    }
}
