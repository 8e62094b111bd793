//! The value grammars a Corefile uses (Go durations, `host:port` listen addresses,
//! forward targets, server block keys), read into what the clusterdns config takes.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// A Go duration (`5s`, `1m30s`, `500ms`, `1h`), as CoreDNS's options take them.
pub fn duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration (such as 5s, 500ms, 1m30s)");
    let mut rest = text;
    let mut total = Duration::ZERO;
    if rest.is_empty() {
        return Err(bad());
    }
    // Go takes a bare 0 (and only 0) without a unit.
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(bad()),
        };
        total += Duration::from_secs_f64(number * scale);
        rest = &rest[unit_len..];
    }
    Ok(total)
}

/// Whole seconds of a duration; a fraction is refused rather than rounded away.
pub fn whole_seconds(text: &str) -> Result<u64, String> {
    let d = duration(text)?;
    if d.subsec_nanos() != 0 {
        return Err(format!(
            "{text}: clusterdns takes whole seconds here; write {}s or {}s",
            d.as_secs(),
            d.as_secs() + 1
        ));
    }
    Ok(d.as_secs())
}

/// An HTTP listen address as CoreDNS's `health`, `ready` and `prometheus` write it:
/// `:8080` (every address), `localhost:9153`, `IP:PORT`, `[IPv6]:PORT`.
pub fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(a) = text.parse::<SocketAddr>() {
        return Ok(a);
    }
    let bad =
        || format!("{text:?}: clusterdns needs an IP address and port here (such as 0.0.0.0:9153)");
    let (host, port) = text.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    let ip = match host {
        // Go's ":PORT" listens on every address; 0.0.0.0 as docs/migrating-from-coredns.md.
        "" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        _ => return Err(bad()),
    };
    Ok(SocketAddr::new(ip, port))
}

/// A server block key: `[dns://]ZONE[:PORT]`, the zone `.` when left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockKey {
    pub zone: String,
    pub port: u16,
}

pub fn block_key(text: &str) -> Result<BlockKey, String> {
    let rest = match text.split_once("://") {
        Some(("dns", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{scheme}:// (DNS over TLS, HTTPS or gRPC) is not served by clusterdns: terminate it in front of clusterdns (plain DNS), or keep CoreDNS for it"
            ));
        }
        None => text,
    };
    let (zone, port) = match rest.rsplit_once(':') {
        // An IPv6 reverse CIDR has colons too; a port is digits after the last one.
        Some((zone, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            let port = port
                .parse()
                .map_err(|_| format!("{port} is not a port number"))?;
            (zone, port)
        }
        _ => (rest, 53),
    };
    let zone = if zone.is_empty() { "." } else { zone };
    Ok(BlockKey {
        zone: zone.to_string(),
        port,
    })
}

/// A `forward`/`proxy` target in the form the config's `upstreams` takes: an address
/// (port 53 unless given; `dns://` accepted) or a resolv.conf path.
pub fn upstream(text: &str) -> Result<String, String> {
    if text.starts_with('/') {
        return Ok(text.to_string());
    }
    let rest = match text.split_once("://") {
        Some(("dns", rest)) => rest,
        Some((scheme, _)) => {
            return Err(format!(
                "{text}: {scheme}:// upstreams are not supported (plain DNS only): forward to a local resolver that speaks {scheme} instead"
            ));
        }
        None => text,
    };
    if let Ok(a) = rest.parse::<SocketAddr>() {
        return Ok(a.to_string());
    }
    if let Ok(ip) = rest.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53).to_string());
    }
    Err(format!(
        "{text:?}: an upstream must be an IP address (with an optional port) or a resolv.conf path"
    ))
}

/// A TOML basic string: quotes, backslashes and control characters escaped.
pub fn quoted(text: &str) -> String {
    let mut out = String::from('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A TOML array of string literals.
pub fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    let inner: Vec<String> = items.iter().map(|i| quoted(i.as_ref())).collect();
    format!("[{}]", inner.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(duration("1m30s"), Ok(Duration::from_secs(90)));
        assert_eq!(duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(duration("5").is_err());
        assert_eq!(duration("0"), Ok(Duration::ZERO));
        assert!(duration("s").is_err());
        assert!(duration("").is_err());
        assert!(whole_seconds("1500ms").unwrap_err().contains("1s or 2s"));
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_addr(":9153").unwrap().to_string(), "0.0.0.0:9153");
        assert_eq!(
            listen_addr("localhost:8080").unwrap().to_string(),
            "127.0.0.1:8080"
        );
        assert_eq!(listen_addr("[::1]:8181").unwrap().to_string(), "[::1]:8181");
        assert!(listen_addr("myhost:80").is_err());
        assert!(listen_addr("9153").is_err());
    }

    #[test]
    fn block_keys() {
        let k = |t| block_key(t).unwrap();
        assert_eq!(
            k(".:53"),
            BlockKey {
                zone: ".".into(),
                port: 53
            }
        );
        assert_eq!(k("dns://.:1053").port, 1053);
        assert_eq!(k("cluster.local").zone, "cluster.local");
        assert_eq!(k(":5353").zone, ".");
        assert!(block_key("tls://.:853").unwrap_err().contains("TLS"));
    }

    #[test]
    fn upstreams() {
        assert_eq!(upstream("/etc/resolv.conf").unwrap(), "/etc/resolv.conf");
        assert_eq!(upstream("10.0.0.1").unwrap(), "10.0.0.1:53");
        assert_eq!(upstream("dns://10.0.0.1:5353").unwrap(), "10.0.0.1:5353");
        assert_eq!(upstream("2001:db8::1").unwrap(), "[2001:db8::1]:53");
        assert!(upstream("tls://1.1.1.1").is_err());
        assert!(upstream("dns.google").is_err());
    }

    #[test]
    fn toml_strings_are_escaped() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted("tab\there"), r#""tab\u0009here""#);
        let parsed: toml::Table = toml::from_str(&format!("k = {}", quoted("x\"\\\n"))).unwrap();
        assert_eq!(parsed["k"].as_str(), Some("x\"\\\n"));
    }
}
