//! Where the cluster zone is forwarded: the `kube-dns-upstream` Service, whose ClusterIP
//! kubelet hands to the pod as `KUBE_DNS_UPSTREAM_SERVICE_HOST` (node-cache's
//! `-upstreamsvc`), and the check that no upstream is one of our own listen addresses.
//!
//! The Service exists because the kube-dns ClusterIP itself is ours while the cache is
//! bound; forwarding to it, or to any address we answer on, would send queries in a circle.

use std::net::{IpAddr, SocketAddr};

/// node-cache's default for `-upstreamsvc`.
pub const DEFAULT_UPSTREAM_SERVICE: &str = "kube-dns-upstream";

/// The environment variables kubelet sets for a Service that existed when the pod started
/// (`enableServiceLinks`): `<NAME>_SERVICE_HOST` and `<NAME>_SERVICE_PORT`, the name in
/// upper case with `-` as `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceEnv {
    pub host: String,
    pub port: String,
}

impl ServiceEnv {
    pub fn for_service(service: &str) -> ServiceEnv {
        let prefix = service.replace('-', "_").to_ascii_uppercase();
        ServiceEnv {
            host: format!("{prefix}_SERVICE_HOST"),
            port: format!("{prefix}_SERVICE_PORT"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClusterUpstreamError {
    #[error(
        "no cluster DNS upstream: give one in the config, or create the {service} Service \
         before this pod starts so that kubelet sets {host_var}"
    )]
    Missing { service: String, host_var: String },
    #[error("{var}={value:?} is not an IP address")]
    BadHost { var: String, value: String },
    #[error("{var}={value:?} is not a port (1 to 65535)")]
    BadPort { var: String, value: String },
}

/// The cluster DNS to forward the cluster and reverse zones to: `configured` when given,
/// else the Service's environment variables (port 53 when the port variable is absent).
/// `env` reads a variable (`|name| std::env::var(name).ok()` in the process); calling
/// this again on reload re-reads it.
pub fn cluster_dns_upstream(
    configured: Option<SocketAddr>,
    service: &str,
    env: impl Fn(&str) -> Option<String>,
) -> Result<SocketAddr, ClusterUpstreamError> {
    if let Some(address) = configured {
        return Ok(address);
    }
    let vars = ServiceEnv::for_service(service);
    let read = |var: &str| {
        env(var)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let Some(host) = read(&vars.host) else {
        return Err(ClusterUpstreamError::Missing {
            service: service.to_owned(),
            host_var: vars.host,
        });
    };
    let ip: IpAddr = host.parse().map_err(|_| ClusterUpstreamError::BadHost {
        var: vars.host.clone(),
        value: host.clone(),
    })?;
    let port = match read(&vars.port) {
        None => 53,
        Some(value) => match value.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => {
                return Err(ClusterUpstreamError::BadPort {
                    var: vars.port,
                    value,
                });
            }
        },
    };
    Ok(SocketAddr::new(ip, port))
}

/// An upstream refused because we listen on it ourselves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("upstream {upstream} is our own listen address {listen}: forwarding to it would loop")]
pub struct LoopError {
    pub upstream: SocketAddr,
    pub listen: SocketAddr,
}

/// Refuses an upstream that [`is_own_address`].
pub fn check_not_loop(upstream: SocketAddr, listen: &[SocketAddr]) -> Result<(), LoopError> {
    match own_listener(upstream, listen) {
        Some(listen) => Err(LoopError { upstream, listen }),
        None => Ok(()),
    }
}

/// Whether queries sent to `upstream` would reach one of our `listen` sockets: the same
/// IP and port, or, for a wildcard listener, a loopback or unspecified upstream on its
/// port (other local addresses a wildcard covers cannot be told from here). IPv4-mapped
/// IPv6 counts as IPv4.
pub fn is_own_address(upstream: SocketAddr, listen: &[SocketAddr]) -> bool {
    own_listener(upstream, listen).is_some()
}

fn own_listener(upstream: SocketAddr, listen: &[SocketAddr]) -> Option<SocketAddr> {
    let ip = upstream.ip().to_canonical();
    let local = ip.is_loopback() || ip.is_unspecified();
    listen.iter().copied().find(|l| {
        let lip = l.ip().to_canonical();
        // An IPv6 wildcard also takes IPv4 unless the socket is v6-only; assume it does.
        let covers = lip.is_unspecified() && local && (lip.is_ipv6() || ip.is_ipv4());
        // Packets to the unspecified address are delivered to the host's loopback.
        let to_host = ip.is_unspecified() && lip.is_loopback() && lip.is_ipv4() == ip.is_ipv4();
        l.port() == upstream.port() && (lip == ip || covers || to_host)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| vars.get(name).cloned()
    }

    #[test]
    fn service_env_names_follow_kubelet() {
        let vars = ServiceEnv::for_service("kube-dns-upstream");
        assert_eq!(vars.host, "KUBE_DNS_UPSTREAM_SERVICE_HOST");
        assert_eq!(vars.port, "KUBE_DNS_UPSTREAM_SERVICE_PORT");
    }

    #[test]
    fn cluster_upstream_from_config_or_env() {
        let svc = DEFAULT_UPSTREAM_SERVICE;
        let host = "KUBE_DNS_UPSTREAM_SERVICE_HOST";
        let port = "KUBE_DNS_UPSTREAM_SERVICE_PORT";
        // (configured, environment, address or a piece of the error)
        type Case<'a> = (
            Option<&'a str>,
            Vec<(&'a str, &'a str)>,
            Result<&'a str, &'a str>,
        );
        let cases: [Case; 9] = [
            (
                Some("10.1.0.1:5353"),
                vec![(host, "10.96.0.20")],
                Ok("10.1.0.1:5353"),
            ),
            (None, vec![(host, "10.96.0.20")], Ok("10.96.0.20:53")),
            (
                None,
                vec![(host, " 10.96.0.20\n"), (port, "")],
                Ok("10.96.0.20:53"),
            ),
            (
                None,
                vec![(host, "fd00:96::20"), (port, "1053")],
                Ok("[fd00:96::20]:1053"),
            ),
            (None, vec![], Err("create the kube-dns-upstream Service")),
            (
                None,
                vec![(host, ""), (port, "53")],
                Err("kubelet sets KUBE_DNS_UPSTREAM"),
            ),
            (
                None,
                vec![(host, "kube-dns")],
                Err("HOST=\"kube-dns\" is not an IP"),
            ),
            (
                None,
                vec![(host, "10.96.0.20"), (port, "dns")],
                Err("PORT=\"dns\" is not a port"),
            ),
            (
                None,
                vec![(host, "10.96.0.20"), (port, "0")],
                Err("PORT=\"0\" is not a port"),
            ),
        ];
        for (configured, vars, want) in cases {
            let got = cluster_dns_upstream(configured.map(addr), svc, env(&vars));
            match (got, want) {
                (Ok(got), Ok(want)) => assert_eq!(got, addr(want)),
                (Err(err), Err(want)) => assert!(err.to_string().contains(want), "{err}"),
                (got, want) => panic!("{configured:?} {vars:?}: got {got:?}, want {want:?}"),
            }
        }
        let other =
            cluster_dns_upstream(None, "my-dns", env(&[("MY_DNS_SERVICE_HOST", "10.0.0.9")]));
        assert_eq!(other, Ok(addr("10.0.0.9:53")));
    }

    #[test]
    fn loops_are_refused() {
        let listen = [
            addr("169.254.20.10:53"),
            addr("10.96.0.10:53"),
            addr("[fd00::a]:53"),
        ];
        for upstream in [
            "169.254.20.10:53",
            "10.96.0.10:53",
            "[fd00::a]:53",
            "[::ffff:10.96.0.10]:53",
        ] {
            let err = check_not_loop(addr(upstream), &listen).unwrap_err();
            assert!(err.to_string().contains("would loop"), "{err}");
        }
        for upstream in [
            "169.254.20.10:5353",
            "10.96.0.11:53",
            "10.250.0.2:53",
            "127.0.0.1:53",
        ] {
            assert_eq!(
                check_not_loop(addr(upstream), &listen),
                Ok(()),
                "{upstream}"
            );
        }
    }

    #[test]
    fn wildcard_listeners_cover_loopback_and_unspecified() {
        let v4 = [addr("0.0.0.0:53")];
        assert!(is_own_address(addr("127.0.0.1:53"), &v4));
        assert!(is_own_address(addr("0.0.0.0:53"), &v4));
        assert!(!is_own_address(addr("[::1]:53"), &v4));
        assert!(!is_own_address(addr("127.0.0.1:54"), &v4));
        let v6 = [addr("[::]:53")];
        assert!(is_own_address(addr("[::1]:53"), &v6));
        assert!(is_own_address(addr("127.0.0.1:53"), &v6));
        let loopback = [addr("127.0.0.1:53")];
        assert!(is_own_address(addr("0.0.0.0:53"), &loopback));
        assert!(!is_own_address(addr("[::]:53"), &loopback));
        assert!(!is_own_address(addr("10.0.0.1:53"), &v4));
    }
}
