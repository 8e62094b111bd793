//! The two keys of the `kube-dns` ConfigMap that node-cache honours, parsed and checked
//! as kube-dns does (`pkg/dns/config`): `stubDomains`, a JSON object of zone → list of
//! nameservers, and `upstreamNameservers`, a JSON list of at most three.
//!
//! A nameserver is an IP address with an optional port (`10.0.0.1`, `10.0.0.1:5353`,
//! `fd00::1`, `[fd00::1]:5353`). Names are refused: node-cache hands the list to CoreDNS's
//! `forward`, which would read a name as a file path and fail the reload.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};

use super::upstream::is_own_address;

/// kube-dns refuses more: resolv.conf semantics allow three nameservers.
pub const MAX_UPSTREAM_NAMESERVERS: usize = 3;

/// What the mode forwards with, from the ConfigMap. The default (both keys absent) means
/// no stub domains and `.` forwarded to the nameservers of `/etc/resolv.conf`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KubeDnsConfig {
    /// Zone (lower case, no trailing dot, e.g. `acme.local`) → its nameservers, in the
    /// ConfigMap's order; each zone has at least one.
    pub stub_domains: BTreeMap<String, Vec<SocketAddr>>,
    /// Nameservers for `.`, at most three; empty means those of `/etc/resolv.conf`.
    pub upstream_nameservers: Vec<SocketAddr>,
}

/// A key of the ConfigMap, which is also a file name in the mounted directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    StubDomains,
    UpstreamNameservers,
}

impl Key {
    pub const ALL: [Key; 2] = [Key::StubDomains, Key::UpstreamNameservers];

    pub fn name(self) -> &'static str {
        match self {
            Key::StubDomains => "stubDomains",
            Key::UpstreamNameservers => "upstreamNameservers",
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where in a key's text a problem is, shown as `:line:column` after the key (nothing
/// when the value could not be found in the text, e.g. written with JSON escapes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct At(pub Option<(usize, usize)>);

impl fmt::Display for At {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((line, column)) => write!(f, ":{line}:{column}"),
            None => Ok(()),
        }
    }
}

/// Why a key's content is refused. The whole ConfigMap is then refused, as kube-dns does:
/// half of an update could route a zone to the wrong place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("{key}:{line}:{column}: not {expected}: {reason}")]
    Json {
        key: Key,
        line: usize,
        column: usize,
        expected: &'static str,
        reason: String,
    },
    #[error("{key}{at}: zone {zone:?} is not a domain name: {reason}")]
    BadZone {
        key: Key,
        at: At,
        zone: String,
        reason: &'static str,
    },
    #[error("{key}{at}: zone {zone:?} lists no nameservers")]
    NoServers { key: Key, at: At, zone: String },
    #[error("{key}{at}: {server:?} is not a nameserver: {reason}")]
    BadServer {
        key: Key,
        at: At,
        server: String,
        reason: &'static str,
    },
    #[error("{key}: {count} nameservers given, at most 3 are allowed (as in resolv.conf)")]
    TooManyNameservers { key: Key, count: usize },
    #[error("{key}{at}: {server} is one of our own listen addresses: forwarding to it would loop")]
    Loop {
        key: Key,
        at: At,
        server: SocketAddr,
    },
}

impl KubeDnsConfig {
    /// Parses the texts of the two keys (`None`: the key is absent). `listen` are the
    /// addresses this process answers on; a nameserver among them is refused as a loop.
    pub fn parse(
        stub_domains: Option<&str>,
        upstream_nameservers: Option<&str>,
        listen: &[SocketAddr],
    ) -> Result<KubeDnsConfig, ContentError> {
        let mut config = KubeDnsConfig::default();
        if let Some(text) = stub_domains {
            let key = Key::StubDomains;
            let zones: Option<BTreeMap<String, Vec<String>>> =
                json(key, text, "an object of zone → list of nameservers")?;
            for (zone, servers) in zones.unwrap_or_default() {
                let at = position(text, &zone);
                if let Err(reason) = check_zone(&zone) {
                    return Err(ContentError::BadZone {
                        key,
                        at,
                        zone,
                        reason,
                    });
                }
                if servers.is_empty() {
                    return Err(ContentError::NoServers { key, at, zone });
                }
                let servers = nameservers(key, text, &servers, listen)?;
                config.stub_domains.insert(zone, servers);
            }
        }
        if let Some(text) = upstream_nameservers {
            let key = Key::UpstreamNameservers;
            let list: Option<Vec<String>> = json(key, text, "a list of nameservers")?;
            let list = list.unwrap_or_default();
            if list.len() > MAX_UPSTREAM_NAMESERVERS {
                return Err(ContentError::TooManyNameservers {
                    key,
                    count: list.len(),
                });
            }
            config.upstream_nameservers = nameservers(key, text, &list, listen)?;
        }
        Ok(config)
    }
}

/// Decodes a key's JSON; `null` reads as empty, as Go's decoder does.
fn json<T: serde::de::DeserializeOwned>(
    key: Key,
    text: &str,
    expected: &'static str,
) -> Result<Option<T>, ContentError> {
    serde_json::from_str(text).map_err(|e| {
        let message = e.to_string();
        // serde_json appends the position, which the error already carries.
        let reason = match message.rsplit_once(" at line ") {
            Some((reason, _)) => reason.to_owned(),
            None => message,
        };
        ContentError::Json {
            key,
            line: e.line(),
            column: e.column(),
            expected,
            reason,
        }
    })
}

fn nameservers(
    key: Key,
    text: &str,
    servers: &[String],
    listen: &[SocketAddr],
) -> Result<Vec<SocketAddr>, ContentError> {
    servers
        .iter()
        .map(|server| {
            let at = position(text, server);
            let address = nameserver(server).map_err(|reason| ContentError::BadServer {
                key,
                at,
                server: server.clone(),
                reason,
            })?;
            if is_own_address(address, listen) {
                return Err(ContentError::Loop {
                    key,
                    at,
                    server: address,
                });
            }
            Ok(address)
        })
        .collect()
}

/// An IP address with an optional port (53 when absent); IPv6 with a port in brackets.
pub fn nameserver(text: &str) -> Result<SocketAddr, &'static str> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(SocketAddr::new(ip, 53));
    }
    match text.parse::<SocketAddr>() {
        Ok(address) if address.port() == 0 => Err("port 0 is not a port to send queries to"),
        Ok(address) => Ok(address),
        Err(_) => match text.rsplit_once(':') {
            Some((host, port))
                if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok()
                    && port.parse::<u16>().is_err() =>
            {
                Err("the port must be a number from 1 to 65535")
            }
            _ => Err(
                "not an IP address with an optional port (names are not resolved; \
                 IPv6 with a port goes in brackets: [fd00::1]:53)",
            ),
        },
    }
}

/// kube-dns's rule for a stub domain (a DNS-1123 subdomain), plus the 63-byte label
/// limit of DNS itself, which no query name can exceed.
fn check_zone(zone: &str) -> Result<(), &'static str> {
    if zone.is_empty() {
        return Err("it is empty");
    }
    if zone.len() > 253 {
        return Err("it is longer than 253 characters");
    }
    if zone.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("upper-case letters are refused (as kube-dns does): write it in lower case");
    }
    for label in zone.split('.') {
        if label.is_empty() {
            return Err("it has an empty label (a leading, trailing or doubled dot)");
        }
        if label.len() > 63 {
            return Err("a label is longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err("only letters, digits, '-' and '.' are allowed");
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("a label must start and end with a letter or a digit");
        }
    }
    Ok(())
}

/// Line and column (1-based, in characters) of a JSON string `value` in `text`.
fn position(text: &str, value: &str) -> At {
    let quoted = format!("\"{value}\"");
    At(text.find(&quoted).map(|at| {
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
        (line, before[line_start..].chars().count() + 1)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn good_content_parses() {
        let cases: [(Option<&str>, Option<&str>, KubeDnsConfig); 6] = [
            (None, None, KubeDnsConfig::default()),
            (Some("{}"), Some("[]"), KubeDnsConfig::default()),
            (Some("null"), Some(" null\n"), KubeDnsConfig::default()),
            (
                Some(r#"{"acme.local": ["1.2.3.4", "1.2.3.5:5353"], "x-1.corp": ["fd00::1"]}"#),
                None,
                KubeDnsConfig {
                    stub_domains: BTreeMap::from([
                        (
                            "acme.local".into(),
                            vec![addr("1.2.3.4:53"), addr("1.2.3.5:5353")],
                        ),
                        ("x-1.corp".into(), vec![addr("[fd00::1]:53")]),
                    ]),
                    upstream_nameservers: vec![],
                },
            ),
            (
                None,
                Some(r#"["8.8.8.8", "[2001:db8::1]:5353", "9.9.9.9:53"]"#),
                KubeDnsConfig {
                    stub_domains: BTreeMap::new(),
                    upstream_nameservers: vec![
                        addr("8.8.8.8:53"),
                        addr("[2001:db8::1]:5353"),
                        addr("9.9.9.9:53"),
                    ],
                },
            ),
            (
                Some("{\n  \"consul\": [\"10.150.0.1\"]\n}\n"),
                Some("[\"10.0.0.53\"]"),
                KubeDnsConfig {
                    stub_domains: BTreeMap::from([("consul".into(), vec![addr("10.150.0.1:53")])]),
                    upstream_nameservers: vec![addr("10.0.0.53:53")],
                },
            ),
        ];
        for (stub, upstream, want) in cases {
            let got = KubeDnsConfig::parse(stub, upstream, &[]);
            assert_eq!(got.as_ref(), Ok(&want), "{stub:?} {upstream:?}");
        }
    }

    #[test]
    fn bad_content_is_refused_with_key_position_and_reason() {
        let listen = [addr("169.254.20.10:53")];
        let cases = [
            (Some(""), None, "stubDomains:1:0: not an object", "EOF"),
            (
                Some("{\"a\": [1.2]}"),
                None,
                "stubDomains:1:",
                "invalid type",
            ),
            (
                Some("[\"1.2.3.4\"]"),
                None,
                "stubDomains:1:",
                "expected a map",
            ),
            (
                None,
                Some("{\"8.8.8.8\": 1}"),
                "upstreamNameservers:1:",
                "sequence",
            ),
            (None, Some("[\"8.8.8.8\""), "upstreamNameservers:1:", "EOF"),
            (
                Some(r#"{"": ["1.2.3.4"]}"#),
                None,
                "stubDomains:1:2: zone",
                "empty",
            ),
            (
                Some(r#"{"Acme.local": ["1.2.3.4"]}"#),
                None,
                "stubDomains:1:2:",
                "lower case",
            ),
            (
                Some(r#"{"acme.local.": ["1.2.3.4"]}"#),
                None,
                "stubDomains:1:2:",
                "empty label",
            ),
            (
                Some(r#"{"$$$$": ["1.2.3.4"]}"#),
                None,
                "stubDomains:1:2:",
                "only letters",
            ),
            (
                Some(r#"{"-a.b": ["1.2.3.4"]}"#),
                None,
                "stubDomains:1:2:",
                "start and end",
            ),
            (
                Some(r#"{"acme.local": []}"#),
                None,
                "stubDomains:1:2:",
                "no nameservers",
            ),
            (
                Some("{\"a\":\n [\"ns.acme.local\"]}"),
                None,
                "stubDomains:2:3: \"ns.acme.local\"",
                "names are not resolved",
            ),
            (
                Some(r#"{"a": ["10.0.0.300"]}"#),
                None,
                "stubDomains:1:8:",
                "not an IP",
            ),
            (
                Some(r#"{"a": ["1.2.3.4:99999"]}"#),
                None,
                "stubDomains:1:8:",
                "1 to 65535",
            ),
            (
                Some(r#"{"a": ["1.2.3.4:0"]}"#),
                None,
                "stubDomains:1:8:",
                "port 0",
            ),
            (
                Some(r#"{"a": ["[fd00::1]"]}"#),
                None,
                "stubDomains:1:8:",
                "brackets",
            ),
            (
                None,
                Some(r#"["1.1.1.1", "2.2.2.2", "3.3.3.3", "4.4.4.4"]"#),
                "upstreamNameservers: 4 nameservers",
                "at most 3",
            ),
            (
                None,
                Some(r#"["1.1.1.1:x"]"#),
                "upstreamNameservers:1:2:",
                "1 to 65535",
            ),
            (
                None,
                Some(r#"["169.254.20.10"]"#),
                "upstreamNameservers:1:2: 169.254.20.10:53",
                "loop",
            ),
            (
                Some(r#"{"a": ["1.2.3.4", "169.254.20.10:53"]}"#),
                None,
                "stubDomains:1:19:",
                "loop",
            ),
        ];
        for (stub, upstream, start, reason) in cases {
            let err = KubeDnsConfig::parse(stub, upstream, &listen)
                .unwrap_err()
                .to_string();
            assert!(err.starts_with(start), "{stub:?} {upstream:?}: {err}");
            assert!(err.contains(reason), "{stub:?} {upstream:?}: {err}");
        }
    }

    #[test]
    fn a_port_elsewhere_is_not_a_loop() {
        let listen = [addr("169.254.20.10:53")];
        let config = KubeDnsConfig::parse(None, Some(r#"["169.254.20.10:5353"]"#), &listen);
        assert_eq!(
            config.unwrap().upstream_nameservers,
            [addr("169.254.20.10:5353")]
        );
    }

    #[test]
    fn zone_limits() {
        let label63 = "a".repeat(63);
        assert_eq!(check_zone(&format!("{label63}.b")), Ok(()));
        assert!(check_zone(&format!("{label63}a.b")).is_err());
        let long = ["abcdefghi"; 26].join(".");
        assert!(long.len() > 253);
        assert!(check_zone(&long).unwrap_err().contains("253"));
    }
}
